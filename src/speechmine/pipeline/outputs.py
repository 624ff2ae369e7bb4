"""Outputs: stopes' files, written as one consistent set.

The ``outputs`` stage writes, under its key (like every stage):

* ``<src>-<tgt>.TH-<t>.bitext.tsv.gz``: ``score\\tsrc\\ttgt`` sorted by decreasing score
  (speech sides show the raw manifest line);
* ``….bimeta.tsv.gz``: ``score\\tsrc_meta\\ttgt_meta\\tdirection`` (meta lines when a
  ``meta_glob`` is given, else ``file:line``; speech: ``file start_s end_s``);
* ``….align.npz``: ``scores`` float32, ``src_ids``/``tgt_ids`` int64 (global ids),
  ``direction`` int8 (0 src2tgt, 1 tgt2src, 2 both);
* ``rejects.tsv``: ``side\\tfile\\tline\\treason``.

:func:`publish` then puts them into ``output_dir`` as a set: the files (and ``config.yaml``)
are assembled in a temporary folder inside ``output_dir``, the old ``run.json`` is removed,
the files are renamed in, and ``run.json`` is written last: it is the completion mark, and a
folder without it holds no finished run (a rerun completes it). Tabs and newlines inside a
sentence become spaces so that every row has its columns; gzip with mtime 0: the same pairs
give the same bytes.

Memory is bounded by the number of pairs, not by the texts. Rows come out in score order, but
shards are read in id order: each side's needed lines (and meta lines, read in step) are
streamed once, in id order, into an on-disk :class:`~speechmine.io.ondisk.LineStore`, and
the rows are then written in score order, :data:`ROWS` at a time, reading each record back
by position (``pread``: the texts stay in the page cache, never in the heap). Sorting the
pairs by source id and streaming instead would give rows in id order, to be put back into
score order with their texts by an external sort: more passes over more bytes, for the same
bound. Text dedup compares 128-bit hashes of the texts (equal-hash texts are compared byte
for byte, so it is exact), never a set of the texts. Cost: ~100 bytes per pair besides the
alignment itself, one sequential read of the shards holding paired lines, one ``pread`` per
row and side (``benchmarks/outputs_memory.py``, ``docs/scaling.md``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig, result_view
from ..io.atomic import atomic_open, fsync_dir, tmp_name, write_json, write_npz
from ..io.ondisk import LineStore, digest, digest_words, first_rows, hash_groups
from ..io.text import iter_lines_by_id
from ..types import BWD, DIRECTION_NAMES, Alignment, Reject
from .side import Side
from .stage import Stage, kill_point, run_stage

OUTPUTS_VERSION = 1
RUN_JSON = "run.json"


def outputs_stage(cfg: RunConfig, src: Side, tgt: Side, select: Stage) -> Stage:
    """The output files: the pairs, the sides' texts and metas (their paths are written in
    bimeta), the rejects, and the file names (languages, threshold)."""
    speech_embeds = [e.key for s in (src, tgt) if s.cfg.modality == "speech" for e in s.embed]
    prefix = cfg.output_prefix().relative_to(cfg.output_dir).as_posix()
    return Stage("outputs", OUTPUTS_VERSION,
                 config={"prefix": prefix, "output": cfg.output,
                         "pairs": {"dedup_texts": cfg.mine.dedup_texts,
                                   "max_score": cfg.mine.max_score,
                                   "names": [cfg.src_lang, cfg.tgt_lang],
                                   "margin_norm": cfg.mine.margin_norm},
                         "shards": [list(src.shards), list(tgt.shards)],
                         "metas": [src.metas, tgt.metas],
                         # speech bimeta converts manifest offsets to seconds
                         "units": [s.cfg.data.manifest_units if s.cfg.modality == "speech"
                                   else None for s in (src, tgt)]},
                 # speech rejects are found while embedding: the embed keys carry them
                 upstream=[select.key, src.inputs_stage.key, tgt.inputs_stage.key]
                 + speech_embeds, packages=("numpy",))


def _clean(s: str) -> str:
    return s.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _utf8(raw: bytes) -> bytes:
    """A line as text columns show it (invalid UTF-8 → U+FFFD), as UTF-8 bytes: equal bytes
    exactly when equal text, so texts are hashed and compared as bytes."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("utf-8", errors="replace").encode()
    return raw


