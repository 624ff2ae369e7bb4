"""Decoding, downmix, resampling and per-segment validation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from helpers import dominant_freq, sine

from speechmine.io import audio as audio_mod
from speechmine.io.audio import (
    AudioCache,
    AudioDecodeError,
    batch_by_duration,
    load_audio,
    load_segments,
)
from speechmine.types import AudioSegment


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_resample_keeps_frequency_and_length(tmp_path, sr):
    path = tmp_path / f"s{sr}.wav"
    sf.write(path, sine(440, 2.0, sr), sr)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 32000) <= 1
    assert dominant_freq(wave, 16000) == pytest.approx(440, abs=1.0)
    assert np.abs(wave).max() <= 1.0
    # amplitude survives (HQ filter, 440 Hz is far from any cut-off)
    assert np.sqrt(np.mean(wave[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = sine(440, 1.0, 44100), sine(1000, 1.0, 44100, amp=0.25)
    path = tmp_path / "st.flac"
    sf.write(path, np.stack([left, right], axis=1), 44100)
    wave = load_audio(path)
    assert len(wave) == 16000
    spec = np.abs(np.fft.rfft(wave))
    # both channels present, at half their amplitude (mean of channels)
    assert spec[440] / spec[1000] == pytest.approx(2.0, rel=0.05)
    assert np.abs(wave).max() == pytest.approx(0.375, abs=0.02)


@pytest.mark.parametrize(
    "ext, fmt, subtype, tol",
    [("flac", "FLAC", "PCM_16", 1e-3), ("ogg", "OGG", "VORBIS", None),
     ("opus", "OGG", "OPUS", None), ("mp3", "MP3", "MPEG_LAYER_III", None)],
)
def test_decode_compressed_formats(tmp_path, ext, fmt, subtype, tol):
    x = sine(440, 1.5, 48000)
    path = tmp_path / f"a.{ext}"
    sf.write(path, x, 48000, format=fmt, subtype=subtype)
    wave = load_audio(path)
    # lossy codecs may add encoder delay/padding: a few tens of ms at most
    assert abs(len(wave) - 24000) < 0.05 * 16000
    assert dominant_freq(wave, 16000) == pytest.approx(440, abs=2.0)
    if tol is not None:
        assert np.abs(wave - sine(440, 1.5, 16000)).max() < 0.02


def test_pyav_fallback_for_formats_libsndfile_lacks(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "a.m4a"
    x = sine(440, 1.0, 44100)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100, layout="mono")
        frame = av.AudioFrame.from_ndarray(x[None, :], format="fltp", layout="mono")
        frame.sample_rate = 44100
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(sf.LibsndfileError):
        sf.read(path)
    wave = load_audio(path)
    assert abs(len(wave) - 16000) < 0.1 * 16000
    assert dominant_freq(wave, 16000) == pytest.approx(440, abs=2.0)


def test_corrupt_file_message_without_av(tmp_path, monkeypatch):
    path = tmp_path / "junk.wav"
    path.write_bytes(b"RIFF not really audio" * 10)

    def no_av(_):
        raise ImportError("No module named 'av'")

    monkeypatch.setattr(audio_mod, "_blocks_av", no_av)
    with pytest.raises(AudioDecodeError, match="install the optional 'av'"):
        load_audio(path)


def _segs(path, *bounds):
    return [AudioSegment(str(path), s, e, source="m.tsv", lineno=i + 1)
            for i, (s, e) in enumerate(bounds)]


def test_load_segments_good_and_each_reject(tmp_path):
    good = tmp_path / "two_seconds.wav"
    sf.write(good, sine(440, 2.0, 16000), 16000)
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + b"\0" * 100)
    segs = (
        _segs(good, (0, 16000), (100, 100), (16000, 8000), (0, 800), (0, 32000),
              (24000, 48000))
        + _segs(tmp_path / "missing.wav", (0, 16000))
        + _segs(corrupt, (0, 16000))
    )
    cache = AudioCache()
    out = dict(load_segments(segs, cache, min_duration=0.1, max_duration=1.5))
    assert sorted(out) == list(range(len(segs)))
    assert isinstance(out[0], np.ndarray) and out[0].shape == (16000,)
    assert not out[0].flags.writeable
    assert out[1] == "empty segment: start 100 >= end 100"
    assert out[2] == "empty segment: start 16000 >= end 8000"
    assert out[3] == "too short: 0.050 s < min 0.1 s"
    assert out[4] == "too long: 2.000 s > max 1.5 s"
    assert out[5] == ("end 48000 past end of file (32000 samples, 2.000 s) "
                      "by 16000 samples (1.000 s)")  # 1.5 s long: within max
    assert out[6] == f"audio file not found: {tmp_path / 'missing.wav'}"
    assert out[7].startswith("unreadable audio: ")


def test_cache_decodes_each_file_once_and_is_bounded(tmp_path):
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"{k}.wav")
        sf.write(paths[-1], sine(300 + 100 * k, 1.0, 16000), 16000)
    # interleaved segments over three files with room for only one file in the cache
    segs = [AudioSegment(str(paths[i % 3]), 0, 8000) for i in range(12)]
    cache = AudioCache(max_samples=16000)
    got = list(load_segments(segs, cache))
    assert cache.decodes == 3
    assert cache.held_samples <= 16000
    assert [i for i, _ in got] == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]
    # input order when asked; a corrupt file is tried once, then its failure is remembered
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    cache = AudioCache()
    res = list(load_segments(_segs(bad, (0, 10), (10, 20)), cache, group_by_file=False))
    assert [i for i, _ in res] == [0, 1] and cache.decodes == 1
    assert all(r.startswith("unreadable audio") for _, r in res)


def test_batch_by_duration():
    lengths = [16000, 48000, 8000, 160000, 32000]
    batches = batch_by_duration(lengths, max_seconds=6.0)
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2, 3, 4]
    assert batches[0].tolist() == [3]  # 10 s > budget: alone
    for b in batches[1:]:
        assert max(lengths[i] for i in b) * len(b) <= 6 * 16000
    assert batch_by_duration([np.zeros(10), np.zeros(20)], 1.0)[0].tolist() == [1, 0]
