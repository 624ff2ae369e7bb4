"""``sonar_text``: the SONAR text encoder (200 languages, 1024-d) as a speechmine encoder."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from .. import register
from ..base import DEFAULT_MAX_CHARS, Encoder, EncoderError
from ._cards import TEXT_DEFAULT_LANG, TEXT_FILE, TEXT_LANGS, TEXT_MODEL, TOKENIZER_FILE
from .checkpoint import checkpoint_state, to_fairseq2_text
from .download import file_sha256, model_file_identity
from .langs import UnknownLanguageError, text_lang
from .options import (
    SONAR_OPTION_MIN,
    TEXT_SPEC,
    SonarOptions,
    find_model_file,
    model_width,
    option_types,
    parse_options,
    resolve_model_file,
)
from .runtime import Runtime, build_model
from .text_model import SonarTextModel, TextConfig, infer_text_config
from .tokenizer import PAD, SonarTokenizer

log = logging.getLogger(__name__)

__all__ = ["SonarTextEncoder", "resolve_model_file"]

_MODEL_CARDS = {TEXT_MODEL: TEXT_FILE}
#: Characters per token allowed before tokenising: ~10 times what a token of text takes on
#: average, and more than the longest piece, so the character cut never bites before the
#: token cut (except on runs of blanks or of characters the tokenizer drops).
CHARS_PER_TOKEN = 40
_TOKENIZER_CARDS = {TEXT_MODEL: TOKENIZER_FILE}


def _languages(opts: SonarOptions, lang: str | None) -> tuple[tuple[str, ...], str]:
    """The model's language table and the entry of it ``lang`` means (English when None)."""
    langs = opts.lang_table if opts.lang_table is not None else TEXT_LANGS
    try:
        return langs, text_lang(lang or TEXT_DEFAULT_LANG, langs)
    except UnknownLanguageError as exc:
        raise EncoderError(str(exc)) from None


class _SonarWeights(Protocol):
    """What :func:`sonar_weights_fingerprint` reads of a SONAR encoder (text or speech)."""

    model_path: Path
    model_label: str
    runtime: Runtime
    _sha: str | None


def sonar_weights_fingerprint(enc: _SonarWeights) -> dict[str, Any]:
    """Model name, checkpoint sha256 (hashed once, kept on ``enc``) and precision: shared by
    the text and speech encoders."""
    if enc._sha is None:
        enc._sha = file_sha256(enc.model_path)
    return {"model": enc.model_label, "sha256": enc._sha,
            "dtype": str(enc.runtime.dtype).replace("torch.", ""),
            "quantize": enc.runtime.quantize}


