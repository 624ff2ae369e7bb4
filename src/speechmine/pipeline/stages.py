"""The stages of a mining run, each a function over files that can be rerun alone.

inputs → embed → (index) → knn → mine → outputs. Each stage writes under
``<output_dir>/work/<stage>/<key>`` where ``key`` hashes its inputs and the settings that
change its result; an existing output is reused, a missing one is (re)computed.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import encoders
from ..config import RunConfig, SideConfig
from ..index import choose_index_type, merge, populate, sample_rows, set_nprobe, train_index
from ..io.atomic import atomic_open, atomic_path, write_json, write_npz
from ..io.embeddings import EmbeddingFileError, load_embeddings
from ..io.text import (InputError, Reject, SideInputs, find_shards, read_nl_file,
                       scan_text_side, shard_sort_key)
from ..knn import Neighbours, exact_knn_both, index_knn
from ..margin import Alignment, mine_neighbours
from .cache import file_digest, key_of
from .embed import EmbedJob, embedding_dim, get_encoder, run_embed_job

log = logging.getLogger(__name__)


@dataclass
class Side:
    """A side during a run: its config, inputs, and compact embedding files (one per shard)."""

    role: str  # "src" | "tgt"
    cfg: SideConfig
    inputs: SideInputs
    digests: list[str]
    emb_files: list[str] = dataclasses.field(default_factory=list)
    emb_key: str = ""

    @property
    def n(self) -> int:
        return len(self.inputs.kept)


# --------------------------------------------------------------------------- inputs


def _stat_key(paths: list[str]) -> list[Any]:
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    return out


def stage_inputs(cfg: RunConfig, role: str, work: Path) -> Side:
    """Find and scan one side's shards (cached on their path, size and mtime)."""
    side_cfg = cfg.src if role == "src" else cfg.tgt
    d = side_cfg.data
    where = f"lang_configs.{side_cfg.name}"
    shards = find_shards(side_cfg.name, d.data_shard_dir, d.shard_list, d.shard_glob, d.bname,
                         d.shard_type, where)
    if side_cfg.segment is not None:
        shards = stage_segment(side_cfg, role, shards, work, cfg.progress)
    metas = None
    if d.meta_glob:
        # in the shards' order (by shard number), so meta file i pairs with shard i
        metas = sorted(glob.glob(d.meta_glob.replace("{lang}", side_cfg.name)),
                       key=shard_sort_key)
        if not metas:
            raise InputError(f"{where}.data.meta_glob: no file matches {d.meta_glob!r}")
    unify = cfg.mine.unify and side_cfg.modality == "text"
    on_error = cfg.on_error_for(side_cfg)
    key = key_of("inputs", _stat_key(shards + (metas or [])), on_error, unify,
                 d.shard_type, d.manifest_units, side_cfg.encoder.name)
    path = work / "inputs" / f"{role}-{side_cfg.name}-{key}.json"
    kept_path = path.with_suffix(".kept.npy")
    if path.exists():  # the .json is written last: its presence means both files are whole
        saved = json.loads(path.read_text())
        inputs = SideInputs(shards=saved["shards"], sizes=saved["sizes"],
                            kept=np.load(kept_path), metas=saved["metas"],
                            rejects=[Reject(**r) for r in saved["rejects"]],
                            blank=saved["blank"], duplicates=saved["duplicates"])
        return Side(role, side_cfg, inputs, saved["digests"])
    nl = None
    if d.nl_file_template and d.data_shard_dir:
        nl = read_nl_file(Path(d.data_shard_dir) / d.nl_file_template.replace("{lang}",
                                                                             side_cfg.name))
        if nl is not None and len(nl) != len(shards):
            nl = None  # stopes: an .nl file counts only when it has one number per shard
    if side_cfg.modality == "speech":
        from ..io.speech_inputs import scan_speech_side

        inputs = scan_speech_side(role, side_cfg, shards, on_error, cfg.progress)
    else:
        inputs = scan_text_side(role, shards, metas, nl, on_error, unify, cfg.progress)
    digests = [file_digest(s) for s in shards]
    if side_cfg.modality == "speech":
        # a manifest's embeddings also depend on the audio it points to
        digests = [key_of(dg, _stat_key(_audio_files(s, d.manifest_units)))
                   for dg, s in zip(digests, shards)]
    with atomic_open(kept_path, "wb") as fh:  # (n_kept,) int64: compact at any scale
        np.save(fh, inputs.kept)
    write_json(path, {"shards": inputs.shards, "sizes": inputs.sizes, "metas": inputs.metas,
                      "rejects": [dataclasses.asdict(r) for r in inputs.rejects],
                      "blank": inputs.blank, "duplicates": inputs.duplicates,
                      "digests": digests})
    return Side(role, side_cfg, inputs, digests)


