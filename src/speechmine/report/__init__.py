"""``speechmine report``: one static HTML page about a finished run.

The page (``OUTPUT_DIR/report/index.html``, opened from disk, no server, no network) shows
the run's summary from ``run.json``, a score histogram, precision/recall plots against a
gold when one is given, and a bounded sample of the mined pairs in score bands with a
client-side filter; speech sides get an audio player per segment, clips cut into
``report/clips/``. See docs/report.md.

Modules, in the order the report is built: :mod:`.run_files` (find and read the run),
:mod:`.bands` (which rows to show), :mod:`.clips` (audio), :mod:`.plots` (matplotlib),
:mod:`.page` (HTML), :mod:`.build` (all of it), :mod:`.cli` (the command).
"""

from __future__ import annotations

from .build import DEFAULT_ROWS, Report, build_report
from .run_files import ReportError, open_run

__all__ = ["DEFAULT_ROWS", "Report", "ReportError", "build_report", "open_run"]
