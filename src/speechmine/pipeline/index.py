"""Index: for a side above ``index.exact_max_size`` rows, an IVF-PQ index chosen by size,
trained on a seeded sample, populated shard by shard with compact ids, merged; one
``index.faiss`` per side. Below the size, sides are searched exactly (no index stage runs)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig, SideConfig
from ..index import merge, populate, sample_rows, train_index
from ..io.embeddings import load_embeddings
from .stage import Stage, kill_point, run_stage

log = logging.getLogger(__name__)

INDEX_VERSION = 1
INDEX_FILE = "index.faiss"


def index_stage(cfg: RunConfig, side_cfg: SideConfig, embeds: list[Stage]) -> Stage:
    """A side's trained, populated index over its shards' embeddings (in shard order)."""
    return Stage("index", INDEX_VERSION,
                 config={"type": side_cfg.index_type or cfg.index.type,
                         "exact_max_size": cfg.index.exact_max_size, "seed": cfg.index.seed,
                         "train_sample_size": cfg.index.train_sample_size},
                 upstream=[e.key for e in embeds], packages=("faiss", "numpy"))


def run_index(stage: Stage, work: Path, emb_files: list[str], factory: str, seed: int,
              sample_size: int) -> Any:
    """Load the side's index, or train it on a seeded sample, populate per shard, merge."""
    import faiss

    def compute(folder: Path) -> None:
        mats = [load_embeddings(f) for f in emb_files]
        picks = sample_rows([len(m) for m in mats], sample_size, seed)
        sample = np.concatenate([m[p] for m, p in zip(mats, picks)]).astype(np.float32)
        trained = train_index(factory, sample, seed)
        kill_point("index-train")
        firsts = np.concatenate([[0], np.cumsum([len(m) for m in mats])])

        def shards() -> Any:
            for m, f in zip(mats, firsts):
                yield populate(trained, m, int(f))
                kill_point("index-populate")

        # a generator: each shard's index is merged, then freed (one shard at a time)
        faiss.write_index(merge(trained, shards()), str(folder / INDEX_FILE))

    index, _ = run_stage(stage, work, compute,
                         lambda folder: faiss.read_index(str(folder / INDEX_FILE)))
    return index
