"""A run's outputs are one consistent set with run.json written last; locks."""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import Corpus, make_config, output_bytes, read_gz_rows, sentences

from speechmine.pipeline import run
from speechmine.pipeline.lock import LOCK_NAME, DirLock, RunLockedError


def _consistent(out: Path) -> None:
    info = json.loads((out / "run.json").read_text())
    files = info["outputs"]
    bitext, bimeta = read_gz_rows(files["bitext"]), read_gz_rows(files["bimeta"])
    with np.load(files["align"]) as al:
        assert len(bitext) == len(bimeta) == len(al["scores"]) == info["counts"]["pairs"]
        for row, score in zip(bitext, al["scores"]):
            assert float(row[0]) == pytest.approx(float(score), abs=1e-5)


def test_a_failed_rerun_never_leaves_new_files_next_to_an_old_run_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC half-way through publishing a rerun with other settings: the folder then holds
    no run.json (no finished run); the next rerun completes the set."""
    en, fr = sentences(60)
    corpus = Corpus(tmp_path / "c", en, fr)
    run(make_config(tmp_path, corpus.dir))
    _consistent(tmp_path / "out")
    real = os.replace
    calls = []

    def full_disk(src, dst):  # type: ignore[no-untyped-def]
        if str(dst).startswith(str(tmp_path / "out")) and ".smtmp." in str(src) and \
                "publish" in str(src):
            calls.append(dst)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    changed = make_config(tmp_path, corpus.dir, extra={"mine": {"retrieval": "union"}})
    with pytest.raises(OSError, match="No space"):
        run(changed)
    assert len(calls) == 2
    assert not (tmp_path / "out" / "run.json").exists()  # no finished run in the folder
    monkeypatch.setattr(os, "replace", real)
    res = run(changed)
    _consistent(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["mine"]["retrieval"] \
        == "union"
    assert res.counts["pairs"] > 0
    assert not [p for p in (tmp_path / "out").iterdir() if ".smtmp." in p.name]


def test_outputs_of_another_threshold_stay_and_run_json_lists_this_run(tmp_path: Path) -> None:
    en, fr = sentences(60)
    corpus = Corpus(tmp_path / "c", en, fr)
    run(make_config(tmp_path, corpus.dir, extra={"mine_threshold": 1.2}))
    run(make_config(tmp_path, corpus.dir))
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["outputs"]["bitext"].endswith("en-fr.TH-1.1.bitext.tsv.gz")
    assert (tmp_path / "out" / "en-fr.TH-1.2.bitext.tsv.gz").exists()


def test_work_dir_equal_to_output_dir_takes_one_lock(tmp_path: Path) -> None:
    en, fr = sentences(30)
    corpus = Corpus(tmp_path / "c", en, fr)
    res = run(make_config(tmp_path, corpus.dir, extra={"work_dir": str(tmp_path / "out")}))
    assert res.counts["pairs"] > 0
    assert (tmp_path / "out" / "embed").is_dir()


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    en, fr = sentences(30)
    corpus = Corpus(tmp_path / "c", en, fr)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LOCK_NAME).write_text("pid 999999 on somewhere\n")
    with caplog.at_level(logging.INFO, logger="speechmine"):
        run(make_config(tmp_path, corpus.dir))
    assert "taking over the lock" in caplog.text and "pid 999999" in caplog.text
    assert (tmp_path / "out" / LOCK_NAME).read_text() == ""  # released cleanly


@pytest.mark.parametrize("which", ["output_dir", "work_dir"])
def test_a_second_run_on_a_locked_dir_is_told_which_dir(tmp_path: Path, which: str) -> None:
    en, fr = sentences(30)
    corpus = Corpus(tmp_path / "c", en, fr)
    shared = tmp_path / "shared"
    cfg = make_config(tmp_path, corpus.dir, out=tmp_path / "mine",
                      extra={"work_dir": str(shared)})
    held = tmp_path / "mine" if which == "output_dir" else shared
    with DirLock(held, which):
        with pytest.raises(RunLockedError, match=f"{which} .* in use.*another {which}"):
            run(cfg)


def test_rerun_rewrites_nothing_it_does_not_have_to(tmp_path: Path) -> None:
    en, fr = sentences(60)
    corpus = Corpus(tmp_path / "c", en, fr)
    run(make_config(tmp_path, corpus.dir))
    first = output_bytes(tmp_path / "out")
    stamps = {p.name: p.stat().st_ino for p in (tmp_path / "out").glob("en-fr.*")}
    run(make_config(tmp_path, corpus.dir, extra={"progress": True}))  # transient change
    again = output_bytes(tmp_path / "out")
    assert b"progress: true" in again.pop("config.yaml")  # the config as given
    first.pop("config.yaml")
    assert again == first
    # the same published files (hard links of the finished outputs stage)
    assert {p.name: p.stat().st_ino for p in (tmp_path / "out").glob("en-fr.*")} == stamps
    with gzip.open(tmp_path / "out" / "en-fr.TH-1.1.bitext.tsv.gz", "rt") as fh:
        assert fh.readline().count("\t") == 2
