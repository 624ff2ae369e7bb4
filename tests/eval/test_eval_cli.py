"""``speechmine eval``: printed table, --json, --plot, exit codes and error lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from eval_corpus import Mined

from speechmine.cli import main
from speechmine.eval import evaluate_run


def _run(*args: str) -> tuple[int, str]:
    """Exit code and stdout (with stderr when it failed: the error line)."""
    res = CliRunner().invoke(main, ["-q", "eval", *args])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout if res.exit_code == 0 else res.output


@pytest.fixture(scope="module")
def out(mined: Mined) -> Path:
    return Path(mined.mine("cli").outputs["run"]).parent


def test_table(mined: Mined, out: Path) -> None:
    code, text = _run(str(out), "--gold", str(mined.gold_ids))
    assert code == 0, text
    r = evaluate_run(out, mined.gold_ids)
    lines = text.splitlines()
    assert lines[0] == f"run: {out}"
    assert lines[1] == f"gold: {mined.gold_ids} (ids, 60 distinct pairs)"
    assert lines[2] == f"at the run's threshold 1.1: {r.at_threshold}"
    assert lines[3] == (f"best threshold {r.best[0]!r} (BUCC: midway between consecutive "
                        f"scores): {r.best[1]}")
    assert "re-selected with retrieval max" in lines[4]
    rows = lines[6:]
    assert 20 <= len(rows) <= 22  # 20 spread points, plus the best and the run's threshold
    first = rows[0].split()
    assert float(first[0]) == pytest.approx(r.curve.thresholds[0], abs=1e-6)
    assert [int(v) for v in first[1:3]] == [r.curve.mined[0], r.curve.correct[0]]


def test_json(mined: Mined, out: Path) -> None:
    code, text = _run(str(out), "--gold", str(mined.gold_text), "--json", "--points", "0")
    assert code == 0, text
    doc = json.loads(text)
    r = evaluate_run(out, mined.gold_text)
    assert doc["kind"] == "run" and doc["gold"]["format"] == "text"
    assert doc["threshold"] == 1.1
    s = r.at_threshold
    assert doc["at_threshold"] == {"precision": s.precision, "recall": s.recall, "f1": s.f1,
                                   "mined": s.mined, "correct": s.correct, "gold": 60}
    assert doc["best"]["threshold"] == r.best[0] and doc["best"]["f1"] == r.best[1].f1
    points = doc["curve"]["points"]
    assert doc["curve"]["swept"] == "candidates"
    assert len(points) == doc["curve"]["points_total"] == r.curve.thresholds.size
    assert [p["mined"] for p in points] == r.curve.mined.tolist()
    assert doc["rule"] == {"retrieval": "max", "max_score": None, "dedup": True}
    # a bitext file
    bitext = next(out.glob("*.bitext.tsv.gz"))
    code, text = _run(str(bitext), "--gold", str(mined.gold_text), "--json")
    doc2 = json.loads(text)
    assert doc2["kind"] == "bitext" and doc2["threshold"] is None
    assert doc2["at_threshold"] == doc["at_threshold"]


def test_plot(mined: Mined, out: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "plots" / "pr.png"
    code, text = _run(str(out), "--gold", str(mined.gold_ids), "--plot", str(png))
    assert code == 0, text
    assert text.rstrip().endswith(f"plot: {png}")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # two drawn panels
    svg = tmp_path / "pr.svg"
    assert _run(str(out), "--gold", str(mined.gold_ids), "--plot", str(svg), "--json")[0] == 0
    assert "<svg" in svg.read_text()[:500]
    code, text = _run(str(out), "--gold", str(mined.gold_ids), "--plot", str(tmp_path / "x.qq"))
    assert code == 2 and "x.qq: cannot write a plot in this format" in text


def test_errors(mined: Mined, out: Path, tmp_path: Path) -> None:
    code, text = _run(str(tmp_path / "nope"), "--gold", str(mined.gold_ids))
    assert code == 2 and f"error: {tmp_path / 'nope'}: no such run folder or bitext file" in text
    code, text = _run(str(out), "--gold", str(tmp_path / "g.tsv"))
    assert code == 2 and f"error: {tmp_path / 'g.tsv'}: gold file not found" in text
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t2\n3\n")
    code, text = _run(str(out), "--gold", str(bad))
    assert code == 2 and f"{bad}:2: expected 2 tab-separated fields" in text
    code, text = _run(str(tmp_path), "--gold", str(mined.gold_ids))
    assert code == 2 and "no run.json" in text
    code, text = _run(str(out))
    assert code == 2 and "Missing option '--gold'" in text
    code, text = _run("--help")
    assert code == 0 and "midway between two consecutive scores" in " ".join(text.split())
