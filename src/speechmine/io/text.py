"""Text shards: discovery (stopes conventions), reading (plain, .gz, .xz) and validation.

The global id of a line is its position in the concatenation of the sorted shards (0-based),
blank and rejected lines included, so ids always match line numbers and meta lines.
"""

from __future__ import annotations

import codecs
import errno
import glob
import gzip
import hashlib
import io
import logging
import lzma
import re
import stat
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..types import InputError, SideInputs

log = logging.getLogger(__name__)


def shard_sort_key(path: str) -> tuple[int, str]:
    """Shard order, as stopes' ``extract_shard_id``: the first ``.NNN.`` (three digits
    between dots) of the file name is the shard number (``x.003.gz`` before ``x.010.gz``,
    ``fr.002._text.tsv`` is shard 2), 0 when there is none; then the path."""
    m = re.search(r"\.([0-9]{3})\.", Path(path).name)
    return (int(m.group(1)) if m else 0, path)


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
            problem = path_problem(listing)
            if problem:
                raise InputError(f"{where}.shard_list: {listing} {problem}")
            try:
                loaded = OmegaConf.load(listing, max_yaml_expanded_nodes=MAX_LIST_NODES)
            except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError) as exc:
                raise InputError(f"{where}.shard_list: {listing} is not a YAML file with a "
                                 f"shard_list: key ({str(exc).splitlines()[0]})") from None
            if not isinstance(loaded, DictConfig) or "shard_list" not in loaded:
                raise InputError(f"{where}.shard_list: {listing} must be a YAML mapping with a "
                                 "shard_list: key")
            shards = [str(s) for s in loaded["shard_list"]]
        elif isinstance(shard_list, Iterable):
            shards = [str(s) for s in shard_list]
        else:
            raise InputError(f"{where}.shard_list: must be a list of paths or a YAML file, got "
                             f"{shard_list!r}")
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
        problem = path_problem(Path(s))
        if problem:
            raise InputError(f"{where}: shard {s} {problem}")
    return shards


#: YAML nodes a shard list file may hold (100,000-entry lists are normal; OmegaConf's guard
#: against alias expansion stays on)
MAX_LIST_NODES = 20_000_000


def path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file ("does not exist", "is a directory", "is a
    symlink loop" …), or None when it can."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "is a broken symbolic link" if path.is_symlink() else "does not exist"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop"
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return f"is unreadable ({exc.strerror})"
    return None


def read_nl_file(path: Path) -> list[int] | None:
    """Per-shard line counts from a stopes ``.nl`` file (one integer per line), or None when
    there is no such file. A malformed file is an :class:`InputError` naming it."""
    if not path.is_file():
        return None
    counts = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace")
                                  .splitlines(), start=1):
        if not line.strip():
            continue
        try:
            counts.append(int(line))
        except ValueError:
            raise InputError(f"{path}:{lineno}: not a line count: {line!r} (a stopes .nl file "
                             "holds one integer per shard)") from None
    return counts


def check_nl_counts(path: Path, counts: list[int], shards: list[str], sizes: list[int]) -> None:
    """A ``.nl`` file must give one count per shard, each equal to the shard's lines."""
    if len(counts) != len(shards):
        raise InputError(f"{path}: {len(counts)} line counts for {len(shards)} shards (one "
                         "integer per shard, in shard order); fix or delete the file")
    for k, (want, got, shard) in enumerate(zip(counts, sizes, shards), start=1):
        if want != got:
            raise InputError(f"{path}:{k}: says {want} lines but shard {shard} has {got}; fix "
                             "or delete the file")


def open_binary(path: str | Path) -> io.BufferedIOBase:
    """Open a text shard for reading bytes, decompressing .gz / .xz by extension."""
    p = str(path)
    if p.endswith(".gz"):
        return gzip.open(p, "rb")
    if p.endswith(".xz"):
        return lzma.open(p, "rb")
    return open(p, "rb")


_EOL = re.compile(rb"\r\n|\r|\n")
_CHUNK = 1 << 20


def iter_raw_lines(path: str | Path) -> Generator[bytes, None, None]:
    """Lines of a shard as bytes without their terminator.

    Line ends are ``\n``, ``\r\n`` or a lone ``\r`` (as Python's text mode, and so stopes,
    reads them); a UTF-8 byte-order mark at the start of the file is dropped. Reads 1 MiB at
    a time: memory is bounded by the longest line, not the file.
    """
    try:
        with open_binary(path) as fh:
            rest, first = b"", True
            while chunk := fh.read(_CHUNK):
                buf = rest + chunk
                if first:
                    first = False
                    if buf.startswith(codecs.BOM_UTF8):
                        buf = buf[len(codecs.BOM_UTF8):]
                # a \r at the end of the buffer may be the first half of \r\n: keep it
                held = buf.endswith(b"\r")
                parts = _EOL.split(buf[:-1] if held else buf)
                rest = parts.pop() + (b"\r" if held else b"")
                yield from parts
            if rest:
                yield rest[:-1] if rest.endswith(b"\r") else rest
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise InputError(f"{path}: cannot decompress or read ({exc})") from exc


def count_lines(path: str | Path) -> int:
    return sum(1 for _ in iter_raw_lines(path))


