"""Stopes speech manifests: one speech segment per line, ``audio_file start end [batch_no]``.

``start``/``end`` count samples at 16 kHz with ``end`` exclusive (:mod:`speechmine.types`),
unless the caller says the manifest is in seconds. Fields are tab-separated when the line
contains a tab (the only way to carry a path with spaces), otherwise whitespace-separated.
Relative audio paths are resolved against the manifest's own directory, so a manifest and its
audio can be moved together.

A shard may be gzip-compressed (``*.gz``). Blank lines are skipped but still counted, so that
``lineno`` (1-based) always matches what an editor shows.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Literal

from ..types import SAMPLE_RATE, AudioSegment, seconds_to_samples
from .atomic import atomic_open

log = logging.getLogger(__name__)

__all__ = ["ManifestError", "Units", "iter_manifest", "read_manifest", "parse_line",
           "write_manifest", "format_line"]

Units = Literal["samples", "seconds"]


class ManifestError(ValueError):
    """A manifest line cannot be parsed; the message names ``file:line`` and the line."""


def _open_text(path: str | os.PathLike[str], mode: str, gz: bool | None = None) -> IO[str]:
    """Open UTF-8 text, gzip-compressed when ``gz`` (default: when the name ends in .gz)."""
    # reading: a byte-order mark is not part of the first path ("utf-8-sig" drops it)
    encoding = "utf-8-sig" if "r" in mode else "utf-8"
    if str(path).endswith(".gz") if gz is None else gz:
        return gzip.open(path, mode + "t", encoding=encoding)  # type: ignore[return-value]
    return open(path, mode, encoding=encoding)


def _parse_time(field: str, what: str, units: Units) -> int:
    """One start/end field -> samples at 16 kHz. Raises ``ValueError`` with a short reason."""
    if units == "samples":
        try:
            value = int(field)
        except ValueError:
            hint = " (a manifest in seconds needs units='seconds')" if "." in field else ""
            raise ValueError(f"{what} {field!r} is not an integer sample offset{hint}") from None
    else:
        try:
            seconds = float(field)
        except ValueError:
            raise ValueError(f"{what} {field!r} is not a number of seconds") from None
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            raise ValueError(f"{what} {field!r} is not a finite number of seconds")
        value = seconds_to_samples(seconds)
    if value < 0:
        raise ValueError(f"{what} {field!r} is negative")
    return value


def parse_line(
    line: str,
    *,
    base_dir: str | os.PathLike[str] = ".",
    units: Units = "samples",
    source: str = "",
    lineno: int = 0,
) -> AudioSegment:
    """Parse one non-blank manifest line (without its newline) into an :class:`AudioSegment`.

    Only syntax is checked here (field count, integers, non-negative offsets); whether
    ``start < end`` and the segment fits in its file is judged when audio is loaded
    (:func:`speechmine.io.audio.load_segments`), where it becomes a per-segment reject rather
    than a fatal error.

    Raises:
        ManifestError: the line is malformed; the message is ``source:lineno: reason: line``.
    """
    fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
    try:
        if len(fields) not in (3, 4):
            raise ValueError(
                f"expected 3 or 4 fields (audio_file start end [batch_no]), got {len(fields)}"
            )
        if not fields[0]:
            raise ValueError("empty audio_file field")
        start = _parse_time(fields[1], "start", units)
        end = _parse_time(fields[2], "end", units)
        if len(fields) == 4:
            try:
                int(fields[3])
            except ValueError:
                raise ValueError(f"batch_no {fields[3]!r} is not an integer") from None
    except ValueError as exc:
        raise ManifestError(f"{source or '<manifest>'}:{lineno}: {exc}: {line!r}") from None
    path = fields[0]
    if not os.path.isabs(path):
        path = os.path.normpath(os.path.join(os.fspath(base_dir), path))
    return AudioSegment(path=path, start=start, end=end, line=line, source=source,
                        lineno=lineno)


def manifest_audio_paths(path: str | os.PathLike[str]) -> list[str]:
    """Every distinct audio file a manifest names, resolved, sorted; malformed lines too.

    Reads the first field of every non-blank line (even where the rest of the line does not
    parse, and after such lines), so that a cache key built from these files covers all the
    audio the manifest can ever point to. Missing files are included.
    """
    source = os.fspath(path)
    base_dir = os.path.dirname(os.path.abspath(source))
    from .text import iter_raw_lines

    paths: set[str] = set()
    for raw in iter_raw_lines(source):
        line = os.fsdecode(raw)  # undecodable bytes map back to the file system's names
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        if fields and fields[0]:
            paths.add(os.path.normpath(os.path.join(base_dir, fields[0])))
    return sorted(paths)


def iter_manifest(path: str | os.PathLike[str], units: Units = "samples") -> Iterator[AudioSegment]:
    """Yield the segments of one manifest shard lazily (see :func:`read_manifest`)."""
    if units not in ("samples", "seconds"):
        raise ValueError(f"units must be 'samples' or 'seconds', not {units!r}")
    source = os.fspath(path)
    base_dir = os.path.dirname(os.path.abspath(source))
    with _open_text(source, "r") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            yield parse_line(line, base_dir=base_dir, units=units, source=source,
                             lineno=lineno)


def read_manifest(path: str | os.PathLike[str], units: Units = "samples") -> list[AudioSegment]:
    """Read a stopes speech manifest shard.

    Args:
        path: the manifest (``.gz`` allowed).
        units: ``"samples"`` (stopes: integer sample offsets at 16 kHz) or ``"seconds"``
            (decimal seconds, converted to samples at 16 kHz, rounded to the nearest sample).

    Returns:
        One :class:`AudioSegment` per non-blank line, in file order, with the audio path
        resolved (relative paths against the manifest's directory), ``start``/``end`` in
        samples, ``line`` the raw line, ``source`` the manifest path and ``lineno`` 1-based.

    Raises:
        ManifestError: on the first malformed line (message ``file:line: reason: line``).
    """
    segments = list(iter_manifest(path, units))
    log.debug("read %d segments from %s", len(segments), path)
    return segments


def format_line(path: str, start: int, end: int, batch_no: int = 0) -> str:
    """One tab-separated manifest line (no newline); offsets in samples at 16 kHz."""
    if any(c in path for c in "\t\r\n"):
        raise ValueError(f"audio path {path!r} contains a tab or newline: not representable "
                         "in a manifest")
    return f"{path}\t{int(start)}\t{int(end)}\t{int(batch_no)}"


def write_manifest(
    path: str | os.PathLike[str],
    segments: Iterable[AudioSegment],
    batch_no: Sequence[int] | None = None,
    relative: bool = False,
) -> Path:
    """Write segments as a tab-separated stopes manifest, atomically.

    Tabs (rather than spaces) keep paths with spaces readable by :func:`read_manifest`.
    The file is written through :func:`speechmine.io.atomic.atomic_open` (temporary sibling,
    fsync, rename), so a reader never sees half a manifest and a crash leaves any previous
    file intact.

    Args:
        path: output file (``.gz`` writes gzip).
        segments: what to write, offsets in samples at 16 kHz.
        batch_no: one batch number per segment (default 0 for all).
        relative: write audio paths relative to the manifest's directory (portable
            manifests that travel with their audio); otherwise paths are written as given.

    Returns:
        The manifest path.
    """
    out = Path(path)
    base_dir = out.resolve().parent
    segs = list(segments)
    if batch_no is not None and len(batch_no) != len(segs):
        raise ValueError(f"{len(batch_no)} batch numbers for {len(segs)} segments")
    lines = []
    for i, seg in enumerate(segs):
        audio = os.path.relpath(os.path.abspath(seg.path), base_dir) if relative else seg.path
        lines.append(format_line(audio, seg.start, seg.end, batch_no[i] if batch_no else 0))
    # speechmine's one atomic writer: its temporaries are the ones a later run cleans up
    with atomic_open(out, gz=out.name.endswith(".gz")) as fh:
        fh.writelines(line + "\n" for line in lines)
    log.debug("wrote %d segments (%.1f s of audio) to %s", len(segs),
              sum(s.end - s.start for s in segs) / SAMPLE_RATE, out)
    return out
