"""Stage bookkeeping: content keys, the output-dir lock, and "done" checks.

A stage's output lives under a directory named by a key hashed from its inputs and the
settings that change its result; a file there exists only when complete (atomic rename), so
"done" is "the file exists". Settings that do not change results (batch size, threads,
executor) never enter a key, so changing them reuses everything.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any


def key_of(*parts: Any) -> str:
    """Stable 16-hex-digit hash of JSON-serialisable parts."""
    payload = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def file_digest(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (shards are hashed once per run: ~1 GB/s)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class RunLockedError(RuntimeError):
    """Another speechmine run holds the output directory."""


class OutputLock:
    """Exclusive advisory lock on ``<output_dir>/.speechmine.lock`` for the whole run.

    The kernel releases it when the process dies, so a killed run never leaves a stale lock.
    """

    def __init__(self, output_dir: Path) -> None:
        self.path = Path(output_dir) / ".speechmine.lock"
        self._fh: Any = None

    def __enter__(self) -> "OutputLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise RunLockedError(
                    f"{self.path.parent} is in use by another speechmine run ({holder}); wait "
                    "for it to finish or choose another output_dir") from None
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
