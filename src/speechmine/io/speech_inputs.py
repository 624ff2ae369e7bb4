"""Speech sides of the pipeline: stopes manifests in, validated waveforms out.

A speech shard is a manifest (``audio_file start end batch_no`` per line, 16 kHz sample
offsets by default). The global id of a segment is the position of its line in the
concatenation of the sorted manifests, blank lines included, as for text.

Syntax errors are found by the inputs stage; everything that needs the audio (missing or
corrupt file, end past the end of the file, too short or too long for the encoder) is found
while embedding, where each file is decoded anyway (once per worker, through a bounded
cache). Such a segment becomes a reject (``--on-error skip``, the default for speech is set by
the config) or a fatal error naming manifest and line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..types import AudioSegment, samples_to_seconds
from .text import InputError, Reject, SideInputs, iter_raw_lines

log = logging.getLogger(__name__)


def scan_speech_side(role: str, side_cfg: Any, shards: list[str], on_error: str,
                     progress: bool = True) -> SideInputs:
    """Count manifest lines, parse every segment line; kept = syntactically valid lines."""
    from tqdm.auto import tqdm

    from .manifest import ManifestError, parse_line

    units = side_cfg.data.manifest_units
    kept: list[int] = []
    rejects: list[Reject] = []
    sizes: list[int] = []
    blank = 0
    gid = 0
    for shard in tqdm(shards, desc=f"scan {role}", unit="manifest", disable=not progress):
        n = 0
        base = _base_dir(shard)
        for n, raw in enumerate(iter_raw_lines(shard), start=1):
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                blank += 1
            else:
                try:
                    parse_line(line, base_dir=base, units=units, source=shard, lineno=n)
                    kept.append(gid)
                except ManifestError as exc:
                    if on_error != "skip":
                        raise InputError(str(exc)) from None
                    rejects.append(Reject(role, shard, n, str(exc).split(": ", 1)[-1]))
            gid += 1
        sizes.append(n)
    return SideInputs(shards=shards, sizes=sizes, kept=np.asarray(kept, dtype=np.int64),
                      rejects=rejects, blank=blank)


def _base_dir(manifest: str) -> str:
    import os

    return os.path.dirname(os.path.abspath(manifest))


def segments_of(shard: str, rows: np.ndarray, units: str) -> list[AudioSegment]:
    """The segments at 0-based line numbers ``rows`` of one manifest."""
    from .manifest import parse_line

    wanted = set(rows.tolist())
    base = _base_dir(shard)
    out = []
    for i, raw in enumerate(iter_raw_lines(shard)):
        if i in wanted:
            out.append(parse_line(raw.decode("utf-8", errors="replace"), base_dir=base,
                                  units=units, source=shard, lineno=i + 1))
    return out


_CACHE: Any = None


def _worker_cache() -> Any:
    """One bounded decoded-audio cache per worker process, shared by its shard jobs."""
    global _CACHE
    if _CACHE is None:
        from .audio import AudioCache

        _CACHE = AudioCache()
    return _CACHE


def iter_valid_waveforms(shard: str, rows: np.ndarray, units: str, encoder: Any, chunk: int,
                         on_error: str) -> Iterator[tuple[np.ndarray, list[np.ndarray],
                                                          list[tuple[int, str]]]]:
    """Yield ``(rows_ok, waveforms, rejects)`` per chunk of ``chunk`` rows, in row order.

    ``rows_ok``: the line numbers whose waveform is embedded; ``rejects``: (line number,
    reason) of the others. With ``on_error != "skip"`` the first reject raises
    :class:`InputError` naming the manifest and line.
    """
    from .audio import load_segments

    cache = _worker_cache()
    segs = segments_of(shard, rows, units)
    for c0 in range(0, len(segs), chunk):
        part = segs[c0 : c0 + chunk]
        got = dict(load_segments(part, cache))
        ok_rows, waves, rejects = [], [], []
        for i, seg in enumerate(part):
            item = got[i]
            reason = item if isinstance(item, str) else encoder.check(item)
            if reason is None:
                ok_rows.append(seg.lineno - 1)
                waves.append(item)
                continue
            if on_error != "skip":
                raise InputError(f"{seg.source}:{seg.lineno}: {reason} (use --on-error skip to "
                                 "list such segments in rejects.tsv and go on)")
            rejects.append((seg.lineno - 1, reason))
        yield np.asarray(ok_rows, dtype=np.int64), waves, rejects


def speech_meta(line: str, side: Any, gid: int) -> str:
    """bimeta column of a speech segment: ``audio_file start_s end_s`` (seconds, 3 decimals)."""
    from .manifest import parse_line

    shard, lineno = side.inputs.locate(gid)
    seg = parse_line(line, base_dir=_base_dir(shard), units=side.cfg.data.manifest_units,
                     source=shard, lineno=lineno)
    return f"{seg.path} {samples_to_seconds(seg.start):.3f} {samples_to_seconds(seg.end):.3f}"

