"""Peak memory and speed of VAD segmentation of one long file: streaming vs whole-file.

Builds a long recording (default 1 hour) from the bundled real speech (``real_en.ogg``)
separated by low noise, written block by block as FLAC (default 44.1 kHz, so resampling to
16 kHz is part of the work) in a temporary folder. Then, each in a fresh subprocess so that
peak memories do not mix:

* ``whole`` (baseline, the approach before streaming): :func:`speechmine.io.audio.load_audio`
  decodes the whole file to 16 kHz (~230 MB per hour), then Silero VAD runs over the array
  and :func:`speechmine.segment.speech_regions` cuts it;
* ``stream``: :func:`speechmine.segment.segment_file`, which decodes, resamples and runs the
  VAD block by block (one block plus the per-frame probabilities in memory).

Peak memory is the peak resident set (VmHWM, reset through /proc/self/clear_refs) above the
resident set just before the measured call, with the imports done and the VAD model loaded.
Prints wall time, speed as a multiple of real time, peak memory, the ratios stream/whole,
and checks that both give the same segments.

    python benchmarks/segment.py                 # 60 min at 44.1 kHz (~1-2 min)
    python benchmarks/segment.py --minutes 10 --rate 16000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "src" / "speechmine" / "data" / "speech_demo" / "real_en.ogg"


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


class RssPeak:
    """Context manager: peak resident memory inside the block above the resident memory at
    its start (MB, in ``.mb``); Linux resets VmHWM when "5" is written to clear_refs."""

    def __enter__(self) -> RssPeak:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        self.start = _status_mb("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.mb = _status_mb("VmHWM") - self.start


def build(minutes: float, rate: int, path: Path) -> float:
    """Write ``minutes`` of speech + noise gaps to ``path`` (FLAC, PCM 16) piece by piece;
    returns the duration in seconds."""
    import numpy as np
    import soundfile as sf

    from speechmine.io.audio import load_audio, resample
    from speechmine.types import SAMPLE_RATE

    speech = resample(load_audio(SPEECH), SAMPLE_RATE, rate)
    rng = np.random.default_rng(0)
    target, written = int(minutes * 60 * rate), 0
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16", format="FLAC") as out:
        while written < target:
            gap = rng.normal(0, 1e-3, int(rng.uniform(0.5, 3.0) * rate)).astype(np.float32)
            for piece in (gap, speech):
                piece = piece[: target - written]
                out.write(piece)
                written += len(piece)
    return written / rate


def _digest(segments: list[tuple[int, int]]) -> str:
    return hashlib.sha256(json.dumps(segments).encode()).hexdigest()[:16]


def part_whole(audio: str) -> dict:
    """The whole-file path: one 16 kHz array, then VAD and regions over it."""
    from speechmine.io.audio import load_audio
    from speechmine.segment import SileroVAD, speech_regions

    vad = SileroVAD()
    with RssPeak() as mem:
        t0 = time.perf_counter()
        wave = load_audio(audio)
        probs = vad.probabilities(wave)
        regions = speech_regions(probs, len(wave))
        seconds = time.perf_counter() - t0
        n = len(wave)
        del wave
    return {"seconds": seconds, "mem_mb": mem.mb, "samples": n, "segments": len(regions),
            "digest": _digest([list(r) for r in regions])}


def part_stream(audio: str) -> dict:
    """Streaming: decode, resample and VAD block by block."""
    from speechmine.segment import SileroVAD, segment_file

    vad = SileroVAD()
    with RssPeak() as mem:
        t0 = time.perf_counter()
        segs = segment_file(audio, vad=vad)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "mem_mb": mem.mb, "segments": len(segs),
            "digest": _digest([[s.start, s.end] for s in segs])}


PARTS = {"whole": part_whole, "stream": part_stream}


def run_part(name: str, audio: Path) -> dict:
    cmd = [sys.executable, __file__, "--part", name, "--audio", str(audio)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=44100, help="sample rate of the FLAC file")
    ap.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    ap.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:  # child process: one measurement, one JSON line
        print(json.dumps(PARTS[args.part](str(args.audio))))
        return

    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "long.flac"
        t0 = time.perf_counter()
        secs = build(args.minutes, args.rate, audio)
        print(f"built {audio.name}: {secs / 60:.1f} min, {args.rate} Hz mono FLAC, "
              f"{audio.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s "
              f"(16 kHz float32: {secs * 16000 * 4 / 1e6:.0f} MB)")
        whole = run_part("whole", audio)  # baseline first, then the new path
        stream = run_part("stream", audio)
    print(f"\nVAD segmentation of {secs / 60:.1f} min, decoding included:")
    for name, r in (("whole", whole), ("stream", stream)):
        print(f"  {name:<7} {r['seconds']:7.2f} s  {secs / r['seconds']:6.0f}x real time  "
              f"peak +{r['mem_mb']:6.1f} MB  {r['segments']} segments ({r['digest']})")
    same = whole["digest"] == stream["digest"] and whole["segments"] == stream["segments"]
    print(f"  ratio stream/whole: peak memory {stream['mem_mb'] / max(whole['mem_mb'], 0.1):.3f}"
          f" ({whole['mem_mb'] / max(stream['mem_mb'], 0.1):.0f}x less), time "
          f"{stream['seconds'] / whole['seconds']:.2f}; same segments: {same}")
    if not same:
        sys.exit("streaming and whole-file segmentation differ")


if __name__ == "__main__":
    main()
