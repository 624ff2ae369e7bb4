"""`speechmine demo`, as a user runs it: the F1 it prints is the F1 of the files it wrote,
scored against the bundled gold (and the figure the README states)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import cli

from speechmine.demo import DATA
from speechmine.eval import read_gold, score_pairs

pytestmark = pytest.mark.slow


def test_demo_prints_the_f1_of_its_outputs_against_the_gold(tmp_path: Path) -> None:
    proc = cli("demo", env={"SPEECHMINE_CACHE": str(tmp_path / "cache")}, timeout=900,
               check=True)
    out = tmp_path / "cache" / "demo"  # the default: speechmine's cache, said on stdout
    assert f"outputs in {out}" in proc.stdout
    m = re.search(r"against gold at threshold 1\.1: P=([\d.]+) R=([\d.]+) F1=([\d.]+) "
                  r"\((\d+) correct of (\d+) mined, (\d+) gold\)", proc.stdout)
    assert m, proc.stdout
    with np.load(out / "en-fr.TH-1.1.align.npz") as al:
        scores = score_pairs(al["src_ids"], al["tgt_ids"], read_gold(DATA / "demo" / "gold.tsv"))
    assert (scores.correct, scores.mined, scores.gold) == tuple(int(x) for x in m.groups()[3:])
    assert float(m.group(3)) == pytest.approx(scores.f1, abs=5e-4)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"F1 {float(m.group(3)):.3f}" in readme  # the README's figure is this run's
    assert not list(Path.cwd().glob("speechmine-demo*"))  # nothing left in the cwd
