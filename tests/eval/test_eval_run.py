"""``evaluate_run``: the sweep over a run's candidates against brute force — the pipeline
re-mining at each threshold — for every retrieval rule and both output layouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from eval_corpus import Mined

from speechmine.eval import Scores, read_gold_pairs, score_pairs
from speechmine.eval.run import (
    candidate_pairs,
    evaluate,
    evaluate_bitext,
    evaluate_run,
    load_candidates,
)
from speechmine.select import select_pairs
from speechmine.types import InputError

RULES = {
    "max": [],  # LASER's greedy 1:1, the default
    "union": ["mine.retrieval=union", "mine.dedup=false"],
    "intersect": ["mine.retrieval=intersect"],
    "fwd": ["mine.retrieval=fwd", "mine.candidate=nearest"],
    # stopes' layout; fp16 distances, nearest candidate, union without dedup, window
    # [1.04, 1.25] (above it: the best pairs here), text dedup (the duplicated lines)
    "stopes": ["mine.preset=stopes"],
    "stopes_wide": ["mine.preset=stopes", "mine.max_score=2.0"],
    "stopes_rule_speechmine_layout": ["mine.preset=stopes", "mine.max_score=2.0",
                                      "output.layout=speechmine"],
}


def _thresholds(result: object, run_t: float) -> list[float]:
    """Where to re-mine: the run's threshold, the best one, midpoints spread along the curve
    (below the run's threshold too), two scores exactly, and 0 (every candidate)."""
    t = result.curve.thresholds
    picks = [run_t, float(t[0]), float(t[len(t) // 3]), 0.0]
    if np.isfinite(result.best[0]):
        picks.append(result.best[0])
    for i in (len(t) // 4, len(t) // 2, (3 * len(t)) // 4, len(t) - 2):
        picks.append(float((t[i] + t[i + 1]) / 2))
    return picks


@pytest.mark.parametrize("rule", list(RULES))
def test_sweep_matches_re_mining(mined: Mined, rule: str) -> None:
    base = mined.mine(f"{rule}_base", RULES[rule])
    out = Path(base.outputs["run"]).parent
    result = evaluate_run(out, mined.gold_ids)
    assert result.swept == "candidates" and not result.notes
    assert result.curve.thresholds.size > 30  # a real curve, many distinct scores
    run_t = base.threshold
    # at the run's threshold: the output itself (the selected pairs, unless the outputs
    # stage dropped some: stopes' window and text dedup)
    al = base.alignment
    if "dedup_texts" not in result.rule and "max_score" not in " ".join(RULES[rule]):
        assert result.at_threshold == score_pairs(al.src, al.tgt, read_gold_pairs(
            mined.gold_ids).pairs)
    assert result.at(run_t) == result.at_threshold

    cands = load_candidates(base.outputs["candidates"])
    for i, t in enumerate(_thresholds(result, run_t)):
        again = mined.mine(f"{rule}_{i}", [*RULES[rule], f"mine_threshold={t!r}"])
        redo = evaluate_run(Path(again.outputs["run"]).parent, mined.gold_ids)
        assert redo.at_threshold == result.at(t), (rule, t)
        if rule in ("max", "union", "intersect", "fwd"):
            # the very pairs, not only their counts
            rule_ = result.rule or {}
            swept = candidate_pairs(cands, rule_["retrieval"], rule_["max_score"],
                                    rule_["dedup"])
            keep = swept.scores >= t
            np.testing.assert_array_equal(swept.src[keep], again.alignment.src)
            np.testing.assert_array_equal(swept.tgt[keep], again.alignment.tgt)
            np.testing.assert_array_equal(swept.scores[keep], again.alignment.scores)
    best_t, best = result.best
    if rule == "stopes":  # its window drops the pairs above 1.25, all the right ones here
        assert best_t == float("inf") and result.curve.f1.max() == 0
        return
    again = mined.mine(f"{rule}_best", [*RULES[rule], f"mine_threshold={best_t!r}"])
    assert evaluate_run(Path(again.outputs["run"]).parent, mined.gold_ids).at_threshold == best


@pytest.mark.parametrize("retrieval", ["max", "union", "intersect", "fwd", "bwd"])
def test_rule_with_threshold_is_rule_then_cut(mined: Mined, retrieval: str) -> None:
    """Brute force at every midpoint: the rule applied with a threshold keeps exactly the
    pairs of the unbounded rule that score ≥ it (what lets one sweep replace re-mining)."""
    base = mined.mine("cut_base")
    c = load_candidates(Path(base.outputs["candidates"]))
    swept = candidate_pairs(c, retrieval, None, True)
    scores = np.unique(swept.scores.astype(np.float64))
    pos = {int(g): i for i, g in enumerate(c["fwd_src"])}, \
        {int(g): i for i, g in enumerate(c["bwd_tgt"])}
    f_tgt = np.array([pos[1].get(int(g), -1) for g in c["fwd_tgt"]])
    b_src = np.array([pos[0].get(int(g), -1) for g in c["bwd_src"]])
    for t in [*((scores[1:] + scores[:-1]) / 2), *scores, -1.0, 99.0]:
        al = select_pairs(c["fwd_score"], f_tgt, c["bwd_score"], b_src, retrieval,
                          threshold=float(t))
        keep = swept.scores >= t
        assert c["fwd_src"][al.src].tolist() == swept.src[keep].tolist()
        assert c["bwd_tgt"][al.tgt].tolist() == swept.tgt[keep].tolist()


def test_text_gold_matches_the_bitext_at_every_threshold(mined: Mined) -> None:
    """A gold of sentence pairs: candidates' ids → input lines → text keys; at any threshold
    the same counts as the bitext re-mined there, read as texts (the duplicated lines make
    two ids one text)."""
    base = mined.mine("text_base")
    out = Path(base.outputs["run"]).parent
    by_text = evaluate_run(out, mined.gold_text)
    by_ids = evaluate_run(out, mined.gold_ids)
    assert by_text.gold.format == "text" and by_text.swept == "candidates"
    assert by_text.curve.gold == by_ids.curve.gold == 60
    for i, t in enumerate([by_text.best[0], 1.0, base.threshold]):
        again = mined.mine(f"text_{i}", [f"mine_threshold={t!r}"])
        rows = evaluate_bitext(again.outputs["bitext"], mined.gold_text)
        assert rows.at_threshold == by_text.at(t)
    # a bitext's curve covers its rows, whose best F1 cannot beat the candidates'
    rows = evaluate_bitext(base.outputs["bitext"], mined.gold_text)
    assert rows.swept == "bitext rows" and rows.at_threshold == by_text.at_threshold
    assert rows.best[1].f1 <= by_text.best[1].f1
    # a bitext and a gold of ids: the ids come from the align file next to it
    assert evaluate(base.outputs["bitext"], mined.gold_ids).at_threshold == \
        by_ids.at_threshold


def test_run_without_candidates_sweeps_its_pairs(mined: Mined, tmp_path: Path) -> None:
    base = mined.mine("old_base")
    out = tmp_path / "old"
    shutil.copytree(Path(base.outputs["run"]).parent, out, ignore=shutil.ignore_patterns("work"))
    (out / "en-fr.candidates.npz").unlink()
    full = evaluate_run(Path(base.outputs["run"]).parent, mined.gold_ids)
    old = evaluate_run(out, mined.gold_ids)  # a copied folder: paths follow run.json's folder
    assert old.swept == "mined pairs" and "no candidates file" in old.notes[0]
    assert old.at_threshold == full.at_threshold
    assert old.curve.thresholds.min() >= base.threshold
    for t in old.curve.thresholds:
        assert old.at(t) == full.at(t)


def test_at_uses_the_curve_points() -> None:
    from speechmine.eval import pr_curve
    from speechmine.eval.gold import Gold
    from speechmine.eval.run import EvalResult

    s = np.array([0.9, 0.8, 0.8, 0.5])
    a, b = np.array([0, 1, 2, 3]), np.array([0, 1, 9, 7])
    gold = np.array([[0, 0], [1, 1]])
    curve = pr_curve(s, a, b, gold)
    r = EvalResult("x", "bitext", Gold("ids", gold, "g"), None, Scores(4, 2, 2), curve,
                   (0.65, Scores(3, 2, 2)), "bitext rows", float32=False)
    assert r.at(1.0) == Scores(0, 2, 0)
    assert r.at(0.9) == Scores(1, 2, 1) and r.at(0.85) == Scores(1, 2, 1)
    assert r.at(0.8) == Scores(3, 2, 2) and r.at(0.65) == Scores(3, 2, 2)
    assert r.at(0.5) == r.at(-3) == Scores(4, 2, 2)


def test_thresholds_compare_in_float32_as_the_pipeline_does() -> None:
    """Runs keep float32 scores, and numpy compares them with mine_threshold in float32: a
    score equal to float32(1.1) is kept at threshold 1.1 (though below 1.1 in float64), and
    the best threshold between adjacent float32 scores is the upper one, not a midpoint that
    rounds onto the lower."""
    from speechmine.eval import best_threshold, pr_curve
    from speechmine.eval.gold import Gold
    from speechmine.eval.run import EvalResult
    from speechmine.select import select_pairs

    hi = np.float32(1.1)
    lo = np.nextafter(hi, np.float32(0))
    s32 = np.array([2.0, hi, lo], dtype=np.float32)
    # the pipeline's own selection at 1.1: the row scoring float32(1.1) is in
    al = select_pairs(s32, np.arange(3), np.zeros(0, np.float32), np.zeros(0, np.int64),
                      "fwd", threshold=1.1)
    assert al.src.tolist() == [0, 1]
    gold = np.array([[0, 0], [1, 1]])
    curve = pr_curve(s32, np.arange(3), np.arange(3), gold)
    t, best = best_threshold(curve)
    assert t == float(hi) and best == Scores(2, 2, 2)  # no midpoint survives float32
    assert (s32 >= t).tolist() == [True, True, False]
    r = EvalResult("x", "run", Gold("ids", gold, "g"), 1.1, Scores(2, 2, 2), curve,
                   (t, best), "candidates")
    assert r.at(1.1) == Scores(2, 2, 2) and r.at(t) == best


# ------------------------------------------------------------------------------ errors

def test_errors_name_the_file(mined: Mined, tmp_path: Path) -> None:
    base = mined.mine("err_base")
    out = Path(base.outputs["run"]).parent
    with pytest.raises(InputError, match="no such run folder or bitext file"):
        evaluate(tmp_path / "nope", mined.gold_ids)
    with pytest.raises(InputError, match=r"nope\.tsv: gold file not found"):
        evaluate(out, tmp_path / "nope.tsv")
    with pytest.raises(InputError, match="no run.json"):
        evaluate(tmp_path, mined.gold_ids)
    with pytest.raises(InputError, match=r"gold_text\.tsv:1: expected 'src_id<TAB>tgt_id'"):
        evaluate(out, mined.gold_text, "ids")
    bad = tmp_path / "copy"
    shutil.copytree(out, bad, ignore=shutil.ignore_patterns("work"))
    (bad / "en-fr.candidates.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"copy/en-fr\.candidates\.npz: unreadable"):
        evaluate(bad, mined.gold_ids)
    lone = tmp_path / "lone.bitext.tsv.gz"
    shutil.copy(base.outputs["bitext"], lone)
    with pytest.raises(InputError, match=r"lone\.bitext\.tsv\.gz: no align\.npz next to it"):
        evaluate(lone, mined.gold_ids)
    rows = tmp_path / "rows.tsv"
    rows.write_text("1.5\ta\tb\nhigh\tc\td\n")
    with pytest.raises(InputError, match=r"rows\.tsv:2: score 'high' is not a number"):
        evaluate(rows, mined.gold_text)
    rows.write_text("1.5\ta\n")
    with pytest.raises(InputError, match=r"rows\.tsv:1: expected score<TAB>src<TAB>tgt"):
        evaluate(rows, mined.gold_text)
