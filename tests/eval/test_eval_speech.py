"""Speech sides: ``eval`` with a gold of ids or of manifest lines, ``xsim`` on manifests.

The report tests' speech run: two manifests over the same synthetic audio (the tiny SONAR
speech encoder on both sides), so every segment's best match is itself.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import TESTS, write_manifest

from speechmine.cli import main
from speechmine.eval import evaluate_run

REPORT_RUNS = TESTS / "report" / "runs.py"


def _report_runs() -> ModuleType:
    """The report tests' finished runs (tests/report/runs.py): one definition of them."""
    spec = importlib.util.spec_from_file_location("report_runs", REPORT_RUNS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report's speech run (speechmine's and stopes' layout; 8 segments against the
    same 12 permuted) and golds of ids and of manifest lines."""
    pytest.importorskip("torch")
    pytest.importorskip("sentencepiece")
    pytest.importorskip("soundfile")
    run = _report_runs().mine_speech_run(tmp_path_factory.mktemp("speech_eval"))
    d, segs = run.root, run.segments
    lines = [f"{p} {s} {e} 0" for p, s, e in segs]  # manifest lines, tabs written as spaces
    (d / "gold_lines.tsv").write_text("".join(f"{lines[i]}\t{lines[i]}\n" for i in range(8)))
    return {"dir": d, "segs": segs, "run": run, "sonar": d / "sonar"}


@pytest.mark.slow  # mines a speech run with the tiny SONAR encoder (~10 s)
def test_eval_speech_gold_of_ids_and_of_manifest_lines(speech: dict[str, Any]) -> None:
    d, run = speech["dir"], speech["run"]
    for out in (run.out, run.stopes_out):
        by_ids = evaluate_run(out, run.gold)
        by_lines = evaluate_run(out, d / "gold_lines.tsv")
        assert by_lines.gold.format == "text" and by_ids.gold.format == "ids"
        assert by_ids.swept == by_lines.swept == "candidates" and not by_ids.notes
        for r in (by_ids, by_lines):
            s = r.at_threshold
            assert (s.correct, s.gold) == (8, 8)  # every segment found itself
            assert r.best[1].f1 == 1.0
        # manifest lines are distinct: the same curve either way
        assert by_ids.curve.mined.tolist() == by_lines.curve.mined.tolist()
        assert by_ids.curve.correct.tolist() == by_lines.curve.correct.tolist()


@pytest.mark.slow  # embeds speech with the tiny SONAR encoder
def test_xsim_on_manifests(speech: dict[str, Any]) -> None:
    d, segs = speech["dir"], speech["segs"]
    order = [1, 0, *range(2, len(segs))]  # the first two lines swapped
    write_manifest(d / "c.tsv", segs)
    write_manifest(d / "c_swapped.tsv", segs, order=order)
    model = f"model={speech['sonar'] / 'tiny_speech_encoder.pt'}"
    res = CliRunner().invoke(main, ["-q", "xsim", str(d / "c.tsv"), str(d / "c_swapped.tsv"),
                                    "--src-encoder", "sonar_speech", "--src-option", model,
                                    "--src-option", "device=cpu", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    fwd, bwd = doc["directions"]
    assert (fwd["errors"], bwd["errors"], fwd["n"]) == (2, 2, len(segs))
    # a preset's speech encoder; a segment past the end of its audio is an error naming it
    write_manifest(d / "bad.tsv", [*segs[:-1], (segs[-1][0], 0, 10**8)])
    res = CliRunner().invoke(main, ["-q", "xsim", str(d / "c.tsv"), str(d / "bad.tsv"),
                                    "--preset", str(d / "preset.yaml")])
    assert res.exit_code == 2 and f"{d / 'bad.tsv'}:{len(segs)}:" in res.output
