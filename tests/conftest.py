"""Fixtures shared by every test folder (helpers live in ``helpers.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import DEMO, SONAR_DATA


@pytest.fixture
def sonar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the tiny SONAR fixtures (encoders write checksum sidecars next to
    model files, and tests rewrite or move them)."""
    dst = tmp_path_factory.mktemp("sonar") / "fixtures"
    shutil.copytree(SONAR_DATA, dst)
    return dst


@pytest.fixture
def demo_dir() -> Path:
    """The committed speech demo (skips when it has not been built)."""
    if not (DEMO / "en_speech.tsv").exists():
        pytest.skip("speech demo data not built (scripts/build_speech_demo.py)")
    return DEMO


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's model cache, and never the network."""
    monkeypatch.setenv("SPEECHMINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SPEECHMINE_OFFLINE", "1")
    monkeypatch.delenv("SPEECHMINE_SONAR_BASE_URL", raising=False)
    monkeypatch.delenv("SPEECHMINE_KILL_AT", raising=False)
