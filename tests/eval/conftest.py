"""Fixtures of the evaluation tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eval_corpus import Mined, build_corpus


@pytest.fixture(scope="module")
def mined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mined]:
    """The corpus, with the module's runs in a private cache (no model is downloaded)."""
    root = tmp_path_factory.mktemp("eval_corpus")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHMINE_CACHE", str(root / "cache"))
        mp.setenv("SPEECHMINE_OFFLINE", "1")
        mp.delenv("SPEECHMINE_KILL_AT", raising=False)
        yield build_corpus(root)
