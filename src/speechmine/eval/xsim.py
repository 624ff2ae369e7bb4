"""xSIM and xSIM++: the error rate of margin retrieval on two aligned collections.

Definition (LASER's ``source/xsim.py``, matched to the index on the same embeddings, see
``tests/eval/test_xsim_laser.py``): sources ``x`` (n, d) and targets ``y`` (n, d) are aligned,
``x[i] ↔ y[i]``. Both are L2-normalised; each source's k nearest targets and each target's k
nearest sources are found by **exact** search (cosine); each neighbour ``j`` of source ``i``
gets the **ratio margin** ``cos(x_i, y_j) / ((m_x(i) + m_y(j)) / 2)``, where ``m_x(i)`` is
the mean cosine of ``x_i`` to its k nearest targets and ``m_y(j)`` that of ``y_j`` to its k
nearest sources, with **k = 4**; the source's answer is the neighbour of highest margin. An
error is an answer other than ``i`` (LASER's index comparison, its ``xSIM()`` default), or,
with target texts given, an answer whose text differs from ``y[i]``'s (LASER's ``eval.py``
default: duplicates are not errors). xSIM is errors / n (LASER prints it as a percentage).
``margin="distance"`` (cos - mean) and ``"absolute"`` (the nearest by cosine) as in LASER.

xSIM++ (Chen et al., 2023, LASER's ``--tgt-aug-langs``): hard negatives — synthetic
near-translations of the targets — are appended to the target pool: every source searches
the n targets *and* the negatives, whose neighbourhoods enter the margins as any target's,
and an answer among the negatives is an error. With LASER's error-type file (``{negative
text: {"src": the target it was made from, "errtype": kind}}``) the errors are counted by
kind; an error whose answer is not a negative made from the right target is "Misaligned".

Ties (equal margins) go to the smaller target index, as everywhere in speechmine (LASER takes
FAISS' order). Pure functions over arrays; loading collections is :mod:`.xsim_inputs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

MARGINS: tuple[str, ...] = ("ratio", "distance", "absolute")
#: LASER's xSIM settings
LASER_K = 4
LASER_MARGIN = "ratio"
#: LASER's name for an error that is not one of the hard negatives' kinds
MISALIGNED = "Misaligned"


@dataclass(frozen=True)
class XsimResult:
    """One direction of xSIM.

    direction: e.g. ``"src→tgt"``; nearest: (n,) int64 answer per source, an index into the
    target pool (targets, then hard negatives); errors: (n,) bool; pool: targets + negatives;
    error_types: xSIM++ errors by kind (empty without an error-type file).
    """

    direction: str
    nearest: np.ndarray
    errors: np.ndarray
    pool: int
    k: int
    margin: str
    by_text: bool
    error_types: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.errors.shape[0])

    @property
    def n_errors(self) -> int:
        return int(self.errors.sum())

    @property
    def error_rate(self) -> float:
        """errors / n, in [0, 1] (LASER prints ``100 *`` this)."""
        return self.n_errors / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"direction": self.direction, "errors": self.n_errors, "n": self.n,
                "xsim": self.error_rate, "xsim_percent": round(100 * self.error_rate, 2),
                "pool": self.pool, "hard_negatives": self.pool - self.n, "k": self.k,
                "margin": self.margin, "compare": "text" if self.by_text else "index",
                **({"error_types": self.error_types} if self.error_types else {})}


def _normalized(a: np.ndarray, what: str) -> np.ndarray:
    from ..io.embeddings import l2_normalize

    a = np.asarray(a, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{what}: expected a non-empty (n, d) array, got shape {a.shape}")
    return l2_normalize(np.ascontiguousarray(a))


def best_margin_both(x: np.ndarray, y: np.ndarray, k: int = LASER_K,
                     margin: str = LASER_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Each source's best-margin target and each target's best-margin source.

    x: (n, d), y: (m, d) float embeddings (normalised here). Returns ``(fwd (n,), bwd (m,))``
    int64 indices. One exact kNN pass gives both directions (speechmine's
    :func:`~speechmine.knn.exact_knn_both`), scored by :func:`~speechmine.margin.
    score_candidates` with k, the margin and the ``best`` candidate: the mining code itself.
    k larger than a side is clamped (with a warning). Cost: one n × m product.
    """
    from ..config import MineConfig
    from ..knn import clamp_k, exact_knn_both
    from ..margin import score_candidates

    if margin not in MARGINS:
        raise ValueError(f"unknown margin {margin!r}; choose one of {MARGINS}")
    x, y = _normalized(x, "sources"), _normalized(y, "targets")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"sources and targets differ in dimension: {x.shape[1]} != "
                         f"{y.shape[1]}")
    kf, kb = clamp_k(k, len(y), "target pool"), clamp_k(k, len(x), "source side")
    fwd, bwd = exact_knn_both(x, y, kf, kb)
    rule = MineConfig(k=k, margin=margin, candidate="best")
    _, f_tgt, _, b_src = score_candidates(fwd, bwd, rule)
    return f_tgt.astype(np.int64), b_src.astype(np.int64)


