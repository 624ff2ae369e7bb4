"""Margin scoring (arrays in, arrays out, no I/O).

For a candidate pair (x, y) with cosine ``cos(x, y)`` and neighbourhood averages
``m_x`` (mean cosine of x to its k nearest y) and ``m_y`` (mean cosine of y to its k nearest x),
following Artetxe & Schwenk (2019):

* ``ratio``:    cos / ((m_x + m_y) / 2)
* ``distance``: cos - (m_x + m_y) / 2
* ``absolute``: cos

Candidates per query: ``best`` takes the neighbour with the best margin among its k (LASER),
``nearest`` takes the nearest neighbour (stopes). How the two directions' candidates become
pairs is :mod:`speechmine.select`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .types import Neighbours

Margin = Literal["ratio", "distance", "absolute"]
Candidate = Literal["best", "nearest"]

MARGINS: tuple[str, ...] = ("ratio", "distance", "absolute")
CANDIDATES: tuple[str, ...] = ("best", "nearest")


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


def _kth_valid(nb: Neighbours, k: int | None) -> np.ndarray:
    """Similarity to the k-th neighbour (stopes' ``margin_norm: last``), or to the last one
    found when an approximate index returned fewer (empty slots are -1 / -inf)."""
    kk = min(k or nb.k, nb.k)
    last = np.maximum((nb.ids[:, :kk] >= 0).sum(axis=1) - 1, 0)
    return nb.sims[np.arange(len(last)), last].astype(np.float32)


def stopes_fp16(nb: Neighbours) -> Neighbours:
    """Similarities as stopes has them after storing squared L2 distances as float16
    (``save_dists_as_fp16``): ``cos' = 1 - fp16(d) / 2``, with ``d`` FAISS' float32 L2
    distances when the search gave them (``nb.l2``), else ``2 - 2 cos``. stopes scores
    ``2 - d``, twice this: ratios are the same to the bit (scaling by 2 is exact, and so are
    ``2 - d`` and ``1 - d / 2`` for a float16 ``d``). Empty slots stay -inf."""
    d = nb.l2 if nb.l2 is not None else (2.0 - 2.0 * nb.sims.astype(np.float64))
    d16 = np.asarray(d, dtype=np.float32).astype(np.float16).astype(np.float32)
    sims = (np.float32(1.0) - d16 / np.float32(2.0)).astype(np.float32)
    sims[nb.ids < 0] = -np.inf
    return Neighbours(sims, nb.ids, nb.l2)


def score_candidates(fwd: Neighbours, bwd: Neighbours, mine: Any) -> tuple[np.ndarray, ...]:
    """Margin-score both directions; returns (fwd_score, fwd_tgt, bwd_score, bwd_src).

    With ``mine.fp16_distances`` the arithmetic is stopes': similarities from float16
    distances (:func:`stopes_fp16`), neighbourhood means in float32 over the k columns, and
    the nearest candidate the first column, in the order the search returned (rounding makes
    ties that FAISS' float32 order resolves).
    """
    stopes = bool(getattr(mine, "fp16_distances", False))
    if stopes:
        fwd, bwd = stopes_fp16(fwd), stopes_fp16(bwd)
    mean_x, mean_y = neighbourhood_means(fwd, bwd, mine)
    fs = margin_scores(fwd, mean_x, mean_y, mine.margin)
    bs = margin_scores(bwd, mean_y, mean_x, mine.margin)
    if stopes and mine.candidate == "nearest":
        return (fs[:, 0], fwd.ids[:, 0], bs[:, 0], bwd.ids[:, 0])
    f_score, f_tgt = pick_candidates(fwd, fs, mine.candidate)
    b_score, b_src = pick_candidates(bwd, bs, mine.candidate)
    return f_score, f_tgt, b_score, b_src


def neighbourhood_means(fwd: Neighbours, bwd: Neighbours, mine: Any
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The neighbourhood terms of ``mine``'s margin: ``(mean_x (n,), mean_y (m,))`` float32,
    from the sources' neighbours among the targets (``fwd``) and back (``bwd``): the mean of
    the ``k_mean`` nearest (all k when None), or with ``margin_norm: last`` the k-th one;
    with ``fp16_distances`` (neighbours already rounded by :func:`stopes_fp16`) and all k,
    stopes' float32 mean."""
    if mine.margin_norm == "last":
        return _kth_valid(fwd, mine.k_mean), _kth_valid(bwd, mine.k_mean)
    if getattr(mine, "fp16_distances", False) and mine.k_mean is None:
        return _float32_mean(fwd), _float32_mean(bwd)
    return neighbourhood_mean(fwd, mine.k_mean), neighbourhood_mean(bwd, mine.k_mean)


def _float32_mean(nb: Neighbours) -> np.ndarray:
    """Mean of each row in float32, as numpy averages stopes' float32 distance rows (empty
    slots left out, as elsewhere here)."""
    if (nb.ids >= 0).all():
        return nb.sims.mean(axis=1, dtype=np.float32)
    return neighbourhood_mean(nb)
