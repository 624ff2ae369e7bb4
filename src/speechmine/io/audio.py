"""Audio decoding for speech encoders: any common format -> 1-D float32, mono, 16 kHz.

Decoding goes through soundfile first (its wheels bundle libsndfile >= 1.1: wav, flac,
ogg/vorbis, ogg/opus, mp3) and falls back to PyAV (FFmpeg; optional ``av`` package) for what
libsndfile cannot read (m4a/aac, webm, ...). Channels are averaged to mono and the signal is
resampled to :data:`~speechmine.types.SAMPLE_RATE` with soxr's high-quality filter, block by
block: :func:`stream_audio` hands the 16 kHz blocks to a consumer (VAD segmentation), so a long
file is never whole in memory; :func:`load_audio` collects them into one array.

Manifests address many short segments in few long files, so :class:`AudioCache` decodes each
file once and serves slices of it; :func:`load_segments` validates every segment against its
file and turns problems into short reject reasons instead of exceptions, so one bad line does
not stop a shard.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from ..types import SAMPLE_RATE, AudioSegment, samples_to_seconds, seconds_to_samples

log = logging.getLogger(__name__)

__all__ = ["AudioDecodeError", "EmptyAudioError", "stream_audio", "load_audio", "resample",
           "AudioCache", "load_segments", "batch_by_duration"]


class AudioDecodeError(RuntimeError):
    """The file exists but neither soundfile nor PyAV can decode it (message says why)."""


#: Decoding granularity (seconds at the source rate): bounds the memory a long file needs
#: beyond its 16 kHz result to one block, instead of a full-rate multichannel copy.
_BLOCK_SECONDS = 30

T = TypeVar("T")


class EmptyAudioError(AudioDecodeError):
    """The file holds no audio at all (zero bytes, or no samples once decoded)."""


def _blocks_soundfile(path: str, block_seconds: float = _BLOCK_SECONDS
                      ) -> tuple[int, int, Iterator[np.ndarray]]:
    """``(sample rate, frames, iterator of (n, channels) float32 blocks)`` via libsndfile."""
    import soundfile as sf

    f = sf.SoundFile(path)  # opened now, so that an unreadable header raises here
    blocksize = max(1, int(block_seconds * f.samplerate))

    def blocks() -> Iterator[np.ndarray]:
        with f:
            yield from f.blocks(blocksize=blocksize, dtype="float32", always_2d=True)

    return int(f.samplerate), int(f.frames), blocks()


def _blocks_av(path: str) -> tuple[int, int, Iterator[np.ndarray]]:
    """Same as :func:`_blocks_soundfile` through PyAV (FFmpeg); frames is an estimate.
    Blocks are the codec's frames (a few ms each), so they are small whatever the file."""
    import av  # optional: only needed for formats libsndfile lacks

    container = av.open(path)
    if not container.streams.audio:
        container.close()
        raise AudioDecodeError("no audio stream")
    stream = container.streams.audio[0]
    rate = int(stream.codec_context.sample_rate or 0)
    if rate <= 0:
        container.close()
        raise AudioDecodeError("unknown sample rate")
    frames = 0  # unknown: only sizes the output buffer, which grows as needed
    if stream.duration and stream.time_base is not None:
        frames = int(float(stream.duration * stream.time_base) * rate)
    # Planar float keeps channels apart whatever the codec's native sample format is;
    # rate and layout are left alone so that downmix and resampling stay in one place.
    resampler = av.AudioResampler(format="fltp")

    def blocks() -> Iterator[np.ndarray]:
        with container:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().T
            for out in resampler.resample(None):  # flush
                yield out.to_ndarray().T

    return rate, frames, blocks()


