"""Exact both-direction kNN (speechmine.knn.exact_knn_both) against brute force.

Integer-valued vectors make every dot product exact whatever the BLAS blocking, so neighbours
and similarities are compared to the oracle bit for bit, ties included (order: decreasing
similarity, then increasing id, which also decides who is kept at the k-th place).
"""

from __future__ import annotations

import numpy as np
import oracle
import pytest

from speechmine import knn
from speechmine.knn import exact_knn_both


def brute(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row of ``sim`` by (-value, id), as float32 sims and int64 ids."""
    sims, ids = oracle.knn(sim, min(k, sim.shape[1]))
    return np.asarray(sims, dtype=np.float32), np.asarray(ids, dtype=np.int64)


def assert_exact(x: np.ndarray, y: np.ndarray, k_fwd: int, k_bwd: int, tile: int) -> None:
    fwd, bwd = exact_knn_both(x, y, k_fwd, k_bwd, tile=tile)
    s = x.astype(np.float64) @ y.astype(np.float64).T
    for got, (want_sims, want_ids) in ((fwd, brute(s, k_fwd)), (bwd, brute(s.T, k_bwd))):
        assert got.ids.dtype == np.int64 and got.sims.dtype == np.float32
        np.testing.assert_array_equal(got.ids, want_ids)
        np.testing.assert_array_equal(got.sims, want_sims)


def integer_vectors(rng: np.random.Generator, n: int, d: int, spread: int) -> np.ndarray:
    """Entries in [-spread, spread]: few distinct dot products, hence many ties."""
    return rng.integers(-spread, spread + 1, (n, d)).astype(np.float32)


@pytest.mark.parametrize("n,m,d,tile,k_fwd,k_bwd", [
    (1, 1, 3, 4096, 4, 4),      # one row each: k clamps to 1
    (1, 37, 4, 8, 5, 3),        # n = 1, tiles that do not divide m
    (37, 1, 4, 8, 5, 3),
    (50, 37, 3, 16, 7, 40),     # k_bwd > n: clamped to 50
    (64, 64, 2, 64, 6, 6),      # one tile exactly
    (100, 90, 3, 1, 3, 2),      # 1-row tiles
    (120, 110, 2, 17, 12, 1),   # odd tile, k = 1 one way
    (300, 250, 3, 128, 4, 9),   # several chunk rows per tile
])
def test_equals_brute_force_with_ties(n, m, d, tile, k_fwd, k_bwd, caplog):
    rng = np.random.default_rng(n * 1000 + m)
    assert_exact(integer_vectors(rng, n, d, 2), integer_vectors(rng, m, d, 2), k_fwd, k_bwd,
                 tile)


def test_many_random_shapes_with_ties(caplog):
    rng = np.random.default_rng(11)
    for _ in range(60):
        n, m = (int(v) for v in rng.integers(1, 80, 2))
        d = int(rng.integers(1, 5))
        spread = int(rng.integers(0, 3))  # 0: all zero, every similarity ties
        x, y = integer_vectors(rng, n, d, spread), integer_vectors(rng, m, d, spread)
        assert_exact(x, y, int(rng.integers(1, 12)), int(rng.integers(1, 12)),
                     int(rng.choice([1, 2, 3, 7, 16, 33, 4096])))


@pytest.mark.parametrize("chunk_floats", [1, 64, 1 << 19])
def test_chunking_of_the_scan_does_not_change_results(chunk_floats, monkeypatch):
    """Tiles are scanned in chunks of rows by several threads: any chunking, same answer."""
    rng = np.random.default_rng(5)
    x, y = integer_vectors(rng, 200, 3, 2), integer_vectors(rng, 150, 3, 2)
    monkeypatch.setattr(knn, "_CHUNK_FLOATS", chunk_floats)
    assert_exact(x, y, 5, 6, 64)


@pytest.mark.parametrize("nan_row", [None, 1])
def test_duplicate_vectors_keep_the_smallest_ids(nan_row):
    """Identical rows tie everywhere: the first k ids win, in order, in both directions
    (the path that bounds the candidates of heavily tied queries), skipping a NaN row."""
    x = np.ones((300, 8), dtype=np.float32) / np.sqrt(8)
    y = np.ones((260, 8), dtype=np.float32) / np.sqrt(8)
    if nan_row is not None:
        x[nan_row] = np.nan
    fwd, bwd = exact_knn_both(x, y, 5, 3, tile=100)
    good = np.setdiff1d(np.arange(300), [nan_row] if nan_row is not None else [])
    np.testing.assert_array_equal(fwd.ids[good], np.tile(np.arange(5), (len(good), 1)))
    np.testing.assert_array_equal(bwd.ids, np.tile(good[:3], (260, 1)))
    assert np.all(fwd.sims[good] == fwd.sims[good[0], 0])


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("strict", [False, True])
def test_candidates_of_tied_queries_are_bounded(axis, strict):
    """Far more values pass the threshold than k per query: only the values above the k-th
    largest and the first k equal to it come back."""
    rng = np.random.default_rng(3)
    s = rng.integers(0, 3, (40, 50)).astype(np.float32)
    thr = np.full(s.shape[1 - axis], -np.inf, dtype=np.float32)
    k = 2
    flat = knn._candidates(s, thr, strict, k, axis)
    picked = np.zeros(s.size, dtype=bool)
    picked[flat] = True
    picked = picked.reshape(s.shape)
    for q in range(s.shape[1 - axis]):
        vals = s[q] if axis == 1 else s[:, q]
        got = picked[q] if axis == 1 else picked[:, q]
        kth = np.sort(vals)[-k]
        want = (vals > kth) | ((vals == kth) & (np.cumsum(vals == kth) <= k))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("tile", [7, 64, 4096])
def test_unit_vectors_match_float64_brute_force(tile):
    rng = np.random.default_rng(tile)
    x = rng.standard_normal((150, 24)).astype(np.float32)
    y = rng.standard_normal((130, 24)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    fwd, bwd = exact_knn_both(x, y, 6, 5, tile=tile)
    s = x.astype(np.float64) @ y.astype(np.float64).T
    for got, sim, k in ((fwd, s, 6), (bwd, s.T, 5)):
        want = np.argsort(-sim, axis=1)[:, :k]
        np.testing.assert_array_equal(got.ids, want)  # no near-ties in 24-d random data
        np.testing.assert_allclose(got.sims, np.take_along_axis(sim, want, 1), atol=1e-6)
        assert np.all(np.diff(got.sims, axis=1) <= 0)


def test_same_tile_same_bytes_and_progress_per_tile():
    rng = np.random.default_rng(9)
    x, y = integer_vectors(rng, 90, 4, 1), integer_vectors(rng, 70, 4, 1)

    class Count:
        n = 0

        def update(self, step: int) -> None:
            self.n += step

    bar = Count()
    a = exact_knn_both(x, y, 4, 4, tile=32, progress=bar)
    b = exact_knn_both(x, y, 4, 4, tile=32)
    assert bar.n == 3 * 3
    for one, two in zip(a, b):
        assert one.sims.tobytes() == two.sims.tobytes() and one.ids.tobytes() == two.ids.tobytes()


def test_memmap_and_float64_inputs(tmp_path):
    rng = np.random.default_rng(4)
    x, y = integer_vectors(rng, 40, 5, 2), integer_vectors(rng, 33, 5, 2)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                   shape=x.shape)
    mm[:] = x
    mm.flush()
    got = exact_knn_both(np.load(tmp_path / "x.npy", mmap_mode="r"), y.astype(np.float64), 3,
                         3, tile=16)
    want = exact_knn_both(x, y, 3, 3, tile=16)
    for one, two in zip(got, want):
        np.testing.assert_array_equal(one.ids, two.ids)


@pytest.mark.parametrize("tile", [8, 64, 4096])
def test_nan_vectors_match_nothing(tile):
    """A NaN vector (e.g. a normalised zero vector) matches nothing: its own row is empty
    (-1, -inf) and it is nobody's neighbour; the others' neighbours are unchanged."""
    rng = np.random.default_rng(2)
    x, y = integer_vectors(rng, 150, 4, 2), integer_vectors(rng, 140, 4, 2)
    bad_x, bad_y = [0, 3, 9, 70], [1, 2, 100]
    x[bad_x] = np.nan
    y[bad_y] = np.nan
    fwd, bwd = exact_knn_both(x, y, 4, 5, tile=tile)
    for got, bad, other_bad, k, sim in ((fwd, bad_x, bad_y, 4, x @ y.T),
                                        (bwd, bad_y, bad_x, 5, y @ x.T)):
        assert np.all(got.ids[bad] == -1) and np.all(got.sims[bad] == -np.inf)
        good = np.setdiff1d(np.arange(sim.shape[0]), bad)
        cols = np.setdiff1d(np.arange(sim.shape[1]), other_bad)
        want_sims, want = brute(sim[np.ix_(good, cols)].astype(np.float64), k)
        np.testing.assert_array_equal(got.ids[good], cols[want])
        np.testing.assert_array_equal(got.sims[good], want_sims)
