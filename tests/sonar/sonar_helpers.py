"""Helpers of the SONAR encoder tests (a module of its own: test files import it by a name
no other test folder uses, while every folder's ``conftest`` is called ``conftest``)."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data" / "sonar"
TINY_LANGS = ["eng_Latn", "fra_Latn", "deu_Latn"]


def read_wav(path: Path) -> np.ndarray:
    """16-bit PCM mono wav → float32 in [-1, 1] (what SONAR's audio decoder yields)."""
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == 16_000
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def text_options(folder: Path, **extra: Any) -> dict[str, Any]:
    """Options that build the tiny text encoder from ``folder``."""
    opts: dict[str, Any] = dict(
        model=str(folder / "tiny_text_encoder.pt"), tokenizer=str(folder / "tiny_spm.model"),
        lang_table=TINY_LANGS, max_seq_len=64, device="cpu",
    )
    opts.update(extra)
    return opts