def resample(wave: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D or ``(frames, channels)`` float32 signal with soxr (HQ)."""
    if sr_in == sr_out:
        return wave
    import soxr

    return soxr.resample(wave, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def _iter_16k(sr: int, blocks: Iterator[np.ndarray]) -> Generator[np.ndarray, None, None]:
    """Average channels, resample (soxr stream) and clip, block by block: the one path from
    decoded blocks to 16 kHz samples. soxr's stream gives the same samples as one call over
    the whole signal, whatever the block sizes. Yields non-empty contiguous ``(n,)`` float32
    blocks in [-1, 1]."""
    stream = None
    if sr != SAMPLE_RATE:
        import soxr

        stream = soxr.ResampleStream(sr, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    for block in blocks:
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        out = stream.resample_chunk(mono) if stream is not None else mono
        if len(out):
            # Resampling filters ring a little past full scale; encoders are promised [-1, 1].
            yield np.clip(out, -1.0, 1.0, out=out)
    if stream is not None:
        out = stream.resample_chunk(np.zeros(0, np.float32), last=True)
        if len(out):
            yield np.clip(out, -1.0, 1.0, out=out)


def _collect(blocks: Iterator[np.ndarray], expected: int) -> np.ndarray:
    """The blocks of :func:`_iter_16k` as one contiguous ``(n,)`` float32 array.

    The buffer is sized from the header's length (``expected``, grown if the header was
    wrong), so the result is written once instead of concatenated from pieces (which would
    need 2x)."""
    buf = np.empty(expected + 64 if expected > 0 else SAMPLE_RATE, np.float32)
    n = 0
    for chunk in blocks:
        if n + len(chunk) > len(buf):
            buf = np.resize(buf, max(2 * len(buf), n + len(chunk)))
        buf[n : n + len(chunk)] = chunk
        n += len(chunk)
    return buf[:n] if n > len(buf) // 2 else buf[:n].copy()  # do not pin a mostly empty buffer


def _consume(consume: Callable[[Iterator[np.ndarray], int], T], sr: int, frames: int,
             blocks: Iterator[np.ndarray]) -> T:
    """``consume(16 kHz blocks, expected length)``, closing the decoder whatever happens."""
    stream = _iter_16k(sr, blocks)
    try:
        return consume(stream, frames * SAMPLE_RATE // sr if frames > 0 else 0)
    finally:
        stream.close()
        close = getattr(blocks, "close", None)
        if close is not None:
            close()


#: libsndfile's "System error": the operating system failed a read, not the data
_SF_ERR_SYSTEM = 2


def _soundfile_data_error(exc: BaseException) -> bool:
    """Is a soundfile exception about the file's content (not the system, not a bug)?"""
    import soundfile as sf

    if isinstance(exc, sf.LibsndfileError):
        return exc.code != _SF_ERR_SYSTEM
    return isinstance(exc, sf.SoundFileRuntimeError)


def _av_data_error(exc: BaseException) -> bool:
    """Is a PyAV exception about the file's content? (its OSError kinds are the system's)"""
    import av

    return isinstance(exc, av.error.FFmpegError) and not isinstance(exc, (OSError, MemoryError))


