"""The jobs of the stages that have no job type of their own: segment, scan, select, outputs.

Each is a small picklable dataclass and a module-level function, so that any executor can
run it in another process or on another machine (embed, index and kNN jobs live in their
stage modules: :class:`.embed.EmbedJob`, :class:`.index.IndexJob`, :class:`.knn.KnnPart`).
A job reads what it needs from the stage outputs under ``work`` and writes its own through
the stage contract; what it returns is small (paths, counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import RunConfig, SideConfig
from ..types import Alignment
from .ensemble import FusedSpace, load_spaces
from .inputs import run_scan, run_segment
from .knn import KnnPlan, read_knn
from .outputs import run_outputs
from .select import run_select
from .side import Side
from .stage import Stage, kill_point


@dataclass(frozen=True)
class SegmentTask:
    stage: Stage
    work: str
    audio: str
    side_cfg: SideConfig


def segment_job(t: SegmentTask) -> str:
    return run_segment(t.stage, Path(t.work), t.audio, t.side_cfg)


@dataclass(frozen=True)
class ScanTask:
    stage: Stage
    work: str
    shard: str
    cfg: RunConfig
    side_cfg: SideConfig


def scan_job(t: ScanTask) -> bool:
    now = run_scan(t.stage, Path(t.work), t.shard, t.cfg, t.side_cfg)
    kill_point("inputs")
    return now


@dataclass(frozen=True)
class SelectTask:
    """Margins and pair selection over both directions' neighbours (the whole run's)."""

    stage: Stage
    work: str
    cfg: RunConfig
    src: Side
    tgt: Side
    knn: KnnPlan
    #: an encoder ensemble under margin_mean fusion: every member's neighbours and embeddings
    fused: tuple[FusedSpace, ...] = ()


def select_job(t: SelectTask) -> dict[str, int]:
    """Returns the neighbour counts for the run summary."""
    work = Path(t.work)
    fwd, bwd = read_knn(t.knn, work)
    al = run_select(t.stage, work, t.cfg, t.src, t.tgt, fwd, bwd,
                    (lambda: load_spaces(t.fused, work)) if t.fused else None)
    return {"k": int(fwd.k), "fwd_queries": len(fwd.sims), "bwd_queries": len(bwd.sims),
            "pairs": len(al)}


def load_alignment(stage: Stage, work: Path) -> Alignment:
    with np.load(stage.path(work) / "align.npz") as z:
        return Alignment(z["scores"], z["src_ids"], z["tgt_ids"], z["direction"])


@dataclass(frozen=True)
class OutputsTask:
    stage: Stage
    work: str
    select: Stage
    src: Side
    tgt: Side
    index_type: str


def outputs_job(t: OutputsTask) -> dict[str, tuple[str, str]]:
    """The output files in the stage's folder: ``{kind: (relative name, path)}``."""
    work = Path(t.work)
    files = run_outputs(t.stage, work, load_alignment(t.select, work), t.src, t.tgt,
                        t.index_type)
    return {kind: (rel, str(path)) for kind, (rel, path) in files.items()}


def task_label(role: str, kind: str, i: int | None = None) -> str:
    return f"{role}.{kind}" if i is None else f"{role}.{kind}.{i}"


__all__ = ["SegmentTask", "segment_job", "ScanTask", "scan_job", "SelectTask", "select_job",
           "OutputsTask", "outputs_job", "load_alignment", "task_label"]
