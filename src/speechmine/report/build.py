"""Build the report of a finished run: read its files, score against gold, choose rows,
cut audio clips, draw the plots, write ``index.html``.

Cost: two streaming passes over bitext+bimeta (scores first, then the chosen rows), the
align file once, and one decode of each audio file that a shown speech row points at.
Memory: 8 bytes a mined pair (24 with a text gold), plus the shown rows.
"""

from __future__ import annotations

import json
import logging
import os
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import numpy as np

from ..eval import (
    Gold,
    PRCurve,
    Scores,
    best_threshold,
    in_gold,
    pr_curve,
    read_gold_pairs,
    scores_at,
)
from ..eval.gold import text_key
from ..io.atomic import atomic_open
from . import plots
from .bands import Band, choose_bands
from .clips import MAX_CLIP_SECONDS, Segment, segment_of, write_clips
from .page import BandView, Cell, Page, PairRow, Plot, render
from .run_files import ReportError, Row, RunFiles, iter_rows, open_run, read_align, read_config_yaml

log = logging.getLogger(__name__)

#: rows per band unless --rows says otherwise
DEFAULT_ROWS = 50
#: longer texts are cut on the page (the bitext keeps them whole)
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class Report:
    """What was written: the page, the clips folder, and what it shows."""

    page: Path
    clips: Path
    pairs: int
    shown: int
    audio: int
    best: tuple[float, Scores] | None


@dataclass
class _Scan:
    """The first pass: every score, the direction counts, text keys for a text gold."""

    scores: np.ndarray
    directions: Counter[str]
    keys: tuple[np.ndarray, np.ndarray] | None


def _scan(run: RunFiles, text_gold: bool) -> _Scan:
    scores, directions = array("d"), Counter[str]()
    src_keys, tgt_keys = array("q"), array("q")
    for row in iter_rows(run):
        scores.append(row.score)
        directions[row.direction or "?"] += 1
        if text_gold:
            src_keys.append(text_key(row.src))
            tgt_keys.append(text_key(row.tgt))
    keys = (np.frombuffer(src_keys, dtype=np.int64), np.frombuffer(tgt_keys, dtype=np.int64)) \
        if text_gold else None
    return _Scan(np.frombuffer(scores, dtype=np.float64), directions, keys)


@dataclass(frozen=True)
class _GoldView:
    gold: Gold
    curve: PRCurve
    at_run: Scores
    best: tuple[float, Scores]
    row_hits: np.ndarray | None  # (n,) bool per bitext row, when rows have keys or ids
    source: str  # what the curve was computed on


def _score_gold(run: RunFiles, scan: _Scan, gold: Gold) -> _GoldView:
    n = scan.scores.size
    if gold.format == "text":
        assert scan.keys is not None
        s, a, b = scan.scores, scan.keys[0], scan.keys[1]
        hits: np.ndarray | None = in_gold(a, b, gold.pairs)
        source = "the bitext's texts"
    else:
        align = read_align(run)
        if align is None:
            raise ReportError(f"{run.root}: the run has no align file, which a gold of ids "
                              "needs (a gold of sentence pairs works without it)")
        s, a, b = align
        row_aligned = s.size == n and np.allclose(s, scan.scores, atol=5e-6)
        hits = in_gold(a, b, gold.pairs) if row_aligned else None
        source = (f"{run.files['align'].name} (global ids" +
                  ("" if row_aligned else "; every candidate past the threshold, as stopes' "
                   "mine_indexes writes it") + ")")
    curve = pr_curve(s, a, b, gold.pairs)
    at_run = scores_at(s, a, b, gold.pairs, run.threshold)
    return _GoldView(gold, curve, at_run, best_threshold(curve), hits, source)


def _manifest_dirs(run: RunFiles) -> dict[str, tuple[list[Path], str]]:
    """Per speech side: the folders of its manifests and their time units (from the run's
    config.yaml; relative audio paths in stopes' bitext are relative to them)."""
    out: dict[str, tuple[list[Path], str]] = {}
    config = run.files.get("config")
    if config is None or not config.is_file():
        return out
    from ..config import ConfigError, load_config
    from ..io.text import find_shards

    try:
        cfg = load_config(str(config))
        for role in ("src", "tgt"):
            side = cfg.side(role)
            if side.modality != "speech":
                continue
            d = side.data
            shards = find_shards(side.name, d.data_shard_dir, d.shard_list, d.shard_glob,
                                 d.bname, d.shard_type, f"lang_configs.{side.name}")
            out[role] = (sorted({Path(s).parent for s in shards}), d.manifest_units)
    except (ConfigError, ReportError, ValueError, OSError) as exc:
        log.info("%s: manifests not found (%s): relative audio paths are taken from the "
                 "current folder (or --audio-root)", config, exc)
    return out


