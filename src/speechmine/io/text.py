"""Text shards: discovery (stopes conventions), reading (plain, .gz, .xz) and validation.

The global id of a line is its position in the concatenation of the sorted shards (0-based),
blank and rejected lines included, so ids always match line numbers and meta lines.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import logging
import lzma
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from omegaconf import OmegaConf

from ..types import InputError, Reject, SideInputs

log = logging.getLogger(__name__)


def shard_sort_key(path: str) -> tuple[int, str]:
    """Sort shards by their number (``x.003.gz`` before ``x.010.gz``), then by name."""
    name = Path(path).name
    m = re.search(r"\.(\d+)(?:\.[A-Za-z0-9]+)*$", name)
    return (int(m.group(1)) if m else -1, path)


def glob_sorted(pattern: str, lang: str) -> list[str]:
    """Files matching ``pattern`` with ``{lang}`` replaced, in shard-number order (stopes)."""
    return sorted(glob.glob(pattern.replace("{lang}", lang)), key=shard_sort_key)


def find_shards(lang: str, shard_dir: str | None, shard_list: object, shard_glob: str | None,
                bname: str, shard_type: str, where: str) -> list[str]:
    """Find a side's shard files the way stopes does, in deterministic order.

    1. ``shard_list``: a list of paths, or a YAML file with a ``shard_list:`` key;
    2. ``shard_glob`` with ``{lang}`` replaced;
    3. else files named ``{bname}.{shard_type}.{lang}.NNN.gz|xz`` in ``data_shard_dir``.
    ``where`` names the config entry for error messages.
    """
    if shard_list:
        if isinstance(shard_list, str):
            listing = Path(shard_list)
            if not listing.is_file():
                raise InputError(f"{where}.shard_list: file {listing} does not exist")
            shards = [str(s) for s in OmegaConf.load(listing)["shard_list"]]
        else:
            shards = [str(s) for s in shard_list]  # type: ignore[union-attr]
    elif shard_glob:
        shards = glob_sorted(shard_glob, lang)
        if not shards:
            raise InputError(f"{where}.shard_glob: no file matches "
                             f"{shard_glob.replace('{lang}', lang)!r}")
    else:
        if not shard_dir:
            raise InputError(f"{where}: set data_shard_dir, shard_glob or shard_list")
        rx = re.compile(rf"{re.escape(bname)}\.{re.escape(shard_type)}\.{re.escape(lang)}"
                        r"\.[0-9]+\.[gx]z$")
        d = Path(shard_dir)
        if not d.is_dir():
            raise InputError(f"{where}.data_shard_dir: {d} is not a directory")
        shards = sorted((str(p) for p in d.iterdir() if rx.match(p.name)), key=shard_sort_key)
        if not shards:
            raise InputError(f"{where}: no shard named {bname}.{shard_type}.{lang}.NNN.gz|xz "
                             f"in {d}")
    for s in shards:
        p = Path(s)
        if not p.is_file():
            raise InputError(f"{where}: shard {s} does not exist")
        try:
            with open(p, "rb"):
                pass
        except OSError as exc:
            raise InputError(f"{where}: shard {s} is unreadable ({exc.strerror})") from exc
    return shards


def read_nl_file(path: Path) -> list[int] | None:
    """Per-shard line counts from a stopes ``.nl`` file, or None when absent or malformed."""
    if not path.is_file():
        return None
    try:
        return [int(x) for x in path.read_text().split()]
    except ValueError:
        log.warning("ignoring %s: not one integer per line", path)
        return None


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a text shard for reading bytes, decompressing .gz / .xz by extension."""
    p = str(path)
    if p.endswith(".gz"):
        return gzip.open(p, "rb")
    if p.endswith(".xz"):
        return lzma.open(p, "rb")
    return open(p, "rb")


def iter_raw_lines(path: str | Path) -> Iterator[bytes]:
    """Lines of a shard as bytes without the line terminator."""
    try:
        with open_binary(path) as fh:
            for raw in fh:
                yield raw.rstrip(b"\r\n")
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise InputError(f"{path}: cannot decompress or read ({exc})") from exc


def count_lines(path: str | Path) -> int:
    return sum(1 for _ in iter_raw_lines(path))


def scan_text_side(side: str, shards: list[str], metas: list[str] | None, nl_counts: list[int] | None,
                   on_error: str, unify: bool, progress: bool = True) -> SideInputs:
    """One pass over a text side: count lines, find blank / invalid lines, unify duplicates.

    Invalid UTF-8 raises :class:`InputError` naming file and line, unless ``on_error ==
    "skip"``, where the line becomes a :class:`Reject`. Costs one read of every shard.
    """
    from tqdm.auto import tqdm

    kept: list[int] = []
    rejects: list[Reject] = []
    sizes: list[int] = []
    blank = duplicates = 0
    seen: dict[bytes, int] = {}
    gid = 0
    for shard in tqdm(shards, desc=f"scan {side}", unit="shard", disable=not progress):
        n = 0
        for n, raw in enumerate(iter_raw_lines(shard), start=1):
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                reason = f"invalid UTF-8 at byte {exc.start}"
                if on_error != "skip":
                    raise InputError(f"{shard}:{n}: {reason} (use --on-error skip to put such "
                                     "lines in rejects.tsv and go on)") from None
                rejects.append(Reject(side, shard, n, reason))
                gid += 1
                continue
            if not decoded.strip():
                blank += 1
            elif unify:
                h = hashlib.blake2b(decoded.strip().encode(), digest_size=16).digest()
                if h in seen:
                    duplicates += 1
                else:
                    seen[h] = gid
                    kept.append(gid)
            else:
                kept.append(gid)
            gid += 1
        sizes.append(n)
        if n == 0:
            log.warning("%s: empty shard", shard)
    if nl_counts is not None and nl_counts != sizes:
        log.warning("side %s: line counts in the .nl file %s differ from the shards %s; "
                    "using the counted values", side, nl_counts, sizes)
    if metas is not None:
        check_meta_counts(shards, sizes, metas)
    return SideInputs(shards=shards, sizes=sizes, kept=np.asarray(kept, dtype=np.int64),
                      metas=metas, rejects=rejects, blank=blank, duplicates=duplicates)


def check_meta_counts(shards: list[str], sizes: list[int], metas: list[str]) -> None:
    """Meta files pair with shards one to one and line for line."""
    if len(metas) != len(shards):
        raise InputError(f"{len(metas)} meta files for {len(shards)} shards: {metas}")
    for shard, size, meta in zip(shards, sizes, metas):
        m = count_lines(meta)
        if m != size:
            raise InputError(f"meta file {meta} has {m} lines but shard {shard} has {size}")


def read_lines_by_id(side: SideInputs, ids: np.ndarray, files: list[str] | None = None
                     ) -> dict[int, str]:
    """Text of the given global ids (from shards, or ``files`` such as meta files).

    One sequential pass over the needed shards only; ids may be unsorted and repeated.
    """
    files = side.shards if files is None else files
    wanted = np.unique(ids)
    offsets = side.offsets
    out: dict[int, str] = {}
    for s, path in enumerate(files):
        lo, hi = offsets[s], offsets[s + 1]
        in_shard = wanted[(wanted >= lo) & (wanted < hi)]
        if len(in_shard) == 0:
            continue
        targets = set((in_shard - lo).tolist())
        for i, raw in enumerate(iter_raw_lines(path)):
            if i in targets:
                out[int(lo + i)] = raw.decode("utf-8", errors="replace")
    return out
