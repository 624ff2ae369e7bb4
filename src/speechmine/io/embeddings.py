"""Embedding files: standard ``.npy`` (header, fp16 or fp32) plus a ``.json`` sidecar.

Written in streamed chunks (the header is written first with the final row count, so a
shard of any size never sits in memory), read back memory-mapped. Legacy headerless files
(stopes / LASER raw dumps) are read when the caller gives dim and dtype: the shape is never
guessed from a byte count alone.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, write_json


class EmbeddingFileError(ValueError):
    """An embedding file is missing, truncated or does not match what was expected."""


def l2_normalize(a: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation in float32 (zero rows stay zero). (n, d) → (n, d)."""
    a = np.asarray(a, dtype=np.float32)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms > 0, norms, 1)


class NpyStreamWriter:
    """Write an ``(rows, dim)`` array to ``path`` chunk by chunk; atomic on :meth:`close`.

    >>> with NpyStreamWriter(p, rows=10, dim=4, dtype="float16", meta={...}) as w:
    ...     w.write(chunk)          # (r, 4) any float dtype, converted
    """

    def __init__(self, path: str | os.PathLike[str], rows: int | None, dim: int,
                 dtype: str = "float32", meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.rows, self.dim, self.dtype = rows, dim, np.dtype(dtype)
        self.meta = dict(meta or {})
        self.written = 0
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        # rows unknown (speech: segments may be rejected while decoding): stream the data to
        # a side file and put the header in front on close (one extra copy of the shard)
        self._data_path = self._tmp if rows is not None else Path(f"{self._tmp}.data")
        self._fh = open(self._data_path, "wb")
        if rows is not None:
            self._write_header(self._fh, rows)

    def _write_header(self, fh: Any, rows: int) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (rows, self.dim)}
        np.lib.format.write_array_header_1_0(fh, header)

    def write(self, chunk: np.ndarray) -> None:
        chunk = np.ascontiguousarray(chunk, dtype=self.dtype)
        if chunk.ndim != 2 or chunk.shape[1] != self.dim:
            raise EmbeddingFileError(f"{self.path}: chunk of shape {chunk.shape}, expected "
                                     f"(r, {self.dim})")
        if self.rows is not None and self.written + len(chunk) > self.rows:
            raise EmbeddingFileError(f"{self.path}: more rows than the declared {self.rows}")
        self._fh.write(chunk.tobytes())
        self.written += len(chunk)

    def close(self) -> None:
        self._fh.close()
        if self.rows is None:
            self.rows = self.written
            with open(self._tmp, "wb") as out, open(self._data_path, "rb") as data:
                self._write_header(out, self.rows)
                shutil.copyfileobj(data, out, 1 << 20)
            self._data_path.unlink()
        if self.written != self.rows:
            self._ctx.__exit__(EmbeddingFileError, None, None)
            raise EmbeddingFileError(f"{self.path}: wrote {self.written} rows of {self.rows}")
        # the sidecar first: a present .npy always has its description
        write_json(sidecar_path(self.path), {**self.meta, "rows": self.rows, "dim": self.dim,
                                             "dtype": self.dtype.name})
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        self._fh.close()
        if self._data_path != self._tmp and self._data_path.exists():
            self._data_path.unlink()
        self._ctx.__exit__(RuntimeError, None, None)

    def __enter__(self) -> NpyStreamWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{path}.json")


def read_sidecar(path: str | os.PathLike[str]) -> dict[str, Any]:
    sc = sidecar_path(path)
    return json.loads(sc.read_text()) if sc.exists() else {}


def load_embeddings(path: str | os.PathLike[str], dim: int | None = None,
                    dtype: str | None = None, rows: int | None = None) -> np.ndarray:
    """Memory-map an embedding file. Returns (rows, dim) in the stored dtype (fp16 or fp32).

    A ``.npy`` file carries its shape; a legacy raw file (no ``\\x93NUMPY`` magic) needs
    ``dim`` and ``dtype`` from the caller (config ``embedding_dimensions`` and ``fp16``).
    ``rows`` (when given) must match, which catches truncated or foreign files.
    """
    path = Path(path)
    if not path.is_file():
        raise EmbeddingFileError(f"embedding file {path} does not exist")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        try:
            arr = np.load(path, mmap_mode="r")
        except ValueError as exc:
            raise EmbeddingFileError(f"{path}: unreadable .npy ({exc})") from exc
        if arr.ndim != 2:
            raise EmbeddingFileError(f"{path}: expected a 2-D array, found shape {arr.shape}")
        if dim is not None and arr.shape[1] != dim:
            raise EmbeddingFileError(f"{path}: dimension {arr.shape[1]}, expected {dim}")
    else:
        if dim is None or dtype is None:
            raise EmbeddingFileError(
                f"{path} has no .npy header (legacy raw embeddings): set "
                "embedding_dimensions and the encoder's fp16 flag so its shape is known")
        itemsize = np.dtype(dtype).itemsize
        size = path.stat().st_size
        if size % (dim * itemsize):
            raise EmbeddingFileError(
                f"{path}: {size} bytes is not a whole number of {dim}-d {dtype} rows; "
                "wrong embedding_dimensions or fp16 setting?")
        arr = np.memmap(path, dtype=dtype, mode="r").reshape(-1, dim)
    if rows is not None and arr.shape[0] != rows:
        raise EmbeddingFileError(f"{path}: {arr.shape[0]} rows, expected {rows} (one per line)")
    return arr
