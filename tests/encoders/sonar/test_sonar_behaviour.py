"""Encoder behaviour: padding invariance, rejects, truncation, languages, options, int8."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import SONAR_DATA, TINY_LANGS, sonar_options

from speechmine.encoders import EncoderError, create
from speechmine.encoders.sonar import SegmentRejected
from speechmine.encoders.sonar._cardgen import parse_cards
from speechmine.encoders.sonar._cards import SPEECH_MODELS, TEXT_LANGS
from speechmine.encoders.sonar.fbank import kaldi_fbank, num_frames
from speechmine.encoders.sonar.langs import UnknownLanguageError, speech_lang, text_lang


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# -- padding invariance ------------------------------------------------------------------
def test_text_item_alone_equals_item_in_padded_batch(text_encoder: Any) -> None:
    short = "le chat"
    batch = [short, "bonjour le monde, the cat sat on the mat " * 3, "hello world"]
    alone = text_encoder.encode_batch([short])
    together = text_encoder.encode_batch(batch)
    assert np.abs(alone[0] - together[0]).max() <= 1e-5


def test_speech_item_alone_equals_item_in_padded_batch(speech_encoder: Any, waves: list) -> None:
    rng = np.random.default_rng(0)
    long = (0.1 * rng.standard_normal(40_000)).astype(np.float32)
    odd = waves[1][:14_250]  # odd number of fbank frames: the last one is dropped
    batch = [odd, long, waves[0]]
    together = speech_encoder.encode_batch(batch)
    for i, item in enumerate(batch):
        assert np.abs(speech_encoder.encode_batch([item])[0] - together[i]).max() <= 1e-5


def test_encode_restores_input_order(text_encoder: Any) -> None:
    sents = ["a much longer sentence than the others", "hi", "medium length one"]
    text_encoder.batch_size = 2
    got = text_encoder.encode(sents)
    for i, s in enumerate(sents):
        assert np.abs(got[i] - text_encoder.encode_batch([s])[0]).max() <= 1e-5


# -- speech rejects ----------------------------------------------------------------------
def test_speech_check_reasons(speech_encoder: Any) -> None:
    enc = speech_encoder
    assert enc.check(np.zeros(559, np.float32) + 0.1) .startswith("too short")
    assert enc.check(np.linspace(-0.1, 0.1, 560, dtype=np.float32)) is None
    assert enc.check(np.zeros(16_000, np.float32)).startswith("constant signal")
    assert enc.check(np.ones((2, 800), np.float32)).startswith("expected a 1-D")
    assert enc.check(np.arange(800, dtype=np.int16)).startswith("expected float")
    bad = np.linspace(-0.1, 0.1, 800, dtype=np.float32)
    bad[3] = np.nan
    assert "NaN" in enc.check(bad)
    # longest accepted = 4096 encoder steps = 8193 fbank frames
    assert num_frames(enc.max_samples) // 2 == enc.config.max_seq_len
    assert num_frames(enc.max_samples + 1) // 2 == enc.config.max_seq_len + 1
    assert enc.check(np.zeros(enc.max_samples + 1, np.float32)).startswith("too long")


def test_speech_encode_raises_segment_rejected(speech_encoder: Any, waves: list) -> None:
    with pytest.raises(SegmentRejected) as err:
        speech_encoder.encode_batch([waves[0], np.zeros(100, np.float32)])
    assert err.value.reason.startswith("too short") and err.value.index == 1
    assert isinstance(err.value, EncoderError)


def test_fbank_shapes_and_limits() -> None:
    assert kaldi_fbank(torch.zeros(399)).shape == (0, 80)
    assert kaldi_fbank(torch.zeros(400)).shape == (1, 80)
    assert kaldi_fbank(torch.zeros(24_000)).shape == (148, 80)


# -- text truncation ---------------------------------------------------------------------
def test_long_text_is_truncated_with_counted_warning(
    data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    enc = create("sonar_text", lang="fr", **sonar_options(data, max_seq_len=8))
    with caplog.at_level(logging.WARNING):
        ids = enc.tokenize(["the cat sat on the mat", "hi", "bonjour le monde"])
        enc.encode_batch(["the cat sat on the mat"])
    assert [len(x) for x in ids] == [8, 4, 8]
    assert enc.n_truncated == 3
    assert "2 item(s) truncated" in caplog.text and "8 tokens" in caplog.text
    # through encode(): counted per sentence, once even when cut at both limits
    assert enc.max_tokens == 8 and enc.max_chars == 20_000
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        enc.encode(["hi", "the cat sat on the mat", "le chat " * 5_000, "hi"])
    assert enc.n_truncated == 5
    assert len(caplog.records) == 1 and "2 of 4 item(s) truncated" in caplog.text


# -- languages ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "want"),
    [("fr", "fra_Latn"), ("fra", "fra_Latn"), ("fre", "fra_Latn"), ("FR-fr", "fra_Latn"),
     ("fra_Latn", "fra_Latn"), ("zh", "zho_Hans"), ("zh-Hant", "zho_Hant"), ("ar", "arb_Arab"),
     ("fa", "pes_Arab"), ("ks", "kas_Arab"), ("kas_Deva", "kas_Deva"), ("no", "nob_Latn"),
     ("sw", "swh_Latn"), ("en", "eng_Latn")],
)
def test_text_language_codes(code: str, want: str) -> None:
    assert text_lang(code) == want


def test_unknown_language_lists_close_matches(data: Path) -> None:
    with pytest.raises(UnknownLanguageError, match="fra_Latn"):
        text_lang("fra_Latm")
    with pytest.raises(EncoderError, match="close matches"):
        create("sonar_text", lang="xx", **sonar_options(data))
    with pytest.raises(UnknownLanguageError, match="no SONAR speech encoder"):
        speech_lang("yor")


def test_speech_language_codes() -> None:
    assert speech_lang("en") == "eng" and speech_lang("zh") == "cmn"
    assert speech_lang("fra_Latn") == "fra" and speech_lang("pes") == "pes"


def test_configurable_language_table_changes_lang_token(data: Path) -> None:
    enc = create("sonar_text", lang="deu_Latn", **sonar_options(data))
    assert enc.lang_token == 51 and enc.tokenize(["x"])[0][0] == 51
    opts = sonar_options(data, lang_table=TINY_LANGS[::-1])
    flipped = create("sonar_text", lang="deu_Latn", **opts)
    assert flipped.lang_token == 49


def test_shipped_card_tables_match_the_cards() -> None:
    parsed = parse_cards(SONAR_DATA)
    assert tuple(parsed["langs"]) == TEXT_LANGS and len(TEXT_LANGS) == 202
    assert parsed["speech"] == SPEECH_MODELS
    assert SPEECH_MODELS["sonar_speech_encoder_eng"]["arch"] == "english"
    others = {c["arch"] for n, c in SPEECH_MODELS.items() if n != "sonar_speech_encoder_eng"}
    assert others == {"non_english"}


# -- options -----------------------------------------------------------------------------
def test_stopes_options_are_accepted(data: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        enc = create(
            "sonar_text", lang="fr", _name=str(data / "tiny_text_encoder.pt"),
            spm_model=str(data / "tiny_spm.model"), spm_vocab="dict.txt", mini_batch_size=7,
            fp16=True, gpu=False, num_processes=4, lang_table=TINY_LANGS,
        )
    assert enc.batch_size == 7 and enc.runtime.dtype == torch.float32
    assert enc.runtime.device.type == "cpu" and "ignored on cpu" in caplog.text
    # for speech, stopes' `_name` names its module (sonar2_speech_encoder), not a model
    sp = create("sonar_speech", encoder_model=str(data / "tiny_speech_encoder.pt"),
                _name="sonar2_speech_encoder", mini_batch_size=3, fp16=True, gpu=False,
                num_processes=2, max_batch_seconds=10)
    assert sp.batch_size == 3 and sp.dim == 32 and sp.max_batch_cost == 160_000
    assert {"cache_dir", "trust_checkpoint", "threads"} <= sp.TRANSIENT_OPTIONS
    # what decides the effective runtime (hence dtype and quantisation) is never transient
    for cls in (type(enc), type(sp)):
        assert not {"device", "gpu", "dtype", "fp16", "quantize"} & cls.TRANSIENT_OPTIONS
    with pytest.raises(EncoderError, match="unknown option"):
        create("sonar_text", lang="fr", bogus=1, **sonar_options(data))


def test_fingerprint_follows_the_weights(data: Path) -> None:
    a = create("sonar_text", lang="fr", **sonar_options(data)).fingerprint()
    sd = torch.load(data / "tiny_text_encoder.pt", weights_only=True)
    sd["layer_norm.bias"] += 0.5
    other = data / "other" / "tiny_text_encoder.pt"
    other.parent.mkdir()
    torch.save(sd, other)
    b = create("sonar_text", lang="fr", **sonar_options(data, model=str(other))).fingerprint()
    assert a["sha256"] != b["sha256"] and len(a["sha256"]) == 64
    assert {k for k in a if a[k] != b[k]} == {"sha256"}  # same name, only the weights differ
    # the hash is computed once: the sidecar answers next time
    assert (data / "tiny_text_encoder.pt.sha256.json").is_file()


def test_read_only_model_dir_keeps_sidecar_in_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from speechmine.encoders.sonar import download

    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy(SONAR_DATA / "tiny_speech_encoder.pt", ro)
    # (chmod does not stop root, who runs CI: declare the folder read-only instead)
    monkeypatch.setattr(download, "_writable", lambda folder: folder != ro)
    enc = create("sonar_speech", model=str(ro / "tiny_speech_encoder.pt"), device="cpu")
    fp = enc.fingerprint()
    assert len(fp["sha256"]) == 64 and [p.name for p in ro.iterdir()] == ["tiny_speech_encoder.pt"]
    assert list((download.cache_dir() / "sha256").glob("tiny_speech_encoder.pt.*.json"))
    assert download.file_sha256(ro / "tiny_speech_encoder.pt") == fp["sha256"]


def test_int8_quantisation_stays_close(data: Path, reference: dict, waves: list) -> None:
    q = create("sonar_text", lang="fr", **sonar_options(data, quantize="int8"))
    assert ".dynamic." in type(q.model.encoder.layers[0].ffn.inner_proj).__module__
    cos = _cos(q.encode(reference["sentences"]), reference["text"])
    assert cos.min() >= 0.99, cos
    qs = create("sonar_speech", model=str(data / "tiny_speech_encoder.pt"), quantize="int8",
                device="cpu")
    cos = _cos(qs.encode_batch(waves), reference["speech"])
    assert cos.min() >= 0.99, cos
    assert q.fingerprint()["quantize"] == "int8"


@pytest.mark.parametrize("kind", ["text", "speech"])
def test_half_precision_path_runs(kind: str, text_encoder: Any, speech_encoder: Any,
                                  reference: dict, waves: list) -> None:
    """The CUDA fp16/bf16 code path, exercised in bfloat16 on CPU (dtype plumbing only)."""
    enc = text_encoder if kind == "text" else speech_encoder
    ref = reference[kind]
    enc.model.to(torch.bfloat16)
    enc.runtime = type(enc.runtime)(enc.runtime.device, torch.bfloat16, None)
    got = enc.encode(reference["sentences"] if kind == "text" else waves)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    assert _cos(got, ref).min() >= 0.98


@pytest.mark.parametrize("s", [1, 7, 128, 129, 300])
def test_blocked_position_bias_equals_shift_trick(s: int) -> None:
    from speechmine.encoders.sonar.speech_model import position_bias

    g = torch.Generator().manual_seed(s)
    qv, r = torch.randn(2, 3, s, 4, generator=g), torch.randn(3, 2 * s - 1, 4, generator=g)
    full = qv @ r.transpose(-1, -2)  # all 2S-1 offsets per query
    i, j = torch.arange(s)[:, None], torch.arange(s)[None, :]
    assert torch.allclose(position_bias(qv, r, 0.125), 0.125 * full[..., i, s - 1 - i + j])
