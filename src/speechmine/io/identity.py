"""File identity for cache keys: what a file *is*, so a rerun can tell whether it changed.

``content`` (default): a streamed sha256 of the bytes (about 1.5 GB/s on one core here, far
less than embedding them). Size and mtime are not enough: ``cp -p``, ``rsync -a`` and
``touch -r`` keep both while changing the content. The path is not part of a content
identity: a file moved unchanged is the same file.

``stat``: path, size and mtime_ns (``cache.verify: stat``), for huge corpora on slow disks
where hashing every byte on every run costs too much; an edit that keeps size and mtime goes
unnoticed, and a moved file is a new one.

Within one process a file is hashed once: the digest is remembered under (device, inode,
size, mtime_ns, ctime_ns), and ctime cannot be set back by user tools (``touch -r``,
``cp -p`` and ``rsync -a`` all change ctime or the inode), so an edited file is hashed again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any, Literal

Verify = Literal["content", "stat"]
VERIFY_MODES: tuple[str, ...] = ("content", "stat")

_CHUNK = 1 << 20
_memo: dict[tuple[int, ...], str] = {}
_memo_lock = threading.Lock()
#: bytes hashed by this process (for the log and the benchmark)
hashed_bytes = 0


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes, streamed in 1 MiB blocks (memoised, see module)."""
    global hashed_bytes
    st = os.stat(path)
    memo_key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _memo_lock:
        hit = _memo.get(memo_key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    digest = h.hexdigest()
    with _memo_lock:
        hashed_bytes += st.st_size
        _memo[memo_key] = digest
    return digest


def file_identity(path: str | os.PathLike[str], verify: str = "content") -> dict[str, Any]:
    """What a file is, as a JSON-able dict for a key.

    content: ``{"sha256", "size"}``; stat: ``{"path", "size", "mtime_ns"}``; a missing file:
    ``{"missing": abspath}`` (so that creating it later changes the key). A directory is
    walked (:func:`dir_identity`).
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, not {verify!r}")
    p = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return {"missing": p}
    if os.path.isdir(p):
        return dir_identity(p, verify)
    if verify == "stat":
        return {"path": p, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"sha256": sha256_file(p), "size": st.st_size}


def dir_identity(path: str | os.PathLike[str], verify: str = "content") -> dict[str, Any]:
    """Identity of every file below a directory (model folders), by relative path.

    Symlinks are followed for files; hidden files and ``__pycache__`` are skipped (editor
    and interpreter droppings do not change a model).
    """
    root = Path(path)
    files: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            ident = file_identity(full, verify)
            if verify == "stat":
                ident.pop("path", None)
            files[rel] = ident
    out: dict[str, Any] = {"dir": files}
    if verify == "stat":
        out["path"] = os.path.abspath(root)
    return out


def forget() -> None:
    """Drop the in-process memo (tests that rewrite files within one clock tick)."""
    with _memo_lock:
        _memo.clear()
