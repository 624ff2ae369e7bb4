"""Session fixtures: the finished runs of :mod:`runs`, mined once."""

from __future__ import annotations

import pytest
from runs import SpeechRun, TextRun, mine_speech_run, mine_text_run


@pytest.fixture(scope="session")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> TextRun:
    return mine_text_run(tmp_path_factory.mktemp("text_run"))


@pytest.fixture(scope="session")
def speech_run(tmp_path_factory: pytest.TempPathFactory) -> SpeechRun:
    pytest.importorskip("torch")
    pytest.importorskip("sentencepiece")
    pytest.importorskip("soundfile")
    return mine_speech_run(tmp_path_factory.mktemp("speech_run"))
