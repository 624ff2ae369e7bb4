"""Static checks as tests: ruff (lint) and mypy (types, configured in pyproject.toml) stay clean.

Both tools come with the ``dev`` extra; they run as subprocesses from the repository root, so
they read the project's own configuration, exactly as ``ruff check ...`` and ``mypy`` do there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_clean() -> None:
    proc = _run("ruff", "check", "src", "tests", "benchmarks", "scripts")
    assert proc.returncode == 0, f"ruff check failed:\n{proc.stdout}{proc.stderr}"


@pytest.mark.slow
def test_mypy_clean() -> None:
    proc = _run("mypy")  # files and strictness from [tool.mypy] in pyproject.toml
    assert proc.returncode == 0, f"mypy failed:\n{proc.stdout}{proc.stderr}"
