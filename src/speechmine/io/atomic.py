"""Atomic writes: write to a temporary sibling, fsync, then rename over the target.

A crash or kill at any point leaves either the old file or the complete new one, never a
half-written file under the final name. Every temporary speechmine writes (files and stage
directories alike) is named by :func:`tmp_name`: ``.<name>.smtmp.<pid>@<host>``, so the
clean-up of a later run (:func:`clean_stale_tmp`) recognises exactly speechmine's own
leftovers, and only those of processes that are gone: a user's ``notes.tmp-1`` is never
touched, nor the in-flight files of another live run.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

log = logging.getLogger(__name__)

_HOST = socket.gethostname().replace("/", "_")
_TMP_RX = re.compile(r"^\..+\.smtmp\.(?P<pid>\d+)@(?P<host>.+)$")


def tmp_name(path: str | os.PathLike[str]) -> Path:
    """The temporary sibling of ``path`` for this process: ``.<name>.smtmp.<pid>@<host>``."""
    p = Path(path)
    return p.with_name(f".{p.name}.smtmp.{os.getpid()}@{_HOST}")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename inside it), or a file's data (one written by a
    library, e.g. FAISS), to disk; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path; on success it is fsynced and renamed to ``path``
    (``durable=False``: renamed without fsync — all or nothing, but a power cut may lose
    it; for bookkeeping written thousands of times, such as the job ledger)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", gz: bool = False,
                durable: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file for writing (text or binary; gzip with mtime 0 when ``gz``)."""
    with atomic_path(path, durable) as tmp:
        if gz:
            # mtime=0 and no file name in the header: same content, same bytes
            with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                         filename="") as gzf:
                if "b" in mode:
                    # a GzipFile is a binary file object, but typeshed does not derive it from
                    # IO[bytes]
                    yield cast("IO[bytes]", gzf)
                else:
                    with io.TextIOWrapper(gzf, encoding="utf-8", newline="\n") as fh:
                        yield fh
        elif "b" in mode:
            with open(tmp, mode) as fh:
                yield fh
        else:
            with open(tmp, mode, encoding="utf-8", newline="\n") as fh:
                yield fh


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory; on success it is renamed to ``path`` (which must not
    exist). Returns quietly when another process created ``path`` first (same work)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        fsync_dir(tmp)
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.is_dir():
                raise
            log.debug("%s was completed by another process meanwhile", path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike[str], obj: Any, durable: bool = True) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON (see :func:`atomic_path`)."""
    with atomic_open(path, durable=durable) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


def write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Atomically write an uncompressed ``.npz`` (deterministic bytes for equal arrays)."""
    with atomic_open(path, "wb") as fh:
        # allow_pickle given by name (numpy's default), so that no array name can take its place
        np.savez(fh, allow_pickle=True, **arrays)


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Atomically write one ``.npy`` array."""
    with atomic_open(path, "wb") as fh:
        np.save(fh, array)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a killed worker whose parent died too stays a zombie until it is reaped
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def clean_stale_tmp(directory: Path, recursive: bool = True) -> int:
    """Remove speechmine temporaries (:func:`tmp_name`) left by dead processes of this host.

    Only names of speechmine's own pattern are considered, and only when the process that
    wrote them is gone (a temporary of a live run, or of another host whose processes this
    one cannot see, stays). Returns the number removed. Call it under the directory's lock.
    """
    n = 0
    if not directory.is_dir():
        return 0
    candidates = directory.rglob(".*.smtmp.*") if recursive else directory.glob(".*.smtmp.*")
    for p in sorted(candidates, key=lambda q: len(q.parts), reverse=True):
        m = _TMP_RX.match(p.name)
        if m is None or m["host"] != _HOST or _pid_alive(int(m["pid"])):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n