def stream_audio(path: str | os.PathLike[str],
                 consume: Callable[[Iterator[np.ndarray], int], T], *,
                 block_seconds: float | None = None) -> T:
    """Decode an audio file block by block to mono 16 kHz and hand the blocks to ``consume``.

    ``consume(blocks, expected)`` gets an iterator of contiguous ``(n,)`` float32 blocks in
    [-1, 1] at :data:`~speechmine.types.SAMPLE_RATE` (each at most about ``block_seconds`` of
    audio; their concatenation is exactly what :func:`load_audio` returns) and ``expected``,
    the length announced by the header in 16 kHz samples (0 when unknown; a hint only), and
    returns the result. Memory beyond what ``consume`` keeps is bounded by one block.

    When soundfile fails on the data, even after some blocks were consumed, the whole file
    is decoded again with PyAV and ``consume`` is called again from the start: it must not
    keep state across calls (build fresh state on each call).

    Args:
        block_seconds: decoding granularity, seconds at the source rate (default 30).

    Raises:
        FileNotFoundError: no such file.
        EmptyAudioError: (an :class:`AudioDecodeError`) the file has zero bytes.
        AudioDecodeError: the data cannot be decoded by soundfile nor by PyAV (if installed):
            bad data, which a pipeline may skip into its rejects.
        OSError and anything else: the system or the code failed (a read error on a network
            filesystem, a permission, a bug): not the data's fault, so never a reject.
    """
    path = os.fspath(path)
    block_seconds = _BLOCK_SECONDS if block_seconds is None else block_seconds
    if not block_seconds > 0:
        raise ValueError(f"block_seconds must be > 0, got {block_seconds!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    with open(path, "rb") as fh:  # permission and I/O errors surface here, as OSError
        if not fh.read(1):
            raise EmptyAudioError("empty file (0 bytes)")
    try:
        return _consume(consume, *_blocks_soundfile(path, block_seconds))
    except Exception as sf_exc:
        if not _soundfile_data_error(sf_exc):
            raise
        try:
            result = _consume(consume, *_blocks_av(path))
        except ImportError:
            raise AudioDecodeError(
                f"{sf_exc} (install the optional 'av' package to decode more formats)"
            ) from sf_exc
        except Exception as av_exc:
            if not _av_data_error(av_exc) and not isinstance(av_exc, AudioDecodeError):
                raise
            raise AudioDecodeError(f"soundfile: {sf_exc}; PyAV: {av_exc}") from av_exc
        log.debug("decoded %s with PyAV (soundfile: %s)", path, sf_exc)
        return result


def load_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a whole audio file to mono 16 kHz (:func:`stream_audio`, collected).

    Returns:
        ``(n_samples,)`` float32 in [-1, 1] at :data:`~speechmine.types.SAMPLE_RATE`.

    Raises:
        FileNotFoundError: no such file.
        AudioDecodeError: the data cannot be decoded by soundfile nor by PyAV (if installed):
            bad data, which a pipeline may skip into its rejects (a zero-byte file is an
            :class:`EmptyAudioError`, a kind of AudioDecodeError).
        OSError and anything else: the system or the code failed (a read error on a network
            filesystem, a permission, a bug): not the data's fault, so never a reject.
    """
    return stream_audio(path, _collect)


class AudioCache:
    """Least-recently-used cache of decoded files, bounded by the total samples it holds.

    Entries are keyed by the file's path *and* identity (:mod:`speechmine.io.identity`,
    ``verify`` as the run's ``cache.verify``), so a file replaced under the same name is
    decoded again, whatever its size and mtime. Each file is decoded once while it stays in
    the cache; data failures (missing file, undecodable content) are remembered too, so a
    corrupt file referenced by a thousand segments is tried once; system errors are not
    remembered (a retry may succeed). The returned arrays are read-only (callers get views
    of shared buffers; copy before writing). One cache per worker process: not thread-safe.

    Args:
        max_samples: bound on the cached waveforms, in samples at 16 kHz (default one hour,
            ~230 MB). A single file larger than the bound is returned but not kept.
        verify: ``content`` (sha256 of the bytes) or ``stat`` (path, size, mtime).
    """

    def __init__(self, max_samples: int = 3600 * SAMPLE_RATE, verify: str = "content") -> None:
        self.max_samples = int(max_samples)
        self.verify = verify
        self._waves: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._errors: OrderedDict[tuple[str, str], Exception] = OrderedDict()
        self._held = 0
        self.decodes = 0  # number of files decoded (hits do not count): for tests and stats

    @property
    def held_samples(self) -> int:
        """Samples currently cached."""
        return self._held

    def get(self, path: str | os.PathLike[str]) -> np.ndarray:
        """The whole file: read-only ``(n_samples,)`` float32 at 16 kHz (:func:`load_audio`)."""
        import json

        from .identity import file_identity

        where = os.path.abspath(os.fspath(path))
        key = (where, json.dumps(file_identity(where, self.verify), sort_keys=True))
        wave = self._waves.get(key)
        if wave is not None:
            self._waves.move_to_end(key)
            return wave
        if key in self._errors:
            raise self._errors[key]
        self.decodes += 1
        try:
            wave = load_audio(where)
        except (FileNotFoundError, AudioDecodeError) as exc:
            self._errors[key] = exc
            if len(self._errors) > 10_000:  # errors are tiny, but keep the bound honest
                self._errors.popitem(last=False)
            raise
        wave.flags.writeable = False
        if len(wave) <= self.max_samples:
            self._waves[key] = wave
            self._held += len(wave)
            while self._held > self.max_samples:
                _, old = self._waves.popitem(last=False)
                self._held -= len(old)
        return wave


def _check_bounds(seg: AudioSegment, min_duration: float | None,
                  max_duration: float | None) -> str | None:
    """Reject reason from the offsets alone (no decoding), or ``None``."""
    if seg.start >= seg.end:
        return f"empty segment: start {seg.start} >= end {seg.end}"
    n = seg.end - seg.start
    if min_duration is not None and n < seconds_to_samples(min_duration):
        return f"too short: {samples_to_seconds(n):.3f} s < min {min_duration:g} s"
    if max_duration is not None and n > seconds_to_samples(max_duration):
        return f"too long: {samples_to_seconds(n):.3f} s > max {max_duration:g} s"
    return None


def load_segments(
    segments: Sequence[AudioSegment],
    cache: AudioCache | None = None,
    min_duration: float | None = None,
    max_duration: float | None = None,
    group_by_file: bool = True,
) -> Iterator[tuple[int, np.ndarray | str]]:
    """Load and validate manifest segments.

    Yields ``(index, waveform)`` for a good segment (read-only ``(end - start,)`` float32 at
    16 kHz, a view into the cached file) and ``(index, reason)`` for a rejected one, ``index``
    being the position in ``segments``. Reasons: empty segment (start >= end), too short or
    too long (``min_duration``/``max_duration``, seconds), audio file not found, unreadable
    audio, end past the end of the file (strict; the reason says by how much). These are
    the data's faults; any other error (an ``OSError`` such as EIO or EACCES, a bug) is
    raised, so that a job fails and is retried instead of silently dropping speech.

    With ``group_by_file`` (default) segments are visited file by file, in order of each
    file's first appearance and input order within a file, so every file is decoded once
    however small the cache; otherwise in input order. Either way each index is yielded once.
    """
    cache = cache if cache is not None else AudioCache()
    order: Sequence[int] = range(len(segments))
    if group_by_file:
        first: dict[str, int] = {}
        for i, seg in enumerate(segments):
            first.setdefault(seg.path, i)
        order = sorted(order, key=lambda i: (first[segments[i].path], i))
    for i in order:
        seg = segments[i]
        reason = _check_bounds(seg, min_duration, max_duration)
        if reason is None:
            try:
                wave = cache.get(seg.path)
            except FileNotFoundError:
                reason = f"audio file not found: {seg.path}"
            except AudioDecodeError as exc:  # bad data; system errors propagate (see above)
                reason = f"unreadable audio: {exc}"
            else:
                if seg.end > len(wave):
                    reason = (
                        f"end {seg.end} past end of file ({len(wave)} samples, "
                        f"{samples_to_seconds(len(wave)):.3f} s) by {seg.end - len(wave)} "
                        f"samples ({samples_to_seconds(seg.end - len(wave)):.3f} s)"
                    )
                else:
                    yield i, wave[seg.start : seg.end]
                    continue
        log.debug("reject %s:%d: %s", seg.source, seg.lineno, reason)
        yield i, reason


def batch_by_duration(items: Sequence[Any], max_seconds: float) -> list[np.ndarray]:
    """Group items into batches whose padded size stays within ``max_seconds`` of audio.

    Args:
        items: waveforms (anything with ``len``) or lengths, in samples at 16 kHz.
        max_seconds: budget per batch: ``longest item x batch size`` <= this. An item longer
            than the budget gets a batch of its own.

    Returns:
        Batches of indices into ``items``, longest items first, so that each batch pads little.
    """
    lengths = np.fromiter((x if np.isscalar(x) else len(x) for x in items), dtype=np.int64,
                          count=len(items))
    budget = seconds_to_samples(max_seconds)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)  # sorted: the first is the longest
        size = max(1, budget // longest)
        batches.append(order[start : start + size])
        start += size
    return batches
