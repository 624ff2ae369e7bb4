"""Output files, with stopes' names and columns.

* ``<src>-<tgt>.TH-<t>.bitext.tsv.gz``: ``score\\tsrc\\ttgt`` sorted by decreasing score
  (speech sides show the raw manifest line);
* ``….bimeta.tsv.gz``: ``score\\tsrc_meta\\ttgt_meta\\tdirection`` (meta lines when a
  ``meta_glob`` is given, else ``file:line``; speech: ``file start_s end_s``);
* ``….align.npz``: ``scores`` float32, ``src_ids``/``tgt_ids`` int64 (global ids),
  ``direction`` int8 (0 src2tgt, 1 tgt2src, 2 both).

Tabs and newlines inside a sentence become spaces so that every row has its columns.
Files are gzip with mtime 0: the same pairs give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import atomic_open, write_npz
from ..io.text import Reject, read_lines_by_id
from ..margin import DIRECTION_NAMES, Alignment
from .stages import Side


def _clean(s: str) -> str:
    return s.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def side_columns(side: Side, ids: np.ndarray) -> tuple[dict[int, str], dict[int, str]]:
    """(text column, meta column) for the given global ids of one side."""
    texts = read_lines_by_id(side.inputs, ids)
    if side.cfg.modality == "speech":
        from ..io.speech_inputs import speech_meta

        metas = {g: speech_meta(texts[g], side, g) for g in texts}
    elif side.inputs.metas:
        metas = read_lines_by_id(side.inputs, ids, files=side.inputs.metas)
    else:
        metas = {}
        for g in np.unique(ids).tolist():
            f, line = side.inputs.locate(g)
            metas[g] = f"{f}:{line}"
    return texts, metas


def write_outputs(prefix: Path, al: Alignment, src: Side, tgt: Side) -> dict[str, str]:
    """Write bitext, bimeta and align files for ``al``; returns their paths."""
    s_text, s_meta = side_columns(src, al.src)
    t_text, t_meta = side_columns(tgt, al.tgt)
    paths = {"bitext": f"{prefix}.bitext.tsv.gz", "bimeta": f"{prefix}.bimeta.tsv.gz",
             "align": f"{prefix}.align.npz"}
    with atomic_open(paths["bitext"], gz=True) as bt, atomic_open(paths["bimeta"], gz=True) as bm:
        for score, s, t, d in zip(al.scores.tolist(), al.src.tolist(), al.tgt.tolist(),
                                  al.direction.tolist()):
            sc = f"{score:.6f}"
            bt.write(f"{sc}\t{_clean(s_text[s])}\t{_clean(t_text[t])}\n")
            bm.write(f"{sc}\t{_clean(s_meta[s])}\t{_clean(t_meta[t])}\t{DIRECTION_NAMES[d]}\n")
    write_npz(paths["align"], scores=al.scores, src_ids=al.src, tgt_ids=al.tgt,
              direction=al.direction)
    return paths


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    """``side\\tfile\\tline\\treason`` for every input item left out (header line first)."""
    with atomic_open(path) as fh:
        fh.write("side\tfile\tline\treason\n")
        for r in rejects:
            fh.write(f"{r.side}\t{r.file}\t{r.line}\t{_clean(r.reason)}\n")
