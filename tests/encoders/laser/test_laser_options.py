"""Options: stopes' LaserSentenceEncoder keys and speechmine's, typed; stopes' YAML shapes
build through the registry; model names resolve to the released files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from speechmine.encoders import (
    BUILTIN_INFO,
    STOPES_ALIASES,
    EncoderError,
    check_options,
    create,
    resolve,
)
from speechmine.encoders.laser import LaserEncoder, UnknownModelError
from speechmine.encoders.laser.langs import model_files
from speechmine.encoders.laser.options import parse_options

TARGET = "stopes.modules.preprocess.laser_sentence_encoder.LaserSentenceEncoder"


def test_registered_under_laser_and_stopes_target() -> None:
    assert resolve("laser") is LaserEncoder
    assert STOPES_ALIASES[TARGET] == "laser" and resolve(TARGET) is LaserEncoder
    extra, modules, _ = BUILTIN_INFO["laser"]
    assert extra == "laser" and "sacremoses" in modules


def test_stopes_laser3_encoder_yaml_builds(laser_dir: Path) -> None:
    """stopes' conf/embed_text/encoder/laser3_encoder.yaml with a language's files filled in
    (as preset/demo.yaml does), every key as stopes writes it."""
    yaml_options = {
        "_name": "laser3_encoder",
        "encoder_model": str(laser_dir / "tiny_laser3.pt"),
        "spm_model": str(laser_dir / "tiny.spm"),
        "spm_vocab": str(laser_dir / "tiny.cvocab"),
        "max_sentences": None, "max_tokens": 12_000, "stable_sort": False,
        "normalize": False, "fp16": False, "cpu": False, "fp16_model": False,
    }
    enc = create(TARGET, lang="wol", **yaml_options)
    assert isinstance(enc, LaserEncoder) and enc.arch == "transformer" and enc.dim == 16
    assert enc.opts.max_tokens == 12_000 and enc.runtime.device.type in ("cpu", "cuda")
    assert enc.encode(["Bonjour !"]).shape == (1, 16)


def test_stopes_laser2_encoder_yaml_builds(laser_dir: Path) -> None:
    enc = create(TARGET, _name="laser2_encoder", encoder_model=str(laser_dir / "tiny_laser2.pt"),
                 spm_model=str(laser_dir / "tiny.spm"), spm_vocab=str(laser_dir / "tiny.cvocab"),
                 max_sentences=None, max_tokens=12_000, stable_sort=False, normalize=False,
                 fp16=False, cpu=True)
    assert enc.arch == "lstm" and enc.runtime.device.type == "cpu"


def test_options_are_typed() -> None:
    cls = resolve("laser")
    opts = check_options(cls, {"batch_size": "5", "normalize": "no", "cpu": "yes",
                               "max_tokens": 3.0, "trust_checkpoint": "false",
                               "fp16_model": "on", "max_sentences": None})
    assert opts == {"batch_size": 5, "normalize": False, "cpu": True, "max_tokens": 3,
                    "trust_checkpoint": False, "fp16_model": True, "max_sentences": None}
    for bad in ({"normalize": "maybe"}, {"batch_size": 0}, {"max_tokens": "many"},
                {"trust_checkpoint": None}, {"max_seq_len": 1}, {"encoder_model": 3}):
        key = next(iter(bad))
        with pytest.raises(EncoderError, match=f"'{key}'"):
            check_options(cls, bad)
    with pytest.raises(EncoderError, match="unknown option"):
        check_options(cls, {"spm_modle": "x"})
    with pytest.raises(EncoderError, match="unknown option"):
        parse_options({"bogus": 1})


def test_stopes_names_map_onto_speechmine_ones() -> None:
    opts, _ = parse_options({"encoder_model": "m.pt", "mini_batch_size": 7, "fp16": False,
                             "fp16_model": True, "_name": "laser3_encoder"})
    assert (opts.model, opts.batch_size, opts.fp16, opts.name) == ("m.pt", 7, True,
                                                                     "laser3_encoder")
    assert opts.default_model() == "auto"
    assert parse_options({"_name": "laser2_encoder"})[0].default_model() == "laser2"
    assert parse_options({})[0].default_model() == "laser2"
    # fp16 asks for half precision, which only CUDA has: float32 on CPU
    from speechmine.encoders.laser.encoder import _runtime

    rt = _runtime(parse_options({"fp16": True, "cpu": True})[0])
    assert (rt.device.type, str(rt.dtype)) == ("cpu", "torch.float32")


@pytest.mark.parametrize("name,lang,files", [
    ("laser2", None, ("laser2.pt", "laser2.spm", "laser2.cvocab", None)),
    ("laser2.pt", "fr", ("laser2.pt", "laser2.spm", "laser2.cvocab", None)),
    ("laser3-wol", None, ("laser3-wol_Latn.v1.pt", "laser2.spm", "laser2.cvocab", "wol_Latn")),
    ("laser3-amh.v1.pt", None,  # stopes' demo file name
     ("laser3-amh_Ethi.v1.pt", "laser3-amh_Ethi.v1.spm", "laser3-amh_Ethi.v1.cvocab",
      "amh_Ethi")),
    ("laser3", "wo", ("laser3-wol_Latn.v1.pt", "laser2.spm", "laser2.cvocab", "wol_Latn")),
    ("laser3", "kas", ("laser3-kas_Arab.v1.pt", "laser2.spm", "laser2.cvocab", "kas_Arab")),
    ("laser3-kas_Deva", None, ("laser3-kas_Deva.v1.pt", "laser2.spm", "laser2.cvocab",
                               "kas_Deva")),
])
def test_model_names(name: str, lang: str | None, files: tuple[Any, ...]) -> None:
    m = model_files(name, lang)
    assert (m.checkpoint, m.spm, m.vocab, m.lang) == files


def test_unknown_model_names_say_what_exists() -> None:
    with pytest.raises(UnknownModelError, match="no LASER3 encoder for language 'en'.*laser2"):
        model_files("laser3", "en")
    with pytest.raises(UnknownModelError, match="no language was given"):
        model_files("laser3", None)
    with pytest.raises(UnknownModelError, match="laser3-<language>"):
        model_files("laser4", None)
    with pytest.raises(EncoderError, match="checkpoint not found"):
        create("laser", encoder_model="/nonexistent/laser3-xyz.v1.pt")


def test_auto_takes_laser3_where_the_language_has_one() -> None:
    from speechmine.encoders.laser.options import _released

    auto = parse_options({"_name": "laser3_encoder"})[0]
    assert _released(auto, "amh").name == "laser3-amh_Ethi"  # type: ignore[union-attr]
    assert _released(auto, "en").name == "laser2"  # type: ignore[union-attr]
    assert _released(auto, None).name == "laser2"  # type: ignore[union-attr]
    explicit = parse_options({"_name": "laser3_encoder", "model": "laser2"})[0]
    assert _released(explicit, "amh").name == "laser2"  # type: ignore[union-attr]


def test_checkpoint_path_defaults_are_stopes(laser_dir: Path) -> None:
    """For a checkpoint path without spm_model: <checkpoint>.spm beside it (stopes'
    gather_spm), then <spm>.cvocab."""
    (laser_dir / "tiny.spm").rename(laser_dir / "tiny_laser3.spm")
    (laser_dir / "tiny.cvocab").rename(laser_dir / "tiny_laser3.cvocab")
    enc = create("laser", encoder_model=str(laser_dir / "tiny_laser3.pt"), device="cpu")
    assert enc.files.spm == laser_dir / "tiny_laser3.spm"
    assert enc.files.vocab == laser_dir / "tiny_laser3.cvocab"
    with pytest.raises(EncoderError, match="give spm_model"):
        create("laser", encoder_model=str(laser_dir / "tiny_laser2.pt"), device="cpu")
    with pytest.raises(EncoderError, match="SentencePiece model not found"):
        create("laser", encoder_model=str(laser_dir / "tiny_laser2.pt"),
               spm_model=str(laser_dir / "missing.spm"))