def _errors(nearest: np.ndarray, texts: Sequence[str] | None) -> np.ndarray:
    """(n,) bool: the answer is not the aligned item (by index, or by text with ``texts``:
    the texts of the whole pool, the aligned items first)."""
    n = len(nearest)
    if texts is None:
        return np.asarray(nearest != np.arange(n))
    return np.fromiter((texts[int(j)] != texts[i] for i, j in enumerate(nearest.tolist())),
                       dtype=bool, count=n)


def error_types(nearest: np.ndarray, errors: np.ndarray, pool_texts: Sequence[str],
                types: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    """xSIM++ errors by kind: an error whose answer's text is a negative made from the
    aligned target's text counts under that negative's ``errtype``, any other under
    :data:`MISALIGNED` (LASER's rule; texts compared stripped, as LASER does)."""
    out: dict[str, int] = {}
    for i in np.flatnonzero(errors).tolist():
        got = pool_texts[int(nearest[i])].strip()
        entry = types.get(got)
        kind = str(entry["errtype"]) if entry is not None and \
            entry.get("src") == pool_texts[i].strip() else MISALIGNED
        out[kind] = out.get(kind, 0) + 1
    return dict(sorted(out.items()))


def xsim(x: np.ndarray, y: np.ndarray, *, k: int = LASER_K, margin: str = LASER_MARGIN,
         negatives: np.ndarray | None = None, tgt_texts: Sequence[str] | None = None,
         negative_texts: Sequence[str] | None = None, by_text: bool = False,
         negative_types: Mapping[str, Mapping[str, str]] | None = None,
         direction: str = "src→tgt") -> XsimResult:
    """xSIM of sources ``x`` (n, d) against aligned targets ``y`` (n, d) (see module doc).

    negatives: (h, d) hard negatives appended to the target pool (xSIM++). tgt_texts (n,)
    and negative_texts (h,): the pool's texts, needed by ``by_text`` (an answer with the
    aligned target's text is right: duplicates are not errors) and by ``negative_types``
    (LASER's error-type JSON: errors counted by kind).
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"xSIM needs aligned collections: {n} sources but {len(y)} targets")
    pool = y if negatives is None or len(negatives) == 0 else \
        np.concatenate([np.asarray(y, np.float32), np.asarray(negatives, np.float32)])
    nearest, _ = best_margin_both(x, pool, k, margin)
    return _result(nearest, len(pool), k, margin, direction, by_text, negative_types,
                   None if tgt_texts is None else [*tgt_texts, *(negative_texts or [])])


def _result(nearest: np.ndarray, pool: int, k: int, margin: str, direction: str,
            by_text: bool, negative_types: Mapping[str, Mapping[str, str]] | None,
            texts: list[str] | None) -> XsimResult:
    if texts is not None and len(texts) != pool:
        raise ValueError(f"{len(texts)} texts for a pool of {pool} targets")
    if (by_text or negative_types is not None) and texts is None:
        raise ValueError("comparing by text and counting error types need the targets' texts")
    errors = _errors(nearest, texts if by_text else None)
    kinds = error_types(nearest, errors, texts, negative_types) \
        if negative_types is not None and texts is not None else {}
    return XsimResult(direction=direction, nearest=nearest, errors=errors, pool=pool, k=k,
                      margin=margin, by_text=by_text, error_types=kinds)


def xsim_both(x: np.ndarray, y: np.ndarray, *, k: int = LASER_K, margin: str = LASER_MARGIN,
              src_texts: Sequence[str] | None = None, tgt_texts: Sequence[str] | None = None,
              by_text: bool = False, negatives: np.ndarray | None = None,
              negative_texts: Sequence[str] | None = None,
              negative_types: Mapping[str, Mapping[str, str]] | None = None,
              names: tuple[str, str] = ("src", "tgt")) -> tuple[XsimResult, XsimResult]:
    """xSIM both ways: ``x`` → ``y`` (with the hard negatives, when given: they are targets)
    and ``y`` → ``x`` (plain xSIM: negatives are made of targets, they are no sources). Without
    negatives one kNN pass serves both directions."""
    a, b = names
    if negatives is not None and len(negatives):
        fwd = xsim(x, y, k=k, margin=margin, negatives=negatives, tgt_texts=tgt_texts,
                   negative_texts=negative_texts, by_text=by_text,
                   negative_types=negative_types, direction=f"{a}→{b}")
        bwd = xsim(y, x, k=k, margin=margin, tgt_texts=src_texts, by_text=by_text,
                   direction=f"{b}→{a}")
        return fwd, bwd
    if len(x) != len(y):
        raise ValueError(f"xSIM needs aligned collections: {len(x)} sources but {len(y)} "
                         "targets")
    f, r = best_margin_both(x, y, k, margin)
    return (_result(f, len(y), k, margin, f"{a}→{b}", by_text, None,
                    None if tgt_texts is None else list(tgt_texts)),
            _result(r, len(x), k, margin, f"{b}→{a}", by_text, None,
                    None if src_texts is None else list(src_texts)))
