"""The stage contract on its own: keys, load-or-compute, the completion mark, and the one
temporary-file pattern that a later run cleans up (its own leftovers only)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechmine.config import MineConfig
from speechmine.io.atomic import atomic_open, clean_stale_tmp, tmp_name
from speechmine.pipeline.stage import DONE, Stage, run_stage


def _writer(calls: list[str], text: str = "hello"):
    def compute(folder: Path) -> None:
        calls.append("compute")
        (folder / "out.txt").write_text(text)
    return compute


def _reader(folder: Path) -> str:
    return (folder / "out.txt").read_text()


def test_key_is_derived_from_the_declared_parts_only(tmp_path: Path) -> None:
    f = tmp_path / "in.txt"
    f.write_text("abc")
    base = Stage("s", 1, config={"mine": MineConfig()}, inputs=[str(f)], upstream=["u"])
    assert base.key == Stage("s", 1, config={"mine": MineConfig()}, inputs=[str(f)],
                             upstream=["u"]).key
    assert Stage("s", 2, config={"mine": MineConfig()}, inputs=[str(f)],
                 upstream=["u"]).key != base.key
    assert Stage("s", 1, config={"mine": MineConfig(k=5)}, inputs=[str(f)],
                 upstream=["u"]).key != base.key
    assert Stage("s", 1, config={"mine": MineConfig()}, inputs=[str(f)],
                 upstream=["v"]).key != base.key
    assert Stage("s", 1, config={"mine": MineConfig()}, inputs=[str(f)], upstream=["u"],
                 packages=["numpy"]).key != base.key
    # the same bytes elsewhere are the same input; other bytes are not
    g = tmp_path / "copy.txt"
    g.write_text("abc")
    assert Stage("s", 1, config={"mine": MineConfig()}, inputs=[str(g)],
                 upstream=["u"]).key == base.key
    g.write_text("abd")
    assert Stage("s", 1, config={"mine": MineConfig()}, inputs=[str(g)],
                 upstream=["u"]).key != base.key


def test_computed_once_then_loaded(tmp_path: Path) -> None:
    calls: list[str] = []
    st = Stage("s", 1, config={"x": 1})
    assert run_stage(st, tmp_path, _writer(calls), _reader) == ("hello", True)
    assert run_stage(st, tmp_path, _writer(calls), _reader) == ("hello", False)
    assert calls == ["compute"]
    marker = json.loads((st.path(tmp_path) / DONE).read_text())
    assert marker["key"] == st.key and marker["files"] == {"out.txt": 5}


def test_a_failed_compute_leaves_nothing_marked_done(tmp_path: Path) -> None:
    st = Stage("s", 1)

    def broken(folder: Path) -> None:
        (folder / "out.txt").write_text("half")
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError):
        run_stage(st, tmp_path, broken, _reader)
    assert not st.path(tmp_path).exists() and not st.done(tmp_path)
    assert not list((tmp_path / "s").iterdir())  # no temporary left either
    assert run_stage(st, tmp_path, _writer([]), _reader) == ("hello", True)


@pytest.mark.parametrize("damage", ["truncated", "no marker", "bad marker", "unloadable"])
def test_damaged_output_is_redone_never_trusted(tmp_path: Path, damage: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    st = Stage("s", 1)
    run_stage(st, tmp_path, _writer(calls), _reader)
    folder = st.path(tmp_path)
    if damage == "truncated":
        (folder / "out.txt").write_text("hel")
    elif damage == "no marker":
        (folder / DONE).unlink()
    elif damage == "bad marker":
        (folder / DONE).write_text("{not json")
    else:
        (folder / "out.txt").write_text("HELLO")  # same size, but the loader rejects it

    def strict(folder: Path) -> str:
        text = _reader(folder)
        if text != "hello":
            raise ValueError(f"unexpected content {text!r}")
        return text

    with caplog.at_level(logging.INFO):
        assert run_stage(st, tmp_path, _writer(calls), strict) == ("hello", True)
    assert calls == ["compute", "compute"]
    if damage == "unloadable":
        assert "cannot be read" in caplog.text


def test_clean_up_removes_only_speechmine_leftovers_of_dead_processes(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = tmp_name(tmp_path / "x").name.split("@", 1)[1]
    stale_file = tmp_path / "a" / f".emb.npy.smtmp.{dead}@{host}"
    stale_dir = tmp_path / "embed" / f".0123.smtmp.{dead}@{host}"
    live = tmp_path / f".x.smtmp.{os.getpid()}@{host}"  # this process: in flight
    other_host = tmp_path / f".x.smtmp.{dead}@some-other-host"
    user_files = [tmp_path / "notes.tmp-1", tmp_path / "a" / "b.tmp-99",
                  tmp_path / ".hidden.smtmp"]
    for p in [stale_file, live, other_host, *user_files]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    stale_dir.mkdir(parents=True)
    (stale_dir / "emb.npy").write_text("partial")
    assert clean_stale_tmp(tmp_path) == 2
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and other_host.exists() and all(p.exists() for p in user_files)


def test_manifest_writer_uses_the_one_temporary_pattern(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest writer killed mid-write leaves a temporary the clean-up recognises."""
    from speechmine.io import manifest
    from speechmine.types import AudioSegment

    seen = []
    real = atomic_open

    def spy(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(tmp_name(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(manifest, "atomic_open", spy)
    manifest.write_manifest(tmp_path / "m.tsv", [AudioSegment("a.wav", 0, 10)])
    assert seen == [f".m.tsv.smtmp.{os.getpid()}@{tmp_name(tmp_path).name.split('@', 1)[1]}"]
    assert (tmp_path / "m.tsv").read_text() == "a.wav\t0\t10\t0\n"


def test_clean_up_spares_the_in_flight_files_of_another_live_run(tmp_path: Path) -> None:
    """A work dir that is a parent of another run's folder: that run's temporaries stay."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = tmp_name(tmp_path / "x").name.split("@", 1)[1]
        in_flight = tmp_path / "other-run" / "work" / "embed" / f".abc.smtmp.{other.pid}@{host}"
        in_flight.mkdir(parents=True)
        (in_flight / "emb.npy").write_text("being written")
        assert clean_stale_tmp(tmp_path) == 0
        assert (in_flight / "emb.npy").exists()
    finally:
        other.kill()
        other.wait()
    assert clean_stale_tmp(tmp_path) == 1  # its process is gone now
