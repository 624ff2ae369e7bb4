"""Fixtures of the encoder tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data(sonar_dir: Path) -> Path:
    """The tiny SONAR fixtures, a private copy (the root conftest's ``sonar_dir``)."""
    return sonar_dir
