"""k-nearest-neighbour search in both directions (arrays in, arrays out, no I/O).

Similarities are inner products of L2-normalised vectors, i.e. cosines in [-1, 1].

The exact path computes each tile of the similarity matrix ``S = X Yᵀ`` once and scans it
for both directions: rows give the forward (x→y) neighbours, columns the backward (y→x) ones.
Mining always needs both directions, so this halves the matrix products compared with two
separate ``IndexFlatIP`` searches, and the tile size bounds memory whatever N and M are. The
scan keeps per query a running top-k whose k-th value is the threshold a tile value must
beat, so it reads each tile about twice at memory speed and merges only a few values per
query: the search runs close to the speed of the product itself (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faiss
import numpy as np

from .types import Neighbours

log = logging.getLogger(__name__)

#: Default tile edge (rows × columns of S computed at once): 4096² float32 = 64 MiB.
DEFAULT_TILE = 4096

#: Rows of a tile one selection task scans: 2**19 floats (2 MiB, a core's L2) per task, so the
#: backward pass reads what the forward pass has just brought into cache.
_CHUNK_FLOATS = 1 << 19


def clamp_k(k: int, size: int, what: str) -> int:
    """Clamp ``k`` to a collection of ``size`` items, warning when it had to shrink."""
    if size <= 0:
        raise ValueError(f"cannot search neighbours in an empty {what}")
    if k > size:
        log.warning("k=%d is larger than the %s (%d items): using k=%d", k, what, size, size)
        return size
    return k


class _TopK:
    """Running top-k of ``n`` queries: ``sims`` (n, k) float32 sorted by (-similarity, id),
    ``ids`` (n, k) int64; unfilled slots are -inf / -1."""

    def __init__(self, n: int, k: int) -> None:
        self.k = k
        self.sims = np.full((n, k), -np.inf, dtype=np.float32)
        self.ids = np.full((n, k), -1, dtype=np.int64)

    def merge(self, q0: int, span: int, local: np.ndarray, ids: np.ndarray,
              vals: np.ndarray) -> None:
        """Merge candidates of queries ``q0 + local`` (``local`` in [0, span)): neighbour
        ``ids`` with similarities ``vals``, each query's in increasing id order and all
        above the ids it holds (tiles come in increasing id order), so one stable sort
        by (query, -similarity) orders ties by id."""
        if not len(local):
            return
        k = self.k
        held_s, held_i = self.sims[q0 : q0 + span], self.ids[q0 : q0 + span]
        q = np.concatenate([np.repeat(np.arange(span, dtype=np.int64), k), local])
        v = np.concatenate([held_s.ravel(), vals])
        i = np.concatenate([held_i.ravel(), ids])
        order = np.argsort((q << 32) | _descending(v), kind="stable")
        counts = np.bincount(local, minlength=span) + k
        take = order[(np.cumsum(counts) - counts)[:, None] + np.arange(k)]
        held_s[...] = v[take]
        held_i[...] = i[take]


def _descending(v: np.ndarray) -> np.ndarray:
    """int64 keys in [0, 2³²) that sort float32 ``v`` in decreasing order (equal values, -0
    and +0 included, get equal keys)."""
    bits = (v + np.float32(0)).view(np.int32)  # + 0 turns -0.0 into +0.0
    ascending = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # IEEE order as signed integers
    return 0x7FFFFFFF - ascending.astype(np.int64)


def _group_bound(s: np.ndarray, k: int, axis: int) -> np.ndarray:
    """Per query (row for ``axis=1``, column for ``axis=0``), a similarity that at least k of
    its values in ``s`` reach: the k-th largest of the maxima of disjoint groups of values,
    -inf when there are fewer than k groups.

    Groups are consecutive values along the query's axis, the layouts numpy reduces at memory
    speed: 16 or more per row (each row reduction costs a call), 64 or more per column.
    A query's top values rarely share a group, so the bound is close to its k-th largest
    value and few values pass it.
    """
    size = s.shape[axis]
    groups = min(size, max(16 if axis == 1 else 64, 4 * k))
    if groups < k:
        return np.full(s.shape[1 - axis], -np.inf, dtype=np.float32)
    length = size // groups
    # fmax skips NaN (a NaN vector's similarities); a group of NaN only vouches for nothing
    if axis == 1:
        maxima = np.fmax.reduce(s[:, : groups * length].reshape(len(s), groups, length), 2)
    else:
        maxima = np.fmax.reduce(s[: groups * length].reshape(groups, length, s.shape[1]), 1)
    maxima[np.isnan(maxima)] = -np.inf
    return np.partition(maxima, groups - k, axis=axis).take(groups - k, axis=axis)


def _candidates(s: np.ndarray, thr: np.ndarray, strict: bool, k: int, axis: int) -> np.ndarray:
    """Flat indices into ``s`` of the values that may enter the top-k of their query.

    ``thr``: per query a lower bound of its final k-th largest similarity (``axis=1``: one
    per row, ``axis=0``: one per column). ``strict``: the bound is the k-th value already
    held, from smaller ids, so an equal value can no longer win (ties go to smaller ids);
    otherwise equal values pass. When duplicate vectors make too many values pass, the
    bound is raised to the exact k-th largest of ``s`` and only the first k values equal to
    it (smallest ids) are kept, so the merge stays O(k) per query.
    """
    t = np.expand_dims(thr, axis)
    flat = np.flatnonzero(s > t if strict else s >= t)
    queries, size = s.shape[1 - axis], s.shape[axis]
    if len(flat) <= (k + 8) * queries or size <= k:
        return flat
    finite = np.where(np.isnan(s), -np.inf, s)  # NaN would sort as the largest
    kth = np.partition(finite, size - k, axis=axis).take(size - k, axis=axis)
    t = np.expand_dims(np.maximum(thr, kth), axis)
    tied = s == t
    first_k = np.cumsum(tied, axis=axis, dtype=np.int32) <= k
    return np.flatnonzero((s > t) | (tied & first_k))


def _scan_chunk(s: np.ndarray, fwd: tuple[np.ndarray | None, bool], bwd: tuple[np.ndarray, bool],
                k_fwd: int, k_bwd: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidates of one chunk of rows of a tile, both directions (flat indices into ``s``).
    ``fwd`` / ``bwd``: (threshold, strict) per row of the chunk / per column; a forward
    threshold of None asks for a bound computed here (the first tile of these rows)."""
    thr_f, strict_f = fwd
    if thr_f is None:
        thr_f = _group_bound(s, k_fwd, axis=1)
    return (_candidates(s, thr_f, strict_f, k_fwd, axis=1),
            _candidates(s, bwd[0], bwd[1], k_bwd, axis=0))


