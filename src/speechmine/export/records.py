"""The fields of one exported pair, shared by the Parquet and JSONL writers.

Per pair: ``score`` (the margin score, a float32 value), ``direction`` (as bimeta writes it),
``src_lang``/``tgt_lang``, ``src_id``/``tgt_id`` (global ids: line numbers over the side's
sorted shards, 0-based), then per side ``<role>_text`` (text sides) or ``<role>_audio_path``,
``<role>_start_s``, ``<role>_end_s`` (speech sides: absolute path, seconds; ``end``
exclusive), ``<role>_audio`` (speech sides, Parquet with ``--audio embed`` only) and
``<role>_meta`` (bimeta's column; None where the run wrote none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..types import samples_to_seconds
from .reader import Pair, SideInfo


@dataclass(frozen=True)
class Field:
    """One column: ``name`` and ``kind`` (float32 | float64 | int64 | string | audio)."""

    name: str
    kind: str


def fields(sides: tuple[SideInfo, ...], embed: bool) -> list[Field]:
    """The columns of an export, in order (``embed``: speech sides carry their audio)."""
    out = [Field("score", "float32"), Field("direction", "string"),
           Field("src_lang", "string"), Field("tgt_lang", "string"),
           Field("src_id", "int64"), Field("tgt_id", "int64")]
    for side in sides:
        r = side.role
        if side.modality == "speech":
            out += [Field(f"{r}_audio_path", "string"), Field(f"{r}_start_s", "float64"),
                    Field(f"{r}_end_s", "float64")]
            if embed:
                out.append(Field(f"{r}_audio", "audio"))
        else:
            out.append(Field(f"{r}_text", "string"))
        out.append(Field(f"{r}_meta", "string"))
    return out


def record(pair: Pair, sides: tuple[SideInfo, ...]) -> dict[str, Any]:
    """The fields of one pair, audio bytes aside (see module doc)."""
    rec: dict[str, Any] = {"score": pair.score, "direction": pair.direction,
                           "src_lang": sides[0].lang, "tgt_lang": sides[1].lang,
                           "src_id": pair.ids[0], "tgt_id": pair.ids[1]}
    for side, text, meta, seg in zip(sides, pair.texts, pair.metas, pair.segments):
        r = side.role
        if seg is not None:
            rec[f"{r}_audio_path"] = seg.path
            rec[f"{r}_start_s"] = samples_to_seconds(seg.start)
            rec[f"{r}_end_s"] = samples_to_seconds(seg.end)
        else:
            rec[f"{r}_text"] = text
        rec[f"{r}_meta"] = meta
    return rec
