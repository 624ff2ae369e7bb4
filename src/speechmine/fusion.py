"""Encoder ensembles: several embedding spaces mined as one (arrays in, arrays out, no I/O).

An ensemble embeds both sides with each of its members (encoders ``e``, weights ``w_e``)
and fuses them by one of two rules (``mine.fusion``):

* ``margin_mean`` (default): each member searches its own space for every query's k
  nearest neighbours, as a single encoder would. A query's candidates are the union of its
  members' neighbours (at most E·k); each member scores every candidate with its own margin —
  the exact cosine in its space (recomputed from its stored embeddings: a candidate found by
  one member is usually not among another's k) over its own neighbourhood means (from its
  kNN) — and the fused score is ``Σ w_e · margin_e / Σ w_e``. Candidate choice (the best
  fused margin, or with ``candidate: nearest`` the best weighted mean cosine), retrieval
  and threshold then work as for one space (:func:`speechmine.select.select_candidates`).
  Each member keeps its own neighbourhood scale, so an encoder with compressed cosines (e5)
  and one with spread ones (USE) contribute margins of comparable size.
* ``concat``: each row's members' unit vectors, scaled by ``√(w_e / Σ w)``, side by side:
  again a unit vector, whose dot product with another is ``Σ w_e · cos_e / Σ w``, the
  weighted mean cosine. The result is mined as one space (index, kNN, margins unchanged):
  cheaper (one kNN) but the members' cosine scales are mixed before the margin is taken.

With one member both rules give that member's margins (margin_mean recomputes its cosines
exactly, so scores may differ from the kNN's in the last float32 bit).

Costs of ``margin_mean``: memory ``n × P`` for the pool (P ≤ E·k) per direction, plus one
batch of ``FUSE_BATCH_FLOATS`` gathered floats; time ``E × (n + m) × P × d`` multiply-adds,
small next to the kNN itself. Rows are gathered from the stored parts in increasing order
(memory maps are read forwards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .io.embeddings import l2_normalize
from .margin import margin_scores, neighbourhood_means, pick_candidates
from .types import Neighbours

Fusion = Literal["margin_mean", "concat"]
FUSIONS: tuple[str, ...] = ("margin_mean", "concat")
#: gathered candidate vectors held at once while scoring (floats: 64 MiB)
FUSE_BATCH_FLOATS = 1 << 24

__all__ = ["FUSIONS", "Rows", "Space", "candidate_pool", "concat_rows", "fused_candidates",
           "check_weights"]


def check_weights(weights: Sequence[float]) -> np.ndarray:
    """``weights`` as a (E,) float64 array, each finite and > 0 (ValueError otherwise)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError(f"ensemble weights must be finite numbers > 0, got {list(weights)}")
    return w


