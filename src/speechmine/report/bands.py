"""Which mined pairs the report shows: a few rows from each score band.

A run can hold millions of pairs; the page shows at most ``per_band`` rows in each of four
disjoint bands, chosen on scores alone (no I/O):

* ``top``: the highest scores;
* ``bottom``: the lowest scores;
* ``around``: the pairs nearest a threshold ``t`` (about half scoring ``≥ t``, half below),
  from the pairs not already in top or bottom. When ``t`` falls inside the top or the bottom
  band (the mining threshold always does: every mined pair scores above it), that band is
  the neighbourhood of the threshold and there is no separate ``around`` band;
* ``random``: a seeded uniform sample of the pairs in no other band.

Ties are broken by row order (the outputs are sorted by decreasing score).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Band:
    """One band: ``ranks`` (b,) int64 positions by decreasing score (0 = best) and ``rows``
    (b,) int64 indexes into the score array, both in rank order."""

    key: str
    title: str
    note: str
    ranks: np.ndarray
    rows: np.ndarray


def choose_bands(scores: np.ndarray, threshold: float, per_band: int, seed: int = 0,
                 threshold_name: str = "threshold") -> list[Band]:
    """The bands of ``scores`` (n,) (see module doc); empty bands are left out.

    ``threshold``: the centre of the ``around`` band; ``threshold_name`` says in titles what
    it is (``mining threshold``, ``best-F1 threshold``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, per = int(scores.shape[0]), max(int(per_band), 1)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    top_end = min(per, n)
    bottom_start = max(n - per, top_end)
    pos = int((ranked >= threshold).sum())  # ranks [0, pos) score >= threshold
    t = f"{threshold_name} {threshold:.4g}"
    spans: list[tuple[str, str, str, np.ndarray]] = []
    top_note = (f"The {t} falls in this band." if 0 < pos <= top_end and bottom_start > pos
                else "")
    spans.append(("top", f"Top: the {top_end} highest scores", top_note,
                  np.arange(0, top_end)))
    if pos >= bottom_start and n > top_end:
        bottom_note = (f"Every mined pair scores ≥ the {t}: these are the pairs just above it."
                       if pos == n else f"The {t} falls in this band.")
    else:
        bottom_note = ""
    bottom = np.arange(bottom_start, n)
    around = np.zeros(0, dtype=np.int64)
    if top_end < pos < bottom_start:
        start = min(max(pos - per // 2, top_end), max(bottom_start - per, top_end))
        around = np.arange(start, min(start + per, bottom_start))
        above = int((around < pos).sum())
        spans.append(("around", f"Around the {t}: {above} at or above it, "
                      f"{around.size - above} below", "Pairs scoring below it are shaded.",
                      around))
    spans.append(("bottom", f"Bottom: the {bottom.size} lowest scores", bottom_note, bottom))
    rest = np.setdiff1d(np.arange(top_end, bottom_start), around)
    if rest.size:
        pick = np.sort(np.random.default_rng(seed).choice(rest, size=min(per, rest.size),
                                                          replace=False))
        spans.append(("random", f"Random: {pick.size} of the {rest.size} other pairs",
                      f"A uniform sample (seed {seed}); other seeds with --seed.", pick))
    return [Band(key=k, title=title, note=note, ranks=r.astype(np.int64),
                 rows=order[r].astype(np.int64))
            for k, title, note, r in spans if r.size]
