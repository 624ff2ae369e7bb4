"""Fixtures of the SONAR encoder tests: tiny checkpoints with golden outputs (tests/data/sonar)."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

DATA = Path(__file__).resolve().parents[1] / "data" / "sonar"
TINY_LANGS = ["eng_Latn", "fra_Latn", "deu_Latn"]


def read_wav(path: Path) -> np.ndarray:
    """16-bit PCM mono wav → float32 in [-1, 1] (what SONAR's audio decoder yields)."""
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == 16_000
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's cache or the network defaults."""
    monkeypatch.setenv("SPEECHMINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPEECHMINE_SONAR_BASE_URL", raising=False)
    monkeypatch.delenv("SPEECHMINE_OFFLINE", raising=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A private copy of the fixtures (sha256 sidecars are written next to model files)."""
    dst = tmp_path / "fixtures"
    shutil.copytree(DATA, dst)
    return dst


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """reference.json plus the golden arrays of reference.npz."""
    ref = json.loads((DATA / "reference.json").read_text())
    with np.load(DATA / "reference.npz") as npz:
        ref.update({k: npz[k] for k in npz.files})
    return ref


@pytest.fixture(scope="session")
def waves(reference: dict[str, Any]) -> list[np.ndarray]:
    """The golden speech inputs as float32 waveforms."""
    return [read_wav(DATA / name) for name in reference["speech_files"]]


def text_options(folder: Path, **extra: Any) -> dict[str, Any]:
    """Options that build the tiny text encoder from ``folder``."""
    opts: dict[str, Any] = dict(
        model=str(folder / "tiny_text_encoder.pt"), tokenizer=str(folder / "tiny_spm.model"),
        lang_table=TINY_LANGS, max_seq_len=64, device="cpu",
    )
    opts.update(extra)
    return opts


@pytest.fixture
def text_encoder(data: Path) -> Any:
    """The tiny text encoder through the public registry, French."""
    from speechmine.encoders import create

    return create("sonar_text", lang="fra_Latn", **text_options(data))


@pytest.fixture
def speech_encoder(data: Path) -> Any:
    """The tiny speech encoder through the public registry."""
    from speechmine.encoders import create

    return create("sonar_speech", lang="eng", model=str(data / "tiny_speech_encoder.pt"),
                  device="cpu")
