"""Speech input throughput: decode + resample (+ SONAR fbank) of manifest segments, and VAD.

Builds a long recording (default ~10 min) by concatenating the bundled speech demo, stored
as 44.1 kHz FLAC (so resampling to 16 kHz is part of the work) or Ogg/Opus, with a manifest
of its utterances (the demo's own offsets). Then, each part in a fresh subprocess so that
peak memories do not mix:

* ``speechmine``: :func:`speechmine.io.audio.load_segments` with an :class:`AudioCache`:
  the file is decoded and resampled once, segments are slices of it;
* ``naive`` (baseline): every segment read from disk on its own (``soundfile.read`` with
  ``start``/``stop``) and resampled on its own;
* both followed by SONAR's Kaldi fbank per segment when ``speechmine.encoders.sonar`` (torch)
  is importable, otherwise that part is skipped with a note;
* ``vad``: Silero VAD probabilities over the whole file (decoding excluded) and the whole
  :func:`speechmine.segment.segment_audio` (decoding included).

Prints wall time, speed as a multiple of real time, peak RSS above an idle interpreter with
the same imports, and the ratios speechmine / naive.

    python benchmarks/audio.py                      # ~10 min of audio, FLAC 44.1 kHz (~3 min)
    python benchmarks/audio.py --minutes 30 --format ogg --threads 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "src" / "speechmine" / "data" / "speech_demo"


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


class RssPeak:
    """Context manager: peak resident memory reached inside the block, above the resident
    memory at its start (MB, in ``.mb``). Linux resets the peak (VmHWM) when "5" is written
    to /proc/self/clear_refs, so the import of torch does not mask it, and nothing runs
    alongside the measured code (a sampling thread would steal the GIL from torch)."""

    def __enter__(self) -> RssPeak:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        self.start = _status_mb("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.mb = _status_mb("VmHWM") - self.start


def fbank_fn(threads: int):
    """SONAR's standardized fbank as ``wave -> (T, 80)``, or ``None`` without torch/sonar."""
    try:
        import torch

        from speechmine.encoders.sonar.fbank import standardized_fbank
    except ImportError:
        return None
    import numpy as np

    torch.set_num_threads(threads)
    # a copy, as the SONAR speech encoder makes: cached segments are read-only views
    return lambda wave: standardized_fbank(torch.from_numpy(np.array(wave, dtype=np.float32)))


def build(minutes: float, fmt: str, out_dir: Path) -> tuple[Path, Path, float]:
    """Concatenate the demo to ``minutes`` of audio; returns (audio, manifest, seconds)."""
    import numpy as np
    import soundfile as sf

    from speechmine.io.audio import load_audio, resample
    from speechmine.io.manifest import read_manifest, write_manifest
    from speechmine.types import SAMPLE_RATE, AudioSegment

    demo = read_manifest(DEMO / "en_speech.tsv")
    waves = {p: load_audio(p) for p in dict.fromkeys(s.path for s in demo)}
    target = int(minutes * 60 * SAMPLE_RATE)
    parts, segs, pos = [], [], 0
    while pos < target:
        for path, wave in waves.items():
            parts.append(wave)
            segs += [AudioSegment("", pos + s.start, pos + s.end) for s in demo if s.path == path]
            pos += len(wave)
            if pos >= target:
                break
    wave = np.concatenate(parts)
    if fmt == "flac":
        audio = out_dir / "long.flac"
        sf.write(audio, resample(wave, SAMPLE_RATE, 44100), 44100, subtype="PCM_16")
    else:
        audio = out_dir / "long.ogg"
        sf.write(audio, wave, SAMPLE_RATE, format="OGG", subtype="OPUS")
    manifest = out_dir / "long.tsv"
    write_manifest(manifest, [AudioSegment(str(audio), s.start, s.end) for s in segs])
    return audio, manifest, len(wave) / SAMPLE_RATE


# ------------------------------------------------------------------- parts (subprocesses)


def _process(segments, fbank, reader, repeat: int) -> dict:
    """Run ``reader`` (segments -> iterator of waveforms) + fbank ``repeat`` times, from
    scratch each time; the fastest run counts (the machine may be shared), memory of the
    first run."""
    times, mem_mb = [], 0.0
    for _ in range(repeat):
        with RssPeak() as mem:
            t0 = time.perf_counter()
            n = frames = 0
            for wave in reader(segments):
                n += len(wave)
                if fbank is not None:
                    frames += fbank(wave).shape[0]
            times.append(time.perf_counter() - t0)
        mem_mb = mem_mb or mem.mb
    return {"seconds": min(times), "samples": n, "frames": frames, "mem_mb": mem_mb}


def part_speechmine(args: argparse.Namespace) -> dict:
    from speechmine.io.audio import AudioCache, load_segments
    from speechmine.io.manifest import read_manifest

    def reader(segs):
        for _, wave in load_segments(segs, AudioCache()):
            if isinstance(wave, str):
                raise RuntimeError(wave)
            yield wave

    fbank = fbank_fn(args.threads) if args.fbank else None
    return _process(read_manifest(args.manifest), fbank, reader, args.repeat)


