"""``local`` (the default) and ``debug`` executors.

``local`` keeps a pool of worker processes for the whole run (started with ``spawn``: no
inherited locks or OpenMP state) and hands each idle worker the next job. Workers split the
machine: each gets ``cores / workers`` BLAS/OpenMP threads and, when GPUs are visible, one GPU
of its own (``CUDA_VISIBLE_DEVICES``); a stage with fewer jobs than workers (the exact kNN,
select, outputs: one job) gives each of its jobs ``cores / jobs`` threads instead, so a lone
job does not leave cores idle. A job's output and errors go to its log file
(``work/logs/<stage>/<label>.<attempt>.log``); its progress is forwarded to one bar per stage
in the driver. A worker that dies (killed, out of memory, a crash in native code) is
replaced and its job retried; the driver itself never loads a model or an embedding matrix.

``debug`` runs every job in this process, one after the other, with the same ledger, logs and
retry rule: what tests and pdb need.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from .. import progress
from ..config import Resources
from .base import (
    Attempts,
    Job,
    Ledger,
    Plugins,
    failure,
    log_path,
    plugin_encoders,
    retryable,
    run_logged,
)

log = logging.getLogger(__name__)

#: most workers the automatic choice starts without GPUs (each may load a model)
AUTO_MAX_WORKERS = 4


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES``, else what ``nvidia-smi -L``
    lists (no torch import in the driver)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]


def auto_workers(gpus: Sequence[str]) -> int:
    """One worker per GPU, else one per core up to :data:`AUTO_MAX_WORKERS`."""
    return len(gpus) if gpus else max(1, min(os.cpu_count() or 1, AUTO_MAX_WORKERS))


class DebugExecutor:
    """Every job in this process, one after the other (ledger, logs and retries as local)."""

    name = "debug"

    def __init__(self, work: Path, max_retries: int, show_progress: bool = True) -> None:
        self.work, self.ledger = Path(work), Ledger(work, self.name)
        self.max_retries = max_retries

    def run(self, stage: str, jobs: Sequence[Job], resources: Resources) -> list[Any]:
        results: list[Any] = []
        for job in jobs:
            attempts = Attempts(self.max_retries)
            while True:
                n = attempts.start(0)
                logf = str(log_path(self.work, job, n))
                try:
                    results.append(run_logged(job, logf, self.ledger, n))
                    break
                except Exception as exc:
                    if not retryable(exc):
                        raise
                    if not attempts.again(0):
                        raise failure(job, n, f"{type(exc).__name__}: {exc}", logf) from exc
                    log.warning("job %s failed (%s: %s), log %s; retrying (attempt %d of %d)",
                                job.label, type(exc).__name__, exc, logf, n + 1,
                                self.max_retries + 1)
        return results

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------ local pool


def _die_with(parent: int) -> None:
    """End this worker when the driver ends, however it ends (``kill -9`` too): an orphan
    would go on writing stage outputs beside the rerun that replaces its driver."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    else:  # no parent-death signal: watch the parent id
        import threading

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the driver died before the signal was armed
        os._exit(1)


