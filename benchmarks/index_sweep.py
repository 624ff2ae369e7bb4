"""Recall@1 and search time of IVF-PQ settings, outside the pipeline: what the index defaults
(``index.nprobe``, ``index.rerank_k``, ``index.opq_niter``) were chosen from.

The data is :mod:`scale`'s generator (same ``--latent``, planted pairs and seed). For each
``--index FACTORY`` (trained once, on every target row, OPQ with ``--opq-niter``
iterations, polysemous training off as speechmine does) and each ``nprobe`` x ``rerank_k``,
``--queries`` sampled source rows are searched, their ``rerank_k`` candidates re-scored with
the exact vectors, and the best compared with the exact top-1 (brute force). Printed per
setting: recall@1 (a tie with the exact top-1 counts), FAISS search ms per query, re-ranking
ms per query (gathering float16 rows as the pipeline does), and both as a ratio of the exact
brute-force search of the same queries, timed in the same run.

    python benchmarks/index_sweep.py --n 200000 --latent 32 \\
        --index OPQ64,IVF4096,PQ64 --nprobe 64 128 256 512 --rerank-k 16 64
    python benchmarks/index_sweep.py --n 50000 --latent 64 --index IVF1024,PQ64 \\
        --nprobe 128 512 --rerank-k 64 256
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # the generator and the exact top-k of the scale benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200_000, help="rows per side")
    ap.add_argument("--latent", type=int, default=32, help="background intrinsic dimension")
    ap.add_argument("--index", nargs="+", default=["OPQ64,IVF4096,PQ64"])
    ap.add_argument("--nprobe", nargs="+", type=int, default=[64, 128, 256, 512])
    ap.add_argument("--rerank-k", nargs="+", type=int, default=[16, 64])
    ap.add_argument("--opq-niter", type=int, default=10)
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--dir", help="data folder (default: a temporary one)")
    a = ap.parse_args()

    from speechmine.index import set_nprobe, train_index

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(a.dir or tmp) / f"sweep-{a.n}-{a.latent}"
        spec = scale.DataSpec(a.n, 4, 0.25, 0.03, a.latent, 0.01, 0)
        scale.generate(data, spec)
        tgt16 = np.concatenate([np.load(data / f"fr.{s:03d}.npy") for s in range(spec.shards)])
        y = tgt16.astype(np.float32)
        rng = np.random.default_rng(99)
        src = scale.Rows(data, "en", a.n, spec.shards)
        q = src.get(np.sort(rng.choice(a.n, min(a.queries, a.n), replace=False)))
        t0 = time.perf_counter()
        top_s, top_i = scale.exact_topk(q, scale.Rows(data, "fr", a.n, spec.shards), 1)
        exact_ms = 1000 * (time.perf_counter() - t0) / len(q)
        print(f"n {a.n}, latent {a.latent}, {len(q)} queries; exact brute force "
              f"{exact_ms:.3f} ms/query (the baseline)")
        print(f"{'index':28} {'nprobe':>6} {'rerank':>6} {'recall@1':>8} {'search ms':>9} "
              f"{'rerank ms':>9} {'/ exact':>7}")
        for factory in a.index:
            t0 = time.perf_counter()
            index = train_index(factory, y, seed=1234, opq_niter=a.opq_niter)
            index.add(y)
            print(f"{factory}: trained and filled in {time.perf_counter() - t0:.0f} s",
                  flush=True)
            for nprobe in a.nprobe:
                set_nprobe(index, nprobe)
                for k in a.rerank_k:
                    t0 = time.perf_counter()
                    _, ids = index.search(q, k)
                    search_ms = 1000 * (time.perf_counter() - t0) / len(q)
                    t0 = time.perf_counter()
                    # as the pipeline re-ranks: float16 rows gathered, then exact products
                    rows = tgt16[np.maximum(ids, 0)].astype(np.float32)
                    sims = np.einsum("qd,qkd->qk", q, rows)
                    sims[ids < 0] = -np.inf
                    best = ids[np.arange(len(q)), sims.argmax(1)]
                    rerank_ms = 1000 * (time.perf_counter() - t0) / len(q)
                    got = sims.max(1)
                    hit = (best == top_i[:, 0]) | (got >= top_s[:, 0] - 1e-6)
                    print(f"{factory:28} {nprobe:6d} {k:6d} {hit.mean():8.4f} "
                          f"{search_ms:9.3f} {rerank_ms:9.3f} "
                          f"{(search_ms + rerank_ms) / exact_ms:7.3f}", flush=True)
            del index


if __name__ == "__main__":
    main()