def stage_segment(side_cfg: SideConfig, role: str, audio: list[str], work: Path,
                  progress: bool) -> list[str]:
    """VAD-segment each audio file into its own stopes manifest (cached per file)."""
    from tqdm.auto import tqdm

    from ..segment import segment_to_manifest

    seg = dataclasses.asdict(side_cfg.segment)
    out_dir = work / "segment" / f"{role}-{side_cfg.name}-{key_of('segment', seg)}"
    manifests = []
    for i, path in enumerate(tqdm(audio, desc=f"segment {role}", unit="file",
                                  disable=not progress)):
        out = out_dir / f"{i:05d}-{key_of(_stat_key([path]))}.tsv"
        if not out.exists():
            segment_to_manifest([path], out, relative=False, **seg)
        manifests.append(str(out))
    return manifests


def _audio_files(manifest: str, units: str) -> list[str]:
    """Distinct existing audio files a manifest refers to (missing ones become rejects)."""
    from ..io.manifest import ManifestError, iter_manifest

    paths: set[str] = set()
    try:
        for seg in iter_manifest(manifest, units):
            paths.add(seg.path)
    except ManifestError:
        pass  # the scan already reported or skipped the malformed line
    return sorted(p for p in paths if os.path.isfile(p))


# --------------------------------------------------------------------------- embed


def _existing_embeddings(side: Side) -> list[str] | None:
    g = side.cfg.existing_embedding_glob
    if not g:
        return None
    from ..io.text import shard_sort_key

    files = sorted(glob.glob(g.replace("{lang}", side.cfg.name)), key=shard_sort_key)
    if len(files) != len(side.inputs.shards):
        raise InputError(f"lang_configs.{side.cfg.name}.existing_embedding_glob: {len(files)} "
                         f"files match {g!r}, expected one per shard "
                         f"({len(side.inputs.shards)})")
    return files


def _flat_values(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in _flat_values(x)]
    if isinstance(obj, (list, tuple)):
        return [v for x in obj for v in _flat_values(x)]
    return [obj]


def embed_jobs(cfg: RunConfig, side: Side, work: Path) -> list[EmbedJob]:
    """One job per shard; ``side.emb_files`` is filled with their (future) output paths."""
    enc = side.cfg.encoder
    existing = _existing_embeddings(side)
    # everything that changes the vectors: the encoder, its options and the files they name
    # (a new checkpoint at the same path), its package version, imported files' stats, how
    # manifests are read and, for speech, which segments a failure policy lets through
    options = enc.result_options()
    named_files = sorted(v for v in _flat_values(options) if isinstance(v, str) and
                         os.path.isfile(v))
    side.emb_key = key_of("embed", enc.name, options, side.cfg.lang, cfg.fp16,
                          existing and _stat_key(existing), cfg.embedding_dimensions,
                          _stat_key(named_files), encoders.resolve(enc.name).cache_salt(),
                          side.cfg.data.manifest_units, cfg.on_error_for(side.cfg))
    out_dir = work / "embed" / f"{side.role}-{side.cfg.name}-{side.emb_key}"
    offsets = side.inputs.offsets
    kept = side.inputs.kept
    jobs, files = [], []
    for s, shard in enumerate(side.inputs.shards):
        lo, hi = offsets[s], offsets[s + 1]
        rows = kept[(kept >= lo) & (kept < hi)] - lo
        shard_key = key_of(side.digests[s], rows.tobytes().hex() if len(rows) < 64 else
                           key_of(rows.tobytes().hex()))
        out = out_dir / f"{s:05d}-{shard_key}.npy"
        files.append(str(out))
        if out.exists():
            continue
        jobs.append(EmbedJob(
            shard=shard, rows=rows, out=str(out), encoder=enc.name,
            encoder_options=dict(enc.options), lang=side.cfg.lang, modality=side.cfg.modality,
            fp16=cfg.fp16, meta={"shard": shard, "side": side.role, "lang": side.cfg.lang},
            source="import" if existing else "encode",
            existing=existing[s] if existing else None,
            existing_dim=cfg.embedding_dimensions,
            existing_dtype="float16" if cfg.fp16 else "float32",
            shard_rows=side.inputs.sizes[s], progress=cfg.progress,
            manifest_units=side.cfg.data.manifest_units, on_error=cfg.on_error_for(side.cfg)))
    side.emb_files = files
    return jobs


