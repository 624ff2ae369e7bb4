"""k-nearest-neighbour search in both directions (arrays in, arrays out, no I/O).

Similarities are inner products of L2-normalised vectors, i.e. cosines in [-1, 1].

The exact path computes each tile of the similarity matrix ``S = X Yᵀ`` once and feeds it to
two FAISS heaps: rows give the forward (x→y) neighbours, columns the backward (y→x) ones.
Mining always needs both directions, so this halves the matrix products compared with two
separate ``IndexFlatIP`` searches, and the tile size bounds memory whatever N and M are.
"""

from __future__ import annotations

import logging
from typing import Any

import faiss
import numpy as np

from .types import Neighbours

log = logging.getLogger(__name__)

#: Default tile edge (rows × columns of S computed at once): 4096² float32 = 64 MiB, twice
#: (the tile and its transposed copy for the backward heaps).
DEFAULT_TILE = 4096


def clamp_k(k: int, size: int, what: str) -> int:
    """Clamp ``k`` to a collection of ``size`` items, warning when it had to shrink."""
    if size <= 0:
        raise ValueError(f"cannot search neighbours in an empty {what}")
    if k > size:
        log.warning("k=%d is larger than the %s (%d items): using k=%d", k, what, size, size)
        return size
    return k


def _topk_heap(nq: int, k: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """A FAISS min-heap array keeping, per query, the k largest values seen (and their ids)."""
    sims = np.empty((nq, k), dtype=np.float32)
    ids = np.empty((nq, k), dtype=np.int64)
    heaps = faiss.float_minheap_array_t()
    heaps.k, heaps.nh = k, nq
    heaps.val, heaps.ids = faiss.swig_ptr(sims), faiss.swig_ptr(ids)
    heaps.heapify()
    return heaps, sims, ids


def exact_knn_both(
    x: np.ndarray,
    y: np.ndarray,
    k_fwd: int,
    k_bwd: int,
    tile: int = DEFAULT_TILE,
    progress: Any = None,
) -> tuple[Neighbours, Neighbours]:
    """Exact kNN of x in y (forward) and of y in x (backward) from one pass over ``X Yᵀ``.

    Args:
        x: (n, d) float32, L2-normalised (a memmap is fine: read tile by tile).
        y: (m, d) float32, L2-normalised.
        k_fwd: neighbours of each x row among y (clamped to m).
        k_bwd: neighbours of each y row among x (clamped to n).
        tile: rows/columns of S computed at once; memory ≈ 2 × tile² × 4 bytes.
        progress: optional tqdm-like object, ``update(1)`` per tile.

    Returns:
        (forward, backward) :class:`Neighbours`; cost 2·n·m·d FLOP, memory O((n+m)·k + tile²).
    """
    n, m = len(x), len(y)
    k_fwd = clamp_k(k_fwd, m, "target collection")
    k_bwd = clamp_k(k_bwd, n, "source collection")
    fwd_heaps, fwd_sims, fwd_ids = _topk_heap(n, k_fwd)
    bwd_heaps, bwd_sims, bwd_ids = _topk_heap(m, k_bwd)
    for j0 in range(0, m, tile):
        yb = np.ascontiguousarray(y[j0 : j0 + tile], dtype=np.float32)
        for i0 in range(0, n, tile):
            xb = np.ascontiguousarray(x[i0 : i0 + tile], dtype=np.float32)
            s = xb @ yb.T  # (bx, by)
            fwd_heaps.addn(s.shape[1], faiss.swig_ptr(s), j0, i0, s.shape[0])
            st = np.ascontiguousarray(s.T)  # heaps read rows: the backward view needs a copy
            bwd_heaps.addn(st.shape[1], faiss.swig_ptr(st), i0, j0, st.shape[0])
            if progress is not None:
                progress.update(1)
    fwd_heaps.reorder()
    bwd_heaps.reorder()
    return Neighbours(fwd_sims, fwd_ids), Neighbours(bwd_sims, bwd_ids)


def index_knn(
    index: Any, queries: np.ndarray, k: int, batch: int = 16384, progress: Any = None
) -> Neighbours:
    """Search ``queries`` (n, d) float32 in a FAISS ``index`` in batches of ``batch`` rows.

    Returns sims (inner products) sorted in decreasing order and int64 ids. Empty slots
    (an approximate index may find fewer than k) are ``-1`` with similarity ``-inf``.
    """
    k = clamp_k(k, index.ntotal, "index")
    sims = np.empty((len(queries), k), dtype=np.float32)
    ids = np.empty((len(queries), k), dtype=np.int64)
    for i0 in range(0, len(queries), batch):
        q = np.ascontiguousarray(queries[i0 : i0 + batch], dtype=np.float32)
        sims[i0 : i0 + len(q)], ids[i0 : i0 + len(q)] = index.search(q, k)
        if progress is not None:
            progress.update(len(q))
    sims[ids < 0] = -np.inf  # FAISS marks empty slots with id -1 and a huge negative value
    return Neighbours(sims, ids)


def exact_knn_l2(x: np.ndarray, y: np.ndarray, k_fwd: int, k_bwd: int,
                 batch: int = 16384, progress: Any = None) -> tuple[Neighbours, Neighbours]:
    """Exact kNN both ways with FAISS ``IndexFlatL2``, stopes' search (its ``Flat`` indexes).

    Twice the matrix products of :func:`exact_knn_both`, but the squared distances are the
    float32 values FAISS computes (``‖x‖² + ‖y‖² - 2 x·y`` in its BLAS path), which stopes
    then rounds to float16: rounding ``2 - 2 cos`` instead would land on the neighbouring
    float16 value for a few distances. Used when ``mine.fp16_distances`` asks for stopes'
    arithmetic.

    Args:
        x: (n, d) float32, L2-normalised; y: (m, d) float32, L2-normalised.
        k_fwd, k_bwd: neighbours per x row among y, per y row among x (clamped).
        batch: queries per ``search`` call (a multiple of FAISS' own 4096-query block, so
            the values do not depend on it).
        progress: optional tqdm-like object, ``update(rows)`` per batch.

    Returns:
        (forward, backward) :class:`Neighbours`: ``sims = 1 - d / 2`` (cosines of unit
        vectors) and ``l2 = d``, both (rows, k) float32 sorted nearest first.
    """

    def search(base: np.ndarray, queries: np.ndarray, k: int) -> Neighbours:
        index = faiss.IndexFlatL2(base.shape[1])
        index.add(np.ascontiguousarray(base, dtype=np.float32))
        k = clamp_k(k, index.ntotal, "collection")
        d = np.empty((len(queries), k), dtype=np.float32)
        ids = np.empty((len(queries), k), dtype=np.int64)
        for i0 in range(0, len(queries), batch):
            q = np.ascontiguousarray(queries[i0 : i0 + batch], dtype=np.float32)
            d[i0 : i0 + len(q)], ids[i0 : i0 + len(q)] = index.search(q, k)
            if progress is not None:
                progress.update(len(q))
        sims = (np.float32(1.0) - d / np.float32(2.0)).astype(np.float32)
        return Neighbours(sims, ids, d)

    return search(y, x, k_fwd), search(x, y, k_bwd)
