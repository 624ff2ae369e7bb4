"""Text runs exported and read back by pandas, datasets and json; both output layouts."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import read_gz_rows

from conftest import STOPES_MAX_SCORE, TextRun, text_run
from speechmine.export import ExportError, export_run

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

COLUMNS = ["score", "direction", "src_lang", "tgt_lang", "src_id", "tgt_id", "src_text",
           "src_meta", "tgt_text", "tgt_meta"]


def clean(s: str) -> str:
    return s.replace("\t", " ")


def metas(run: TextRun, lang: str) -> list[str]:
    return (run.out.parent / f"{run.out.name}-data" / f"{lang}.meta.txt").read_text(
        encoding="utf-8").splitlines()


def records(df: pd.DataFrame) -> list[dict]:
    return df.to_dict("records")


def test_parquet_rows_are_the_runs_pairs(sm_text: TextRun, tmp_path: Path):
    out = export_run(sm_text.out, "parquet", tmp_path / "pairs.parquet")
    df = pd.read_parquet(out)
    al = sm_text.result.alignment  # in memory, not read from the run's files
    assert list(df.columns) == COLUMNS and len(df) == len(al) > 20
    np.testing.assert_array_equal(df["src_id"], al.src)
    np.testing.assert_array_equal(df["tgt_id"], al.tgt)
    assert df["score"].dtype == np.float32
    np.testing.assert_array_equal(df["score"].to_numpy(), al.scores)
    en_meta, fr_meta = metas(sm_text, "en"), metas(sm_text, "fr")
    bimeta = read_gz_rows(sm_text.result.outputs["bimeta"])
    for row, bm in zip(records(df), bimeta):
        # speechmine's layout turns tabs into spaces; all else is the input line
        assert row["src_text"] == clean(sm_text.en[row["src_id"]])
        assert row["tgt_text"] == clean(sm_text.fr[row["tgt_id"]])
        assert row["src_meta"] == clean(en_meta[row["src_id"]])
        assert row["tgt_meta"] == fr_meta[row["tgt_id"]]
        assert row["direction"] == bm[3] and (row["src_lang"], row["tgt_lang"]) == ("en", "fr")
    # the decorated sentences are among the pairs, non-ASCII intact
    assert any("日本語 😀" in t for t in df["src_text"])


def test_datasets_loads_parquet_with_its_features(sm_text: TextRun, tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    out = export_run(sm_text.out, "parquet", tmp_path / "pairs.parquet")
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train",
                               cache_dir=str(tmp_path / "hf"))
    V = datasets.Value
    assert ds.features == datasets.Features({
        "score": V("float32"), "direction": V("string"), "src_lang": V("string"),
        "tgt_lang": V("string"), "src_id": V("int64"), "tgt_id": V("int64"),
        "src_text": V("string"), "src_meta": V("string"), "tgt_text": V("string"),
        "tgt_meta": V("string")})
    df = pd.read_parquet(out)
    assert ds.num_rows == len(df)
    for col in ("src_text", "tgt_text", "src_id", "direction"):
        assert ds[col] == df[col].tolist()


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.jsonl.gz"])
def test_jsonl_round_trip(sm_text: TextRun, tmp_path: Path, name: str):
    out = export_run(sm_text.out, "jsonl", tmp_path / name)
    raw = gzip.decompress(out.read_bytes()) if name.endswith(".gz") else out.read_bytes()
    assert "日本語 😀".encode() in raw  # UTF-8, not \u escapes
    rows = [json.loads(line) for line in raw.decode().splitlines()]
    parquet = records(pd.read_parquet(export_run(sm_text.out, "parquet",
                                                 tmp_path / "p.parquet")))
    assert len(rows) == len(parquet)
    for j, p in zip(rows, parquet):
        assert list(j) == COLUMNS
        assert np.float32(j.pop("score")) == p.pop("score")  # shortest decimal, same float32
        assert j == p


def test_stopes_layout_keeps_every_character(stopes_text: TextRun, tmp_path: Path):
    """stopes quotes fields through csv: tabs, quotes and backslashes come back as they were
    in the input, texts and metas alike."""
    df = pd.read_parquet(export_run(stopes_text.out, "parquet", tmp_path / "p.parquet"))
    en_meta, fr_meta = metas(stopes_text, "en"), metas(stopes_text, "fr")
    for row in records(df):
        assert row["src_text"] == stopes_text.en[row["src_id"]]
        assert row["tgt_text"] == stopes_text.fr[row["tgt_id"]]
        assert row["src_meta"] == en_meta[row["src_id"]]
        assert row["tgt_meta"] == fr_meta[row["tgt_id"]]
        assert row["direction"] in ("fwd", "bwd")
    # (the rows above are compared whole; these are among them)
    texts = "\n".join(df["src_text"])
    for piece in ("a\ttab, a back\\slash \\t", 'a ""double"" quote', 'ends with a quote"'):
        assert piece in texts


def test_stopes_rows_found_through_window_and_dedup(stopes_text: TextRun, tmp_path: Path):
    """stopes' align file holds every candidate; its bitext only those within score_max,
    first of each (src text, tgt text). The export finds each row's ids: an oracle
    computed here from the in-memory alignment and the input lines."""
    al = stopes_text.result.alignment
    window = [i for i in range(len(al)) if al.scores[i] <= STOPES_MAX_SCORE]
    seen, want = set(), []
    for i in window:
        texts = (stopes_text.en[al.src[i]], stopes_text.fr[al.tgt[i]])
        if texts not in seen:
            seen.add(texts)
            want.append((int(al.src[i]), int(al.tgt[i]), float(al.scores[i])))
    assert len(al) > len(window) > len(want) > 10  # both filters dropped rows here
    df = pd.read_parquet(export_run(stopes_text.out, "parquet", tmp_path / "p.parquet"))
    got = list(zip(df["src_id"].tolist(), df["tgt_id"].tolist(),
                   df["score"].astype(np.float64).tolist()))
    assert got == want


def test_changed_inputs_are_an_error_and_leave_the_old_export(tmp_path: Path):
    run = text_run(tmp_path, "st", ["mine.preset=stopes", "mine.max_score=null"], duplicates=3)
    target = tmp_path / "p.parquet"
    export_run(run.out, "parquet", target)
    before = target.read_bytes()
    en = tmp_path / "st-data" / "en.txt"
    lines = en.read_text(encoding="utf-8").splitlines()
    en.write_text("\n".join(["changed " + lines[0], *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(ExportError, match="changed since the run"):
        export_run(run.out, "parquet", target)
    en.write_text("\n".join(lines + ["one more line"]) + "\n", encoding="utf-8")
    with pytest.raises(ExportError, match=r"now hold \d+ lines, the run read"):
        export_run(run.out, "parquet", target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if ".smtmp." in p.name] == []


def test_moved_run_folder_still_exports(sm_text: TextRun, tmp_path: Path):
    moved = tmp_path / "moved"
    shutil.copytree(sm_text.out, moved, ignore=shutil.ignore_patterns("work"))
    out = export_run(moved, "jsonl")
    assert out == moved / "en-fr.TH-1.1.jsonl"
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(sm_text.result.alignment)


def test_files_of_different_runs_are_refused(sm_text: TextRun, tmp_path: Path):
    folder = tmp_path / "mixed"
    shutil.copytree(sm_text.out, folder, ignore=shutil.ignore_patterns("work"))
    align = folder / "en-fr.TH-1.1.align.npz"
    with np.load(align) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["scores"] = arrays["scores"][::-1].copy()
    np.savez(align, **arrays)
    with pytest.raises(ExportError, match="not of one run"):
        export_run(folder, "parquet", tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
