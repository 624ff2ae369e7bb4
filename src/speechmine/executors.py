"""Executors: where stage work runs. Stage code only calls ``submit(fn, *args)``.

* ``local`` (default) and ``debug``: in this process, one job after the other.
* ``slurm``: one SLURM job per call through submitit (``pip install 'speechmine[slurm]'``).

Cluster resources never reach the algorithm code; they live in ``LauncherConfig``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from .config import LauncherConfig

log = logging.getLogger(__name__)


class InlineExecutor:
    """Runs each job immediately in this process; returns a completed Future."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            fut.set_exception(exc)
        return fut


class SlurmExecutor:
    """submitit-backed executor: each submit() becomes one SLURM job."""

    def __init__(self, cfg: LauncherConfig, log_dir: Path, cluster: str = "slurm") -> None:
        try:
            import submitit
        except ImportError as exc:
            raise RuntimeError("launcher.cluster=slurm needs submitit: "
                               "pip install 'speechmine[slurm]'") from exc
        # cluster="local" runs each job in a subprocess through the same submitit machinery
        # (jobs pickled, results read back from files): how the tests exercise this path
        self._ex = submitit.AutoExecutor(folder=str(cfg.log_dir or log_dir), cluster=cluster)
        params: dict[str, Any] = {"timeout_min": cfg.timeout_min}
        if cfg.partition:
            params["slurm_partition"] = cfg.partition
        self._ex.update_parameters(**params)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._ex.submit(fn, *args, **kwargs)


def make_executor(cfg: LauncherConfig, work_dir: Path) -> Any:
    if cfg.cluster in ("local", "debug"):
        return InlineExecutor()
    return SlurmExecutor(cfg, work_dir / "slurm_logs")
