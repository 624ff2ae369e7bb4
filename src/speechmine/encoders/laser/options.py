"""The ``laser`` encoder's options: stopes' ``LaserSentenceEncoder`` keys and speechmine's.

One parser (:func:`parse_options`) turns what a config or a caller gives into a
:class:`LaserOptions`; the constructor, ``identity()`` and ``dim_of()`` all read that, and
:func:`resolve_files` turns it into the three files (checkpoint, SentencePiece model,
dictionary), so that what runs and what the cache key records cannot drift apart.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base import EncoderError, convert_option, unknown_options_error
from .download import cached_path, fetch
from .langs import LASER2, ModelFiles, UnknownModelError, is_model_name, laser3_lang, model_files

log = logging.getLogger(__name__)

__all__ = ["LaserOptions", "OPTION_TYPES", "OPTION_MIN", "parse_options", "ResolvedFiles",
           "resolve_files", "DEFAULT_BATCH_SIZE", "DEFAULT_MAX_TOKENS"]

#: sentences per call to encode_batch (then grouped by the token budget, as LASER does)
DEFAULT_BATCH_SIZE = 256
#: tokens per forward pass (stopes' and LASER's ``max_tokens`` default)
DEFAULT_MAX_TOKENS = 12_000

#: every option, typed (what :func:`speechmine.encoders.base.check_options` converts to)
OPTION_TYPES: dict[str, Any] = {
    # stopes' LaserSentenceEncoder
    "_name": str | None, "encoder_model": str | None, "spm_model": str | None,
    "spm_vocab": str | None, "max_sentences": int | None, "max_tokens": int | None,
    "stable_sort": bool | None, "normalize": bool | None, "fp16": bool | None,
    "cpu": bool | None, "fp16_model": bool | None,
    # speechmine
    "model": str | None, "batch_size": int | None, "mini_batch_size": int | None,
    "device": str | None, "dtype": str | None, "threads": int | None,
    "trust_checkpoint": bool, "cache_dir": str | None, "sha256": str | None,
    "max_seq_len": int | None,
}
#: inclusive lower bounds
OPTION_MIN: dict[str, float] = {"batch_size": 1, "mini_batch_size": 1, "max_sentences": 1,
                                "max_tokens": 1, "threads": 1, "max_seq_len": 2}


@dataclass(frozen=True)
class LaserOptions:
    """The options with stopes' names, aliases and defaults resolved."""

    #: model name or checkpoint path (``model`` / stopes' ``encoder_model``); None: from
    #: ``name`` (stopes' ``_name``): ``auto`` for ``laser3_encoder``, else ``laser2``
    model: str | None = None
    #: stopes' module name (``laser2_encoder`` / ``laser3_encoder``)
    name: str | None = None
    spm_model: str | None = None
    spm_vocab: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    #: per forward pass: sentences (None: any) and tokens (with BOS/EOS and padding)
    max_sentences: int | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    stable_sort: bool = False
    #: L2-normalise each embedding (stopes' / LASER's ``normalize``)
    normalize: bool = False
    #: half precision asked for (stopes' ``fp16`` or ``fp16_model``): CUDA only
    fp16: bool = False
    #: stopes' ``cpu``: never CUDA
    cpu: bool = False
    device: str | None = None
    dtype: str | None = None
    threads: int | None = None
    trust_checkpoint: bool = False
    cache_dir: str | None = None
    sha256: str | None = None
    #: tokens per sentence (with BOS/EOS); None: the model's (see the encoder)
    max_seq_len: int | None = None

    def default_model(self) -> str:
        """The model when none is named: ``auto`` for stopes' ``laser3_encoder``, else
        ``laser2``."""
        return "auto" if self.name and "laser3" in self.name.lower() else "laser2"


def parse_options(options: Mapping[str, Any], encoder: str = "laser", *,
                  strict: bool = True) -> tuple[LaserOptions, dict[str, Any]]:
    """``options`` converted to their types and resolved; returns what is left unknown
    (``strict``: an :class:`EncoderError` instead)."""
    rest = {k: (convert_option(v, OPTION_TYPES[k], name=k, encoder=encoder,
                               minimum=OPTION_MIN.get(k)) if k in OPTION_TYPES else v)
            for k, v in options.items()}

    def pop(key: str, default: Any = None) -> Any:
        value = rest.pop(key, None)
        return default if value is None else value

    model = pop("model") or pop("encoder_model")
    rest.pop("encoder_model", None)
    batch_size = pop("mini_batch_size") or pop("batch_size", DEFAULT_BATCH_SIZE)
    rest.pop("batch_size", None)
    fp16 = bool(pop("fp16", False)) | bool(pop("fp16_model", False))
    opts = LaserOptions(
        model=model or None, name=pop("_name"), spm_model=pop("spm_model") or None,
        spm_vocab=pop("spm_vocab") or None, batch_size=int(batch_size),
        max_sentences=pop("max_sentences"), max_tokens=pop("max_tokens", DEFAULT_MAX_TOKENS),
        stable_sort=bool(pop("stable_sort", False)), normalize=bool(pop("normalize", False)),
        fp16=fp16, cpu=bool(pop("cpu", False)), device=pop("device"), dtype=pop("dtype"),
        threads=pop("threads"), trust_checkpoint=bool(pop("trust_checkpoint", False)),
        cache_dir=pop("cache_dir"), sha256=pop("sha256"), max_seq_len=pop("max_seq_len"),
    )
    if strict and rest:
        raise unknown_options_error(encoder, rest)
    return opts, rest


