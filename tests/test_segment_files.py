"""``speechmine segment``'s API: bad files become rejects, options and outputs are checked
before anything is decoded, strict mode stops at the first bad file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import DEMO

from speechmine import segment as segment_mod
from speechmine.io.audio import AudioDecodeError, EmptyAudioError, load_audio, resample
from speechmine.io.manifest import read_manifest
from speechmine.segment import (
    REJECTS_HEADER,
    SegmentError,
    SegmentOptions,
    SileroVAD,
    segment_file,
    segment_files,
    segment_to_manifest,
    speech_regions,
)
from speechmine.types import SAMPLE_RATE


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[Path, Path]:
    """Two good files of real speech: 12 s as 16 kHz wav and 10 s as 22.05 kHz flac."""
    d = tmp_path_factory.mktemp("speech")
    wave = load_audio(DEMO / "real_en.ogg")
    a, b = d / "a.wav", d / "b.flac"
    sf.write(a, wave[: 12 * SAMPLE_RATE], SAMPLE_RATE)
    sf.write(b, resample(wave[12 * SAMPLE_RATE : 22 * SAMPLE_RATE], SAMPLE_RATE, 22050), 22050)
    return a, b


def _bad_files(d: Path) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    junk, zero, silent = d / "junk.wav", d / "zero.wav", d / "nothing.wav"
    junk.write_bytes(b"RIFF not really audio" * 10)
    zero.write_bytes(b"")
    sf.write(silent, np.zeros(0, np.float32), SAMPLE_RATE)  # a header, no samples
    return {"missing": d / "missing.wav", "junk": junk, "zero": zero, "silent": silent,
            "folder": d}


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything is decoded."""
    def boom(*_a, **_k):
        raise AssertionError("decoded before checking")

    monkeypatch.setattr(segment_mod, "stream_audio", boom)


def test_bad_files_among_good_ones(vad, speech, tmp_path):
    a, b = speech
    bad = _bad_files(tmp_path / "bad")
    out = tmp_path / "out" / "m.tsv"
    paths = [bad["missing"], a, bad["junk"], bad["zero"], b, bad["silent"], bad["folder"]]
    report = segment_files(paths, out, vad=vad, min_dur=0.3)
    # the good files are written, as segment_file sees them, in input order
    want = segment_file(a, vad=vad, min_dur=0.3) + segment_file(b, vad=vad, min_dur=0.3)
    back = read_manifest(out)
    assert [(s.path, s.start, s.end) for s in back] == [(s.path, s.start, s.end) for s in want]
    # paths relative to the manifest's folder, by default
    assert back[0].line.startswith(os.path.relpath(a, out.parent) + "\t")
    assert report.manifest == out and report.files == 7 and report.files_ok == 2
    assert report.segments == len(want) >= 4 and not report.ok
    assert report.seconds == pytest.approx(sum(s.duration for s in want))
    assert report.audio_seconds == pytest.approx(22.0, abs=1e-3)
    reasons = dict(report.skipped)
    assert [p for p, _ in report.skipped] == [str(bad[k]) for k in
                                              ("missing", "junk", "zero", "silent", "folder")]
    assert reasons[str(bad["missing"])] == "file not found"
    assert reasons[str(bad["folder"])] == "not a regular file"
    assert reasons[str(bad["zero"])] == "empty file (0 bytes)"
    assert reasons[str(bad["silent"])] == "empty audio (no samples)"
    assert reasons[str(bad["junk"])].startswith("undecodable audio: ")
    # the rejects file: header, then file<TAB>reason per bad file
    assert report.rejects == tmp_path / "out" / "m.tsv.rejects.tsv"
    lines = report.rejects.read_text().splitlines()
    assert lines[0] == REJECTS_HEADER == "file\treason"
    assert [tuple(line.split("\t")) for line in lines[1:]] == list(report.skipped)


def test_a_clean_run_writes_no_rejects_and_removes_stale_ones(vad, speech, tmp_path):
    out = tmp_path / "m.tsv.gz"
    stale = tmp_path / "m.tsv.gz.rejects.tsv"
    stale.write_text("file\treason\nold.wav\tfile not found\n")
    report = segment_files(speech, out, vad=vad, relative=False)
    assert report.ok and report.rejects is None and not stale.exists()
    assert report.files == report.files_ok == 2
    assert [s.path for s in read_manifest(out)][0] == str(speech[0])
    # explicit rejects path, and nothing good at all: an empty manifest and the rejects
    rej = tmp_path / "r" / "bad.tsv"
    report = segment_files([tmp_path / "nope.wav"], tmp_path / "e.tsv", rejects=rej, vad=vad)
    assert (tmp_path / "e.tsv").read_bytes() == b"" and report.files_ok == 0
    assert report.rejects == rej
    assert rej.read_text() == f"file\treason\n{tmp_path / 'nope.wav'}\tfile not found\n"


