"""JSON Lines export: one object per pair, the fields of :mod:`.records`.

UTF-8 without escaping (non-ASCII stays readable), one line per pair (JSON escapes the tabs
and line breaks a text may hold), gzip when the name ends in ``.gz``; written to a temporary
sibling and renamed at the end.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ..io.atomic import atomic_open
from .reader import MinedRun
from .records import record

log = logging.getLogger(__name__)


def write_jsonl(run: MinedRun, out: Path, progress: Callable[[int], object] | None = None
                ) -> int:
    """Write every pair of ``run`` to ``out``; returns the lines written."""
    n = 0
    with atomic_open(out, gz=out.name.endswith(".gz")) as fh:
        for pair in run.pairs():
            fh.write(json.dumps(record(pair, run.sides), ensure_ascii=False) + "\n")
            n += 1
            if progress is not None:
                progress(1)
    log.info("wrote %d pairs to %s", n, out)
    return n
