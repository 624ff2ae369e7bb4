"""A finished run's files, found and read for the report.

A run folder holds ``run.json`` (written last: its presence marks a finished run) and the
files it lists under ``outputs``: bitext, bimeta, align, rejects, config. The paths in
``run.json`` are absolute; a folder moved or copied elsewhere is read from where it is now
(paths are taken relative to the folder that held ``run.json``).

Two layouts (``output.layout``), told apart by the align file's arrays:

* ``speechmine``: ``align.npz`` with ``scores``/``src_ids``/``tgt_ids``/``direction``, row
  ``i`` = bitext row ``i``; bitext rows plain tab-separated;
* ``stopes``: mine_indexes' ``src_idx``/``trg_idx``/``scores`` (every candidate past the
  threshold, before ``max_score`` and text dedup, so not always row for row); bitext rows
  through ``csv`` (quoted fields, ``\\r\\n``), empty meta columns without meta files.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..types import InputError

RUN_JSON = "run.json"


class ReportError(InputError):
    """A folder that holds no finished run, or a run file that cannot be read: one line
    naming the file (exit code 2, like bad input)."""


@dataclass(frozen=True)
class Row:
    """One mined pair as the bitext/bimeta files give it (``index``: 0-based bitext row)."""

    index: int
    score: float
    src: str
    tgt: str
    src_meta: str
    tgt_meta: str
    direction: str


@dataclass(frozen=True)
class RunFiles:
    """Where a finished run's files are, and what ``run.json`` says about it."""

    root: Path
    info: dict[str, Any]
    files: dict[str, Path]
    layout: str

    @property
    def threshold(self) -> float:
        return float(self.info.get("threshold", self.info.get("mine", {}).get("threshold", 0)))

    def side(self, role: str) -> dict[str, Any]:
        """``counts.src``/``counts.tgt`` of run.json (name, lang, modality, encoder, counts)."""
        side: dict[str, Any] = self.info.get("counts", {}).get(role, {})
        return side

    def modality(self, role: str) -> str:
        return str(self.side(role).get("modality", "text"))

    def name(self, role: str) -> str:
        return str(self.side(role).get("name", role))


def _runs_below(folder: Path) -> list[str]:
    """Sub-folders (one or two levels down) that hold a run.json, for the error message."""
    found = sorted({p.parent.relative_to(folder).as_posix()
                    for pattern in (f"*/{RUN_JSON}", f"*/*/{RUN_JSON}")
                    for p in folder.glob(pattern)
                    if "work" not in p.relative_to(folder).parts})
    return found[:10]


def open_run(folder: str | Path) -> RunFiles:
    """The finished run in ``folder``; a :class:`ReportError` naming the problem otherwise."""
    root = Path(folder)
    if not root.exists():
        raise ReportError(f"{root}: no such folder")
    if not root.is_dir():
        raise ReportError(f"{root}: not a folder (give the run's output_dir)")
    run_json = root / RUN_JSON
    if not run_json.is_file():
        below = _runs_below(root)
        if below:
            raise ReportError(f"{root}: no {RUN_JSON} here, it is not a run folder; runs "
                              f"inside: {', '.join(below)} (report one of them)")
        raise ReportError(f"{root}: no {RUN_JSON}: not a finished speechmine run (a run "
                          f"writes {RUN_JSON} last; rerun `speechmine mine` to finish one)")
    try:
        info = json.loads(run_json.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"{run_json}: not a valid run.json ({exc})") from None
    outputs = info.get("outputs") if isinstance(info, dict) else None
    if not isinstance(outputs, dict) or "bitext" not in outputs or "bimeta" not in outputs:
        raise ReportError(f"{run_json}: no 'outputs' with bitext and bimeta: not a run.json "
                          "written by speechmine")
    # the folder may have moved since the run: keep each path relative to the run.json
    old_root = Path(str(outputs.get("run", run_json))).parent
    files: dict[str, Path] = {}
    for kind, value in outputs.items():
        path = Path(str(value))
        try:
            files[kind] = root / path.relative_to(old_root)
        except ValueError:
            files[kind] = path
    for kind in ("bitext", "bimeta"):
        if not files[kind].is_file():
            raise ReportError(f"{files[kind]}: {kind} file listed in {run_json} not found")
    layout = "speechmine"
    align = files.get("align")
    if align is not None and align.is_file():
        with np.load(align) as npz:
            layout = "stopes" if "src_idx" in npz.files else "speechmine"
    return RunFiles(root=root, info=info, files=files, layout=layout)


def _open_rows(path: Path, layout: str) -> Iterator[list[str]]:
    """The fields of each row of a .tsv.gz output (csv-quoted in stopes' layout)."""
    with gzip.open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        if layout == "stopes":
            yield from csv.reader(text, delimiter="\t")
        else:
            for line in text:
                yield line.rstrip("\r\n").split("\t")


def iter_rows(run: RunFiles) -> Iterator[Row]:
    """Every mined pair, bitext and bimeta read side by side (one pass, constant memory)."""
    bitext, bimeta = run.files["bitext"], run.files["bimeta"]
    texts, metas = _open_rows(bitext, run.layout), _open_rows(bimeta, run.layout)
    for i, t in enumerate(texts):
        m = next(metas, None)
        if m is None:
            raise ReportError(f"{bimeta}: {i} rows, fewer than {bitext}")
        if len(t) < 3:
            raise ReportError(f"{bitext}:{i + 1}: expected score<TAB>src<TAB>tgt, got "
                              f"{len(t)} field(s)")
        try:
            score = float(t[0])
        except ValueError:
            raise ReportError(f"{bitext}:{i + 1}: score {t[0][:20]!r} is not a number") from None
        m = m + [""] * (4 - len(m))
        yield Row(index=i, score=score, src=t[1], tgt=t[2], src_meta=m[1], tgt_meta=m[2],
                  direction=m[3])
    if next(metas, None) is not None:
        raise ReportError(f"{bimeta}: more rows than {bitext}")


def read_align(run: RunFiles) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(scores float64, src int64, tgt int64)`` of the align file (both layouts), or None
    when the run has none."""
    path = run.files.get("align")
    if path is None or not path.is_file():
        return None
    with np.load(path) as npz:
        src_key, tgt_key = ("src_idx", "trg_idx") if run.layout == "stopes" \
            else ("src_ids", "tgt_ids")
        try:
            return (npz["scores"].astype(np.float64), npz[src_key].astype(np.int64),
                    npz[tgt_key].astype(np.int64))
        except KeyError as exc:
            raise ReportError(f"{path}: no {exc} array: not an align file of this "
                              "layout") from None


def read_config_yaml(run: RunFiles) -> str:
    """config.yaml as written by the run ('' when absent)."""
    path = run.files.get("config")
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path else ""
    except OSError:
        return ""
