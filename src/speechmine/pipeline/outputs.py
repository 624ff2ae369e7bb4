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
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig, result_view
from ..io.atomic import atomic_open, fsync_dir, tmp_name, write_json, write_npz
from ..io.text import read_lines_by_id
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


def dedup_texts(al: Alignment, s_text: dict[int, str], t_text: dict[int, str]
                ) -> Alignment:
    """Keep the first (best-scoring) pair of each (source text, target text), as stopes'
    mine_sentences ``dedup_bitexts`` does."""
    seen: set[tuple[str, str]] = set()
    keep = []
    for i, (s, t) in enumerate(zip(al.src.tolist(), al.tgt.tolist())):
        texts = (s_text[s], t_text[t])
        if texts not in seen:
            seen.add(texts)
            keep.append(i)
    return al.take(np.asarray(keep, dtype=np.int64))


def write_pairs(folder: Path, prefix: str, al: Alignment, src: Side, tgt: Side,
                pairs: dict[str, Any], layout: str) -> None:
    """bitext, bimeta and align files of ``al`` into ``folder`` (see module doc;
    ``pairs``: the outputs stage's ``dedup_texts``/``max_score`` settings)."""
    (folder / prefix).parent.mkdir(parents=True, exist_ok=True)
    s_text, s_meta = side_columns(src, al.src)
    t_text, t_meta = side_columns(tgt, al.tgt)
    if layout == "stopes" and pairs["max_score"] is not None:
        # stopes' mine_indexes keeps every candidate past the threshold; its mine_sentences
        # applies score_max: the window is applied here, after the align file
        al = al.take(np.flatnonzero(al.scores <= pairs["max_score"]))
    if pairs["dedup_texts"]:
        al = dedup_texts(al, s_text, t_text)
    if layout == "stopes":
        _write_stopes_rows(folder / prefix, al, (s_text, s_meta, src), (t_text, t_meta, tgt))
        return
    with atomic_open(folder / f"{prefix}.bitext.tsv.gz", gz=True) as bt, \
            atomic_open(folder / f"{prefix}.bimeta.tsv.gz", gz=True) as bm:
        for score, s, t, d in zip(al.scores.tolist(), al.src.tolist(), al.tgt.tolist(),
                                  al.direction.tolist()):
            sc = f"{score:.6f}"
            bt.write(f"{sc}\t{_clean(s_text[s])}\t{_clean(t_text[t])}\n")
            bm.write(f"{sc}\t{_clean(s_meta[s])}\t{_clean(t_meta[t])}\t{DIRECTION_NAMES[d]}\n")
    write_npz(folder / f"{prefix}.align.npz", scores=al.scores, src_ids=al.src, tgt_ids=al.tgt,
              direction=al.direction)


def _write_stopes_rows(prefix: Path, al: Alignment, src: tuple[dict[int, str], Any, Side],
                       tgt: tuple[dict[int, str], Any, Side]) -> None:
    """stopes' mine_sentences rows: through ``csv`` (its quoting, ``\r\n``), the score as
    numpy prints a float32, meta lines only when both sides have meta files, ``fwd``/``bwd``."""
    import csv

    (s_text, s_meta, s_side), (t_text, t_meta, t_side) = src, tgt
    has_meta = bool(s_side.inputs.metas and t_side.inputs.metas)
    with atomic_open(f"{prefix}.bitext.tsv.gz", gz=True) as bt, \
            atomic_open(f"{prefix}.bimeta.tsv.gz", gz=True) as bm:
        texts, metas = csv.writer(bt, delimiter="\t"), csv.writer(bm, delimiter="\t")
        for score, s, t, d in zip(al.scores, al.src.tolist(), al.tgt.tolist(),
                                  al.direction.tolist()):
            texts.writerow([score, s_text[s], t_text[t]])
            metas.writerow([score, s_meta[s] if has_meta else "",
                            t_meta[t] if has_meta else "", "bwd" if d == BWD else "fwd"])


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
