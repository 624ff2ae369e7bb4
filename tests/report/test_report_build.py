"""``speechmine report`` without a browser: what the page holds, layouts, audio clips, errors."""

from __future__ import annotations

import gzip
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from runs import EN_XSS, FR_XSS, META_XSS

from speechmine.cli import main
from speechmine.eval import Scores
from speechmine.report import build_report, open_run


def _rows(page: Path) -> list[str]:
    return re.findall(r'<tr class="pair[^"]*".*?</tr>', page.read_text(), flags=re.S)


def test_cli_writes_the_page(text_run, tmp_path):
    res = CliRunner().invoke(main, ["report", str(text_run.out), "-o", str(tmp_path / "r"),
                                    "--gold", str(text_run.gold_ids)])
    assert res.exit_code == 0, res.output
    page = tmp_path / "r" / "index.html"
    assert f"report: {page}" in res.output
    assert "41 of 41 pairs shown" in res.output
    # the toy encoder pairs every number sentence: a known answer
    assert "best threshold" in res.output and "P=1.000 R=1.000 F1=1.000" in res.output
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert len(_rows(page)) == 41
    assert text.count("data:image/svg+xml;base64,") == 3  # histogram, P/R/F1, P-R curve
    assert "(41 correct of 41 mined, 41 gold)" in text
    assert not (tmp_path / "r" / "clips").exists()  # text sides: no audio folder


def test_gold_as_text_scores_like_gold_as_ids(text_run, tmp_path):
    by_ids = build_report(text_run.out, tmp_path / "a", gold_path=text_run.gold_ids)
    by_text = build_report(text_run.out, tmp_path / "b", gold_path=text_run.gold_text)
    assert by_ids.best is not None and by_text.best is not None
    # the same threshold: from align.npz's float32 scores, from the bitext's 6 decimals
    assert by_ids.best[0] == pytest.approx(by_text.best[0], abs=1e-6)
    assert by_ids.best[1] == by_text.best[1] == Scores(mined=41, gold=41, correct=41)
    # the gold column ticks every row in both
    for page in (by_ids.page, by_text.page):
        assert page.read_text().count('<td class="gold yes">') == 41


def test_a_wrong_gold_is_scored_as_wrong(text_run, tmp_path):
    lines = text_run.gold_ids.read_text().splitlines()
    # shift the target of the first 10 gold pairs: those 10 mined pairs become wrong
    bad = [f"{ln.split()[0]}\t{int(ln.split()[1]) + 1000}" for ln in lines[:10]] + lines[10:]
    gold = tmp_path / "gold.tsv"
    gold.write_text("\n".join(bad) + "\n")
    rep = build_report(text_run.out, tmp_path / "r", gold_path=gold)
    assert rep.best is not None
    assert rep.best[1] == Scores(mined=41, gold=41, correct=31)
    assert rep.page.read_text().count('<td class="gold no">') == 10


def test_hostile_text_is_escaped_in_the_file(text_run, tmp_path):
    page = build_report(text_run.out, tmp_path).page.read_text()
    for s in (EN_XSS, FR_XSS, META_XSS):
        assert html.escape(s, quote=True) in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert page.count("<script") == 1  # the filter only


def test_stopes_layout_reads_csv_quoting(text_run, tmp_path):
    run = open_run(text_run.stopes_out)
    assert run.layout == "stopes" and run.files["bitext"].parent.name == "mine.v1"
    rep = build_report(text_run.stopes_out, tmp_path, gold_path=text_run.gold_ids)
    page = rep.page.read_text()
    assert html.escape(EN_XSS) in page  # csv quotes undone: the sentence as mined
    assert rep.best is not None and rep.best[1] == Scores(mined=41, gold=41, correct=41)


def test_bands_cap_the_rows(text_run, tmp_path):
    rep = build_report(text_run.out, tmp_path, rows=5, seed=3)
    page = rep.page.read_text()
    assert rep.shown == len(_rows(rep.page)) == 15  # top, bottom, random (no gold: no around)
    assert re.findall(r'<section class="band" id="band-(\w+)"', page) == ["top", "bottom",
                                                                           "random"]
    assert "At most 5 pairs per band (--rows): 15 of the 41 mined pairs" in page
    scores = [float(s) for s in re.findall(r'data-score="([^"]+)"', page)]
    with gzip.open(open_run(text_run.out).files["bitext"], "rt") as fh:
        all_scores = sorted((float(line.split("\t")[0]) for line in fh), reverse=True)
    assert scores[:5] == all_scores[:5] and scores[5:10] == all_scores[-5:]
    # 38 pairs score 1.6, then 1.439, 1.439, 1.334: with 2 rows a band, the pairs around
    # 1.5 are the last 1.6 and the first 1.439 (shaded: below the threshold)
    around = build_report(text_run.out, tmp_path / "b", rows=2, around=1.5).page
    band = around.read_text().split('id="band-around"')[1].split("</section>")[0]
    assert "Around the threshold 1.5: 1 at or above it, 1 below" in band
    assert re.findall(r'<tr class="(pair[^"]*)" data-score="([^"]+)"', band) == [
        ("pair", "1.6"), ("pair below", "1.439092")]


