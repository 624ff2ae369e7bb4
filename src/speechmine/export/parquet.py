"""Parquet export, readable by pandas and by Hugging Face ``datasets``.

One row per pair (columns: :mod:`.records`). With ``audio="embed"`` each speech side also
gets ``<role>_audio``, a struct ``{bytes: binary, path: string}`` holding the segment as a
FLAC file (16 kHz, 16-bit, mono) — the layout of ``datasets``' ``Audio`` feature. The file's
schema metadata carries, under the key ``huggingface``, the features JSON that ``datasets``
writes itself (``{"info": {"features": {...}}}``), so ``load_dataset("parquet", ...)`` types
those columns as ``Audio(sampling_rate=16000)`` and every other column as its ``Value``; the
key ``speechmine`` holds the run's sides and threshold.

Rows are written in row groups as they are read (100 rows per group with audio, as
``datasets`` does for audio; 10,000 without), into a temporary sibling renamed over the
target at the end (:func:`speechmine.io.atomic.atomic_path`): a kill leaves no partial file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_path
from ..types import SAMPLE_RATE
from .reader import ExportError, MinedRun, Pair
from .records import Field, fields, record

log = logging.getLogger(__name__)

ROWS_PER_GROUP = 10_000
ROWS_PER_GROUP_AUDIO = 100  # datasets' own choice for audio (config.PARQUET_ROW_GROUP_SIZE_...)


def _require_pyarrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise ExportError("Parquet export needs pyarrow: pip install 'speechmine[export]'"
                          ) from None
    return pa


def hf_feature(f: Field) -> dict[str, Any]:
    """The ``datasets`` feature JSON of one column."""
    if f.kind == "audio":
        return {"_type": "Audio", "sampling_rate": SAMPLE_RATE}
    return {"_type": "Value", "dtype": f.kind}


def arrow_schema(cols: list[Field], run: MinedRun) -> Any:
    """The Arrow schema with ``huggingface`` and ``speechmine`` metadata (see module doc)."""
    pa = _require_pyarrow()
    types = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(),
             "string": pa.string(),
             "audio": pa.struct([("bytes", pa.binary()), ("path", pa.string())])}
    hf = {"info": {"features": {f.name: hf_feature(f) for f in cols}}}
    about = {"run": str(run.folder), "layout": run.layout,
             "sides": [vars(s) for s in run.sides], "threshold": run.info.get("threshold")}
    return pa.schema([pa.field(f.name, types[f.kind]) for f in cols],
                     metadata={"huggingface": json.dumps(hf), "speechmine": json.dumps(about)})


def write_parquet(run: MinedRun, out: Path, embed: bool,
                  progress: Callable[[int], object] | None = None) -> int:
    """Write every pair of ``run`` to ``out`` (see module doc); returns the rows written.

    ``progress(n)`` is called after each row group with the rows it held.
    """
    _require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .audio import SegmentAudio, flac_bytes

    cols = fields(run.sides, embed)
    schema = arrow_schema(cols, run)
    speech = [(i, s.role) for i, s in enumerate(run.sides) if s.modality == "speech"]
    audio = SegmentAudio() if embed and speech else None
    group = ROWS_PER_GROUP_AUDIO if audio else ROWS_PER_GROUP
    total = 0

    def flush(writer: Any, batch: list[Pair]) -> None:
        recs = [record(p, run.sides) for p in batch]
        if audio is not None:
            for i, role in speech:
                segs = [p.segments[i] for p in batch]
                waves = audio.waveforms([s for s in segs if s is not None])
                for rec, p, wave in zip(recs, batch, waves):
                    rec[f"{role}_audio"] = {"bytes": flac_bytes(wave),
                                            "path": f"{role}-{p.ids[i]}.flac"}
        writer.write_table(pa.Table.from_pylist(recs, schema=schema), row_group_size=group)
        if progress is not None:
            progress(len(batch))

    with atomic_path(out) as tmp:
        with pq.ParquetWriter(str(tmp), schema) as writer:
            batch: list[Pair] = []
            for pair in run.pairs():
                batch.append(pair)
                if len(batch) == group:
                    flush(writer, batch)
                    total, batch = total + len(batch), []
            if batch:  # (no pair at all: the file holds the schema alone)
                flush(writer, batch)
                total += len(batch)
    log.info("wrote %d pairs to %s", total, out)
    return total
