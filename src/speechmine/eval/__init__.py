"""Evaluation against gold pairs (BUCC-style precision / recall / F1).

* :mod:`.gold`: reading gold files (global ids or sentence pairs) into int64 keys;
* :mod:`.scoring`: pure functions — P/R/F1 at a threshold, sweeps, the P/R curve and the
  best threshold (midway between consecutive scores, as BUCC does);
* :mod:`.run`: a finished run (at its threshold, and at every threshold from its candidates)
  or a bitext file against gold: ``evaluate_run(output_dir, gold) -> EvalResult``;
* :mod:`.xsim`: xSIM / xSIM++ error rates of aligned embeddings (LASER's definition);
  :mod:`.xsim_inputs` embeds the files ``speechmine xsim`` is given;
* :mod:`.cli`: the ``eval`` and ``xsim`` commands.
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
from .run import EvalResult, candidate_pairs, evaluate, evaluate_bitext, evaluate_run
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
from .xsim import XsimResult, xsim, xsim_both

__all__ = ["GOLD_FORMATS", "EvalResult", "Gold", "PRCurve", "Scores", "XsimResult",
           "best_scores", "best_threshold", "candidate_pairs", "evaluate", "evaluate_bitext",
           "evaluate_run", "in_gold", "normalize_text", "pr_curve", "read_gold",
           "read_gold_pairs", "score_pairs", "scores_at", "sweep", "text_key", "text_keys",
           "xsim", "xsim_both"]
