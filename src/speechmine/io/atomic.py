"""Atomic file writes: write to a temporary sibling, fsync, then rename over the target.

A crash or kill at any point leaves either the old file or the complete new one, never a
half-written file under the final name; temporaries carry a ``.tmp-<pid>`` suffix and are
ignored (and cleaned) by later runs.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


def tmp_path_for(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success it is fsynced and renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", gz: bool = False
                ) -> Iterator[IO[Any]]:
    """Open a temporary file for writing (text or binary; gzip with mtime 0 when ``gz``)."""
    with atomic_path(path) as tmp:
        if gz:
            # mtime=0 and no file name in the header: same content, same bytes
            with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                         filename="") as gzf:
                if "b" in mode:
                    yield gzf
                else:
                    with io.TextIOWrapper(gzf, encoding="utf-8", newline="\n") as fh:
                        yield fh
        else:
            kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
            with open(tmp, mode, **kwargs) as fh:
                yield fh


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    with atomic_open(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


def write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Atomically write an uncompressed ``.npz`` (deterministic bytes for equal arrays)."""
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


def clean_stale_tmp(directory: Path, recursive: bool = True) -> int:
    """Remove ``*.tmp-<pid>`` leftovers of killed runs in ``directory`` (and below, when
    ``recursive``); returns the count. Call it only under the directory's lock."""
    n = 0
    if directory.is_dir():
        for p in (directory.rglob if recursive else directory.glob)("*.tmp-*"):
            if p.is_file():
                p.unlink()
                n += 1
    return n
