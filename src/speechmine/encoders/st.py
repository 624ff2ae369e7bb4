"""Any sentence-transformers model (LaBSE, multilingual-e5, …) for users with internet access.

``pip install 'speechmine[st]'``; the model is fetched by sentence-transformers on first use
(or loaded from a local directory given as ``model``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import register
from .base import Encoder


@register
class SentenceTransformerEncoder(Encoder):
    """Wraps ``sentence_transformers.SentenceTransformer(model)``."""

    name = "sentence_transformers"
    modality = "text"

    def __init__(self, lang: str | None = None, model: str = "sentence-transformers/LaBSE",
                 batch_size: int = 32, device: str | None = None, prefix: str = "",
                 **options: Any) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        from sentence_transformers import SentenceTransformer

        self.model_name, self.prefix = model, prefix
        self._model = SentenceTransformer(model, device=device)
        self.dim = int(self._model.get_sentence_embedding_dimension())

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        texts = [self.prefix + t for t in items]
        return self._model.encode(texts, batch_size=len(texts), convert_to_numpy=True)

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "lang": None, "model": self.model_name,
                "prefix": self.prefix}