@dataclass
class ShardScan:
    """What one pass over a shard (text or manifest) found.

    rows: (r,) int64 0-based line numbers to embed (not blank, not rejected); size: lines in
    the shard; blank: blank lines; rejects: (1-based line, reason); hashes: (r,) ``S16``
    blake2b of each kept row's stripped text (only when asked, for unifying duplicates).
    """

    rows: np.ndarray
    size: int
    blank: int = 0
    rejects: list[tuple[int, str]] = field(default_factory=list)
    hashes: np.ndarray | None = None


def iter_decoded_lines(shard: str, on_error: str, rejects: list[tuple[int, str]], hint: str
                       ) -> Iterator[tuple[int, str | None]]:
    """``(1-based line number, text)`` of every line of a shard; a line that is not UTF-8
    yields ``None``, recorded in ``rejects`` when ``on_error == "skip"``, else an
    :class:`InputError` naming file and line (``hint`` says how to go on instead)."""
    for n, raw in enumerate(iter_raw_lines(shard), start=1):
        try:
            yield n, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"invalid UTF-8 at byte {exc.start}"
            if on_error != "skip":
                raise InputError(f"{shard}:{n}: {reason} ({hint})") from None
            rejects.append((n, reason))
            yield n, None


def scan_text_shard(shard: str, on_error: str, hashes: bool = False) -> ShardScan:
    """One pass over a text shard: count lines, find blank and invalid ones.

    Invalid UTF-8 raises :class:`InputError` naming file and line, unless ``on_error ==
    "skip"``, where the line becomes a reject. Costs one read of the shard.
    """
    rows: list[int] = []
    digests: list[bytes] = []
    rejects: list[tuple[int, str]] = []
    blank = n = 0
    hint = "use --on-error skip to put such lines in rejects.tsv and go on"
    for n, decoded in iter_decoded_lines(shard, on_error, rejects, hint):
        if decoded is None:
            continue
        text = decoded.strip()
        if not text:
            blank += 1
            continue
        rows.append(n - 1)
        if hashes:
            digests.append(hashlib.blake2b(text.encode(), digest_size=16).digest())
    if n == 0:
        log.warning("%s: empty shard", shard)
    return ShardScan(rows=np.asarray(rows, dtype=np.int64), size=n, blank=blank,
                     rejects=rejects,
                     hashes=np.asarray(digests, dtype="S16") if hashes else None)


def check_meta_counts(shards: list[str], sizes: list[int], metas: list[str]) -> None:
    """Meta files pair with shards one to one and line for line."""
    if len(metas) != len(shards):
        raise InputError(f"{len(metas)} meta files for {len(shards)} shards: {metas}")
    for shard, size, meta in zip(shards, sizes, metas):
        m = count_lines(meta)
        if m != size:
            raise InputError(f"meta file {meta} has {m} lines but shard {shard} has {size}")


def iter_lines_by_id(files: list[str], offsets: np.ndarray, ids: np.ndarray,
                     metas: list[str] | None = None
                     ) -> Iterator[tuple[int, int, bytes, bytes | None]]:
    """``(shard index, 0-based line, line, meta line or None)`` of each global id of ``ids``
    ((m,) sorted, unique), in that order.

    ``files``: the side's shards (or manifests), ``offsets``: their first global ids then the
    total (:attr:`SideInputs.offsets`), ``metas``: meta files read in step with the shards.
    One sequential pass over the shards that hold wanted ids, each read up to its last
    wanted line; memory: one line (and ``ids``). A shard shorter than the ids say (changed
    since it was scanned) is an :class:`InputError` naming it.
    """
    bounds = np.searchsorted(ids, offsets)
    for s, path in enumerate(files):
        wanted = ids[bounds[s]:bounds[s + 1]] - offsets[s]
        if len(wanted) == 0:
            continue
        j, want = 0, int(wanted[0])
        lines = iter_raw_lines(path)
        side = iter_raw_lines(metas[s]) if metas else None
        try:
            for i, raw in enumerate(lines):
                meta = next(side, None) if side is not None else None
                if i < want:
                    continue
                if side is not None and meta is None:
                    raise InputError(f"meta file {metas[s] if metas else ''} has {i} lines, "
                                     f"fewer than shard {path}: it changed since it was checked")
                yield s, i, raw, meta
                j += 1
                if j == len(wanted):
                    break
                want = int(wanted[j])
        finally:  # close the files now, not when the generators are collected
            lines.close()
            if side is not None:
                side.close()
        if j < len(wanted):
            raise InputError(f"{path}: line {want + 1} is gone (the file has fewer lines than "
                             "when it was scanned; it changed during the run)")


def read_lines_by_id(side: SideInputs, ids: np.ndarray, files: list[str] | None = None
                     ) -> dict[int, str]:
    """``{global id: text}`` of ``ids`` (any order, repeats allowed) from the shards, or from
    ``files`` such as meta files (invalid UTF-8 shows as U+FFFD).

    Holds every asked line in a dict: for small id sets (export, reports). The outputs stage
    streams through :func:`iter_lines_by_id` into an on-disk store instead.
    """
    offsets = side.offsets
    return {int(offsets[s]) + i: raw.decode("utf-8", errors="replace")
            for s, i, raw, _ in iter_lines_by_id(side.shards if files is None else files,
                                                 offsets, np.unique(ids))}
