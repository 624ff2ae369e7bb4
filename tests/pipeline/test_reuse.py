"""What a rerun may reuse: exactly what is still valid (content identity of every input,
audio behind manifests included), the same work once whoever asks, and nothing after a
failure that is not the data's fault."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    Corpus,
    make_audio,
    make_config,
    output_bytes,
    pairs_of,
    sentences,
    sonar_speech_cfg,
    write_lines,
    write_manifest,
)

from speechmine.executors import JobFailed
from speechmine.pipeline import run
from speechmine.pipeline.embed import EMB


def _same_size_and_mtime_edit(path: Path, old: str, new: str) -> None:
    """Edit a file in place keeping its size and mtime (what cp -p / touch -r leave)."""
    st = path.stat()
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new, 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_edit_keeping_size_and_mtime_is_seen_by_content_identity(tmp_path: Path) -> None:
    en, fr = sentences(30)
    corpus = Corpus(tmp_path / "c", en, fr)
    first = run(make_config(tmp_path, corpus.dir))
    assert first.counts["src"]["shards_embedded_this_run"] == 1
    # "one and two" → "six and two": same length, same size, same mtime
    line = corpus.en[0]
    assert line.startswith("one ")
    _same_size_and_mtime_edit(corpus.dir / "en.txt", line, "six " + line[4:])
    again = run(make_config(tmp_path, corpus.dir))
    assert again.counts["src"]["shards_embedded_this_run"] == 1  # re-embedded
    assert again.counts["tgt"]["shards_embedded_this_run"] == 0
    fresh = run(make_config(tmp_path, corpus.dir, out=tmp_path / "fresh"))
    assert pairs_of(again) == pairs_of(fresh) != pairs_of(first)
    assert output_bytes(tmp_path / "out")["en-fr.TH-1.1.bitext.tsv.gz"] == \
        output_bytes(tmp_path / "fresh")["en-fr.TH-1.1.bitext.tsv.gz"]


def test_cache_verify_stat_is_the_documented_opt_out(tmp_path: Path) -> None:
    """With cache.verify: stat, identity is path + size + mtime: cheaper, and blind to an
    edit that keeps both (as documented); a move or a touch is a new file."""
    en, fr = sentences(30)
    corpus = Corpus(tmp_path / "c", en, fr)
    extra = {"cache": {"verify": "stat"}}
    run(make_config(tmp_path, corpus.dir, extra=extra))
    _same_size_and_mtime_edit(corpus.dir / "en.txt", corpus.en[0], "six " + corpus.en[0][4:])
    blind = run(make_config(tmp_path, corpus.dir, extra=extra))
    assert blind.counts["src"]["shards_embedded_this_run"] == 0
    os.utime(corpus.dir / "en.txt")  # a new mtime: a new file
    seen = run(make_config(tmp_path, corpus.dir, extra=extra))
    assert seen.counts["src"]["shards_embedded_this_run"] == 1


def test_one_file_mined_against_itself_is_embedded_once(tmp_path: Path) -> None:
    en, _ = sentences(40)
    d = tmp_path / "c"
    d.mkdir()
    write_lines(d / "en.txt", en)
    cfg = make_config(tmp_path, d, meta=False, extra={
        "src_lang": "en", "tgt_lang": "en2",
        "lang_configs": {"en": {}, "en2": {"data": {"shard_glob": str(d / "en.txt")}}}})
    res = run(cfg)
    emb = list((tmp_path / "out" / "work" / "embed").glob("*/DONE.json"))
    assert len(emb) == 1
    assert res.counts["src"]["shards_embedded_this_run"] + \
        res.counts["tgt"]["shards_embedded_this_run"] == 1
    assert res.sides["src"].emb_files == res.sides["tgt"].emb_files


def test_runs_sharing_a_work_dir_share_the_embedding_of_a_shard(tmp_path: Path) -> None:
    en, fr = sentences(40)
    corpus = Corpus(tmp_path / "c", en, fr)
    shared = {"work_dir": str(tmp_path / "work")}
    run(make_config(tmp_path, corpus.dir, out=tmp_path / "a", extra=shared))
    # another run, another target side: the English shard is not embedded again
    de = tmp_path / "d"
    de.mkdir()
    write_lines(de / "de.txt", [s.replace("and", "und") for s in en])
    other = make_config(tmp_path, corpus.dir, out=tmp_path / "b", meta=False, extra={
        **shared, "tgt_lang": "de",
        "lang_configs": {"en": {}, "de": {"data": {"shard_glob": str(de / "de.txt")}}}})
    res = run(other)
    assert res.counts["src"]["shards_embedded_this_run"] == 0
    assert res.counts["tgt"]["shards_embedded_this_run"] == 1


# ------------------------------------------------------------------------------ speech

pytest.importorskip("soundfile")


def _speech_config(tmp_path: Path, sonar_dir: Path, manifest: Path, out: Path) -> object:
    en, _ = sentences(12)
    text = tmp_path / "t"
    text.mkdir(exist_ok=True)
    write_lines(text / "fr.txt", en)
    return make_config(tmp_path, text, out=out, meta=False, extra={
        "src_lang": "enA", "tgt_lang": "frA", "mine_threshold": 0.0,
        "lang_configs": {
            "enA": {"data": {"shard_type": "speech", "shard_glob": str(manifest)},
                    "embed_speech": {"encoder": sonar_speech_cfg(sonar_dir)}},
            "frA": {"data": {"shard_type": "speech", "shard_glob": str(manifest)},
                    "embed_speech": {"encoder": sonar_speech_cfg(sonar_dir)}}}})


def _vectors(res: object, role: str) -> np.ndarray:
    return np.concatenate([np.load(f) for f in res.sides[role].emb_files])  # type: ignore


def test_audio_replaced_behind_an_unchanged_manifest_is_embedded_again(
        tmp_path: Path, sonar_dir: Path) -> None:
    """Same file name, same length, same mtime, new content: the manifest is unchanged, the
    audio is not. Also in the same process, so the decoded-audio cache must not serve the
    old samples either."""
    pytest.importorskip("torch")
    import soundfile as sf

    segs = make_audio(tmp_path / "audio", n_files=2)
    # a malformed line first: the audio named after it must still be in the key
    manifest = tmp_path / "m.tsv"
    write_manifest(manifest, segs)
    manifest.write_text("audio/file0.wav\t0\tten\t0\n" + manifest.read_text())
    cfg = _speech_config(tmp_path, sonar_dir, manifest, tmp_path / "out")
    first = run(cfg)
    assert first.counts["src"]["shards_embedded_this_run"] == 1
    wav = tmp_path / "audio" / "file1.wav"
    st = wav.stat()
    data, sr = sf.read(wav, dtype="float32")
    sf.write(wav, np.roll(data, 4000)[::-1].copy(), sr, subtype="PCM_16")
    os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert wav.stat().st_size == st.st_size
    again = run(cfg)
    assert again.counts["src"]["shards_embedded_this_run"] == 1
    fresh = run(dataclasses.replace(cfg, output_dir=str(tmp_path / "fresh"),
                                    work_dir=str(tmp_path / "fresh-work")))
    np.testing.assert_array_equal(_vectors(again, "src"), _vectors(fresh, "src"))
    assert not np.array_equal(_vectors(again, "src"), _vectors(first, "src"))


def test_a_system_error_while_reading_audio_fails_the_job_instead_of_a_reject(
        tmp_path: Path, sonar_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EIO on a network filesystem is not bad data: nothing is rejected, nothing is marked
    done, and a rerun (the disk back) retries and matches an undisturbed run."""
    pytest.importorskip("torch")
    from speechmine.io import audio as audio_mod

    segs = make_audio(tmp_path / "audio", n_files=2)
    manifest = write_manifest(tmp_path / "m.tsv", segs)
    cfg = _speech_config(tmp_path, sonar_dir, manifest, tmp_path / "out")
    real = audio_mod.load_audio

    def flaky(path):  # type: ignore[no-untyped-def]
        if path.endswith("file1.wav"):
            raise OSError(errno.EIO, "Input/output error", path)
        return real(path)

    # in this process (the fault is patched in here), with one retry: EIO may be transient
    cfg = dataclasses.replace(cfg, launcher=dataclasses.replace(
        cfg.launcher, cluster="debug", max_retries=1))
    monkeypatch.setattr(audio_mod, "load_audio", flaky)
    with pytest.raises(JobFailed, match=r"2 attempt\(s\).*Input/output error"):
        run(cfg)
    assert not list((tmp_path / "out" / "work" / "embed").glob("*/DONE.json"))
    assert not (tmp_path / "out" / "run.json").exists()
    monkeypatch.setattr(audio_mod, "load_audio", real)
    res = run(cfg)
    assert res.counts["src"]["rejected"] == 0
    ref = run(dataclasses.replace(cfg, output_dir=str(tmp_path / "ref"),
                                  work_dir=str(tmp_path / "ref-work")))
    assert pairs_of(res) == pairs_of(ref)
    name = "enA-frA.TH-0.bitext.tsv.gz"
    assert output_bytes(tmp_path / "out")[name] == output_bytes(tmp_path / "ref")[name]


