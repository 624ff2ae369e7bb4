"""Stopes speech manifest reading and writing."""

from __future__ import annotations

import gzip
import os

import pytest

from speechmine.io.manifest import ManifestError, read_manifest, write_manifest
from speechmine.types import AudioSegment


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_tabs_spaces_relative_and_blank_lines(tmp_path):
    sub = tmp_path / "shards"
    sub.mkdir()
    m = _write(
        sub / "a.tsv",
        "audio/one.wav\t0\t16000\t3\n"
        "\n"
        "/abs/two.ogg 100 200\n"
        "  \n"
        "my dir/three file.flac\t5\t10\n",
    )
    segs = read_manifest(m)
    assert [s.path for s in segs] == [
        os.path.join(str(sub), "audio", "one.wav"),
        "/abs/two.ogg",
        os.path.join(str(sub), "my dir", "three file.flac"),
    ]
    assert [(s.start, s.end) for s in segs] == [(0, 16000), (100, 200), (5, 10)]
    # blank lines count: line numbers match the editor's
    assert [s.lineno for s in segs] == [1, 3, 5]
    assert segs[0].line == "audio/one.wav\t0\t16000\t3"
    assert segs[1].source == str(m)
    assert segs[0].duration == pytest.approx(1.0)


def test_seconds_units(tmp_path):
    m = _write(tmp_path / "s.txt", "x.wav 1.5 2.25 0\ny.wav 0 3\n")
    segs = read_manifest(m, units="seconds")
    assert [(s.start, s.end) for s in segs] == [(24000, 36000), (0, 48000)]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("x.wav 10", "expected 3 or 4 fields"),
        ("x.wav 1 2 3 4", "expected 3 or 4 fields"),
        ("x.wav a 20", "start 'a' is not an integer"),
        ("x.wav 1.5 20", "units='seconds'"),
        ("x.wav 0 -20", "end '-20' is negative"),
        ("x.wav 0 20 b", "batch_no 'b' is not an integer"),
        ("\t0\t20", "empty audio_file"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, reason):
    m = _write(tmp_path / "bad.tsv", "ok.wav 0 10\n\n" + line + "\n")
    with pytest.raises(ManifestError) as err:
        read_manifest(m)
    msg = str(err.value)
    assert f"{m}:3:" in msg
    assert reason in msg


def test_seconds_rejects_garbage(tmp_path):
    m = _write(tmp_path / "bad.tsv", "x.wav nan 1\n")
    with pytest.raises(ManifestError, match="not a finite number"):
        read_manifest(m, units="seconds")


def test_write_roundtrip_relative_and_atomic(tmp_path):
    audio = tmp_path / "audio dir" / "a.wav"
    segs = [AudioSegment(str(audio), 0, 16000), AudioSegment(str(audio), 16000, 40000)]
    out = write_manifest(tmp_path / "out" / "m.tsv", segs, batch_no=[0, 2], relative=True)
    text = out.read_text()
    assert text.splitlines()[1] == "../audio dir/a.wav\t16000\t40000\t2"
    back = read_manifest(out)
    assert [(s.path, s.start, s.end) for s in back] == [(str(audio), 0, 16000),
                                                          (str(audio), 16000, 40000)]
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.tsv"]  # no temp file left
    with pytest.raises(ValueError, match="batch numbers"):
        write_manifest(tmp_path / "x.tsv", segs, batch_no=[0])


def test_gzip_roundtrip(tmp_path):
    segs = [AudioSegment("/a.wav", 1, 2)]
    out = write_manifest(tmp_path / "m.tsv.gz", segs)
    assert gzip.open(out, "rt").read() == "/a.wav\t1\t2\t0\n"
    assert read_manifest(out)[0].end == 2