def part_naive(args: argparse.Namespace) -> dict:
    import numpy as np
    import soundfile as sf

    from speechmine.io.audio import resample
    from speechmine.io.manifest import read_manifest
    from speechmine.types import SAMPLE_RATE

    def reader(segs):
        for s in segs:
            sr = sf.info(s.path).samplerate
            start, stop = s.start * sr // SAMPLE_RATE, -(-s.end * sr // SAMPLE_RATE)
            data, sr = sf.read(s.path, start=start, stop=stop, dtype="float32", always_2d=True)
            yield resample(np.ascontiguousarray(data.mean(axis=1)), sr)

    fbank = fbank_fn(args.threads) if args.fbank else None
    return _process(read_manifest(args.manifest), fbank, reader, args.repeat)


def part_vad(args: argparse.Namespace) -> dict:
    """VAD alone, then the whole segmentation, which writes the candidate-window manifest."""
    from speechmine.io.audio import load_audio
    from speechmine.segment import SileroVAD, segment_to_manifest

    wave = load_audio(args.audio)
    vad = SileroVAD()
    t_vad = float("inf")
    for _ in range(args.repeat):
        with RssPeak() as mem:
            t0 = time.perf_counter()
            vad.probabilities(wave)
            t_vad = min(t_vad, time.perf_counter() - t0)
    t0 = time.perf_counter()
    segs = segment_to_manifest([args.audio], args.manifest, relative=False,
                               overlap_windows=True)
    return {"seconds": t_vad, "mem_mb": mem.mb, "samples": len(wave),
            "segment_seconds": time.perf_counter() - t0, "segments": len(segs)}


PARTS = {"speechmine": part_speechmine, "naive": part_naive, "vad": part_vad}


def run_part(name: str, args: argparse.Namespace, manifest: Path) -> dict:
    cmd = [sys.executable, __file__, "--part", name, "--audio", str(args.audio), "--manifest",
           str(manifest), "--threads", str(args.threads), "--repeat", str(args.repeat)]
    if not args.fbank:
        cmd.append("--no-fbank")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(title: str, args: argparse.Namespace, manifest: Path, secs: float) -> None:
    """Both readers over one manifest, with the ratios."""
    n_segs = sum(1 for _ in open(manifest))
    sm, nv = (run_part(name, args, manifest) for name in ("speechmine", "naive"))
    what = "decode + resample" + (" + fbank" if args.fbank else "")
    print(f"\n{what}, {title}: {n_segs} segments, {sm['samples'] / 16000:.0f} s of audio "
          f"in segments ({sm['samples'] / 16000 / secs:.1f}x the file)")
    for name, r in (("speechmine", sm), ("naive", nv)):
        print(f"  {name:<11} {r['seconds']:7.2f} s  {secs / r['seconds']:7.1f}x real time "
              f"(of the file)  peak +{r['mem_mb']:5.0f} MB")
    # same work: resampling each piece alone may round one sample differently per segment
    assert abs(sm["samples"] - nv["samples"]) <= n_segs, (sm["samples"], nv["samples"])
    print(f"  ratio speechmine/naive: time {sm['seconds'] / nv['seconds']:.2f} "
          f"(speed-up {nv['seconds'] / sm['seconds']:.1f}x), peak memory "
          f"{sm['mem_mb'] / max(nv['mem_mb'], 0.5):.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--format", choices=["flac", "ogg"], default="flac")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the fbank")
    ap.add_argument("--no-fbank", dest="fbank", action="store_false")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best counts)")
    ap.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    ap.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:  # child process: one measurement, one JSON line
        print(json.dumps(PARTS[args.part](args)))
        return

    if args.fbank and fbank_fn(args.threads) is None:
        print("note: speechmine.encoders.sonar (torch) not importable: fbank part skipped")
        args.fbank = False
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        args.audio, utterances, secs = build(args.minutes, args.format, Path(tmp))
        print(f"built {args.audio.name}: {secs / 60:.1f} min ({args.format}"
              f"{', 44.1 kHz' if args.format == 'flac' else ', 16 kHz'}), "
              f"{args.audio.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")
        windows = Path(tmp) / "windows.tsv"
        v = run_part("vad", args, windows)
        print(f"\nVAD over {secs / 60:.1f} min: Silero probabilities {v['seconds']:.2f} s "
              f"({secs / v['seconds']:.0f}x real time, peak +{v['mem_mb']:.0f} MB); "
              f"segment_to_manifest with overlapping windows incl. decoding "
              f"{v['segment_seconds']:.2f} s ({secs / v['segment_seconds']:.0f}x real time, "
              f"{v['segments']} segments)")
        compare("one segment per utterance (demo manifest)", args, utterances, secs)
        compare("VAD segments + overlapping 1-20 s windows", args, windows, secs)


if __name__ == "__main__":
    main()
