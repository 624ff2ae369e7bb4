"""Fixtures of the LASER encoder tests: tiny checkpoints with golden outputs of the official
``laser_encoders`` package (tests/data/laser, built by scripts/build_laser_fixtures.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")
pytest.importorskip("sacremoses")

from helpers import DATA, FileServer

LASER_DATA = DATA / "laser"


@pytest.fixture
def laser_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the fixtures (encoders write checksum sidecars beside model files,
    and tests rewrite or move them)."""
    dst = tmp_path_factory.mktemp("laser") / "fixtures"
    shutil.copytree(LASER_DATA, dst)
    return dst


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """reference.json, plus its golden arrays (reference.npz) under ``arrays``."""
    ref: dict[str, Any] = json.loads((LASER_DATA / "reference.json").read_text("utf-8"))
    with np.load(LASER_DATA / "reference.npz") as npz:
        ref["arrays"] = {k: npz[k] for k in npz.files}
    return ref


def laser_options(folder: Path, model: str = "tiny_laser2", **extra: Any) -> dict[str, Any]:
    """The options of a fixture model, stopes' names for the files."""
    return {"encoder_model": str(folder / f"{model}.pt"), "spm_model": str(folder / "tiny.spm"),
            "spm_vocab": str(folder / "tiny.cvocab"), "device": "cpu", **extra}


@pytest.fixture
def options(laser_dir: Path) -> Any:
    """``options(model, **extra)``: :func:`laser_options` on the private copy."""
    def make(model: str = "tiny_laser2", **extra: Any) -> dict[str, Any]:
        return laser_options(laser_dir, model, **extra)

    return make


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    """LASER's host on 127.0.0.1, serving the fixtures under the released file names:
    LASER2, a LASER3 model with its own SentencePiece files (amh_Ethi), one without
    (wol_Latn, which reads LASER2's)."""
    from speechmine.encoders.sonar import download

    lstm = (LASER_DATA / "tiny_laser2.pt").read_bytes()
    student = (LASER_DATA / "tiny_laser3.pt").read_bytes()
    spm = (LASER_DATA / "tiny.spm").read_bytes()
    vocab = (LASER_DATA / "tiny.cvocab").read_bytes()
    srv = FileServer({
        "laser2.pt": lstm, "laser2.spm": spm, "laser2.cvocab": vocab,
        "laser3-amh_Ethi.v1.pt": student, "laser3-amh_Ethi.v1.spm": spm,
        "laser3-amh_Ethi.v1.cvocab": vocab, "laser3-wol_Latn.v1.pt": student,
    }, path="/nllb/laser")
    monkeypatch.setenv("SPEECHMINE_LASER_BASE_URL", srv.url)
    monkeypatch.delenv("SPEECHMINE_OFFLINE", raising=False)
    monkeypatch.setattr(download, "RETRY_BACKOFF", 0.0)
    monkeypatch.setattr(download, "CHUNK", 4096)  # several reads per file: cuts land mid-body
    yield srv
    srv.close()
