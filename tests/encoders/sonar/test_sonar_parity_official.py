"""Opt-in parity with the official ``sonar-space`` pipelines on the released checkpoints.

Runs only when ``sonar`` is importable and ``SONAR_PARITY_MODEL_DIR`` names a folder holding
the released files under their card file names (``sonar_text_encoder.pt``,
``sentencepiece.source.256000.model``, ``spenc.eng.pt``); the official side loads the same
models through its own asset store (fairseq2 cache or download).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sonar")
MODEL_DIR = os.environ.get("SONAR_PARITY_MODEL_DIR")
pytestmark = pytest.mark.skipif(not MODEL_DIR, reason="set SONAR_PARITY_MODEL_DIR to run")

SENTENCES = [
    "Le chat est assis sur le tapis.",
    "Une phrase un peu plus longue, avec de la ponctuation ; et des chiffres : 1 234,5.",
    "Bonjour !",
]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_text_matches_sonar_space() -> None:
    from sonar.inference_pipelines.text import TextToEmbeddingModelPipeline

    from speechmine.encoders import create

    official = TextToEmbeddingModelPipeline(
        encoder="text_sonar_basic_encoder", tokenizer="text_sonar_basic_encoder"
    ).predict(SENTENCES, source_lang="fra_Latn").numpy()
    enc = create("sonar_text", lang="fra_Latn", cache_dir=Path(MODEL_DIR), device="cpu")
    ours = enc.encode(SENTENCES)
    assert np.abs(ours - official).max() <= 1e-4
    assert _cos(ours, official).min() >= 0.9999


def test_speech_matches_sonar_space() -> None:
    import torch
    from sonar.inference_pipelines.speech import SpeechToEmbeddingModelPipeline

    from speechmine.encoders import create

    rng = np.random.default_rng(0)
    t = np.arange(48_000) / 16_000
    waves = [
        (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32),
        (0.1 * rng.standard_normal(30_000)).astype(np.float32),
    ]
    official = SpeechToEmbeddingModelPipeline(encoder="sonar_speech_encoder_eng").predict(
        [torch.from_numpy(w)[None, :] for w in waves], batch_size=2
    ).numpy()
    ours = create("sonar_speech", lang="eng", cache_dir=Path(MODEL_DIR), device="cpu").encode(waves)
    assert np.abs(ours - official).max() <= 1e-4
    assert _cos(ours, official).min() >= 0.9999
