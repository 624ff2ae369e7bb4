"""Fixtures of the SONAR encoder tests: tiny checkpoints with golden outputs (tests/data/sonar)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from helpers import SONAR_DATA, read_wav, sonar_options


@pytest.fixture(autouse=True)
def _local_servers_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Download tests serve model files on 127.0.0.1: lift the root conftest's offline guard
    (the cache stays private, and no test contacts a host other than 127.0.0.1: the one other
    name, under the reserved ``.invalid`` domain, never resolves)."""
    monkeypatch.delenv("SPEECHMINE_OFFLINE", raising=False)


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """reference.json plus the golden arrays of reference.npz."""
    ref = json.loads((SONAR_DATA / "reference.json").read_text())
    with np.load(SONAR_DATA / "reference.npz") as npz:
        ref.update({k: npz[k] for k in npz.files})
    return ref


@pytest.fixture(scope="session")
def waves(reference: dict[str, Any]) -> list[np.ndarray]:
    """The golden speech inputs as float32 waveforms."""
    return [read_wav(SONAR_DATA / name) for name in reference["speech_files"]]


@pytest.fixture
def text_encoder(data: Path) -> Any:
    """The tiny text encoder through the public registry, French."""
    from speechmine.encoders import create

    return create("sonar_text", lang="fra_Latn", **sonar_options(data))


@pytest.fixture
def speech_encoder(data: Path) -> Any:
    """The tiny speech encoder through the public registry."""
    from speechmine.encoders import create

    return create("sonar_speech", lang="eng", model=str(data / "tiny_speech_encoder.pt"),
                  device="cpu")
