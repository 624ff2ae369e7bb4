"""kNN: neighbours in both directions over the compact embeddings, exact or through an index.

Two ways, chosen once the sides are embedded (:func:`knn_plan`):

* **exact, one job**: both sides searched exactly (at most ``index.exact_max_size`` rows
  each, whether split or not): each tile of X·Yᵀ is computed once and feeds both directions' heaps
  (with ``mine.fp16_distances``: FAISS' L2 search, stopes' arithmetic). Output in the
  ``knn`` stage's folder: ``fwd.npz`` and ``bwd.npz``.
* **per query part** (``knn_part`` jobs, in parallel): each part of a side (a shard, or a
  piece of at most ``max_shard_size`` rows) is searched in the other side: its merged
  approximate index (then **re-ranked exactly**: the ``index.rerank_k`` approximate
  candidates are scored with the stored embeddings and the best k kept, since PQ distances
  are coarse), a user's index (``existing_index_path``), or, for a side searched exactly
  against one that is not (``index_type: Flat`` on a large side), its parts' embeddings one
  part at a time with the top-k merged. Queries go in batches, so a
  job's memory is one part of queries, one batch of candidates, and the index (memory-mapped
  where FAISS can). Output: one ``nb.npz`` per job.

Margins use the global neighbourhood either way (every query's k neighbours come from the
whole other side), so splitting a language changes results only where an approximate index
would (ties aside). Files hold ``sims`` (n, k) float32, ``ids`` (n, k) int64 compact row ids
(and with stopes' L2 search ``l2``, the squared distances).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import progress
from ..config import RunConfig
from ..index import choose_index_type, set_nprobe
from ..io.atomic import write_npz
from ..io.embeddings import load_embeddings
from ..knn import clamp_k, exact_knn_both, exact_knn_l2, index_knn
from ..types import InputError, Neighbours
from .index import IndexPlan, load_index
from .side import Side
from .stage import Stage, kill_point, run_stage

log = logging.getLogger(__name__)

KNN_VERSION = 3  # 3: exact search breaks ties by id (knn.exact_knn_both)
#: queries re-ranked at once: rerank_k candidate rows of d floats each are gathered per query
RERANK_BATCH = 1024


def knn_stage(cfg: RunConfig, src: Side, tgt: Side) -> Stage:
    """Neighbours of every src row among tgt and back (k, index settings, both sides'
    embeddings and would-be indexes, a user's index files)."""
    existing = [p for p in (src.cfg.existing_index_path, tgt.cfg.existing_index_path) if p]
    return Stage("knn", KNN_VERSION,
                 config={"k": cfg.mine.k, "index": cfg.index, "metric": _metric(cfg),
                         "index_type": [src.cfg.index_type, tgt.cfg.index_type],
                         "existing_index": [bool(src.cfg.existing_index_path),
                                            bool(tgt.cfg.existing_index_path)],
                         "max_shard_size": cfg.max_shard_size,
                         "src_shards": len(src.embed)},
                 inputs=existing,
                 upstream=[e.key for e in src.embed] + [e.key for e in tgt.embed]
                 + [src.index.key, tgt.index.key],
                 verify=cfg.cache.verify, packages=("faiss", "numpy"))


def _metric(cfg: RunConfig) -> str:
    """``l2`` when the exact search keeps FAISS' L2 distances for stopes' float16
    arithmetic (``mine.fp16_distances``), else ``ip``."""
    return "l2" if cfg.mine.fp16_distances else "ip"


def index_types(cfg: RunConfig, src: Side, tgt: Side, dim: int) -> dict[str, str]:
    """Per side: ``existing``, ``exact`` or the FAISS factory string it is searched with."""
    return {side.role: "existing" if side.cfg.existing_index_path else choose_index_type(
        side.n, dim, side.cfg.index_type or cfg.index.type, cfg.index.exact_max_size)
        for side in (src, tgt)}


# ------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Target:
    """What a query part is searched in: ``kind`` ``exact`` (the parts' embeddings),
    ``index`` (the merged index, re-ranked with the parts' embeddings) or ``existing``."""

    kind: str
    parts: tuple[str, ...]  # embedding files, in compact-id order
    sizes: tuple[int, ...]
    index: IndexPlan | None = None
    existing: str | None = None  # existing_index_path
    kept: np.ndarray | None = None  # global ids of the compact rows (existing index)
    total: int = 0  # lines of the side (an existing index holds one vector per line)


@dataclass(frozen=True)
class KnnPart:
    """One ``knn_part`` job: the queries of one part searched in a target."""

    stage: Stage
    work: str
    queries: str  # embedding file
    target: Target
    k: int
    nprobe: int
    rerank_k: int
    progress: bool = True


@dataclass(frozen=True)
class KnnPlan:
    """How the neighbours are found: ``exact`` (one job, the ``knn`` stage) or per query
    part (``fwd``/``bwd`` lists of jobs, in query order)."""

    stage: Stage
    exact: bool
    fwd: tuple[KnnPart, ...] = ()
    bwd: tuple[KnnPart, ...] = ()

    @property
    def keys(self) -> list[str]:
        """Keys of every stage whose output the neighbours are read from."""
        if self.exact:
            return [self.stage.key]
        return [p.stage.key for p in self.fwd + self.bwd]


def knn_plan(cfg: RunConfig, stage: Stage, src: Side, tgt: Side, dim: int, work: Path,
             index_plans: dict[str, IndexPlan | None]) -> KnnPlan:
    """Choose the way (see module doc) and derive every job's key from the ``knn`` stage."""
    types = index_types(cfg, src, tgt, dim)
    if types["src"] == types["tgt"] == "exact":  # split or not: both fit in memory
        return KnnPlan(stage, exact=True)

    def target(side: Side) -> Target:
        kind = types[side.role]
        return Target(kind="exact" if kind == "exact" else
                      "existing" if kind == "existing" else "index",
                      parts=tuple(side.emb_files), sizes=tuple(side.part_sizes),
                      index=index_plans.get(side.role), existing=side.cfg.existing_index_path,
                      kept=side.inputs.kept if kind == "existing" else None,
                      total=side.inputs.total)

    def jobs(queries: Side, into: Side, direction: str) -> tuple[KnnPart, ...]:
        t = target(into)
        upstream = [stage.key, *(k for k in into.part_keys)]
        if t.index is not None:
            upstream.append(t.index.merged.key)
        return tuple(
            KnnPart(Stage("knn_part", KNN_VERSION,
                          config={"direction": direction, "part": i, "target": t.kind,
                                  "rerank_k": cfg.index.rerank_k},
                          upstream=[*upstream, key], packages=stage.packages),
                    str(work), f, t, cfg.mine.k, cfg.index.nprobe, cfg.index.rerank_k,
                    cfg.progress)
            for i, (f, key) in enumerate(zip(queries.emb_files, queries.part_keys)))

    return KnnPlan(stage, exact=False, fwd=jobs(src, tgt, "fwd"), bwd=jobs(tgt, src, "bwd"))


# ------------------------------------------------------------------------------ exact job


@dataclass(frozen=True)
class KnnExact:
    """The one-job exact search of both directions."""

    stage: Stage
    work: str
    src_parts: tuple[str, ...]
    tgt_parts: tuple[str, ...]
    k: int
    tile: int
    metric: str
    progress: bool = True


def load_matrix(files: tuple[str, ...] | list[str]) -> np.ndarray:
    """Part embeddings one after the other as one (n, d) float32 array in memory."""
    parts = [p for p in (load_embeddings(f) for f in files) if len(p)]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def run_knn_exact(job: KnnExact) -> str:
    """Both directions exactly, unless done; returns the stage folder."""

    def compute(folder: Path) -> None:
        x, y = load_matrix(job.src_parts), load_matrix(job.tgt_parts)
        if job.metric == "l2":
            with progress.bar(total=len(x) + len(y), desc="knn (exact L2, stopes' distances)",
                              unit="query", disable=not job.progress) as bar:
                fwd, bwd = exact_knn_l2(x, y, job.k, job.k, progress=bar)
        else:
            tiles = -(-len(x) // job.tile) * -(-len(y) // job.tile)
            with progress.bar(total=tiles, desc="knn (exact, both directions)", unit="tile",
                              disable=not job.progress) as bar:
                fwd, bwd = exact_knn_both(x, y, job.k, job.k, tile=job.tile, progress=bar)
        for name, nb in (("fwd", fwd), ("bwd", bwd)):
            save_neighbours(folder / f"{name}.npz", nb)
            kill_point("knn")

    run_stage(job.stage, Path(job.work), compute, lambda folder: folder)
    return str(job.stage.path(Path(job.work)))


def save_neighbours(path: Path, nb: Neighbours) -> None:
    extra = {} if nb.l2 is None else {"l2": nb.l2}
    write_npz(path, sims=nb.sims, ids=nb.ids, **extra)


def read_neighbours(path: Path) -> Neighbours:
    with np.load(path) as z:
        return Neighbours(z["sims"], z["ids"], z["l2"] if "l2" in z.files else None)


# ------------------------------------------------------------------------------ part jobs


def run_knn_part(job: KnnPart) -> str:
    """Search one query part in its target (see module doc) unless done; returns
    ``nb.npz``'s path."""

    def compute(folder: Path) -> None:
        queries = load_embeddings(job.queries)
        with progress.bar(total=len(queries), desc=f"knn {Path(job.queries).parent.name}",
                          unit="query", disable=not job.progress) as bar:
            nb = search_target(job, queries, bar)
        save_neighbours(folder / "nb.npz", nb)
        kill_point("knn")

    run_stage(job.stage, Path(job.work), compute, lambda folder: folder)
    return str(job.stage.path(Path(job.work)) / "nb.npz")


def search_target(job: KnnPart, queries: np.ndarray, bar: Any) -> Neighbours:
    t = job.target
    n_target = int(sum(t.sizes))
    k = clamp_k(job.k, n_target, "target collection")
    if t.kind == "exact":
        return _exact_over_parts(queries, t, k, bar)
    if t.kind == "existing":
        import faiss

        assert t.existing is not None and t.kept is not None
        index = RemappedIndex(faiss.read_index(t.existing), t.existing, t.kept, t.total)
        set_nprobe(index.index, job.nprobe)
        return index_knn(index, queries, k, progress=bar)
    assert t.index is not None
    index = load_index(t.index, Path(job.work))
    set_nprobe(index, job.nprobe)
    wide = max(k, min(job.rerank_k, n_target)) if job.rerank_k else k
    approx = index_knn(index, queries, wide, progress=bar)
    if not job.rerank_k:
        return approx
    return rerank(queries, approx, t, k)


def _exact_over_parts(queries: np.ndarray, t: Target, k: int, bar: Any) -> Neighbours:
    """Exact top-k of ``queries`` over the target's parts, one part in memory at a time."""
    import faiss

    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    first = 0
    for f, size in zip(t.parts, t.sizes):
        if size:
            flat = faiss.IndexFlatIP(q.shape[1])
            flat.add(np.ascontiguousarray(load_embeddings(f), dtype=np.float32))
            d, i = flat.search(q, min(k, size))
            heap.add_result(d, np.where(i >= 0, i + first, -1))
        first += size
    heap.finalize()
    bar.update(len(queries))
    return Neighbours(heap.D.astype(np.float32), heap.I.astype(np.int64))


def rerank(queries: np.ndarray, approx: Neighbours, t: Target, k: int) -> Neighbours:
    """Exact similarities of the approximate candidates, best k kept (sorted, ties by id).

    Cost per query: ``rerank_k`` dot products of d floats, read from the memory-mapped
    target parts; memory ``RERANK_BATCH × rerank_k × d`` floats at a time."""
    mats = [load_embeddings(f) for f in t.parts]
    starts = np.concatenate([[0], np.cumsum(t.sizes)]).astype(np.int64)
    sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    for q0 in range(0, len(queries), RERANK_BATCH):
        cand = approx.ids[q0:q0 + RERANK_BATCH]
        q = np.asarray(queries[q0:q0 + RERANK_BATCH], dtype=np.float32)
        vecs = np.zeros((*cand.shape, q.shape[1]), dtype=np.float32)
        valid = cand >= 0
        part = np.searchsorted(starts, cand, side="right") - 1
        for p, m in enumerate(mats):
            sel = valid & (part == p)
            if sel.any():
                rows = cand[sel] - starts[p]
                order = np.argsort(rows, kind="stable")  # sorted reads from the memory map
                got = np.asarray(m[rows[order]], dtype=np.float32)
                back = np.empty_like(got)
                back[order] = got
                vecs[sel] = back
        exact = np.einsum("qd,qkd->qk", q, vecs).astype(np.float32)
        exact[~valid] = -np.inf
        # best first; among equal similarities the smaller id (deterministic)
        order = np.lexsort((np.where(valid, cand, np.iinfo(np.int64).max), -exact),
                           axis=1)[:, :k]
        sims[q0:q0 + len(q)] = np.take_along_axis(exact, order, 1)
        ids[q0:q0 + len(q)] = np.where(np.isfinite(sims[q0:q0 + len(q)]),
                                       np.take_along_axis(cand, order, 1), -1)
    return Neighbours(sims, ids)


class RemappedIndex:
    """Search a user's index (ids = global line ids) as if it held only the kept rows.

    Rows speechmine does not mine (blank, rejected, unified duplicates) are dropped from each
    result and the row is refilled from extra neighbours, so neighbourhoods keep k members.
    Stopes builds L2 indexes: on unit vectors, squared L2 d = 2 - 2·cos, so cos = 1 - d/2.
    """

    def __init__(self, index: Any, path: str, kept: np.ndarray, total: int) -> None:
        import faiss

        if index.metric_type not in (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2):
            raise InputError(f"existing_index_path {path}: metric {index.metric_type} is "
                             "neither inner product nor L2")
        if index.ntotal != total:
            raise InputError(f"existing_index_path {path}: holds {index.ntotal} vectors, the "
                             f"side has {total} lines (one vector per line, ids = global "
                             "line ids)")
        self.index, self.ntotal = index, len(kept)
        self.l2 = index.metric_type == faiss.METRIC_L2
        self.dropped = total - len(kept)
        self.lookup = np.full(total + 1, -1, dtype=np.int64)
        self.lookup[kept] = np.arange(len(kept))

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims, ids = self.index.search(q, min(self.index.ntotal, k + self.dropped))
        if self.l2:
            sims = 1 - sims / 2
        mapped = self.lookup[np.where(ids >= 0, ids, len(self.lookup) - 1)]
        sims = np.where(mapped >= 0, sims, -np.inf).astype(np.float32)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        sims = np.take_along_axis(sims, order, 1)
        mapped = np.take_along_axis(mapped, order, 1)
        return sims, np.where(np.isfinite(sims), mapped, -1)


# ------------------------------------------------------------------------------ reading


def read_knn(plan: KnnPlan, work: Path) -> tuple[Neighbours, Neighbours]:
    """Both directions' neighbours, from the exact job or the part jobs (in query order)."""
    if plan.exact:
        folder = plan.stage.path(work)
        return read_neighbours(folder / "fwd.npz"), read_neighbours(folder / "bwd.npz")

    def join(parts: tuple[KnnPart, ...]) -> Neighbours:
        nbs = [read_neighbours(p.stage.path(work) / "nb.npz") for p in parts]
        return Neighbours(np.concatenate([n.sims for n in nbs]),
                          np.concatenate([n.ids for n in nbs]))

    return join(plan.fwd), join(plan.bwd)
