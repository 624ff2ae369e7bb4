"""A slow, obviously correct reference for kNN + margin + selection (pure Python loops).

Neighbour order: decreasing similarity, ties by increasing id. Every other rule follows the
module doc of ``speechmine.margin``.
"""

from __future__ import annotations

import math

import numpy as np


def knn(sim: np.ndarray, k: int) -> tuple[list[list[float]], list[list[int]]]:
    """Top-k of each row of ``sim`` by (-value, id)."""
    sims, ids = [], []
    for row in sim.tolist():
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
        ids.append(order)
        sims.append([row[j] for j in order])
    return sims, ids


def margin(a: float, mx: float, my: float, kind: str) -> float:
    if kind == "absolute":
        return a
    avg = (mx + my) / 2
    if kind == "distance":
        return a - avg
    return a / avg if avg != 0 else math.copysign(math.inf, a)


def direction_candidates(sims, ids, mean_q, mean_o, kind, candidate):
    """[(score, neighbour)] per query row."""
    out = []
    for q, (row_s, row_i) in enumerate(zip(sims, ids)):
        cells = [(margin(s, mean_q[q], mean_o[j], kind), s, j) for s, j in zip(row_s, row_i)]
        if candidate == "best":
            score, _, j = min(cells, key=lambda c: (-c[0], c[2]))
        else:
            score, _, j = min(cells, key=lambda c: (-c[1], c[2]))
        out.append((score, j))
    return out


def mine(x: np.ndarray, y: np.ndarray, k: int, kind: str = "ratio", candidate: str = "best",
         retrieval: str = "max", threshold: float = -math.inf, max_score: float = math.inf,
         dedup: bool = True, k_mean: int | None = None) -> list[tuple[float, int, int, str]]:
    """Mined pairs (score, src, tgt, direction) sorted by (-score, src, tgt)."""
    s = (x.astype(np.float64) @ y.astype(np.float64).T).astype(np.float32)
    k_f, k_b = min(k, len(y)), min(k, len(x))
    fs, fi = knn(s, k_f)
    bs, bi = knn(s.T, k_b)
    km_f = k_f if k_mean is None else min(k_mean, k_f)
    km_b = k_b if k_mean is None else min(k_mean, k_b)
    mean_x = [float(np.float32(sum(r[:km_f]) / km_f)) for r in fs]
    mean_y = [float(np.float32(sum(r[:km_b]) / km_b)) for r in bs]
    fwd = [(sc, i, j, "src2tgt") for i, (sc, j) in
           enumerate(direction_candidates(fs, fi, mean_x, mean_y, kind, candidate))]
    bwd = [(sc, i, j, "tgt2src") for j, (sc, i) in
           enumerate(direction_candidates(bs, bi, mean_y, mean_x, kind, candidate))]

    def order(pairs):
        return sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))

    if retrieval == "fwd":
        pairs = order(fwd)
    elif retrieval == "bwd":
        pairs = order(bwd)
    elif retrieval == "union" and not dedup:
        pairs = order(fwd + bwd)
    else:
        merged: dict[tuple[int, int], list] = {}
        for sc, i, j, d in fwd + bwd:
            if (i, j) in merged:
                merged[(i, j)][0] = max(merged[(i, j)][0], sc)
                if merged[(i, j)][1] != d:
                    merged[(i, j)][1] = "both"
            else:
                merged[(i, j)] = [sc, d]
        pairs = order([(v[0], i, j, v[1]) for (i, j), v in merged.items()])
        if retrieval == "intersect":
            pairs = [p for p in pairs if p[3] == "both"]
        elif retrieval == "max":
            used_s, used_t, kept = set(), set(), []
            for p in pairs:
                if p[1] not in used_s and p[2] not in used_t:
                    used_s.add(p[1])
                    used_t.add(p[2])
                    kept.append(p)
            pairs = kept
    return [p for p in pairs if threshold <= p[0] <= max_score]
