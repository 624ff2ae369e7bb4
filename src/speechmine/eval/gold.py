"""Gold pairs: reading the two gold formats into keys the scoring functions compare.

Formats (UTF-8, one pair per line, two tab-separated fields; blank lines skipped):

* ``ids``: ``src_id<TAB>tgt_id``, 0-based global ids — the line number of each item in its
  side's concatenated shards, as in ``align.npz`` ``src_ids``/``tgt_ids``;
* ``text``: ``src_text<TAB>tgt_text`` (BUCC-style sentence pairs), compared with the bitext's
  text columns after collapsing runs of whitespace (the bitext turns tabs and newlines
  inside a sentence into spaces). Texts become 64-bit keys (:func:`text_key`), so a text
  gold and a million mined pairs cost 16 bytes a pair.

``auto`` reads ``ids`` when the first pair is two non-negative integers, else ``text`` (a
text gold whose first pair is two numbers needs ``text`` said explicitly).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..types import InputError

GoldFormat = Literal["auto", "ids", "text"]
GOLD_FORMATS: tuple[str, ...] = ("auto", "ids", "text")

_ID = re.compile(r"\s*\d+\s*")


@dataclass(frozen=True)
class Gold:
    """Gold pairs of one file: ``pairs`` (g, 2) int64, global ids (``format == "ids"``) or
    :func:`text_key` keys of each side (``"text"``); duplicates kept as given."""

    format: Literal["ids", "text"]
    pairs: np.ndarray
    path: str


def normalize_text(text: str) -> str:
    """The form texts are compared in: runs of whitespace → one space, ends stripped."""
    return " ".join(text.split())


def text_key(text: str) -> int:
    """int64 key of a normalised text (blake2b, 8 bytes; a collision among a billion texts
    has a chance of about 3e-2 %)."""
    digest = hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def text_keys(texts: Iterable[str]) -> np.ndarray:
    """(n,) int64 :func:`text_key` of each text."""
    return np.fromiter((text_key(t) for t in texts), dtype=np.int64)


def _fields(path: str | Path) -> Iterable[tuple[int, list[str]]]:
    """``(1-based line, [field, field])`` of every non-blank line; anything else is an
    :class:`InputError` naming file and line."""
    from ..io.text import iter_decoded_lines

    src = str(path)
    if not Path(src).is_file():
        raise InputError(f"{src}: gold file not found")
    for n, line in iter_decoded_lines(src, "fail", [], "gold files are UTF-8"):
        assert line is not None  # "fail": invalid UTF-8 raised above
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise InputError(f"{src}:{n}: expected 2 tab-separated fields (src<TAB>tgt), "
                             f"got {len(parts)}: {line[:80]!r}")
        yield n, parts


def read_gold_pairs(path: str | Path, fmt: str = "auto") -> Gold:
    """Read a gold file (see the module doc for the formats); errors name file and line."""
    if fmt not in GOLD_FORMATS:
        raise InputError(f"{path}: unknown gold format {fmt!r} (one of {', '.join(GOLD_FORMATS)})")
    rows: list[tuple[int, int]] = []
    kind = fmt
    for n, (a, b) in _fields(path):
        if kind == "auto":
            kind = "ids" if _ID.fullmatch(a) and _ID.fullmatch(b) else "text"
        if kind == "text":
            rows.append((text_key(a), text_key(b)))
        elif _ID.fullmatch(a) and _ID.fullmatch(b):
            rows.append((int(a), int(b)))
        else:
            raise InputError(f"{path}:{n}: expected 'src_id<TAB>tgt_id' (0-based line numbers), "
                             f"got {a[:40]!r}, {b[:40]!r} (a gold of sentence pairs: "
                             "--gold-format text)")
    pairs = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
    return Gold(format="text" if kind == "text" else "ids", pairs=pairs, path=str(path))


def read_gold(path: str | Path) -> np.ndarray:
    """Gold pairs ``src_id\\ttgt_id`` (0-based global ids), returned as (g, 2) int64."""
    return read_gold_pairs(path, "ids").pairs