def stage_embed(cfg: RunConfig, sides: list[Side], work: Path, executor: Any) -> dict[str, int]:
    """Embed every missing shard of both sides; returns the number of shards embedded."""
    done: dict[str, int] = {}
    all_jobs = {side.role: embed_jobs(cfg, side, work) for side in sides}
    # the dimensions are known before any heavy work: fail now, not after embedding one side
    early = {side.role: _expected_dim(side, all_jobs[side.role]) for side in sides}
    if early["src"] != early["tgt"]:
        _different_spaces(sides, early["src"], early["tgt"])
    for side in sides:
        jobs = all_jobs[side.role]
        futures = [executor.submit(run_embed_job, job) for job in jobs]
        for f in futures:
            f.result()
        done[side.role] = len(jobs)
        if side.cfg.modality == "speech":
            _fold_speech_rejects(side)
    dims = {side.role: {embedding_dim(f) for f in side.emb_files} for side in sides}
    for side in sides:
        if len(dims[side.role]) > 1:
            raise EmbeddingFileError(f"side {side.cfg.name}: shards of different dimensions "
                                     f"{sorted(dims[side.role])}")
    (ds,), (dt,) = dims["src"], dims["tgt"]
    if ds != dt:
        _different_spaces(sides, ds, dt)
    return done


def _different_spaces(sides: list[Side], ds: int, dt: int) -> None:
    raise EmbeddingFileError(
        f"the two sides live in different spaces: {sides[0].cfg.name} has {ds}-d "
        f"embeddings ({sides[0].cfg.encoder.name}), {sides[1].cfg.name} has {dt}-d "
        f"({sides[1].cfg.encoder.name}); use encoders of one embedding space")


def _expected_dim(side: Side, jobs: list[EmbedJob]) -> int:
    """A side's embedding width without embedding anything.

    From a finished shard's sidecar, else an imported file's header, else the encoder itself
    (built once per process: the in-process executor reuses it for the jobs).
    """
    finished = [f for f in side.emb_files if Path(f).exists()]
    if finished:
        return embedding_dim(finished[0])
    job = jobs[0]
    if job.source == "import":
        return int(load_embeddings(job.existing, dim=job.existing_dim,
                                   dtype=job.existing_dtype).shape[1])
    return get_encoder(job.encoder, job.lang, job.encoder_options).dim


def _fold_speech_rejects(side: Side) -> None:
    """Speech segments rejected while decoding leave the kept ids and join the rejects."""
    from ..io.embeddings import read_sidecar

    kept, seen = [], {(r.file, r.line) for r in side.inputs.rejects}
    offsets = side.inputs.offsets
    for s, f in enumerate(side.emb_files):
        sc = read_sidecar(f)
        kept.append(offsets[s] + np.asarray(sc.get("rows_embedded", []), dtype=np.int64))
        for row, why in sc.get("rejects", []):
            if (side.inputs.shards[s], row + 1) not in seen:
                side.inputs.rejects.append(Reject(side.role, side.inputs.shards[s], row + 1, why))
    side.inputs.kept = np.concatenate(kept) if kept else np.zeros(0, np.int64)


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


# --------------------------------------------------------------------------- index + knn


def _side_index(cfg: RunConfig, side: Side, factory: str, work: Path) -> Any:
    """Train on a seeded sample, populate per shard, merge; cached as one .faiss file."""
    import faiss

    key = key_of("index", side.emb_key, [Path(f).name for f in side.emb_files], factory,
                 cfg.index.seed, cfg.index.train_sample_size)
    out = work / "index" / f"{side.role}-{side.cfg.name}-{key}.faiss"
    if out.exists():
        return faiss.read_index(str(out))
    mats = [load_embeddings(f) for f in side.emb_files]
    picks = sample_rows([len(m) for m in mats], cfg.index.train_sample_size, cfg.index.seed)
    sample = np.concatenate([m[p] for m, p in zip(mats, picks)]).astype(np.float32)
    trained = train_index(factory, sample, cfg.index.seed)
    firsts = np.concatenate([[0], np.cumsum([len(m) for m in mats])])
    # a generator: each shard's index is merged, then freed (one shard in memory at a time)
    merged = merge(trained, (populate(trained, m, int(f)) for m, f in zip(mats, firsts)))
    with atomic_path(out) as tmp:
        faiss.write_index(merged, str(tmp))
    return merged


def _existing_index(side: Side) -> Any:
    """A user-supplied index over the side's global ids, remapped to compact ids."""
    import faiss

    index = faiss.read_index(side.cfg.existing_index_path)
    if index.ntotal != side.inputs.total:
        raise InputError(f"existing_index_path {side.cfg.existing_index_path}: holds "
                         f"{index.ntotal} vectors, the side has {side.inputs.total} lines "
                         "(one vector per line, ids = global line ids)")
    return index