class Columns:
    """One side's text and meta columns for the distinct ids of the pairs, on disk.

    ids: (u,) sorted distinct global ids. Record ``i`` of the :class:`LineStore` is the text
    of ``ids[i]`` (UTF-8), then, when metas are written, ``\n`` and its meta: a line never
    holds a ``\n``, so the first one separates them. groups: (u,) int64 text groups for
    dedup (equal for equal texts, exact: see :func:`~speechmine.io.ondisk.hash_groups`), or
    None. Built in one sequential pass over the side's shards (and meta files, in step).
    """

    def __init__(self, side: Side, gids: np.ndarray, folder: Path, metas: bool,
                 groups: bool) -> None:
        self.ids = np.unique(gids)
        self.store = LineStore(folder, len(self.ids))
        self.groups: np.ndarray | None = None
        try:
            digests = self._fill(side, metas, groups)
            self.store.finish()
            if digests is not None:
                self.groups = hash_groups(digest_words(digests), self._same_text)
        except BaseException:
            self.store.close()
            raise

    def _fill(self, side: Side, metas: bool, groups: bool) -> bytearray | None:
        inputs, speech = side.inputs, side.cfg.modality == "speech"
        offsets = inputs.offsets
        digests = bytearray() if groups else None
        for s, i, raw, meta in iter_lines_by_id(inputs.shards, offsets, self.ids,
                                                inputs.metas if metas and not speech else None):
            text = _utf8(raw)
            if digests is not None:
                digests += digest(text)
            if not metas:
                self.store.append(text)
                continue
            if speech:
                from ..io.speech_inputs import speech_meta

                m = speech_meta(text.decode(), side, int(offsets[s]) + i).encode(*_PASS)
            elif meta is not None:
                m = _utf8(meta)
            else:
                m = f"{inputs.shards[s]}:{i + 1}".encode(*_PASS)
            self.store.append(text + b"\n" + m)
        return digests

    def _same_text(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        pairs = zip(self.store.get_many(a), self.store.get_many(b))
        return np.fromiter((x.partition(b"\n")[0] == y.partition(b"\n")[0] for x, y in pairs),
                           dtype=bool, count=len(a))

    def positions(self, gids: np.ndarray) -> np.ndarray:
        """Store positions of global ids (all among :attr:`ids`)."""
        return np.searchsorted(self.ids, gids)

    def rows(self, positions: np.ndarray) -> list[tuple[str, str]]:
        """(text, meta) at ``positions`` (meta "" when metas are not stored)."""
        out = []
        for rec in self.store.get_many(positions):
            text, _, meta = rec.partition(b"\n")
            out.append((text.decode(), meta.decode(*_PASS)))
        return out

    def __enter__(self) -> Columns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()


#: rows written per read of the columns: their decoded texts are the writer's working set
#: (~1 kB a row for both sides' texts and metas)
ROWS = 4096

#: file names may hold undecodable bytes (surrogates): they round-trip through the store
_PASS = ("utf-8", "surrogatepass")


def dedup_texts(al: Alignment, src: Columns | Mapping[int, str],
                tgt: Columns | Mapping[int, str]) -> Alignment:
    """Keep the first (best-scoring) pair of each (source text, target text), as stopes'
    mine_sentences ``dedup_bitexts`` does: a stable sort of the pairs' two text groups.

    ``src``/``tgt``: a side's texts, as the writer's :class:`Columns` (built with groups) or
    a ``{global id: text}`` mapping (small uses: the export reader replays dedup with it).
    """
    return al.take(first_rows(_text_groups(src, al.src), _text_groups(tgt, al.tgt)))


def _text_groups(texts: Columns | Mapping[int, str], gids: np.ndarray) -> np.ndarray:
    """(p,) int64: equal for the pairs whose texts on this side are equal."""
    if isinstance(texts, Columns):
        assert texts.groups is not None, "Columns built without groups"
        return texts.groups[texts.positions(gids)]
    ids, inverse = np.unique(gids, return_inverse=True)
    strings = [texts[g] for g in ids.tolist()]
    words = digest_words(b"".join(digest(t.encode(*_PASS)) for t in strings))
    groups = hash_groups(words, lambda a, b: np.fromiter(
        (strings[i] == strings[j] for i, j in zip(a.tolist(), b.tolist())), dtype=bool,
        count=len(a)))
    return groups[inverse.reshape(-1)]


def _chunks(al: Alignment, src: Columns, tgt: Columns
            ) -> Iterator[tuple[Alignment, list[tuple[str, str]], list[tuple[str, str]]]]:
    """The pairs in order, :data:`ROWS` at a time, with both sides' (text, meta)."""
    for a in range(0, len(al), ROWS):
        part = al.take(np.arange(a, min(a + ROWS, len(al))))
        yield part, src.rows(src.positions(part.src)), tgt.rows(tgt.positions(part.tgt))


def write_pairs(folder: Path, prefix: str, al: Alignment, src: Side, tgt: Side,
                pairs: dict[str, Any], layout: str) -> None:
    """bitext, bimeta and align files of ``al`` into ``folder`` (see module doc;
    ``pairs``: the outputs stage's ``dedup_texts``/``max_score`` settings)."""
    (folder / prefix).parent.mkdir(parents=True, exist_ok=True)
    if layout == "stopes" and pairs["max_score"] is not None:
        # stopes' mine_indexes keeps every candidate past the threshold; its mine_sentences
        # applies score_max: the window is applied here, after the align file
        al = al.take(np.flatnonzero(al.scores <= pairs["max_score"]))
    # stopes' layout writes meta lines only when both sides have meta files
    metas = layout != "stopes" or bool(src.inputs.metas and tgt.inputs.metas)
    dedup = bool(pairs["dedup_texts"])
    # the columns' scratch files live in the stage's own folder (same disk as the outputs,
    # not a RAM-backed /tmp) and are removed before the stage is marked done
    with tempfile.TemporaryDirectory(dir=folder, prefix=".columns-") as tmp, \
            Columns(src, al.src, Path(tmp) / "src", metas, dedup) as s_cols, \
            Columns(tgt, al.tgt, Path(tmp) / "tgt", metas, dedup) as t_cols:
        if dedup:
            al = dedup_texts(al, s_cols, t_cols)
        if layout == "stopes":
            _write_stopes_rows(folder / prefix, al, s_cols, t_cols, metas)
            return
        with atomic_open(folder / f"{prefix}.bitext.tsv.gz", gz=True) as bt, \
                atomic_open(folder / f"{prefix}.bimeta.tsv.gz", gz=True) as bm:
            for part, s_rows, t_rows in _chunks(al, s_cols, t_cols):
                for score, (st, sm), (tt, tm), d in zip(part.scores.tolist(), s_rows, t_rows,
                                                        part.direction.tolist()):
                    sc = f"{score:.6f}"
                    bt.write(f"{sc}\t{_clean(st)}\t{_clean(tt)}\n")
                    bm.write(f"{sc}\t{_clean(sm)}\t{_clean(tm)}\t{DIRECTION_NAMES[d]}\n")
    write_npz(folder / f"{prefix}.align.npz", scores=al.scores, src_ids=al.src, tgt_ids=al.tgt,
              direction=al.direction)


def _write_stopes_rows(prefix: Path, al: Alignment, src: Columns, tgt: Columns, metas: bool
                       ) -> None:
    """stopes' mine_sentences rows: through ``csv`` (its quoting, ``\r\n``), the score as
    numpy prints a float32, meta lines only when both sides have meta files, ``fwd``/``bwd``."""
    import csv

    with atomic_open(f"{prefix}.bitext.tsv.gz", gz=True) as bt, \
            atomic_open(f"{prefix}.bimeta.tsv.gz", gz=True) as bm:
        texts, meta_rows = csv.writer(bt, delimiter="\t"), csv.writer(bm, delimiter="\t")
        for part, s_rows, t_rows in _chunks(al, src, tgt):
            # iterating the float32 array (not .tolist()): csv prints numpy's float32 repr
            for score, (st, sm), (tt, tm), d in zip(part.scores, s_rows, t_rows,
                                                    part.direction.tolist()):
                texts.writerow([score, st, tt])
                meta_rows.writerow([score, sm if metas else "", tm if metas else "",
                                    "bwd" if d == BWD else "fwd"])


def write_stopes_align(path: Path, al: Alignment) -> None:
    """stopes' mine_indexes file: every candidate past the threshold, best first (``scores``
    float32, ``src_idx``/``trg_idx`` uint32 global ids, ``bwd_pos``: rows from tgt→src)."""
    np.savez(path, scores=al.scores.astype(np.float32), src_idx=al.src.astype(np.uint32),
             trg_idx=al.tgt.astype(np.uint32),
             bwd_pos=np.flatnonzero(al.direction == BWD).astype(np.int64))


def stopes_align_name(cfg_output: Any, names: list[str], margin_norm: str,
                      index_type: str) -> str:
    """``<src>-<tgt>.<index_type>.k<src_k>-<tgt_k>.<margin_norm>.np<num_probe>.<gpu_type>
    .align.npz``, as stopes' mine_indexes names it."""
    o = cfg_output
    return (f"{names[0]}-{names[1]}.{o['index_type'] or index_type}.k{o['src_k']}-{o['tgt_k']}"
            f".{margin_norm}.np{o['num_probe']}.{o['gpu_type']}.align.npz")


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    """``side\\tfile\\tline\\treason`` for every input item left out (header line first)."""
    with atomic_open(path) as fh:
        fh.write("side\tfile\tline\treason\n")
        for r in rejects:
            fh.write(f"{r.side}\t{r.file}\t{r.line}\t{_clean(r.reason)}\n")


def run_outputs(stage: Stage, work: Path, al: Alignment, src: Side, tgt: Side,
                index_type: str) -> dict[str, tuple[str, Path]]:
    """The output files in the stage's folder: ``{kind: (path relative to output_dir,
    file)}`` (stopes' layout has a sub-folder). ``index_type``: the index searched (stopes'
    layout names its align file after it)."""
    prefix = str(stage.config["prefix"])
    output, pairs = result_view(stage.config["output"]), stage.config["pairs"]
    names = {"bitext": f"{prefix}.bitext.tsv.gz", "bimeta": f"{prefix}.bimeta.tsv.gz",
             "align": f"{prefix}.align.npz", "rejects": "rejects.tsv"}
    if output["layout"] == "stopes":
        names["align"] = str(Path(prefix).parent / stopes_align_name(
            output, pairs["names"], pairs["margin_norm"],
            "Flat" if index_type == "exact" else index_type))

    def compute(folder: Path) -> None:
        write_pairs(folder, prefix, al, src, tgt, pairs, output["layout"])
        if output["layout"] == "stopes":
            write_stopes_align(folder / names["align"], al)
        write_rejects(folder / names["rejects"], src.inputs.rejects + tgt.inputs.rejects)

    def load(folder: Path) -> dict[str, tuple[str, Path]]:
        return {kind: (name, folder / name) for kind, name in names.items()}

    files, _ = run_stage(stage, work, compute, load)
    return files


def publish(out_dir: Path, files: dict[str, tuple[str, Path]], config_yaml: str,
            run_info: dict[str, Any]) -> dict[str, str]:
    """Put a run's files into ``out_dir`` as one set, ``run.json`` last (see module doc).

    Returns ``{kind: final path}`` including ``config`` and ``run``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = tmp_name(out_dir / "publish")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        final: dict[str, str] = {}
        for kind, (rel, src) in files.items():
            dst = staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:  # a hard link costs nothing; another filesystem gets a copy
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
            final[kind] = str(out_dir / rel)
        with atomic_open(staging / "config.yaml") as fh:
            fh.write(config_yaml)
        final["config"] = str(out_dir / "config.yaml")
        final["run"] = str(out_dir / RUN_JSON)
        fsync_dir(staging)
        # from here until run.json is written, the folder holds no finished run
        (out_dir / RUN_JSON).unlink(missing_ok=True)
        fsync_dir(out_dir)
        moved = sorted(p for p in staging.rglob("*") if p.is_file())
        for n, path in enumerate(moved):
            dst = out_dir / path.relative_to(staging)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dst)
            if n == 0:
                kill_point("outputs")
        fsync_dir(out_dir)
        write_json(out_dir / RUN_JSON, {**run_info, "outputs": final})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def read_run_json(out_dir: Path) -> dict[str, Any] | None:
    """The finished run in ``out_dir`` (None when the folder holds no finished run)."""
    try:
        return json.loads((out_dir / RUN_JSON).read_text())
    except (OSError, ValueError):
        return None
