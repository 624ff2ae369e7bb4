"""``laser``: LASER2 / LASER3 sentence encoders (stopes' default ``embed_text``)."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import register
from ..base import DEFAULT_MAX_CHARS, Encoder
from ..sonar.download import file_sha256, model_file_identity
from ..sonar.runtime import Runtime, build_model, effective_runtime, resolve_runtime
from .checkpoint import LaserCheckpoint, checkpoint_width, load_laser
from .langs import RELEASED_DIM
from .model import PAD, LaserLstm, LaserTransformer, LstmConfig, TransformerConfig
from .options import (
    DEFAULT_BATCH_SIZE,
    OPTION_MIN,
    OPTION_TYPES,
    LaserOptions,
    parse_options,
    resolve_files,
)
from .tokenizer import PUNCT_LANG, LaserTokenizer

log = logging.getLogger(__name__)

__all__ = ["LaserEncoder"]

#: characters per token allowed before tokenising (as the SONAR text encoder): far above
#: what a token takes, so the character cut never bites before the token cut
CHARS_PER_TOKEN = 40


def _runtime(opts: LaserOptions, resolve: bool = False) -> Runtime:
    """The runtime of ``opts``: stopes' ``cpu`` means no CUDA, ``fp16`` / ``fp16_model``
    float16 (on CUDA only; float32 on CPU, as SONAR does)."""
    kwargs: dict[str, Any] = dict(device=opts.device, dtype=opts.dtype, quantize=None,
                                  gpu=False if opts.cpu else None, fp16=opts.fp16)
    if resolve:
        return resolve_runtime("laser", threads=opts.threads, **kwargs)
    return effective_runtime("laser", **kwargs)


@register
class LaserEncoder(Encoder):
    """LASER sentence encoders in plain PyTorch: LASER2 (BiLSTM, ~100 languages) and the
    LASER3 per-language transformer students, all in one 1024-d space.

    Options (besides ``lang`` and ``batch_size``; see docs/laser.md):
        model / encoder_model: ``laser2``, ``laser3`` (the LASER3 model of ``lang``),
            ``laser3-<language>`` (``laser3-wol_Latn``), ``auto`` (LASER3 where ``lang`` has
            one, else LASER2) or a checkpoint path. Default: ``auto`` when stopes' ``_name``
            is ``laser3_encoder``, else ``laser2``.
        spm_model, spm_vocab: SentencePiece model and ``.cvocab`` dictionary (paths or
            released file names); default: the released model's, or for a checkpoint path
            ``<checkpoint>.spm`` and ``<spm>.cvocab`` beside it (stopes' rule).
        max_sentences, max_tokens, stable_sort: how a batch is split into forward passes
            (LASER's; speed only). normalize: L2-normalise the outputs.
        fp16 / fp16_model: half precision (CUDA only). cpu: never CUDA. device, dtype,
            threads: as for SONAR. trust_checkpoint, cache_dir, sha256: as for SONAR.
        max_seq_len: tokens per sentence (with BOS/EOS); default: none for a BiLSTM (as
            LASER), the trained position limit for a transformer (1,024 for LASER3).
    """

    name = "laser"
    modality = "text"
    normalized = False
    OPTIONS = frozenset(OPTION_TYPES) - {"batch_size"}
    #: speed, safety and bookkeeping only
    TRANSIENT_OPTIONS = Encoder.TRANSIENT_OPTIONS | {
        "mini_batch_size", "max_sentences", "max_tokens", "stable_sort", "trust_checkpoint",
        "cache_dir", "sha256"}
    PACKAGES = ("torch", "sentencepiece", "sacremoses", "numpy")
    USES_LANG = False  # the language only picks a model, which the identity names
    VERSION = 1
    OPTION_TYPES = OPTION_TYPES
    OPTION_MIN = OPTION_MIN

    def __init__(self, lang: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 **options: Any) -> None:
        opts, rest = parse_options({"batch_size": batch_size, **options}, strict=False)
        super().__init__(lang=lang, batch_size=opts.batch_size, **rest)
        self.opts = opts
        self.runtime = _runtime(opts, resolve=True)
        self.files = resolve_files(opts, lang)
        assert self.files.checkpoint is not None and self.files.spm is not None
        ckpt = load_laser(self.files.checkpoint, self.files.vocab, trust=opts.trust_checkpoint)
        self.arch = ckpt.arch
        self.config = ckpt.config
        self.model = self._build(ckpt)
        self.tokenizer = LaserTokenizer(self.files.spm, ckpt.dictionary,
                                        prepend_bos=ckpt.prepend_bos)
        self.dim = ckpt.dim
        self.max_tokens = self.token_limit(ckpt.config, opts.max_seq_len)
        self.max_chars = (DEFAULT_MAX_CHARS if self.max_tokens is None else
                          max(DEFAULT_MAX_CHARS, CHARS_PER_TOKEN * self.max_tokens))
        self._sha: dict[str, str] = {}
        log.info("laser: %s (%s, dim %d%s) on %s", self.files.label, self.arch, self.dim,
                 f", LASER3 {self.files.lang}" if self.files.lang else "",
                 self.runtime.describe())

    def _build(self, ckpt: LaserCheckpoint) -> torch.nn.Module:
        cfg = ckpt.config
        model: torch.nn.Module
        if isinstance(cfg, LstmConfig):
            lstm_cfg = cfg
            model = build_model(lambda: LaserLstm(lstm_cfg), ckpt.state, self.runtime,
                                str(ckpt.path))
            if self.runtime.device.type == "cuda":
                model.lstm.flatten_parameters()
        else:
            tr_cfg = cfg
            model = build_model(lambda: LaserTransformer(tr_cfg), ckpt.state, self.runtime,
                                str(ckpt.path))
        return model

    @staticmethod
    def token_limit(cfg: LstmConfig | TransformerConfig, asked: int | None) -> int | None:
        """Tokens per sentence (with BOS/EOS): ``asked``, else none for a BiLSTM (LASER
        cuts nothing; memory is linear) and the trained position limit for a transformer
        (attention is quadratic; the reference has no cut, but fairseq trained and served
        these models within it). Learned positions end there whatever is asked."""
        if isinstance(cfg, LstmConfig):
            return asked
        if cfg.learned_pos and not cfg.no_positions:
            return min(asked or cfg.max_positions, cfg.max_positions)
        return asked or cfg.max_positions

    # -- identity (without loading the model) ------------------------------------------
    @classmethod
    def identity(cls, options: Mapping[str, Any], lang: str | None,
                 verify: str = "content") -> dict[str, Any]:
        """Code, package versions and what decides the vectors: the checkpoint, SentencePiece
        model and dictionary by content (released files are fetched when absent, not
        loaded; see :func:`speechmine.encoders.sonar.download.model_file_identity`), the
        released model's name and LASER3 language, ``max_seq_len``, ``normalize``, the
        Unicode database and punctuation rules of the preprocessing, and the effective
        runtime (device type, dtype)."""
        opts, _ = parse_options(options)
        files = resolve_files(opts, lang)
        assert files.checkpoint is not None and files.spm is not None
        vocab = (model_file_identity(files.vocab, files.vocab_name, verify)
                 if files.vocab is not None else None)
        return {
            **super().identity({}, lang, verify),
            "options": {
                "model": model_file_identity(files.checkpoint, files.name, verify),
                "spm_model": model_file_identity(files.spm, files.spm_name, verify),
                "spm_vocab": vocab,
                "laser3_lang": files.lang,
                "max_seq_len": opts.max_seq_len,
                "normalize": opts.normalize,
                "preprocess": {"unicode": unicodedata.unidata_version,
                               "punct_lang": PUNCT_LANG, "lower_case": True, "descape": False},
                "runtime": _runtime(opts).identity(),
            },
        }

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        """1024 for a released model not fetched yet; else read off the checkpoint without
        its weights (None for a legacy, non-zip file: only the model knows)."""
        opts, _ = parse_options(options, strict=False)
        files = resolve_files(opts, lang, download=False)
        if files.checkpoint is None:
            return RELEASED_DIM
        return checkpoint_width(files.checkpoint, trust=opts.trust_checkpoint)

    # -- encoding ----------------------------------------------------------------------
    def tokenize(self, sentences: Sequence[str]) -> list[list[int]]:
        """Token ids per sentence, cut to :attr:`max_tokens` (cut sentences are reported to
        :meth:`note_truncated`)."""
        limit = self.max_tokens
        special = 2 if self.tokenizer.prepend_bos else 1
        out, cut = [], []
        for i, text in enumerate(sentences):
            pieces = self.tokenizer.pieces(text)
            if limit is not None and len(pieces) + special > limit:
                cut.append(i)
            out.append(self.tokenizer.ids_of(pieces, limit))
        if cut:
            self.note_truncated(cut)
        return out

    def _groups(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Positions by decreasing length, grouped as LASER does: a group closes before the
        sentence that would take it over ``max_tokens`` (unpadded) or ``max_sentences``."""
        order = np.argsort(-lengths, kind="stable" if self.opts.stable_sort else "quicksort")
        groups: list[np.ndarray] = []
        start, tokens = 0, 0
        for k, i in enumerate(order):
            n = int(lengths[i])
            full = (tokens + n > self.opts.max_tokens or (
                self.opts.max_sentences is not None and k - start == self.opts.max_sentences))
            if k > start and full:
                groups.append(order[start:k])
                start, tokens = k, 0
            tokens += n
        groups.append(order[start:])
        return groups

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        """Embed sentences → ``(len(items), dim)`` float32."""
        ids = self.tokenize(items)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        if not ids:
            return out
        lengths = np.array([len(x) for x in ids], dtype=np.int64)
        dev = self.runtime.device
        for group in self._groups(lengths):
            width = int(lengths[group[0]])
            tokens = torch.full((len(group), width), PAD, dtype=torch.int64)
            for row, i in enumerate(group):
                tokens[row, : lengths[i]] = torch.tensor(ids[i], dtype=torch.int64)
            lens = torch.from_numpy(lengths[group].copy())
            with torch.inference_mode():
                emb = self.model(tokens.to(dev), lens)
            out[group] = emb.float().cpu().numpy()
        if self.opts.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = (out / np.where(norms > 0, norms, 1)).astype(np.float32)
        return out

    def fingerprint(self) -> dict[str, Any]:
        """Base fingerprint + model name, architecture, file sha256s, limits, precision."""
        if not self._sha:
            self._sha = {k: file_sha256(p) for k, p in (
                ("checkpoint", self.files.checkpoint), ("spm_model", self.files.spm),
                ("spm_vocab", self.files.vocab)) if p is not None}
        fp = super().fingerprint()
        fp.update(model=self.files.label, arch=self.arch, laser3_lang=self.files.lang,
                  sha256=self._sha, max_tokens=self.max_tokens, normalize=self.opts.normalize,
                  dtype=str(self.runtime.dtype).replace("torch.", ""))
        return fp

    @property
    def model_path(self) -> Path:
        """The checkpoint file."""
        assert self.files.checkpoint is not None
        return self.files.checkpoint

