"""Scoring functions against hand-computed P/R/F1 and a brute-force threshold search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from speechmine.eval import (
    Scores,
    best_scores,
    best_threshold,
    in_gold,
    pr_curve,
    score_pairs,
    scores_at,
    sweep,
)


def _arrays(rows: list[tuple[float, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s, a, b = zip(*rows) if rows else ((), (), ())
    return (np.asarray(s, dtype=np.float64), np.asarray(a, dtype=np.int64),
            np.asarray(b, dtype=np.int64))


GOLD = np.array([[0, 0], [1, 1], [3, 3], [4, 4]])
# scores 0.9 ✓, 0.8 ✓, 0.7 ✗, 0.6 ✓ against 4 gold pairs (one never mined)
SIMPLE = _arrays([(0.9, 0, 0), (0.8, 1, 1), (0.7, 2, 5), (0.6, 3, 3)])


def test_scores_at_thresholds_by_hand():
    s = scores_at(*SIMPLE, GOLD, 0.75)
    assert (s.mined, s.correct, s.gold) == (2, 2, 4)
    assert (s.precision, s.recall) == (1.0, 0.5)
    assert s.f1 == pytest.approx(2 / 3)
    s = scores_at(*SIMPLE, GOLD, 0.6)  # >=: the pair scoring exactly 0.6 is in
    assert (s.mined, s.correct) == (4, 3)
    assert s.precision == s.recall == s.f1 == 0.75
    s = scores_at(*SIMPLE, GOLD, 0.95)  # nothing kept: all rates 0, not a division error
    assert (s.mined, s.correct, s.precision, s.recall, s.f1) == (0, 0, 0.0, 0.0, 0.0)
    assert str(scores_at(*SIMPLE, GOLD, 0.6)).startswith("P=0.750 R=0.750 F1=0.750")


def test_curve_by_hand():
    c = pr_curve(*SIMPLE, GOLD)
    assert c.thresholds.tolist() == [0.9, 0.8, 0.7, 0.6]
    assert c.mined.tolist() == [1, 2, 3, 4]
    assert c.correct.tolist() == [1, 2, 2, 3]
    assert c.gold == 4
    np.testing.assert_allclose(c.precision, [1, 1, 2 / 3, 0.75])
    np.testing.assert_allclose(c.recall, [0.25, 0.5, 0.5, 0.75])
    np.testing.assert_allclose(c.f1, [0.4, 2 / 3, 4 / 7, 0.75])
    # best is the last point: nothing scores lower, the threshold is its own score
    t, s = best_threshold(c)
    assert t == 0.6 and s == Scores(mined=4, gold=4, correct=3)


def test_ties_are_one_point_and_the_threshold_never_splits_them():
    # the two 0.8 pairs, one right and one wrong, cannot be separated by any threshold:
    # a sweep over single pairs would claim F1 = 1 after the first 0.8 (P 2/2, R 2/2)
    rows = _arrays([(0.9, 0, 0), (0.8, 1, 1), (0.8, 2, 9), (0.5, 3, 7)])
    gold = np.array([[0, 0], [1, 1]])
    c = pr_curve(*rows, gold)
    assert c.thresholds.tolist() == [0.9, 0.8, 0.5]
    assert c.mined.tolist() == [1, 3, 4] and c.correct.tolist() == [1, 2, 2]
    np.testing.assert_allclose(c.f1, [2 / 3, 0.8, 2 / 3])
    t, s = best_threshold(c)
    assert t == pytest.approx(0.65)  # midway between 0.8 and the next lower score, 0.5
    assert s == Scores(mined=3, gold=2, correct=2)
    assert scores_at(*rows, gold, t) == s


def test_duplicates_count_once_at_their_best_score():
    # (0, 0) mined twice (say once per direction), gold lists (0, 0) twice
    rows = _arrays([(0.9, 0, 0), (0.7, 1, 2), (0.3, 0, 0)])
    gold = np.array([[0, 0], [0, 0], [1, 1]])
    assert score_pairs(rows[1], rows[2], gold) == Scores(mined=2, gold=2, correct=1)
    c = pr_curve(*rows, gold)
    assert c.thresholds.tolist() == [0.9, 0.7]  # no point at 0.3: that pair is already in
    assert c.mined.tolist() == [1, 2] and c.correct.tolist() == [1, 1]
    best, pairs = best_scores(*rows)
    assert dict(zip(pairs.tolist(), best.tolist())) == {(0, 0): 0.9, (1, 2): 0.7}
    t, s = best_threshold(c)
    assert t == pytest.approx(0.8) and s == Scores(mined=1, gold=2, correct=1)


def test_empty_inputs():
    c = pr_curve(*_arrays([]), GOLD)
    assert c.thresholds.size == 0 and c.gold == 4
    t, s = best_threshold(c)
    assert t == float("inf") and s == Scores(mined=0, gold=4, correct=0)
    # no correct pair at all: no threshold helps
    wrong = _arrays([(0.9, 7, 7), (0.8, 8, 8)])
    assert best_threshold(pr_curve(*wrong, GOLD))[0] == float("inf")
    # no gold: recall and F1 are 0
    s = score_pairs(SIMPLE[1], SIMPLE[2], np.zeros((0, 2), dtype=np.int64))
    assert (s.gold, s.correct, s.recall, s.f1) == (0, 0, 0.0, 0.0)


def test_in_gold_and_sweep_agree_with_scores_at():
    assert in_gold(SIMPLE[1], SIMPLE[2], GOLD).tolist() == [True, True, False, True]
    grid = np.array([0.95, 0.85, 0.65, 0.1])
    assert sweep(*SIMPLE, GOLD, grid) == [(t, scores_at(*SIMPLE, GOLD, t)) for t in grid]
    with pytest.raises(ValueError, match="differ in length"):
        score_pairs(np.arange(3), np.arange(2), GOLD)


def test_keys_use_all_64_bits():
    # text keys are full-range int64: pairs must not be packed into one int
    big = np.array([2**62 + 5, -(2**62) - 3], dtype=np.int64)
    gold = np.array([[big[0], big[1]]])
    assert in_gold(big[:1], big[1:], gold).tolist() == [True]
    assert in_gold(big[1:], big[:1], gold).tolist() == [False]


# ------------------------------------------------------------------------------ brute force

def _brute(rows: list[tuple[float, int, int]], gold: set[tuple[int, int]], t: float
           ) -> tuple[int, int, float]:
    """(mined, correct, F1) by sets, straight from the definition."""
    mined = {(a, b) for s, a, b in rows if s >= t}
    correct = len(mined & gold)
    p = correct / len(mined) if mined else 0.0
    r = correct / len(gold) if gold else 0.0
    return len(mined), correct, (2 * p * r / (p + r) if p + r else 0.0)


@pytest.mark.parametrize("seed", range(25))
def test_best_threshold_matches_brute_force(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    # scores on a coarse grid: many ties; ids from a small range: duplicate pairs
    rows = [(float(rng.integers(0, 12)) / 4, int(rng.integers(0, 15)), int(rng.integers(0, 15)))
            for _ in range(n)]
    gold = {(int(a), int(b)) for a, b in rng.integers(0, 15, size=(int(rng.integers(1, 30)), 2))}
    arrays = _arrays(rows)
    gold_arr = np.array(sorted(gold))
    curve = pr_curve(*arrays, gold_arr)

    best: dict[tuple[int, int], float] = {}
    for s, a, b in rows:
        best[a, b] = max(s, best.get((a, b), s))
    # a point per distinct score of a unique pair (its best: a duplicate's lower score
    # changes nothing)
    distinct = sorted(set(best.values()), reverse=True)
    assert curve.thresholds.tolist() == distinct
    for i, t in enumerate(distinct):  # every point of the curve
        m, c, _ = _brute(rows, gold, t)
        assert (curve.mined[i], curve.correct[i]) == (m, c)

    # candidates: every score, every midpoint, above and below everything
    raw = sorted({s for s, _, _ in rows})
    cands = set(raw) | {(a + b) / 2 for a, b in itertools.pairwise(raw)} | {99.0, -1.0}
    best_f1 = max(_brute(rows, gold, t)[2] for t in cands)
    t, s = best_threshold(curve)
    if best_f1 == 0:
        assert t == float("inf")
        return
    m, c, f1 = _brute(rows, gold, t)
    assert f1 == pytest.approx(best_f1) and s.f1 == pytest.approx(best_f1)
    assert (s.mined, s.correct) == (m, c)
    # midway: not on a score unless it is the lowest one; the highest of the best thresholds
    assert t not in distinct[:-1]
    higher = [x for x in cands if x > t and _brute(rows, gold, x)[2] == pytest.approx(best_f1)]
    assert not [x for x in higher if _brute(rows, gold, x)[:2] != (m, c)]


# ------------------------------------------------------------------------------ more by hand

def test_pair_in_both_directions_tied_with_others() -> None:
    # (0, 0) mined twice (0.9 one way, 0.7 the other), tied at 0.7 with a right and a wrong
    # pair; gold (4, 4) is never mined
    rows = _arrays([(0.9, 0, 0), (0.7, 0, 0), (0.7, 1, 1), (0.7, 2, 5), (0.4, 3, 3)])
    c = pr_curve(*rows, GOLD)
    assert c.thresholds.tolist() == [0.9, 0.7, 0.4]
    assert c.mined.tolist() == [1, 3, 4] and c.correct.tolist() == [1, 2, 3]
    np.testing.assert_allclose(c.precision, [1, 2 / 3, 3 / 4])
    np.testing.assert_allclose(c.recall, [1 / 4, 2 / 4, 3 / 4])
    np.testing.assert_allclose(c.f1, [2 / 5, 4 / 7, 3 / 4])
    assert best_threshold(c) == (0.4, Scores(mined=4, gold=4, correct=3))
    # at 0.7 both tied pairs come in together, and (0, 0) is one pair
    assert scores_at(*rows, GOLD, 0.7) == Scores(mined=3, gold=4, correct=2)


def test_best_at_the_top_is_placed_midway_below_it() -> None:
    rows = _arrays([(0.9, 0, 0), (0.5, 1, 2), (0.3, 2, 1)])
    c = pr_curve(*rows, np.array([[0, 0]]))
    np.testing.assert_allclose(c.f1, [1, 2 / 3, 1 / 2])
    t, s = best_threshold(c)
    assert t == pytest.approx(0.7) and s == Scores(mined=1, gold=1, correct=1)


def test_tie_at_the_top() -> None:
    rows = _arrays([(2.0, 0, 0), (2.0, 7, 7), (1.0, 1, 1)])
    c = pr_curve(*rows, np.array([[0, 0], [1, 1]]))
    assert c.mined.tolist() == [2, 3] and c.correct.tolist() == [1, 2]
    np.testing.assert_allclose(c.f1, [1 / 2, 4 / 5])
    assert best_threshold(c) == (1.0, Scores(mined=3, gold=2, correct=2))


def test_text_keys_make_duplicate_texts_one_pair() -> None:
    """A gold of sentence pairs: two mined pairs with the same texts (other ids) are one
    pair, and a gold pair given twice (whitespace aside) is one gold pair."""
    from speechmine.eval import text_keys

    src = text_keys(["the cat", "the  cat", "a dog"])
    tgt = text_keys(["le chat", "le chat", "un chien"])
    gold = np.stack([text_keys(["the cat", "the cat ", "a bird"]),
                     text_keys(["le chat", "le  chat", "un oiseau"])], axis=1)
    assert score_pairs(src, tgt, gold) == Scores(mined=2, gold=2, correct=1)
    c = pr_curve(np.array([0.9, 0.8, 0.5]), src, tgt, gold)
    assert c.thresholds.tolist() == [0.9, 0.5] and c.correct.tolist() == [1, 1]