class _RemappedIndex:
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


def stage_knn(cfg: RunConfig, src: Side, tgt: Side, work: Path) -> tuple[Neighbours, Neighbours]:
    """kNN in both directions over the compact embeddings (exact or through an index)."""
    from tqdm.auto import tqdm

    dim = embedding_dim(src.emb_files[0])
    types = {}
    for side in (src, tgt):
        types[side.role] = "existing" if side.cfg.existing_index_path else choose_index_type(
            side.n, dim, side.cfg.index_type or cfg.index.type, cfg.index.exact_max_size)
    k = cfg.mine.k
    key = key_of("knn", src.emb_key, tgt.emb_key, [Path(f).name for f in src.emb_files],
                 [Path(f).name for f in tgt.emb_files], types, k, cfg.index.nprobe,
                 cfg.index.seed, cfg.index.train_sample_size,
                 [_stat_key([p]) for p in (src.cfg.existing_index_path,
                                           tgt.cfg.existing_index_path) if p])
    out = work / "knn" / key
    if (out / "bwd.npz").exists() and (out / "fwd.npz").exists():
        f, b = np.load(out / "fwd.npz"), np.load(out / "bwd.npz")
        return Neighbours(f["sims"], f["ids"]), Neighbours(b["sims"], b["ids"])
    if types["src"] == types["tgt"] == "exact":
        x, y = load_side_matrix(src), load_side_matrix(tgt)
        tiles = -(-len(x) // cfg.index.tile) * -(-len(y) // cfg.index.tile)
        with tqdm(total=tiles, desc="knn (exact, both directions)", unit="tile",
                  disable=not cfg.progress) as bar:
            fwd, bwd = exact_knn_both(x, y, k, k, tile=cfg.index.tile, progress=bar)
    else:
        indexes = {}
        for side in (src, tgt):
            t = types[side.role]
            if t == "existing":
                user_index = _existing_index(side)
                set_nprobe(user_index, cfg.index.nprobe)
                indexes[side.role] = _RemappedIndex(user_index, side)
            elif t == "exact":  # a small side searched exactly: it fits in memory
                import faiss

                flat = faiss.IndexFlatIP(dim)
                flat.add(load_side_matrix(side))
                indexes[side.role] = flat
            else:
                indexes[side.role] = _side_index(cfg, side, t, work)
                set_nprobe(indexes[side.role], cfg.index.nprobe)
        with tqdm(total=src.n + tgt.n, desc="knn (index)", unit="query",
                  disable=not cfg.progress) as bar:
            # queries stream shard by shard from the memory-mapped embeddings
            fwd = _query_shards(indexes["tgt"], src, k, bar)
            bwd = _query_shards(indexes["src"], tgt, k, bar)
    write_npz(out / "fwd.npz", sims=fwd.sims, ids=fwd.ids)
    write_npz(out / "bwd.npz", sims=bwd.sims, ids=bwd.ids)
    return fwd, bwd


# --------------------------------------------------------------------------- mine


def stage_mine(cfg: RunConfig, src: Side, tgt: Side, fwd: Neighbours, bwd: Neighbours
               ) -> Alignment:
    """All selected pairs inside the threshold window, ids mapped back to global ids."""
    al = mine_neighbours(fwd, bwd, cfg.mine)
    al = Alignment(al.scores, src.inputs.kept[al.src], tgt.inputs.kept[al.tgt], al.direction)
    for side, ids in ((src, "src"), (tgt, "tgt")):
        if side.cfg.segment is not None and side.cfg.segment.overlap_windows:
            al = _drop_overlapping(al, side, ids)
    return al


def _drop_overlapping(al: Alignment, side: Side, which: str) -> Alignment:
    """Overlapping candidate windows: keep the best pair of each stretch of audio."""
    from ..io.speech_inputs import segments_of
    from ..segment import remove_overlaps

    gids = al.src if which == "src" else al.tgt
    spans: dict[int, tuple[str, int, int]] = {}
    offsets = side.inputs.offsets
    for s, shard in enumerate(side.inputs.shards):
        in_shard = np.unique(gids[(gids >= offsets[s]) & (gids < offsets[s + 1])])
        for seg in segments_of(shard, in_shard - offsets[s], side.cfg.data.manifest_units):
            spans[int(offsets[s] + seg.lineno - 1)] = (seg.path, seg.start, seg.end)
    keep = remove_overlaps(al.scores, [spans[int(g)] for g in gids],
                           ids=list(zip(al.src.tolist(), al.tgt.tolist())))
    log.info("overlap clean-up on %s: kept %d of %d pairs", side.cfg.name, len(keep), len(al))
    return al.take(keep)
