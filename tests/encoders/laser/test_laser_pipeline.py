"""A stopes preset whose embed_text encoder is LaserSentenceEncoder runs end to end, and a
rerun reuses the embeddings (the identity is stable)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import sharded_preset, write_sharded

from speechmine.config import load_config
from speechmine.pipeline import run


def _encoder(folder: Path) -> dict[str, Any]:
    """stopes' conf/embed_text/encoder/laser2_encoder.yaml, files filled in."""
    return {
        "_target_": "stopes.modules.preprocess.laser_sentence_encoder.LaserSentenceEncoder",
        "_name": "laser2_encoder", "encoder_model": str(folder / "tiny_laser2.pt"),
        "spm_model": str(folder / "tiny.spm"), "spm_vocab": str(folder / "tiny.cvocab"),
        "max_sentences": None, "max_tokens": 12_000, "stable_sort": False, "normalize": False,
        "fp16": False, "cpu": False,
    }


@pytest.mark.slow  # three pipeline runs: ~2 s idle, 12 s on a loaded 2-core machine
def test_stopes_laser_preset_mines_and_reuses(tmp_path: Path, laser_dir: Path) -> None:
    data = tmp_path / "data"
    write_sharded(data)
    preset = sharded_preset(tmp_path, data, tmp_path / "out", _encoder(laser_dir))
    cfg = load_config(preset)
    assert cfg.src.encoder.name == "laser" and cfg.tgt.encoder.name == "laser"
    first = run(cfg)
    assert first.counts["src"]["shards_embedded_this_run"] == 4
    assert (tmp_path / "out" / "en-fr.TH-1.1.bitext.tsv.gz").exists()
    # a rerun, with a speed option changed: nothing is embedded again
    again = run(load_config(preset, ["embed_text.encoder.max_tokens=50"]))
    assert again.counts["src"]["shards_embedded_this_run"] == 0
    assert again.counts["tgt"]["shards_embedded_this_run"] == 0
    # normalize changes the vectors: embedded again
    other = run(load_config(preset, ["embed_text.encoder.normalize=true"]))
    assert other.counts["src"]["shards_embedded_this_run"] == 4
