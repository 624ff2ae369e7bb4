"""Run the whole pipeline: inputs → embed → knn → mine → outputs, resumable.

:func:`run` takes a validated :class:`~speechmine.config.RunConfig`, locks the output
directory, reuses every stage output already on disk and writes the rest atomically, so a
rerun after a crash or kill redoes only what is missing and ends with the same bytes.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ..config import RunConfig, resolved_yaml
from ..io.atomic import atomic_open, clean_stale_tmp, write_json
from ..margin import Alignment
from .cache import OutputLock
from .outputs import write_outputs, write_rejects
from .stages import Side, stage_embed, stage_inputs, stage_knn, stage_mine

log = logging.getLogger(__name__)

__all__ = ["run", "RunResult"]


@dataclass
class RunResult:
    """What a run produced: output paths, the pairs, per-stage counts and timings."""

    outputs: dict[str, str]
    alignment: Alignment
    sides: dict[str, Side]
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.0


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("speechmine", "numpy", "faiss-cpu", "omegaconf"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - a missing distribution is just not reported
            pass
    return out


def run(cfg: RunConfig) -> RunResult:
    """Run (or resume) the mining described by ``cfg``; see module doc."""
    from ..executors import make_executor

    out_dir = Path(cfg.output_dir)
    work = Path(cfg.work_dir) if cfg.work_dir else out_dir / "work"
    timings: dict[str, float] = {}
    # the work dir is locked too (it may be shared through work_dir): no two runs write or
    # clean the same stage files
    with OutputLock(out_dir), OutputLock(work):
        # outputs sit at the top of output_dir; stage files under the (locked) work dir
        stale = clean_stale_tmp(work) + clean_stale_tmp(out_dir, recursive=False)
        if stale:
            log.info("removed %d temporary file(s) left by an interrupted run", stale)
        for item in cfg.ignored:
            log.info("ignored stopes setting: %s", item)
        for item in cfg.notes:
            log.info("%s", item)
        executor = make_executor(cfg.launcher, work)

        t = time.perf_counter()
        src, tgt = stage_inputs(cfg, "src", work), stage_inputs(cfg, "tgt", work)
        timings["inputs"] = time.perf_counter() - t
        t = time.perf_counter()
        embedded = stage_embed(cfg, [src, tgt], work, executor)
        timings["embed"] = time.perf_counter() - t
        # after embedding: speech segments are validated while their audio is decoded
        rejects = src.inputs.rejects + tgt.inputs.rejects
        write_rejects(out_dir / "rejects.tsv", rejects)
        if rejects:
            log.warning("%d input item(s) skipped, see %s", len(rejects),
                        out_dir / "rejects.tsv")

        t = time.perf_counter()
        fwd, bwd = stage_knn(cfg, src, tgt, work)
        timings["knn"] = time.perf_counter() - t

        t = time.perf_counter()
        al = stage_mine(cfg, src, tgt, fwd, bwd)
        timings["mine"] = time.perf_counter() - t

        t = time.perf_counter()
        outputs = write_outputs(cfg.output_prefix(), al, src, tgt)
        timings["write"] = time.perf_counter() - t

        counts = {
            side.role: {"name": side.cfg.name, "lang": side.cfg.lang,
                        "modality": side.cfg.modality, "shards": len(side.inputs.shards),
                        "lines": side.inputs.total, "embedded": side.n,
                        "blank": side.inputs.blank, "duplicates": side.inputs.duplicates,
                        "rejected": len(side.inputs.rejects),
                        "shards_embedded_this_run": embedded[side.role],
                        "encoder": side.cfg.encoder.name}
            for side in (src, tgt)}
        counts["knn"] = {"k": fwd.k, "fwd_queries": len(fwd.sims), "bwd_queries": len(bwd.sims)}
        counts["pairs"] = len(al)
        # written with the outputs it produced, so a failed rerun with another config never
        # leaves a config.yaml that disagrees with the files beside it
        with atomic_open(out_dir / "config.yaml") as fh:
            fh.write(resolved_yaml(cfg))
        outputs["rejects"] = str(out_dir / "rejects.tsv")
        outputs["config"] = str(out_dir / "config.yaml")
        outputs["run"] = str(out_dir / "run.json")
        write_json(out_dir / "run.json", {
            "config_hash": cfg.fingerprint(), "config_file": cfg.source_file,
            "mine": dataclasses.asdict(cfg.mine), "index": dataclasses.asdict(cfg.index),
            "threshold": cfg.mine.threshold, "max_score": cfg.mine.max_score,
            "counts": counts, "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "versions": _versions(), "outputs": outputs, "ignored_settings": list(cfg.ignored),
        })
        return RunResult(outputs=outputs, alignment=al, sides={"src": src, "tgt": tgt},
                         counts=counts, timings=timings, threshold=cfg.mine.threshold)
