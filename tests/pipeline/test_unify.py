"""``mine.unify`` across shards: the first occurrence of each (stripped) line is embedded,
found by sorting the scans' hashes (in memory, or bucketed on disk), never a set of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import make_config, pairs_of, sentences, write_lines

from speechmine.io import ondisk
from speechmine.pipeline import inputs as inputs_mod
from speechmine.pipeline import run


def _shards(d: Path, n_shards: int = 5, per: int = 120, seed: int = 0) -> list[list[str]]:
    """en shards whose lines are mostly repeats (within and across shards) of 12 sentences,
    some with extra spaces, some blank; fr: the 12 translations, one shard."""
    en, fr = sentences(12)
    rng = np.random.default_rng(seed)
    shards = []
    for s in range(n_shards):
        lines = []
        for i in rng.integers(0, 13, size=per).tolist():
            lines.append("" if i == 12 else (f"  {en[i]} " if rng.random() < 0.2 else en[i]))
        write_lines(d / f"en.{s:03d}.txt", lines)
        shards.append(lines)
    write_lines(d / "fr.000.txt", fr)
    return shards


def _first_occurrences(shards: list[list[str]]) -> list[int]:
    seen: set[str] = set()
    kept, gid = [], 0
    for lines in shards:
        for line in lines:
            text = line.strip()
            if text and text not in seen:
                seen.add(text)
                kept.append(gid)
            gid += 1
    return kept


@pytest.mark.parametrize("bucket_rows", [None, 16])
def test_unify_across_shards_keeps_first_occurrences(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     bucket_rows: int | None) -> None:
    """600 lines in 5 shards, 12 distinct texts: the inputs stage keeps the same ids as a set
    walked in shard order, in one sort and through 64 bucket files (~550 rows, 16 a bucket)."""
    d = tmp_path / "data"
    d.mkdir()
    shards = _shards(d)
    if bucket_rows:
        monkeypatch.setattr(ondisk, "BUCKET_ROWS", bucket_rows)
    cfg = make_config(tmp_path, d, meta=False, glob="{lang}.*.txt",
                      extra={"mine": {"unify": True}})
    side_cfg = cfg.side("src")
    found, metas, nl = inputs_mod.discover(side_cfg)
    scans = [inputs_mod.scan_stage(cfg, side_cfg, shard) for shard in found]
    for stage, shard in zip(scans, found):
        inputs_mod.run_scan(stage, tmp_path / "work", shard, cfg, side_cfg)
    stage = inputs_mod.inputs_stage(cfg, side_cfg, scans, metas, nl)
    got = inputs_mod.run_inputs(stage, tmp_path / "work", "src", found, scans, metas, nl)
    want = _first_occurrences(shards)
    assert got.kept.tolist() == want and len(want) == 12
    blank = sum(line == "" for lines in shards for line in lines)
    assert got.duplicates == 600 - blank - 12 and got.blank == blank
    # the file is what np.save writes, and large id maps come back memory-mapped
    folder = stage.path(tmp_path / "work")
    np.save(tmp_path / "want.npy", np.asarray(want, dtype=np.int64))
    assert (folder / "kept.npy").read_bytes() == (tmp_path / "want.npy").read_bytes()
    monkeypatch.setattr(inputs_mod, "MMAP_BYTES", 0)
    mapped = inputs_mod.load_ids(folder / "kept.npy")
    assert isinstance(mapped, np.memmap) and mapped.tolist() == want
    assert not [p for p in folder.iterdir() if p.name.startswith(".unify")]


def test_unify_end_to_end_with_duplicates_across_shards(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    shards = _shards(d, n_shards=3, per=40, seed=1)
    res = run(make_config(tmp_path, d, meta=False, glob="{lang}.*.txt",
                          extra={"mine": {"unify": True}}))
    kept = _first_occurrences(shards)
    assert res.counts["src"]["embedded"] == len(kept) == 12
    assert res.sides["src"].inputs.kept.tolist() == kept
    # each French line pairs with the first line holding its translation
    en, _ = sentences(12)
    flat = [line.strip() for lines in shards for line in lines]
    assert pairs_of(res) == {kept[i]: en.index(flat[kept[i]]) for i in range(12)}
