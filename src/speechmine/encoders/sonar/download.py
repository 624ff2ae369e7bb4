"""Model files: cache directory, resumable downloads, sha256 sidecars.

Layout: ``$SPEECHMINE_CACHE/sonar/<file>`` (default ``~/.cache/speechmine/sonar``), next to
each file a sidecar ``<file>.sha256.json`` = ``{"sha256", "size", "mtime_ns", "url"?}``:

* the sha256 of a multi-GB checkpoint is computed once and reused while size and mtime are
  unchanged (it goes into encoder fingerprints, hence cache keys);
* for a downloaded file the sidecar also records the size announced by the server, so a
  truncated or edited cache entry is detected (size differs, or mtime differs and the
  re-hash disagrees) and fetched again.

Downloads use only the standard library: HTTP ``Range`` resumes a ``.part`` file after a cut
connection, the size is checked against ``Content-Length``, an optional expected sha256 is
verified, and the finished file is moved into place atomically. A host that cannot be
reached at all (its name does not resolve, or nothing listens) is not retried: that fails at
once with a :class:`ModelFileError` saying the machine may be offline and where to put the
file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ..base import EncoderError
from ._cards import BASE_URL

log = logging.getLogger(__name__)

__all__ = [
    "ModelFileError",
    "cache_dir",
    "base_url",
    "file_sha256",
    "ensure_file",
    "cached_path",
    "model_file_identity",
]

CHUNK = 1 << 20
#: Seconds to wait before retry k (k = 1, 2, ...) is ``RETRY_BACKOFF * k``; tests set 0.
RETRY_BACKOFF = 1.0


class ModelFileError(EncoderError):
    """A model file is missing and could not be fetched (message says where to put it)."""


class _Unreachable(ConnectionError):
    """The host cannot be reached at all (name resolution failed, connection refused)."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"{host}: {why}")
        self.host, self.why = host, why


def _unreachable(url: str, exc: BaseException) -> _Unreachable | None:
    """The :class:`_Unreachable` for ``exc`` when it says ``url``'s host cannot be reached
    (DNS failure or refused connection: retrying will not help), else None."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    host = urllib.parse.urlsplit(url).netloc or url
    if isinstance(reason, socket.gaierror):
        return _Unreachable(host, f"its name does not resolve ({reason.strerror or reason})")
    if isinstance(reason, ConnectionRefusedError):
        return _Unreachable(host, "the connection was refused")
    return None


def cache_dir() -> Path:
    """``$SPEECHMINE_CACHE/sonar``, default ``~/.cache/speechmine/sonar``."""
    root = os.environ.get("SPEECHMINE_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "speechmine"
    return base / "sonar"


def base_url() -> str:
    """Where model files are fetched from: ``$SPEECHMINE_SONAR_BASE_URL`` or the SONAR host."""
    return os.environ.get("SPEECHMINE_SONAR_BASE_URL", BASE_URL).rstrip("/")


def _offline() -> bool:
    return os.environ.get("SPEECHMINE_OFFLINE", "").lower() in ("1", "true", "yes")


# -- sha256 sidecars -------------------------------------------------------------------
def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


def _sidecars(path: Path) -> list[Path]:
    """Where the sidecar of ``path`` may live: next to it, else in the cache."""
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    # a read-only model directory keeps its sidecar in the cache, keyed by absolute path
    central = cache_dir() / "sha256" / f"{path.name}.{key}.json"
    local = path.with_name(path.name + ".sha256.json")
    return [local, central] if _writable(path.parent) else [central]


def _read_sidecar(path: Path) -> dict[str, Any]:
    for side in _sidecars(path):
        try:
            return dict(json.loads(side.read_text()))
        except (OSError, ValueError):
            continue
    return {}


def _write_sidecar(path: Path, info: dict[str, Any]) -> None:
    for side in _sidecars(path):
        tmp = side.with_name(side.name + ".tmp")
        try:
            side.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(info, sort_keys=True))
            os.replace(tmp, side)
            return
        except OSError as exc:  # a sidecar we cannot write only costs a re-hash next time
            log.debug("cannot write sha256 sidecar %s: %s", side, exc)
            tmp.unlink(missing_ok=True)


def download_sha256(path: str | Path) -> str | None:
    """The sha256 recorded when ``path`` was downloaded (sidecar with a ``url``), else None."""
    info = _read_sidecar(Path(path))
    return str(info["sha256"]) if info.get("url") and info.get("sha256") else None


def model_file_identity(path: str | Path, card: str | None, verify: str) -> dict[str, Any]:
    """Identity of a model file for cache keys, without loading it.

    ``file``: :func:`speechmine.io.identity.file_identity` (content sha256 by default, so
    new weights behind an unchanged card name or path change it and a moved file does not;
    ``verify="stat"``: path, size, mtime); ``card``: the card name it was found under (None
    for a path); ``downloaded_sha256``: the checksum recorded at download, when it was one.
    """
    from ...io.identity import file_identity

    out: dict[str, Any] = {"card": card, "file": file_identity(path, verify)}
    recorded = download_sha256(path)
    if recorded is not None:
        out["downloaded_sha256"] = recorded
    return out


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of ``path``, computed once and cached in its sidecar while size/mtime hold."""
    path = Path(path)
    st = path.stat()
    info = _read_sidecar(path)
    same = info.get("size") == st.st_size and info.get("mtime_ns") == st.st_mtime_ns
    if same and info.get("sha256"):
        return str(info["sha256"])
    log.info("computing sha256 of %s (%.1f MB, once)", path, st.st_size / 1e6)
    digest = _hash_file(path)
    info.update(sha256=digest, size=st.st_size, mtime_ns=st.st_mtime_ns)
    _write_sidecar(path, info)
    return digest


