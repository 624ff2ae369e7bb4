"""Evaluate a finished run, or a bare bitext file, against gold pairs (``speechmine eval``).

A run is scored twice:

* **at its threshold**: the pairs its output files hold (``align.npz`` ids, or the bitext's
  texts for a gold of sentence pairs; in stopes' layout the bitext rows, after its
  ``score_max`` window and text dedup);
* **at every threshold**: from ``<src>-<tgt>.candidates.npz``, every query's scored candidate
  in both directions (see :mod:`speechmine.pipeline.select`), without mining again. The run's
  retrieval rule (:func:`speechmine.select.select_pairs` with run.json's ``mine`` settings) is
  applied once with no lower bound; the pairs it keeps at a threshold ``t`` are exactly those
  of that list scoring ``≥ t``, because every rule decides a pair from higher-scoring pairs
  only: ``fwd``/``bwd``/``union``/``intersect`` pair by pair, ``max`` (LASER's greedy 1:1)
  best first, and so do the clean-ups replayed after it (overlapping speech windows, stopes'
  text dedup: best first too). One sort, then one sweep (:func:`~.scoring.pr_curve`) gives
  the curve and the BUCC best threshold. A run without a candidates file (an older
  speechmine) is swept over its mined pairs only (thresholds at or above its own).

A bare bitext (``score<TAB>src<TAB>tgt`` rows, ``.gz``/``.xz``/plain) is scored at its own
rows: the curve covers them only. A gold of ids needs the ids, which a bitext does not hold:
they come from the ``align.npz`` written next to it (speechmine's layout, row for row).

Readers reused: the report's (:mod:`speechmine.report.run_files`: run.json, file paths,
rows, align) and the export's (:class:`speechmine.export.reader.MinedRun`: input lines and
speech segments of global ids, stopes' rows).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..types import Alignment, InputError
from .gold import Gold, read_gold_pairs, text_keys
from .scoring import PRCurve, Scores, best_threshold, pr_curve, score_pairs, scores_at

log = logging.getLogger(__name__)

#: the file of every query's scored candidate, in run.json's ``outputs``
CANDIDATES_KIND = "candidates"


@dataclass(frozen=True)
class EvalResult:
    """What ``speechmine eval`` reports.

    source: the run folder or bitext file; kind: ``"run"`` or ``"bitext"``; threshold: the
    run's mining threshold (None for a bare bitext); at_threshold: the output's pairs against
    the gold; curve: P/R at every distinct score of ``swept``; best: ``(threshold, scores)``
    of highest F1, BUCC-style (midway between consecutive scores); swept: what the curve
    covers (``"candidates"``: any threshold, ``"mined pairs"``, ``"bitext rows"``); rule: the
    retrieval settings re-applied to the candidates; notes: caveats worth printing.
    """

    source: str
    kind: str
    gold: Gold
    threshold: float | None
    at_threshold: Scores
    curve: PRCurve
    best: tuple[float, Scores]
    swept: str
    rule: dict[str, Any] | None = None
    notes: tuple[str, ...] = field(default=())
    #: the scores are float32 (a run's): a threshold compares as the pipeline compares it,
    #: rounded to float32 (numpy compares a float32 array with a Python float in float32)
    float32: bool = True

    def at(self, threshold: float) -> Scores:
        """The swept pairs scoring ``≥ threshold`` against the gold: what a run with
        ``mine_threshold=threshold`` writes (one point of the curve, found by bisection:
        thresholds decrease along the curve)."""
        if self.float32:
            threshold = float(np.float32(threshold))
        t = self.curve.thresholds
        i = int(np.searchsorted(-t, -threshold, side="right")) - 1
        if i < 0:
            return Scores(mined=0, gold=self.curve.gold, correct=0)
        return self.curve.at(i)


def evaluate(target: str | Path, gold: str | Path | Gold, gold_format: str = "auto"
             ) -> EvalResult:
    """:func:`evaluate_run` for a folder, :func:`evaluate_bitext` for a file."""
    path = Path(target)
    if path.is_dir():
        return evaluate_run(path, gold, gold_format)
    if path.is_file():
        return evaluate_bitext(path, gold, gold_format)
    raise InputError(f"{path}: no such run folder or bitext file")


def _gold(gold: str | Path | Gold, gold_format: str) -> Gold:
    return gold if isinstance(gold, Gold) else read_gold_pairs(gold, gold_format)


# ------------------------------------------------------------------------------ candidates

def load_candidates(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a candidates file (see :mod:`speechmine.pipeline.select`); a file that
    is not one is an :class:`InputError` naming it."""
    want = ("fwd_src", "fwd_tgt", "fwd_score", "bwd_tgt", "bwd_src", "bwd_score")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in want if k not in z.files]
            if missing:
                raise InputError(f"{path}: no {', '.join(missing)} array(s): not a candidates "
                                 "file of speechmine")
            return {k: z[k] for k in want}
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: unreadable candidates file ({exc})") from None


