"""Encoder ensembles end to end: per-member caching, margin_mean and concat fusion checked
against the members' own runs and files, splitting, and what ``speechmine status`` shows.

Two toy encoders of different options (``dim: 48``; ``noise: 0.3`` with weight 2) stand for
two real ones: a member's stages must be exactly those of a run with that encoder alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import Corpus, make_config, output_bytes, sentences, toy_preset

from speechmine.io.embeddings import load_embeddings
from speechmine.pipeline import plan, run
from speechmine.pipeline.status import read_status

A = {"_target_": "toy", "dim": 48}
B = {"_target_": "toy", "noise": 0.3}
W = 2.0  # B's weight


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    en, fr = sentences(70)
    # untranslated lines on both sides, so the margins matter
    return Corpus(tmp_path_factory.mktemp("ens"), en[:60] + sentences(10, start=100)[0],
                  fr[:60] + sentences(10, start=150)[1])


def mine(tmp: Path, corpus: Corpus, name: str, encoder: Any, fusion: str = "margin_mean",
         **extra: Any) -> Any:
    """Mine with a work dir shared by every run of the test (so caches are shared)."""
    cfg = make_config(tmp, corpus.dir, out=tmp / name, name=name, extra={
        "embed_text": {"encoder": encoder}, "work_dir": str(tmp / "work"),
        "mine": {"fusion": fusion, "threshold": 1.0}, **extra})
    return run(cfg)


def candidates(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "en-fr.candidates.npz") as z:
        return {k: z[k] for k in z.files}


def test_members_are_single_encoder_runs_and_margins_are_fused(tmp_path: Path,
                                                                corpus: Corpus) -> None:
    a = mine(tmp_path, corpus, "a", A)
    b = mine(tmp_path, corpus, "b", B)
    ens = mine(tmp_path, corpus, "ens", [A, {**B, "weight": W}])
    keys = {name: json.loads((tmp_path / name / "run.json").read_text())["keys"]
            for name in ("a", "b", "ens")}
    # every member stage is the single run's: nothing was embedded or searched again
    for m, single in (("m0.", "a"), ("m1.", "b")):
        for label in ("src.embed.0", "tgt.embed.0", "knn"):
            assert keys["ens"][m + label] == keys[single][label]
    assert ens.counts["src"]["shards_embedded_this_run"] == 0
    assert [e["weight"] for e in ens.counts["src"]["encoders"]] == [1.0, W]
    assert ens.counts["fusion"] == "margin_mean"
    # where both members and the fusion choose the same target, the fused score is the
    # weighted mean of the members' margins
    ca, cb, ce = (candidates(tmp_path / n) for n in ("a", "b", "ens"))
    for d, other in (("fwd", "tgt"), ("bwd", "src")):
        same = (ca[f"{d}_{other}"] == ce[f"{d}_{other}"]) & \
            (cb[f"{d}_{other}"] == ce[f"{d}_{other}"])
        assert same.sum() >= 55
        want = (ca[f"{d}_score"] + W * cb[f"{d}_score"]) / (1 + W)
        np.testing.assert_allclose(ce[f"{d}_score"][same], want[same], rtol=1e-5)
    gold = {(s, t) for s, t in corpus.gold.items() if s < 60}
    for res in (a, b, ens):
        pairs = set(zip(res.alignment.src.tolist(), res.alignment.tgt.tolist()))
        assert {p for p in pairs if p[0] < 60} == gold  # no translated line paired wrongly
    assert read_status(tmp_path / "ens")["finished"]


def test_changing_one_member_reembeds_only_that_member(tmp_path: Path, corpus: Corpus
                                                       ) -> None:
    first = mine(tmp_path, corpus, "one", [A, {**B, "weight": W}])
    assert first.counts["src"]["shards_embedded_this_run"] == 2  # one shard, two members
    embeds = sorted((tmp_path / "work" / "embed").iterdir())
    again = mine(tmp_path, corpus, "two", [A, {**B, "noise": 0.5, "weight": W}])
    assert again.counts["src"]["shards_embedded_this_run"] == 1
    assert again.counts["tgt"]["shards_embedded_this_run"] == 1
    after = sorted((tmp_path / "work" / "embed").iterdir())
    assert set(embeds) < set(after) and len(after) == len(embeds) + 2
    # a new weight re-fuses, and embeds nothing
    reweighted = mine(tmp_path, corpus, "three", [A, {**B, "weight": 3}])
    assert reweighted.counts["src"]["shards_embedded_this_run"] == 0
    k1 = json.loads((tmp_path / "one" / "run.json").read_text())["keys"]
    k3 = json.loads((tmp_path / "three" / "run.json").read_text())["keys"]
    assert k1["m1.knn"] == k3["m1.knn"] and k1["select"] != k3["select"]


def test_concat_mines_the_weighted_concatenation(tmp_path: Path, corpus: Corpus) -> None:
    res = mine(tmp_path, corpus, "cat", [A, {**B, "weight": W}], fusion="concat")
    mean = mine(tmp_path, corpus, "mean", [A, {**B, "weight": W}])
    keys = json.loads((tmp_path / "cat" / "run.json").read_text())["keys"]
    work = tmp_path / "work"
    cat = load_embeddings(work / "concat" / keys["src.concat.0"] / "emb.npy")
    a = load_embeddings(work / "embed" / keys["m0.src.embed.0"] / "emb.npy")
    b = load_embeddings(work / "embed" / keys["m1.src.embed.0"] / "emb.npy")
    assert cat.shape == (70, 48 + 64)
    np.testing.assert_allclose(cat, np.hstack([a * np.sqrt(1 / 3), b * np.sqrt(2 / 3)]),
                               atol=1e-6)
    assert res.counts["fusion"] == "concat" and len(res.alignment) > 0
    assert keys["select"] != json.loads((tmp_path / "mean" / "run.json").read_text()
                                        )["keys"]["select"]
    gold = {(s, t) for s, t in corpus.gold.items() if s < 60}
    for r in (res, mean):
        assert set(zip(r.alignment.src.tolist(), r.alignment.tgt.tolist())) >= gold


@pytest.mark.parametrize("fusion", ["margin_mean", "concat"])
def test_a_split_ensemble_writes_what_an_unsplit_one_writes(tmp_path: Path, corpus: Corpus,
                                                            fusion: str) -> None:
    members = [A, {**B, "weight": W}]
    mine(tmp_path, corpus, "whole", members, fusion)
    mine(tmp_path, corpus, "split", members, fusion, max_shard_size=25)

    def outputs(name: str) -> dict[str, Any]:
        files: dict[str, Any] = output_bytes(tmp_path / name)
        files.pop("config.yaml")
        info = json.loads(files.pop("run.json"))
        return {**files, "pairs": info["counts"]["pairs"]}

    assert outputs("whole") == outputs("split")
    status = read_status(tmp_path / "split")
    labels = {s["label"] for s in status["stages"]}
    parts = [f"m1.src.embed.{i}" for i in range(3)] + (
        [f"src.concat.{i}" for i in range(3)] if fusion == "concat" else [])
    assert set(parts) <= labels  # 70 rows in parts of 25
    assert status["finished"]


def test_an_ensemble_searched_through_indexes(tmp_path: Path, corpus: Corpus) -> None:
    """Each member builds its own index and searches it (re-ranked exactly)."""
    res = mine(tmp_path, corpus, "ivf", [A, {**B, "weight": W}],
               index={"exact_max_size": 0, "type": "IVF2,Flat", "nprobe": 2})
    exact = mine(tmp_path, corpus, "exact", [A, {**B, "weight": W}])
    merged = list((tmp_path / "work" / "index_merge").glob("*/DONE.json"))
    assert len(merged) == 4  # two members, two sides
    # nprobe covers every list and the candidates are re-scored: the exact search's pairs
    assert output_bytes(tmp_path / "ivf").keys() == output_bytes(tmp_path / "exact").keys()
    assert np.array_equal(res.alignment.src, exact.alignment.src)
    assert np.array_equal(res.alignment.tgt, exact.alignment.tgt)


def test_a_one_member_list_is_a_single_encoder_run(tmp_path: Path, corpus: Corpus) -> None:
    listed = make_config(tmp_path, corpus.dir, name="listed",
                         extra={"embed_text": {"encoder": [A]}})
    plain = make_config(tmp_path, corpus.dir, name="plain", extra={"embed_text": {"encoder": A}})
    assert plan(listed).keys() == plan(plain).keys()


@pytest.mark.parametrize("fusion", ["margin_mean", "concat"])
def test_an_ensemble_through_the_cli_and_the_run_readers(tmp_path: Path, corpus: Corpus,
                                                         fusion: str) -> None:
    """``speechmine mine`` in one process (debug executor), then status, eval, report and
    export read the ensemble's run like any other."""
    from click.testing import CliRunner

    from speechmine.cli import main

    preset = toy_preset(tmp_path, corpus.dir, out=tmp_path / "out", extra={
        "embed_text": {"encoder": [A, {**B, "weight": W}]}, "mine": {"fusion": fusion},
        "launcher": {"cluster": "debug"}})
    runner = CliRunner()
    res = runner.invoke(main, ["mine", str(preset), "--no-progress"])
    assert res.exit_code == 0, res.output
    # the log says which threshold is in force: no fused calibration for toy members
    assert f"the fused space {fusion}(toy*1+toy*2) declares no calibrated" in res.output
    out = tmp_path / "out"
    info = json.loads((out / "run.json").read_text())
    assert info["counts"]["src"]["encoder"] == "toy + toy×2"
    assert info["counts"]["fusion"] == fusion and info["mine"]["fusion"] == fusion

    status = runner.invoke(main, ["status", str(out), "--json"])
    assert status.exit_code == 0 and json.loads(status.output)["finished"]

    gold = tmp_path / "gold.tsv"
    gold.write_text("".join(f"{s}\t{t}\n" for s, t in sorted(corpus.gold.items()) if s < 60))
    ev = runner.invoke(main, ["eval", str(out), "--gold", str(gold), "--json"])
    assert ev.exit_code == 0, ev.output
    scores = json.loads(ev.output)
    assert scores["at_threshold"]["mined"] == info["counts"]["pairs"]
    assert scores["best"]["f1"] == 1.0  # toy translations: every gold pair is found

    rep = runner.invoke(main, ["report", str(out)])
    assert rep.exit_code == 0, rep.output
    assert "toy + toy×2" in (out / "report" / "index.html").read_text()

    exported = tmp_path / "pairs.jsonl"
    exp = runner.invoke(main, ["export", str(out), "--format", "jsonl", "-o", str(exported)])
    assert exp.exit_code == 0, exp.output
    assert len(exported.read_text().splitlines()) == info["counts"]["pairs"]


