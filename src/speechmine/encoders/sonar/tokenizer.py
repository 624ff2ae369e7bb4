"""NLLB-style SentencePiece tokenizer of the SONAR text encoder.

Ids (fairseq2 convention): pad = 0, every SentencePiece id + 1 (so unk = 1, bos = 2,
eos = 3), then one token per language in model-card order (``spm size + 1 + index``), then
three data-source control tokens. A sentence in language L encodes as
``[lang(L)] + pieces + [eos]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from .langs import text_lang

log = logging.getLogger(__name__)

__all__ = ["SonarTokenizer", "PAD", "UNK", "BOS", "EOS"]

PAD, UNK, BOS, EOS = 0, 1, 2, 3
#: Control tokens after the language tokens (data-source tags of NLLB training).
NUM_TRAILING_CONTROL = 3


class SonarTokenizer:
    """Encode sentences to SONAR text-encoder token ids.

    Args:
        model_file: SentencePiece ``.model`` file.
        langs: the model's language table in card order (defines language-token ids).
    """

    def __init__(self, model_file: str | Path, langs: Sequence[str]) -> None:
        import sentencepiece as spm

        self.model_file = Path(model_file)
        self._sp = spm.SentencePieceProcessor(model_file=str(self.model_file))
        self.langs = tuple(langs)
        if len(set(self.langs)) != len(self.langs):
            raise ValueError("language table has duplicates")
        self.spm_size = int(self._sp.get_piece_size())
        if self._sp.unk_id() != 0:
            # the +1 shift assumes unk/bos/eos at 0/1/2 as in the NLLB tokenizer
            log.warning("SentencePiece model %s has unk id %d, not 0",
                        model_file, self._sp.unk_id())

    @property
    def vocab_size(self) -> int:
        """Ids the tokenizer can produce: pad + pieces + languages + control tokens."""
        return 1 + self.spm_size + len(self.langs) + NUM_TRAILING_CONTROL

    def lang_id(self, lang: str) -> int:
        """Token id of language ``lang`` (any code :func:`.langs.text_lang` accepts)."""
        return 1 + self.spm_size + self.langs.index(text_lang(lang, self.langs))

    def encode(self, sentences: Sequence[str], lang: str) -> list[list[int]]:
        """``[lang] + (piece id + 1 ...) + [eos]`` for each sentence (no truncation)."""
        prefix = self.lang_id(lang)
        pieces = self._sp.encode(list(sentences), out_type=int)
        return [[prefix, *(p + 1 for p in ids), EOS] for ids in pieces]
