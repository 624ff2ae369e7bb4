"""The P/R curve of ``speechmine eval --plot FILE``: precision against recall, and precision,
recall and F1 against the threshold, in one figure (matplotlib, the ``report`` extra; the
format follows the file's suffix: .png, .svg, .pdf)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..types import InputError

if TYPE_CHECKING:
    from .run import EvalResult


def plot_result(result: EvalResult, path: str | Path) -> Path:
    """Draw ``result``'s curve into ``path`` (written atomically); returns the path."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("--plot draws with matplotlib: pip install 'speechmine[report]'") \
            from None
    from ..io.atomic import atomic_path

    out = Path(path)
    fmt = out.suffix.lstrip(".").lower() or "png"
    c = result.curve
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_pr, ax_t = fig.subplots(1, 2)
    ax_pr.plot(c.recall, c.precision, color="#4878a8")
    best_t, best = result.best
    marks = [("best F1", best_t, best)]
    if result.threshold is not None:
        marks.insert(0, ("run's threshold", result.threshold, result.at_threshold))
    for (label, t, s), marker in zip(marks, ("o", "s")):
        if np.isfinite(t):
            ax_pr.plot([s.recall], [s.precision], marker=marker, linestyle="none",
                       color="black", label=f"{label} {t:.4g}: F1 {s.f1:.3f}")
            ax_t.axvline(t, color="black", linestyle="--" if marker == "o" else ":",
                         linewidth=1, label=f"{label} {t:.4g}")
    ax_pr.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
              title=f"Precision–recall ({result.swept}, {c.gold} gold pairs)")
    for values, name, color in ((c.precision, "precision", "#4878a8"),
                                (c.recall, "recall", "#d0703c"), (c.f1, "F1", "#3c9d5d")):
        ax_t.step(c.thresholds, values, where="post", label=name, color=color)
    ax_t.set(ylim=(0, 1.02), xlabel="threshold t (pairs with score ≥ t)",
             title="By threshold")
    for ax in (ax_pr, ax_t):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="lower left")
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt, metadata={"Software": None} if fmt == "png" else {})
    except ValueError as exc:  # an unknown format
        raise InputError(f"{out}: cannot write a plot in this format ({exc})") from None
    return out
