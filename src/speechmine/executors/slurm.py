"""``slurm``: each stage's jobs as submitit job arrays (``pip install 'speechmine[slurm]'``).

One array per stage, chunked to ``launcher.max_array_size`` tasks (submitit submits whatever
it is given as one array, and SLURM refuses arrays above its ``MaxArraySize``), at most
``launcher.array_parallelism`` tasks running. Resources come from
``launcher.resources_for(stage)`` plus ``partition``, ``account``, ``qos``, ``constraint``,
extra ``#SBATCH`` options (``launcher.sbatch``) and submitit parameters
(``launcher.update_parameters``). Nothing is hard-coded.

Failures: a task that raises an expected error (bad input) comes back as a value and stops
the run with that error; a task that crashes, is killed or runs out of memory is resubmitted
up to ``max_retries`` times, then the run stops with its log path and the last lines of its
stderr. A task that is preempted or reaches its time limit is requeued by submitit
(:class:`SlurmTask` is checkpointable) and resumes: its stage output is written through the
stage contract, so the new attempt finds what the old one finished and redoes the rest.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import progress
from ..config import LauncherConfig, Resources
from .base import (
    Attempts,
    Job,
    Ledger,
    Plugins,
    failure,
    plugin_encoders,
    retryable,
    run_logged,
)

log = logging.getLogger(__name__)

#: seconds between two looks at the running tasks (result files; sacct every few looks)
POLL_S = 1.0
#: looks between two forced sacct queries (submitit otherwise backs off to a minute)
FORCE_EVERY = 5


def _submitit() -> Any:
    try:
        import submitit
    except ImportError as exc:
        from ..config import ConfigError

        raise ConfigError("launcher.cluster=slurm needs submitit: "
                          "pip install 'speechmine[slurm]'") from exc
    return submitit


class _Expected:
    """An expected error raised by a task, returned as a value (see module doc)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_Checkpointable: Any
try:  # the slurm extra; SlurmExecutor says how to install it when it is missing
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover - exercised by an install without the extra
    _Checkpointable = object


class SlurmTask(_Checkpointable):
    """Runs one job on a node. Checkpointable: when SLURM preempts the task or its time runs
    out, submitit requeues it with the same arguments (the stage resumes from disk)."""

    def __call__(self, job: Job, ledger_root: str, attempt: int,
                 plugins: Plugins | None = None) -> Any:
        if plugins is not None:
            plugins.install()  # encoders registered in the driver
        where = {"slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                 "slurm_array": f"{os.environ.get('SLURM_ARRAY_JOB_ID')}_"
                                f"{os.environ.get('SLURM_ARRAY_TASK_ID')}"}
        try:
            return run_logged(job, None, Ledger(Path(ledger_root), "slurm"), attempt, where)
        except Exception as exc:
            if retryable(exc):
                raise
            return _Expected(exc)


class SlurmExecutor:
    """submitit job arrays (see module doc). ``cluster="local"`` runs the same machinery
    with submitit's local cluster (subprocesses), which tests use without SLURM."""

    name = "slurm"

    def __init__(self, cfg: LauncherConfig, work: Path, cluster: str = "slurm",
                 show_progress: bool = True) -> None:
        self.cfg, self.work, self.cluster = cfg, Path(work), cluster
        self.ledger = Ledger(work, self.name)
        self.logs = Path(cfg.log_dir) if cfg.log_dir else self.work / "logs" / "slurm"
        self.show_progress = show_progress
        _submitit()
        self._task = SlurmTask()

    def parameters(self, stage: str, resources: Resources) -> dict[str, Any]:
        """submitit parameters of ``stage``'s array."""
        c = self.cfg
        params: dict[str, Any] = {
            "name": f"speechmine-{stage}", "timeout_min": resources.timeout_min,
            "cpus_per_task": resources.cpus, "mem_gb": resources.mem_gb,
            "slurm_array_parallelism": c.array_parallelism}
        if resources.gpus:
            params["gpus_per_node"] = resources.gpus
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(c, key):
                params[f"slurm_{key}"] = getattr(c, key)
        if c.sbatch:
            params["slurm_additional_parameters"] = {k: ("" if v is None else v)
                                                     for k, v in c.sbatch.items()}
        params.update(c.update_parameters)
        return params

    def run(self, stage: str, jobs: Sequence[Job], resources: Resources) -> list[Any]:
        if not jobs:
            return []
        submitit = _submitit()
        ex = submitit.AutoExecutor(folder=str(self.logs / stage / "%j"), cluster=self.cluster)
        ex.update_parameters(**self.parameters(stage, resources))
        attempts = Attempts(self.cfg.max_retries)
        results: dict[int, Any] = {}
        running: dict[int, Any] = {}
        todo = list(range(len(jobs)))
        bar = progress.bar(total=len(jobs), desc=f"{stage} (SLURM jobs)", unit="job",
                           disable=not self.show_progress)
        looks = 0
        try:
            with bar:
                while len(results) < len(jobs):
                    if todo:
                        running.update(self._submit(ex, stage, jobs, todo, attempts))
                        todo = []
                    time.sleep(POLL_S)
                    looks += 1
                    force = looks % FORCE_EVERY == 0
                    for i, handle in list(running.items()):
                        if not handle.done(force_check=force):
                            continue
                        del running[i]
                        if self._collect(jobs[i], i, handle, results, attempts):
                            bar.update(1)
                        else:
                            todo.append(i)
        except BaseException:
            for handle in running.values():
                try:
                    handle.cancel(check=False)
                except Exception:  # cancelling is best effort
                    pass
            raise
        return [results[i] for i in range(len(jobs))]

    def _submit(self, ex: Any, stage: str, jobs: Sequence[Job], todo: list[int],
                attempts: Attempts) -> dict[int, Any]:
        out: dict[int, Any] = {}
        size = self.cfg.max_array_size
        for c0 in range(0, len(todo), size):
            chunk = todo[c0:c0 + size]
            numbers = {i: attempts.start(i) for i in chunk}
            plugins = plugin_encoders()
            with ex.batch():
                handles = [ex.submit(self._task, jobs[i], str(self.work), numbers[i], plugins)
                           for i in chunk]
            for i, h in zip(chunk, handles):
                out[i] = h
                self.ledger.record(jobs[i], "queued", attempt=numbers[i], job_id=h.job_id,
                                   log=str(h.paths.stderr))
            log.info("%s: submitted %d task(s) as job array %s", stage, len(chunk),
                     handles[0].job_id.split("_")[0])
        return out

    def _collect(self, job: Job, i: int, handle: Any, results: dict[int, Any],
                 attempts: Attempts) -> bool:
        """A finished task: its result (True), or retry it (False), or raise."""
        stderr = str(handle.paths.stderr)
        try:
            value = handle.result()
        except Exception as exc:  # submitit: the task raised, was killed or cancelled
            why = str(exc).strip().splitlines()
            short = why[0] if why else type(exc).__name__
            if not attempts.again(i):
                self.ledger.record(job, "failed", attempt=attempts.count[i], log=stderr,
                                   job_id=handle.job_id, error=short)
                raise failure(job, attempts.count[i], f"SLURM job {handle.job_id}: {short}",
                              stderr) from None
            log.warning("job %s (SLURM %s) failed: %s; resubmitting (attempt %d of %d)",
                        job.label, handle.job_id, short, attempts.count[i] + 1,
                        self.cfg.max_retries + 1)
            return False
        if isinstance(value, _Expected):
            raise value.exc
        results[i] = value
        return True

    def close(self) -> None:
        pass
