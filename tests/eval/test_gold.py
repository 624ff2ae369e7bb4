"""Gold files: both formats, format detection, and errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechmine.eval import read_gold, read_gold_pairs, text_key, text_keys
from speechmine.types import InputError


def _write(tmp_path: Path, data: str | bytes, name: str = "gold.tsv") -> Path:
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def test_ids_auto_detected_blank_lines_crlf_and_bom(tmp_path):
    p = _write(tmp_path, b"\xef\xbb\xbf3\t5\r\n\r\n0\t2\r\n 7\t1 \n")
    g = read_gold_pairs(p)
    assert g.format == "ids"
    assert g.pairs.tolist() == [[3, 5], [0, 2], [7, 1]]
    assert g.pairs.dtype == np.int64
    assert read_gold(p).tolist() == g.pairs.tolist()  # the old name, same answer


def test_text_pairs_keys_ignore_whitespace_runs(tmp_path):
    p = _write(tmp_path, "Hello  world\tBonjour le monde\n12\t<b>x</b> & \"y\"\n")
    g = read_gold_pairs(p)
    assert g.format == "text"  # the first pair is not two integers
    assert g.pairs.tolist() == [[text_key("Hello world"), text_key("Bonjour le monde")],
                                [text_key("12"), text_key('<b>x</b> & "y"')]]
    assert text_key(" Hello\u00a0world ") == text_key("Hello world")
    assert text_key("Hello world") != text_key("hello world")  # case is kept
    assert text_keys(["a", "b"]).tolist() == [text_key("a"), text_key("b")]


def test_numbers_as_text_when_told(tmp_path):
    p = _write(tmp_path, "1\t2\n")
    assert read_gold_pairs(p).format == "ids"
    g = read_gold_pairs(p, "text")
    assert g.format == "text" and g.pairs.tolist() == [[text_key("1"), text_key("2")]]


@pytest.mark.parametrize("data, fmt, needle", [
    ("1\t2\n3\n", "auto", "gold.tsv:2: expected 2 tab-separated fields"),
    ("1\t2\n3\t4\t5\n", "auto", "gold.tsv:2: expected 2 tab-separated fields"),
    ("1\t2\n\n3\tx\n", "auto", "gold.tsv:3: expected 'src_id<TAB>tgt_id'"),
    ("-1\t2\n", "ids", "gold.tsv:1: expected 'src_id<TAB>tgt_id'"),
    (b"1\t2\n\xff\xfe\t3\n", "auto", "gold.tsv:2: invalid UTF-8"),
    ("1\t2\n", "csv", "unknown gold format 'csv'"),
])
def test_errors_name_file_and_line(tmp_path, data, fmt, needle):
    with pytest.raises(InputError, match=needle.replace("*", r"\*")) as err:
        read_gold_pairs(_write(tmp_path, data), fmt)
    assert str(tmp_path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="gold file not found"):
        read_gold_pairs(tmp_path / "nope.tsv")
