"""On-disk helpers: the line store, first occurrences of hashes (in memory and bucketed on
disk), hash groups under forced collisions, first rows of key tuples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechmine.io.ondisk import (
    LineStore,
    digest,
    digest_words,
    first_occurrences,
    first_rows,
    hash_groups,
)


def test_line_store_reads_every_record_back_by_position(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    records = [b"", b"a\tb", "é東京 \"q\"".encode(), b"\n\r", b"x" * 70_000] + [
        bytes(rng.integers(0, 256, size=int(n), dtype=np.uint8)) for n in
        rng.integers(0, 300, size=20_000)]  # more than the offsets buffer holds
    with LineStore(tmp_path / "s", len(records)) as store:
        for r in records:
            store.append(r)
        store.finish()
        pos = rng.integers(0, len(records), size=5000)
        assert store.get_many(pos) == [records[i] for i in pos.tolist()]
        assert store.get_many(np.arange(len(records))) == records
        assert int(store.offsets[-1]) == sum(map(len, records))


def test_line_store_refuses_fewer_records_than_announced(tmp_path: Path) -> None:
    store = LineStore(tmp_path / "s", 3)
    store.append(b"one")
    with pytest.raises(RuntimeError, match="1 records written, 3 expected"):
        store.finish()
    store.close()


def _hash_files(tmp_path: Path, values: list[list[int]]) -> list[Path]:
    paths = []
    for i, vals in enumerate(values):
        p = tmp_path / f"h{i}.npy"
        np.save(p, np.asarray([digest(str(v).encode()) for v in vals], dtype="S16"))
        paths.append(p)
    return paths


def _first_by_set(values: list[list[int]]) -> list[bool]:
    seen: set[int] = set()
    out = []
    for v in (v for vals in values for v in vals):
        out.append(v not in seen)
        seen.add(v)
    return out


@pytest.mark.parametrize("bucket_rows", [None, 200, 5])
def test_first_occurrences_equal_a_set_across_many_files(tmp_path: Path,
                                                         bucket_rows: int | None) -> None:
    """~3,000 rows, most of them repeats of 300 values, spread over files (one empty): the
    same first occurrences as a set walked in order, in one piece, in 16 and in 256 buckets."""
    rng = np.random.default_rng(1)
    values = [rng.integers(0, 300, size=n).tolist() for n in (700, 0, 1200, 1, 1100)]
    keep, dups = first_occurrences(_hash_files(tmp_path, values), tmp_path / "scratch",
                                   bucket_rows)
    want = _first_by_set(values)
    assert keep.tolist() == want
    assert dups == want.count(False) > 2500
    assert [p.name for p in (tmp_path / "scratch").iterdir()] == ["keep.npy"]  # no bucket left


def test_first_occurrences_of_no_rows(tmp_path: Path) -> None:
    keep, dups = first_occurrences(_hash_files(tmp_path, [[], []]), tmp_path / "scratch")
    assert keep.shape == (0,) and dups == 0


def _canonical(labels: np.ndarray) -> list[int]:
    """A partition's labels renumbered by first appearance (equal partitions, equal lists)."""
    first: dict[int, int] = {}
    return [first.setdefault(x, len(first)) for x in labels.tolist()]


def test_hash_groups_are_exact_when_hashes_collide() -> None:
    """A 2-bit 'hash': almost every item collides with another value, yet the groups are the
    items' values, because collisions are checked against the items."""
    rng = np.random.default_rng(2)
    values = rng.integers(0, 40, size=2000)
    weak = np.stack([values % 4, np.zeros_like(values)], axis=1).astype(np.uint64)
    groups = hash_groups(weak, lambda a, b: values[a] == values[b])
    assert _canonical(groups) == _canonical(values)  # groups of equal values, nothing else
    # the real digest: each repeat is compared once with its group's first, and is equal
    strong = digest_words(b"".join(digest(str(v).encode()) for v in values.tolist()))
    calls: list[np.ndarray] = []

    def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        calls.append(values[a] == values[b])
        return calls[-1]

    assert _canonical(hash_groups(strong, same)) == _canonical(values)
    assert sum(len(c) for c in calls) == len(values) - len(set(values.tolist()))
    assert all(c.all() for c in calls)


def test_first_rows_keeps_the_first_row_of_each_key_pair() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 20, size=3000), rng.integers(0, 20, size=3000)
    want: dict[tuple[int, int], int] = {}
    for i, key in enumerate(zip(a.tolist(), b.tolist())):
        want.setdefault(key, i)
    assert first_rows(a, b).tolist() == sorted(want.values())
    assert first_rows(np.zeros(0, np.int64)).tolist() == []