def test_moved_run_folder_is_read_where_it_is(text_run, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(text_run.out, moved)
    run = open_run(moved)
    assert all(p.is_relative_to(moved) for p in run.files.values())
    assert build_report(moved).page == moved / "report" / "index.html"


@pytest.mark.slow  # mines the speech run (tiny SONAR): ~10 s once per session
def test_speech_clips_are_the_segments(speech_run, tmp_path):
    sf = pytest.importorskip("soundfile")
    rep = build_report(speech_run.out, tmp_path, gold_path=speech_run.gold)
    assert rep.pairs == 8 and rep.audio == 8  # each pair: one segment, the same on both sides
    assert rep.best is not None and rep.best[1] == Scores(mined=8, gold=8, correct=8)
    page = rep.page.read_text()
    srcs = re.findall(r'<audio controls preload="none" src="(clips/[0-9a-f]+\.flac)">', page)
    assert len(srcs) == 16 and srcs[0::2] == srcs[1::2]
    want = sorted(e - s for _, s, e in speech_run.segments[:8])  # samples at 16 kHz
    assert sorted(sf.info(str(tmp_path / s)).frames for s in set(srcs)) == want
    # each clip is the audio itself: the samples of one segment of the source files
    # (two segments here have the same length: match by content)
    sources = {}
    for name, start, end in speech_run.segments[:8]:
        wave, sr = sf.read(str(speech_run.root / name), dtype="float32")
        assert sr == 16000
        sources[name, start, end] = wave[start:end]
    matched = []
    for clip_name in sorted(set(srcs)):
        clip, sr = sf.read(str(tmp_path / clip_name), dtype="float32")
        assert sr == 16000
        matched += [k for k, w in sources.items()
                    if w.shape == clip.shape and np.abs(w - clip).max() <= 1 / 32768]
    assert sorted(matched) == sorted(sources)


@pytest.mark.slow  # mines the speech run (tiny SONAR): ~10 s once per session
def test_speech_in_stopes_layout_finds_audio_through_the_manifests(speech_run, tmp_path):
    rep = build_report(speech_run.stopes_out, tmp_path / "r")
    assert rep.audio == 8
    # without config.yaml the manifests' folder is unknown: relative paths are missing,
    # said in the rows, until --audio-root names the folder
    copy = tmp_path / "copy"
    shutil.copytree(speech_run.stopes_out, copy)
    (copy / "config.yaml").unlink()
    rep = build_report(copy, tmp_path / "r2")
    assert rep.audio == 0
    assert rep.page.read_text().count("audio file not found") == 16
    assert build_report(copy, tmp_path / "r3", audio_root=speech_run.root).audio == 8


@pytest.mark.parametrize("make, needle", [
    (lambda p: p / "nope", "no such folder"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
    (lambda p: p, "no run.json: not a finished speechmine run"),
    (lambda p: (p / "run.json").write_text("{oops") and p, "not a valid run.json"),
    (lambda p: (p / "run.json").write_text("{}") and p, "no 'outputs' with bitext"),
])
def test_errors_are_one_line_exit_2(tmp_path, make, needle):
    res = CliRunner().invoke(main, ["report", str(make(tmp_path))])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and needle in last and str(tmp_path) in last


def test_error_lists_runs_below_and_missing_files(text_run, tmp_path):
    shutil.copytree(text_run.out, tmp_path / "runs" / "a")
    res = CliRunner().invoke(main, ["report", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "runs inside: a (report one of them)" in res.stderr
    info = json.loads((tmp_path / "runs" / "a" / "run.json").read_text())
    Path(info["outputs"]["bimeta"].replace(str(text_run.out), str(tmp_path / "runs" / "a"))
         ).unlink()
    res = CliRunner().invoke(main, ["report", str(tmp_path / "runs" / "a")])
    assert res.exit_code == 2 and "bimeta file listed in" in res.stderr
    res = CliRunner().invoke(main, ["report", str(text_run.out), "--gold",
                                    str(tmp_path / "none.tsv")])
    assert res.exit_code == 2 and "gold file not found" in res.stderr


def test_without_matplotlib_the_error_says_which_extra(text_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    res = CliRunner().invoke(main, ["report", str(text_run.out), "-o", str(tmp_path)])
    assert res.exit_code == 2
    assert "pip install 'speechmine[report]'" in res.stderr


def test_core_cli_does_not_import_matplotlib():
    code = ("import sys, speechmine.cli; assert 'matplotlib' not in sys.modules, "
            "'matplotlib imported by the CLI'")
    subprocess.run([sys.executable, "-c", code], check=True)
