"""Options and model files shared by the two SONAR encoders.

One parser (:func:`parse_options`) turns what a config or a caller gives (speechmine names,
stopes names such as ``mini_batch_size`` / ``gpu`` / ``fp16`` / ``spm_model``, model aliases)
into a :class:`SonarOptions`; both constructors and both ``identity()`` methods read that,
so what runs and what the cache key records cannot drift apart.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base import EncoderError, convert_option, unknown_options_error
from .download import cached_path, ensure_file
from .runtime import Runtime, effective_runtime, resolve_runtime

log = logging.getLogger(__name__)

__all__ = [
    "OptionSpec", "SonarOptions", "TEXT_SPEC", "SPEECH_SPEC", "CARD_DIM", "parse_options",
    "option_types", "SONAR_OPTION_MIN", "find_model_file", "resolve_model_file", "model_width",
]

#: Embedding width of every released SONAR model (text and speech share one space).
CARD_DIM = 1024


@dataclass(frozen=True)
class OptionSpec:
    """Which options one SONAR encoder takes (beyond those common to both)."""

    #: registry name, for messages
    encoder: str
    #: aliases of ``model``, in priority order (the first non-empty one wins)
    model_keys: tuple[str, ...]
    #: encoder-specific :class:`SonarOptions` fields it accepts
    fields: frozenset[str]
    #: stopes options accepted and not used (the constructor logs them)
    unused: tuple[str, ...]
    #: items per forward call when the options do not say
    batch_size: int
    #: options that decide how items are grouped into batches: part of the identity when
    #: the effective quantisation is int8 (its activation scales are chosen per batch)
    batching: tuple[str, ...] = ("batch_size",)


TEXT_SPEC = OptionSpec(
    encoder="sonar_text",
    # the stopes YAML calls the model `_name`; the pipeline may pass `model` or `name`
    model_keys=("model", "name", "_name"),
    fields=frozenset({"tokenizer", "lang_table", "max_seq_len", "num_heads"}),
    unused=("num_processes", "spm_vocab"),
    batch_size=64,
)
SPEECH_SPEC = OptionSpec(
    encoder="sonar_speech",
    model_keys=("model", "encoder_model"),
    fields=frozenset({"max_seq_len", "pooler_heads", "max_batch_seconds"}),
    # stopes' `_name` names its speech module (sonar2_speech_encoder) here, not a model
    unused=("num_processes", "spm_vocab", "_name"),
    batch_size=16,
    batching=("batch_size", "max_batch_seconds"),
)


@dataclass(frozen=True)
class SonarOptions:
    """A SONAR encoder's options with aliases, stopes names and defaults resolved.

    Fields the encoder does not take (``spec.fields``) keep their defaults.
    """

    spec: OptionSpec = field(repr=False)
    #: card name or checkpoint path; None: the encoder's default card
    model: str | None = None
    #: items per forward call
    batch_size: int = 64
    trust_checkpoint: bool = False
    cache_dir: str | None = None
    #: expected checkpoint sha256 (verified on download / first use)
    sha256: str | None = None
    device: str | None = None
    dtype: str | None = None
    quantize: str | None = None
    #: torch CPU threads (process-wide)
    threads: int | None = None
    #: stopes' device choice (None: CUDA when available)
    gpu: bool | None = None
    #: stopes' half precision (CUDA only)
    fp16: bool = False
    #: text: tokens; speech: encoder steps (20 ms each); None: the architecture's default
    max_seq_len: int | None = None
    # -- text only
    #: SentencePiece model path or card name; None: the card's
    tokenizer: str | None = None
    #: the model's language list in card order; None: the card's
    lang_table: tuple[str, ...] | None = None
    #: attention heads when not 64-dim (shapes do not record them)
    num_heads: int | None = None
    # -- speech only
    #: pooler attention heads when they differ from the encoder's
    pooler_heads: int | None = None
    #: padded audio per batch in seconds (longest item × count)
    max_batch_seconds: float = 160.0
    #: stopes options given and not used: ``(name, value)`` pairs, for the log
    unused: tuple[tuple[str, Any], ...] = ()

    def log_unused(self) -> None:
        """Say which stopes options were accepted without effect (constructors call this)."""
        for key, value in self.unused:
            log.info("%s: stopes option %s=%r is not used", self.spec.encoder, key, value)

    def _runtime_kwargs(self) -> dict[str, Any]:
        return dict(device=self.device, dtype=self.dtype, quantize=self.quantize, gpu=self.gpu,
                    fp16=self.fp16)

    def effective_runtime(self) -> Runtime:
        """The runtime the model will run with (no side effects)."""
        return effective_runtime(self.spec.encoder, **self._runtime_kwargs())

    def resolve_runtime(self) -> Runtime:
        """:meth:`effective_runtime`, logging overridden requests and setting threads."""
        return resolve_runtime(self.spec.encoder, threads=self.threads, **self._runtime_kwargs())

    def runtime_identity(self) -> dict[str, Any]:
        """``runtime`` (effective device type, dtype, quantisation) and ``batching``.

        Dynamic int8 quantisation picks its activation scales per batch, so under int8 the
        way items are grouped changes the vectors: the batching options enter the identity
        then (``batching`` is None otherwise, where batches only change rounding).
        """
        runtime = self.effective_runtime()
        batching = ({k: getattr(self, k) for k in self.spec.batching}
                    if runtime.quantize == "int8" else None)
        return {"runtime": runtime.identity(), "batching": batching}


#: Types of the options both SONAR encoders take (what :func:`parse_options` converts them
#: to, with :func:`speechmine.encoders.base.convert_option`, as ``check_options`` does).
_COMMON_TYPES: dict[str, Any] = {
    "batch_size": int | None, "mini_batch_size": int | None,
    "trust_checkpoint": bool, "cache_dir": str | None, "sha256": str | None,
    "device": str | None, "dtype": str | None, "quantize": str | None,
    "threads": int | None, "gpu": bool | None, "fp16": bool | None,
}
#: Types of the encoder-specific fields (``OptionSpec.fields``).
_FIELD_TYPES: dict[str, Any] = {
    "tokenizer": str | None, "lang_table": Sequence[str] | None, "max_seq_len": int | None,
    "num_heads": int | None, "pooler_heads": int | None, "max_batch_seconds": float | None,
}
#: Other names of a field (stopes').
_FIELD_ALIASES: dict[str, set[str]] = {"tokenizer": {"spm_model"}}
#: Inclusive lower bounds: counts where 0 would hang or make no sense.
SONAR_OPTION_MIN: dict[str, float] = {
    "batch_size": 1, "mini_batch_size": 1, "threads": 1, "max_seq_len": 1, "num_heads": 1,
    "pooler_heads": 1, "max_batch_seconds": 1.0,
}


def option_types(spec: OptionSpec) -> dict[str, Any]:
    """``{option: annotation}`` of every option the encoder of ``spec`` accepts, stopes
    names and model aliases included (stopes options it does not use: ``Any``)."""
    out = dict(_COMMON_TYPES)
    out.update({k: str | None for k in spec.model_keys})
    for name in spec.fields:
        out[name] = _FIELD_TYPES[name]
        out.update({alias: _FIELD_TYPES[name] for alias in _FIELD_ALIASES.get(name, ())})
    out.update({k: Any for k in spec.unused})
    return out


def _first(options: dict[str, Any], *keys: str) -> Any:
    """Pop all ``keys`` from ``options``; return the first non-empty value."""
    values = [options.pop(k, None) for k in keys]
    return next((v for v in values if v), None)


def parse_options(spec: OptionSpec, options: Mapping[str, Any], *,
                  strict: bool = True) -> tuple[SonarOptions, dict[str, Any]]:
    """Resolve ``options`` (``batch_size`` may be among them) for the encoder of ``spec``.

    Every option is first converted to its type (:func:`option_types`; booleans such as
    ``trust_checkpoint`` accept true/false, yes/no, y/n, on/off, 1/0 strings and never
    count a non-empty string as true) or refused with an :class:`EncoderError` naming it.
    Returns the options and what is left unknown. ``strict``: raise the constructor's
    :class:`EncoderError` for unknown options instead of returning them.
    """
    types = option_types(spec)
    rest = {k: (convert_option(v, types[k], name=k, encoder=spec.encoder,
                               minimum=SONAR_OPTION_MIN.get(k)) if k in types else v)
            for k, v in options.items()}
    batch_size = rest.pop("batch_size", None)
    mini_batch_size = rest.pop("mini_batch_size", None)  # stopes' name wins, as in stopes
    if mini_batch_size is not None:
        batch_size = mini_batch_size
    fp16 = bool(rest.pop("fp16", None))  # already a bool or None (stopes' null)
    values: dict[str, Any] = dict(
        model=_first(rest, *spec.model_keys),
        batch_size=batch_size if batch_size is not None else spec.batch_size,
        trust_checkpoint=rest.pop("trust_checkpoint", False),
        cache_dir=rest.pop("cache_dir", None),
        sha256=rest.pop("sha256", None),
        device=rest.pop("device", None),
        dtype=rest.pop("dtype", None),
        quantize=rest.pop("quantize", None),
        threads=rest.pop("threads", None),
        gpu=rest.pop("gpu", None),
        fp16=fp16,
    )
    if "tokenizer" in spec.fields:
        values["tokenizer"] = _first(rest, "tokenizer", "spm_model")
    if "lang_table" in spec.fields:
        table = rest.pop("lang_table", None)
        values["lang_table"] = tuple(table) if table is not None else None
    for name in ("max_seq_len", "num_heads", "pooler_heads"):
        if name in spec.fields:
            values[name] = rest.pop(name, None)
    if "max_batch_seconds" in spec.fields:
        seconds = rest.pop("max_batch_seconds", None)
        values["max_batch_seconds"] = 160.0 if seconds is None else seconds
    values["unused"] = tuple((k, rest.pop(k)) for k in spec.unused if k in rest)
    if strict and rest:
        raise unknown_options_error(spec.encoder, rest)
    return SonarOptions(spec=spec, **values), rest


# -- model files -----------------------------------------------------------------------
def _looks_like_path(value: str) -> bool:
    has_sep = any(sep in value for sep in ("/", "\\"))
    return has_sep or value.endswith((".pt", ".safetensors", ".model"))


def find_model_file(
    value: str | Path, cards: Mapping[str, str], what: str, cache_dir: str | Path | None,
    sha256: str | None = None, download: bool = True,
) -> tuple[Path | None, str | None]:
    """Local file for a model option that is a file path or a card name in ``cards``.

    ``cards`` maps card name → file name. Returns ``(path, card)``: ``card`` is the card name
    (None for a path). A card's file is fetched when absent (``download``), else ``path`` is
    None until it is. Raises :class:`EncoderError` for a value that is neither.
    """
    text = str(value)
    if text in cards:
        if not download:
            path = cached_path(cards[text], cache_dir)
            return (path if path.is_file() else None), text
        path = ensure_file(cards[text], what=f"{what} {text}", directory=cache_dir, sha256=sha256)
        return path, text
    path = Path(text).expanduser()
    if path.is_file():
        return path, None
    if _looks_like_path(text):
        raise EncoderError(f"{what}: file not found: {path}")
    close = difflib.get_close_matches(text, list(cards), n=5, cutoff=0.4)
    raise EncoderError(
        f"{what}: {text!r} is neither a file nor a known model name; "
        f"close matches: {', '.join(close) or '(none)'}"
    )


def resolve_model_file(
    value: str | Path, cards: Mapping[str, str], what: str, cache_dir: str | Path | None,
    sha256: str | None = None,
) -> tuple[Path, str]:
    """:func:`find_model_file`, downloading: ``(path, label)``, label = the card name or the
    file name (for logs and fingerprints)."""
    path, card = find_model_file(value, cards, what, cache_dir, sha256)
    assert path is not None  # downloading: a card's file is there or ensure_file raised
    return path, card or path.name


def model_width(value: str, cards: Mapping[str, str], what: str, opts: SonarOptions,
                kind: str) -> int | None:
    """Embedding width of the model ``value`` names, without loading or fetching it.

    A file on disk is read for its tensor shapes (:func:`.checkpoint.embedding_width`); a
    card whose file is not fetched yet has the released width, :data:`CARD_DIM`.
    """
    from .checkpoint import embedding_width

    path, _ = find_model_file(value, cards, what, opts.cache_dir, download=False)
    if path is None:
        return CARD_DIM
    return embedding_width(path, kind, trust=opts.trust_checkpoint)
