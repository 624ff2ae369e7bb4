"""Build the xSIM fixtures and LASER's own answers on them (``golden.json``).

Usage (from the repository root, with a LASER checkout whose ``source/xsim.py`` to run)::

    python tests/eval/data/xsim/make_golden.py --laser /path/to/LASER

The embeddings are made here (seeded, deterministic): sources ``x`` and aligned targets ``y``
(y = x + noise: some sources find another target), five duplicated rows on both sides (tied
answers; the same target text, so not an error by text), and hard negatives ``neg``: for
sources 0–39 a mix of the source and its target (closer to the source than the target is),
for 40–59 the target plus noise. ``neg.txt``'s error types (LASER's ``errtype`` JSON) name
the target each negative was made from; 50–59 name a wrong one ("Misaligned" if answered).

Then LASER's code itself — ``xSIM``, ``_score_knn`` from ``source/xsim.py``, imported from the
checkout, nothing copied — gives, per case, the error count and every source's answer. The
test compares speechmine's ``xsim`` with these (tests/eval/test_xsim_laser.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
N, D, H = 200, 32, 60
KINDS = ("entity", "number", "negation")


def make_fixtures(out: Path) -> None:
    rng = np.random.default_rng(20240613)
    x = rng.standard_normal((N, D)).astype(np.float32)
    y = (x + 1.2 * rng.standard_normal((N, D))).astype(np.float32)
    x[150:155], y[150:155] = x[100:105], y[100:105]  # duplicates: ties
    texts = [f"target sentence {i}" for i in range(N)]
    texts[150:155] = texts[100:105]
    neg = np.empty((H, D), dtype=np.float32)
    neg[:40] = 0.6 * x[:40] + 0.4 * y[:40] + 0.3 * rng.standard_normal((40, D))
    neg[40:] = y[40:H] + 0.8 * rng.standard_normal((H - 40, D))
    neg_texts = [f"negative {j} of target {j}" for j in range(H)]
    types = {t: {"src": texts[j] if j < 50 else texts[j + 1], "errtype": KINDS[j % 3]}
             for j, t in enumerate(neg_texts)}
    np.save(out / "x.npy", x)
    np.save(out / "y.npy", y)
    np.save(out / "neg.npy", neg)
    (out / "y.txt").write_text("".join(t + "\n" for t in texts))
    (out / "neg.txt").write_text("".join(t + "\n" for t in neg_texts))
    (out / "errtype.json").write_text(json.dumps(types, indent=1) + "\n")


def laser_answers(laser: Path, out: Path) -> dict[str, object]:
    sys.path.insert(0, str(laser / "source"))
    import xsim as laser_xsim  # LASER's module, from the checkout

    x, y, neg = (np.load(out / f"{n}.npy") for n in ("x", "y", "neg"))
    cases: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        y_txt = str(out / "y.txt")
        pool_txt = Path(tmp) / "pool.txt"  # LASER's eval.py concatenates the files so
        pool_txt.write_text((out / "y.txt").read_text() + (out / "neg.txt").read_text())
        pool = np.concatenate([y, neg])
        runs = [
            (f"{m}_index", x, y, {"margin": m}) for m in ("ratio", "distance", "absolute")
        ] + [
            ("ratio_reverse_index", y, x, {}),
            ("ratio_text", x, y, {"eval_text": y_txt}),
            ("ratio_plusplus_index", x, pool, {"augmented_json": str(out / "errtype.json")}),
            ("ratio_plusplus_text", x, pool, {"augmented_json": str(out / "errtype.json"),
                                              "eval_text": str(pool_txt)}),
        ]
        for name, a, b, kw in runs:
            margin = str(kw.get("margin", "ratio"))
            err, nbex, report = laser_xsim.xSIM(a.copy(), b.copy(), **kw)
            nearest = laser_xsim._score_knn(a.copy(), b.copy(), 4, margin).reshape(-1)
            cases[name] = {"errors": int(err), "n": int(nbex), "error_types": report,
                           "nearest": nearest.astype(int).tolist()}
    commit = subprocess.run(["git", "-C", str(laser), "rev-parse", "HEAD"], text=True,
                            capture_output=True).stdout.strip() or "unknown"
    import faiss

    return {"provenance": {
        "what": "answers of LASER's source/xsim.py (xSIM, _score_knn) on x.npy/y.npy/neg.npy",
        "laser_repository": "https://github.com/facebookresearch/LASER (BSD licence)",
        "laser_commit": commit, "faiss": faiss.__version__, "numpy": np.__version__,
        "python": sys.version.split()[0],
        "command": "python tests/eval/data/xsim/make_golden.py --laser LASER_CHECKOUT"},
        "cases": cases}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--laser", type=Path, required=True, help="LASER checkout (source/xsim.py)")
    args = ap.parse_args()
    make_fixtures(HERE)
    golden = laser_answers(args.laser, HERE)
    (HERE / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {HERE / 'golden.json'}")


if __name__ == "__main__":
    main()
