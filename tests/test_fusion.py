"""Ensemble fusion (speechmine.fusion) against a slow reference in plain Python loops."""

from __future__ import annotations

import math

import numpy as np
import oracle
import pytest

from speechmine.config import MineConfig
from speechmine.fusion import Rows, Space, candidate_pool, concat_rows, fused_candidates
from speechmine.margin import score_candidates
from speechmine.types import Neighbours


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def two_views(seed: int, n: int = 40, m: int = 33, shared: int = 25
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two 'encoders' of one corpus: the first ``shared`` sources have a translation among the
    targets (a permutation); each view sees the pairs through its own noise and width."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(m)
    views = []
    for d, noise in ((16, 0.7), (11, 1.1)):
        x = unit(rng.standard_normal((n, d)))
        y = unit(rng.standard_normal((m, d)))
        y[:shared] = unit(x[:shared] + noise * unit(rng.standard_normal((shared, d))))
        views.append((x, y[perm]))
    return views


def knn(x: np.ndarray, y: np.ndarray, k: int) -> tuple[Neighbours, Neighbours]:
    s = (x.astype(np.float64) @ y.astype(np.float64).T).astype(np.float32)
    fs, fi = oracle.knn(s, min(k, len(y)))
    bs, bi = oracle.knn(s.T, min(k, len(x)))
    return (Neighbours(np.array(fs, np.float32), np.array(fi, np.int64)),
            Neighbours(np.array(bs, np.float32), np.array(bi, np.int64)))


def space(x: np.ndarray, y: np.ndarray, k: int, weight: float = 1.0, parts: int = 1) -> Space:
    fwd, bwd = knn(x, y, k)
    return Space(Rows(np.array_split(x, parts)), Rows(np.array_split(y, parts)), fwd, bwd,
                 weight)


def reference(views: list[tuple[np.ndarray, np.ndarray]], weights: list[float],
              spaces: list[Space], mine: MineConfig) -> tuple[list[tuple[float, int]], ...]:
    """Every query's (score, candidate) in both directions, one cell at a time."""

    def means(nb: Neighbours) -> list[float]:
        out = []
        for row in nb.sims.tolist():
            if mine.margin_norm == "last":
                out.append(row[min(mine.k_mean or len(row), len(row)) - 1])
            else:
                kk = len(row) if mine.k_mean is None else min(mine.k_mean, len(row))
                out.append(float(np.float32(sum(row[:kk]) / kk)))
        return out

    mx = [means(s.fwd) for s in spaces]
    my = [means(s.bwd) for s in spaces]
    total = sum(weights)

    def one_way(forward: bool) -> list[tuple[float, int]]:
        out = []
        n = len(views[0][0] if forward else views[0][1])
        for q in range(n):
            pool = sorted({int(j) for s in spaces
                           for j in (s.fwd if forward else s.bwd).ids[q]})
            cells = []
            for j in pool:
                score = cosine = 0.0
                for e, (x, y) in enumerate(views):
                    a, b = (x[q], y[j]) if forward else (y[q], x[j])
                    c = float(np.dot(a.astype(np.float64), b.astype(np.float64)))
                    mq, mo = (mx[e][q], my[e][j]) if forward else (my[e][q], mx[e][j])
                    score += weights[e] * oracle.margin(c, mq, mo, mine.margin)
                    cosine += weights[e] * c
                cells.append((score / total, cosine / total, j))
            key = (lambda c: (-c[0], c[2])) if mine.candidate == "best" else \
                (lambda c: (-c[1], c[2]))
            best = min(cells, key=key)
            out.append((best[0], best[2]))
        return out

    return one_way(True), one_way(False)


RULES = [dict(margin="ratio", candidate="best"), dict(margin="distance", candidate="best"),
         dict(margin="ratio", candidate="nearest"), dict(margin="absolute", candidate="best"),
         dict(margin="ratio", candidate="best", k_mean=2),
         dict(margin="ratio", candidate="best", margin_norm="last")]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: "-".join(map(str, r.values())))
