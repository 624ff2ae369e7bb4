"""Margin scoring and retrieval modes against the slow oracle in tests/oracle.py."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import oracle
import pytest

from speechmine.api import mine_embeddings
from speechmine.config import MINE_PRESETS, MineConfig
from speechmine.knn import Neighbours
from speechmine.margin import score_candidates
from speechmine.select import select_pairs
from speechmine.types import DIRECTION_NAMES


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def noisy_copies(rng, n, m, d, shared):
    """x and y where the first ``shared`` rows of x have a noisy translation in y."""
    x = unit(rng, n, d)
    y = unit(rng, m, d)
    y[:shared] = x[:shared] + 0.6 * unit(rng, shared, d)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    perm = rng.permutation(m)
    return x, y[perm]


def as_tuples(al):
    return [(float(s), int(i), int(j), DIRECTION_NAMES[d])
            for s, i, j, d in zip(al.scores, al.src, al.tgt, al.direction)]


def assert_same(got, want):
    assert [(i, j, d) for _, i, j, d in got] == [(i, j, d) for _, i, j, d in want]
    np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], rtol=1e-5, atol=1e-6)


MODES = list(itertools.product(("ratio", "distance", "absolute"), ("best", "nearest"),
                               ("fwd", "bwd", "union", "intersect", "max")))


@pytest.mark.parametrize("margin,candidate,retrieval", MODES)
def test_every_mode_matches_oracle(margin, candidate, retrieval):
    rng = np.random.default_rng(7)
    x, y = noisy_copies(rng, 60, 45, 16, 30)
    cfg = MineConfig(k=5, margin=margin, candidate=candidate, retrieval=retrieval,
                     threshold=-np.inf)
    got = as_tuples(mine_embeddings(x, y, cfg))
    want = oracle.mine(x, y, 5, margin, candidate, retrieval)
    assert_same(got, want)
    assert len(got) > 0


@pytest.mark.parametrize("dedup", [True, False])
def test_union_dedup(dedup):
    rng = np.random.default_rng(3)
    x, y = noisy_copies(rng, 40, 40, 12, 30)
    cfg = MineConfig(k=4, retrieval="union", dedup=dedup, threshold=-np.inf)
    got = as_tuples(mine_embeddings(x, y, cfg))
    assert_same(got, oracle.mine(x, y, 4, retrieval="union", dedup=dedup))
    pairs = [(i, j) for _, i, j, _ in got]
    assert (len(set(pairs)) == len(pairs)) == dedup
    if dedup:  # a pair proposed by both directions is marked so
        assert any(d == "both" for *_, d in got)


def test_threshold_window_and_k_mean():
    rng = np.random.default_rng(11)
    x, y = noisy_copies(rng, 50, 50, 16, 35)
    cfg = MineConfig(k=8, k_mean=3, threshold=1.05, max_score=1.4)
    got = as_tuples(mine_embeddings(x, y, cfg))
    want = oracle.mine(x, y, 8, threshold=1.05, max_score=1.4, k_mean=3)
    assert_same(got, want)
    assert got and all(1.05 <= s <= 1.4 for s, *_ in got)
    # the window really cuts: without it there are more pairs
    assert len(as_tuples(mine_embeddings(x, y, MineConfig(k=8, k_mean=3, threshold=-np.inf)))) \
        > len(got)


def test_k_larger_than_collection_warns_and_works(caplog):
    rng = np.random.default_rng(5)
    x, y = noisy_copies(rng, 3, 2, 8, 2)
    with caplog.at_level(logging.WARNING):
        got = as_tuples(mine_embeddings(x, y, MineConfig(k=10, threshold=-np.inf)))
    assert "larger than" in caplog.text
    assert_same(got, oracle.mine(x, y, 10))
    # a single item on each side still mines
    one = as_tuples(mine_embeddings(x[:1], y[:1], MineConfig(k=4, threshold=-np.inf)))
    assert [(i, j) for _, i, j, _ in one] == [(0, 0)]


def test_duplicate_lines_tie_deterministically():
    """Identical target lines tie exactly: the smaller id wins, in every mode."""
    rng = np.random.default_rng(2)
    x, y = noisy_copies(rng, 20, 20, 8, 15)
    y = np.concatenate([y, y[:5]])  # ids 20..24 duplicate 0..4
    for margin, candidate, retrieval in MODES:
        cfg = MineConfig(k=6, margin=margin, candidate=candidate, retrieval=retrieval,
                         threshold=-np.inf)
        got = as_tuples(mine_embeddings(x, y, cfg))
        want = oracle.mine(x, y, 6, margin, candidate, retrieval)
        assert_same(got, want)


def test_ties_in_scores_are_broken_by_ids():
    """Hand-built neighbour lists with exact ties in similarity and in margin."""
    fwd = Neighbours(np.array([[0.9, 0.9, 0.1], [0.5, 0.5, 0.5]], np.float32),
                     np.array([[2, 1, 0], [1, 0, 2]], np.int64))
    bwd = Neighbours(np.array([[0.5, 0.5], [0.9, 0.5], [0.9, 0.5]], np.float32),
                     np.array([[1, 0], [0, 1], [0, 1]], np.int64))
    cfg = MineConfig(k=3, margin="absolute", candidate="nearest")
    f_score, f_tgt, b_score, b_src = score_candidates(fwd, bwd, cfg)
    assert f_tgt.tolist() == [1, 0]  # 0.9 tie → id 1 before 2; 0.5 three-way tie → id 0
    assert b_src.tolist() == [0, 0, 0]
    al = select_pairs(f_score, f_tgt, b_score, b_src, "max")
    # (0,1) and (0,2) both score 0.9: (0,1) first by tgt id; then 1→0 (0.5)
    assert list(zip(al.src.tolist(), al.tgt.tolist())) == [(0, 1), (1, 0)]


@pytest.mark.parametrize("preset", ["laser", "stopes"])
def test_presets_match_oracle(preset):
    rng = np.random.default_rng(17)
    x, y = noisy_copies(rng, 80, 70, 16, 50)
    # the oracle is the plain rule: stopes' window, dedup and float16 arithmetic are tested
    # against stopes' own outputs (tests/pipeline/test_stopes_parity.py)
    p = {**MINE_PRESETS[preset], "threshold": 1.0, "max_score": None,
         "fp16_distances": False, "dedup_texts": False}
    got = as_tuples(mine_embeddings(x, y, MineConfig(**p)))
    want = oracle.mine(x, y, p["k"], p["margin"], p["candidate"], p["retrieval"], threshold=1.0,
                       dedup=p["dedup"])
    assert_same(got, want)


def test_margin_norm_last_uses_kth_neighbour():
    rng = np.random.default_rng(4)
    x, y = noisy_copies(rng, 30, 30, 8, 20)
    cfg = MineConfig(k=4, margin_norm="last", candidate="nearest", retrieval="fwd",
                     threshold=-np.inf)
    al = mine_embeddings(x, y, cfg)
    s = x @ y.T
    for score, i, j in zip(al.scores, al.src, al.tgt):
        kth_x = np.sort(s[i])[::-1][3]
        kth_y = np.sort(s[:, j])[::-1][3]
        assert score == pytest.approx(s[i, j] / ((kth_x + kth_y) / 2), rel=1e-5)


def test_margin_norm_last_skips_empty_slots_of_an_approximate_index():
    """An IVF index may return fewer than k neighbours (id -1, -inf): the k-th similarity is
    then the last one found, never the empty slot's value."""
    fwd = Neighbours(np.array([[0.9, 0.5, -np.inf], [0.8, 0.7, 0.6]], np.float32),
                     np.array([[0, 1, -1], [1, 0, 2]], np.int64))
    bwd = Neighbours(np.array([[0.9, 0.7], [0.8, 0.5], [0.6, -np.inf]], np.float32),
                     np.array([[0, 1], [1, 0], [1, -1]], np.int64))
    cfg = MineConfig(k=3, margin_norm="last", margin="distance", candidate="nearest")
    f_score, f_tgt, b_score, b_src = score_candidates(fwd, bwd, cfg)
    assert np.isfinite(f_score).all() and np.isfinite(b_score).all()
    # row 0: k-th valid is 0.5; target 0's 2nd (last) is 0.7 → 0.9 - (0.5 + 0.7) / 2
    assert f_score[0] == pytest.approx(0.9 - (0.5 + 0.7) / 2)
    assert f_tgt.tolist() == [0, 1]