def candidate_pairs(cands: dict[str, np.ndarray], retrieval: str,
                    max_score: float | None = None, dedup: bool = True) -> Alignment:
    """Every pair the retrieval rule keeps at some threshold (global ids, sorted by
    (-score, src, tgt)); at threshold ``t`` the rule keeps exactly the rows scoring ``≥ t``
    (see the module doc).

    ``cands``: :func:`load_candidates`' arrays, (n,) per source row and (m,) per target row;
    ``max_score``: the upper end of the run's window. Cost: one :func:`select_pairs` (sorts
    of n + m rows).
    """
    from ..select import RETRIEVALS, Retrieval, select_pairs

    src_ids, tgt_ids = cands["fwd_src"].astype(np.int64), cands["bwd_tgt"].astype(np.int64)
    # select_pairs works on row positions (row i of fwd is source i): map global ids there
    f_tgt = _positions(tgt_ids, cands["fwd_tgt"])
    b_src = _positions(src_ids, cands["bwd_src"])
    if retrieval not in RETRIEVALS:
        raise InputError(f"unknown retrieval {retrieval!r} (one of {', '.join(RETRIEVALS)})")
    al = select_pairs(cands["fwd_score"], f_tgt, cands["bwd_score"], b_src,
                      cast(Retrieval, retrieval), threshold=-np.inf,
                      max_score=np.inf if max_score is None else float(max_score), dedup=dedup)
    return Alignment(al.scores, src_ids[al.src], tgt_ids[al.tgt], al.direction)


def _positions(sorted_ids: np.ndarray, gids: np.ndarray) -> np.ndarray:
    """Positions of global ids among a side's sorted kept ids; -1 stays -1 (no candidate)."""
    gids = np.asarray(gids, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, gids)
    ok = (gids >= 0) & (pos < len(sorted_ids))
    ok[ok] = sorted_ids[pos[ok]] == gids[ok]
    if not ok[gids >= 0].all():
        raise InputError("candidates file: a candidate id is not among the side's rows: the "
                         "file is damaged")
    return np.where(ok, pos, -1)


# ------------------------------------------------------------------------------ runs