@pytest.mark.parametrize("damage", ["missing sidecar", "garbage sidecar", "truncated npy"])
def test_a_damaged_embedding_is_embedded_again(tmp_path: Path, damage: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    en, fr = sentences(30)
    corpus = Corpus(tmp_path / "c", en, fr)
    run(make_config(tmp_path, corpus.dir))
    before = output_bytes(tmp_path / "out")
    emb = sorted((tmp_path / "out" / "work" / "embed").glob(f"*/{EMB}"))[0]
    if damage == "missing sidecar":
        Path(f"{emb}.json").unlink()
    elif damage == "garbage sidecar":
        Path(f"{emb}.json").write_text("{]")
    else:
        with open(emb, "r+b") as fh:
            fh.truncate(emb.stat().st_size - 64)
    res = run(make_config(tmp_path, corpus.dir))
    assert res.counts["src"]["shards_embedded_this_run"] + \
        res.counts["tgt"]["shards_embedded_this_run"] == 1
    assert output_bytes(tmp_path / "out") == before


def test_a_truncated_index_is_trained_again(tmp_path: Path) -> None:
    en, fr = sentences(160)
    corpus = Corpus(tmp_path / "c", en, fr)
    ivf = {"index": {"exact_max_size": 0, "type": "IVF4,Flat", "nprobe": 4}}
    run(make_config(tmp_path, corpus.dir, extra=ivf))
    before = output_bytes(tmp_path / "out")
    (index,) = sorted((tmp_path / "out" / "work" / "index_merge").glob("*/index.faiss"))[:1]
    with open(index, "r+b") as fh:
        fh.truncate(index.stat().st_size // 2)
    # so that the index is needed again
    shutil.rmtree(tmp_path / "out" / "work" / "knn_part")
    run(make_config(tmp_path, corpus.dir, extra=ivf))
    assert output_bytes(tmp_path / "out") == before


def test_new_weights_at_the_same_path_are_seen_by_the_next_run_in_the_same_process(
        tmp_path: Path, sonar_dir: Path) -> None:
    """The encoder's identity holds the checkpoint's bytes, and no stale copy of it survives
    between runs of one process (notebooks, services)."""
    torch = pytest.importorskip("torch")
    from helpers import sonar_text_cfg

    en, fr = sentences(20)
    corpus = Corpus(tmp_path / "c", en, fr)
    extra = {"embed_text": {"encoder": sonar_text_cfg(sonar_dir)}, "mine_threshold": 0.0}
    first = run(make_config(tmp_path, corpus.dir, extra=extra))
    assert first.counts["src"]["shards_embedded_this_run"] == 1
    ckpt = sonar_dir / "tiny_text_encoder.pt"
    state = torch.load(ckpt, weights_only=True)
    flat = state["model"] if "model" in state else state
    name = next(k for k, v in flat.items() if torch.is_tensor(v) and v.is_floating_point())
    flat[name] = flat[name] * 1.5
    st = ckpt.stat()
    torch.save(state, ckpt)
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = run(make_config(tmp_path, corpus.dir, extra=extra))
    assert again.counts["src"]["shards_embedded_this_run"] == 1
    assert again.counts["tgt"]["shards_embedded_this_run"] == 1
    assert not np.array_equal(_vectors(again, "src"), _vectors(first, "src"))
