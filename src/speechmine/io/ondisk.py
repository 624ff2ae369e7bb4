"""On-disk helpers that keep a stage's memory bounded, whatever the corpus size.

* :class:`LineStore`: byte records appended in order to a file and read back by position
  (``os.pread``), with their ``(n + 1,)`` int64 offsets in a memory-mapped ``.npy``. The
  records live in the page cache, which the kernel may evict, never in the process's heap.
* :func:`digest`: the one 128-bit hash (blake2b, 16 bytes) used to find equal lines.
* :func:`first_occurrences`: which rows of a sequence of 128-bit hashes are the first of their
  value, by sorting: in memory up to :data:`BUCKET_ROWS` rows, else scattered on disk into
  buckets by the hash's leading bits and sorted one bucket at a time.
* :func:`hash_groups` / :func:`first_rows`: equal-value groups of hashes or of key columns,
  the building blocks of text dedup.

Two different byte strings share a 128-bit blake2b digest with probability about
``n² / 2¹²⁹`` among ``n`` strings (≈ 1.5e-21 for 10⁹ lines); where a caller can read the
strings back (text dedup) it compares them byte for byte anyway, see :func:`hash_groups`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap

#: rows sorted in one piece when finding first occurrences (24 bytes each, ~60 with the sort)
BUCKET_ROWS = 1 << 20
#: hashes read (and scattered) at a time: ~80 bytes a row while scattering
SCATTER_ROWS = 1 << 17
#: at most this many bucket files (open at once while scattering)
MAX_BUCKETS = 256
#: records compared per call in :func:`hash_groups`, and offsets buffered while appending
CHUNK = 1 << 13

_RECORD = np.dtype([("hi", "<u8"), ("lo", "<u8"), ("row", "<i8")])


def digest(data: bytes) -> bytes:
    """128-bit blake2b of ``data`` (16 bytes)."""
    return hashlib.blake2b(data, digest_size=16).digest()


def digest_words(digests: bytes | bytearray | np.ndarray) -> np.ndarray:
    """Concatenated 16-byte digests (bytes, or an ``S16`` array) as an (n, 2) uint64 array."""
    if isinstance(digests, np.ndarray):
        digests = np.ascontiguousarray(digests)
        return digests.view("<u8").reshape(-1, 2)
    return np.frombuffer(digests, dtype="<u8").reshape(-1, 2)  # a view, no copy


class LineStore:
    """``n`` byte records on disk: append them in order, then read them by position.

    Files in ``folder``: ``records.bin`` (the records back to back) and ``offsets.npy``
    ((n + 1,) int64, memory-mapped: record ``i`` is ``[offsets[i], offsets[i + 1])``).
    Reading uses ``os.pread``, so the process holds only the records it asked for.
    """

    def __init__(self, folder: Path, n: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.n = n
        self.offsets: Any = open_memmap(folder / "offsets.npy", mode="w+", dtype=np.int64,
                                        shape=(n + 1,))
        self.offsets[0] = 0
        self._path = folder / "records.bin"
        self._out: Any = open(self._path, "wb")
        self._pending: list[bytes] = []  # records not yet written
        self._count = 0
        self._end = 0
        self._fd: int | None = None

    def append(self, record: bytes) -> None:
        """Add the next record (at most ``n``)."""
        self._pending.append(record)
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        k = len(self._pending)
        if k:
            self._out.write(b"".join(self._pending))
            ends = self._end + np.cumsum([len(r) for r in self._pending], dtype=np.int64)
            self.offsets[self._count + 1: self._count + 1 + k] = ends
            self._count, self._end = self._count + k, int(ends[-1])
            self._pending.clear()

    def finish(self) -> None:
        """End writing (every record must have been appended) and open for reading."""
        self._flush()
        self._out.close()
        if self._count != self.n:
            raise RuntimeError(f"{self._path}: {self._count} records written, {self.n} "
                               "expected")
        self._fd = os.open(self._path, os.O_RDONLY)

    def get_many(self, positions: np.ndarray) -> list[bytes]:
        """The records at ``positions`` ((m,) int, any order, repeats allowed)."""
        assert self._fd is not None, "LineStore.finish() not called"
        positions = np.asarray(positions, dtype=np.int64)
        starts = self.offsets[positions].tolist()
        ends = self.offsets[positions + 1].tolist()
        fd = self._fd
        return [os.pread(fd, e - s, s) for s, e in zip(starts, ends)]

    def close(self) -> None:
        if not self._out.closed:
            self._out.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.offsets = None  # drop the memory map

    def __enter__(self) -> LineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------ grouping


def first_rows(*keys: np.ndarray) -> np.ndarray:
    """Sorted row numbers of the first row of each distinct tuple of ``keys`` (equal-length
    integer columns): a stable lexicographic sort, then each group's lowest row.
    Cost: O(m log m) time, ~8 bytes per row per key plus the sort's index."""
    if len(keys[0]) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort(keys[::-1])  # lexsort sorts by its last key first
    new = _changes([k[order] for k in keys])
    return np.sort(order[new])


def _changes(columns: Sequence[np.ndarray]) -> np.ndarray:
    """(m,) bool: row i of the sorted columns differs from row i - 1 (row 0: True)."""
    new = np.zeros(len(columns[0]), dtype=bool)
    new[:1] = True
    for c in columns:
        new[1:] |= c[1:] != c[:-1]
    return new