def test_strict_raises_naming_the_file(vad, speech, tmp_path):
    junk = _bad_files(tmp_path / "bad")["junk"]
    out = tmp_path / "m.tsv"
    with pytest.raises(SegmentError, match=rf"^{junk}: undecodable audio: ") as info:
        segment_files([speech[0], junk, speech[1]], out, strict=True, vad=vad)
    assert isinstance(info.value.__cause__, AudioDecodeError)
    assert not out.exists() and not Path(f"{out}.rejects.tsv").exists()
    zero = tmp_path / "bad" / "zero.wav"
    with pytest.raises(SegmentError, match=rf"^{zero}: empty file \(0 bytes\)$"):
        segment_files([zero], out, strict=True, vad=vad)
    with pytest.raises(SegmentError, match="missing.wav: file not found"):
        segment_files([tmp_path / "missing.wav"], out, strict=True, vad=vad)


def test_empty_audio_is_a_bad_file(vad, tmp_path):
    bad = _bad_files(tmp_path)
    with pytest.raises(EmptyAudioError, match=r"^empty file \(0 bytes\)$"):
        segment_file(bad["zero"], vad=vad)
    with pytest.raises(EmptyAudioError, match="empty file"):
        load_audio(bad["zero"])  # still an AudioDecodeError for every reader
    # a wav with a header and no samples decodes to nothing
    assert len(load_audio(bad["silent"])) == 0
    with pytest.raises(EmptyAudioError, match=r"^empty audio \(no samples\)$"):
        segment_file(bad["silent"], vad=vad)
    with pytest.raises(FileNotFoundError):
        segment_file(bad["missing"], vad=vad)
    with pytest.raises(AudioDecodeError):
        segment_file(bad["junk"], vad=vad)


@pytest.mark.parametrize("option, value, message", [
    ("min_dur", 0, r"min_dur \(--min-dur\) must be > 0 s, got 0"),
    ("min_dur", -1, r"min_dur \(--min-dur\) must be > 0"),
    ("max_dur", 0.2, r"max_dur \(--max-dur\) must be >= min_dur \(--min-dur\) \(0\.5 s\)"),
    ("pad", -3, r"pad \(--pad\) must be >= 0 s, got -3"),
    ("merge_gap", -0.1, r"merge_gap \(--merge-gap\) must be >= 0 s"),
    ("threshold", 2, r"threshold \(--threshold\) must be between 0 and 1 \(exclusive\), got 2"),
    ("threshold", 0, r"threshold \(--threshold\) must be between 0 and 1"),
    ("threshold", 1.0, r"threshold \(--threshold\) must be between 0 and 1"),
    ("window_min", 0, r"window_min \(--window-min\) must be > 0 s"),
    ("window_max", 0.5, r"window_max \(--window-max\) must be >= window_min \(--window-min\)"),
    ("min_dur", float("nan"), r"min_dur \(--min-dur\) must be a finite number, got nan"),
    ("max_dur", float("inf"), r"max_dur \(--max-dur\) must be a finite number"),
    ("pad", "0.2", r"pad \(--pad\) must be a number, got '0\.2'"),
    ("threshold", True, r"threshold \(--threshold\) must be a number"),
    ("overlap_windows", "yes", r"overlap_windows \(--overlap-windows\) must be true or false"),
])
def test_each_invalid_option_raises_naming_it(option, value, message, tmp_path, no_decoding):
    audio = tmp_path / "a.wav"
    sf.write(audio, np.zeros(16000, np.float32), SAMPLE_RATE)
    with pytest.raises(SegmentError, match=message):
        SegmentOptions(**{option: value})
    with pytest.raises(SegmentError, match=message):
        segment_files([audio], tmp_path / "m.tsv", **{option: value})
    with pytest.raises(SegmentError, match=message):
        segment_file(audio, **{option: value})
    with pytest.raises(SegmentError, match=message):  # the pipeline's entry point
        segment_to_manifest([audio], tmp_path / "p.tsv", **{option: value})
    assert not (tmp_path / "m.tsv").exists() and not (tmp_path / "p.tsv").exists()
    assert isinstance(SegmentError("x"), ValueError)