def _cut(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else \
        f"{text[:limit]}… ({len(text) - limit} more characters)"


def _summary(run: RunFiles, scan: _Scan) -> list[tuple[str, str]]:
    from ..cli import rule_line

    info = run.info
    try:
        rule = rule_line(SimpleNamespace(**info["mine"]))
    except (KeyError, TypeError, AttributeError, ValueError):
        rule = json.dumps(info.get("mine", {}))
    dirs = ", ".join(f"{c} {d}" for d, c in sorted(scan.directions.items()))
    rows = [("pairs", f"{scan.scores.size} ({dirs})" if dirs else "0"),
            ("threshold", f"{run.threshold:g}"), ("rule", rule.removeprefix("rule: ")),
            ("index", str(info.get("index", {}).get("type", "?"))),
            ("layout", run.layout), ("config", str(info.get("config_file", "?")))]
    if info.get("ignored_settings"):
        rows.append(("ignored settings", ", ".join(map(str, info["ignored_settings"]))))
    timings = info.get("timings_s", {})
    if timings:
        rows.append(("timings", ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())))
    versions = info.get("versions", {})
    if versions:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    return rows


_SIDE_ROWS = [("language", "lang"), ("modality", "modality"),
              ("encoder", "encoder"), ("lines", "lines"), ("embedded", "embedded"),
              ("blank", "blank"), ("unified duplicates", "duplicates"),
              ("rejected", "rejected"), ("truncated", "truncated"), ("shards", "shards")]


def build_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 gold_path: str | Path | None = None, gold_format: str = "auto",
                 rows: int = DEFAULT_ROWS, seed: int = 0, around: float | None = None,
                 audio_root: str | Path | None = None) -> Report:
    """Write the report of the run in ``run_dir`` to ``out_dir`` (default
    ``run_dir/report``): ``index.html`` and ``clips/``. See docs/report.md."""
    run = open_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.root / "report"
    gold = read_gold_pairs(gold_path, gold_format) if gold_path is not None else None
    if rows < 1:
        raise ReportError(f"--rows must be at least 1, got {rows}")
    scan = _scan(run, text_gold=gold is not None and gold.format == "text")
    view = _score_gold(run, scan, gold) if gold is not None else None

    if around is not None:
        centre, centre_name = around, "threshold"
    elif view is not None and np.isfinite(view.best[0]):
        centre, centre_name = view.best[0], "best-F1 threshold"
    else:
        centre, centre_name = run.threshold, "mining threshold"
    bands = choose_bands(scan.scores, centre, rows, seed, centre_name)
    chosen = {int(i) for b in bands for i in b.rows}
    picked: dict[int, Row] = {}
    for row in iter_rows(run):
        if row.index in chosen:
            picked[row.index] = row

    speech = [role for role in ("src", "tgt") if run.modality(role) == "speech"]
    segments: dict[tuple[int, str], Segment | None] = {}
    if speech:
        dirs = _manifest_dirs(run) if run.layout == "stopes" else {}
        for role in speech:
            bases, units = dirs.get(role, ([], "samples"))
            if audio_root is not None:
                bases = [Path(audio_root), *bases]
            for i, row in picked.items():
                text, meta = (row.src, row.src_meta) if role == "src" else (row.tgt, row.tgt_meta)
                segments[i, role] = segment_of(text, meta, bases, units)
    clips = write_clips([s for s in segments.values() if s is not None], out / "clips")

    def cell(i: int, role: str) -> Cell:
        row = picked[i]
        text, meta = (row.src, row.src_meta) if role == "src" else (row.tgt, row.tgt_meta)
        if role not in speech:
            return Cell(_cut(text), meta)
        seg = segments[i, role]
        if seg is None:
            return Cell(_cut(text), meta, problem="no audio: the segment could not be read "
                        "from bimeta or the manifest line")
        name = clips.files.get(seg)
        return Cell(seg.label(), text, audio=f"clips/{name}" if name else None,
                    problem=clips.problems.get(seg, ""))

    hits = view.row_hits if view is not None else None
    band_views = [BandView(b.key, b.title, b.note, [
        PairRow(rank=int(r) + 1, score=picked[int(i)].score, src=cell(int(i), "src"),
                tgt=cell(int(i), "tgt"), direction=picked[int(i)].direction,
                gold=None if hits is None else bool(hits[int(i)]),
                below=picked[int(i)].score < centre)
        for r, i in zip(b.ranks, b.rows)]) for b in bands]

    page = _page(run, scan, view, band_views, bands, out, rows, seed, centre, centre_name,
                 len(clips.files), len(clips.problems))
    with atomic_open(out / "index.html") as fh:
        fh.write(render(page))
    log.info("report: %s (%d of %d pairs shown, %d audio clips)", out / "index.html",
             len(picked), scan.scores.size, len(clips.files))
    return Report(page=out / "index.html", clips=out / "clips", pairs=int(scan.scores.size),
                  shown=len(picked), audio=len(clips.files),
                  best=view.best if view is not None else None)