def evaluate_run(output_dir: str | Path, gold: str | Path | Gold, gold_format: str = "auto"
                 ) -> EvalResult:
    """Score the finished run in ``output_dir`` against ``gold`` (a gold file or a
    :class:`Gold`), at its threshold and at every threshold (see the module doc).

    Reads run.json, the align file (ids) or the bitext (texts), and the candidates file; a
    gold of sentence pairs also reads the input lines of the candidates' ids (through the
    run's config.yaml), as does replaying overlap clean-up (manifests) or stopes' text dedup.
    Memory: ~40 bytes a candidate, plus those input lines.
    """
    from ..report.run_files import open_run

    run = open_run(output_dir)
    g = _gold(gold, gold_format)
    inputs = _Inputs(run.root)
    s, a, b = _output_pairs(run, g, inputs)
    at_threshold = score_pairs(a, b, g.pairs)
    mine: dict[str, Any] = dict(run.info.get("mine") or {})
    notes: list[str] = []
    cand_path = run.files.get(CANDIDATES_KIND)
    rule: dict[str, Any] | None = None
    if cand_path is not None and cand_path.is_file():
        rule = {"retrieval": str(mine.get("retrieval", "max")),
                "max_score": run.info.get("max_score", mine.get("max_score")),
                "dedup": bool(mine.get("dedup", True))}
        al = candidate_pairs(load_candidates(cand_path), rule["retrieval"], rule["max_score"],
                             rule["dedup"])
        al = _replay_cleanups(al, run.info, mine, inputs, rule)
        ka, kb = _keys(al, g, inputs)
        curve = pr_curve(al.scores, ka, kb, g.pairs)
        swept = "candidates"
        again = scores_at(al.scores, ka, kb, g.pairs, run.threshold)
        if again != at_threshold:
            notes.append(f"the candidates cut at the run's threshold give {again}, the output "
                         f"files {at_threshold}: they are not of one run")
    else:
        curve = pr_curve(s, a, b, g.pairs)
        swept = "mined pairs"
        notes.append("no candidates file (a run written before runs kept them): the curve "
                     "covers the mined pairs only, thresholds at or above the run's; mine "
                     "again to keep every query's scored candidate")
    return EvalResult(source=str(run.root), kind="run", gold=g, threshold=run.threshold,
                      at_threshold=at_threshold, curve=curve, best=best_threshold(curve),
                      swept=swept, rule=rule, notes=tuple(notes))


class _Inputs:
    """The run's input lines and speech segments, read only when needed (the export's
    reader: it finds them through config.yaml and checks them against run.json)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._run: Any = None

    @property
    def run(self) -> Any:
        if self._run is None:
            from ..export.reader import MinedRun

            self._run = MinedRun(self.root)
        return self._run

    def texts(self, role: str, ids: np.ndarray) -> dict[int, str]:
        out: dict[int, str] = self.run.texts_of(role, np.unique(ids))
        return out


def _output_pairs(run: Any, g: Gold, inputs: _Inputs
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores, src keys, tgt keys)`` of the output's rows: global ids or text keys."""
    from ..report.run_files import iter_rows, read_align

    if g.format == "text":
        scores, src, tgt = [], [], []
        for row in iter_rows(run):
            scores.append(row.score)
            src.append(row.src)
            tgt.append(row.tgt)
        return np.asarray(scores, dtype=np.float64), text_keys(src), text_keys(tgt)
    if run.layout == "stopes":  # bitext rows ≠ align rows: the export's reader finds them
        rows = [(p.score, *p.ids) for p in inputs.run.pairs()]
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
        return arr[:, 0], arr[:, 1].astype(np.int64), arr[:, 2].astype(np.int64)
    align = read_align(run)
    if align is None:
        raise InputError(f"{run.root}: the run has no align file, which a gold of ids needs "
                         "(a gold of sentence pairs works without it)")
    return align


def _replay_cleanups(al: Alignment, info: dict[str, Any], mine: dict[str, Any],
                     inputs: _Inputs, rule: dict[str, Any]) -> Alignment:
    """What the run did after the retrieval rule, best first: overlap clean-up of speech
    windows, stopes' text dedup (both leave higher-scoring pairs alone, so they commute with
    any threshold)."""
    from ..segment import remove_overlaps

    config = None
    for role, ids_of in (("src", lambda x: x.src), ("tgt", lambda x: x.tgt)):
        if info.get("counts", {}).get(role, {}).get("modality") != "speech":
            continue
        config = config or inputs.run.config
        seg_cfg = config.side(role).segment
        if seg_cfg is None or not seg_cfg.overlap_windows:
            continue
        segs = inputs.run.segments_of(role, ids_of(al))
        keep = remove_overlaps(al.scores, [segs[int(i)] for i in ids_of(al)],
                               ids=list(zip(al.src.tolist(), al.tgt.tolist())))
        al = al.take(keep)
        rule[f"overlap_{role}"] = True
    if mine.get("dedup_texts"):
        from ..pipeline.outputs import dedup_texts

        al = dedup_texts(al, inputs.texts("src", al.src), inputs.texts("tgt", al.tgt))
        rule["dedup_texts"] = True
    return al


