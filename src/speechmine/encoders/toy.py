"""A deterministic toy encoder with known answers, for tests and examples.

It understands number words in English, French, German and Spanish (0–20) and digits: a
sentence maps to a vector that is the L2-normalised sum of one-hot vectors of the numbers it
mentions, plus a small hash-based vector of its other words (so unrelated sentences are not
identical). "three dogs" and "trois chiens" share the number 3 and land close together.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import register
from .base import Encoder

_WORDS = {
    "en": "zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen twenty",
    "fr": "zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze "
          "quinze seize dix-sept dix-huit dix-neuf vingt",
    "de": "null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn "
          "vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn zwanzig",
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce "
          "quince dieciséis diecisiete dieciocho diecinueve veinte",
}
NUMBER_OF = {w: i for words in _WORDS.values() for i, w in enumerate(words.split())}
NUMBER_OF["une"] = 1
#: default embedding width
TOY_DIM = 64


@register
class ToyEncoder(Encoder):
    """Number-word encoder (dim 64 by default); ``noise`` weights the non-number words.

    Input bound: the first 20,000 characters of a sentence (the plug-in default,
    :data:`~speechmine.encoders.base.DEFAULT_MAX_CHARS`); longer ones are truncated and
    counted in ``n_truncated``.
    """

    name = "toy"
    modality = "text"
    #: ``delay`` only slows encoding down
    TRANSIENT_OPTIONS = Encoder.TRANSIENT_OPTIONS | {"delay"}
    PACKAGES = ("numpy",)
    #: 2: sentences over 20,000 characters are truncated
    VERSION = 2
    #: 21 number slots + at least 3 for the other words
    OPTION_MIN = {"dim": 24, "delay": 0.0}
    #: the languages of its number words (for the choice of an encoder by language)
    LANGS = frozenset(_WORDS)
    #: no calibration: its scores only order known answers (a run without a threshold
    #: gets the fallback 1.1 and a warning)
    CALIBRATION = None

    def __init__(self, lang: str | None = None, batch_size: int = 64, dim: int = TOY_DIM,
                 noise: float = 0.1, delay: float = 0.0, **options: Any) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        self.dim = self.option_value("dim", dim)
        self.noise: float = self.option_value("noise", noise)
        # seconds slept per batch: stands in for a slow model (interruption / resume tests)
        self.delay: float = self.option_value("delay", delay)

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        return int(options.get("dim", TOY_DIM))

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in re.findall(r"[\w-]+", text.lower()):
            if tok.isdigit() and int(tok) <= 20:
                v[int(tok)] += 1
            elif tok in NUMBER_OF:
                v[NUMBER_OF[tok]] += 1
            else:
                h = int.from_bytes(hashlib.md5(tok.encode()).digest()[:4], "little")
                v[21 + h % (self.dim - 21)] += self.noise
        return v

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        return np.stack([self._one(t) for t in items]) if items else np.zeros((0, self.dim))

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "lang": None, "noise": self.noise}
