"""Checkpoint loading: legacy fairseq layouts, wrappers, safety policy."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import sonar_options

from speechmine.encoders import EncoderError, create
from speechmine.encoders.sonar import UnsafeCheckpointError
from speechmine.encoders.sonar.checkpoint import InertRecord, load_checkpoint

# fairseq2 key -> fairseq key, the inverse of what the loader does
_TEXT_TO_FAIRSEQ = [
    (r"^encoder_frontend\.embed\.", "embed_tokens."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.output_proj\.", r"layers.\1.self_attn.out_proj."),
    (r"^encoder\.layers\.(\d+)\.ffn\.inner_proj\.", r"layers.\1.fc1."),
    (r"^encoder\.layers\.(\d+)\.ffn\.output_proj\.", r"layers.\1.fc2."),
    (r"^encoder\.layers\.(\d+)\.ffn_layer_norm\.", r"layers.\1.final_layer_norm."),
    (r"^encoder\.layers\.", "layers."),
]
_W = r"encoder.w2v_model.encoder.layers.\1."
_SPEECH_TO_FAIRSEQ = [
    (r"^encoder_frontend\.post_extract_layer_norm\.", "encoder.w2v_model.layer_norm."),
    (r"^encoder_frontend\.model_dim_proj\.", "encoder.w2v_model.post_extract_proj."),
    (r"^encoder\.layers\.(\d+)\.conv_layer_norm\.", _W + "conv_module.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.conv\.", _W + "conv_module."),
    (r"^encoder\.layers\.(\d+)\.ffn(1|2)_layer_norm\.", _W + r"ffn\2.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.ffn(1|2)\.inner_proj\.", _W + r"ffn\2.w_1."),
    (r"^encoder\.layers\.(\d+)\.ffn(1|2)\.output_proj\.", _W + r"ffn\2.w_2."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.sdpa\.r_proj\.", _W + "self_attn.linear_pos."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.sdpa\.u_bias$", _W + "self_attn.pos_bias_u"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.sdpa\.v_bias$", _W + "self_attn.pos_bias_v"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.output_proj\.", _W + "self_attn.linear_out."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.", _W + r"self_attn.linear_\2."),
    (r"^encoder\.layers\.(\d+)\.layer_norm\.", _W + "final_layer_norm."),
    (r"^encoder\.layers\.(\d+)\.", _W),
    (r"^layer_norm\.", "encoder.w2v_model.encoder.layer_norm."),
    (r"^encoder_pooler\.decoder_frontend\.embed\.", "decoder.embed_tokens."),
    (r"^encoder_pooler\.projection_out\.weight$", "decoder.embed_out"),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.(self_attn|encoder_decoder_attn)\.output_proj\.",
     r"decoder.layers.\1.\2.out_proj."),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.ffn\.inner_proj\.", r"decoder.layers.\1.fc1."),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.ffn\.output_proj\.", r"decoder.layers.\1.fc2."),
    (r"^encoder_pooler\.decoder\.layers\.(\d+)\.ffn_layer_norm\.",
     r"decoder.layers.\1.final_layer_norm."),
    (r"^encoder_pooler\.decoder\.", "decoder."),
]


def _rename(sd: dict[str, torch.Tensor], rules: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    out = {}
    for key, val in sd.items():
        for pat, rep in rules:
            new, n = re.subn(pat, rep, key)
            if n:
                key = new
                break
        out[key.replace("encoder_decoder_attn", "encoder_attn")] = val
    return out


def test_legacy_text_checkpoint_converts(data: Path, reference: dict) -> None:
    sd = torch.load(data / "tiny_text_encoder.pt", weights_only=True)
    legacy = _rename(sd, _TEXT_TO_FAIRSEQ)
    assert "layers.0.fc1.weight" in legacy and "embed_tokens.weight" in legacy
    emb = legacy["embed_tokens.weight"].clone()
    emb[[1, 3, 0, 2]] = sd["encoder_frontend.embed.weight"][:4]  # fairseq row order bos,pad,eos,unk
    legacy["embed_tokens.weight"] = emb
    legacy["version"] = torch.tensor([3.0])
    legacy["embed_positions._float_tensor"] = torch.zeros(1)
    # as released: state_dict + the embedding module pickled beside it + training args
    ckpt = {"state_dict": legacy, "embed_tokens": torch.nn.Embedding.from_pretrained(emb),
            "args": argparse.Namespace(arch="transformer")}
    path = data / "legacy_text.pt"
    torch.save(ckpt, path)
    enc = create("sonar_text", lang="fr", **sonar_options(data, model=str(path)))
    got = enc.encode(reference["sentences"])
    assert np.abs(got - reference["text"]).max() <= 1e-5


def test_legacy_speech_checkpoint_converts(data: Path, waves: list, reference: dict) -> None:
    sd = torch.load(data / "tiny_speech_encoder.pt", weights_only=True)
    legacy = _rename(sd, _SPEECH_TO_FAIRSEQ)
    assert any("pos_bias_u" in k for k in legacy) and any("linear_pos" in k for k in legacy)
    legacy["encoder.w2v_model.mask_emb"] = torch.zeros(160)
    legacy["decoder.version"] = torch.tensor([3.0])

    # fairseq (hydra era) pickles its omegaconf config next to the weights
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"model": {"w2v_path": "x", "layers": [1, 2]}, "lr": [0.0001]})
    ckpt = {"model": legacy, "cfg": cfg, "args": argparse.Namespace(w2v_path="x"),
            "optimizer_history": [{"lr": 1e-4}], "extra_state": {"epoch": 3}}
    path = data / "legacy_speech.pt"
    torch.save(ckpt, path)
    enc = create("sonar_speech", model=str(path), device="cpu")
    assert np.abs(enc.encode_batch(waves) - reference["speech"]).max() <= 1e-5


def test_wrapped_state_dict_loads(data: Path, reference: dict) -> None:
    sd = torch.load(data / "tiny_text_encoder.pt", weights_only=True)
    path = data / "wrapped.pt"
    torch.save({"model": sd, "model_arch": "basic", "fs2": True}, path)
    enc = create("sonar_text", lang="fra", **sonar_options(data, model=str(path)))
    assert np.abs(enc.encode(reference["sentences"]) - reference["text"]).max() <= 1e-5


def test_legacy_non_zip_format_loads(data: Path) -> None:
    sd = torch.load(data / "tiny_text_encoder.pt", weights_only=True)
    path = data / "old_format.pt"
    torch.save({"model": sd, "args": argparse.Namespace(a=1)}, path,
               _use_new_zipfile_serialization=False)
    obj = load_checkpoint(path)
    assert isinstance(obj["args"], argparse.Namespace) and obj["args"].a == 1


_CALLED: list[str] = []


def _side_effect(msg: str) -> str:
    _CALLED.append(msg)
    return msg


class Payload:
    """An object whose unpickling runs code (here: harmless, records a call)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_side_effect, ("payload ran",))


