"""Scoring mined pairs against gold pairs: precision / recall / F1, curves, best threshold.

Pure functions over arrays, no I/O. A mined pair is ``(src, tgt)``: two int64 keys, global
ids (``align.npz`` ``src_ids``/``tgt_ids``) or text keys (:func:`speechmine.eval.gold.text_key`);
gold is a ``(g, 2)`` int64 array of the same kind. As in the BUCC shared task:

* a pair counts once however often it was mined (both directions, several shards): its score
  is its best score; gold pairs given twice count once;
* at threshold ``t`` the mined set is every pair with score ``≥ t``; precision = correct /
  mined, recall = correct / gold, F1 their harmonic mean (0 when both are 0);
* the best threshold is the one of highest F1, placed midway between the lowest score it
  keeps and the next lower score (BUCC's optimisation), so it does not sit on a data point
  (unless the two are adjacent float32 values: then the lowest score itself).
  Tied scores cannot be separated: the curve has one point per distinct score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: one row of a (n, 2) int64 pair array seen as a single sortable value (for unique/isin)
_PAIR = np.dtype([("s", "<i8"), ("t", "<i8")])


@dataclass(frozen=True)
class Scores:
    """Counts and rates of mined pairs against gold pairs."""

    mined: int
    gold: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.mined if self.mined else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        return (f"P={self.precision:.3f} R={self.recall:.3f} F1={self.f1:.3f} "
                f"({self.correct} correct of {self.mined} mined, {self.gold} gold)")


def _as_pairs(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """(n,) structured pair values of two (n,) int arrays."""
    src, tgt = np.asarray(src, dtype=np.int64).ravel(), np.asarray(tgt, dtype=np.int64).ravel()
    if src.shape != tgt.shape:
        raise ValueError(f"src and tgt differ in length: {src.shape[0]} != {tgt.shape[0]}")
    out = np.empty(src.shape[0], dtype=_PAIR)
    out["s"], out["t"] = src, tgt
    return out


def _gold_pairs(gold: np.ndarray) -> np.ndarray:
    """Unique structured gold pairs of a (g, 2) array."""
    gold = np.asarray(gold, dtype=np.int64).reshape(-1, 2)
    return np.unique(_as_pairs(gold[:, 0], gold[:, 1]))


def best_scores(scores: np.ndarray, src: np.ndarray, tgt: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Duplicate pairs collapsed: ``(best score (m,) float64, pairs (m,) structured)``."""
    pairs = _as_pairs(src, tgt)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.shape != pairs.shape:
        raise ValueError(f"scores and pairs differ in length: {scores.shape[0]} != "
                         f"{pairs.shape[0]}")
    uniq, inv = np.unique(pairs, return_inverse=True)
    best = np.full(uniq.shape[0], -np.inf)
    np.maximum.at(best, inv.ravel(), scores)
    return best, uniq


def in_gold(src: np.ndarray, tgt: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """(n,) bool: whether each mined pair (src, tgt: (n,)) is a gold pair (g, 2)."""
    return np.isin(_as_pairs(src, tgt), _gold_pairs(gold))


def score_pairs(src: np.ndarray, tgt: np.ndarray, gold: np.ndarray) -> Scores:
    """Score mined (src, tgt) id arrays against gold (g, 2); duplicates count once."""
    mined = np.unique(_as_pairs(src, tgt))
    ref = _gold_pairs(gold)
    return Scores(mined=int(mined.shape[0]), gold=int(ref.shape[0]),
                  correct=int(np.isin(mined, ref).sum()))


def scores_at(scores: np.ndarray, src: np.ndarray, tgt: np.ndarray, gold: np.ndarray,
              threshold: float) -> Scores:
    """:func:`score_pairs` of the pairs with score ``≥ threshold``."""
    keep = np.asarray(scores) >= threshold
    return score_pairs(np.asarray(src)[keep], np.asarray(tgt)[keep], gold)


def sweep(scores: np.ndarray, src: np.ndarray, tgt: np.ndarray, gold: np.ndarray,
          thresholds: np.ndarray) -> list[tuple[float, Scores]]:
    """Scores at each threshold (pairs with score ≥ t), for choosing a threshold."""
    return [(float(t), scores_at(scores, src, tgt, gold, float(t))) for t in thresholds]


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall at every distinct score of the mined pairs.

    Point ``i`` keeps the unique pairs with score ``≥ thresholds[i]``; thresholds (m,)
    float64 decrease, ``mined``/``correct`` (m,) int64 increase. A curve of no pairs has
    m = 0. Recall is over all gold pairs, also those never mined.
    """

    thresholds: np.ndarray
    mined: np.ndarray
    correct: np.ndarray
    gold: int

    @property
    def precision(self) -> np.ndarray:
        return self.correct / np.maximum(self.mined, 1)

    @property
    def recall(self) -> np.ndarray:
        return self.correct / max(self.gold, 1)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        total = p + r
        return np.divide(2 * p * r, total, out=np.zeros_like(total), where=total > 0)

    def at(self, i: int) -> Scores:
        """The counts of point ``i``."""
        return Scores(mined=int(self.mined[i]), gold=self.gold, correct=int(self.correct[i]))


def pr_curve(scores: np.ndarray, src: np.ndarray, tgt: np.ndarray, gold: np.ndarray) -> PRCurve:
    """The :class:`PRCurve` of mined pairs (scores, src, tgt: (n,)) against gold (g, 2).

    Cost: two sorts of n (unique pairs, then scores) and one of g.
    """
    best, pairs = best_scores(scores, src, tgt)
    ref = _gold_pairs(gold)
    hit = np.isin(pairs, ref)
    order = np.argsort(-best, kind="stable")
    best, hit = best[order], hit[order]
    cum_correct = np.cumsum(hit, dtype=np.int64)
    # the last pair of each run of equal scores closes a point of the curve
    last = np.flatnonzero(np.append(best[1:] != best[:-1], True)) if best.size else \
        np.zeros(0, dtype=np.int64)
    return PRCurve(thresholds=best[last], mined=(last + 1).astype(np.int64),
                   correct=cum_correct[last], gold=int(ref.shape[0]))


def best_threshold(curve: PRCurve) -> tuple[float, Scores]:
    """``(threshold, scores there)`` of highest F1, BUCC-style: midway between the lowest
    score kept and the next lower score of the curve (the lowest score itself when nothing
    scores lower). Among equal F1 the highest threshold (fewest pairs) wins. With no pair,
    or no correct pair, ``(inf, scores of nothing)``."""
    f1 = curve.f1
    if not f1.size or f1.max() <= 0:
        return float("inf"), Scores(mined=0, gold=curve.gold, correct=0)
    i = int(np.argmax(f1))
    t = float(curve.thresholds[i])
    if i + 1 < curve.thresholds.size:
        lower = float(curve.thresholds[i + 1])
        mid = (t + lower) / 2
        # adjacent values: the midpoint may round onto the lower score, which would keep it;
        # in float64, and in float32, where runs keep their scores and numpy compares a
        # float32 array with a Python float (mine_threshold) in float32
        if mid > lower and np.float32(mid) > np.float32(lower):
            t = mid
    return t, curve.at(i)
