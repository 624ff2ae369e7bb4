"""Choosing a threshold on a P/R curve: hand-computed cases and brute force."""

from __future__ import annotations

import numpy as np
import pytest

from speechmine.eval import pr_curve, scores_at
from speechmine.tune import TuneError, choose_threshold
from speechmine.tune.core import _shortest_decimal

# five mined pairs (i, i), scores falling; pair 2 and pair 4 are wrong; 4 gold pairs
SCORES = np.array([1.5, 1.4, 1.3, 1.2, 1.1])
SRC = np.arange(5)
TGT = np.array([0, 1, 9, 3, 9])
GOLD = np.array([[0, 0], [1, 1], [3, 3], [7, 7]])


def test_best_f1_by_hand() -> None:
    # kept at ≥1.5: 1/1 R .25; ≥1.4: 2/2 R .5 F1 .667; ≥1.3: 2/3; ≥1.2: 3/4 R .75 F1 .75;
    # ≥1.1: 3/5 F1 .667 → best at 1.2; any threshold in (1.1, 1.2] keeps the same four
    c = choose_threshold(pr_curve(SCORES, SRC, TGT, GOLD))
    assert c.threshold == 1.2 and c.interval == (1.1, 1.2)
    assert (c.scores.correct, c.scores.mined, c.scores.gold) == (3, 4, 4)
    assert c.scores.f1 == pytest.approx(0.75) and c.target == "highest F1"


@pytest.mark.parametrize("precision, threshold, kept", [
    (1.0, 1.4, 2),  # the lowest threshold with P = 1: two pairs
    (0.7, 1.2, 4),  # 3/4 = .75 ≥ .7; at 1.1, 3/5 = .6 < .7
    (0.6, 1.1, 5),  # everything: the lowest score itself
])
def test_target_precision_by_hand(precision: float, threshold: float, kept: int) -> None:
    c = choose_threshold(pr_curve(SCORES, SRC, TGT, GOLD), precision=precision)
    assert c.threshold == threshold and c.scores.mined == kept
    assert c.scores.precision >= precision


def test_unreachable_precision_and_no_gold_pair_are_errors() -> None:
    curve = pr_curve(np.array([1.5, 1.4]), np.array([0, 1]), np.array([5, 1]),
                     np.array([[1, 1]]))
    with pytest.raises(TuneError, match="no threshold reaches precision 0.9: the highest "
                                        "is 0.500"):
        choose_threshold(curve, precision=0.9)
    wrong = pr_curve(SCORES, SRC, TGT + 100, GOLD)
    with pytest.raises(TuneError, match="no mined candidate is a gold pair"):
        choose_threshold(wrong)


def test_rounding_to_decimals_rescores() -> None:
    scores = np.array([1.2345, 1.2301, 1.2302])
    curve = pr_curve(scores, np.arange(3), np.array([0, 1, 2]), np.array([[0, 0], [2, 2]]))
    # best: the top two (1.2345 and 1.2302: 2/2, R 1); 1.2301 is wrong
    exact = choose_threshold(curve)
    assert exact.scores.f1 == 1.0 and 1.2301 < exact.threshold <= 1.2302
    rounded = choose_threshold(curve, decimals=2)  # 1.23 keeps the wrong one too
    assert rounded.threshold == 1.23 and rounded.scores.mined == 3
    assert rounded.scores.f1 == pytest.approx(0.8)


@pytest.mark.parametrize("lower, upper, want", [
    (1.1031, 1.1052, 1.104), (1.0, 1.2, 1.1), (1.19, 1.25, 1.2), (0.95, 1.3, 1),
    (1.230648, 1.274545, 1.25), (1.10000001, 1.10000002, 1.10000002),
])
def test_shortest_decimal(lower: float, upper: float, want: float) -> None:
    got = _shortest_decimal(lower, upper)
    assert got == want and lower < got <= upper


def test_the_choice_against_brute_force() -> None:
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(5, 60))
        scores = np.round(rng.uniform(0.9, 1.4, n), 3).astype(np.float32)  # ties happen
        src = rng.integers(0, 30, n)
        tgt = np.where(rng.random(n) < 0.6, src, rng.integers(0, 30, n))  # 60 % right
        gold = np.stack([np.arange(30), np.arange(30)], axis=1)
        curve = pr_curve(scores, src, tgt, gold)
        if not curve.correct[-1]:
            continue
        f1 = {float(t): scores_at(scores, src, tgt, gold, float(t)).f1 for t in np.unique(scores)}
        best = max(f1.values())
        c = choose_threshold(curve)
        at = scores_at(scores, src, tgt, gold, c.threshold)  # what mining at it keeps
        assert at == c.scores and at.f1 == pytest.approx(best)
        p = choose_threshold(curve, precision=0.7) if curve.precision.max() >= 0.7 else None
        if p is not None:
            ok = [t for t in np.unique(scores)
                  if scores_at(scores, src, tgt, gold, float(t)).precision >= 0.7]
            assert scores_at(scores, src, tgt, gold, p.threshold) == \
                scores_at(scores, src, tgt, gold, float(min(ok)))
