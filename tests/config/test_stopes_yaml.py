"""Every stopes YAML a stopes user composes — ``global_mining.yaml``, its presets, and every
option of the groups speechmine reads (embed_text, embed_speech, mine_indexes,
mine_sentences, calculate_distances) — loads through speechmine's composition, unchanged
(vendored in tests/data/stopes_conf with their licence header)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DATA

from speechmine.config import ConfigError, load_config

CONF = DATA / "stopes_conf" / "conf"
GLOBAL = CONF / "global_mining.yaml"
#: what a user types besides the preset: languages, where, data (global_mining has data: ???)
BASE = ["src_lang=fr", "tgt_lang=en", "output_dir=/out", "+data.data_version=V1",
        "+data.shard_glob=/data/{lang}.gz", "+demo_dir=/demo", "+model_dir=/models",
        "+vocab_dir=/models"]


def _load(*overrides: str) -> object:
    return load_config(GLOBAL, [*BASE, *overrides], check_files=False)


def test_global_mining_yaml_as_is() -> None:
    cfg = _load()  # stopes' defaults: laser3, its mining groups, submitit launcher
    assert cfg.src.encoder.name == "laser"  # type: ignore[attr-defined]
    mine = cfg.mine  # type: ignore[attr-defined]
    assert (mine.k, mine.candidate, mine.retrieval, mine.threshold, mine.max_score,
            mine.dedup_texts) == (16, "nearest", "union", 1.04, 1.25, True)
    assert cfg.output.layout == "stopes"  # type: ignore[attr-defined]
    ignored = " ".join(cfg.ignored)  # type: ignore[attr-defined]
    for key in ("train_index", "populate_index", "merge_indexes", "launcher.throttle",
                "mine_indexes.config.src2tgt_dist_files", "embed_text._target_"):
        assert key in ignored, key


def test_the_demo_preset() -> None:
    cfg = load_config(GLOBAL, ["+preset=demo", "demo_dir=/demo", "src_lang=amh",
                               "tgt_lang=hau"], check_files=False)
    assert cfg.src.encoder.name == "laser"
    assert cfg.src.encoder.options["encoder_model"] == "/demo/models/wmt22/laser3-amh.v1.pt"
    assert cfg.tgt.encoder.options["spm_model"] == "/demo/models/wmt22/laser2.spm"
    assert cfg.output_dir == "." and cfg.src.data.bname == "demo_wmt22"


def test_the_speech_demo_preset() -> None:
    given = ["+preset=demo_speechmine", "demo_text_dir=/t", "demo_audio_dir=/a",
             "src_lang=frA", "tgt_lang=fr"]
    # the preset's own ??? is asked for where it is, in its language's entry
    with pytest.raises(ConfigError, match=r"lang_configs\.frA\.embed_speech\.encoder\."
                                          r"encoder_model=\.\.\."):
        load_config(GLOBAL, given, check_files=False)
    cfg = load_config(GLOBAL, [*given, "lang_configs.frA.embed_speech.encoder.encoder_model="
                               "sonar_speech_encoder_fra"], check_files=False)
    assert (cfg.src.name, cfg.src.modality, cfg.src.encoder.name) == ("frA", "speech",
                                                                    "sonar_speech")
    assert (cfg.tgt.name, cfg.tgt.modality, cfg.tgt.encoder.name) == ("fr", "text",
                                                                    "sonar_text")


@pytest.mark.parametrize("option,extra,encoder", [
    ("laser2", [], "laser"),
    ("laser3", [], "laser"),
    ("sonar", ["+name=text_sonar_basic_encoder"], "sonar_text"),
    ("huggingface", ["+name=sentence-transformers/LaBSE"], "sentence_transformers"),
    ("hf_labse", [], "sentence_transformers"),
    ("hf_roberta_large", [], "sentence_transformers"),
])
def test_every_embed_text_option(option: str, extra: list[str], encoder: str) -> None:
    cfg = _load(f"embed_text={option}", *extra)
    assert cfg.src.encoder.name == encoder  # type: ignore[attr-defined]


@pytest.mark.parametrize("option", ["encode", "preproc_and_encode"])
def test_embed_text_building_blocks_ask_for_an_encoder(option: str) -> None:
    """encode/preproc_and_encode are what the other options build on: alone, their
    `encoder: ???` is asked for by its full key."""
    with pytest.raises(ConfigError, match=r"embed_text\.encoder=\.\.\."):
        _load(f"embed_text={option}")


def test_embed_speech_options() -> None:
    cfg = _load("embed_speech=sonar", "embed_speech.encoder.encoder_model=sonar_speech_encoder_fra",
                "+data.shard_type=speech")
    assert cfg.src.encoder.name == "sonar_speech"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"embed_speech\.encoder\.encoder_model=\.\.\."):
        _load("embed_speech=sonar", "+data.shard_type=speech")
    # stopes' LASER speech encoder is one speechmine does not have: it says so, and what it has
    with pytest.raises(ConfigError, match="MiningSpeechEncoder is a stopes encoder speechmine "
                                          "does not implement.*sonar_speech"):
        _load("embed_speech=laser", "embed_speech.encoder.encoder_model=x",
              "+data.shard_type=speech")


@pytest.mark.parametrize("group", ["mine_indexes", "mine_sentences", "calculate_distances"])
def test_mining_groups_selected_by_name(group: str) -> None:
    assert _load(f"{group}=base").mine.k == 16  # type: ignore[attr-defined]


def test_group_picks_and_removals_on_the_command_line(tmp_path: Path) -> None:
    # a group that does not exist names the options it has
    with pytest.raises(ConfigError, match="embed_text has: .*laser3.*sonar"):
        _load("embed_text=laser4")
    # ~group drops a default; +key adds one; a speechmine group by name from the bundle
    cfg = _load("~embed_text", "+embed_text.encoder._target_=toy")
    assert cfg.src.encoder.name == "toy"  # type: ignore[attr-defined]
    assert _load("embed_text=usem3").src.encoder.name == "usem3"  # type: ignore[attr-defined]


def test_unknown_keys_are_reported_together_with_their_full_path() -> None:
    with pytest.raises(ConfigError) as exc:
        _load("+mine.kk=3", "+index.nprob=3", "+data.shrad_glob=x")
    msg = str(exc.value)
    for key, hint in (("mine.kk", "k"), ("index.nprob", "nprobe"),
                      ("lang_configs.fr.data.shrad_glob", "shard_glob")):
        assert key in msg and hint in msg, (key, msg)


def test_a_missing_value_is_asked_for_by_its_full_key() -> None:
    with pytest.raises(ConfigError, match=r"mine_indexes\.config\.margin_norm=\.\.\."):
        _load("mine_indexes.config.margin_norm=???")
