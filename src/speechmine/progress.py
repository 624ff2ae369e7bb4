"""Progress bars that work wherever a job runs.

Stage code asks :func:`bar` for a tqdm-like object. In the driver's process that is a tqdm
bar. Inside a local executor's worker it is a :class:`ForwardingBar`, which sends its counts
to the driver (at most a few times a second), where one bar per stage adds up every job's
rows: two workers writing their own bars to one terminal would overwrite each other's line.
On SLURM there is no terminal: bars are off and the job logs say how far a job got.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: set by a local executor's worker: ``sink(delta_n, delta_total)`` sends counts to the driver
_sink: Callable[[int, int], None] | None = None
#: seconds between two messages of one forwarding bar
FORWARD_EVERY_S = 0.25


def set_sink(sink: Callable[[int, int], None] | None) -> None:
    """Route this process's bars to ``sink`` (a worker does this once), or back to tqdm."""
    global _sink
    _sink = sink


def bar(total: int | float | None = None, desc: str = "", unit: str = "it",
        disable: bool = False, **kwargs: Any) -> Any:
    """A tqdm bar in the driver, a :class:`ForwardingBar` inside a worker."""
    if _sink is not None:
        return ForwardingBar(_sink, total, disable)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disable, **kwargs)


class ForwardingBar:
    """The parts of tqdm's interface stage code uses (``update``, ``total``, context
    manager, ``close``), forwarding counts to the driver."""

    def __init__(self, sink: Callable[[int, int], None], total: int | float | None,
                 disable: bool = False) -> None:
        self._sink, self.disable = sink, disable
        self.total = total
        self.n = 0
        self._pending, self._last = 0, 0.0
        if total and not disable:
            sink(0, int(total))

    def update(self, n: int | float = 1) -> None:
        if self.disable:
            return
        self.n += int(n)
        self._pending += int(n)
        now = time.monotonic()
        if now - self._last >= FORWARD_EVERY_S:
            self._flush(now)

    def _flush(self, now: float) -> None:
        if self._pending:
            self._sink(self._pending, 0)
            self._pending = 0
        self._last = now

    def close(self) -> None:
        if not self.disable:
            self._flush(time.monotonic())

    def __enter__(self) -> ForwardingBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Any:  # tqdm(iterable) is not used through this class
        raise TypeError("ForwardingBar does not wrap iterables")
