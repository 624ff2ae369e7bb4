"""Model names → the cache ($SPEECHMINE_CACHE/laser), fetched from LASER's host — here a
local HTTP server on 127.0.0.1 (and one name under the reserved ``.invalid`` domain, which
never resolves): first use downloads, a cut transfer resumes, a damaged cache entry or a
checksum mismatch is fetched again, offline says which file to place where."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechmine.encoders import EncoderError, create
from speechmine.encoders.laser import ModelFileError
from speechmine.encoders.laser.download import cache_dir, fetch


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_released_names_download_on_first_use(server: Any, reference: dict[str, Any]) -> None:
    enc = create("laser", model="laser2", device="cpu")
    assert server.names() == ["laser2.cvocab", "laser2.pt", "laser2.spm"]
    assert enc.files.checkpoint == cache_dir() / "laser2.pt"
    assert not list(cache_dir().glob("*.part"))
    out = enc.encode(reference["sentences"])
    assert np.abs(out - reference["arrays"]["tiny_laser2"]).max() <= 1e-5
    # the sha256 recorded at download is the fingerprint's
    want = hashlib.sha256(server.files["laser2.pt"]).hexdigest()
    assert enc.fingerprint()["sha256"]["checkpoint"] == want
    server.requests.clear()  # second use: from the cache
    create("laser", _name="laser2_encoder", device="cpu")
    assert server.requests == []


def test_laser3_files_per_language(server: Any) -> None:
    """amh_Ethi ships its own SentencePiece model and dictionary; wol_Latn reads LASER2's."""
    enc = create("laser", lang="am", _name="laser3_encoder", device="cpu")  # auto → LASER3
    assert enc.files.name == "laser3-amh_Ethi" and enc.arch == "transformer"
    assert server.names() == ["laser3-amh_Ethi.v1.cvocab", "laser3-amh_Ethi.v1.pt",
                              "laser3-amh_Ethi.v1.spm"]
    server.requests.clear()
    enc = create("laser", lang="wol", model="laser3", device="cpu")
    assert server.names() == ["laser2.cvocab", "laser2.spm", "laser3-wol_Latn.v1.pt"]
    assert enc.files.spm == cache_dir() / "laser2.spm"


def test_resume_after_cut_connection(server: Any, tmp_path: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    server.cut_next = 1
    with caplog.at_level(logging.WARNING):
        path = fetch("laser2.pt", "test", tmp_path)
    assert "interrupted" in caplog.text and "resuming" in caplog.text
    body = server.files["laser2.pt"]
    assert path.read_bytes() == body and len(server.requests) == 2
    assert server.requests[0][1] is None
    resumed_at = int(server.requests[1][1].split("=")[1].rstrip("-"))
    assert 0 < resumed_at < len(body)  # from where the cut left the .part file
    # a server that ignores Range: the file starts over, and is still right
    server.cut_next, server.honour_range = 1, False
    again = fetch("laser2.spm", "test", tmp_path)
    assert again.read_bytes() == server.files["laser2.spm"]


def test_damaged_cache_entry_is_fetched_again(server: Any, tmp_path: Path) -> None:
    body = server.files["laser2.pt"]
    path = fetch("laser2.pt", "test", tmp_path)
    with path.open("r+b") as f:  # truncated: size differs from what the server announced
        f.truncate(1000)
    fetch("laser2.pt", "test", tmp_path)
    assert path.read_bytes() == body and len(server.requests) == 2
    data = bytearray(body)  # same size, other bytes: mtime moved, the re-hash disagrees
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    fetch("laser2.pt", "test", tmp_path)
    assert path.read_bytes() == body and len(server.requests) == 3
    fetch("laser2.pt", "test", tmp_path)  # intact: no request
    assert len(server.requests) == 3


def test_checksum_mismatch_is_refetched_then_refused(server: Any, tmp_path: Path) -> None:
    body = server.files["laser2.pt"]
    good = hashlib.sha256(body).hexdigest()
    assert fetch("laser2.pt", "test", tmp_path, sha256=good).read_bytes() == body
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        fetch("laser2.pt", "test", tmp_path / "other", sha256="0" * 64)
    assert not (tmp_path / "other" / "laser2.pt").exists()
    assert len(server.requests) == 1 + 4  # 1 good, then 1 + 3 retries, each refetching
    # the sha256 option reaches the download
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        create("laser", model="laser2", sha256="f" * 64, cache_dir=str(tmp_path / "c"))


def test_offline_message_says_what_to_put_where(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPEECHMINE_OFFLINE", raising=False)
    monkeypatch.setenv("SPEECHMINE_LASER_BASE_URL", f"http://127.0.0.1:{_closed_port()}/laser")
    t0 = time.monotonic()
    with pytest.raises(ModelFileError) as err:
        create("laser", model="laser3-wol_Latn", device="cpu")
    assert time.monotonic() - t0 < 5.0  # a refused connection is not retried
    msg = str(err.value)
    assert "laser3-wol_Latn.v1.pt" in msg and str(cache_dir() / "laser3-wol_Latn.v1.pt") in msg
    assert "the connection was refused" in msg and "SPEECHMINE_LASER_BASE_URL" in msg
    assert isinstance(err.value, EncoderError) and "\n" not in msg
    monkeypatch.setenv("SPEECHMINE_OFFLINE", "1")
    with pytest.raises(ModelFileError, match="SPEECHMINE_OFFLINE.*Place the file 'laser2.pt'"):
        create("laser", model="laser2")


def test_unresolvable_host_fails_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SPEECHMINE_OFFLINE", raising=False)
    monkeypatch.setenv("SPEECHMINE_LASER_BASE_URL", "http://laser-host.invalid/nllb/laser")
    with pytest.raises(ModelFileError) as err:
        fetch("laser2.pt", "LASER encoder laser2", tmp_path)
    msg = str(err.value)
    assert "cannot reach laser-host.invalid" in msg and str(tmp_path / "laser2.pt") in msg
    assert err.value.__cause__ is None


def test_missing_file_on_server_is_not_retried(server: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="404"):
        fetch("laser3-zul_Latn.v1.pt", "test", tmp_path)
    assert len(server.requests) == 1