# -- files -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResolvedFiles:
    """The three files of one encoder; a path is None where it is not fetched yet
    (``download=False``) or, for the dictionary, where there is none."""

    checkpoint: Path | None
    spm: Path | None
    vocab: Path | None
    #: the released model's name (``laser2``, ``laser3-wol_Latn``); None for a path
    name: str | None
    #: the released names of the SentencePiece model and dictionary (None: a path)
    spm_name: str | None
    vocab_name: str | None
    #: the LASER3 language of a released LASER3 model
    lang: str | None

    @property
    def label(self) -> str:
        """The model's name, or its file name."""
        if self.name:
            return self.name
        return self.checkpoint.name if self.checkpoint else "?"


_RELEASED_AUX = re.compile(r"^(laser2|laser3-[A-Za-z]+_[A-Za-z]+\.v1)\.(spm|cvocab)$")


def _released(opts: LaserOptions, lang: str | None) -> ModelFiles | None:
    """The released model the options name (None: ``opts.model`` is a checkpoint path)."""
    if opts.model is None:
        return _named(opts.default_model(), lang)
    value = opts.model
    path = Path(value).expanduser()
    if path.is_file():
        return None
    if not is_model_name(value) and (
            "/" in value or "\\" in value or value.endswith((".pt", ".safetensors"))):
        raise EncoderError(f"laser: checkpoint not found: {path}")
    return _named(value, lang)


def _named(value: str, lang: str | None) -> ModelFiles:
    """The released model of a name (``auto``: LASER3 where ``lang`` has one, else LASER2,
    as LASER does); :class:`UnknownModelError` naming the forms otherwise."""
    if value == "auto":  # LASER3 where the language has one, LASER2 elsewhere (as LASER does)
        if not lang:
            return LASER2
        try:
            code = laser3_lang(lang)
        except UnknownModelError:
            return LASER2
        return model_files(f"laser3-{code}", None)
    return model_files(value, lang)


def _aux(value: str | None, released: str | None, what: str, opts: LaserOptions,
         download: bool) -> tuple[Path | None, str | None]:
    """A SentencePiece model or dictionary: the option's path or released file name, else
    the released model's file ``released``; ``(path, released name or None)``."""
    if value is not None:
        path = Path(value).expanduser()
        if path.is_file():
            return path, None
        if not _RELEASED_AUX.match(value):
            raise EncoderError(f"laser: {what} not found: {path}")
        released = value
    if released is None:
        return None, None
    if download:
        return fetch(released, f"LASER {what} {released}", opts.cache_dir), released
    path = cached_path(released, opts.cache_dir)
    return (path if path.is_file() else None), released


def resolve_files(opts: LaserOptions, lang: str | None, download: bool = True) -> ResolvedFiles:
    """Checkpoint, SentencePiece model and dictionary for ``opts`` (and ``lang``, when the
    model is ``laser3`` or ``auto``): released files are fetched into the cache when absent
    (``download``); for a checkpoint path, the defaults are stopes': ``<checkpoint>.spm`` and
    ``<spm>.cvocab`` beside it (the dictionary may be absent: a BiLSTM carries its own)."""
    released = _released(opts, lang)
    if released is not None:
        ckpt: Path | None
        if download:
            ckpt = fetch(released.checkpoint, f"LASER encoder {released.name}", opts.cache_dir,
                         sha256=opts.sha256)
        else:
            path = cached_path(released.checkpoint, opts.cache_dir)
            ckpt = path if path.is_file() else None
        spm, spm_name = _aux(opts.spm_model, released.spm, "SentencePiece model", opts,
                             download)
        vocab, vocab_name = _aux(opts.spm_vocab, released.vocab, "dictionary (spm_vocab)",
                                 opts, download)
        return ResolvedFiles(ckpt, spm, vocab, released.name, spm_name, vocab_name,
                             released.lang)
    ckpt = Path(str(opts.model)).expanduser()
    spm_default = None
    if opts.spm_model is None:
        spm_default = ckpt.with_suffix(".spm")
        if not spm_default.is_file():
            raise EncoderError(
                f"laser: no SentencePiece model given for {ckpt} and {spm_default.name} is not "
                "beside it: give spm_model (a path, or laser2.spm)")
    spm, spm_name = _aux(opts.spm_model or str(spm_default), None, "SentencePiece model",
                         opts, download)
    if opts.spm_vocab is not None:
        vocab, vocab_name = _aux(opts.spm_vocab, None, "dictionary (spm_vocab)", opts,
                                 download)
    else:
        beside = (spm or Path(str(spm_default))).with_suffix(".cvocab")
        vocab, vocab_name = (beside if beside.is_file() else None), None
    return ResolvedFiles(ckpt, spm, vocab, None, spm_name, vocab_name, None)
