"""A finished run's pairs, read back one :class:`Pair` at a time for the exporters.

What a run folder holds (see :mod:`speechmine.pipeline.outputs`): ``run.json`` (written last:
a folder without it holds no finished run), the bitext and bimeta rows, the align file and the
resolved ``config.yaml``. Two layouts:

* speechmine's: ``<src>-<tgt>.TH-<t>.{bitext,bimeta}.tsv.gz`` (tab-separated, tabs inside a
  sentence already spaces) and ``….align.npz`` (``src_ids``/``tgt_ids``), row for row;
* stopes': under ``mine.<data_version>/``, rows through ``csv`` (quoted), and stopes'
  mine_indexes align file (``src_idx``/``trg_idx``), which holds every candidate past the
  threshold, *before* mine_sentences' ``score_max`` window and ``dedup_bitexts``: the rows of
  the bitext are found in it by applying the same window and (when the run deduplicated) the
  same dedup rule, on the texts read back from the inputs.

Speech sides: the exact segment (audio file, start and end in 16 kHz samples) of each global
id is read from the run's manifests (found through its config, counted again, the line
compared with the bitext column), not parsed back from the rounded seconds of bimeta.
Everything that does not match what the run wrote is an :class:`ExportError` saying the
inputs changed since the run.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np

from ..types import AudioSegment, InputError, SideInputs

log = logging.getLogger(__name__)

RUN_JSON = "run.json"
ROLES = ("src", "tgt")


class ExportError(InputError):
    """A run folder cannot be exported as asked (the message names the file and why)."""


@dataclass(frozen=True)
class SideInfo:
    """One side of the run: ``role`` src/tgt, its lang_configs ``name``, ``lang`` and
    ``modality`` (text | speech)."""

    role: str
    name: str
    lang: str
    modality: str


@dataclass(frozen=True)
class Pair:
    """One mined pair, in output order (``row`` 0-based).

    ``score``: the margin score as stored (a float32 value); ``ids``: global ids (src, tgt);
    ``direction``: as bimeta writes it (src2tgt/tgt2src/both; stopes' layout: fwd/bwd);
    ``texts``: the bitext columns (speech: the manifest line); ``metas``: the bimeta columns
    (None when the run wrote none); ``segments``: the speech segment of each speech side.
    """

    row: int
    score: float
    ids: tuple[int, int]
    direction: str
    texts: tuple[str, str]
    metas: tuple[str | None, str | None]
    segments: tuple[AudioSegment | None, AudioSegment | None]


def clean(text: str) -> str:
    """A text as speechmine's layout writes it (tabs and line breaks become spaces)."""
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")


class MinedRun:
    """The finished run in ``folder`` (raises :class:`ExportError` when there is none)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        #: input texts of the ids stopes' dedup was replayed on (src, tgt), else None
        self._replayed: tuple[dict[int, str], dict[int, str]] | None = None
        if not self.folder.is_dir():
            raise ExportError(f"{self.folder}: not a folder (give the output_dir of a run)")
        info_path = self.folder / RUN_JSON
        if not info_path.is_file():
            raise ExportError(
                f"{self.folder}: no {RUN_JSON}, so this folder holds no finished speechmine run "
                f"({RUN_JSON} is written last; rerun `speechmine mine` on its config to finish "
                "it)")
        try:
            self.info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
            outputs = self.info["outputs"]
            counts = self.info["counts"]
            self.sides = tuple(SideInfo(role, str(counts[role]["name"]),
                                        str(counts[role]["lang"]),
                                        str(counts[role]["modality"])) for role in ROLES)
            files = {kind: self._local(outputs[kind]) for kind in ("bitext", "bimeta", "align")}
        except (ValueError, KeyError, TypeError) as exc:
            raise ExportError(f"{info_path}: not a speechmine run.json ({exc!r})") from None
        for path in files.values():
            if not path.is_file():
                raise ExportError(f"{path}: missing, though {info_path} lists it")
        self.bitext, self.bimeta, self.align = files["bitext"], files["bimeta"], files["align"]
        with np.load(self.align, allow_pickle=False) as z:
            self._align = {k: z[k] for k in z.files}
        if "src_ids" in self._align:
            self.layout = "speechmine"
        elif "src_idx" in self._align:
            self.layout = "stopes"
        else:
            raise ExportError(f"{self.align}: neither speechmine's nor stopes' align file "
                              f"(arrays {sorted(self._align)})")

    def _local(self, recorded: str) -> Path:
        """A path run.json records, inside this folder even when the folder was moved."""
        rel = Path(recorded).relative_to(Path(self.info["outputs"]["run"]).parent)
        return self.folder / rel

    @property
    def prefix(self) -> Path:
        """``<folder>/[mine.<v>/]<src>-<tgt>.TH-<t>``: where default export names go."""
        return self.bitext.with_name(self.bitext.name.removesuffix(".bitext.tsv.gz"))

    @property
    def speech_sides(self) -> list[SideInfo]:
        return [s for s in self.sides if s.modality == "speech"]

    # -------------------------------------------------------------------- inputs (lazily)

    @cached_property
    def config(self) -> Any:
        """The run's resolved config (``config.yaml``), for its inputs."""
        from ..config import load_config

        path = self.folder / "config.yaml"
        if not path.is_file():
            raise ExportError(f"{path}: missing; it names the run's inputs, which this export "
                              "needs (speech segments or stopes' deduplicated rows)")
        return load_config(path)

    def side_inputs(self, role: str) -> SideInputs:
        """A side's shards and their line counts, checked against what the run counted."""
        return self._inputs[role]

    @cached_property
    def _inputs(self) -> dict[str, SideInputs]:
        from ..io.text import count_lines
        from ..pipeline.inputs import MANIFEST, discover

        cfg = self.config
        work = Path(cfg.work_dir) if cfg.work_dir else self.folder / "work"
        out: dict[str, SideInputs] = {}
        for side in self.sides:
            side_cfg = cfg.side(side.role)
            if side_cfg.segment is not None:  # manifests the run's segment stage wrote
                keys = self.info["keys"]
                n = sum(1 for k in keys if k.startswith(f"{side.role}.segment."))
                shards = [str(work / "segment" / keys[f"{side.role}.segment.{i}"] / MANIFEST)
                          for i in range(n)]
            else:
                shards = discover(side_cfg)[0]
            sizes = [count_lines(s) for s in shards]
            want = int(self.info["counts"][side.role]["lines"])
            if sum(sizes) != want:
                raise ExportError(
                    f"side {side.name}: its {len(shards)} shard(s) now hold {sum(sizes)} lines, "
                    f"the run read {want}: the inputs changed since the run (rerun "
                    "`speechmine mine`)")
            out[side.role] = SideInputs(shards=shards, sizes=sizes, kept=np.zeros(0, np.int64))
        return out

    def texts_of(self, role: str, ids: np.ndarray) -> dict[int, str]:
        """Input lines of global ``ids`` of one side (as the run read them)."""
        from ..io.text import read_lines_by_id

        return read_lines_by_id(self.side_inputs(role), ids)

    def segments_of(self, role: str, ids: np.ndarray) -> dict[int, AudioSegment]:
        """The manifest segment of each global id of a speech side."""
        from ..io.speech_inputs import segments_of

        inputs = self.side_inputs(role)
        units = self.config.side(role).data.manifest_units
        wanted = np.unique(ids)
        offsets = inputs.offsets
        out: dict[int, AudioSegment] = {}
        for s, shard in enumerate(inputs.shards):
            lo, hi = int(offsets[s]), int(offsets[s + 1])
            mine = wanted[(wanted >= lo) & (wanted < hi)]
            if len(mine):
                for gid, seg in zip(mine.tolist(), segments_of(shard, mine - lo, units)):
                    out[int(gid)] = seg
        return out

    # -------------------------------------------------------------------- pairs

    @cached_property
    def n_pairs(self) -> int:
        """Rows of the bitext: the pairs an export writes."""
        if self.layout == "speechmine":  # the align file is written row for row
            return len(self._align["scores"])
        return sum(1 for _ in self._read_rows(self.bitext, 3))

    def _rows_in_align(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores float32, src ids, tgt ids) of the bitext rows, in bitext order."""
        a = self._align
        if self.layout == "speechmine":
            return (a["scores"].astype(np.float32), a["src_ids"].astype(np.int64),
                    a["tgt_ids"].astype(np.int64))
        scores = a["scores"].astype(np.float32)
        src, tgt = a["src_idx"].astype(np.int64), a["trg_idx"].astype(np.int64)
        keep = np.arange(len(scores))
        max_score = self.info.get("max_score")
        if max_score is not None:  # mine_sentences' score_max window
            keep = keep[scores[keep] <= max_score]
        if self.info.get("mine", {}).get("dedup_texts") and len(keep) != self.n_pairs:
            keep = self._dedup(keep, src, tgt)
        return scores[keep], src[keep], tgt[keep]

    def _dedup(self, keep: np.ndarray, src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
        """The rows ``dedup_bitexts`` kept, by the writer's own rule on the input texts."""
        from ..pipeline.outputs import dedup_texts
        from ..types import Alignment

        s_text = self.texts_of("src", src[keep])
        t_text = self.texts_of("tgt", tgt[keep])
        self._replayed = (s_text, t_text)  # pairs() checks them against the bitext
        # the direction field travels through dedup_texts' take(): it carries row numbers
        al = Alignment(np.zeros(len(keep), np.float32), src[keep], tgt[keep], keep)
        return np.asarray(dedup_texts(al, s_text, t_text).direction, dtype=np.int64)

    def _read_rows(self, path: Path, width: int) -> Iterator[list[str]]:
        if self.layout == "stopes":
            csv.field_size_limit(sys.maxsize)  # a stopes row may hold a very long sentence
            with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
                for n, row in enumerate(csv.reader(fh, delimiter="\t"), 1):
                    yield self._check_width(row, width, path, n)
        else:
            with gzip.open(path, "rt", encoding="utf-8", newline="\n") as fh:
                for n, line in enumerate(fh, 1):
                    yield self._check_width(line.rstrip("\n").split("\t"), width, path, n)

    @staticmethod
    def _check_width(row: list[str], width: int, path: Path, n: int) -> list[str]:
        if len(row) != width:
            raise ExportError(f"{path}:{n}: {len(row)} columns, expected {width}")
        return row

    def _score_text(self, score: np.float32) -> str:
        """A score as the bitext prints it (speechmine: 6 decimals; stopes: numpy's str)."""
        return f"{float(score):.6f}" if self.layout == "speechmine" else str(score)

    def pairs(self) -> Iterator[Pair]:
        """Every pair in output order, checked against the align file and the inputs."""
        scores, src, tgt = self._rows_in_align()
        segs = {s.role: self.segments_of(s.role, ids)
                for s, ids in zip(self.sides, (src, tgt)) if s.modality == "speech"}
        rows = zip_longest(self._read_rows(self.bitext, 3), self._read_rows(self.bimeta, 4))
        n = 0
        for bt, bm in rows:
            if bt is None or bm is None or n >= len(scores):
                break
            if bt[0] != self._score_text(scores[n]) or bm[0] != bt[0]:
                raise ExportError(f"{self.bitext}:{n + 1}: score {bt[0]} where the align file "
                                  f"has {self._score_text(scores[n])}: the files are not of "
                                  "one run")
            ids = (int(src[n]), int(tgt[n]))
            seg_pair = tuple(segs[s.role][g] if s.modality == "speech" else None
                             for s, g in zip(self.sides, ids))
            for i, (seg, text, gid) in enumerate(zip(seg_pair, bt[1:], ids)):
                now = seg.line if seg is not None else (
                    self._replayed[i].get(gid) if self._replayed else None)
                if now is not None and clean(now) != clean(text):
                    where = f"{seg.source}:{seg.lineno}" if seg is not None else "input line"
                    raise ExportError(
                        f"{self.sides[i].name} id {gid} ({where}) is now {now!r}, the run "
                        f"wrote {text!r}: the inputs changed since the run")
            yield Pair(row=n, score=float(str(scores[n])),  # the shortest decimal of the float32
                       ids=ids, direction=bm[3], texts=(bt[1], bt[2]),
                       metas=(bm[1] or None, bm[2] or None),
                       segments=(seg_pair[0], seg_pair[1]))
            n += 1
        else:
            if n == len(scores):
                return
        raise ExportError(f"{self.bitext}, {self.bimeta} and {self.align} do not hold the same "
                          f"number of rows (the bitext row {n + 1} has no counterpart)")
