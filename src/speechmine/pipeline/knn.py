"""kNN: neighbours in both directions over the compact embeddings, exact or through an index.

Both sides at most ``index.exact_max_size`` rows: each tile of X·Yᵀ is computed once and
feeds both directions' heaps. Otherwise each side is searched through its index (trained by
:mod:`.index`, or the user's ``existing_index_path``; a small side as a flat index), queries
streaming shard by shard from the memory-mapped embeddings. Output: ``fwd.npz`` and
``bwd.npz`` (``sims`` (n, k) float32, ``ids`` (n, k) int64 compact row ids; with
``mine.fp16_distances`` and exact search also ``l2``, FAISS' squared L2 distances, which
stopes' float16 rounding needs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig
from ..index import choose_index_type, set_nprobe
from ..io.atomic import write_npz
from ..io.embeddings import load_embeddings
from ..knn import exact_knn_both, exact_knn_l2, index_knn
from ..types import InputError, Neighbours
from .index import run_index
from .side import Side
from .stage import Stage, kill_point, run_stage

log = logging.getLogger(__name__)

KNN_VERSION = 1


def knn_stage(cfg: RunConfig, src: Side, tgt: Side) -> Stage:
    """Neighbours of every src row among tgt and back (k, index settings, both sides'
    embeddings and would-be indexes, a user's index files)."""
    existing = [p for p in (src.cfg.existing_index_path, tgt.cfg.existing_index_path) if p]
    return Stage("knn", KNN_VERSION,
                 config={"k": cfg.mine.k, "index": cfg.index, "metric": _metric(cfg),
                         "index_type": [src.cfg.index_type, tgt.cfg.index_type],
                         "existing_index": [bool(src.cfg.existing_index_path),
                                            bool(tgt.cfg.existing_index_path)],
                         "src_shards": len(src.embed)},
                 inputs=existing,
                 upstream=[e.key for e in src.embed] + [e.key for e in tgt.embed]
                 + [src.index.key, tgt.index.key],
                 verify=cfg.cache.verify, packages=("faiss", "numpy"))


def _metric(cfg: RunConfig) -> str:
    """``l2`` when the exact search keeps FAISS' L2 distances for stopes' float16
    arithmetic (``mine.fp16_distances``), else ``ip``."""
    return "l2" if cfg.mine.fp16_distances else "ip"


def side_shards(side: Side) -> list[np.ndarray]:
    """The side's non-empty shard embeddings, memory-mapped; an error when there are none."""
    parts = [p for p in (load_embeddings(f) for f in side.emb_files) if len(p)]
    if not parts:
        raise InputError(f"side {side.cfg.name} has nothing to mine: every line is blank or "
                         f"rejected ({side.inputs.total} lines in {len(side.inputs.shards)} "
                         "shard(s))")
    return parts


def load_side_matrix(side: Side) -> np.ndarray:
    """All compact embeddings of a side as one (n, d) float32 array in memory."""
    return np.ascontiguousarray(np.concatenate(side_shards(side)), dtype=np.float32)


def index_types(cfg: RunConfig, src: Side, tgt: Side, dim: int) -> dict[str, str]:
    """Per side: ``existing``, ``exact`` or the FAISS factory string it is searched with."""
    return {side.role: "existing" if side.cfg.existing_index_path else choose_index_type(
        side.n, dim, side.cfg.index_type or cfg.index.type, cfg.index.exact_max_size)
        for side in (src, tgt)}


def run_knn(stage: Stage, work: Path, cfg: RunConfig, src: Side, tgt: Side, dim: int
            ) -> tuple[Neighbours, Neighbours]:
    """Load or compute both directions' neighbours (see module doc)."""

    def compute(folder: Path) -> None:
        fwd, bwd = _search(cfg, src, tgt, dim, work)
        for name, nb in (("fwd", fwd), ("bwd", bwd)):
            extra = {} if nb.l2 is None else {"l2": nb.l2}
            write_npz(folder / f"{name}.npz", sims=nb.sims, ids=nb.ids, **extra)
            kill_point("knn")

    def load(folder: Path) -> tuple[Neighbours, Neighbours]:
        def read(name: str) -> Neighbours:
            with np.load(folder / f"{name}.npz") as z:
                return Neighbours(z["sims"], z["ids"], z["l2"] if "l2" in z.files else None)
        return read("fwd"), read("bwd")

    result, _ = run_stage(stage, work, compute, load)
    return result


def _search(cfg: RunConfig, src: Side, tgt: Side, dim: int, work: Path
            ) -> tuple[Neighbours, Neighbours]:
    from tqdm.auto import tqdm

    types = index_types(cfg, src, tgt, dim)
    k = cfg.mine.k
    if types["src"] == types["tgt"] == "exact":
        x, y = load_side_matrix(src), load_side_matrix(tgt)
        if _metric(cfg) == "l2":
            with tqdm(total=len(x) + len(y), desc="knn (exact L2, stopes' distances)",
                      unit="query", disable=not cfg.progress) as bar:
                return exact_knn_l2(x, y, k, k, progress=bar)
        tiles = -(-len(x) // cfg.index.tile) * -(-len(y) // cfg.index.tile)
        with tqdm(total=tiles, desc="knn (exact, both directions)", unit="tile",
                  disable=not cfg.progress) as bar:
            return exact_knn_both(x, y, k, k, tile=cfg.index.tile, progress=bar)
    indexes = {side.role: _searchable(cfg, side, types[side.role], dim, work)
               for side in (src, tgt)}
    with tqdm(total=src.n + tgt.n, desc="knn (index)", unit="query",
              disable=not cfg.progress) as bar:
        # queries stream shard by shard from the memory-mapped embeddings
        fwd = _query_shards(indexes["tgt"], src, k, bar)
        bwd = _query_shards(indexes["src"], tgt, k, bar)
    return fwd, bwd


def _searchable(cfg: RunConfig, side: Side, kind: str, dim: int, work: Path) -> Any:
    import faiss

    if kind == "existing":
        assert side.cfg.existing_index_path is not None
        user_index = faiss.read_index(side.cfg.existing_index_path)
        if user_index.ntotal != side.inputs.total:
            raise InputError(f"existing_index_path {side.cfg.existing_index_path}: holds "
                             f"{user_index.ntotal} vectors, the side has {side.inputs.total} "
                             "lines (one vector per line, ids = global line ids)")
        set_nprobe(user_index, cfg.index.nprobe)
        return RemappedIndex(user_index, side)
    if kind == "exact":  # a small side searched exactly: it fits in memory
        flat = faiss.IndexFlatIP(dim)
        flat.add(load_side_matrix(side))
        return flat
    index = run_index(side.index, work, side.emb_files, kind, cfg.index.seed,
                      cfg.index.train_sample_size)
    set_nprobe(index, cfg.index.nprobe)
    return index


class RemappedIndex:
    """Search a user's index (ids = global line ids) as if it held only the kept rows.

    Rows speechmine does not mine (blank, rejected, unified duplicates) are dropped from each
    result and the row is refilled from extra neighbours, so neighbourhoods keep k members.
    Stopes builds L2 indexes: on unit vectors, squared L2 d = 2 - 2·cos, so cos = 1 - d/2.
    """

    def __init__(self, index: Any, side: Side) -> None:
        import faiss

        if index.metric_type not in (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2):
            raise InputError(f"existing_index_path {side.cfg.existing_index_path}: metric "
                             f"{index.metric_type} is neither inner product nor L2")
        self.index, self.ntotal = index, side.n
        self.l2 = index.metric_type == faiss.METRIC_L2
        self.dropped = side.inputs.total - side.n
        self.lookup = np.full(side.inputs.total + 1, -1, dtype=np.int64)
        self.lookup[side.inputs.kept] = np.arange(side.n)

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


def _query_shards(index: Any, side: Side, k: int, bar: Any) -> Neighbours:
    """Search every embedded row of ``side`` in ``index``, one shard file at a time."""
    parts = [index_knn(index, m, k, progress=bar) for m in side_shards(side)]
    return Neighbours(np.concatenate([p.sims for p in parts]),
                      np.concatenate([p.ids for p in parts]))
