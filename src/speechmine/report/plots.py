"""The report's figures, drawn with matplotlib (the ``report`` extra) as SVG documents.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot: no global
state, no GUI backend) and written with a fixed id salt and no date, so the same run gives
the same bytes. Each function returns one SVG document as text.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from ..eval.scoring import PRCurve
from .run_files import ReportError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_SIZE = (6.4, 3.6)  # inches, at the SVG's nominal 72 dpi: 460 x 260 px


def _figure() -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError("speechmine report draws its plots with matplotlib: "
                          "pip install 'speechmine[report]'") from None
    return Figure(figsize=_SIZE, layout="constrained")


def _svg(fig: Figure) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "speechmine-report", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _marks(ax: Axes, marks: list[tuple[str, float]]) -> None:
    """Vertical lines at named thresholds (legend entries)."""
    for (label, x), style in zip(marks, ("--", ":", "-.")):
        if np.isfinite(x):
            ax.axvline(x, color="black", linestyle=style, linewidth=1,
                       label=f"{label} {x:.4g}")


def score_histogram(scores: np.ndarray, correct: np.ndarray | None,
                    marks: list[tuple[str, float]]) -> str:
    """Histogram of the mined scores (n,); with ``correct`` (n,) bool, stacked into pairs in
    the gold and the others."""
    fig = _figure()
    ax = fig.add_subplot()
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size:
        lo, hi = float(scores.min()), float(scores.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 41).tolist()
        if correct is None:
            ax.hist(scores, bins=bins, color="#4878a8")
        else:
            ax.hist([scores[correct], scores[~correct]], bins=bins, stacked=True,
                    color=["#4878a8", "#d0703c"], label=["in the gold", "not in the gold"])
    _marks(ax, marks)
    ax.set_xlabel("margin score")
    ax.set_ylabel("mined pairs")
    ax.set_title(f"Scores of the {scores.size} mined pairs")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return _svg(fig)


def pairs_kept(scores: np.ndarray, marks: list[tuple[str, float]]) -> str:
    """Without gold: how many pairs a higher threshold keeps (pairs with score ≥ t)."""
    fig = _figure()
    ax = fig.add_subplot()
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if s.size:
        ax.step(s, np.arange(1, s.size + 1), where="post", color="#4878a8")
    _marks(ax, marks)
    ax.set_xlabel("threshold t")
    ax.set_ylabel("pairs with score ≥ t")
    ax.set_title("Pairs kept by a higher threshold (no gold given)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return _svg(fig)


def pr_by_threshold(curve: PRCurve, marks: list[tuple[str, float]]) -> str:
    """Precision, recall and F1 against the threshold."""
    fig = _figure()
    ax = fig.add_subplot()
    t = curve.thresholds
    for values, name, color in ((curve.precision, "precision", "#4878a8"),
                                (curve.recall, "recall", "#d0703c"),
                                (curve.f1, "F1", "#3c9d5d")):
        ax.step(t, values, where="post", label=name, color=color)
    _marks(ax, marks)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("threshold t (pairs with score ≥ t)")
    ax.set_title(f"Against {curve.gold} gold pairs")
    ax.legend(fontsize="small")
    return _svg(fig)


def pr_curve_plot(curve: PRCurve, points: list[tuple[str, float, float]]) -> str:
    """Precision against recall; ``points``: named (recall, precision) marks."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(curve.recall, curve.precision, color="#4878a8", label="mined pairs")
    for (label, r, p), marker in zip(points, ("o", "s", "^")):
        ax.plot([r], [p], marker=marker, linestyle="none", color="black",
                label=f"{label}: P {p:.3f} R {r:.3f}")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision–recall")
    ax.legend(fontsize="small", loc="lower left")
    return _svg(fig)