def _worker_main(conn: Connection, ledger_root: str, plugins: Plugins,
                 parent: int) -> None:
    """A worker: run the jobs the driver sends until it sends None. ``plugins``: encoders
    registered in the driver's process (``speechmine.encoders.register``), by reference."""
    _die_with(parent)
    plugins.install()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops us
    ledger = Ledger(Path(ledger_root), "local")
    progress.set_sink(lambda dn, dtotal: conn.send(("progress", dn, dtotal)))
    while True:
        msg = conn.recv()
        if msg is None:
            return
        job, logf, attempt, threads = msg
        Path(logf).parent.mkdir(parents=True, exist_ok=True)
        # the job's native output (FAISS, torch, tracebacks) goes to its log file too
        saved = os.dup(1), os.dup(2)
        fd = os.open(logf, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        try:
            with job_threads(threads):
                result = run_logged(job, logf, ledger, attempt)
            reply: tuple[Any, ...] = ("done", result)
        except BaseException as exc:
            reply = ("error", _portable(exc), traceback.format_exc())
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        conn.send(reply)


#: the environment variables that size native thread pools when a library loads
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def job_threads(n: int) -> Iterator[None]:
    """Run a job with ``n`` native threads: the BLAS and OpenMP pools already loaded (numpy's
    BLAS, FAISS' OpenMP) through threadpoolctl, and those a job loads (torch) through the
    environment they read at load time; the worker's own share comes back afterwards."""
    from threadpoolctl import threadpool_limits

    with environ({k: str(n) for k in THREAD_VARS}), threadpool_limits(limits=n):
        yield


@contextlib.contextmanager
def environ(env: dict[str, str]) -> Iterator[None]:
    """``env`` set in this process's environment for the block, then put back as it was."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (so the driver raises the same error class), else a
    RuntimeError with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class _Worker:
    def __init__(self, ctx: Any, ledger_root: str, env: dict[str, str],
                 plugins: Plugins) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main,
                                args=(child, ledger_root, plugins, os.getpid()), daemon=True)
        with environ(env):  # a spawned child starts with the parent's environment
            self.proc.start()
        child.close()
        self.job: int | None = None  # index of the job it runs
        self.log: str | None = None

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout)
        self.conn.close()


class LocalExecutor:
    """A pool of ``workers`` spawned processes, kept for the run (see module doc)."""

    name = "local"

    def __init__(self, work: Path, max_retries: int, workers: int | None = None,
                 show_progress: bool = True) -> None:
        self.work, self.ledger = Path(work), Ledger(work, self.name)
        self.max_retries, self.show_progress = max_retries, show_progress
        self.gpus = visible_gpus()
        self.size = workers or auto_workers(self.gpus)
        self.cores = os.cpu_count() or 1
        self.threads = max(1, self.cores // self.size)  # a worker's share, when all are busy
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []

    def _env(self, slot: int) -> dict[str, str]:
        t = str(self.threads)
        env = {"OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t, "MKL_NUM_THREADS": t,
               "TOKENIZERS_PARALLELISM": "false", "SPEECHMINE_WORKER": "local"}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        return env

    def _spawn(self, slot: int) -> _Worker:
        return _Worker(self._ctx, str(self.work), self._env(slot), plugin_encoders())

    def run(self, stage: str, jobs: Sequence[Job], resources: Resources) -> list[Any]:
        if not jobs:
            return []
        while len(self._workers) < min(self.size, len(jobs)):
            self._workers.append(self._spawn(len(self._workers)))
        results: dict[int, Any] = {}
        pending = deque(range(len(jobs)))
        attempts = Attempts(self.max_retries)
        # the cores are shared among the jobs that can run at once
        self._job_threads = max(1, self.cores // min(self.size, len(jobs)))
        totals = {"n": 0, "total": 0}
        bar = progress.bar(total=None, desc=stage, unit="row",
                           disable=not self.show_progress or progress._sink is not None)
        try:
            with bar:
                while len(results) < len(jobs):
                    for w in self._workers:
                        if w.job is None and pending:
                            self._start(w, pending.popleft(), jobs, attempts)
                    self._wait_one(jobs, results, pending, attempts, bar, totals)
        except BaseException:
            self.close()  # a failure or Ctrl-C: stop every worker, whatever it was doing
            raise
        return [results[i] for i in range(len(jobs))]

    def _start(self, w: _Worker, i: int, jobs: Sequence[Job], attempts: Attempts) -> None:
        n = attempts.start(i)
        w.job, w.log = i, str(log_path(self.work, jobs[i], n))
        self.ledger.record(jobs[i], "queued", attempt=n, log=w.log)
        w.conn.send((jobs[i], w.log, n, self._job_threads))

    def _wait_one(self, jobs: Sequence[Job], results: dict[int, Any], pending: deque[int],
                  attempts: Attempts, bar: Any, totals: dict[str, int]) -> None:
        busy = [w for w in self._workers if w.job is not None]
        ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
        for w in busy:
            if w.conn in ready:
                try:
                    while w.conn.poll():
                        msg = w.conn.recv()
                        if self._handle(w, msg, jobs, results, pending, attempts, bar, totals):
                            break
                except (EOFError, OSError):
                    pass  # it died: the sentinel says so below
            if w.job is not None and not w.proc.is_alive():
                i = w.job
                code = w.proc.exitcode
                why = (f"its worker died (signal {-code})" if code is not None and code < 0
                       else f"its worker exited with code {code}")
                self._workers[self._workers.index(w)] = self._spawn(self._workers.index(w))
                self._retry_or_raise(jobs[i], i, why, w.log, pending, attempts)

    def _handle(self, w: _Worker, msg: tuple[Any, ...], jobs: Sequence[Job],
                results: dict[int, Any], pending: deque[int], attempts: Attempts, bar: Any,
                totals: dict[str, int]) -> bool:
        """Act on one message of a worker; True when its job ended."""
        kind = msg[0]
        if kind == "progress":
            _, dn, dtotal = msg
            if dtotal:
                totals["total"] += dtotal
                bar.total = totals["total"]
                if hasattr(bar, "refresh"):  # tqdm redraws with the new total
                    bar.refresh()
            if dn:
                bar.update(dn)
            return False
        assert w.job is not None
        i, logf = w.job, w.log
        w.job = w.log = None
        if kind == "done":
            results[i] = msg[1]
            return True
        exc, tb = msg[1], msg[2]
        if not retryable(exc):
            raise exc
        self._retry_or_raise(jobs[i], i, f"{type(exc).__name__}: {exc}", logf, pending,
                             attempts, tb)
        return True

    def _retry_or_raise(self, job: Job, i: int, why: str, logf: str | None,
                        pending: deque[int], attempts: Attempts, tb: str = "") -> None:
        if not attempts.again(i):
            self.ledger.record(job, "failed", attempt=attempts.count[i], log=logf, error=why)
            raise failure(job, attempts.count[i], why, logf)
        log.warning("job %s failed (%s), log %s; retrying (attempt %d of %d)", job.label, why,
                    logf, attempts.count[i] + 1, self.max_retries + 1)
        pending.appendleft(i)

    def close(self) -> None:
        for w in self._workers:
            if w.job is not None and w.proc.is_alive():
                w.proc.terminate()
            w.stop()
        self._workers = []