def _threads() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:  # not Linux
        return max(1, min(os.cpu_count() or 1, 8))


def exact_knn_both(
    x: np.ndarray,
    y: np.ndarray,
    k_fwd: int,
    k_bwd: int,
    tile: int = DEFAULT_TILE,
    progress: Any = None,
) -> tuple[Neighbours, Neighbours]:
    """Exact kNN of x in y (forward) and of y in x (backward) from one pass over ``X Yᵀ``.

    Each tile ``S = X[i:i+tile] Y[j:j+tile]ᵀ`` is computed once (BLAS, into one reused
    buffer) and scanned for both directions without a transposed copy: every query keeps
    its k best so far, whose k-th value is a threshold, and only tile values above it are
    collected (a flat ``nonzero`` per direction) and merged. On the first tile of a query
    the threshold comes from group maxima (:func:`_group_bound`). Scans run in threads over
    chunks of rows; for random data about (k + 1)·(1 + ln(size / tile)) values per query
    pass, so the search costs little more than the product.

    Ties: neighbours are ordered by decreasing similarity, then increasing id, and at the
    k-th place the smaller id is kept, whatever the tile. The tile can still change which
    neighbours tie: BLAS may round a dot product differently for other matrix shapes.

    Args:
        x: (n, d) float32, L2-normalised (a memmap is fine: read tile by tile).
        y: (m, d) float32, L2-normalised.
        k_fwd: neighbours of each x row among y (clamped to m).
        k_bwd: neighbours of each y row among x (clamped to n).
        tile: rows/columns of S computed at once; memory ≈ tile² × 4 bytes.
        progress: optional tqdm-like object, ``update(1)`` per tile.

    Returns:
        (forward, backward) :class:`Neighbours`; cost 2·n·m·d FLOP, memory O((n+m)·k + tile²).
        A query whose similarities are all NaN keeps empty slots (id -1, similarity -inf).
    """
    n, m = len(x), len(y)
    k_fwd = clamp_k(k_fwd, m, "target collection")
    k_bwd = clamp_k(k_bwd, n, "source collection")
    fwd, bwd = _TopK(n, k_fwd), _TopK(m, k_bwd)
    buf = np.empty(min(tile, n) * min(tile, m), dtype=np.float32)
    with ThreadPoolExecutor(_threads()) as pool:
        for j0 in range(0, m, tile):
            yb = np.ascontiguousarray(y[j0 : j0 + tile], dtype=np.float32)
            for i0 in range(0, n, tile):
                xb = np.ascontiguousarray(x[i0 : i0 + tile], dtype=np.float32)
                s = buf[: len(xb) * len(yb)].reshape(len(xb), len(yb))
                np.matmul(xb, yb.T, out=s)
                _scan_tile(pool, s, i0, j0, fwd, bwd)
                if progress is not None:
                    progress.update(1)
    return Neighbours(fwd.sims, fwd.ids), Neighbours(bwd.sims, bwd.ids)


