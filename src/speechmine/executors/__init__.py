"""Executors: where the jobs of a stage run. The pipeline hands each stage's jobs to
``executor.run(stage, jobs, resources)``; executors differ only in where the calls happen.

* ``local`` (default): a pool of worker processes on this machine (:mod:`.local`);
* ``debug``: every job in this process, one after the other (tests, pdb);
* ``slurm``: submitit job arrays, one per stage (:mod:`.slurm`).

Cluster resources (``launcher.*``) never reach the algorithm code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import LauncherConfig
from .base import Executor, Job, JobFailed, Ledger
from .local import DebugExecutor, LocalExecutor

__all__ = ["Executor", "Job", "JobFailed", "Ledger", "DebugExecutor", "LocalExecutor",
           "make_executor"]


def make_executor(cfg: LauncherConfig, work_dir: Path, show_progress: bool = True) -> Any:
    """The executor ``launcher.cluster`` names, its logs and ledger under ``work_dir``."""
    if cfg.cluster == "debug":
        return DebugExecutor(work_dir, cfg.max_retries, show_progress)
    if cfg.cluster == "local":
        return LocalExecutor(work_dir, cfg.max_retries, cfg.workers, show_progress)
    from .slurm import SlurmExecutor

    return SlurmExecutor(cfg, work_dir, show_progress=show_progress)