# -- cache validation ------------------------------------------------------------------
def _cached_ok(path: Path, sha256: str | None) -> bool:
    """Is the cached ``path`` complete and intact? Logs why not."""
    if not path.is_file():
        return False
    st = path.stat()
    info = _read_sidecar(path)
    if info.get("size") is not None and info["size"] != st.st_size:
        log.warning("%s: size %d != recorded %d: corrupt, fetching again",
                    path, st.st_size, info["size"])
        return False
    if info.get("sha256") and info.get("mtime_ns") != st.st_mtime_ns:
        # modified since we recorded its hash: only trust it if the content is unchanged
        if _hash_file(path) != info["sha256"]:
            log.warning("%s: content changed since download (sha256 differs): fetching again", path)
            return False
        info["mtime_ns"] = st.st_mtime_ns
        _write_sidecar(path, info)
    if sha256 and file_sha256(path) != sha256.lower():
        log.warning("%s: sha256 differs from the expected %s: fetching again", path, sha256)
        return False
    return True


# -- download --------------------------------------------------------------------------
def _progress(total: int | None, initial: int, desc: str) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        return None
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=desc, disable=None, leave=False)


_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _fetch_once(url: str, part: Path, timeout: float, desc: str) -> int | None:
    """One HTTP attempt appending to ``part``. Returns the total size (None if unknown)."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "speechmine"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range past the end: start over
            part.unlink()
            raise ConnectionError("server refused the resume range; restarting") from exc
        raise
    with resp:
        length = resp.headers.get("Content-Length")
        if resp.status == 206:
            m = _RANGE_RE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                raise ConnectionError(f"bad Content-Range {resp.headers.get('Content-Range')!r}")
            total = int(m.group(3)) if m.group(3) != "*" else None
            mode = "ab"
        else:  # 200: the server ignored Range (or we had nothing): full body
            if have:
                log.info("server does not resume; downloading %s from the start", desc)
            have, mode = 0, "wb"
            total = int(length) if length is not None else None
        bar = _progress(total, have, desc)
        try:
            with part.open(mode) as f:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    return total


def _download(url: str, dest: Path, sha256: str | None, retries: int, timeout: float) -> None:
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last: BaseException | None = None
    for attempt in range(retries + 1):
        if attempt:
            log.warning("download of %s interrupted (%s); resuming (try %d/%d)",
                        dest.name, last, attempt + 1, retries + 1)
            time.sleep(RETRY_BACKOFF * attempt)
        try:
            total = _fetch_once(url, part, timeout, dest.name)
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 403, 401, 410):
                raise  # no point retrying
            last = exc
            continue
        except (http.client.HTTPException, ConnectionError, TimeoutError, OSError) as exc:
            unreachable = _unreachable(url, exc)
            if unreachable is not None:  # offline or a wrong mirror: retrying will not help
                raise unreachable from None
            last = exc
            continue
        size = part.stat().st_size
        if total is not None and size != total:
            last = ConnectionError(f"got {size} of {total} bytes")
            continue
        digest = _hash_file(part)
        if sha256 and digest != sha256.lower():
            part.unlink()
            last = ValueError(f"sha256 mismatch: got {digest}, expected {sha256}")
            continue
        os.replace(part, dest)
        st = dest.stat()
        _write_sidecar(dest, {"sha256": digest, "size": st.st_size,
                              "mtime_ns": st.st_mtime_ns, "url": url})
        log.info("downloaded %s (%.1f MB)", dest, st.st_size / 1e6)
        return
    assert last is not None
    raise last


def cached_path(file_name: str, directory: str | Path | None = None) -> Path:
    """Where model file ``file_name`` lives in ``directory`` (default :func:`cache_dir`)."""
    folder = Path(directory).expanduser() if directory is not None else cache_dir()
    return folder / file_name


def ensure_file(
    file_name: str,
    *,
    what: str,
    directory: str | Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    base_env: str = "SPEECHMINE_SONAR_BASE_URL",
) -> Path:
    """Return a local path for model file ``file_name``, downloading it on first use.

    ``what`` names the file in messages (``"SONAR speech encoder sonar_speech_encoder_eng"``);
    ``directory`` defaults to :func:`cache_dir`; ``url`` to ``base_url()/file_name``;
    ``base_env``: the variable that sets the host, named when it cannot be reached (other
    model families, e.g. LASER, reuse this downloader with their own folder, URL and
    variable). Raises :class:`ModelFileError` saying which file to place where when offline.
    """
    dest = cached_path(file_name, directory)
    if _cached_ok(dest, sha256):
        return dest
    src = url or f"{base_url()}/{file_name}"
    hint = (
        f"Place the file {file_name!r} (from {src}) at {dest} "
        f"(or set SPEECHMINE_CACHE, or pass the file path as the model option)."
    )
    if _offline():
        raise ModelFileError(f"{what}: {dest} is missing and SPEECHMINE_OFFLINE is set. {hint}")
    log.info("fetching %s from %s", what, src)
    try:
        _download(src, dest, sha256, retries, timeout)
    except _Unreachable as exc:
        raise ModelFileError(
            f"{what}: cannot reach {exc.host} ({exc.why}): this machine may be offline, or "
            f"the host is wrong ({base_env}). {hint}") from None
    except Exception as exc:  # every failure becomes the same actionable message
        raise ModelFileError(f"{what}: could not download {src} ({exc}). {hint}") from exc
    return dest