def test_a_speech_ensemble(tmp_path: Path, sonar_dir: Path) -> None:
    """``embed_speech.encoder`` as a list: two SONAR speech members (the tiny fixture; the
    second differs in an option that keys it apart), identical segments found, a segment
    both reject left out once."""
    pytest.importorskip("torch")
    pytest.importorskip("soundfile")
    import yaml
    from helpers import make_audio, sonar_speech_cfg, write_manifest

    from speechmine.config import load_config

    segs = make_audio(tmp_path / "audio")
    perm = np.random.default_rng(1).permutation(len(segs))
    write_manifest(tmp_path / "a.tsv", segs[:8])
    with open(tmp_path / "a.tsv", "a") as fh:
        fh.write("audio/missing.wav\t0\t16000\t0\n")  # rejected by every member
    write_manifest(tmp_path / "b.tsv", segs, order=perm)
    speech = sonar_speech_cfg(sonar_dir)
    members = [speech, {**speech, "max_seq_len": 4096, "weight": W}]

    def side(manifest: Path) -> dict[str, Any]:
        return {"data": {"shard_type": "speech", "shard_glob": str(manifest),
                         "bname": "speech"}, "embed_speech": {"encoder": members}}

    cfg = {"src_lang": "enA", "tgt_lang": "frA", "output_dir": str(tmp_path / "out"),
           "progress": False, "mine_threshold": 0.0, "on_error": "skip",
           "lang_configs": {"enA": side(tmp_path / "a.tsv"), "frA": side(tmp_path / "b.tsv")}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(cfg))
    res = run(load_config(tmp_path / "p.yaml"))
    pairs = set(zip(res.alignment.src.tolist(), res.alignment.tgt.tolist()))
    assert pairs == {(i, int(np.flatnonzero(perm == i)[0])) for i in range(8)}
    assert [e["weight"] for e in res.counts["src"]["encoders"]] == [1.0, W]
    assert res.counts["src"]["rejected"] == 1
    assert len((tmp_path / "out" / "rejects.tsv").read_text().splitlines()) == 2  # + header