def _page(run: RunFiles, scan: _Scan, view: _GoldView | None, band_views: list[BandView],
          bands: list[Band], out: Path, rows: int, seed: int, centre: float, centre_name: str,
          n_clips: int, n_problems: int) -> Page:
    names = (run.name("src"), run.name("tgt"))
    marks = [("mining threshold", run.threshold)]
    if view is not None and np.isfinite(view.best[0]):
        marks.append(("best F1", view.best[0]))
    if centre_name == "threshold":
        marks.append(("--around", centre))
    figures: list[Plot] = []
    figures.append(Plot("score histogram", plots.score_histogram(
        scan.scores, view.row_hits if view is not None else None, marks),
        "Margin scores of all mined pairs" + (", split by the gold" if view is not None
                                               and view.row_hits is not None else "") + "."))
    gold_rows: list[tuple[str, str]] = []
    if view is None:
        figures.append(Plot("pairs kept by threshold", plots.pairs_kept(scan.scores, marks),
                            "How many pairs each higher threshold would keep. Give --gold "
                            "for precision and recall."))
    else:
        t_best, s_best = view.best
        figures.append(Plot("precision, recall and F1 by threshold",
                            plots.pr_by_threshold(view.curve, marks),
                            f"Computed on {view.source}; recall counts gold pairs never mined."))
        points = [("mining threshold", view.at_run.recall, view.at_run.precision)]
        if np.isfinite(t_best):
            points.append(("best F1", s_best.recall, s_best.precision))
        figures.append(Plot("precision-recall curve", plots.pr_curve_plot(view.curve, points),
                            "Each point keeps the pairs scoring at or above one mined score."))
        gold_rows = [("gold", f"{view.gold.path} ({view.gold.format}, "
                              f"{view.gold.pairs.shape[0]} lines, {view.curve.gold} pairs)"),
                     ("scored on", view.source),
                     (f"at the mining threshold {run.threshold:g}", str(view.at_run)),
                     ("best threshold (BUCC: midway between scores)",
                      f"{t_best:.6f}: {s_best}" if np.isfinite(t_best) else "no correct pair")]
    shown = sum(len(b.rows) for b in band_views)
    notes = [f"At most {rows} pairs per band (--rows): {shown} of the {scan.scores.size} "
             "mined pairs are on this page; all of them are in the bitext file.",
             f"Bands: top and bottom scores, around the {centre_name} {centre:.4g} "
             f"(--around), and a random sample (seed {seed}, --seed).",
             "The filter (score range, text in either side or its meta) hides rows in the "
             "page; it does not search the pairs left out."]
    if any(run.modality(r) == "speech" for r in ("src", "tgt")):
        notes.append(f"Audio: {n_clips} clip(s) in clips/ (16 kHz mono FLAC, at most "
                     f"{MAX_CLIP_SECONDS:g} s each), cut from the source audio"
                     + (f"; {n_problems} segment(s) without a clip, reason in the row"
                        if n_problems else "") + ".")
    if view is not None and view.row_hits is None:
        notes.append("The gold column is empty: the bitext rows have no ids here (stopes' "
                     "layout, rows filtered after the align file).")
    files = [(kind, quote(os.path.relpath(path, out)))
             for kind, path in sorted(run.files.items()) if path.is_file()]
    side_rows = [(label, [str(run.side(r).get(key, "")) for r in ("src", "tgt")])
                 for label, key in _SIDE_ROWS if any(key in run.side(r) for r in ("src", "tgt"))]
    modality = f"{run.modality('src')} → {run.modality('tgt')}"
    return Page(title=f"speechmine report: {names[0]} → {names[1]}",
                subtitle=f"{modality}, {scan.scores.size} pairs at threshold "
                         f"{run.threshold:g} · {run.root}",
                summary=_summary(run, scan), sides=side_rows, side_names=names,
                gold=gold_rows, figures=figures, bands=band_views, notes=notes, files=files,
                config_yaml=read_config_yaml(run),
                run_json=json.dumps(run.info, indent=2, ensure_ascii=False),
                has_gold_column=view is not None)
