"""Pair selection: per-query candidates of both directions → mined pairs (no I/O).

Retrieval combines the two directions: ``fwd``, ``bwd``, ``union``, ``intersect`` or ``max``
(greedy 1:1 over the score-sorted union, LASER's default). Every ordering here is total —
(-score, src, tgt) — so results never depend on FAISS's order among ties.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .margin import score_candidates
from .types import BOTH, BWD, FWD, Alignment, Neighbours

Retrieval = Literal["fwd", "bwd", "union", "intersect", "max"]
RETRIEVALS: tuple[str, ...] = ("fwd", "bwd", "union", "intersect", "max")


def _sorted(al: Alignment) -> Alignment:
    order = np.lexsort((al.tgt, al.src, -al.scores))
    return al.take(order)


def _merge_directions(fwd: Alignment, bwd: Alignment) -> Alignment:
    """Concatenate both directions; a pair proposed by both keeps one row marked BOTH."""
    both = Alignment.concat(fwd, bwd)
    if len(both) == 0:
        return both
    # group rows by pair (best score first inside a group) and keep one row per pair
    order = np.lexsort((-both.scores, both.tgt, both.src))
    s, t = both.src[order], both.tgt[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (s[1:] != s[:-1]) | (t[1:] != t[:-1])
    group = np.cumsum(first) - 1
    dirs = both.direction[order]
    seen_fwd = np.zeros(group[-1] + 1, dtype=bool)
    seen_bwd = np.zeros(group[-1] + 1, dtype=bool)
    np.logical_or.at(seen_fwd, group, dirs == FWD)
    np.logical_or.at(seen_bwd, group, dirs == BWD)
    keep = order[first]
    direction = np.where(seen_fwd & seen_bwd, BOTH, both.direction[keep]).astype(np.int8)
    return _sorted(Alignment(both.scores[keep], both.src[keep], both.tgt[keep], direction))


def _greedy_one_to_one(al: Alignment) -> Alignment:
    """Walk pairs by decreasing score; keep a pair only if neither side is used yet (LASER).

    Vectorised in rounds: a pending pair that is the first pending one with its source and
    with its target has nothing left before it to block it, so it is kept, and every pending
    pair sharing a side with a kept one is dropped (it comes later, so it is blocked). When
    a round settles few pairs (long chains), the rest is walked one by one."""
    keep = np.zeros(len(al), dtype=bool)
    pending = np.arange(len(al))
    used_src = np.zeros(int(al.src.max(initial=-1)) + 1, dtype=bool)
    used_tgt = np.zeros(int(al.tgt.max(initial=-1)) + 1, dtype=bool)
    while len(pending) > 64:
        s, t = al.src[pending], al.tgt[pending]
        winners = pending[_first_of_each(s) & _first_of_each(t)]
        keep[winners] = True
        used_src[al.src[winners]] = True
        used_tgt[al.tgt[winners]] = True
        pending = pending[~(used_src[s] | used_tgt[t])]
        if len(winners) < 64:
            break
    for i, s_, t_ in zip(pending.tolist(), al.src[pending].tolist(), al.tgt[pending].tolist()):
        if not (used_src[s_] or used_tgt[t_]):
            used_src[s_] = used_tgt[t_] = True
            keep[i] = True
    return al.take(np.flatnonzero(keep))


def _first_of_each(values: np.ndarray) -> np.ndarray:
    """Mask of the first occurrence of each distinct value."""
    first = np.zeros(len(values), dtype=bool)
    first[np.unique(values, return_index=True)[1]] = True
    return first


def select_pairs(
    fwd_score: np.ndarray, fwd_tgt: np.ndarray, bwd_score: np.ndarray, bwd_src: np.ndarray,
    retrieval: Retrieval, threshold: float = -np.inf, max_score: float = np.inf,
    dedup: bool = True,
) -> Alignment:
    """Combine per-query candidates of both directions into mined pairs.

    Args:
        fwd_score, fwd_tgt: (n,) best candidate score and target id of each source row.
        bwd_score, bwd_src: (m,) best candidate score and source id of each target row.
        retrieval: how the two directions combine (see module doc).
        threshold, max_score: keep pairs with ``threshold <= score <= max_score``.
        dedup: with ``union``, a pair found in both directions is written once (stopes writes
            it twice; its preset sets ``dedup=False``).

    Returns:
        :class:`Alignment` sorted by (-score, src, tgt).
    """
    if retrieval not in RETRIEVALS:
        raise ValueError(f"unknown retrieval {retrieval!r}; choose one of {RETRIEVALS}")
    n, m = len(fwd_score), len(bwd_score)
    fwd = Alignment(fwd_score.astype(np.float32), np.arange(n, dtype=np.int64),
                    fwd_tgt.astype(np.int64), np.full(n, FWD, np.int8))
    bwd = Alignment(bwd_score.astype(np.float32), bwd_src.astype(np.int64),
                    np.arange(m, dtype=np.int64), np.full(m, BWD, np.int8))
    # drop empty candidates (an approximate index that returned nothing)
    fwd = fwd.take(np.flatnonzero((fwd.tgt >= 0) & np.isfinite(fwd.scores)))
    bwd = bwd.take(np.flatnonzero((bwd.src >= 0) & np.isfinite(bwd.scores)))

    if retrieval == "fwd":
        al = _sorted(fwd)
    elif retrieval == "bwd":
        al = _sorted(bwd)
    elif retrieval == "union" and not dedup:
        al = _sorted(Alignment.concat(fwd, bwd))
    else:
        merged = _merge_directions(fwd, bwd)
        if retrieval == "intersect":
            al = merged.take(np.flatnonzero(merged.direction == BOTH))
        elif retrieval == "max":
            al = _greedy_one_to_one(merged)
        else:
            al = merged
    inside = (al.scores >= threshold) & (al.scores <= max_score)
    return al.take(np.flatnonzero(inside))


def mine_neighbours(fwd: Neighbours, bwd: Neighbours, mine: Any) -> Alignment:
    """Margin-score both directions and select pairs with a ``MineConfig`` (ids as in the
    neighbour lists). The one place the pipeline, the in-memory API and the benchmark mine."""
    return mine_candidates(fwd, bwd, mine)[0]


def mine_candidates(fwd: Neighbours, bwd: Neighbours, mine: Any
                    ) -> tuple[Alignment, tuple[np.ndarray, ...]]:
    """:func:`mine_neighbours`, and every query's scored candidate before the threshold:
    ``(fwd_score (n,), fwd_tgt (n,), bwd_score (m,), bwd_src (m,))`` (what evaluation below
    the run's threshold needs, without mining again)."""
    cands = score_candidates(fwd, bwd, mine)
    return select_candidates(cands, mine), cands


def select_candidates(cands: tuple[np.ndarray, ...], mine: Any) -> Alignment:
    """The pairs ``mine``'s retrieval rule and threshold window keep of every query's scored
    candidate ``(fwd_score, fwd_tgt, bwd_score, bwd_src)`` (as :func:`select_pairs`)."""
    f_score, f_tgt, b_score, b_src = cands
    mx = mine.max_score if mine.max_score is not None else np.inf
    return select_pairs(f_score, f_tgt, b_score, b_src, mine.retrieval,
                        threshold=mine.threshold, max_score=mx, dedup=mine.dedup)