@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 2.0)])
def test_margin_mean_matches_the_reference(rule: dict, weights: tuple[float, float]) -> None:
    views = two_views(3)
    mine = MineConfig(k=4, threshold=-math.inf, **rule)
    spaces = [space(x, y, 4, w, parts=p) for (x, y), w, p in zip(views, weights, (1, 3))]
    f_score, f_tgt, b_score, b_src = fused_candidates(spaces, mine)
    want_f, want_b = reference(views, list(weights), spaces, mine)
    assert f_tgt.tolist() == [j for _, j in want_f]
    assert b_src.tolist() == [i for _, i in want_b]
    np.testing.assert_allclose(f_score, [s for s, _ in want_f], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b_score, [s for s, _ in want_b], rtol=1e-5, atol=1e-6)


def test_the_pool_reaches_beyond_each_members_own_neighbours() -> None:
    """The fused choice can be a candidate only one member found: the other member scores it
    from its embeddings, not from its kNN."""
    views = two_views(5)
    spaces = [space(x, y, 2) for x, y in views]
    pool = candidate_pool([s.fwd for s in spaces])
    own = [set(s.fwd.ids[q].tolist()) for s in spaces for q in range(len(pool))]
    assert any(len(set(pool[q][pool[q] >= 0].tolist()) - own[q]) for q in range(len(pool)))
    f_score, f_tgt, _, _ = fused_candidates(spaces, MineConfig(k=2))
    outside = [q for q in range(len(f_tgt)) if f_tgt[q] not in spaces[0].fwd.ids[q]]
    assert outside, "no fused candidate came from the second member only"


def test_one_member_gives_that_members_margins() -> None:
    (x, y), _ = two_views(11)
    s = space(x, y, 4)
    for rule in RULES:
        mine = MineConfig(k=4, **rule)
        got = fused_candidates([s], mine)
        want = score_candidates(s.fwd, s.bwd, mine)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_weights_scale_the_members_margins() -> None:
    """With a member of weight 0+ (tiny) the fused scores are the other member's."""
    views = two_views(13)
    mine = MineConfig(k=4)
    only = fused_candidates([space(*views[0], 4)], mine)
    # the second member's pool adds candidates, but with a negligible weight the winner and
    # its score are the first member's
    tiny = fused_candidates([space(*views[0], 4, 1.0), space(*views[1], 4, 1e-9)], mine)
    assert tiny[1].tolist() == only[1].tolist() and tiny[3].tolist() == only[3].tolist()
    np.testing.assert_allclose(tiny[0], only[0], rtol=1e-5)


def test_candidate_pool_by_hand() -> None:
    a = Neighbours(np.zeros((3, 2), np.float32), np.array([[4, 1], [0, -1], [2, 3]]))
    b = Neighbours(np.zeros((3, 3), np.float32), np.array([[1, 7, 4], [-1, -1, -1],
                                                            [3, 2, 5]]))
    assert candidate_pool([a, b]).tolist() == [[1, 4, 7], [0, -1, -1], [2, 3, 5]]


def test_rows_gather_across_parts_in_any_order() -> None:
    full = np.arange(30, dtype=np.float32).reshape(10, 3)
    rows = Rows([full[:4], full[4:4], full[4:9].astype(np.float16), full[9:]])
    ids = np.array([9, 0, 5, 5, 3, 8])
    np.testing.assert_array_equal(rows.take(ids), full[ids])
    assert len(rows) == 10 and rows.dim == 3


def test_concat_gives_the_weighted_mean_cosine() -> None:
    views = two_views(17)
    w = [1.0, 2.0]
    cx = concat_rows([v[0] for v in views], w)
    cy = concat_rows([v[1] for v in views], w)
    assert cx.shape == (40, 27) and cx.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(cx, axis=1), 1, rtol=1e-6)
    want = sum(wi * (x @ y.T) for wi, (x, y) in zip(w, views)) / sum(w)
    np.testing.assert_allclose(cx @ cy.T, want, atol=1e-6)


@pytest.mark.parametrize("weights", [(1.0, 0.0), (1.0, -1.0), (1.0, float("nan")), ()])
def test_bad_weights_are_refused(weights: tuple[float, ...]) -> None:
    views = two_views(19)
    with pytest.raises(ValueError, match="weights"):
        concat_rows([v[0] for v in views][:len(weights)], weights)


def test_stopes_float16_arithmetic_is_refused() -> None:
    views = two_views(23)
    with pytest.raises(ValueError, match="fp16_distances"):
        fused_candidates([space(x, y, 4) for x, y in views], MineConfig(fp16_distances=True))
