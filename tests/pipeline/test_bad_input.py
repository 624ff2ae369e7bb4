"""Bad and unusual inputs, end to end through ``run(load_config(...))`` with the toy encoder.

The corpus: English and French sentences that each name two numbers ("three and seven" /
"trois et sept"); the toy encoder maps number words of both languages to the same slots, so
every English line has exactly one French translation and the pairs are known.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import Corpus, make_config, pairs_of, read_gz_rows, sentences, write_lines

from speechmine.encoders.toy import ToyEncoder
from speechmine.io.embeddings import EmbeddingFileError
from speechmine.pipeline import run
from speechmine.pipeline.lock import DirLock, RunLockedError
from speechmine.types import InputError


def check_outputs_agree(result, en_lines: list[str], fr_lines: list[str],
                        en_meta: list[str] | None, fr_meta: list[str] | None) -> None:
    """align ids index the input files line for line; bitext/bimeta rows say the same."""
    npz = np.load(result.outputs["align"])
    assert set(npz.files) == {"scores", "src_ids", "tgt_ids", "direction"}
    bitext = read_gz_rows(result.outputs["bitext"])
    bimeta = read_gz_rows(result.outputs["bimeta"])
    assert len(bitext) == len(bimeta) == len(npz["scores"])
    for row, mrow, s, t, score in zip(bitext, bimeta, npz["src_ids"], npz["tgt_ids"],
                                      npz["scores"]):
        assert len(row) == 3 and len(mrow) == 4
        assert float(row[0]) == pytest.approx(float(score), abs=1e-5)
        assert row[1] == en_lines[s] and row[2] == fr_lines[t]
        if en_meta is not None:
            assert mrow[1] == en_meta[s] and mrow[2] == fr_meta[t]


# --------------------------------------------------------------------------- baseline


def test_clean_corpus_mines_every_pair(tmp_path: Path) -> None:
    en, fr = sentences(12)
    c = Corpus(tmp_path / "data", en, fr)
    res = run(make_config(tmp_path, c.dir))
    assert pairs_of(res) == c.gold
    check_outputs_agree(res, c.en, c.fr, [f"en-meta-{i}" for i in range(12)],
                        [f"fr-meta-{j}" for j in range(12)])


# --------------------------------------------------------------------------- shards


def test_empty_shard_is_skipped(tmp_path: Path) -> None:
    en, fr = sentences(10)
    d = tmp_path / "data"
    d.mkdir()
    # en in two shards, the first empty; fr in one
    write_lines(d / "en.000.txt", [])
    write_lines(d / "en.001.txt", en)
    c_fr = list(reversed(fr))
    write_lines(d / "fr.000.txt", c_fr)
    res = run(make_config(tmp_path, d, glob="{lang}.*.txt", meta=False))
    assert res.counts["src"]["shards"] == 2 and res.counts["src"]["lines"] == 10
    assert pairs_of(res) == {i: 9 - i for i in range(10)}
    check_outputs_agree(res, en, c_fr, None, None)
    # without meta files the meta column is file:line (1-based), pointing at the right line
    for text, meta in zip(read_gz_rows(res.outputs["bitext"]),
                          read_gz_rows(res.outputs["bimeta"])):
        f, line = meta[1].rsplit(":", 1)
        assert f == str(d / "en.001.txt") and en[int(line) - 1] == text[1]
        f, line = meta[2].rsplit(":", 1)
        assert f == str(d / "fr.000.txt") and c_fr[int(line) - 1] == text[2]


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    en, fr = sentences(10)
    d = tmp_path / "data"
    # blank (and whitespace-only) lines inserted on both sides; metas stay line for line
    en_lines = en[:2] + [""] + en[2:5] + ["   ", ""] + en[5:]
    fr_lines = [""] + fr[:7] + ["\t"] + fr[7:]
    d.mkdir()
    write_lines(d / "en.txt", en_lines)
    write_lines(d / "fr.txt", fr_lines)
    en_meta = [f"en-meta-{i}" for i in range(len(en_lines))]
    fr_meta = [f"fr-meta-{j}" for j in range(len(fr_lines))]
    write_lines(d / "en.meta.txt", en_meta)
    write_lines(d / "fr.meta.txt", fr_meta)
    res = run(make_config(tmp_path, d))
    assert res.counts["src"]["blank"] == 3 and res.counts["tgt"]["blank"] == 2
    assert res.counts["src"]["lines"] == 13 and res.counts["src"]["embedded"] == 10
    expected = {en_lines.index(e): fr_lines.index(f) for e, f in zip(en, fr)}
    assert pairs_of(res) == expected
    check_outputs_agree(res, en_lines, fr_lines, en_meta, fr_meta)
    run_json = json.loads(Path(res.outputs["run"]).read_text())
    assert run_json["counts"]["src"]["blank"] == 3


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    en, fr = sentences(8)
    c = Corpus(tmp_path / "data", en, fr)
    lines: list[str | bytes] = list(c.en)
    lines[4] = b"caf\xe9 and \xff"
    write_lines(c.dir / "en.txt", lines)
    with pytest.raises(InputError) as exc:
        run(make_config(tmp_path, c.dir))
    msg = str(exc.value)
    assert f"{c.dir / 'en.txt'}:5" in msg and "UTF-8" in msg and "skip" in msg


def test_invalid_utf8_skipped_into_rejects(tmp_path: Path) -> None:
    en, fr = sentences(8)
    c = Corpus(tmp_path / "data", en, fr)
    lines: list[str | bytes] = list(c.en)
    lines[4] = b"caf\xe9 and \xff"
    write_lines(c.dir / "en.txt", lines)
    res = run(make_config(tmp_path, c.dir, extra={"on_error": "skip"}))
    rejects = Path(res.outputs["rejects"]).read_text().splitlines()
    assert rejects[0] == "side\tfile\tline\treason"
    assert len(rejects) == 2
    side, f, line, reason = rejects[1].split("\t")
    assert (side, f, line) == ("src", str(c.dir / "en.txt"), "5")
    assert "invalid UTF-8" in reason
    assert res.counts["src"]["rejected"] == 1 and res.counts["src"]["embedded"] == 7
    expected = {s: t for s, t in c.gold.items() if s != 4}
    assert pairs_of(res) == expected  # other ids unchanged
    en_text = [x if isinstance(x, str) else "" for x in lines]
    check_outputs_agree(res, en_text, c.fr, [f"en-meta-{i}" for i in range(8)],
                        [f"fr-meta-{j}" for j in range(8)])


def test_missing_shard_in_shard_list(tmp_path: Path) -> None:
    en, fr = sentences(6)
    c = Corpus(tmp_path / "data", en, fr, metas=False)
    ghost = c.dir / "en.999.txt"
    cfg = make_config(tmp_path, c.dir, meta=False, extra={"lang_configs": {
        "en": {"data": {"shard_list": [str(c.dir / "en.txt"), str(ghost)]}}, "fr": {}}})
    with pytest.raises(InputError) as exc:
        run(cfg)
    assert str(ghost) in str(exc.value) and "does not exist" in str(exc.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode-000 files anyway")
def test_unreadable_shard(tmp_path: Path) -> None:
    en, fr = sentences(6)
    c = Corpus(tmp_path / "data", en, fr, metas=False)
    (c.dir / "en.txt").chmod(0)
    try:
        with pytest.raises(InputError) as exc:
            run(make_config(tmp_path, c.dir, meta=False))
        assert str(c.dir / "en.txt") in str(exc.value) and "unreadable" in str(exc.value)
    finally:
        (c.dir / "en.txt").chmod(0o644)


@pytest.mark.parametrize("damage", ["not-gzip", "truncated"])
def test_corrupt_gz_shard(tmp_path: Path, damage: str) -> None:
    en, fr = sentences(6)
    d = tmp_path / "data"
    d.mkdir()
    write_lines(d / "fr.txt.gz", fr)
    bad = d / "en.txt.gz"
    if damage == "not-gzip":
        bad.write_bytes(b"this is not gzip data at all\n")
    else:
        good = gzip.compress("".join(f"{x}\n" for x in en * 50).encode(), mtime=0)
        bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError) as exc:
        run(make_config(tmp_path, d, glob="{lang}.txt.gz", meta=False))
    assert str(bad) in str(exc.value)


def test_meta_line_count_mismatch_names_both_files(tmp_path: Path) -> None:
    en, fr = sentences(6)
    c = Corpus(tmp_path / "data", en, fr)
    write_lines(c.dir / "fr.meta.txt", [f"fr-meta-{j}" for j in range(5)])
    with pytest.raises(InputError) as exc:
        run(make_config(tmp_path, c.dir))
    msg = str(exc.value)
    assert str(c.dir / "fr.meta.txt") in msg and str(c.dir / "fr.txt") in msg
    assert "5" in msg and "6" in msg


def test_encoders_of_different_dimensions(tmp_path: Path) -> None:
    en, fr = sentences(6)
    c = Corpus(tmp_path / "data", en, fr)
    cfg = make_config(tmp_path, c.dir, extra={"lang_configs": {
        "en": {}, "fr": {"embed_text": {"encoder": {"_target_": "toy", "dim": 32}}}}})
    assert cfg.tgt.encoder.options == {"dim": 32}
    with pytest.raises(EmbeddingFileError) as exc:
        run(cfg)
    msg = str(exc.value)
    assert "64" in msg and "32" in msg and "en" in msg and "fr" in msg
    # found before heavy work: no shard of either side was embedded
    assert not list((tmp_path / "out" / "work").glob("embed/**/*.npy"))


def test_all_blank_side(tmp_path: Path) -> None:
    en, fr = sentences(6)
    c = Corpus(tmp_path / "data", en, fr)
    write_lines(c.dir / "fr.txt", ["", "  ", "", "", "", ""])
    with pytest.raises(InputError) as exc:
        run(make_config(tmp_path, c.dir))
    assert "fr" in str(exc.value) and "nothing to mine" in str(exc.value)
    # found before the other side was embedded
    assert not list((tmp_path / "out" / "work").glob("embed/*/DONE.json"))


def test_all_empty_side(tmp_path: Path) -> None:
    en, fr = sentences(6)
    c = Corpus(tmp_path / "data", en, fr, metas=False)
    write_lines(c.dir / "fr.txt", [])
    with pytest.raises(InputError, match="nothing to mine"):
        run(make_config(tmp_path, c.dir, meta=False))


def _snapshot(out: Path) -> dict[str, bytes]:
    # the lock, and the plan `speechmine status` reads (it describes the latest attempt)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()
            and p.name not in (".speechmine.lock", ".speechmine-plan.json")}


def test_failed_rerun_leaves_earlier_outputs_intact(tmp_path: Path) -> None:
    en, fr = sentences(8)
    c = Corpus(tmp_path / "data", en, fr)
    out = tmp_path / "out"
    res = run(make_config(tmp_path, c.dir, out))
    before = _snapshot(out)
    assert {"config.yaml", "run.json", "rejects.tsv", Path(res.outputs["bitext"]).name,
            Path(res.outputs["bimeta"]).name, Path(res.outputs["align"]).name} <= set(before)
    # the same config, but a meta file now has a line too many
    write_lines(c.dir / "en.meta.txt", [f"en-meta-{i}" for i in range(9)])
    with pytest.raises(InputError):
        run(make_config(tmp_path, c.dir, out))
    assert _snapshot(out) == before
    # no temporary left behind either
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_failed_rerun_with_other_config_keeps_config_yaml(tmp_path: Path) -> None:
    en, fr = sentences(8)
    c = Corpus(tmp_path / "data", en, fr)
    out = tmp_path / "out"
    run(make_config(tmp_path, c.dir, out))
    before = _snapshot(out)
    write_lines(c.dir / "en.meta.txt", [f"en-meta-{i}" for i in range(9)])
    with pytest.raises(InputError):
        run(make_config(tmp_path, c.dir, out, overrides=["mine.k=3"]))
    assert _snapshot(out) == before


# --------------------------------------------------------------------------- unify


def test_unify_embeds_duplicates_once(tmp_path: Path) -> None:
    en, fr = sentences(8)
    d = tmp_path / "data"
    d.mkdir()
    # en lines 8, 9, 10 repeat lines 2, 5, 2 (10 with extra spaces: unify strips)
    en_lines = en + [en[2], en[5], f"  {en[2]} "]
    write_lines(d / "en.txt", en_lines)
    write_lines(d / "fr.txt", fr)
    res = run(make_config(tmp_path, d, meta=False, extra={"mine": {"unify": True}}))
    counts = json.loads(Path(res.outputs["run"]).read_text())["counts"]["src"]
    assert counts["lines"] == 11 and counts["duplicates"] == 3 and counts["embedded"] == 8
    # one embedding row per kept line
    side = res.sides["src"]
    assert sum(np.load(f, mmap_mode="r").shape[0] for f in side.emb_files) == 8
    assert pairs_of(res) == {i: i for i in range(8)}  # first occurrences only
    # without unify the duplicates are embedded and compete for the same targets
    res2 = run(make_config(tmp_path, d, tmp_path / "out2", name="cfg2", meta=False))
    assert res2.counts["src"]["embedded"] == 11 and res2.counts["src"]["duplicates"] == 0


# --------------------------------------------------------------------------- embeddings


def _toy_embed(lines: list[str], dim: int = 64) -> np.ndarray:
    return ToyEncoder(dim=dim).encode([x.strip() for x in lines]).astype(np.float32)


def _corpus_with_blanks(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    en, fr = sentences(10, start=40)
    d = tmp_path / "data"
    d.mkdir()
    en_lines = en[:3] + [""] + en[3:]
    fr_lines = list(reversed(fr))
    write_lines(d / "en.txt", en_lines)
    write_lines(d / "fr.txt", fr_lines)
    return d, en_lines, fr_lines


def test_existing_npy_embeddings_give_the_same_pairs(tmp_path: Path) -> None:
    d, en_lines, fr_lines = _corpus_with_blanks(tmp_path)
    ref = run(make_config(tmp_path, d, tmp_path / "out-ref", name="ref", meta=False))
    emb = tmp_path / "emb"
    emb.mkdir()
    np.save(emb / "en.000.npy", _toy_embed(en_lines))  # one row per line, blank included
    np.save(emb / "fr.000.npy", _toy_embed(fr_lines))
    cfg = make_config(tmp_path, d, tmp_path / "out-npy", name="npy", meta=False,
                      extra={"existing_embedding_glob": str(emb / "{lang}.*.npy")})
    assert cfg.src.existing_embedding_glob == str(emb / "{lang}.*.npy")
    res = run(cfg)
    assert pairs_of(res) == pairs_of(ref) == {i + (i >= 3): 9 - i for i in range(10)}
    np.testing.assert_allclose(res.alignment.scores, ref.alignment.scores, atol=1e-5)


def test_existing_legacy_raw_embeddings(tmp_path: Path) -> None:
    d, en_lines, fr_lines = _corpus_with_blanks(tmp_path)
    ref = run(make_config(tmp_path, d, tmp_path / "out-ref", name="ref", meta=False))
    emb = tmp_path / "emb"
    emb.mkdir()
    _toy_embed(en_lines).tofile(emb / "en.000.bin")  # headerless float32
    _toy_embed(fr_lines).tofile(emb / "fr.000.bin")
    extra = {"existing_embedding_glob": str(emb / "{lang}.*.bin")}
    # without embedding_dimensions the shape is unknown: an error, never a guess
    with pytest.raises(EmbeddingFileError, match="embedding_dimensions"):
        run(make_config(tmp_path, d, tmp_path / "out-raw0", name="raw0", meta=False,
                        extra=extra))
    res = run(make_config(tmp_path, d, tmp_path / "out-raw", name="raw", meta=False,
                          extra={**extra, "embedding_dimensions": 64}))
    assert pairs_of(res) == pairs_of(ref)
    np.testing.assert_allclose(res.alignment.scores, ref.alignment.scores, atol=1e-5)


def test_existing_raw_embeddings_of_wrong_size(tmp_path: Path) -> None:
    d, en_lines, fr_lines = _corpus_with_blanks(tmp_path)
    emb = tmp_path / "emb"
    emb.mkdir()
    bad = emb / "en.000.bin"
    np.concatenate([_toy_embed(en_lines).ravel(), np.ones(3, np.float32)]).tofile(bad)
    _toy_embed(fr_lines).tofile(emb / "fr.000.bin")
    with pytest.raises(EmbeddingFileError) as exc:
        run(make_config(tmp_path, d, meta=False, extra={
            "existing_embedding_glob": str(emb / "{lang}.*.bin"), "embedding_dimensions": 64}))
    assert str(bad) in str(exc.value) and "64" in str(exc.value)


def test_existing_embeddings_with_a_row_missing(tmp_path: Path) -> None:
    d, en_lines, fr_lines = _corpus_with_blanks(tmp_path)
    emb = tmp_path / "emb"
    emb.mkdir()
    np.save(emb / "en.000.npy", _toy_embed(en_lines)[:-1])
    np.save(emb / "fr.000.npy", _toy_embed(fr_lines))
    with pytest.raises(EmbeddingFileError) as exc:
        run(make_config(tmp_path, d, meta=False,
                        extra={"existing_embedding_glob": str(emb / "{lang}.*.npy")}))
    assert str(emb / "en.000.npy") in str(exc.value)


# --------------------------------------------------------------------------- lock


def test_locked_output_dir(tmp_path: Path) -> None:
    en, fr = sentences(6)
    c = Corpus(tmp_path / "data", en, fr)
    out = tmp_path / "out"
    cfg = make_config(tmp_path, c.dir, out)
    with DirLock(out):
        with pytest.raises(RunLockedError) as exc:
            run(cfg)
        msg = str(exc.value)
        assert str(out) in msg and "another speechmine run" in msg
        assert f"pid {os.getpid()}" in msg
    assert not (out / "run.json").exists()
    run(cfg)  # released: the run goes ahead
    assert (out / "run.json").exists()


def test_existing_index_is_used_for_the_target_side(tmp_path: Path) -> None:
    """existing_index_path: a FAISS index over every line of a side, ids = global ids."""
    import faiss

    d, en_lines, fr_lines = _corpus_with_blanks(tmp_path)
    ref = run(make_config(tmp_path, d, tmp_path / "out-ref", name="ref", meta=False))
    emb = _toy_embed(fr_lines)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(64))
    index.add_with_ids(emb, np.arange(len(fr_lines), dtype=np.int64))
    faiss.write_index(index, str(tmp_path / "fr.faiss"))
    cfg = make_config(tmp_path, d, tmp_path / "out-idx", name="idx", meta=False, extra={
        "lang_configs": {"en": {}, "fr": {"existing_index_path": str(tmp_path / "fr.faiss")}}})
    res = run(cfg)
    assert pairs_of(res) == pairs_of(ref)
    np.testing.assert_allclose(res.alignment.scores, ref.alignment.scores, atol=1e-5)
    # an index that does not cover the side is refused with its path
    small = faiss.IndexFlatIP(64)
    small.add(emb[:4])
    faiss.write_index(small, str(tmp_path / "small.faiss"))
    with pytest.raises(InputError, match="small.faiss"):
        run(make_config(tmp_path, d, tmp_path / "out-small", name="small", meta=False, extra={
            "lang_configs": {"en": {}, "fr": {"existing_index_path":
                                              str(tmp_path / "small.faiss")}}}))


# ------------------------------------------------------ review fixes: caches, indexes, metas


def test_existing_l2_index_from_stopes_gives_the_same_pairs(tmp_path: Path) -> None:
    """stopes builds L2 indexes: squared L2 on unit vectors is turned back into cosines."""
    import faiss

    d, en_lines, fr_lines = _corpus_with_blanks(tmp_path)
    ref = run(make_config(tmp_path, d, tmp_path / "out-ref", name="ref", meta=False))
    emb = _toy_embed(fr_lines)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    index = faiss.index_factory(64, "Flat")  # METRIC_L2, as stopes' train_index
    index.add(emb)
    faiss.write_index(index, str(tmp_path / "fr.l2.faiss"))
    res = run(make_config(tmp_path, d, tmp_path / "out-l2", name="l2", meta=False, extra={
        "lang_configs": {"en": {}, "fr": {"existing_index_path": str(tmp_path / "fr.l2.faiss")}}}))
    assert pairs_of(res) == pairs_of(ref)
    np.testing.assert_allclose(res.alignment.scores, ref.alignment.scores, atol=1e-4)


def test_reexported_embeddings_are_not_served_from_cache(tmp_path: Path) -> None:
    d, en_lines, fr_lines = _corpus_with_blanks(tmp_path)
    emb = tmp_path / "emb"
    emb.mkdir()
    np.save(emb / "en.000.npy", _toy_embed(en_lines))
    np.save(emb / "fr.000.npy", _toy_embed(fr_lines))
    extra = {"existing_embedding_glob": str(emb / "{lang}.*.npy")}
    first = run(make_config(tmp_path, d, tmp_path / "out", meta=False, extra=extra))
    # the user re-exports fr with the rows reversed: the pairs must follow
    os.utime(emb / "fr.000.npy", ns=(1, 1))
    np.save(emb / "fr.000.npy", _toy_embed(fr_lines)[::-1].copy())
    second = run(make_config(tmp_path, d, tmp_path / "out", meta=False, extra=extra))
    assert second.counts["tgt"]["shards_embedded_this_run"] == 1
    n = len(fr_lines)
    assert pairs_of(second) == {s: n - 1 - t for s, t in pairs_of(first).items()}


def test_meta_files_pair_with_shards_by_shard_number(tmp_path: Path) -> None:
    en, fr = sentences(9)
    d = tmp_path / "data"
    d.mkdir()
    # stopes' shard number is the first .NNN. of the name; the prefixes sort the other way
    for i, (prefix, shard) in enumerate((("c", "001"), ("b", "002"), ("a", "010"))):
        write_lines(d / f"{prefix}.en.{shard}.txt", en[3 * i: 3 * i + 3])
        write_lines(d / f"{prefix}.en.{shard}.meta", [f"en-meta-{shard}-{j}" for j in range(3)])
        write_lines(d / f"{prefix}.fr.{shard}.txt", fr[3 * i: 3 * i + 3])
        write_lines(d / f"{prefix}.fr.{shard}.meta", [f"fr-meta-{shard}-{j}" for j in range(3)])
    cfg = make_config(tmp_path, d, glob="*.{lang}.*.txt", meta=False,
                      extra={"data": {"meta_glob": "${.data_shard_dir}/*.{lang}.*.meta"}})
    res = run(cfg)
    shards = ["001", "002", "010"]
    rows = read_gz_rows(res.outputs["bimeta"])
    assert len(rows) == 9
    for (_, sm, tm, _), s in zip(rows, res.alignment.src.tolist()):
        assert sm == f"en-meta-{shards[s // 3]}-{s % 3}"
        assert tm.startswith("fr-meta-")


@pytest.mark.parametrize("nl,why", [("29\n", "says 29 lines but shard"),
                                    ("30\n1\n", "2 line counts for 1 shards"),
                                    ("thirty\n", "not a line count")])
def test_a_wrong_nl_file_is_an_error_naming_it(tmp_path: Path, nl: str, why: str) -> None:
    corpus = Corpus(tmp_path / "c", *sentences(30))
    (corpus.dir / "en.nl").write_text(nl)
    with pytest.raises(InputError, match=why) as exc:
        run(make_config(tmp_path, corpus.dir))
    assert str(corpus.dir / "en.nl") in str(exc.value)
    (corpus.dir / "en.nl").write_text("30\n")  # right: accepted
    assert run(make_config(tmp_path, corpus.dir)).counts["pairs"] > 0
