"""``sonar_text``: the SONAR text encoder (200 languages, 1024-d) as a speechmine encoder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import register
from ..base import Encoder, EncoderError
from ._cards import TEXT_DEFAULT_LANG, TEXT_FILE, TEXT_LANGS, TEXT_MODEL, TOKENIZER_FILE
from .checkpoint import extract_state_dict, load_checkpoint, to_fairseq2_text
from .download import ensure_file, file_sha256
from .langs import UnknownLanguageError, text_lang
from .runtime import RUNTIME_OPTIONS, build_model, pop_stopes_options, resolve_runtime
from .text_model import SonarTextModel, infer_text_config
from .tokenizer import PAD, SonarTokenizer

log = logging.getLogger(__name__)

__all__ = ["SonarTextEncoder", "resolve_model_file"]


def _first(options: dict[str, Any], *keys: str) -> Any:
    """Pop all ``keys`` from ``options``; return the first non-empty value."""
    values = [options.pop(k, None) for k in keys]
    return next((v for v in values if v), None)


def _looks_like_path(value: str) -> bool:
    has_sep = any(sep in value for sep in ("/", "\\"))
    return has_sep or value.endswith((".pt", ".safetensors", ".model"))


def resolve_model_file(
    value: str | Path, cards: dict[str, str], what: str, cache_dir: str | Path | None,
    sha256: str | None = None,
) -> tuple[Path, str]:
    """Local path for a model option that is a file path or a card name in ``cards``.

    ``cards`` maps card name → file name. Returns ``(path, label)``; label is the card name
    or the file name (used in fingerprints, so moving a file does not change cache keys).
    """
    text = str(value)
    if text in cards:
        path = ensure_file(cards[text], what=f"{what} {text}", directory=cache_dir, sha256=sha256)
        return path, text
    path = Path(text).expanduser()
    if path.is_file():
        return path, path.name
    if _looks_like_path(text):
        raise EncoderError(f"{what}: file not found: {path}")
    import difflib

    close = difflib.get_close_matches(text, list(cards), n=5, cutoff=0.4)
    raise EncoderError(
        f"{what}: {text!r} is neither a file nor a known model name; "
        f"close matches: {', '.join(close) or '(none)'}"
    )


@register
class SonarTextEncoder(Encoder):
    """SONAR text encoder (NLLB-style transformer, masked mean pooling), plain PyTorch.

    Options (besides ``lang`` and ``batch_size``):
        model / name / _name: card name (``text_sonar_basic_encoder``) or a checkpoint path.
        tokenizer / spm_model: SentencePiece model path (default: the card's, downloaded).
        lang_table: the model's language list in card order (default: the card's 202).
        max_seq_len: token limit (default 514); longer inputs are truncated with a warning.
        num_heads: attention heads when not 64-dim (shapes do not record them).
        device, dtype, threads, quantize: see :func:`.runtime.resolve_runtime`.
        trust_checkpoint: allow full unpickling of this checkpoint (only for files you trust).
        cache_dir: model file cache (default ``$SPEECHMINE_CACHE/sonar``).
        sha256: expected checkpoint sha256 (verified on download / first use).
        stopes options: mini_batch_size, gpu, fp16, spm_vocab, num_processes.
    """

    name = "sonar_text"
    modality = "text"
    normalized = False
    OPTIONS = frozenset({"model", "_name", "tokenizer", "spm_model", "lang_table", "max_seq_len",
                         "num_heads", "trust_checkpoint", "cache_dir", "sha256", "device",
                         "dtype", "quantize", "threads", "gpu", "fp16"})
    TRANSIENT_OPTIONS = Encoder.TRANSIENT_OPTIONS | {"trust_checkpoint", "cache_dir", "sha256"}

    def __init__(self, lang: str | None = None, batch_size: int = 64, **options: Any) -> None:
        stopes = pop_stopes_options(self.name, options)
        batch_size = int(stopes.pop("batch_size", batch_size))
        # the stopes YAML calls the model `_name`; the pipeline may pass `model` or `name`
        model = _first(options, "model", "name", "_name")
        tokenizer = _first(options, "tokenizer", "spm_model")
        lang_table = options.pop("lang_table", None)
        max_seq_len = options.pop("max_seq_len", None)
        num_heads = options.pop("num_heads", None)
        trust = bool(options.pop("trust_checkpoint", False))
        cache_dir = options.pop("cache_dir", None)
        sha256 = options.pop("sha256", None)
        rt_opts = {k: options.pop(k) for k in RUNTIME_OPTIONS if k in options}
        super().__init__(lang=lang, batch_size=batch_size, **options)

        self.runtime = resolve_runtime(self.name, **rt_opts, **stopes)
        self.langs = tuple(lang_table) if lang_table is not None else TEXT_LANGS
        try:
            self.lang_code = text_lang(lang or TEXT_DEFAULT_LANG, self.langs)
        except UnknownLanguageError as exc:
            raise EncoderError(str(exc)) from None
        if lang is None:
            log.info("sonar_text: no lang given; using %s", self.lang_code)

        self.model_path, self.model_label = resolve_model_file(
            model or TEXT_MODEL, {TEXT_MODEL: TEXT_FILE}, "SONAR text encoder", cache_dir, sha256
        )
        tok_path, _ = resolve_model_file(
            tokenizer or TEXT_MODEL, {TEXT_MODEL: TOKENIZER_FILE}, "SONAR tokenizer", cache_dir
        )
        self.tokenizer = SonarTokenizer(tok_path, self.langs)
        self.lang_token = self.tokenizer.lang_id(self.lang_code)

        state, wrapper = extract_state_dict(load_checkpoint(self.model_path, trust=trust))
        state = to_fairseq2_text(state, wrapper)
        try:
            cfg = infer_text_config(state, max_seq_len=max_seq_len, num_heads=num_heads)
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
        self.n_truncated = 0
        self._sha: str | None = None
        log.info("sonar_text: %s (%d layers, dim %d) lang %s on %s", self.model_label,
                 cfg.num_layers, cfg.model_dim, self.lang_code, self.runtime.describe())

    # -- encoding ----------------------------------------------------------------------
    def tokenize(self, sentences: Sequence[str]) -> list[list[int]]:
        """Token ids per sentence, truncated to ``max_seq_len`` (counted, with a warning)."""
        ids = self.tokenizer.encode(sentences, self.lang_code)
        limit = self.config.max_seq_len
        cut = sum(len(x) > limit for x in ids)
        if cut:
            self.n_truncated += cut
            log.warning("sonar_text: %d sentence(s) truncated to %d tokens (%d so far)",
                        cut, limit, self.n_truncated)
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
        if self._sha is None:
            self._sha = file_sha256(self.model_path)
        return {"model": self.model_label, "sha256": self._sha,
                "dtype": str(self.runtime.dtype).replace("torch.", ""),
                "quantize": self.runtime.quantize}

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
