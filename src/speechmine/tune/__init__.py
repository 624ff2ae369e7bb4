"""Threshold tuning: ``speechmine tune PRESET --gold GOLD``.

* :mod:`.core`: every threshold's P/R from one run's scored candidates, and the choice
  (best F1, or the lowest threshold reaching a target precision);
* :mod:`.preset`: the threshold written into the preset, the rest of the file kept;
* :mod:`.cli`: the command.

The calibrated thresholds the built-in encoders declare (:mod:`speechmine.encoders.
calibration`) were measured with it: docs/tuning.md, scripts/calibrate.py.
"""

from __future__ import annotations

from .core import Choice, TuneError, TuneResult, choose_threshold, tune
from .preset import Written, set_threshold_text, write_threshold

__all__ = ["Choice", "TuneError", "TuneResult", "Written", "choose_threshold",
           "set_threshold_text", "tune", "write_threshold"]
