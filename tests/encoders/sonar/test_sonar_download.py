"""Model-name resolution and downloads, against a local HTTP server on 127.0.0.1 (and one
host name under the reserved ``.invalid`` domain, which never resolves)."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import SONAR_DATA, TINY_LANGS, FileServer

from speechmine.encoders import EncoderError, create
from speechmine.encoders.sonar import ModelFileError, download
from speechmine.encoders.sonar.download import ensure_file, file_sha256


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    files = {
        "sonar_text_encoder.pt": (SONAR_DATA / "tiny_text_encoder.pt").read_bytes(),
        "sentencepiece.source.256000.model": (SONAR_DATA / "tiny_spm.model").read_bytes(),
        "spenc.v3ap.fra.pt": (SONAR_DATA / "tiny_speech_encoder.pt").read_bytes(),
    }
    srv = FileServer(files, path="/SONAR")
    monkeypatch.setenv("SPEECHMINE_SONAR_BASE_URL", srv.url)
    monkeypatch.setattr(download, "RETRY_BACKOFF", 0.0)
    monkeypatch.setattr(download, "CHUNK", 4096)  # several reads per file: cuts land mid-body
    yield srv
    srv.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_card_names_download_on_first_use(server: FileServer, reference: dict) -> None:
    enc = create("sonar_text", lang="fr", model="text_sonar_basic_encoder",
                 lang_table=TINY_LANGS, max_seq_len=64, device="cpu")
    assert np.abs(enc.encode(reference["sentences"]) - reference["text"]).max() <= 1e-5
    assert sorted(name for name, _ in server.requests) == [
        "sentencepiece.source.256000.model", "sonar_text_encoder.pt"]
    cached = download.cache_dir() / "sonar_text_encoder.pt"
    assert cached.is_file() and not cached.with_name(cached.name + ".part").exists()
    # the sha256 recorded at download time is the fingerprint's, no re-hash needed
    want = hashlib.sha256(server.files["sonar_text_encoder.pt"]).hexdigest()
    assert enc.fingerprint()["sha256"] == want
    # second use: served from the cache
    server.requests.clear()
    create("sonar_text", lang="fr", lang_table=TINY_LANGS, max_seq_len=64, device="cpu")
    assert server.requests == []


def test_speech_card_for_language(server: FileServer, waves: list) -> None:
    enc = create("sonar_speech", lang="fr", device="cpu")  # → sonar_speech_encoder_fra
    assert enc.model_label == "sonar_speech_encoder_fra"
    assert [n for n, _ in server.requests] == ["spenc.v3ap.fra.pt"]
    assert enc.encode(waves).shape == (2, 32)


def test_resume_after_cut_connection(server: FileServer, tmp_path: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    server.cut_next = 1
    with caplog.at_level(logging.WARNING):
        path = ensure_file("sonar_text_encoder.pt", what="test", directory=tmp_path)
    assert "interrupted" in caplog.text and "resuming" in caplog.text
    body = server.files["sonar_text_encoder.pt"]
    assert path.read_bytes() == body
    assert len(server.requests) == 2
    assert server.requests[0][1] is None
    first_part = int(server.requests[1][1].split("=")[1].rstrip("-"))
    assert 0 < first_part < len(body)  # resumed from where the cut left the .part file


def test_restart_when_server_ignores_range(server: FileServer, tmp_path: Path) -> None:
    server.cut_next, server.honour_range = 1, False
    path = ensure_file("sonar_text_encoder.pt", what="test", directory=tmp_path)
    assert path.read_bytes() == server.files["sonar_text_encoder.pt"]


def test_corrupt_cache_entry_is_fetched_again(server: FileServer, tmp_path: Path) -> None:
    body = server.files["sonar_text_encoder.pt"]
    path = ensure_file("sonar_text_encoder.pt", what="test", directory=tmp_path)
    # truncated: size differs from what the server announced
    with path.open("r+b") as f:
        f.truncate(1000)
    ensure_file("sonar_text_encoder.pt", what="test", directory=tmp_path)
    assert path.read_bytes() == body and len(server.requests) == 2
    # same size, different bytes: the mtime moved, the re-hash disagrees
    data = bytearray(body)
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    ensure_file("sonar_text_encoder.pt", what="test", directory=tmp_path)
    assert path.read_bytes() == body and len(server.requests) == 3
    # untouched: no request
    ensure_file("sonar_text_encoder.pt", what="test", directory=tmp_path)
    assert len(server.requests) == 3


def test_expected_sha256_is_enforced(server: FileServer, tmp_path: Path) -> None:
    body = server.files["sonar_text_encoder.pt"]
    good = hashlib.sha256(body).hexdigest()
    path = ensure_file("sonar_text_encoder.pt", what="test", directory=tmp_path, sha256=good)
    assert file_sha256(path) == good
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        ensure_file("sonar_text_encoder.pt", what="test", directory=tmp_path / "other",
                    sha256="0" * 64, retries=1)
    assert not (tmp_path / "other" / "sonar_text_encoder.pt").exists()


def test_offline_message_says_what_to_put_where(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHMINE_SONAR_BASE_URL", f"http://127.0.0.1:{_closed_port()}/SONAR")
    with pytest.raises(ModelFileError) as err:
        create("sonar_speech", model="sonar_speech_encoder_eng", device="cpu")
    msg = str(err.value)
    assert "spenc.eng.pt" in msg and str(download.cache_dir() / "spenc.eng.pt") in msg
    assert isinstance(err.value, EncoderError)
    monkeypatch.setenv("SPEECHMINE_OFFLINE", "1")
    with pytest.raises(ModelFileError, match="SPEECHMINE_OFFLINE"):
        ensure_file("spenc.eng.pt", what="test")


def test_missing_file_on_server_is_not_retried(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="404"):
        ensure_file("nope.pt", what="test", directory=tmp_path)
    assert len(server.requests) == 1


def test_unknown_model_name_lists_close_matches() -> None:
    with pytest.raises(EncoderError, match="sonar_speech_encoder_fra"):
        create("sonar_speech", model="sonar_speech_encoder_frx", device="cpu")
    with pytest.raises(EncoderError, match="file not found"):
        create("sonar_speech", model="/nonexistent/model.pt", device="cpu")


@pytest.mark.parametrize("retries", [0, 3])
def test_unresolvable_host_fails_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                         monkeypatch: pytest.MonkeyPatch, retries: int) -> None:
    """A DNS failure is not an interrupted transfer: no retry, no "resuming" log, and the
    message names the host, says the machine may be offline and where to put the file."""
    monkeypatch.setattr(download, "RETRY_BACKOFF", 5.0)  # a retry would show in the time
    t0 = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(ModelFileError) as err:
        ensure_file("spenc.eng.pt", what="SONAR speech encoder", directory=tmp_path,
                    url="http://does-not-exist.invalid/SONAR/spenc.eng.pt", retries=retries)
    assert time.monotonic() - t0 < 5.0
    msg = str(err.value)
    assert "cannot reach does-not-exist.invalid" in msg and "does not resolve" in msg
    assert "may be offline" in msg and str(tmp_path / "spenc.eng.pt") in msg
    assert "interrupted" not in caplog.text and "resuming" not in caplog.text
    assert err.value.__cause__ is None  # one line for the CLI, no chained traceback
    assert not (tmp_path / "spenc.eng.pt.part").exists()


def test_refused_connection_fails_at_once(monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    port = _closed_port()
    monkeypatch.setenv("SPEECHMINE_SONAR_BASE_URL", f"http://127.0.0.1:{port}/SONAR")
    monkeypatch.setattr(download, "RETRY_BACKOFF", 5.0)
    t0 = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(ModelFileError) as err:
        create("sonar_speech", model="sonar_speech_encoder_eng", device="cpu")
    assert time.monotonic() - t0 < 5.0
    assert f"cannot reach 127.0.0.1:{port} (the connection was refused)" in str(err.value)
    assert "may be offline" in str(err.value) and "resuming" not in caplog.text
