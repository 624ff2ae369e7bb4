"""Index: for a side searched through an approximate index (above ``index.exact_max_size``
rows, or a given ``index_type``), three kinds of jobs:

* ``index_train`` (one per side): the empty index of the chosen type trained on a seeded
  sample of ``index.train_sample_size`` rows (stopes' ``sample_sz``) drawn over every part;
* ``index_populate`` (one per part, in parallel): the trained index holding one part's rows
  with their compact ids;
* ``index_merge`` (one per side): the parts' inverted lists merged into ``index.faiss``,
  the lists themselves on disk in ``index.ivfdata`` (memory-mapped, never all in memory).

A *part* is a unit of embedding: a shard, or a piece of at most ``max_shard_size`` rows of one
(language splitting, see :mod:`.split`). The side's logical ``index`` stage (its key planned
before anything runs) is the parent of these jobs: each child key is the parent's plus what
the child alone reads, and the merged index lives in the parent's folder. The merged index is
what a fresh unsplit run builds, so splitting a language changes nothing here.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig, SideConfig
from ..config.model import IndexConfig
from ..index import lists_file, merge_on_disk, populate, read_index, sample_rows, train_index
from ..io.atomic import fsync_dir
from ..io.embeddings import load_embeddings
from .stage import Stage, kill_point, run_stage

log = logging.getLogger(__name__)

INDEX_VERSION = 4  # 4: merged lists on disk (index.ivfdata); 3: no polysemous training
INDEX_FILE = "index.faiss"
TRAINED_FILE = "trained.faiss"
PART_FILE = "part.faiss"


def index_stage(cfg: RunConfig, side_cfg: SideConfig, embeds: list[Stage]) -> Stage:
    """A side's trained, populated, merged index over its shards' embeddings (in order)."""
    return Stage("index", INDEX_VERSION,
                 config={"type": side_cfg.index_type or cfg.index.type,
                         "exact_max_size": cfg.index.exact_max_size, "seed": cfg.index.seed,
                         "train_sample_size": cfg.index.train_sample_size,
                         "opq_niter": cfg.index.opq_niter},
                 upstream=[e.key for e in embeds], packages=("faiss", "numpy"))


@dataclass(frozen=True)
class IndexPlan:
    """The jobs that build one side's index: ``parts[i]`` is (embedding file, first compact
    id) of part ``i``; child stages derive from the side's ``index`` stage."""

    parent: Stage
    factory: str
    parts: tuple[tuple[str, int], ...]
    part_keys: tuple[str, ...]  # the parts' embed keys

    @property
    def train(self) -> Stage:
        return _child(self.parent, "index_train", upstream=list(self.part_keys),
                      config={"factory": self.factory})

    def populate(self, i: int) -> Stage:
        return _child(self.parent, "index_populate",
                      upstream=[self.train.key, self.part_keys[i]],
                      config={"first_id": self.parts[i][1]})

    @property
    def merged(self) -> Stage:
        return _child(self.parent, "index_merge",
                      upstream=[self.populate(i).key for i in range(len(self.parts))],
                      config={"factory": self.factory})


def _child(parent: Stage, name: str, upstream: list[str], config: dict[str, Any]) -> Stage:
    """A job stage under ``parent``: its key covers the parent's and its own reads."""
    return Stage(name, parent.version, config={**dict(parent.config), **config},
                 upstream=[parent.key, *upstream], packages=parent.packages)


def index_plan(stage: Stage, factory: str, emb_files: list[str], emb_keys: list[str],
               sizes: list[int]) -> IndexPlan:
    firsts = np.concatenate([[0], np.cumsum(sizes)])[:-1]
    return IndexPlan(stage, factory, tuple((f, int(o)) for f, o in zip(emb_files, firsts)),
                     tuple(emb_keys))


# ------------------------------------------------------------------------------ jobs


@dataclass(frozen=True)
class IndexJob:
    """One index job of a side: ``what`` is ``train``, ``populate`` (part ``part``) or
    ``merge``."""

    plan: IndexPlan
    work: str
    what: str
    seed: int = 0
    sample_size: int = 0
    part: int = 0
    opq_niter: int = IndexConfig.opq_niter

    @property
    def stage(self) -> Stage:
        p = self.plan
        return {"train": lambda: p.train, "merge": lambda: p.merged,
                "populate": lambda: p.populate(self.part)}[self.what]()


def run_index_job(job: IndexJob) -> str:
    """Run one index job unless done; returns the file it made."""
    import faiss

    p, work = job.plan, Path(job.work)

    def read(stage: Stage, name: str) -> Any:
        return faiss.read_index(str(stage.path(work) / name))

    if job.what == "train":
        def compute(folder: Path) -> None:
            mats = [load_embeddings(f) for f, _ in p.parts]
            picks = sample_rows([len(m) for m in mats], job.sample_size, job.seed)
            sample = np.concatenate([m[i] for m, i in zip(mats, picks)]).astype(np.float32)
            trained = train_index(p.factory, sample, job.seed, job.opq_niter)
            kill_point("index-train")
            faiss.write_index(trained, str(folder / TRAINED_FILE))
        name = TRAINED_FILE
    elif job.what == "populate":
        def compute(folder: Path) -> None:
            trained = read(p.train, TRAINED_FILE)
            f, first = p.parts[job.part]
            faiss.write_index(populate(trained, load_embeddings(f), first),
                              str(folder / PART_FILE))
            kill_point("index-populate")
        name = PART_FILE
    else:
        def compute(folder: Path) -> None:
            parts = [str(p.populate(i).path(work) / PART_FILE) for i in range(len(p.parts))]
            merge_on_disk(read(p.train, TRAINED_FILE), parts, str(folder / INDEX_FILE))
            # the lists were written through a mapping
            fsync_dir(lists_file(str(folder / INDEX_FILE)))
            fsync_dir(folder / INDEX_FILE)
        name = INDEX_FILE
    _, _ = run_stage(job.stage, work, compute, lambda folder: folder)
    return str(job.stage.path(work) / name)


def index_jobs(plan: IndexPlan, work: Path, cfg: RunConfig, what: str) -> list[IndexJob]:
    """The jobs of one kind (``train``, ``populate``, ``merge``) for one side."""
    base = IndexJob(plan, str(work), what, cfg.index.seed, cfg.index.train_sample_size,
                    opq_niter=cfg.index.opq_niter)
    if what == "populate":
        return [dataclasses.replace(base, part=i) for i in range(len(plan.parts))]
    return [base]


def load_index(plan: IndexPlan, work: Path) -> Any:
    """The side's merged index (inverted lists memory-mapped from disk)."""
    return read_index(str(plan.merged.path(work) / INDEX_FILE))
