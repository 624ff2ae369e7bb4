"""Margin scoring and pair selection (arrays in, arrays out, no I/O).

For a candidate pair (x, y) with cosine ``cos(x, y)`` and neighbourhood averages
``m_x`` (mean cosine of x to its k nearest y) and ``m_y`` (mean cosine of y to its k nearest x),
following Artetxe & Schwenk (2019):

* ``ratio``:    cos / ((m_x + m_y) / 2)
* ``distance``: cos - (m_x + m_y) / 2
* ``absolute``: cos

Candidates per query: ``best`` takes the neighbour with the best margin among its k (LASER),
``nearest`` takes the nearest neighbour (stopes). Retrieval combines the two directions:
``fwd``, ``bwd``, ``union``, ``intersect`` or ``max`` (greedy 1:1 over the score-sorted union,
LASER's default). Every ordering here is total — (-score, src, tgt) — so results never depend
on FAISS's order among ties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .knn import Neighbours

Margin = Literal["ratio", "distance", "absolute"]
Candidate = Literal["best", "nearest"]
Retrieval = Literal["fwd", "bwd", "union", "intersect", "max"]

MARGINS: tuple[str, ...] = ("ratio", "distance", "absolute")
CANDIDATES: tuple[str, ...] = ("best", "nearest")
RETRIEVALS: tuple[str, ...] = ("fwd", "bwd", "union", "intersect", "max")

#: Direction codes stored in align.npz and written (as names) to bimeta.
FWD, BWD, BOTH = 0, 1, 2
DIRECTION_NAMES = ("src2tgt", "tgt2src", "both")


@dataclass(frozen=True)
class Alignment:
    """Mined pairs, sorted by (-score, src, tgt).

    scores: (p,) float32 margin scores; src, tgt: (p,) int64 ids; direction: (p,) int8
    (:data:`FWD`, :data:`BWD` or :data:`BOTH` when both directions proposed the pair).
    """

    scores: np.ndarray
    src: np.ndarray
    tgt: np.ndarray
    direction: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, idx: np.ndarray) -> "Alignment":
        return Alignment(self.scores[idx], self.src[idx], self.tgt[idx], self.direction[idx])


def neighbourhood_mean(nb: Neighbours, k: int | None = None) -> np.ndarray:
    """Mean cosine of each query to its ``k`` nearest neighbours (all columns when None).

    Empty slots (id -1, from an approximate index that found fewer) are left out of the mean.
    Returns (n,) float32.
    """
    sims, ids = (nb.sims, nb.ids) if k is None else (nb.sims[:, :k], nb.ids[:, :k])
    valid = ids >= 0
    total = np.where(valid, sims, 0).sum(axis=1, dtype=np.float64)
    count = np.maximum(valid.sum(axis=1), 1)
    return (total / count).astype(np.float32)


def margin_scores(nb: Neighbours, mean_q: np.ndarray, mean_other: np.ndarray,
                  margin: Margin) -> np.ndarray:
    """Margin score of every (query, neighbour) cell. Returns (n, k) float32; empty slots -inf.

    mean_q: (n,) neighbourhood means of the queries; mean_other: means of the searched side.
    """
    ids = np.where(nb.ids >= 0, nb.ids, 0)
    if margin == "absolute":
        scores = nb.sims.astype(np.float32, copy=True)
    else:
        avg = (mean_q[:, None] + mean_other[ids]) / 2
        if margin == "ratio":
            with np.errstate(divide="ignore", invalid="ignore"):
                scores = (nb.sims / avg).astype(np.float32)
        elif margin == "distance":
            scores = (nb.sims - avg).astype(np.float32)
        else:
            raise ValueError(f"unknown margin {margin!r}; choose one of {MARGINS}")
    scores[nb.ids < 0] = -np.inf
    return scores


def pick_candidates(nb: Neighbours, scores: np.ndarray, candidate: Candidate
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One candidate per query: its (score, neighbour id), both (n,).

    ``best``: highest margin among the k neighbours; ``nearest``: highest cosine. Ties go to
    the smaller neighbour id, so the choice does not depend on the kNN library's tie order.
    """
    if candidate not in CANDIDATES:
        raise ValueError(f"unknown candidate rule {candidate!r}; choose one of {CANDIDATES}")
    key = scores if candidate == "best" else nb.sims
    # lexsort sorts by the last key first: largest key, then smallest id
    col = np.lexsort((nb.ids, -key), axis=1)[:, 0]
    rows = np.arange(len(col))
    return scores[rows, col], nb.ids[rows, col]


