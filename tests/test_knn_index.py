"""Exact and IVF search against brute force; index choice by size."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from speechmine.index import (
    choose_index_type,
    merge_on_disk,
    populate,
    read_index,
    sample_rows,
    train_index,
)
from speechmine.knn import exact_knn_both, index_knn


def unit(rng, n, d):
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("n,m,tile", [(50, 37, 16), (200, 300, 64), (10, 10, 4096), (1, 5, 2)])
def test_exact_both_directions_equal_brute_force(n, m, tile):
    rng = np.random.default_rng(n + m)
    x, y = unit(rng, n, 24), unit(rng, m, 24)
    k = 7
    fwd, bwd = exact_knn_both(x, y, k, k, tile=tile)
    s = x @ y.T
    kf, kb = min(k, m), min(k, n)
    want_f = np.argsort(-s, axis=1, kind="stable")[:, :kf]
    want_b = np.argsort(-s.T, axis=1, kind="stable")[:, :kb]
    assert fwd.ids.dtype == np.int64 and fwd.ids.shape == (n, kf)
    np.testing.assert_array_equal(fwd.ids, want_f)
    np.testing.assert_array_equal(bwd.ids, want_b)
    np.testing.assert_allclose(fwd.sims, np.take_along_axis(s, want_f, 1), atol=1e-5)
    np.testing.assert_allclose(bwd.sims, np.take_along_axis(s.T, want_b, 1), atol=1e-5)
    assert np.all(np.diff(fwd.sims, axis=1) <= 1e-7)  # rows sorted, decreasing


def test_exact_matches_faiss_flat_ip():
    rng = np.random.default_rng(0)
    x, y = unit(rng, 500, 64), unit(rng, 400, 64)
    fwd, bwd = exact_knn_both(x, y, 10, 10, tile=128)
    ix = faiss.IndexFlatIP(64)
    ix.add(y)
    d, i = ix.search(x, 10)
    np.testing.assert_allclose(fwd.sims, d, atol=1e-5)
    assert (fwd.ids == i).mean() > 0.999


def test_empty_collection_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        exact_knn_both(np.zeros((0, 4), np.float32), np.ones((2, 4), np.float32), 3, 3)


def clustered(rng, n, d, centers=40):
    c = unit(rng, centers, d)
    v = c[rng.integers(0, centers, n)] + 0.25 * unit(rng, n, d)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def merged_on_disk(tmp_path, trained, parts):
    """``parts`` (populated indexes) written to files and merged on disk; the merged index
    read back for searching."""
    files = []
    for i, part in enumerate(parts):
        files.append(str(tmp_path / f"part{i}.faiss"))
        faiss.write_index(part, files[-1])
    out = tmp_path / "merged"
    out.mkdir()
    n = merge_on_disk(trained, files, str(out / "index.faiss"))
    assert n == sum(p.ntotal for p in parts)
    return read_index(str(out / "index.faiss"))


def test_ivf_trained_populated_per_shard_and_merged_finds_true_neighbours(tmp_path):
    rng = np.random.default_rng(1)
    y = clustered(rng, 6000, 32)
    x = y[rng.choice(6000, 300, replace=False)] + 0.05 * unit(rng, 300, 32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    shards = [y[:2500], y[2500:4000], y[4000:]]
    picks = sample_rows([len(s) for s in shards], 3000, seed=3)
    sample = np.concatenate([s[p] for s, p in zip(shards, picks)])
    trained = train_index("IVF64,Flat", sample, seed=3)
    parts, first = [], 0
    for s in shards:
        parts.append(populate(trained, s, first))
        first += len(s)
    merged = merged_on_disk(tmp_path, trained, parts)
    assert merged.ntotal == 6000
    faiss.extract_index_ivf(merged).nprobe = 16
    got = index_knn(merged, x, 5, batch=100)
    want = np.argsort(-(x @ y.T), axis=1)[:, :5]
    assert got.ids.dtype == np.int64
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got.ids, want)])
    assert recall > 0.95
    assert (got.ids[:, 0] == want[:, 0]).mean() > 0.97


def test_opq_ivf_pq_factory_merges_and_searches(tmp_path):
    rng = np.random.default_rng(2)
    y = unit(rng, 2000, 32)
    # small OPQ/PQ (4-bit codes) keeps training quick; the path (OPQ wrapper, IVF merge) is
    # the one the pipeline takes for OPQ64,IVF…,PQ64
    trained = train_index("OPQ8,IVF16,PQ8x4", y[:1000], seed=0)
    merged = merged_on_disk(tmp_path, trained,
                            [populate(trained, y[:1200], 0), populate(trained, y[1200:], 1200)])
    assert merged.ntotal == 2000
    faiss.extract_index_ivf(merged).nprobe = 16
    got = index_knn(merged, y[:200], 10)
    # PQ is lossy: each vector should still find itself among its 10 nearest
    assert np.mean([i in row for i, row in enumerate(got.ids.tolist())]) > 0.95


def test_merged_on_disk_searches_as_one_index_built_in_memory(tmp_path):
    """The on-disk merge of three parts answers exactly like one index holding every row
    (same training), its lists live in the .ivfdata file, and it still reads after the
    folder moves (as a stage folder does when it is renamed into place)."""
    rng = np.random.default_rng(5)
    y = clustered(rng, 3000, 16)
    trained = train_index("IVF32,PQ4", y, seed=1)
    whole = populate(trained, y, 0)
    parts = [populate(trained, y[a:b], a) for a, b in ((0, 1000), (1000, 1700), (1700, 3000))]
    merged = merged_on_disk(tmp_path, trained, parts)
    ivf = faiss.extract_index_ivf(merged)
    assert isinstance(faiss.downcast_InvertedLists(ivf.invlists), faiss.OnDiskInvertedLists)
    assert (tmp_path / "merged" / "index.ivfdata").stat().st_size == 3000 * (4 + 8)
    moved = tmp_path / "elsewhere"
    (tmp_path / "merged").rename(moved)
    again = read_index(str(moved / "index.faiss"))
    for index in (whole, merged, again):
        faiss.extract_index_ivf(index).nprobe = 8
    d0, i0 = whole.search(y[:300], 10)
    for index in (merged, again):
        d, i = index.search(y[:300], 10)
        np.testing.assert_array_equal(i, i0)
        np.testing.assert_array_equal(d, d0)


def test_merge_keeps_the_codes_out_of_memory(tmp_path):
    """A merge in a fresh process: its anonymous memory grows by far less than the ~100 MB of
    codes it merges (an in-memory merge holds them all)."""
    import subprocess
    import sys
    import textwrap

    rng = np.random.default_rng(6)
    d, n = 256, 100_000
    trained = train_index("IVF16,Flat", unit(rng, 2000, d), seed=0)
    files = []
    for i in range(4):
        files.append(str(tmp_path / f"part{i}.faiss"))
        faiss.write_index(populate(trained, unit(rng, n // 4, d), i * n // 4), files[-1])
    faiss.write_index(trained, str(tmp_path / "trained.faiss"))
    code = textwrap.dedent(f"""
        import faiss
        from speechmine.index import merge_on_disk, read_index
        def anon():
            for line in open("/proc/self/status"):
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) // 1024
        before = anon()
        n = merge_on_disk(faiss.read_index({str(tmp_path / "trained.faiss")!r}), {files!r},
                          {str(tmp_path / "m.faiss")!r})
        print("merged", n, anon() - before)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    # FAISS prints its own lines ("resizing …") on stdout
    out = next(ln for ln in run.stdout.splitlines() if ln.startswith("merged ")).split()[1:]
    assert int(out[0]) == n
    codes_mib = n * d * 4 / 2**20
    assert (tmp_path / "m.ivfdata").stat().st_size >= n * d * 4
    assert int(out[1]) < codes_mib / 4, f"merge grew anonymous memory by {out[1]} MiB"