def _keys(al: Alignment, g: Gold, inputs: _Inputs) -> tuple[np.ndarray, np.ndarray]:
    """The pairs' keys in the gold's terms: ids as they are, or text keys of input lines."""
    if g.format == "ids":
        return al.src, al.tgt
    keys = []
    for role, ids in (("src", al.src), ("tgt", al.tgt)):
        texts = inputs.texts(role, ids)
        uniq = np.unique(ids)
        k = text_keys(texts[int(i)] for i in uniq.tolist())
        keys.append(k[np.searchsorted(uniq, ids)])
    return keys[0], keys[1]


# ------------------------------------------------------------------------------ bitext files

def evaluate_bitext(path: str | Path, gold: str | Path | Gold, gold_format: str = "auto"
                    ) -> EvalResult:
    """Score the rows of a bitext file (``score<TAB>src<TAB>tgt``; stopes' csv quoting
    inside a ``mine.*`` folder) against ``gold``: all rows, and every threshold over the
    rows' scores. A gold of ids takes the ids from the ``align.npz`` next to the file."""
    p = Path(path)
    g = _gold(gold, gold_format)
    scores, src, tgt = _bitext_rows(p)
    if g.format == "text":
        a, b = text_keys(src), text_keys(tgt)
    else:
        a, b = _sibling_ids(p, scores)
    curve = pr_curve(scores, a, b, g.pairs)
    return EvalResult(source=str(p), kind="bitext", gold=g, threshold=None,
                      at_threshold=score_pairs(a, b, g.pairs), curve=curve,
                      best=best_threshold(curve), swept="bitext rows", float32=False,
                      notes=("a bitext holds the pairs of one threshold: the curve covers "
                             "its rows only (give the run folder to sweep every candidate)",))


def _bitext_rows(path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """Scores and both text columns of a bitext file; errors name file and line."""
    from ..io.text import iter_decoded_lines

    stopes = path.parent.name.startswith("mine.")
    scores: list[float] = []
    src: list[str] = []
    tgt: list[str] = []
    for n, line in iter_decoded_lines(str(path), "fail", [], "a bitext is UTF-8"):
        assert line is not None
        if not line.strip():
            continue
        fields = next(csv.reader([line], delimiter="\t")) if stopes else line.split("\t")
        if len(fields) != 3:
            raise InputError(f"{path}:{n}: expected score<TAB>src<TAB>tgt, got {len(fields)} "
                             "field(s)")
        try:
            scores.append(float(fields[0]))
        except ValueError:
            raise InputError(f"{path}:{n}: score {fields[0][:20]!r} is not a number") from None
        src.append(fields[1])
        tgt.append(fields[2])
    return np.asarray(scores, dtype=np.float64), src, tgt


def _sibling_ids(path: Path, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global ids of a bitext's rows, from the align file written next to it."""
    name = path.name
    for suffix in (".bitext.tsv.gz", ".bitext.tsv"):
        if name.endswith(suffix):
            align = path.with_name(name[: -len(suffix)] + ".align.npz")
            break
    else:
        align = None
    hint = ("a gold of ids needs the pairs' ids, which a bitext does not hold; give the run "
            "folder, or a gold of sentence pairs (--gold-format text)")
    if align is None or not align.is_file():
        raise InputError(f"{path}: no align.npz next to it: {hint}")
    with np.load(align, allow_pickle=False) as z:
        if "src_ids" not in z.files:
            raise InputError(f"{align}: not row for row with {path.name} (stopes' layout): "
                             f"{hint}")
        s, a, b = z["scores"], z["src_ids"], z["tgt_ids"]
    if len(s) != len(scores) or not np.allclose(s, scores, atol=5e-6):
        raise InputError(f"{align}: its scores are not those of {path} row for row: {hint}")
    return a.astype(np.int64), b.astype(np.int64)
