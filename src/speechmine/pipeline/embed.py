"""Embed: one stage per shard, each writing ``emb.npy`` (+ ``emb.npy.json`` sidecar).

A job embeds only the shard's kept rows (not blank, not rejected, first occurrences when
unifying) and L2-normalises them, so every later stage works on a compact matrix whose row
``i`` is the ``i``-th kept id of the shard. The key holds the encoder's identity (weights,
code and package versions, effective dtype/quantisation: known without loading the model),
the shard's scan (its content) and, for speech, the identity of every audio file the
manifest names; never the side or the run, so the same shard under the same encoder is
embedded once, whoever asks. Jobs are plain module-level functions over a dataclass, so any
executor (in-process or SLURM) can run them.

A job is resumable within its shard: every chunk of :data:`CHUNK_ROWS` rows is kept on disk
as soon as it is embedded (:class:`Checkpoint`), so a job killed, preempted or timed out and
run again (a rerun, a retry, SLURM's requeue) encodes only the chunks it had not finished.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import encoders, progress
from ..config import RunConfig, SideConfig
from ..io.atomic import write_json, write_npy
from ..io.embeddings import (
    EmbeddingFileError,
    NpyStreamWriter,
    l2_normalize,
    load_embeddings,
    read_sidecar,
)
from ..io.manifest import Units
from ..io.text import iter_raw_lines
from .stage import Stage, kill_point, run_stage

log = logging.getLogger(__name__)

EMBED_VERSION = 1
EMB = "emb.npy"
#: rows embedded and written per chunk (bounds memory whatever the shard size)
CHUNK_ROWS = 4096
#: encoders kept loaded per process: a run alternates between at most two (one per side)
MAX_LOADED_ENCODERS = 2

_ENCODERS: OrderedDict[str, encoders.Encoder] = OrderedDict()


def encoder_identity(side_cfg: SideConfig, verify: str) -> dict[str, Any]:
    """The side's encoder identity (no model is loaded). Not remembered across calls: new
    weights behind the same options must show in the next plan, even in this process (file
    hashes themselves are remembered per file version, see :mod:`speechmine.io.identity`)."""
    enc = side_cfg.encoder
    return encoders.resolve(enc.name).identity(enc.options, side_cfg.lang, verify)


def embed_stage(cfg: RunConfig, side_cfg: SideConfig, index: int, scan: Stage, inputs: Stage,
                existing: str | None, audio: list[str], encoder: dict[str, Any] | None
                ) -> Stage:
    """The embedding of shard ``index`` of a side (see module doc for what is in the key).

    ``existing``: an embedding file imported instead of encoding; ``audio``: the files a
    manifest names (speech; they decide the vectors as much as the manifest does);
    ``encoder``: the side's :func:`encoder_identity` (None when importing).
    """
    config: dict[str, Any] = {"modality": side_cfg.modality, "fp16": cfg.fp16}
    files: list[str] = []
    if existing:
        config.update(source="import", embedding_dimensions=cfg.embedding_dimensions)
        files = [existing]
    else:
        config.update(source="encode", encoder=encoder)
        files = list(audio)
    if side_cfg.modality == "speech":
        config.update(manifest_units=side_cfg.data.manifest_units,
                      on_error=cfg.on_error_for(side_cfg))
    if inputs.config["unify"]:
        # which rows of this shard are first occurrences depends on the shards before it
        config["shard_index"] = index
        upstream = [inputs.key]
    else:
        upstream = [scan.key]
    return Stage("embed", EMBED_VERSION, config=config, inputs=files, upstream=upstream,
                 verify=cfg.cache.verify, packages=("numpy",))


@dataclass
class EmbedJob:
    """Embed the kept rows of one shard into ``stage``'s folder under ``work``.

    rows_file: ``.npy`` of row ids: 0-based lines of the shard, or global ids when
    ``rows_range`` gives the shard's ``[first, end)`` global ids. source: ``"encode"`` (run
    the encoder over the shard) or ``"import"`` (take the rows from ``existing``).
    """

    stage: Stage
    work: str
    shard: str
    rows_file: str
    rows_range: tuple[int, int] | None
    encoder: str
    encoder_options: dict[str, Any]
    lang: str
    modality: str
    fp16: bool
    source: str = "encode"
    existing: str | None = None
    existing_dim: int | None = None
    shard_rows: int | None = None
    manifest_units: Units = "samples"
    on_error: str = "fail"
    verify: str = "content"
    progress: bool = True
    meta: dict[str, Any] = field(default_factory=dict)
    #: a part of the shard (language splitting): ``[lo, hi)`` positions among its rows
    part: tuple[int, int] | None = None

    def rows(self) -> np.ndarray:
        """(r,) int64 sorted 0-based lines of the shard to embed."""
        ids = np.load(self.rows_file, mmap_mode="r")
        if self.rows_range is not None:
            lo, hi = self.rows_range
            a, b = np.searchsorted(ids, [lo, hi])  # global ids are sorted
            ids = ids[a:b] - lo
        if self.part is not None:
            ids = ids[self.part[0]:self.part[1]]
        return np.asarray(ids, dtype=np.int64)


def get_encoder(name: str, lang: str, options: dict[str, Any]) -> encoders.Encoder:
    """Build an encoder, keeping the last :data:`MAX_LOADED_ENCODERS` loaded in this process
    (models are expensive to load, and a run alternates between at most two)."""
    key = json.dumps([name, lang, options], sort_keys=True, default=repr)
    if key in _ENCODERS:
        _ENCODERS.move_to_end(key)
        return _ENCODERS[key]
    log.info("loading encoder %s (lang %s)", name, lang)
    enc = encoders.create(name, lang=lang, **options)
    _ENCODERS[key] = enc
    while len(_ENCODERS) > MAX_LOADED_ENCODERS:
        _ENCODERS.popitem(last=False)
    return enc


def _text_chunks(shard: str, rows: np.ndarray) -> Iterator[list[str]]:
    wanted = iter(rows.tolist())
    nxt = next(wanted, None)
    chunk: list[str] = []
    for i, raw in enumerate(iter_raw_lines(shard)):
        if nxt is None:
            break
        if i == nxt:
            chunk.append(raw.decode("utf-8").strip())
            nxt = next(wanted, None)
            if len(chunk) == CHUNK_ROWS:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def load_embedding(folder: Path) -> str:
    """The path of a finished embedding, after checking it against its sidecar."""
    path = folder / EMB
    sc = read_sidecar(path)
    arr = load_embeddings(path)
    if not sc or arr.shape != (int(sc["rows"]), int(sc["dim"])):
        raise EmbeddingFileError(f"{path}: shape {arr.shape} disagrees with its sidecar {sc}")
    return str(path)


class Checkpoint:
    """The finished chunks of one embed job, in ``<work>/embed/<key>.chunks-<CHUNK_ROWS>/``.

    Chunk ``i`` (rows ``i × CHUNK_ROWS …`` of the job) is ``i.npy`` (its normalised vectors
    in the output dtype) and ``i.json`` (its kept rows, rejects and truncations), each
    written atomically, the JSON last: a chunk counts only once both are there. The key names
    everything the vectors depend on, and the folder name the chunk size, so a chunk found
    here is the chunk this job would compute. The folder goes once the stage is done.
    """

    def __init__(self, job: EmbedJob) -> None:
        self.folder = Path(job.work) / job.stage.name / f"{job.stage.key}.chunks-{CHUNK_ROWS}"

    def load(self, i: int) -> tuple[np.ndarray, dict[str, Any]] | None:
        """Chunk ``i``'s vectors (memory-mapped: finished chunks are not held in memory) and
        record, or None when it is not finished (or unreadable, then it is simply embedded
        again)."""
        try:
            info = json.loads((self.folder / f"{i:06d}.json").read_text())
            arr = np.load(self.folder / f"{i:06d}.npy", mmap_mode="r")
        except (OSError, ValueError):
            return None
        if len(arr) != len(info["rows"]):
            return None
        return arr, info

    def save(self, i: int, arr: np.ndarray, rows: list[int],
             rejects: Sequence[tuple[int, str]] = (), truncated: int = 0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_npy(self.folder / f"{i:06d}.npy", arr)
        write_json(self.folder / f"{i:06d}.json",
                   {"rows": rows, "rejects": [list(r) for r in rejects],
                    "truncated": truncated}, durable=False)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def run_embed_job(job: EmbedJob) -> tuple[str, bool]:
    """Embed one shard unless done; returns (``emb.npy`` path, computed now)."""

    def compute(folder: Path) -> None:
        _compute(job, folder / EMB)

    done = run_stage(job.stage, Path(job.work), compute, load_embedding)
    Checkpoint(job).remove()
    return done


def _compute(job: EmbedJob, out: Path) -> None:
    rows = job.rows()
    dtype = "float16" if job.fp16 else "float32"
    bar = progress.bar(total=len(rows), desc=f"embed {Path(job.shard).name}", unit="row",
               disable=not job.progress, leave=False)
    with bar:
        if job.source == "import":
            assert job.existing is not None
            src = load_embeddings(job.existing, dim=job.existing_dim, dtype=dtype,
                                  rows=job.shard_rows)
            meta = {**job.meta, "imported_from": job.existing, "rows_embedded": rows.tolist(),
                    "rejects": []}
            with NpyStreamWriter(out, len(rows), src.shape[1], dtype, meta) as w:
                for i0 in range(0, len(rows), CHUNK_ROWS):
                    w.write(l2_normalize(src[rows[i0: i0 + CHUNK_ROWS]]))
                    bar.update(min(CHUNK_ROWS, len(rows) - i0))
            return
        _check_identity(job)
        enc = get_encoder(job.encoder, job.lang, job.encoder_options)
        meta = {**job.meta, "encoder": enc.fingerprint(), "normalized": True,
                "rows_embedded": rows.tolist(), "rejects": []}
        # the encoder may be reused across shards (cached): count this shard's truncations
        truncated_before = enc.n_truncated
        if job.modality == "text":
            ck = Checkpoint(job)
            truncated = 0
            with NpyStreamWriter(out, len(rows), enc.dim, dtype, meta) as w:
                for i, chunk in enumerate(_text_chunks(job.shard, rows)):
                    got = ck.load(i)
                    if got is None:
                        before = enc.n_truncated
                        # the bar moves per batch, not per chunk of 4,096 rows
                        vecs = l2_normalize(enc.encode(chunk, progress=bar)).astype(dtype)
                        chunk_rows = rows[i * CHUNK_ROWS:i * CHUNK_ROWS + len(chunk)]
                        ck.save(i, vecs, chunk_rows.tolist(),
                                truncated=enc.n_truncated - before)
                    else:
                        vecs = got[0]
                        truncated += got[1]["truncated"]
                        bar.update(len(vecs))
                    w.write(vecs)
                    kill_point("embed")
                w.meta["truncated"] = truncated + enc.n_truncated - truncated_before
        else:
            _embed_speech(job, rows, enc, out, dtype, meta, bar)


def _check_identity(job: EmbedJob) -> None:
    """The encoder this process would run must be the one the key was computed for (a job on
    another machine may see other weights, another device, other package versions)."""
    here = encoders.resolve(job.encoder).identity(job.encoder_options, job.lang, job.verify)
    planned = job.stage.config.get("encoder")
    if json.dumps(here, sort_keys=True) != json.dumps(planned, sort_keys=True):
        raise encoders.EncoderError(
            f"encoder {job.encoder!r} here differs from the one this run was planned with "
            f"(weights, device, dtype or package versions changed); planned {planned}, "
            f"here {here}")


def _embed_speech(job: EmbedJob, rows: np.ndarray, enc: encoders.Encoder, out: Path,
                  dtype: str, meta: dict[str, Any], bar: Any) -> None:
    """Decode, validate and embed a manifest's segments; the sidecar lists what was kept.

    Sidecar keys: ``rows_embedded`` (0-based manifest lines, in order) and ``rejects``
    (``[line, reason]``), which the pipeline folds into the side's kept ids and rejects.tsv.
    """
    from ..io.speech_inputs import iter_valid_waveforms

    kept: list[int] = []
    rejects: list[tuple[int, str]] = []
    truncated_before = enc.n_truncated
    truncated = 0  # in chunks taken from the checkpoint
    ck = Checkpoint(job)
    done: dict[int, tuple[np.ndarray, dict[str, Any]]] = {}
    for i in range(-(-len(rows) // CHUNK_ROWS)):
        got = ck.load(i)
        if got is None:
            break  # chunks are kept in order: the first missing one is where to go on
        done[i] = got
    w = NpyStreamWriter(out, None, enc.dim, dtype, meta)
    try:
        chunks = iter_valid_waveforms(job.shard, rows, job.manifest_units, enc, CHUNK_ROWS,
                                      job.on_error, job.verify, skip=len(done))
        for i in range(-(-len(rows) // CHUNK_ROWS)):
            if i in done:
                vecs, info = done[i]
                ok, bad = info["rows"], [(int(r), str(why)) for r, why in info["rejects"]]
                truncated += info["truncated"]
                bar.update(len(ok) + len(bad))
            else:
                ok_rows, waves, bad = next(chunks)
                before = enc.n_truncated
                vecs = (l2_normalize(enc.encode(waves, progress=bar)).astype(dtype) if waves
                        else np.zeros((0, enc.dim), dtype=dtype))
                ok = ok_rows.tolist()
                ck.save(i, vecs, ok, bad, enc.n_truncated - before)
                bar.update(len(bad))  # embedded rows moved the bar batch by batch
            if len(vecs):
                w.write(vecs)
            kept.extend(ok)
            rejects.extend(bad)
            kill_point("embed")
    except BaseException:
        w.abort()
        raise
    w.meta.update(rows_embedded=kept, rejects=[[r, why] for r, why in rejects],
                  truncated=truncated + enc.n_truncated - truncated_before)
    w.close()


def embedding_dim(path: str | Path) -> int:
    """Dimension of a finished embedding file (from its sidecar, else its header)."""
    sc = read_sidecar(path)
    return int(sc["dim"]) if "dim" in sc else int(np.load(path, mmap_mode="r").shape[1])
