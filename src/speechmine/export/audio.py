"""Audio for exports: segment waveforms as FLAC bytes, and the facts lhotse records about a file.

The waveform of a segment is what the run's encoder saw (:mod:`speechmine.io.audio`: mono,
16 kHz, soxr-resampled when the file has another rate), quantised to 16-bit PCM the way a
16-bit file is read (``k / 32768``), so a 16-bit 16 kHz mono source comes back sample for
sample. Files are decoded once while they stay in a bounded cache (one hour of audio): rows
are fed in chunks, each chunk's segments visited file by file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..types import SAMPLE_RATE, AudioSegment
from .reader import ExportError


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """``(n,)`` float32 in [-1, 1] → int16 (``round(x * 32768)``, clipped)."""
    return np.clip(np.rint(wave * 32768.0), -32768, 32767).astype(np.int16)


def flac_bytes(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A complete FLAC file (16-bit mono) of ``(n,)`` float32 samples."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, to_pcm16(wave), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


class SegmentAudio:
    """Waveforms of manifest segments through one bounded decode cache."""

    def __init__(self) -> None:
        from ..io.audio import AudioCache

        # stat identity: the run checked the contents; a changed file is decoded again
        self.cache = AudioCache(verify="stat")

    def waveforms(self, segments: Sequence[AudioSegment]) -> list[np.ndarray]:
        """``(end - start,)`` float32 16 kHz of each segment, in input order; a segment that
        cannot be loaded (file gone, changed, shorter now) is an :class:`ExportError`."""
        from ..io.audio import load_segments

        out: list[np.ndarray | None] = [None] * len(segments)
        for i, item in load_segments(segments, self.cache):
            if isinstance(item, str):
                seg = segments[i]
                raise ExportError(f"{seg.source}:{seg.lineno}: {item} (the audio changed since "
                                  "the run?)")
            out[i] = item
        return [w for w in out if w is not None]


@dataclass(frozen=True)
class AudioInfo:
    """What lhotse's ``Recording`` says about a file: native rate, frames and channels."""

    sampling_rate: int
    num_samples: int
    channels: int


def probe(path: str) -> AudioInfo:
    """The header facts of an audio file (libsndfile; PyAV, decoding it all for an exact
    frame count, for the formats libsndfile lacks)."""
    import soundfile as sf

    if not os.path.isfile(path):
        raise ExportError(f"{path}: audio file not found (moved since the run?)")
    try:
        info = sf.info(path)
        return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))
    except (RuntimeError, sf.LibsndfileError):
        pass
    try:
        import av
    except ImportError:
        raise ExportError(f"{path}: libsndfile cannot read this file; install the 'av' "
                          "package (pip install 'speechmine[speech]')") from None
    try:
        with av.open(path) as container:
            stream = container.streams.audio[0]
            frames = sum(frame.samples for frame in container.decode(stream))
            return AudioInfo(int(stream.codec_context.sample_rate), int(frames),
                             int(stream.codec_context.channels))
    except (av.FFmpegError, IndexError) as exc:
        raise ExportError(f"{path}: unreadable audio ({exc})") from None
