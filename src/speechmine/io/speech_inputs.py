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
from typing import TYPE_CHECKING, Any

import numpy as np

from ..types import AudioSegment, InputError, samples_to_seconds
from .text import ShardScan, iter_decoded_lines, iter_raw_lines

if TYPE_CHECKING:
    from .manifest import Units

log = logging.getLogger(__name__)


def scan_manifest(shard: str, units: Units, on_error: str) -> ShardScan:
    """One pass over a manifest: count lines, parse every segment line (syntax only).

    rows: the 0-based lines that parse; a malformed line is a reject, or with ``on_error !=
    "skip"`` an :class:`InputError` naming manifest and line.
    """
    from .manifest import ManifestError, parse_line

    rows: list[int] = []
    rejects: list[tuple[int, str]] = []
    blank = n = 0
    base = _base_dir(shard)
    hint = "speech rejects such lines into rejects.tsv unless --strict"
    for n, line in iter_decoded_lines(shard, on_error, rejects, hint):
        if line is None:
            continue
        if not line.strip():
            blank += 1
            continue
        try:
            parse_line(line, base_dir=base, units=units, source=shard, lineno=n)
        except ManifestError as exc:
            if on_error != "skip":
                raise InputError(str(exc)) from None
            rejects.append((n, str(exc).split(": ", 1)[-1]))
            continue
        rows.append(n - 1)
    return ShardScan(rows=np.asarray(rows, dtype=np.int64), size=n, blank=blank,
                     rejects=rejects)


def _base_dir(manifest: str) -> str:
    import os

    return os.path.dirname(os.path.abspath(manifest))


def segments_of(shard: str, rows: np.ndarray, units: Units) -> list[AudioSegment]:
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


_CACHES: dict[str, Any] = {}


def _worker_cache(verify: str) -> Any:
    """One bounded decoded-audio cache per worker process (and identity mode), shared by its
    shard jobs; entries are keyed by file identity, so a replaced file is decoded again."""
    if verify not in _CACHES:
        from .audio import AudioCache

        _CACHES[verify] = AudioCache(verify=verify)
    return _CACHES[verify]


def iter_valid_waveforms(shard: str, rows: np.ndarray, units: Units, encoder: Any, chunk: int,
                         on_error: str, verify: str = "content", skip: int = 0
                         ) -> Iterator[tuple[np.ndarray, list[np.ndarray],
                                         list[tuple[int, str]]]]:
    """Yield ``(rows_ok, waveforms, rejects)`` per chunk of ``chunk`` rows, in row order,
    from the chunk after the first ``skip`` (done before: their audio is not read).

    ``rows_ok``: the line numbers whose waveform is embedded; ``rejects``: (line number,
    reason) of the others. With ``on_error != "skip"`` the first reject raises
    :class:`InputError` naming the manifest and line. Only the data's faults are rejects: a
    system error while reading audio (``OSError``) or any unexpected exception propagates, so
    the job fails, nothing is marked done, and a rerun retries it.
    """
    from .audio import load_segments

    cache = _worker_cache(verify)
    segs = segments_of(shard, rows, units)
    for c0 in range(skip * chunk, len(segs), chunk):
        part = segs[c0 : c0 + chunk]
        got = dict(load_segments(part, cache))
        ok_rows: list[int] = []
        waves: list[np.ndarray] = []
        rejects: list[tuple[int, str]] = []
        for i, seg in enumerate(part):
            item = got[i]
            if isinstance(item, str):  # the audio could not be loaded: the reason why
                reason = item
            else:
                checked: str | None = encoder.check(item)
                if checked is None:
                    ok_rows.append(seg.lineno - 1)
                    waves.append(item)
                    continue
                reason = checked
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