def test_option_edges_are_accepted():
    SegmentOptions(min_dur=1.0, max_dur=1.0, pad=0, merge_gap=0, threshold=0.01,
                   window_min=3, window_max=3)
    with pytest.raises(SegmentError, match=r"max_dur \(--max-dur\) must be at least 0\.064 s"):
        SegmentOptions(min_dur=0.01, max_dur=0.05)
    # speech_regions checks its own arguments the same way (min_dur == max_dur is fine)
    regions = speech_regions(np.full(100, 0.9, np.float32), 100 * 512, min_dur=0.96,
                             max_dur=0.96, pad=0)
    assert regions and all(b - a == 0.96 * SAMPLE_RATE for a, b in regions)
    with pytest.raises(SegmentError, match=r"threshold \(--threshold\)"):
        speech_regions(np.zeros(3, np.float32), 3 * 512, threshold=1.5)


def _unwritable(tmp_path: Path) -> list[tuple[Path | str, str]]:
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_file").write_text("x")
    return [
        (tmp_path / "a_dir", "it is a directory"),
        (f"{tmp_path / 'new_dir'}{os.sep}", "it is a directory"),
        (tmp_path / "a_file" / "m.tsv", f"{tmp_path / 'a_file'} is not a directory"),
        (tmp_path / "a_file" / "deeper" / "m.tsv", f"{tmp_path / 'a_file'} is not a directory"),
    ]


def test_unwritable_output_raises_naming_the_path_before_decoding(tmp_path, no_decoding):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"whatever")
    for output, why in _unwritable(tmp_path):
        with pytest.raises(SegmentError, match="cannot write the manifest") as info:
            segment_files([audio], output)
        assert str(info.value) == f"cannot write the manifest {output}: {why}"
    good = tmp_path / "m.tsv"
    with pytest.raises(SegmentError, match=f"cannot write the rejects file {tmp_path / 'a_dir'}"
                       ": it is a directory"):
        segment_files([audio], good, rejects=tmp_path / "a_dir")
    with pytest.raises(SegmentError, match="it exists and is not a regular file"):
        segment_files([audio], "/dev/null")
    # the manifest would overwrite an input; the rejects file would overwrite the manifest
    with pytest.raises(SegmentError, match=f"manifest {audio} is also an input"):
        segment_files([audio], audio)
    with pytest.raises(SegmentError, match="is the manifest"):
        segment_files([audio], good, rejects=good)
    assert not good.exists()
    assert not [p for p in tmp_path.iterdir() if ".smtmp." in p.name]  # probes cleaned


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions that apply (root writes anywhere)")
def test_read_only_folder(tmp_path, no_decoding):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(SegmentError, match=f"cannot write the manifest {ro / 'm.tsv'}: "
                           rf"cannot create files in {ro} \(Permission denied\)$"):
            segment_files([tmp_path / "a.wav"], ro / "m.tsv")
    finally:
        ro.chmod(0o755)


def test_read_only_filesystem(tmp_path, monkeypatch, no_decoding):
    """EROFS (what a read-only mount gives even to root), simulated at the probe."""
    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(segment_mod, "open", read_only, raising=False)
    out = tmp_path / "sub" / "m.tsv"
    with pytest.raises(SegmentError, match=f"cannot write the manifest {out}: cannot create "
                       rf"files in {tmp_path} \(Read-only file system\)$"):
        segment_files([tmp_path / "a.wav"], out)
    assert not (tmp_path / "sub").exists()  # nothing created


def test_a_path_a_manifest_cannot_hold_is_a_reject(vad, speech, tmp_path):
    odd = tmp_path / "tab\there.wav"
    odd.write_bytes(speech[0].read_bytes())
    report = segment_files([odd, speech[1]], tmp_path / "m.tsv", vad=vad)
    assert report.files_ok == 1
    assert report.skipped == ((str(odd), "path contains a tab or newline: not representable "
                                         "in a manifest"),)
    # escaped in the rejects file, so that it stays two columns
    line = report.rejects.read_text().splitlines()[1]
    assert line.split("\t") == [str(odd).replace("\t", "\\t"), report.skipped[0][1]]


def test_system_errors_propagate_and_write_nothing(vad, speech, tmp_path, monkeypatch):
    """EIO or a permission is not the data's fault: never a reject, nothing written."""
    real = segment_mod.stream_audio

    def flaky(path, *args, **kwargs):
        if str(path).endswith("b.flac"):
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(segment_mod, "stream_audio", flaky)
    out = tmp_path / "m.tsv"
    with pytest.raises(OSError, match="Input/output error"):
        segment_files(speech, out, vad=vad)
    assert not out.exists()
    with pytest.raises(OSError, match="Input/output error"):
        segment_file(speech[1], vad=vad)