@register
class SonarTextEncoder(Encoder):
    """SONAR text encoder (NLLB-style transformer, masked mean pooling), plain PyTorch.

    Options (besides ``lang`` and ``batch_size``):
        model / name / _name: card name (``text_sonar_basic_encoder``) or a checkpoint path.
        tokenizer / spm_model: SentencePiece model path (default: the card's, downloaded).
        lang_table: the model's language list in card order (default: the card's 202).
        max_seq_len: token limit (default 514); longer inputs keep their first
            ``max_seq_len`` tokens (as the official pipeline), counted in ``n_truncated``.
        num_heads: attention heads when not 64-dim (shapes do not record them).
        device, dtype, threads, quantize: see :func:`.runtime.resolve_runtime`.
        trust_checkpoint: allow full unpickling of this checkpoint (only for files you trust).
        cache_dir: model file cache (default ``$SPEECHMINE_CACHE/sonar``).
        sha256: expected checkpoint sha256 (verified on download / first use).
        stopes options: mini_batch_size, gpu, fp16, spm_vocab, num_processes.

    Identity (:meth:`identity`): the output depends on ``lang`` (it picks the language token)
    and, under int8, on ``batch_size`` (see :meth:`.options.SonarOptions.runtime_identity`).

    Input bound: ``max_tokens`` = ``max_seq_len`` tokens (514 by default) reach the model;
    before tokenising, a sentence is cut to ``max_chars`` = ``max(20,000, 40 × max_seq_len)``
    characters (20,560 by default), so the tokenizer never sees a megabyte line. A sentence
    cut at either limit counts once in ``n_truncated``.
    """

    name = "sonar_text"
    modality = "text"
    normalized = False
    OPTIONS = frozenset({"model", "_name", "tokenizer", "spm_model", "lang_table", "max_seq_len",
                         "num_heads", "trust_checkpoint", "cache_dir", "sha256", "device",
                         "dtype", "quantize", "threads", "gpu", "fp16"})
    #: speed, safety and bookkeeping only; the batch size matters under int8 (identity())
    TRANSIENT_OPTIONS = Encoder.TRANSIENT_OPTIONS | {
        "mini_batch_size", "trust_checkpoint", "cache_dir", "sha256", "spm_vocab",
        "num_processes"}
    PACKAGES = ("torch", "sentencepiece", "numpy")
    USES_LANG = True
    OPTION_TYPES = option_types(TEXT_SPEC)
    OPTION_MIN = SONAR_OPTION_MIN

    def __init__(self, lang: str | None = None, batch_size: int = TEXT_SPEC.batch_size,
                 **options: Any) -> None:
        opts, rest = parse_options(TEXT_SPEC, {"batch_size": batch_size, **options},
                                   strict=False)
        super().__init__(lang=lang, batch_size=opts.batch_size, **rest)
        opts.log_unused()

        self.runtime = opts.resolve_runtime()
        self.langs, self.lang_code = _languages(opts, lang)
        if lang is None:
            log.info("sonar_text: no lang given; using %s", self.lang_code)

        self.model_path, self.model_label = resolve_model_file(
            opts.model or TEXT_MODEL, _MODEL_CARDS, "SONAR text encoder", opts.cache_dir,
            opts.sha256,
        )
        tok_path, _ = resolve_model_file(
            opts.tokenizer or TEXT_MODEL, _TOKENIZER_CARDS, "SONAR tokenizer", opts.cache_dir
        )
        self.tokenizer = SonarTokenizer(tok_path, self.langs)
        self.lang_token = self.tokenizer.lang_id(self.lang_code)

        state, wrapper = checkpoint_state(self.model_path, trust=opts.trust_checkpoint)
        try:
            state = to_fairseq2_text(state, wrapper)
            cfg = infer_text_config(state, max_seq_len=opts.max_seq_len,
                                    num_heads=opts.num_heads)
        except ValueError as exc:
            raise EncoderError(f"{self.model_path}: {exc}") from None
        if self.tokenizer.vocab_size > cfg.vocab_size:
            raise EncoderError(
                f"tokenizer {tok_path.name} + {len(self.langs)} languages need "
                f"{self.tokenizer.vocab_size} ids but the model embeds {cfg.vocab_size}: "
                "wrong tokenizer or lang_table for this checkpoint"
            )
        self.config = cfg
        self.model = build_model(
            lambda: SonarTextModel(cfg), state, self.runtime, str(self.model_path)
        )
        self.dim = cfg.model_dim
        self.max_tokens = cfg.max_seq_len
        self.max_chars = max(DEFAULT_MAX_CHARS, CHARS_PER_TOKEN * cfg.max_seq_len)
        self._sha: str | None = None
        log.info("sonar_text: %s (%d layers, dim %d) lang %s on %s", self.model_label,
                 cfg.num_layers, cfg.model_dim, self.lang_code, self.runtime.describe())

    # -- identity (without loading the model) ------------------------------------------
    @classmethod
    def identity(cls, options: Mapping[str, Any], lang: str | None,
                 verify: str = "content") -> dict[str, Any]:
        """Code, package versions, the resolved language code (it picks the language token)
        and ``options``: checkpoint and tokenizer file identities (a card's file is fetched
        when absent, not loaded; see :func:`.download.model_file_identity`), the language
        table, ``max_seq_len`` (default filled in), ``num_heads`` (None: derived from the
        weights), the effective runtime and, under int8, the batching."""
        opts, _ = parse_options(TEXT_SPEC, options)
        langs, lang_code = _languages(opts, lang)
        model, card = find_model_file(opts.model or TEXT_MODEL, _MODEL_CARDS,
                                      "SONAR text encoder", opts.cache_dir, opts.sha256)
        tok, tok_card = find_model_file(opts.tokenizer or TEXT_MODEL, _TOKENIZER_CARDS,
                                        "SONAR tokenizer", opts.cache_dir)
        assert model is not None and tok is not None  # fetched (or find_model_file raised)
        return {
            **super().identity({}, lang, verify),
            "lang": lang_code,
            "options": {
                "model": model_file_identity(model, card, verify),
                "tokenizer": model_file_identity(tok, tok_card, verify),
                "lang_table": list(langs),
                "max_seq_len": opts.max_seq_len or TextConfig.max_seq_len,
                "num_heads": opts.num_heads,
                **opts.runtime_identity(),
            },
        }

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        """Width read off the checkpoint's tensor shapes (1024 for a card not fetched yet)."""
        opts, _ = parse_options(TEXT_SPEC, options, strict=False)
        return model_width(opts.model or TEXT_MODEL, _MODEL_CARDS, "SONAR text encoder", opts,
                           "text")

    # -- encoding ----------------------------------------------------------------------
    def tokenize(self, sentences: Sequence[str]) -> list[list[int]]:
        """Token ids per sentence, truncated to ``max_seq_len`` (reported to
        :meth:`note_truncated`: counted once per sentence in ``n_truncated``)."""
        ids = self.tokenizer.encode(sentences, self.lang_code)
        limit = self.config.max_seq_len
        cut = [i for i, x in enumerate(ids) if len(x) > limit]
        if cut:
            self.note_truncated(cut)
            # as the official pipeline: keep the first max_seq_len tokens (EOS may go)
            ids = [x[:limit] for x in ids]
        return ids

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        """Embed sentences → ``(len(items), dim)`` float32."""
        ids = self.tokenize(items)
        lengths = torch.tensor([len(x) for x in ids], dtype=torch.int64)
        tokens = torch.full((len(ids), int(lengths.max())), PAD, dtype=torch.int64)
        for i, row in enumerate(ids):
            tokens[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
        dev = self.runtime.device
        with torch.inference_mode():
            out = self.model(tokens.to(dev), lengths.to(dev))
        return out.float().cpu().numpy()

    def weights_fingerprint(self) -> dict[str, Any]:
        """Model name, checkpoint sha256 (hashed once) and precision: shared by both encoders."""
        return sonar_weights_fingerprint(self)

    def fingerprint(self) -> dict[str, Any]:
        """Base fingerprint + checkpoint/tokenizer sha256, language token, limits, precision."""
        fp = super().fingerprint()
        fp.update(
            lang=self.lang_code,
            tokenizer_sha256=file_sha256(self.tokenizer.model_file),
            lang_token=self.lang_token,
            max_seq_len=self.config.max_seq_len,
            **self.weights_fingerprint(),
        )
        return fp