def test_opq_iterations_are_the_configured_ones():
    """index.opq_niter reaches FAISS' OPQ training: more iterations, a rotation that
    quantises better (lower PQ reconstruction error), both orthonormal."""
    rng = np.random.default_rng(4)
    # anisotropic, in a rotated basis: a good rotation matters for PQ here
    z = rng.standard_normal((1500, 32)) * np.geomspace(4, 0.1, 32)
    y = z @ np.linalg.qr(rng.standard_normal((32, 32)))[0]
    y = np.ascontiguousarray(y / np.linalg.norm(y, axis=1, keepdims=True), dtype=np.float32)
    errors = []
    for niter in (1, 8):
        trained = train_index("OPQ8,IVF8,PQ8x4", y, seed=0, opq_niter=niter)
        opq = faiss.downcast_VectorTransform(faiss.downcast_index(trained).chain.at(0))
        assert isinstance(opq, faiss.OPQMatrix) and opq.niter == niter
        a = faiss.vector_to_array(opq.A).reshape(32, 32)
        assert np.allclose(a @ a.T, np.eye(32), atol=1e-4)
        yr = opq.apply(y)
        pq = faiss.ProductQuantizer(32, 8, 4)
        pq.train(yr)
        errors.append(float(((pq.decode(pq.compute_codes(yr)) - yr) ** 2).sum(1).mean()))
    assert errors[1] < 0.95 * errors[0]


def test_index_choice_by_size_follows_stopes_table():
    assert choose_index_type(5_000, 1024) == "exact"
    assert choose_index_type(5_000, 1024, exact_max_size=0) == "OPQ64,IVF1024,PQ64"
    assert choose_index_type(300_000, 1024) == "OPQ64,IVF8192,PQ64"
    assert choose_index_type(20_000_000, 1024) == "OPQ64,IVF65536,PQ64"
    assert choose_index_type(300_000, 384).endswith("PQ64")
    assert choose_index_type(300_000, 32) == "OPQ32,IVF8192,PQ32"
    assert choose_index_type(10, 8, "Flat") == "exact"
    assert choose_index_type(10, 8, "IVF4,Flat") == "IVF4,Flat"


def test_training_on_too_few_vectors_is_a_clear_error():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="training vectors"):
        train_index("IVF64,Flat", unit(rng, 20, 8), seed=0)
