"""Choose a threshold from one mining run and a gold: every threshold's P/R without mining
again.

A run keeps every query's scored candidate (``<src>-<tgt>.candidates.npz``, see
:mod:`speechmine.pipeline.select`); :func:`speechmine.eval.evaluate_run` replays the run's
selection rule (and its clean-ups) on them with no threshold, which gives precision and
recall at every threshold (the P/R curve), and the threshold is chosen on it:

* highest F1 (BUCC's rule: the highest threshold among equal F1), or
* with a target precision, the lowest threshold whose precision reaches it (most recall).

Every threshold in ``(next lower score, lowest kept score]`` keeps the same pairs; the one
written is the shortest decimal in that interval closest to its middle (``1.104`` rather
than ``1.10438212``), so it has exactly the P/R measured. ``decimals`` rounds instead
(the P/R reported are then those of the rounded value).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig
from ..eval import Gold, PRCurve, Scores, read_gold_pairs
from ..eval.run import evaluate_run
from ..types import InputError

log = logging.getLogger(__name__)

__all__ = ["TuneError", "Choice", "TuneResult", "choose_threshold", "tune"]


class TuneError(InputError):
    """No threshold can be chosen (no gold pair mined, target precision out of reach)."""


@dataclass(frozen=True)
class Choice:
    """A threshold chosen on a P/R curve.

    ``threshold``: the value to use; ``scores``: P/R/F1 there; ``interval``: ``(lower,
    upper]``, every threshold in which keeps the same pairs as the best point (``lower`` is
    -inf below the lowest score); ``target``: what was optimised, in words.
    """

    threshold: float
    scores: Scores
    interval: tuple[float, float]
    target: str


@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune` measured: the choice, the curve, and the run's own threshold."""

    choice: Choice
    curve: PRCurve
    run_threshold: float
    at_run: Scores
    candidates: str  # the candidates file read


def _shortest_decimal(lower: float, upper: float) -> float:
    """The number with the fewest decimals in ``(lower, upper]``, the one closest to the
    middle among those; ``upper`` itself when none has at most 6 decimals."""
    if not math.isfinite(lower):
        lower = upper - 0.01  # below the lowest score: any threshold under it keeps all
    mid = (lower + upper) / 2
    for d in range(7):
        step = 10.0 ** -d
        lo, hi = math.floor(lower / step) + 1, math.floor(upper / step)
        values = [round(k * step, d) for k in range(lo - 1, hi + 2)]
        inside = [v for v in values if lower < v <= upper
                  and np.float32(v) > np.float32(lower)]  # scores compare in float32
        if inside:
            return min(inside, key=lambda v: (abs(v - mid), v))
    return upper


def _scores_at(curve: PRCurve, threshold: float) -> Scores:
    """P/R/F1 of the pairs with score ≥ ``threshold`` (scores compared in float32, as the
    pipeline compares them)."""
    kept = int(np.sum(curve.thresholds.astype(np.float32) >= np.float32(threshold)))
    return curve.at(kept - 1) if kept else Scores(mined=0, gold=curve.gold, correct=0)


def choose_threshold(curve: PRCurve, precision: float | None = None,
                     decimals: int | None = None) -> Choice:
    """The threshold of highest F1, or with ``precision`` the lowest one reaching it (see
    the module doc); ``decimals`` rounds it. Raises :class:`TuneError` when no gold pair
    was mined or the precision is out of reach."""
    if not curve.thresholds.size or int(curve.correct[-1]) == 0:
        raise TuneError("no mined candidate is a gold pair: is the gold for this data (ids are "
                        "0-based line numbers of each side, or give sentence pairs)?")
    if precision is None:
        i = int(np.argmax(curve.f1))  # the first maximum: the highest threshold
        target = "highest F1"
    else:
        ok = np.flatnonzero(curve.precision >= precision)
        if not ok.size:
            best = int(np.argmax(curve.precision))
            raise TuneError(f"no threshold reaches precision {precision:g}: the highest is "
                            f"{curve.precision[best]:.3f} at {curve.thresholds[best]:g} "
                            f"({curve.at(best)})")
        i = int(ok.max())
        target = f"lowest threshold with precision ≥ {precision:g}"
    upper = float(curve.thresholds[i])
    lower = float(curve.thresholds[i + 1]) if i + 1 < curve.thresholds.size else -math.inf
    if decimals is None:
        t = _shortest_decimal(lower, upper)
        return Choice(t, curve.at(i), (lower, upper), target)
    mid = upper if not math.isfinite(lower) else (lower + upper) / 2
    t = round(mid, decimals)
    return Choice(t, _scores_at(curve, t), (lower, upper), target + f", rounded to {decimals} "
                  "decimals")


def _check_ids(gold: Gold, counts: dict[str, Any]) -> None:
    """A gold of ids must fit the sides (else it is not this data's gold)."""
    for col, role in ((0, "src"), (1, "tgt")):
        total = int(counts[role]["lines"])
        if gold.pairs.size and int(gold.pairs[:, col].max()) >= total:
            raise TuneError(f"{gold.path}: {role} id {int(gold.pairs[:, col].max())} is past "
                            f"the end of the {role} side ({total} lines): is the gold for this "
                            "data?")


def tune(cfg: RunConfig, gold: str | Path, gold_format: str = "auto",
         precision: float | None = None, decimals: int | None = None) -> TuneResult:
    """Mine ``cfg`` (a small dev set: every stage is reused when it was mined before) and
    choose its threshold against ``gold`` (ids or sentence pairs; see
    :mod:`speechmine.eval.gold`)."""
    from ..pipeline import run

    g = read_gold_pairs(gold, gold_format)
    result = run(cfg)
    if g.format == "ids":
        _check_ids(g, result.counts)
    ev = evaluate_run(cfg.output_dir, g)
    if ev.swept != "candidates":  # pragma: no cover - every run keeps its candidates
        raise TuneError(f"{cfg.output_dir}: the run kept no candidates file")
    choice = choose_threshold(ev.curve, precision, decimals)
    return TuneResult(choice=choice, curve=ev.curve, run_threshold=cfg.mine.threshold,
                      at_run=ev.at(cfg.mine.threshold),
                      candidates=str(result.outputs["candidates"]))
