"""Fixtures of the speech tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from speech_helpers import DEMO


@pytest.fixture
def demo_dir() -> Path:
    """The committed speech demo (skips when it has not been built)."""
    if not (DEMO / "en_speech.tsv").exists():
        pytest.skip("speech demo data not built (scripts/build_speech_demo.py)")
    return DEMO
