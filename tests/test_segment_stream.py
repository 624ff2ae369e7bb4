"""Streaming VAD segmentation gives exactly what the whole-file path gave, block by block."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from helpers import DEMO, sine

from speechmine.io import audio as audio_mod
from speechmine.io.audio import load_audio, resample, stream_audio
from speechmine.io.manifest import write_manifest
from speechmine.segment import (
    FRAME,
    SileroVAD,
    candidate_windows,
    duration_bucket,
    segment_file,
    segment_files,
    segment_to_manifest,
    speech_regions,
)
from speechmine.types import SAMPLE_RATE, AudioSegment

REAL = DEMO / "real_en.ogg"


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


def whole_file_probabilities(vad: SileroVAD, wave: np.ndarray) -> np.ndarray:
    """The VAD loop as it was before streaming (the oracle): one array, frame by frame."""
    vad._reset()
    n_frames = -(-len(wave) // FRAME)
    probs = np.empty(n_frames, dtype=np.float32)
    for k in range(n_frames):
        chunk = wave[k * FRAME : (k + 1) * FRAME]
        vad._buf[: len(chunk)] = chunk
        if len(chunk) < FRAME:
            vad._buf[len(chunk) :] = 0.0
        probs[k] = vad._model.process(vad._cbuf)
    return probs


def whole_file_segments(vad: SileroVAD, path, **opts) -> list[AudioSegment]:
    """What segmentation returned before streaming: the whole 16 kHz file, then regions."""
    wave = load_audio(path)
    probs = whole_file_probabilities(vad, wave)
    windows = {k: opts.pop(k) for k in ("overlap_windows", "window_min", "window_max")
               if k in opts}
    regions = speech_regions(probs, len(wave), **opts)
    spans = list(regions)
    if windows.get("overlap_windows"):
        spans = sorted(set(spans) | set(candidate_windows(
            regions, windows.get("window_min", 1.0), windows.get("window_max", 20.0))))
    p = str(path)
    return [AudioSegment(p, a, b, line=f"{p}\t{a}\t{b}") for a, b in spans]


def vad_probs(vad: SileroVAD, path, block_seconds=None):
    return stream_audio(path, lambda blocks, _: vad.stream(blocks), block_seconds=block_seconds)


@pytest.fixture(scope="module")
def odd_stereo(tmp_path_factory) -> str:
    """Real speech + a chirp, 44.1 kHz stereo, a length that is a multiple neither of a
    block nor of a VAD frame (at either rate)."""
    speech = resample(load_audio(REAL)[: 20 * SAMPLE_RATE], SAMPLE_RATE, 44100)
    n = len(speech) + 44100 + 12_345
    left = np.zeros(n, np.float32)
    left[44100 : 44100 + len(speech)] = speech
    right = 0.5 * left + np.concatenate([sine(300, 1.0, 44100, amp=0.05),
                                         np.zeros(n - 44100, np.float32)])
    path = tmp_path_factory.mktemp("odd") / "odd.flac"
    sf.write(path, np.stack([left, right], axis=1), 44100)
    assert n % 44100 and n % FRAME
    return str(path)


def test_stream_equals_whole_file_on_real_speech(vad, tmp_path):
    wave = load_audio(REAL)
    oracle = whole_file_probabilities(vad, wave)
    for block_seconds in (None, 0.37, 3.0):  # default 30 s; cuts inside frames
        probs, n = vad_probs(vad, REAL, block_seconds)
        assert n == len(wave)
        assert probs.dtype == np.float32 and np.array_equal(probs, oracle)
    assert np.array_equal(vad.probabilities(wave), oracle)  # the array form, too
    opts = dict(min_dur=0.3, max_dur=4.0, overlap_windows=True)
    want = whole_file_segments(vad, REAL, **opts)
    assert len(want) > 10
    for block_seconds in (None, 0.37):
        assert segment_file(REAL, vad=vad, block_seconds=block_seconds, **opts) == want
    # the manifest bytes of today's whole-file path
    ref = tmp_path / "ref.tsv"
    write_manifest(ref, want, batch_no=[duration_bucket(s.duration) for s in want],
                   relative=True)
    segment_to_manifest([REAL], tmp_path / "new.tsv", **opts)
    report = segment_files([REAL], tmp_path / "files.tsv", **opts)
    assert (tmp_path / "new.tsv").read_bytes() == ref.read_bytes()
    assert (tmp_path / "files.tsv").read_bytes() == ref.read_bytes()
    assert report.segments == len(want) and report.ok


def test_stream_equals_whole_file_odd_length_resampled_stereo(vad, odd_stereo):
    wave = load_audio(odd_stereo)
    oracle = whole_file_probabilities(vad, wave)
    for block_seconds in (None, 1.3, 0.011):  # 0.011 s at 44.1 kHz: 485 < FRAME samples
        probs, n = vad_probs(vad, odd_stereo, block_seconds)
        assert n == len(wave) and np.array_equal(probs, oracle)
    want = whole_file_segments(vad, odd_stereo, min_dur=0.3, max_dur=3.0)
    assert want
    assert segment_file(odd_stereo, vad=vad, block_seconds=1.3, min_dur=0.3,
                        max_dur=3.0) == want


def test_vad_does_not_depend_on_how_the_signal_is_cut(vad):
    wave = load_audio(REAL)[: 7 * SAMPLE_RATE + 100]
    oracle = whole_file_probabilities(vad, wave)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(len(wave), 60, replace=False))
    # random cuts, empty blocks, single samples, whole frames
    cuts = np.concatenate([[0, 0, 1, 2, FRAME + 2, 2 * FRAME + 2], cuts[cuts > 2 * FRAME + 2],
                           [len(wave)]])
    blocks = [wave[a:b] for a, b in zip(cuts, cuts[1:])]
    probs, n = vad.stream(iter(blocks))
    assert n == len(wave) and np.array_equal(probs, oracle)
    assert vad.stream(iter([]))[1] == 0 and len(vad.stream([])[0]) == 0


def test_stream_audio_blocks_are_bounded_and_make_up_load_audio(odd_stereo):
    sizes: list[int] = []

    def keep(blocks, expected):
        out = []
        for b in blocks:
            assert b.dtype == np.float32 and b.ndim == 1 and b.flags.c_contiguous
            sizes.append(len(b))
            out.append(b.copy())
        return np.concatenate(out), expected

    got, expected = stream_audio(odd_stereo, keep, block_seconds=0.5)
    whole = load_audio(odd_stereo)
    assert np.array_equal(got, whole)  # same samples, bit for bit
    assert abs(expected - len(whole)) <= 1
    # soxr releases what it buffered a little late: blocks are about block_seconds long
    assert max(sizes) <= 1.25 * 0.5 * SAMPLE_RATE and len(sizes) > 1.5 * len(whole) / SAMPLE_RATE


def test_segment_file_never_holds_the_whole_file(vad, odd_stereo, monkeypatch):
    """The VAD sees blocks no longer than one block; nothing collects the whole signal."""
    want = whole_file_segments(vad, odd_stereo)
    seen: list[int] = []
    real_stream = SileroVAD.stream

    def spy(self, blocks):
        def watch():
            for b in blocks:
                seen.append(len(b))
                yield b
        return real_stream(self, watch())

    def no_collect(*_):
        raise AssertionError("the whole file was collected")

    monkeypatch.setattr(audio_mod, "_collect", no_collect)
    monkeypatch.setattr(audio_mod, "load_audio", no_collect)
    monkeypatch.setattr(SileroVAD, "stream", spy)
    assert segment_file(odd_stereo, vad=vad, block_seconds=2.0) == want
    assert max(seen) <= 1.25 * 2 * SAMPLE_RATE and sum(seen) > 8 * max(seen)


def test_decoder_failing_midway_restarts_with_pyav(vad, odd_stereo, monkeypatch):
    """soundfile failing on the data after some blocks were consumed: the file is decoded
    again with PyAV from the start, and the VAD restarts (same result as load_audio)."""
    pytest.importorskip("av")
    real = audio_mod._blocks_soundfile

    def breaks_midway(path, block_seconds=30):
        sr, frames, blocks = real(path, 1.0)

        def gen():
            yield next(blocks)
            yield next(blocks)
            raise sf.LibsndfileError(3, prefix="simulated: ")

        return sr, frames, gen()

    real_av, av_calls = audio_mod._blocks_av, []

    def counted_av(path):
        av_calls.append(path)
        return real_av(path)

    monkeypatch.setattr(audio_mod, "_blocks_soundfile", breaks_midway)
    monkeypatch.setattr(audio_mod, "_blocks_av", counted_av)
    whole = load_audio(odd_stereo)  # also through PyAV
    probs, n = vad_probs(vad, odd_stereo, 1.0)
    assert av_calls == [odd_stereo, odd_stereo]
    assert n == len(whole) and np.array_equal(probs, whole_file_probabilities(vad, whole))
