"""The streaming outputs writer writes the same bytes as the dict-based writer it replaced.

The old writer (texts and metas in dicts, dedup through a set of text pairs) is kept as the
baseline of ``benchmarks/outputs_memory.py`` and imported from there. The corpus has what
can go wrong: duplicate lines within and across shards (text dedup), tabs and quotes (csv
quoting, tab clean-up), non-ASCII text, an invalid UTF-8 line (U+FFFD), a byte-order mark,
``\\r\\n`` line ends, meta files with tabs, speech manifests; the pairs repeat ids and tie
on scores.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from helpers import write_lines

from speechmine.pipeline import outputs
from speechmine.types import Alignment, InputError

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "outputs_memory.py"


def _bench() -> ModuleType:
    if "outputs_memory" not in sys.modules:
        spec = importlib.util.spec_from_file_location("outputs_memory", BENCH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["outputs_memory"] = module
        spec.loader.exec_module(module)
    return sys.modules["outputs_memory"]


SRC = [b"\xef\xbb\xbfone\ttwo", b'say "hi"', "café crème".encode(), b"same line",
       b"trailing space ", "東京 «x»".encode(), b"bad \xff\xfe utf-8", b"same line",
       b'"quoted"', b"one\ttwo"]
TGT = [b"un", b"same line", "déjà \"vu\"".encode(), b"x\ty", b"un", "Москва".encode(),
       b"", b"deux", b"un"]


def _corpus(d: Path, metas: str) -> tuple[Any, Any]:
    """Two shards a side (``\\r\\n`` ends in one), meta files per ``metas``: both/src/none."""
    d.mkdir()
    sides = []
    for role, lines in (("src", SRC), ("tgt", TGT)):
        shards, meta_files = [], []
        for s, part in enumerate((lines[:5], lines[5:])):
            shard = d / f"{role}.{s:03d}.txt"
            if s == 1:
                shard.write_bytes(b"".join(x + b"\r\n" for x in part))
            else:
                write_lines(shard, list(part))
            shards.append(str(shard))
            meta = write_lines(d / f"{role}.{s:03d}.meta",
                               [f"doc\t{role}-{s}-{i} \"m\"" for i in range(len(part))])
            meta_files.append(str(meta))
        with_meta = metas == "both" or (metas == "src" and role == "src")
        sides.append(_bench().make_side(role, shards, meta_files if with_meta else None))
    return sides[0], sides[1]


def _alignment(n_src: int, n_tgt: int, pairs: int = 300, seed: int = 0) -> Alignment:
    rng = np.random.default_rng(seed)
    src, tgt = rng.integers(0, n_src, size=pairs), rng.integers(0, n_tgt, size=pairs)
    scores = rng.choice(np.float32([1.5, 1.25, 1.2, 1.125, 1.0625, 1.04]), size=pairs)
    order = np.lexsort((tgt, src, -scores))
    return Alignment(scores[order], src[order].astype(np.int64), tgt[order].astype(np.int64),
                     rng.integers(0, 3, size=pairs).astype(np.int8)[order])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _both(tmp_path: Path, al: Alignment, src: Any, tgt: Any, pairs: dict[str, Any],
          layout: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    got = {}
    for which, write in (("old", _bench().old_write_pairs), ("new", outputs.write_pairs)):
        folder = tmp_path / which
        folder.mkdir()
        write(folder, "mine.v1/src-tgt.TH-1.04", al, src, tgt, pairs, layout)
        got[which] = _files(folder)
    return got["old"], got["new"]


@pytest.mark.parametrize("layout", ["speechmine", "stopes"])
@pytest.mark.parametrize("dedup", [True, False])
@pytest.mark.parametrize("metas", ["both", "src", "none"])
@pytest.mark.parametrize("max_score", [None, 1.2])
def test_same_bytes_as_the_dict_based_writer(tmp_path: Path, layout: str, dedup: bool,
                                             metas: str, max_score: float | None) -> None:
    src, tgt = _corpus(tmp_path / "data", metas)
    al = _alignment(len(SRC), len(TGT))
    old, new = _both(tmp_path, al, src, tgt, {"dedup_texts": dedup, "max_score": max_score},
                     layout)
    assert sorted(new) == sorted(old) and len(old) >= 2
    for name in old:
        assert new[name] == old[name], name
    bitext = next(v for k, v in new.items() if k.endswith("bitext.tsv.gz"))
    import gzip

    rows = gzip.decompress(bitext).decode().splitlines()
    # dedup removes rows (the texts repeat); without it every pair in the window is a row
    window = len(al) if layout != "stopes" or max_score is None \
        else int((al.scores <= max_score).sum())
    assert (len(rows) < window / 2) if dedup else (len(rows) == window)


def test_same_bytes_when_every_text_hash_collides(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-byte digest makes most texts share a hash: the collision guard compares the
    texts, so dedup keeps exactly the rows the set of text pairs kept."""
    real = outputs.digest
    monkeypatch.setattr(outputs, "digest", lambda b: real(b)[:1] * 16)
    src, tgt = _corpus(tmp_path / "data", "both")
    old, new = _both(tmp_path, _alignment(len(SRC), len(TGT), seed=5), src, tgt,
                     {"dedup_texts": True, "max_score": None}, "stopes")
    assert new == old


