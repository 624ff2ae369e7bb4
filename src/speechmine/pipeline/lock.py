"""Run locks: one run at a time per output directory and per work directory.

An exclusive advisory lock (``flock``) on ``<dir>/.speechmine.lock``; the kernel releases it
when the process dies, so a killed run never blocks the next one. The lock file holds the
holder's pid and host while held and is emptied on a clean exit: a non-empty file found on
acquiring was left by a run that was killed, and is taken over with a log line.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_NAME = ".speechmine.lock"


class RunLockedError(RuntimeError):
    """Another speechmine run holds the directory."""


class DirLock:
    """Exclusive lock on one directory; ``what`` names it in messages (``output_dir``)."""

    def __init__(self, directory: Path, what: str = "output_dir") -> None:
        self.path = Path(directory) / LOCK_NAME
        self.what = what
        self._fh: Any = None

    def __enter__(self) -> DirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise RunLockedError(
                    f"{self.what} {self.path.parent} is in use by another speechmine run "
                    f"({holder}); wait for it to finish or choose another {self.what}"
                ) from None
            raise
        fh.seek(0)
        previous = fh.read().strip()
        if previous:
            log.info("taking over the lock of %s left by a run that did not finish (%s)",
                     self.path.parent, previous)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()  # empty = released cleanly
            self._fh.flush()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class RunLocks:
    """The locks of one run: its output dir and its work dir (which other runs may share),
    one lock when they are the same directory."""

    def __init__(self, output_dir: Path, work_dir: Path) -> None:
        out, work = Path(output_dir).resolve(), Path(work_dir).resolve()
        self.locks = [DirLock(out, "output_dir")]
        if work != out:
            self.locks.append(DirLock(work, "work_dir"))

    def __enter__(self) -> RunLocks:
        taken: list[DirLock] = []
        try:
            for lock in self.locks:
                taken.append(lock.__enter__())
        except BaseException:
            for lock in reversed(taken):
                lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for lock in reversed(self.locks):
            lock.__exit__(*exc)