def _sorted(al: Alignment) -> Alignment:
    order = np.lexsort((al.tgt, al.src, -al.scores))
    return al.take(order)


def _merge_directions(fwd: Alignment, bwd: Alignment) -> Alignment:
    """Concatenate both directions; a pair proposed by both keeps one row marked BOTH."""
    both = Alignment(*(np.concatenate([a, b]) for a, b in zip(
        (fwd.scores, fwd.src, fwd.tgt, fwd.direction),
        (bwd.scores, bwd.src, bwd.tgt, bwd.direction))))
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
    """Walk pairs by decreasing score; keep a pair only if neither side is used yet (LASER)."""
    used_src: set[int] = set()
    used_tgt: set[int] = set()
    keep = []
    for i, (s, t) in enumerate(zip(al.src.tolist(), al.tgt.tolist())):
        if s not in used_src and t not in used_tgt:
            used_src.add(s)
            used_tgt.add(t)
            keep.append(i)
    return al.take(np.asarray(keep, dtype=np.int64))


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
        al = _sorted(Alignment(*(np.concatenate([a, b]) for a, b in zip(
            (fwd.scores, fwd.src, fwd.tgt, fwd.direction),
            (bwd.scores, bwd.src, bwd.tgt, bwd.direction)))))
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


def _kth_valid(nb: Neighbours, k: int | None) -> np.ndarray:
    """Similarity to the k-th neighbour (stopes' ``margin_norm: last``), or to the last one
    found when an approximate index returned fewer (empty slots are -1 / -inf)."""
    kk = min(k or nb.k, nb.k)
    last = np.maximum((nb.ids[:, :kk] >= 0).sum(axis=1) - 1, 0)
    return nb.sims[np.arange(len(last)), last].astype(np.float32)


def score_candidates(fwd: Neighbours, bwd: Neighbours, mine: Any) -> tuple[np.ndarray, ...]:
    """Margin-score both directions; returns (fwd_score, fwd_tgt, bwd_score, bwd_src)."""
    if mine.margin_norm == "last":
        mean_x, mean_y = _kth_valid(fwd, mine.k_mean), _kth_valid(bwd, mine.k_mean)
    else:
        mean_x, mean_y = neighbourhood_mean(fwd, mine.k_mean), neighbourhood_mean(bwd, mine.k_mean)
    fs = margin_scores(fwd, mean_x, mean_y, mine.margin)
    bs = margin_scores(bwd, mean_y, mean_x, mine.margin)
    f_score, f_tgt = pick_candidates(fwd, fs, mine.candidate)
    b_score, b_src = pick_candidates(bwd, bs, mine.candidate)
    return f_score, f_tgt, b_score, b_src


def mine_neighbours(fwd: Neighbours, bwd: Neighbours, mine: Any) -> Alignment:
    """Margin-score both directions and select pairs with a ``MineConfig`` (ids as in the
    neighbour lists). The one place the pipeline, the in-memory API and the benchmark mine."""
    f_score, f_tgt, b_score, b_src = score_candidates(fwd, bwd, mine)
    mx = mine.max_score if mine.max_score is not None else np.inf
    return select_pairs(f_score, f_tgt, b_score, b_src, mine.retrieval, threshold=mine.threshold,
                        max_score=mx, dedup=mine.dedup)
