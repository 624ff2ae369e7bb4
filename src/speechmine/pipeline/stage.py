"""The stage contract: how every stage is keyed, stored, reused and redone.

A stage declares

* its **name** and a **version** (bumped when its code changes what it writes),
* the **slice of the config it reads** (dataclasses or plain values; transient fields, marked
  where they are declared, are dropped by :func:`~speechmine.config.result_view`),
* the **identities of its input files** (content or stat, :mod:`speechmine.io.identity`),
* the **keys of the stages upstream of it**,
* the **packages** whose code decides its bytes (their versions),

and its key is a hash of exactly those, nothing else: no stage builds a key by hand, and the
same work (the same shard under the same encoder, whichever side or run asks) has one key and
is done once. :func:`run_stage` is the one load-or-compute-write helper: a stage's output is a
directory ``<work>/<name>/<key>/`` built under a temporary name, closed by a completion
marker written last (``DONE.json``: key and the size of every file), then renamed into place.
A directory without a valid marker, with a file of the wrong size, or that fails to load is
redone, never trusted.

:func:`kill_point` lets tests kill the process at a named point (``SPEECHMINE_KILL_AT``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..config import result_view
from ..encoders.base import package_versions
from ..io.atomic import atomic_dir, write_json
from ..io.identity import file_identity

log = logging.getLogger(__name__)

T = TypeVar("T")

#: completion marker of a stage directory, written last
DONE = "DONE.json"


@dataclasses.dataclass(frozen=True)
class Stage:
    """One unit of resumable work; :attr:`key` is derived from the fields and nothing else.

    config: the values the stage reads (dataclasses lose their transient fields);
    inputs: paths of the files it reads, identified with ``verify`` (``content``/``stat``);
    upstream: keys of the stages whose outputs it reads; packages: distributions whose
    versions decide its bytes.
    """

    name: str
    version: int
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    inputs: Sequence[str] = ()
    upstream: Sequence[str] = ()
    packages: Sequence[str] = ()
    verify: str = "content"

    @functools.cached_property
    def key(self) -> str:
        """20 hex digits of sha256 over the declared parts (canonical JSON)."""
        payload = {
            "stage": self.name, "version": self.version, "config": result_view(self.config),
            "inputs": [file_identity(p, self.verify) for p in self.inputs],
            "upstream": list(self.upstream), "packages": package_versions(self.packages),
        }
        text = json.dumps(payload, sort_keys=True, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def path(self, work: Path) -> Path:
        """Where the finished output lives: ``<work>/<name>/<key>``."""
        return Path(work) / self.name / self.key

    def done(self, work: Path) -> bool:
        """Is a complete output (valid marker, files of the recorded sizes) on disk?"""
        return _valid_marker(self.path(work), self) is not None


def _valid_marker(folder: Path, stage: Stage) -> dict[str, Any] | None:
    try:
        marker = json.loads((folder / DONE).read_text())
        if marker.get("key") != stage.key:
            return None
        for rel, size in marker["files"].items():
            if (folder / rel).stat().st_size != size:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return marker


def run_stage(stage: Stage, work: Path, compute: Callable[[Path], None],
              load: Callable[[Path], T]) -> tuple[T, bool]:
    """Load the stage's finished output, or compute it, mark it done, and load it.

    ``compute(folder)`` writes every output file into ``folder`` (a temporary directory);
    ``load(folder)`` reads them back. Returns ``(loaded, computed_now)``. An output that
    fails its marker or its load is removed and computed again (with a warning).
    """
    final = stage.path(work)
    if _valid_marker(final, stage) is not None:
        try:
            return load(final), False
        except Exception as exc:
            log.warning("%s: stored output %s cannot be read (%s: %s); computing it again",
                        stage.name, final, type(exc).__name__, exc)
    if final.exists():
        log.info("%s: discarding incomplete output %s", stage.name, final)
        shutil.rmtree(final)
    with atomic_dir(final) as tmp:
        compute(tmp)
        files = {p.relative_to(tmp).as_posix(): p.stat().st_size
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        write_json(tmp / DONE, {"stage": stage.name, "version": stage.version,
                                "key": stage.key, "files": files})
    return load(final), True


# ------------------------------------------------------------------------------ testing aid

_kill_counts: dict[str, int] = {}


def kill_point(name: str) -> None:
    """SIGKILL this process here when ``SPEECHMINE_KILL_AT`` names this point.

    ``SPEECHMINE_KILL_AT=embed`` kills at the first pass, ``embed:3`` at the third. Used by
    the tests that kill a run at every stage and check that a rerun ends byte-identical.
    """
    want = os.environ.get("SPEECHMINE_KILL_AT")
    if not want:
        return
    point, _, nth = want.partition(":")
    if point != name:
        return
    _kill_counts[name] = _kill_counts.get(name, 0) + 1
    if _kill_counts[name] >= int(nth or 1):
        if os.environ.get("SPEECHMINE_WORKER"):  # a local worker: the machine dies, the
            os.kill(os.getppid(), signal.SIGKILL)  # driver with it
        os.kill(os.getpid(), signal.SIGKILL)
