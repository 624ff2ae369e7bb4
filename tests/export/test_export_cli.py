"""``speechmine export`` in a real process: outputs, messages, exit codes."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from helpers import cli

from conftest import TextRun

pytest.importorskip("pyarrow")


def test_help_teaches_with_examples():
    proc = cli("export", "--help", check=True)
    for text in ("--format", "--audio", "Examples:", "load_dataset", "load_manifest"):
        assert text in proc.stdout


def test_jsonl_gz_through_the_command(sm_text: TextRun, tmp_path: Path):
    target = tmp_path / "pairs.jsonl.gz"
    proc = cli("-q", "export", str(sm_text.out), "--format", "jsonl", "-o", str(target),
               check=True)
    n = len(sm_text.result.alignment)
    assert proc.stdout.strip() == f"{n} pairs → {target}"
    rows = [json.loads(x) for x in gzip.decompress(target.read_bytes()).splitlines()]
    assert [r["src_id"] for r in rows] == sm_text.result.alignment.src.tolist()


def test_default_output_is_beside_the_bitext(stopes_text: TextRun, tmp_path: Path):
    folder = tmp_path / "run"
    shutil.copytree(stopes_text.out, folder, ignore=shutil.ignore_patterns("work"))
    cli("-q", "export", str(folder), check=True)
    bitext = next(folder.glob("mine.*/*.bitext.tsv.gz"))  # stopes' layout: mine.<version>/
    assert bitext.with_name(bitext.name.replace(".bitext.tsv.gz", ".parquet")).is_file()


def test_folder_without_run_json_is_exit_2(sm_text: TextRun, tmp_path: Path):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(sm_text.out, unfinished, ignore=shutil.ignore_patterns("work"))
    (unfinished / "run.json").unlink()
    proc = cli("export", str(unfinished))
    assert proc.returncode == 2
    assert f"error: {unfinished}: no run.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(unfinished.glob("*.parquet")) == []
    proc = cli("export", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "not a folder" in proc.stderr


def test_lhotse_of_text_run_is_exit_2(sm_text: TextRun, tmp_path: Path):
    proc = cli("export", str(sm_text.out), "--format", "lhotse", "-o", str(tmp_path / "m"))
    assert proc.returncode == 2
    assert "text–text run" in proc.stderr and "--format parquet" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_embed_needs_parquet(sm_text: TextRun):
    proc = cli("export", str(sm_text.out), "--format", "jsonl", "--audio", "embed")
    assert proc.returncode == 2 and "--audio embed needs --format parquet" in proc.stderr
