"""Calibrated thresholds: the margin threshold each embedding space was measured to need.

Margin scores are ratios of cosines, and how far a translation stands out from its
neighbours depends on the encoder: e5's cosines are compressed (its best ratio-margin
threshold on our dev set is ~1.007, and 1.1 keeps almost nothing), USE-multilingual's are
not (~1.10). So each encoder declares the threshold measured for it, and a config that sets
none gets that one (:mod:`speechmine.config.defaults`), with a log line saying so.

A declaration is a :class:`Calibration`: the threshold, the mining rule it was measured
with (a threshold only means something for one margin, candidate and retrieval rule, and
k shifts ratio margins), the dev F1 reached there and what it was measured on. Encoders
declare it as a class attribute ``CALIBRATION`` (None: not calibrated), or through a class
method ``calibration_for(options)`` when it depends on their options (the cascade speech
encoder embeds transcripts with a text encoder and inherits that encoder's calibration).
Plug-ins do the same; one without a calibration gets a warning telling how to measure it
(``speechmine tune``).

A fused embedding space (several encoders whose margin scores are combined) is another
space with its own threshold: :data:`FUSED_CALIBRATIONS` holds those, keyed by
:func:`fused_key` (fusion rule, members and weights), and :func:`fused_calibration` looks
one up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import Encoder, EncoderError

__all__ = ["Calibration", "RULE_FIELDS", "calibration_of", "fused_key", "fused_calibration",
           "FUSED_CALIBRATIONS", "TUNE_HINT"]

#: the MineConfig fields a threshold depends on (the "rule" a calibration was measured with)
RULE_FIELDS = ("k", "k_mean", "margin", "margin_norm", "candidate", "retrieval")

#: how to measure a threshold (ends every "not calibrated" message)
TUNE_HINT = ("measure one on a small dev set with gold pairs: speechmine tune PRESET --gold "
             "GOLD -o TUNED.yaml (docs/tuning.md)")


@dataclass(frozen=True)
class Calibration:
    """A threshold measured for one embedding space under one mining rule.

    Attributes:
        threshold: the ratio (or distance) margin threshold to use.
        k, k_mean, margin, margin_norm, candidate, retrieval: the rule it was measured
            with (:class:`~speechmine.config.MineConfig` fields); a config that leaves
            them unset gets these, one that sets another rule does not get the threshold.
        f1: F1 against the dev gold at ``threshold`` (None if unknown).
        data: what it was measured on (corpus, languages, pairs).
        measured: how (command, date), for the log and docs/tuning.md.
    """

    threshold: float
    k: int = 4
    k_mean: int | None = None
    margin: str = "ratio"
    margin_norm: str = "mean"
    candidate: str = "best"
    retrieval: str = "max"
    f1: float | None = None
    data: str = ""
    measured: str = ""

    def rule(self) -> dict[str, Any]:
        """``{field: value}`` of :data:`RULE_FIELDS`."""
        return {f: getattr(self, f) for f in RULE_FIELDS}

    def describe(self) -> str:
        """One line for the log: the threshold, its rule and where it was measured."""
        f1 = f", dev F1 {self.f1:.3f}" if self.f1 is not None else ""
        return (f"{self.threshold:g} (k={self.k}, {self.margin} margin, {self.candidate} "
                f"candidate, retrieval {self.retrieval}{f1}; {self.data})")


def calibration_of(encoder: str | type[Encoder], options: Mapping[str, Any] | None = None
                   ) -> Calibration | None:
    """The calibration an encoder (class, or registry key, plug-in name or stopes alias)
    declares for ``options``; None when it has none. Imports the class, never loads a
    model."""
    from . import resolve

    cls = resolve(encoder) if isinstance(encoder, str) else encoder
    hook = getattr(cls, "calibration_for", None)
    found = hook(dict(options or {})) if callable(hook) else getattr(cls, "CALIBRATION", None)
    if found is not None and not isinstance(found, Calibration):
        raise EncoderError(f"encoder {cls.name!r} declares a calibration that is not a "
                           f"speechmine.encoders.calibration.Calibration: {found!r}")
    return found


def fused_key(members: Sequence[tuple[str, float]], fusion: str) -> str:
    """The name of a fused space: ``"margin_mean(e5*2+usem3*1)"`` — members (registry key,
    weight) sorted by name, so the order a config lists them in does not matter."""
    parts = "+".join(f"{name}*{weight:g}" for name, weight in sorted(members))
    return f"{fusion}({parts})"


_DEV = "bundled dev set, en-fr (Debian), 600 gold pairs + 180 distractors a side"
_HOW = "scripts/measure_ensembles.py: tune --decimals 2 on dev (exact best {}, F1 {})"

#: calibrations of fused spaces, by :func:`fused_key`, each measured with ``speechmine
#: tune`` on the dev set (held-out figures on the demo set: docs/ensembles.md)
FUSED_CALIBRATIONS: dict[str, Calibration] = {
    "margin_mean(e5*2+usem3*1)": Calibration(threshold=1.04, f1=0.986, data=_DEV,
                                             measured=_HOW.format(1.035, 0.987)),
    "margin_mean(e5*1+usem3*1)": Calibration(threshold=1.05, f1=0.985, data=_DEV,
                                             measured=_HOW.format(1.055, 0.986)),
    "concat(e5*2+usem3*1)": Calibration(threshold=1.05, f1=0.984, data=_DEV,
                                        measured=_HOW.format(1.046, 0.987)),
}


def fused_calibration(members: Sequence[tuple[str, float]], fusion: str) -> Calibration | None:
    """The calibration of a fused space (see :func:`fused_key`), or None."""
    return FUSED_CALIBRATIONS.get(fused_key(members, fusion))
