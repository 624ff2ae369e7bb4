"""Embedding stage: one job per shard, each writing one ``.npy`` (+ sidecar) atomically.

A job embeds only the shard's *kept* rows (not blank, not rejected, first occurrences when
unifying) and L2-normalises them, so every later stage works on a compact matrix whose row
``i`` is the ``i``-th kept id of the side. Jobs are plain module-level functions over a
dataclass, so any executor (in-process or SLURM) can run them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import encoders
from ..io.embeddings import NpyStreamWriter, l2_normalize, load_embeddings, read_sidecar
from ..io.text import iter_raw_lines

log = logging.getLogger(__name__)

#: rows embedded and written per chunk (bounds memory whatever the shard size)
CHUNK_ROWS = 4096

_ENCODERS: dict[str, encoders.Encoder] = {}


@dataclass
class EmbedJob:
    """Embed the kept rows of one shard.

    rows: (r,) int64 line numbers (0-based, within the shard) to embed, sorted.
    source: ``"encode"`` (run the encoder over the shard) or ``"import"`` (take the rows from
    an existing embedding file ``existing``).
    """

    shard: str
    rows: np.ndarray
    out: str
    encoder: str
    encoder_options: dict[str, Any]
    lang: str
    modality: str
    fp16: bool
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = "encode"
    existing: str | None = None
    existing_dim: int | None = None
    existing_dtype: str | None = None
    shard_rows: int | None = None
    progress: bool = True
    manifest_units: str = "samples"
    on_error: str = "fail"


def get_encoder(name: str, lang: str, options: dict[str, Any]) -> encoders.Encoder:
    """Build an encoder once per process (models are expensive to load)."""
    key = repr((name, lang, sorted(options.items())))
    if key not in _ENCODERS:
        log.info("loading encoder %s (lang %s)", name, lang)
        _ENCODERS[key] = encoders.create(name, lang=lang, **options)
    return _ENCODERS[key]


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


def run_embed_job(job: EmbedJob) -> str:
    """Write ``job.out`` (``(len(rows), dim)`` normalised embeddings) and return its path."""
    from tqdm.auto import tqdm

    out = Path(job.out)
    if out.exists():
        return str(out)
    dtype = "float16" if job.fp16 else "float32"
    bar = tqdm(total=len(job.rows), desc=f"embed {Path(job.shard).name}", unit="row",
               disable=not job.progress, leave=False)
    with bar:
        if job.source == "import":
            src = load_embeddings(job.existing, dim=job.existing_dim, dtype=job.existing_dtype,
                                  rows=job.shard_rows)
            meta = {**job.meta, "imported_from": job.existing,
                    "rows_embedded": job.rows.tolist(), "rejects": []}
            with NpyStreamWriter(out, len(job.rows), src.shape[1], dtype, meta) as w:
                for i0 in range(0, len(job.rows), CHUNK_ROWS):
                    w.write(l2_normalize(src[job.rows[i0 : i0 + CHUNK_ROWS]]))
                    bar.update(min(CHUNK_ROWS, len(job.rows) - i0))
            return str(out)
        enc = get_encoder(job.encoder, job.lang, job.encoder_options)
        meta = {**job.meta, "encoder": enc.fingerprint(), "normalized": True}
        if job.modality == "text":
            with NpyStreamWriter(out, len(job.rows), enc.dim, dtype, meta) as w:
                for chunk in _text_chunks(job.shard, job.rows):
                    w.write(l2_normalize(enc.encode(chunk)))
                    bar.update(len(chunk))
        else:
            _embed_speech(job, enc, out, dtype, meta, bar)
    return str(out)


def _embed_speech(job: EmbedJob, enc: encoders.Encoder, out: Path, dtype: str,
                  meta: dict[str, Any], bar: Any) -> None:
    """Decode, validate and embed a manifest's segments; the sidecar lists what was kept.

    Sidecar keys: ``rows_embedded`` (0-based manifest lines, in order) and ``rejects``
    (``[line, reason]``), which the pipeline folds into the side's kept ids and rejects.tsv.
    """
    from ..io.speech_inputs import iter_valid_waveforms

    kept: list[int] = []
    rejects: list[tuple[int, str]] = []
    w = NpyStreamWriter(out, None, enc.dim, dtype, meta)
    try:
        for ok_rows, waves, bad in iter_valid_waveforms(job.shard, job.rows, job.manifest_units,
                                                        enc, CHUNK_ROWS, job.on_error):
            if waves:
                w.write(l2_normalize(enc.encode(waves)))
            kept.extend(ok_rows.tolist())
            rejects.extend(bad)
            bar.update(len(ok_rows) + len(bad))
    except BaseException:
        w.abort()
        raise
    w.meta.update(rows_embedded=kept, rejects=[[r, why] for r, why in rejects])
    w.close()


def embedding_dim(path: str | Path) -> int:
    """Dimension of a finished embedding file (from its sidecar, else its header)."""
    sc = read_sidecar(path)
    return int(sc["dim"]) if "dim" in sc else int(np.load(path, mmap_mode="r").shape[1])
