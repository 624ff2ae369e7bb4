"""Fixtures shared by every test folder (helpers live in ``helpers.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import SONAR_DATA


@pytest.fixture
def sonar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the tiny SONAR fixtures (encoders write checksum sidecars)."""
    dst = tmp_path_factory.mktemp("sonar")
    for name in ("tiny_text_encoder.pt", "tiny_speech_encoder.pt", "tiny_spm.model"):
        shutil.copy(SONAR_DATA / name, dst / name)
    return dst


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's model cache, and never the network."""
    monkeypatch.setenv("SPEECHMINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SPEECHMINE_OFFLINE", "1")
    monkeypatch.delenv("SPEECHMINE_SONAR_BASE_URL", raising=False)
    monkeypatch.delenv("SPEECHMINE_KILL_AT", raising=False)
