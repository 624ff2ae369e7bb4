"""LASER model files: ``$SPEECHMINE_CACHE/laser/``, fetched from LASER's public host.

The transfer itself is SONAR's downloader (:func:`speechmine.encoders.sonar.download.ensure_file`,
standard library only): HTTP ``Range`` resumes a ``.part`` file after a cut connection, the
size is checked against ``Content-Length``, an optional expected sha256 is verified, the
file is moved into place atomically, and a sidecar ``<file>.sha256.json`` records its
sha256 and size so that a truncated or edited cache entry is fetched again. Offline
(``SPEECHMINE_OFFLINE=1``, or the host unreachable) a missing file is a
:class:`~speechmine.encoders.sonar.download.ModelFileError` saying which file to place where.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..sonar.download import ModelFileError, ensure_file
from .langs import BASE_URL

__all__ = ["ModelFileError", "BASE_ENV", "cache_dir", "base_url", "cached_path", "fetch"]

#: Environment variable that replaces :data:`.langs.BASE_URL` (a mirror, or a test server).
BASE_ENV = "SPEECHMINE_LASER_BASE_URL"


def cache_dir() -> Path:
    """``$SPEECHMINE_CACHE/laser``, default ``~/.cache/speechmine/laser``."""
    root = os.environ.get("SPEECHMINE_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "speechmine"
    return base / "laser"


def base_url() -> str:
    """Where model files are fetched from: ``$SPEECHMINE_LASER_BASE_URL`` or LASER's host."""
    return os.environ.get(BASE_ENV, BASE_URL).rstrip("/")


def cached_path(file_name: str, directory: str | Path | None = None) -> Path:
    """Where model file ``file_name`` lives in ``directory`` (default :func:`cache_dir`)."""
    folder = Path(directory).expanduser() if directory is not None else cache_dir()
    return folder / file_name


def fetch(file_name: str, what: str, directory: str | Path | None = None,
          sha256: str | None = None) -> Path:
    """A local path for the released file ``file_name``, downloaded on first use from
    ``base_url()/file_name`` into ``directory`` (default :func:`cache_dir`)."""
    folder = Path(directory).expanduser() if directory is not None else cache_dir()
    return ensure_file(file_name, what=what, directory=folder, url=f"{base_url()}/{file_name}",
                       sha256=sha256, base_env=BASE_ENV)