def test_same_bytes_for_a_speech_side(tmp_path: Path) -> None:
    """Manifest lines are the text column, ``file start end`` in seconds the meta column."""
    d = tmp_path / "data"
    d.mkdir()
    manifest = write_lines(d / "src.000.tsv", [
        "a.wav\t0\t16000\t0", "b.wav\t8000\t24000\t0", "a.wav\t0\t16000\t0",
        "dir/c d.wav\t16000\t48000\t1", "b.wav 8000 24000 0"])
    bench = _bench()
    src = bench.make_side("src", [str(manifest)], None, modality="speech")
    tgt = _corpus(tmp_path / "t", "both")[1]
    for layout in ("speechmine", "stopes"):
        out = tmp_path / layout
        out.mkdir()
        old, new = _both(out, _alignment(5, len(TGT), seed=7), src, tgt,
                         {"dedup_texts": True, "max_score": None}, layout)
        assert new == old


def test_no_scratch_file_is_left_and_a_shrunk_shard_is_named(tmp_path: Path) -> None:
    src, tgt = _corpus(tmp_path / "data", "both")
    al = _alignment(len(SRC), len(TGT))
    outputs.write_pairs(tmp_path, "p", al, src, tgt, {"dedup_texts": True,
                                                      "max_score": None}, "speechmine")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "p.align.npz", "p.bimeta.tsv.gz", "p.bitext.tsv.gz"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".columns")]
    shard = Path(tgt.inputs.shards[1])
    shard.write_bytes(shard.read_bytes().split(b"\r\n")[0] + b"\r\n")  # one line left
    with pytest.raises(InputError, match=rf"{shard}: line \d+ is gone"):
        outputs.write_pairs(tmp_path / "x", "p", al, src, tgt,
                            {"dedup_texts": False, "max_score": None}, "speechmine")


def test_dedup_over_text_mappings_keeps_the_rows_the_set_kept(tmp_path: Path) -> None:
    """The export reader replays dedup from ``{id: text}`` dicts (read_lines_by_id)."""
    from speechmine.io.text import read_lines_by_id

    src, tgt = _corpus(tmp_path / "data", "none")
    al = _alignment(len(SRC), len(TGT), seed=3)
    s_text = read_lines_by_id(src.inputs, al.src)
    t_text = read_lines_by_id(tgt.inputs, al.tgt)
    assert s_text == _bench().old_read_lines_by_id(src.inputs, al.src)
    assert s_text[6] == "bad \ufffd\ufffd utf-8" and s_text[0] == "one\ttwo"  # BOM dropped
    got, want = outputs.dedup_texts(al, s_text, t_text), _bench().old_dedup_texts(al, s_text,
                                                                                  t_text)
    assert len(want) < len(al) / 2
    for field in ("scores", "src", "tgt", "direction"):
        assert getattr(got, field).tolist() == getattr(want, field).tolist()