def hash_groups(words: np.ndarray, same: Callable[[np.ndarray, np.ndarray], np.ndarray]
                ) -> np.ndarray:
    """(n,) int64 group id of each of ``n`` items, equal ids for equal items, from their
    128-bit hashes ``words`` ((n, 2) uint64).

    Collision guard: each item whose hash equals an earlier item's is checked with
    ``same(items, firsts)`` ((m,) bool: are the items equal to their group's first?); an item
    that is not (a 128-bit collision, ~never) gets a group of its own, shared with the other
    items of its hash that are equal to it. So groups are exact, whatever the hash.
    """
    n = len(words)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((words[:, 1], words[:, 0]))
    new = _changes([words[order, 0], words[order, 1]])
    group_sorted = np.cumsum(new) - 1
    groups = np.empty(n, dtype=np.int64)
    groups[order] = group_sorted
    members = np.flatnonzero(~new)  # sorted positions sharing the hash of the one before
    firsts = np.flatnonzero(new)[group_sorted[members]]
    next_id = int(group_sorted[-1]) + 1
    split: dict[tuple[int, int], int] = {}  # (group, first differing item) → its new group
    for c in range(0, len(members), CHUNK):
        items, heads = order[members[c:c + CHUNK]], order[firsts[c:c + CHUNK]]
        for item in items[~same(items, heads)].tolist():
            # a collision: find an earlier item of this hash with the same bytes, or start one
            g = int(groups[item])
            for (g0, other), gid in split.items():
                if g0 == g and same(np.asarray([item]), np.asarray([other]))[0]:
                    groups[item] = gid
                    break
            else:
                split[(g, item)] = groups[item] = next_id
                next_id += 1
    return groups


def first_occurrences(hash_files: Sequence[Path], scratch: Path,
                      bucket_rows: int | None = None) -> tuple[Any, int]:
    """First occurrences among the 128-bit hashes of several ``.npy`` files (``(r_i,)``
    ``S16``), rows numbered through the files in order.

    Returns ``(keep, duplicates)``: ``keep`` a (Σ r_i,) bool array memory-mapped in
    ``scratch`` (True: no earlier row has this hash), ``duplicates`` the False count.
    Up to ``bucket_rows`` (default :data:`BUCKET_ROWS`) rows are sorted in memory in one
    piece; more are first scattered into at most :data:`MAX_BUCKETS` files by the hash's
    leading bits (24 bytes a row, hashes read :data:`SCATTER_ROWS` at a time), then each
    bucket is sorted alone: peak memory ~60 bytes × ``max(bucket_rows, rows / MAX_BUCKETS)``.
    """
    bucket_rows = bucket_rows or BUCKET_ROWS
    scratch.mkdir(parents=True, exist_ok=True)
    sizes = [int(np.load(p, mmap_mode="r").shape[0]) for p in hash_files]
    total = sum(sizes)
    keep: Any = open_memmap(scratch / "keep.npy", mode="w+", dtype=bool, shape=(total,))
    keep[:] = True
    buckets = 1
    while buckets < MAX_BUCKETS and total > buckets * bucket_rows:
        buckets *= 2
    duplicates = 0
    for records in _buckets(hash_files, sizes, buckets, scratch):
        # rows inside a bucket ascend (scattered in row order, stable), and lexsort is
        # stable: the first of each run of equal hashes is the first occurrence
        order = np.lexsort((records["lo"], records["hi"]))
        new = _changes([records["hi"][order], records["lo"][order]])
        later = records["row"][order[~new]]
        keep[later] = False
        duplicates += len(later)
    keep.flush()
    return keep, duplicates


def _records(path: Path, first_row: int, chunk: int) -> Iterator[np.ndarray]:
    """A hash file's records (hash words, row number), ``chunk`` rows at a time."""
    h = np.load(path, mmap_mode="r")
    for a in range(0, len(h), chunk):
        words = digest_words(h[a:a + chunk])
        rec = np.empty(len(words), dtype=_RECORD)
        rec["hi"], rec["lo"] = words[:, 0], words[:, 1]
        rec["row"] = first_row + a + np.arange(len(words))
        yield rec


def _buckets(hash_files: Sequence[Path], sizes: list[int], buckets: int, scratch: Path
             ) -> Iterator[np.ndarray]:
    """Yield each bucket's records, in bucket order (one bucket: all of them)."""
    starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
    if buckets == 1:
        out = np.empty(starts[-1], dtype=_RECORD)
        for path, first_row in zip(hash_files, starts):
            for rec in _records(path, first_row, SCATTER_ROWS):
                out[rec["row"][0]:rec["row"][0] + len(rec)] = rec
        yield out
        return
    shift = 64 - (buckets.bit_length() - 1)
    names = [scratch / f"bucket.{b:03d}" for b in range(buckets)]
    files = [open(n, "wb") for n in names]
    try:
        for path, first_row in zip(hash_files, starts):
            for rec in _records(path, first_row, SCATTER_ROWS):
                which = (rec["hi"] >> np.uint64(shift)).astype(np.int64)
                rec = rec[np.argsort(which, kind="stable")]
                bounds = np.concatenate([[0], np.cumsum(np.bincount(which, minlength=buckets))])
                for b in np.flatnonzero(np.diff(bounds)).tolist():
                    files[b].write(rec[bounds[b]:bounds[b + 1]].tobytes())
    finally:
        for fh in files:
            fh.close()
    for name in names:
        records = np.fromfile(name, dtype=_RECORD)
        name.unlink()
        yield records
