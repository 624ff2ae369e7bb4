"""Evaluation against gold pairs (BUCC-style precision / recall / F1).

* :mod:`.gold`: reading gold files (global ids or sentence pairs) into int64 keys;
* :mod:`.scoring`: pure functions — P/R/F1 at a threshold, sweeps, the P/R curve and the
  best threshold (midway between consecutive scores, as BUCC does).
"""

from __future__ import annotations

from .gold import (
    GOLD_FORMATS,
    Gold,
    normalize_text,
    read_gold,
    read_gold_pairs,
    text_key,
    text_keys,
)
from .scoring import (
    PRCurve,
    Scores,
    best_scores,
    best_threshold,
    in_gold,
    pr_curve,
    score_pairs,
    scores_at,
    sweep,
)

__all__ = ["GOLD_FORMATS", "Gold", "PRCurve", "Scores", "best_scores", "best_threshold",
           "in_gold", "normalize_text", "pr_curve", "read_gold", "read_gold_pairs", "score_pairs",
           "scores_at", "sweep", "text_key", "text_keys"]
