"""Exact kNN + margin + selection + writing vs. a bare FAISS IndexFlatIP search.

On synthetic unit vectors (d=1024, N = M), in one process and one run:

* baseline 1: ``IndexFlatIP`` over y, ``search(x, k)``: one direction, nothing else;
* baseline 2: the two bare searches mining needs (x in y and y in x);
* speechmine: both directions (one pass over X·Yᵀ), margin, candidate choice, greedy 1:1
  selection and writing ``align.npz``.

Prints seconds, the ratios speechmine / baseline, and peak resident memory of each part
(measured in a fresh subprocess per part so peaks do not mix).

    python benchmarks/knn_margin.py                 # N = 10k, 20k, 50k, 100k
    python benchmarks/knn_margin.py --sizes 10000 --k 16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def vectors(n: int, d: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, d), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def part(kind: str, n: int, d: int, k: int) -> dict[str, float]:
    """Run one measured part in this process; returns seconds and peak RSS (MiB)."""
    import faiss
    import numpy as np

    x, y = vectors(n, d, 1), vectors(n, d, 2)
    # a quarter of x has a noisy copy in y, so the margin finds real pairs
    y[: n // 4] = x[: n // 4] + 0.5 * vectors(n // 4, d, 3)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    if kind == "faiss1":
        ix = faiss.IndexFlatIP(d)
        ix.add(y)
        ix.search(x, k)
    elif kind == "faiss2":
        for a, b in ((x, y), (y, x)):
            ix = faiss.IndexFlatIP(d)
            ix.add(b)
            ix.search(a, k)
    else:
        from speechmine.config import MineConfig
        from speechmine.io.atomic import write_npz
        from speechmine.knn import exact_knn_both
        from speechmine.select import mine_neighbours

        fwd, bwd = exact_knn_both(x, y, k, k)
        al = mine_neighbours(fwd, bwd, MineConfig(k=k))
        with tempfile.TemporaryDirectory() as tmp:
            write_npz(Path(tmp) / "align.npz", scores=al.scores, src_ids=al.src,
                      tgt_ids=al.tgt, direction=al.direction)
    secs = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": secs, "peak_mib": peak / 1024, "extra_mib": (peak - rss0) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 50_000, 100_000])
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--k", type=int, default=4, help="neighbours (speechmine default 4)")
    ap.add_argument("--one-dir-only", action="store_true",
                    help="skip the two-direction baseline (halves the time at large N)")
    ap.add_argument("--part", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        print(json.dumps(part(args.part, args.sizes[0], args.dim, args.k)))
        return
    import faiss

    print(f"d={args.dim} k={args.k} threads={faiss.omp_get_max_threads()} "
          f"(faiss {faiss.__version__})")
    print(f"{'N=M':>8} {'faiss 1 dir':>12} {'faiss 2 dirs':>13} {'speechmine':>11} "
          f"{'ratio/1dir':>11} {'ratio/2dirs':>12} {'peak MiB f1/f2/sm':>20}")
    for n in args.sizes:
        res = {"faiss2": {"seconds": float("nan"), "peak_mib": float("nan")}}
        for kind in ("faiss1", "speechmine") if args.one_dir_only else \
                ("faiss1", "faiss2", "speechmine"):
            out = subprocess.run([sys.executable, __file__, "--part", kind, "--sizes", str(n),
                                  "--dim", str(args.dim), "--k", str(args.k)],
                                 check=True, capture_output=True, text=True).stdout
            res[kind] = json.loads(out.strip().splitlines()[-1])
        f1, f2, sm = (res[k]["seconds"] for k in ("faiss1", "faiss2", "speechmine"))
        peaks = "/".join(f"{res[k]['peak_mib']:.0f}" for k in ("faiss1", "faiss2", "speechmine"))
        print(f"{n:>8} {f1:>11.2f}s {f2:>12.2f}s {sm:>10.2f}s {sm / f1:>11.2f} "
              f"{sm / f2:>12.2f} {peaks:>20}", flush=True)


if __name__ == "__main__":
    main()
