"""Audio clips for the report's speech rows: the segment each mined pair points at.

Where a segment is: bimeta's speech meta column ``audio_file start_s end_s`` (speechmine's
layout; the path may hold spaces, the two times never do), else the bitext column, which
holds the raw manifest line (stopes' layout writes no speech meta), with relative paths
looked up under the given base folders (the manifests' folders, or ``--audio-root``).

Each clip is decoded as the encoder saw it (:mod:`speechmine.io.audio`: mono, 16 kHz, soxr),
cut to at most :data:`MAX_CLIP_SECONDS`, and written as 16-bit FLAC named by a hash of
``(file, start, end)``, so a segment shown in several rows is one file and a rerun rewrites
the same names. Each file is decoded once (segments are visited file by file).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..types import SAMPLE_RATE, seconds_to_samples

log = logging.getLogger(__name__)

#: clips longer than this are cut to their first MAX_CLIP_SECONDS (page size; segments the
#: encoders take are shorter than this anyway)
MAX_CLIP_SECONDS = 30.0
CLIP_SUFFIX = ".flac"


@dataclass(frozen=True, order=True)
class Segment:
    """A stretch of one audio file, in seconds."""

    path: str
    start: float
    end: float

    @property
    def clip_name(self) -> str:
        key = f"{self.path}\0{self.start!r}\0{self.end!r}".encode()
        return hashlib.sha1(key).hexdigest()[:20] + CLIP_SUFFIX

    def label(self) -> str:
        return f"{os.path.basename(self.path)} {self.start:.2f}–{self.end:.2f} s"


def _line_times(text: str) -> tuple[str, float, float] | None:
    """``(audio_file, start, end)`` of a manifest line (numbers in the manifest's units)."""
    fields = [f.strip() for f in text.split("\t")] if "\t" in text else text.split()
    if len(fields) not in (3, 4) or not fields[0]:
        return None
    try:
        return fields[0], float(fields[1]), float(fields[2])
    except ValueError:
        return None


#: bimeta prints seconds with 3 decimals
_META_TOLERANCE = 6e-4


def segment_of(text: str, meta: str, bases: Sequence[Path], units: str = "samples"
               ) -> Segment | None:
    """The segment of a speech cell; None when neither column parses.

    ``meta`` (``audio_file start_s end_s``) gives the file; its times are rounded to the
    millisecond, so the manifest line in ``text`` gives the exact offsets when they agree
    with them (in samples or, for a manifest in seconds, in seconds). Without a meta, the
    manifest line alone, in ``units``, relative paths looked up under ``bases`` (else the
    current folder).
    """
    line = _line_times(text)
    parts = meta.strip().rsplit(" ", 2)
    if len(parts) == 3 and parts[0]:
        try:
            path, start, end = parts[0], float(parts[1]), float(parts[2])
        except ValueError:
            pass
        else:
            if line is not None:
                for scale in (SAMPLE_RATE, 1):
                    a, b = line[1] / scale, line[2] / scale
                    if abs(a - start) <= _META_TOLERANCE and abs(b - end) <= _META_TOLERANCE:
                        return Segment(path, a, b)
            return Segment(path, start, end)
    if line is None:
        return None
    raw, a, b = line
    scale = SAMPLE_RATE if units == "samples" else 1
    path = raw
    if not os.path.isabs(raw):
        found = [base / raw for base in bases if (base / raw).is_file()]
        path = str(found[0]) if found else os.path.abspath(raw)
    return Segment(path, a / scale, b / scale)


@dataclass(frozen=True)
class Clips:
    """``files``: segment → clip file name (in the clips folder); ``problems``: segment →
    why it has no clip (file not found, unreadable, past the end of the file)."""

    files: dict[Segment, str]
    problems: dict[Segment, str]


def write_clips(segments: Iterable[Segment], folder: Path) -> Clips:
    """Decode and write the clip of each segment into ``folder`` (FLAC, 16 kHz mono); clips
    left there by an earlier report and no longer used are removed."""
    try:
        import soundfile as sf

        from ..io.audio import AudioCache, AudioDecodeError
    except ImportError:
        reason = "no audio player: soundfile is not installed (pip install 'speechmine[speech]')"
        return Clips(files={}, problems={s: reason for s in segments})
    from ..io.atomic import atomic_path

    todo = sorted(set(segments))  # file by file: each decoded once
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
    cache = AudioCache(verify="stat")
    files: dict[Segment, str] = {}
    problems: dict[Segment, str] = {}
    for seg in todo:
        try:
            wave = cache.get(seg.path)
        except FileNotFoundError:
            problems[seg] = f"audio file not found: {seg.path}"
            continue
        except (AudioDecodeError, OSError) as exc:
            problems[seg] = f"unreadable audio: {seg.path}: {exc}"
            continue
        start = seconds_to_samples(seg.start)
        end = min(seconds_to_samples(min(seg.end, seg.start + MAX_CLIP_SECONDS)), len(wave))
        if start >= end:
            problems[seg] = (f"segment {seg.start:.3f}–{seg.end:.3f} s is past the end of "
                             f"{seg.path} ({len(wave) / SAMPLE_RATE:.3f} s)")
            continue
        with atomic_path(folder / seg.clip_name) as tmp:
            sf.write(str(tmp), wave[start:end], SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        files[seg] = seg.clip_name
    used = set(files.values())
    for old in folder.glob(f"*{CLIP_SUFFIX}"):
        if old.name not in used and len(old.stem) == 20:
            old.unlink()
    if problems:
        log.warning("%d of %d segment(s) have no clip, e.g. %s", len(problems),
                    len(problems) + len(files), next(iter(problems.values())))
    return Clips(files=files, problems=problems)