def _scan_tile(pool: ThreadPoolExecutor, s: np.ndarray, i0: int, j0: int,
               fwd: _TopK, bwd: _TopK) -> None:
    """Scan tile ``s`` = S[i0:, j0:] for both directions and merge what passes.

    Tiles come in increasing i0 and j0 for every query, so the k values a query holds all
    have smaller ids than this tile's: its k-th value is a strict threshold."""
    rows, cols = s.shape
    if j0 == 0:  # first tile of these rows: bound from group maxima, in the chunk scans
        fwd_thr, fwd_strict = None, False
    else:
        fwd_thr, fwd_strict = fwd.sims[i0 : i0 + rows, -1], True
    if i0 == 0:  # first tile of these columns: one bound over all the tile's rows
        halves = [pool.submit(_group_bound, s[:, c0 : c0 + cols // 2 + 1], bwd.k, 0)
                  for c0 in range(0, cols, cols // 2 + 1)]
        bwd_thr, bwd_strict = np.concatenate([h.result() for h in halves]), False
    else:
        # contiguous: it is compared with every row of the tile
        bwd_thr, bwd_strict = np.ascontiguousarray(bwd.sims[j0 : j0 + cols, -1]), True
    step = max(1, _CHUNK_FLOATS // cols)
    starts = range(0, rows, step)
    jobs = [pool.submit(_scan_chunk, s[r0 : r0 + step],
                        (None if fwd_thr is None else fwd_thr[r0 : r0 + step], fwd_strict),
                        (bwd_thr, bwd_strict), fwd.k, bwd.k) for r0 in starts]
    found = [job.result() for job in jobs]
    flat = s.ravel()
    for which, direction in enumerate((fwd, bwd)):
        idx = np.concatenate([f[which] + r0 * cols for f, r0 in zip(found, starts)])
        r, c = np.divmod(idx, cols)
        if direction is fwd:
            fwd.merge(i0, rows, r, c + j0, flat[idx])
        else:
            bwd.merge(j0, cols, c, r + i0, flat[idx])


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
