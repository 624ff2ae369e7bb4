"""What every executor shares: the job, its log and ledger entry, the retry rule, the failure.

A :class:`Job` is a stage key plus a picklable call: ``fn(arg)`` with ``fn`` a module-level
function whose work is the stage output ``work/<stage>/<key>`` (written through the stage
contract, so a job that finds its output done returns at once). Any executor can therefore
run any job, and a rerun — with this executor or another — skips every job already done.

The **ledger** (``work/jobs/<stage>/<key>.json``) says what happened to each job: queued,
running (with pid or SLURM job id), done or failed, its attempts and its log file;
``speechmine status`` reads it. The **retry rule**: a job that fails with an expected error
(bad input, bad config: :func:`speechmine.errors.expected_types`) would fail again, so the run
stops with that error at once; anything else (a crash, a killed worker, an out-of-memory
kill, a node failure) is retried up to ``launcher.max_retries`` times, then the run stops with
:class:`JobFailed`, which names the job, its log and the last lines of that log.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..config import Resources
from ..io.atomic import write_json

log = logging.getLogger(__name__)

#: lines of a failed job's log quoted in the error
TAIL_LINES = 15
#: operating-system errors worth another attempt (network file systems, busy resources)
TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE,
                              errno.ECONNRESET, errno.ECONNREFUSED, errno.EHOSTUNREACH,
                              errno.ENETUNREACH, errno.EBUSY, errno.ENOMEM})


@dataclass(frozen=True)
class Job:
    """One task: ``fn(arg)`` produces the stage output ``<work>/<stage>/<key>``.

    label: a name for people (``src.embed.3``); fn: module-level (picklable by reference);
    arg: picklable, small (paths and settings: jobs read their inputs from disk).
    """

    stage: str
    key: str
    label: str
    fn: Callable[[Any], Any]
    arg: Any


class JobFailed(RuntimeError):
    """A job failed on every attempt (or a worker died): the run stops here."""


class Executor(Protocol):
    """Runs a stage's jobs and returns their results in order (or raises)."""

    name: str

    def run(self, stage: str, jobs: Sequence[Job], resources: Resources) -> list[Any]:
        """Run ``jobs`` (all of one stage, independent of each other) with ``resources``
        each; a failure is retried or raised (see module doc)."""
        ...

    def close(self) -> None:
        """Release workers (the executor may be used for several stages before)."""
        ...


# ------------------------------------------------------------------------------ ledger


class Ledger:
    """Job states under ``<work>/jobs`` (one small JSON per job, written atomically)."""

    def __init__(self, work: Path, executor: str) -> None:
        self.root = Path(work) / "jobs"
        self.executor = executor

    def path(self, job: Job) -> Path:
        return self.root / job.stage / f"{job.key}.json"

    def record(self, job: Job, state: str, **info: Any) -> None:
        """Set a job's state (``queued``, ``running``, ``done``, ``failed``) and details."""
        path = self.path(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"stage": job.stage, "key": job.key, "label": job.label,
                 "executor": self.executor, "state": state, "time": time.time(), **info}
        write_json(path, entry, durable=False)  # advisory, written 3 times per job

    def read(self, stage: str, key: str) -> dict[str, Any] | None:
        try:
            out = json.loads((self.root / stage / f"{key}.json").read_text())
            return out if isinstance(out, dict) else None
        except (OSError, ValueError):
            return None


def log_path(work: Path, job: Job, attempt: int) -> Path:
    """Where a local or in-process job's log goes (one file per attempt)."""
    return Path(work) / "logs" / job.stage / f"{job.label}.{attempt}.log"


# ------------------------------------------------------------------------------ running


def retryable(exc: BaseException) -> bool:
    """A failure worth another attempt: not the user's input or config (see module doc)."""
    from ..errors import expected_types

    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return False
    if isinstance(exc, OSError) and not type(exc).__module__.startswith("speechmine"):
        return exc.errno in TRANSIENT_ERRNOS  # a full disk or a permission would fail again
    return not isinstance(exc, expected_types())


