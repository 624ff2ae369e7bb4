"""Scoring mined pairs against gold alignments (BUCC-style precision / recall / F1)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


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


def read_gold(path: str | Path) -> np.ndarray:
    """Gold pairs ``src_id\\ttgt_id`` (0-based global ids), returned as (g, 2) int64."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            rows.append((int(parts[0]), int(parts[1])))
        except (ValueError, IndexError):
            raise ValueError(f"{path}:{lineno}: expected 'src_id<TAB>tgt_id', got {line!r}") \
                from None
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def score_pairs(src: np.ndarray, tgt: np.ndarray, gold: np.ndarray) -> Scores:
    """Score mined (src, tgt) id arrays against gold (g, 2); duplicates count once."""
    mined = set(zip(src.tolist(), tgt.tolist()))
    ref = set(map(tuple, gold.tolist()))
    return Scores(mined=len(mined), gold=len(ref), correct=len(mined & ref))


def sweep(scores: np.ndarray, src: np.ndarray, tgt: np.ndarray, gold: np.ndarray,
          thresholds: np.ndarray) -> list[tuple[float, Scores]]:
    """Scores at each threshold (pairs with score ≥ t), for choosing a threshold."""
    return [(float(t), score_pairs(src[scores >= t], tgt[scores >= t], gold)) for t in thresholds]
