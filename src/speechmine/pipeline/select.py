"""Select: margin scores of the neighbours, pairs chosen by the mining rule, ids mapped back
to global ids (line numbers), overlapping speech windows cleaned up. Outputs ``align.npz``
(the pairs) and ``candidates.npz``: every query's best candidate and its score in both
directions, before the threshold (``fwd_src``/``fwd_tgt``/``fwd_score`` (n,) and
``bwd_tgt``/``bwd_src``/``bwd_score`` (m,), global ids, -1 for an empty candidate), so that
``speechmine eval`` can score any threshold without mining again."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MineConfig, RunConfig, result_view
from ..fusion import Space, fused_candidates
from ..io.atomic import write_npz
from ..margin import score_candidates
from ..select import select_candidates
from ..types import Alignment, Neighbours
from .side import Side
from .stage import Stage, kill_point, run_stage

log = logging.getLogger(__name__)

SELECT_VERSION = 3
CANDIDATES = "candidates.npz"


def select_rule(cfg: RunConfig) -> MineConfig:
    """The rule the select stage applies: the config's, but in stopes' layout the upper end
    of the window (``score_max``) is applied when writing, after stopes' align file."""
    if cfg.output.layout == "stopes":
        return dataclasses.replace(cfg.mine, max_score=None)
    return cfg.mine


def select_stage(cfg: RunConfig, src: Side, tgt: Side, knn: Stage,
                 fusion: Mapping[str, Any] | None = None, upstream: Sequence[str] = ()
                 ) -> Stage:
    """The mined pairs: the mining rule and threshold window over the kNN output. An
    encoder ensemble adds its ``fusion`` (rule, weights) and, under ``margin_mean``, every
    member's kNN key as ``upstream`` (:mod:`.ensemble`)."""
    rule = result_view(select_rule(cfg))
    del rule["fusion"]  # read by ensembles only, which declare it under "fusion"
    config: dict[str, Any] = {
        "mine": rule,
        "overlap": [bool(s.cfg.segment and s.cfg.segment.overlap_windows) for s in (src, tgt)]}
    if fusion is not None:
        config["fusion"] = dict(fusion)
    return Stage("select", SELECT_VERSION, config=config, upstream=list(upstream) or [knn.key],
                 packages=("numpy",))


def run_select(stage: Stage, work: Path, cfg: RunConfig, src: Side, tgt: Side,
               fwd: Neighbours, bwd: Neighbours,
               spaces: Callable[[], Sequence[Space]] | None = None) -> Alignment:
    """Load or compute the pairs inside the threshold window (global ids). ``spaces``: an
    ensemble's members under ``margin_mean`` fusion (loaded only when computing); their
    fused margins replace those of ``fwd``/``bwd``."""

    rule = select_rule(cfg)

    def compute(folder: Path) -> None:
        # With fp16_distances the margin applies stopes' float16 rounding itself.
        cands = fused_candidates(spaces(), rule) if spaces is not None else \
            score_candidates(fwd, bwd, rule)
        al = select_candidates(cands, rule)
        f_score, f_tgt, b_score, b_src = cands
        s_kept, t_kept = src.inputs.kept, tgt.inputs.kept
        write_npz(folder / CANDIDATES,
                  fwd_src=s_kept, fwd_tgt=np.where(f_tgt >= 0, t_kept[f_tgt], -1),
                  fwd_score=f_score.astype(np.float32),
                  bwd_tgt=t_kept, bwd_src=np.where(b_src >= 0, s_kept[b_src], -1),
                  bwd_score=b_score.astype(np.float32))
        al = Alignment(al.scores, src.inputs.kept[al.src], tgt.inputs.kept[al.tgt],
                       al.direction)
        for side, which in ((src, "src"), (tgt, "tgt")):
            if side.cfg.segment is not None and side.cfg.segment.overlap_windows:
                al = _drop_overlapping(al, side, which)
        kill_point("select")
        write_npz(folder / "align.npz", scores=al.scores, src_ids=al.src, tgt_ids=al.tgt,
                  direction=al.direction)

    def load(folder: Path) -> Alignment:
        with np.load(folder / "align.npz") as z:
            return Alignment(z["scores"], z["src_ids"], z["tgt_ids"], z["direction"])

    al, _ = run_stage(stage, work, compute, load)
    return al


def _drop_overlapping(al: Alignment, side: Side, which: str) -> Alignment:
    """Overlapping candidate windows: keep the best pair of each stretch of audio."""
    from ..io.speech_inputs import segments_of
    from ..segment import remove_overlaps

    gids = al.src if which == "src" else al.tgt
    spans: dict[int, tuple[str, int, int]] = {}
    offsets = side.inputs.offsets
    for s, shard in enumerate(side.inputs.shards):
        in_shard = np.unique(gids[(gids >= offsets[s]) & (gids < offsets[s + 1])])
        for seg in segments_of(shard, in_shard - offsets[s], side.cfg.data.manifest_units):
            spans[int(offsets[s] + seg.lineno - 1)] = (seg.path, seg.start, seg.end)
    keep = remove_overlaps(al.scores, [spans[int(g)] for g in gids],
                           ids=list(zip(al.src.tolist(), al.tgt.tolist())))
    log.info("overlap clean-up on %s: kept %d of %d pairs", side.cfg.name, len(keep), len(al))
    return al.take(keep)