@pytest.mark.parametrize("zip_format", [True, False])
def test_arbitrary_pickled_object_is_refused_unless_trusted(data: Path, zip_format: bool) -> None:
    sd = torch.load(data / "tiny_text_encoder.pt", weights_only=True)
    path = data / "evil.pt"
    torch.save({"model": sd, "extra": Payload()}, path, _use_new_zipfile_serialization=zip_format)
    _CALLED.clear()
    with pytest.raises(UnsafeCheckpointError,
                       match="trust_checkpoint: true only for a file you trust") as err:
        load_checkpoint(path)
    assert "_side_effect" in str(err.value) and _CALLED == []
    with pytest.raises(EncoderError):  # the encoder surfaces it as an EncoderError too
        create("sonar_text", lang="fr", **sonar_options(data, model=str(path)))
    assert _CALLED == []
    opts = sonar_options(data, model=str(path), trust_checkpoint=True)
    enc = create("sonar_text", lang="fr", **opts)
    assert _CALLED == ["payload ran"] and enc.dim == 32


def test_inert_record_keeps_data_only() -> None:
    rec = InertRecord(1, 2)
    rec.__setstate__({"a": 1})
    rec["k"] = "v"
    rec.append(3)
    assert rec.args == (1, 2) and rec.state == {"a": 1} and rec.items == {"k": "v", 1: 3}


def test_architecture_mismatch_is_a_clear_error(data: Path) -> None:
    sd = torch.load(data / "tiny_text_encoder.pt", weights_only=True)
    sd["encoder.layers.0.extra.weight"] = torch.zeros(1)
    path = data / "odd.pt"
    torch.save(sd, path)
    with pytest.raises(EncoderError, match="does not match the architecture"):
        create("sonar_text", lang="fr", **sonar_options(data, model=str(path)))


def test_safetensors_checkpoint_loads(data: Path, reference: dict) -> None:
    st = pytest.importorskip("safetensors.torch")
    sd = torch.load(data / "tiny_text_encoder.pt", weights_only=True)
    path = data / "tiny_text_encoder.safetensors"
    st.save_file(sd, str(path))
    enc = create("sonar_text", lang="fr", **sonar_options(data, model=str(path)))
    assert np.abs(enc.encode(reference["sentences"]) - reference["text"]).max() <= 1e-5


def test_runtime_option_errors(data: Path) -> None:
    with pytest.raises(EncoderError, match="unknown dtype"):
        create("sonar_text", lang="fr", **sonar_options(data, dtype="float8"))
    with pytest.raises(EncoderError, match="quantize"):
        create("sonar_text", lang="fr", **sonar_options(data, quantize="int4"))
    if not torch.cuda.is_available():
        with pytest.raises(EncoderError, match="CUDA is not available"):
            create("sonar_text", lang="fr", **sonar_options(data, device="cuda"))