class Rows:
    """One collection's embedding rows stored as consecutive parts (arrays or read-only
    memory maps, float16 or float32): row ``i`` is row ``i - start`` of the part holding it.
    """

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        self.parts = list(parts)
        dims = {int(p.shape[1]) for p in self.parts}
        if len(dims) != 1:
            raise ValueError(f"parts of different widths {sorted(dims)}")
        self.dim = dims.pop()
        self.starts = np.concatenate(
            [[0], np.cumsum([len(p) for p in self.parts])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def take(self, ids: np.ndarray) -> np.ndarray:
        """(len(ids), d) float32: rows ``ids`` (any order, repeats allowed, all valid), each
        part's rows read in increasing order."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        part = np.searchsorted(self.starts, ids, side="right") - 1
        for p, mat in enumerate(self.parts):
            sel = np.flatnonzero(part == p)
            if len(sel):
                rows = ids[sel] - self.starts[p]
                order = np.argsort(rows, kind="stable")
                out[sel[order]] = mat[rows[order]]
        return out


@dataclass(frozen=True)
class Space:
    """One member of an ensemble: its embeddings of both sides, its kNN both ways, its weight.

    x: the sources (n, d_e); y: the targets (m, d_e), both unit rows; fwd: (n, k) each
    source's neighbours among ``y``; bwd: (m, k) each target's among ``x``.
    """

    x: Rows
    y: Rows
    fwd: Neighbours
    bwd: Neighbours
    weight: float = 1.0


def candidate_pool(nbs: Sequence[Neighbours]) -> np.ndarray:
    """(n, P) int64: each query's distinct neighbours over ``nbs`` (one per member, same n),
    ascending, then -1 padding; P is the most any query has."""
    ids = np.concatenate([nb.ids for nb in nbs], axis=1)
    big = np.iinfo(np.int64).max
    ids = np.sort(np.where(ids >= 0, ids, big), axis=1)
    if ids.shape[1] > 1:
        ids[:, 1:][ids[:, 1:] == ids[:, :-1]] = big  # repeats of the one before
        ids = np.sort(ids, axis=1)
    width = int((ids != big).sum(axis=1).max(initial=0))
    ids = ids[:, :max(width, 1)]
    return np.where(ids == big, -1, ids)


def fused_candidates(spaces: Sequence[Space], mine: Any) -> tuple[np.ndarray, ...]:
    """``margin_mean`` fusion (module doc) with ``mine``'s margin, neighbourhood and candidate
    rules: every query's best fused candidate, ``(fwd_score (n,), fwd_tgt (n,), bwd_score
    (m,), bwd_src (m,))`` as :func:`speechmine.margin.score_candidates` returns them."""
    if getattr(mine, "fp16_distances", False):
        raise ValueError("fp16_distances reproduces stopes' single-encoder arithmetic; an "
                         "ensemble scores in float32 (set fp16_distances false)")
    w = check_weights([s.weight for s in spaces])
    means = [neighbourhood_means(s.fwd, s.bwd, mine) for s in spaces]
    fwd = _direction([(s.x, s.y, s.fwd, mx, my) for s, (mx, my) in zip(spaces, means)], w, mine)
    bwd = _direction([(s.y, s.x, s.bwd, my, mx) for s, (mx, my) in zip(spaces, means)], w, mine)
    return (*fwd, *bwd)


def _direction(members: list[tuple[Rows, Rows, Neighbours, np.ndarray, np.ndarray]],
               w: np.ndarray, mine: Any) -> tuple[np.ndarray, np.ndarray]:
    """One direction: members as (queries, searched, neighbours, query means, searched
    means); returns each query's (score, candidate id)."""
    pool = candidate_pool([nb for _, _, nb, _, _ in members])
    n, width = pool.shape
    valid = pool >= 0
    score = np.zeros((n, width), dtype=np.float64)
    cos = np.zeros((n, width), dtype=np.float64)
    total = float(w.sum())
    for (queries, searched, _, mean_q, mean_o), weight in zip(members, w):
        batch = max(1, FUSE_BATCH_FLOATS // (width * searched.dim))
        for q0 in range(0, n, batch):
            q1 = min(n, q0 + batch)
            ids = pool[q0:q1]
            uniq, inv = np.unique(np.where(valid[q0:q1], ids, 0), return_inverse=True)
            vecs = searched.take(uniq)[inv.reshape(ids.shape)]  # (b, P, d)
            exact = np.einsum("qd,qkd->qk", queries.take(np.arange(q0, q1)), vecs)
            exact = exact.astype(np.float32)
            nb = Neighbours(exact, ids)
            m = margin_scores(nb, mean_q[q0:q1], mean_o, mine.margin)
            score[q0:q1] += weight * np.where(valid[q0:q1], m, 0)
            cos[q0:q1] += weight * np.where(valid[q0:q1], exact, 0)
    fused = np.where(valid, score / total, -np.inf).astype(np.float32)
    fused_cos = np.where(valid, cos / total, -np.inf).astype(np.float32)
    return pick_candidates(Neighbours(fused_cos, pool), fused, mine.candidate)


def concat_rows(blocks: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``concat`` fusion of one chunk of rows: (r, Σ d_e) float32, each member's rows
    (``blocks[e]``, (r, d_e)) L2-normalised and scaled by ``√(w_e / Σ w)``, side by side.
    A row's dot product with another is the weighted mean of the members' cosines."""
    w = check_weights(weights)
    rows = {len(b) for b in blocks}
    if len(rows) != 1 or len(blocks) != len(w):
        raise ValueError(f"one block of equal rows per weight, got {len(blocks)} blocks of "
                         f"{sorted(rows)} rows for {len(w)} weights")
    scale = np.sqrt(w / w.sum()).astype(np.float32)
    return np.concatenate([l2_normalize(b) * s for b, s in zip(blocks, scale)], axis=1)
