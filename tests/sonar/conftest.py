"""Fixtures of the SONAR encoder tests: tiny checkpoints with golden outputs (tests/data/sonar)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from sonar_helpers import DATA, read_wav, text_options  # noqa: E402


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
