"""FAISS index choice, training, per-shard population and merging (arrays and index files).

Small collections are searched exactly (see :mod:`speechmine.knn`). Above
``IndexConfig.exact_max_size`` rows, an IVF-PQ index is chosen by size as stopes does
(``OPQ64,IVF{n},PQ64``), trained on a seeded random sample, populated shard by shard with
global int64 ids, then merged into inverted lists on disk (memory-mapped when searched).
Inner product on L2-normalised vectors throughout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

log = logging.getLogger(__name__)

#: (more than this many rows, number of IVF lists): stopes' size table
IVF_TABLE: tuple[tuple[int, int], ...] = (
    (500_000_000, 262_144), (100_000_000, 131_072), (10_000_000, 65_536),
    (4_000_000, 32_768), (700_000, 16_384), (250_000, 8_192), (160_000, 4_096),
    (80_000, 2_048), (10_000, 1_024),
)


def _pq_m(dim: int) -> int:
    """PQ sub-quantisers: 64 like stopes when the dimension allows, else the largest divisor."""
    for m in (64, 48, 32, 24, 16, 12, 8, 4, 2, 1):
        if dim % m == 0 and m <= dim:
            return m
    return 1


def choose_index_type(rows: int, dim: int, requested: str = "auto", exact_max_size: int = 200_000
                      ) -> str:
    """The FAISS factory string for a collection of ``rows`` vectors (``"exact"`` = brute force).

    ``requested`` other than ``auto`` is used as given (``Flat``/``exact`` → exact search).
    """
    if requested in ("exact", "Flat"):
        return "exact"
    if requested != "auto":
        return requested
    if rows <= exact_max_size:
        return "exact"
    nlist = next((n for limit, n in IVF_TABLE if rows > limit), 1024)
    m = _pq_m(dim)
    return f"OPQ{m},IVF{nlist},PQ{m}"


def sample_rows(sizes: Sequence[int], n: int, seed: int) -> list[np.ndarray]:
    """Seeded uniform sample of ``n`` rows over shards; returns sorted row indices per shard."""
    total = int(sum(sizes))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(total, size=min(n, total), replace=False))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [pick[(pick >= lo) & (pick < hi)] - lo for lo, hi in zip(bounds[:-1], bounds[1:])]


def train_index(factory: str, sample: np.ndarray, seed: int, opq_niter: int = 50
                ) -> faiss.Index:
    """An empty index of type ``factory`` trained on ``sample`` (s, d) float32; an OPQ
    rotation in front is trained for ``opq_niter`` iterations (FAISS' default: 50)."""
    dim = sample.shape[1]
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.try_extract_index_ivf(index)
    _no_polysemous_training(index)
    _set_opq_niter(index, opq_niter)
    if ivf is not None:
        ivf.cp.seed = seed
        if len(sample) < ivf.nlist:
            raise ValueError(f"index {factory!r} needs at least {ivf.nlist} training vectors, "
                             f"the collection has {len(sample)}: choose a smaller index_type")
    log.info("training %s on %d vectors", factory, len(sample))
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def _set_opq_niter(index: faiss.Index, niter: int) -> None:
    """``niter`` iterations for every OPQ rotation of ``index``'s transform chain."""
    if not isinstance(index, faiss.IndexPreTransform):
        return
    chain: Any = index.chain  # a SWIG vector (the stubs say list)
    for i in range(chain.size()):
        vt = faiss.downcast_VectorTransform(chain.at(i))
        if isinstance(vt, faiss.OPQMatrix):
            vt.niter = niter


def _no_polysemous_training(index: faiss.Index) -> None:
    """Switch off the polysemous training ``index_factory`` turns on for PQ codes: it only
    permutes the centroids so that Hamming distances between codes mean something (for
    polysemous filtering, which speechmine does not use) and costs far more than the PQ
    training itself — 58 s instead of 0.5 s for IVF8,PQ16 on 1,500 × 64 here. Distances, and
    so neighbours, are the same either way."""
    for sub in (faiss.try_extract_index_ivf(index), index):
        if sub is None:
            continue
        sub = faiss.downcast_index(sub)
        if hasattr(sub, "do_polysemous_training"):
            sub.do_polysemous_training = False


def populate(trained: faiss.Index, vectors: np.ndarray, first_id: int, chunk: int = 65536
             ) -> faiss.Index:
    """A copy of ``trained`` holding ``vectors`` with ids ``first_id …`` (one shard)."""
    index = faiss.clone_index(trained)
    for i0 in range(0, len(vectors), chunk):
        x = np.ascontiguousarray(vectors[i0 : i0 + chunk], dtype=np.float32)
        ids = np.arange(first_id + i0, first_id + i0 + len(x), dtype=np.int64)
        index.add_with_ids(x, ids)
    return index


def lists_file(index_file: str) -> str:
    """Where :func:`merge_on_disk` keeps an index file's inverted lists: beside it,
    ``<stem>.ivfdata``."""
    return str(Path(index_file).with_suffix(".ivfdata"))


def merge_on_disk(trained: faiss.Index, part_files: Sequence[str], index_file: str) -> int:
    """Merge per-part IVF index files (populated from ``trained``) into ``index_file``, the
    inverted lists (codes and ids, in part order within each list) in :func:`lists_file`.
    Returns the number of vectors.

    The parts are memory-mapped and the lists written through a mapped file, so the job's
    memory is the trained index and the lists' directory, not the codes: 1B rows of
    ``OPQ64,IVF262144,PQ64`` are ~72 GB of codes on disk, and a few MB here. Read the result
    with :func:`read_index`."""
    merged = faiss.clone_index(trained)
    target = faiss.extract_index_ivf(merged)
    # kept referenced until the merge is done: each owns its mapped lists
    parts = [faiss.read_index(f, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
             for f in part_files]
    lists = faiss.OnDiskInvertedLists(target.nlist, target.code_size, lists_file(index_file))
    sources = faiss.InvertedListsPtrVector()  # type: ignore[attr-defined]  # not in stubs
    for part in parts:
        sources.push_back(faiss.extract_index_ivf(part).invlists)
    ntotal = int(lists.merge_from_multiple(sources.data(), sources.size(), False))
    del sources, parts
    target.replace_invlists(lists, True)
    lists.this.disown()  # type: ignore[attr-defined]  # SWIG: the index owns it now
    # an OPQ wrapper counts its own ntotal
    merged.ntotal = target.ntotal = ntotal
    faiss.write_index(merged, index_file)
    return ntotal


def read_index(path: str) -> faiss.Index:
    """An index file for searching, its inverted lists memory-mapped: those of
    :func:`merge_on_disk` from :func:`lists_file` (found beside the file, wherever the
    folder has moved), others by FAISS' mmap reader where it can."""
    if Path(lists_file(path)).exists():
        # FAISS' IO_FLAG_MMAP crashes the search of on-disk lists (faiss 1.15); they are
        # mapped by OnDiskInvertedLists itself
        return faiss.read_index(path, faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY)
    try:
        return faiss.read_index(path, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:  # index types FAISS cannot map
        return faiss.read_index(path)


def set_nprobe(index: faiss.Index, nprobe: int) -> None:
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(nprobe, ivf.nlist)