def run_logged(job: Job, log_file: str | None, ledger: Ledger | None, attempt: int,
               where: dict[str, Any] | None = None) -> Any:
    """Run one job with its log handler and ledger entry (inside the worker or process that
    executes it). Exceptions propagate; the ledger says ``failed`` with the error."""
    root = logging.getLogger()
    handler: logging.Handler | None = None
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
    info = {"attempt": attempt, "log": log_file, "host": socket.gethostname(),
            "pid": os.getpid(), **(where or {})}
    if ledger is not None:
        ledger.record(job, "running", **info)
    try:
        logging.getLogger(__name__).info("job %s (%s %s) attempt %d", job.label, job.stage,
                                         job.key, attempt)
        result = job.fn(job.arg)
    except BaseException as exc:
        logging.getLogger(__name__).exception("job %s failed", job.label)
        if ledger is not None:
            ledger.record(job, "failed", error=f"{type(exc).__name__}: {exc}", **info)
        raise
    finally:
        if handler is not None:
            root.removeHandler(handler)
            handler.close()
    if ledger is not None:
        ledger.record(job, "done", **info)
    return result


def tail(path: str | os.PathLike[str] | None, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' when there is none)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def failure(job: Job, attempts: int, why: str, log_file: str | os.PathLike[str] | None
            ) -> JobFailed:
    """The error that stops a run: the job, its attempts, why, its log and log tail."""
    text = f"job {job.label} ({job.stage} {job.key}) failed after {attempts} attempt(s): {why}"
    if log_file:
        text += f"\n  log: {log_file}"
        last = tail(log_file)
        if last:
            text += "\n  last lines:\n" + "\n".join(f"    {ln}" for ln in last.splitlines())
    return JobFailed(text)


class Attempts:
    """Per job: attempts so far, and whether another is allowed."""

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries
        self.count: dict[int, int] = {}

    def start(self, i: int) -> int:
        self.count[i] = self.count.get(i, 0) + 1
        return self.count[i]

    def again(self, i: int) -> bool:
        return self.count.get(i, 0) <= self.max_retries


@dataclass(frozen=True)
class Plugins:
    """Encoders registered in the driver (``speechmine.encoders.register``), sent to workers
    and SLURM tasks by reference.

    ``refs``: registry name -> ``"module:qualname"``; ``sys_path``: the driver's ``sys.path``,
    appended to the worker's, since a SLURM task starts a fresh interpreter that does not
    see folders the driver added at run time (a script's folder, pytest's rootdir). Only the
    encoders a job uses must import there: one that does not is remembered with the reason
    and named if a job asks for it.
    """

    refs: dict[str, str]
    sys_path: tuple[str, ...] = ()

    def install(self) -> None:
        """Register every encoder of ``refs`` in this process."""
        import importlib
        import sys

        from .. import encoders

        for entry in self.sys_path:
            if entry not in sys.path:
                sys.path.append(entry)
        for name, ref in self.refs.items():
            if name in encoders._registered:
                continue
            module, _, qualname = ref.partition(":")
            try:
                obj: Any = importlib.import_module(module)
                for part in qualname.split("."):
                    obj = getattr(obj, part)
            except Exception as exc:
                encoders._unavailable[name] = f"{ref}: {type(exc).__name__}: {exc}"
                continue
            encoders._registered[name] = obj


def plugin_encoders() -> Plugins:
    """Encoders registered in this process that do not ship with speechmine, as
    :class:`Plugins`, each checked to be importable by reference (a class defined inside a
    function is not), so that a worker or a SLURM task can register them too."""
    import pickle
    import sys

    from .. import encoders
    from ..encoders import EncoderError

    refs: dict[str, str] = {}
    for name, cls in encoders._registered.items():
        if cls.__module__.split(".")[0] == "speechmine":
            continue  # built in: every worker resolves it by itself
        try:
            pickle.dumps(cls)
        except Exception as exc:
            raise EncoderError(
                f"encoder {name!r} ({cls!r}) was registered in this process, but worker "
                f"processes cannot import it ({type(exc).__name__}: {exc}): define it in an "
                "importable module (or register it through the 'speechmine.encoders' "
                "entry-point group), or run with launcher.cluster=debug") from None
        refs[name] = f"{cls.__module__}:{cls.__qualname__}"
    return Plugins(refs, tuple(p for p in sys.path if p))
