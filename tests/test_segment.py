"""VAD segmentation, candidate windows and overlap clean-up."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speechmine.io.audio import load_audio
from speechmine.io.manifest import read_manifest
from speechmine.segment import (
    FRAME,
    candidate_windows,
    duration_bucket,
    remove_overlaps,
    segment_audio,
    segment_to_manifest,
    speech_regions,
)
from speechmine.types import SAMPLE_RATE, AudioSegment

F = FRAME / SAMPLE_RATE  # seconds per VAD frame


def _probs(*runs, n_frames=400, level=0.9):
    """Frame probabilities: ``level`` inside each (first, last) frame run, 0.02 elsewhere."""
    p = np.full(n_frames, 0.02, dtype=np.float32)
    for a, b in runs:
        p[a:b] = level
    return p


def test_regions_merge_pad_drop():
    # runs at frames 50-100 and 105-150 (gap 5 frames = 0.16 s), 300-305 (0.16 s: too short)
    p = _probs((50, 100), (105, 150), (300, 305))
    n = 400 * FRAME
    regions = speech_regions(p, n, merge_gap=0.3, pad=0.1, min_dur=0.5, max_dur=20)
    pad = int(0.1 * SAMPLE_RATE)
    assert regions == [(50 * FRAME - pad, 150 * FRAME + pad)]
    # without merging the gap, two regions whose padding meets halfway in the gap
    regions = speech_regions(p, n, merge_gap=0.05, pad=0.2, min_dur=0.6, max_dur=20)
    assert len(regions) == 2
    assert regions[0][1] == regions[1][0] == (100 * FRAME + 105 * FRAME) // 2
    # padding is clipped to the file
    p = _probs((0, 40), n_frames=40)
    assert speech_regions(p, 40 * FRAME - 100, pad=0.5) == [(0, 40 * FRAME - 100)]


def test_hysteresis():
    p = _probs((50, 150))
    p[90:100] = 0.4  # below threshold 0.5 but above 0.5 - 0.15: speech goes on
    assert speech_regions(p, 400 * FRAME, pad=0, merge_gap=0) == [(50 * FRAME, 150 * FRAME)]
    p[90:100] = 0.3
    assert len(speech_regions(p, 400 * FRAME, pad=0, merge_gap=0, min_dur=0.1)) == 2


def test_long_regions_split_at_lowest_probability():
    p = _probs((0, 1000), n_frames=1000)  # 32 s of speech
    p[400] = 0.6  # the least speech-like frame (still speech)
    regions = speech_regions(p, 1000 * FRAME, pad=0, max_dur=20.0, min_dur=0.5)
    assert regions == [(0, 400 * FRAME), (400 * FRAME, 1000 * FRAME)]
    # flat probabilities: recursive splitting until every piece fits
    regions = speech_regions(_probs((0, 1000), n_frames=1000), 1000 * FRAME, pad=0,
                             max_dur=5.0, min_dur=1.0)
    assert regions[0][0] == 0 and regions[-1][1] == 1000 * FRAME
    assert all(b - a <= 5 * SAMPLE_RATE for a, b in regions)
    assert all(b - a >= 1 * SAMPLE_RATE for a, b in regions)
    assert all(r[1] == s[0] for r, s in zip(regions, regions[1:]))


def test_candidate_windows():
    s = SAMPLE_RATE
    regions = [(0, 1 * s), (2 * s, 3 * s), (4 * s, 10 * s), (11 * s, 30 * s)]
    got = candidate_windows(regions, window_min=1.0, window_max=20.0)
    assert got == [(0, 3 * s), (0, 10 * s), (2 * s, 10 * s)]
    assert candidate_windows(regions, 1.0, 5.0) == [(0, 3 * s)]


def test_remove_overlaps():
    segs = [("a.wav", 0, 40), ("a.wav", 50, 150), ("a.wav", 150, 200), ("b.wav", 0, 100),
            AudioSegment("a.wav", 90, 160), ("a.wav", 10, 20)]
    scores = [1.2, 1.5, 1.1, 1.0, 1.3, 1.2]
    # 1 (best) kept; 4 overlaps 1; 0 and 5 tie at 1.2: id order keeps 0, then 5 overlaps 0;
    # 2 touches 1's end (end exclusive): no overlap; 3 is another file
    assert remove_overlaps(scores, segs).tolist() == [0, 1, 2, 3]
    # ties broken by ids: 5 first now, 0 overlaps it
    ids = [(9, 0), (0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]
    assert remove_overlaps(scores, segs, ids).tolist() == [1, 2, 3, 5]
    assert remove_overlaps([], []).tolist() == []
    with pytest.raises(ValueError):
        remove_overlaps([1.0], [])


def test_duration_bucket():
    assert [duration_bucket(x) for x in (0.5, 2.0, 4.9, 12, 30)] == [0, 1, 1, 3, 4]


@pytest.fixture
def speech_in_silence(demo_dir, tmp_path):
    """silence (2 s) + a real read-speech recording + silence (3 s); returns path and the
    recording's span in samples."""
    first = read_manifest(demo_dir / "en_speech.tsv")[0]
    clip = load_audio(first.path)[first.start : first.end]
    gap = np.random.default_rng(0).normal(0, 1e-3, 5 * SAMPLE_RATE).astype(np.float32)
    wave = np.concatenate([gap[: 2 * SAMPLE_RATE], clip, gap[2 * SAMPLE_RATE :]])
    path = tmp_path / "padded.flac"
    sf.write(path, wave, SAMPLE_RATE)
    return path, (2 * SAMPLE_RATE, 2 * SAMPLE_RATE + len(clip))


def test_vad_finds_the_speech(speech_in_silence):
    path, (start, end) = speech_in_silence
    segs = segment_audio([path], pad=0.1, merge_gap=0.5, min_dur=0.3)
    assert len(segs) >= 1
    # the manifest segment itself has a little silence around the words: 0.3 s tolerance
    assert abs(segs[0].start - start) / SAMPLE_RATE < 0.3
    assert abs(segs[-1].end - end) / SAMPLE_RATE < 0.3
    assert segs[0].path == str(path)


def test_segment_to_manifest(speech_in_silence, tmp_path):
    path, _ = speech_in_silence
    out = tmp_path / "m" / "vad.tsv"
    segs = segment_to_manifest([path, tmp_path / "nope.wav"], out, errors="skip",
                               overlap_windows=True, max_dur=1.5, min_dur=0.3)
    back = read_manifest(out)
    assert [(s.path, s.start, s.end) for s in back] == [(str(path), s.start, s.end)
                                                         for s in segs]
    assert back[0].line.startswith("../padded.flac\t")
    assert int(back[0].line.split("\t")[3]) == duration_bucket(back[0].duration)
    # overlapping windows were added to the split regions
    assert any(a.end > b.start for a, b in zip(back, back[1:]))
    with pytest.raises(FileNotFoundError):
        segment_audio([tmp_path / "nope.wav"])
