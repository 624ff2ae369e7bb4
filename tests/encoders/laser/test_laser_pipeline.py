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


@pytest.mark.slow
def test_stopes_demo_preset_runs_unchanged(tmp_path: Path, laser_dir: Path) -> None:
    """stopes' own global_mining.yaml + preset/demo.yaml (vendored, unchanged), with the demo
    folder prepare.sh would make: LASER3 models per language (here the tiny fixtures under
    the released names), LASER2's spm/vocab, gzipped shards and .nl files."""
    import gzip
    import shutil

    from helpers import DATA, read_gz_rows, tiny_lines

    demo = tmp_path / "demo"
    models = demo / "models" / "wmt22"
    models.mkdir(parents=True)
    for lang in ("amh", "hau"):  # one model for both: the same space, as LASER3's are
        shutil.copy(laser_dir / "tiny_laser3.pt", models / f"laser3-{lang}.v1.pt")
    shutil.copy(laser_dir / "tiny.spm", models / "laser3-amh.v1.spm")
    shutil.copy(laser_dir / "tiny.cvocab", models / "laser3-amh.v1.cvocab")
    shutil.copy(laser_dir / "tiny.spm", models / "laser2.spm")
    shutil.copy(laser_dir / "tiny.cvocab", models / "laser2.cvocab")
    lines = tiny_lines("en")[:60]
    for lang in ("amh", "hau"):  # the same sentences both sides: every one is a pair
        (demo / f"{lang}.gz").write_bytes(gzip.compress("\n".join(lines).encode() + b"\n"))
        (demo / f"{lang}.nl").write_text(f"{len(lines)}\n")
    out = tmp_path / "out"
    conf = DATA / "stopes_conf" / "conf"
    cfg = load_config(conf / "global_mining.yaml",
                      ["+preset=demo", f"demo_dir={demo}", "src_lang=amh", "tgt_lang=hau",
                       f"output_dir={out}", "mine_threshold=1.0"])
    assert cfg.src.encoder.name == cfg.tgt.encoder.name == "laser"
    res = run(cfg)
    # random tiny weights: every sentence near every other, margins close to 1
    bitext = out / "mine.V32m" / "amh-hau.TH-1.0.bitext.tsv.gz"
    rows = read_gz_rows(bitext)
    # every sentence found in both directions, one bitext row each (stopes' dedup)
    assert res.counts["pairs"] == 2 * len(lines)
    assert len(rows) == len(lines) and all(r[1] == r[2] for r in rows)
    assert (out / "mine.V32m" / "amh-hau.Flat.k16-16.mean.np128.fp16-shard.align.npz").exists()
