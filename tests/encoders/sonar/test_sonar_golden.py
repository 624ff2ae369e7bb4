"""Golden parity with the official sonar-space/fairseq2 pipelines on tiny checkpoints."""

from __future__ import annotations

from typing import Any

import numpy as np

from speechmine.encoders import resolve
from speechmine.encoders.sonar import SonarSpeechEncoder, SonarTextEncoder

TOL = 1e-5


def test_registry_and_stopes_targets_resolve() -> None:
    assert resolve("sonar_text") is SonarTextEncoder
    assert resolve("sonar_speech") is SonarSpeechEncoder
    assert (
        resolve("stopes.modules.preprocess.sonar_sentence_encoder.SonarTextEncoder")
        is SonarTextEncoder
    )
    assert (
        resolve("stopes.modules.preprocess.mining_speech_encoder.Sonar2MiningSpeechEncoder")
        is SonarSpeechEncoder
    )


def test_text_token_ids_match_official_tokenizer(text_encoder: Any, reference: dict) -> None:
    assert text_encoder.tokenize(reference["sentences"]) == reference["token_ids"]


def test_text_embeddings_match_golden(text_encoder: Any, reference: dict) -> None:
    emb = text_encoder.encode(reference["sentences"])
    assert emb.shape == reference["text"].shape and emb.dtype == np.float32
    assert np.abs(emb - reference["text"]).max() <= TOL


def test_speech_embeddings_match_golden(speech_encoder: Any, waves: list, reference: dict) -> None:
    # the golden run batched both files together (padding + masks exercised)
    emb = speech_encoder.encode_batch(waves)
    assert emb.shape == reference["speech"].shape
    assert np.abs(emb - reference["speech"]).max() <= TOL
    # and through the sorting/batching machinery of the base class
    assert np.abs(speech_encoder.encode(waves) - reference["speech"]).max() <= TOL


def test_tiny_config_is_inferred_from_shapes(text_encoder: Any, speech_encoder: Any) -> None:
    t, s = text_encoder.config, speech_encoder.config
    assert (t.model_dim, t.num_layers, t.num_heads, t.ffn_dim) == (32, 2, 2, 64)
    assert (s.model_dim, s.num_layers, s.num_heads, s.ffn_dim, s.conv_kernel) == (32, 2, 2, 64, 3)
    assert (s.pooler_layers, s.pooler_heads, s.pooler_ffn_dim) == (1, 2, 64)
    assert text_encoder.dim == speech_encoder.dim == 32
