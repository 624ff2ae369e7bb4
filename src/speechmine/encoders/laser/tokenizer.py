"""LASER's text preprocessing, as the official ``laser_encoders.LaserTokenizer`` does it.

For each sentence, in this order (the reference's defaults, which its pipelines use):

1. every character of Unicode category C (control, format, surrogate, private use,
   unassigned; the reference reads the set from ``unicategories``, built from Python's
   ``unicodedata``, which is what is used here) becomes a space;
2. Moses punctuation normalisation for ``en`` with Moses release-4.0 parity, through
   sacremoses' ``MosesPunctNormalizer`` with the reference's adjustments: ``’``, ``‘`` and ``‚``
   become ``"`` (after the letter-apostrophe-letter rules made ``isn’t`` → ``isn't``), French
   quotes with no-break spaces become `` "`` / ``" ``; then the ends are stripped;
3. lower-casing (``str.lower``);
4. SentencePiece pieces, joined by spaces and split again on whitespace;
5. token ids: each piece's id in the model's dictionary (``<unk>`` = 3 when absent), then
   ``</s>`` (2); a transformer trained with ``prepend_bos`` gets ``<s>`` (0) first.

No XML de-escaping (the reference's ``descape`` is off by default).
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .model import BOS, EOS, UNK

__all__ = ["LaserTokenizer", "non_printing_pattern", "punct_normalizer", "PUNCT_LANG"]

#: the reference builds its normaliser with the default language, whatever the text's
PUNCT_LANG = "en"
_SPACES = re.compile(r"\s+")

#: the reference's changes to sacremoses' rule list, by pattern: Moses release-4.0 parity
#: (``perl_parity=True``: ``’`` and French quotes) and LASER's own (``‘`` and ``‚``)
_PARITY = {"’": '"', "‘": '"', "‚": '"', "\u00a0«\u00a0": ' "', "\u00a0»\u00a0": '" '}


@functools.cache
def non_printing_pattern() -> re.Pattern[str]:
    """A regex matching one character of Unicode category C in this Python's database."""
    ranges: list[tuple[int, int]] = []
    start = prev = -2
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp))[0] == "C":
            if cp != prev + 1:
                if start >= 0:
                    ranges.append((start, prev))
                start = cp
            prev = cp
    ranges.append((start, prev))
    body = "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)
    return re.compile(f"[{body}]")


def punct_normalizer() -> Any:
    """sacremoses' ``MosesPunctNormalizer("en")`` with the reference's rules.

    Built without ``perl_parity`` (which, in sacremoses 0.1.0, rewrites the class's rule
    lists for every other normaliser in the process) and given the same rules by pattern.
    """
    sacremoses = importlib.import_module("sacremoses")  # untyped: Any
    norm = sacremoses.MosesPunctNormalizer(lang=PUNCT_LANG, perl_parity=False)
    norm.substitutions = [(p, _PARITY.get(p, r)) for p, r in norm.substitutions]
    return norm


class LaserTokenizer:
    """Sentences → LASER token ids for one SentencePiece model and one dictionary."""

    def __init__(self, spm_model: str | Path, dictionary: Mapping[str, int],
                 prepend_bos: bool = False) -> None:
        import sentencepiece

        self.spm_model = Path(spm_model)
        self.spm = sentencepiece.SentencePieceProcessor(model_file=str(spm_model))
        self.dictionary = dict(dictionary)
        self.prepend_bos = prepend_bos
        self._normalizer = punct_normalizer()
        self._non_printing = non_printing_pattern()

    def preprocess(self, text: str) -> str:
        """Steps 1–3: non-printing characters, punctuation, case."""
        text = self._non_printing.sub(" ", text)
        return str(self._normalizer.normalize(text)).lower()

    def pieces(self, text: str) -> list[str]:
        """SentencePiece pieces of the preprocessed ``text`` (step 4)."""
        joined = " ".join(self.spm.encode(self.preprocess(text), out_type=str))
        return _SPACES.sub(" ", joined).strip().split()

    def ids_of(self, pieces: list[str], limit: int | None = None) -> list[int]:
        """Token ids of ``pieces`` (step 5); ``limit``: at most this many ids in all, the
        first pieces kept (with ``<s>`` and ``</s>``)."""
        special = 2 if self.prepend_bos else 1
        if limit is not None and len(pieces) + special > limit:
            pieces = pieces[: max(limit - special, 0)]
        get = self.dictionary.get
        ids = [get(p, UNK) for p in pieces]
        ids.append(EOS)
        return [BOS, *ids] if self.prepend_bos else ids

    def encode(self, text: str) -> list[int]:
        """Token ids of one sentence, whole."""
        return self.ids_of(self.pieces(text))
