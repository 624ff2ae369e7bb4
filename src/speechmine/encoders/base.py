"""The encoder protocol every embedding model implements.

An encoder turns a batch of items (sentences for text, 16 kHz mono float32 waveforms for
speech) into an ``(n, dim)`` float32 matrix. Subclasses implement one method,
:meth:`Encoder.encode_batch`; sorting by length, batching, restoring the input order and the
per-item input bounds (:attr:`Encoder.max_chars`, :attr:`Encoder.max_seconds`) live once
here, in :meth:`Encoder.encode`.

Options are parsed by type in one place, :func:`check_options`: the config layer calls it
when it validates a file, :func:`speechmine.encoders.create` before it builds an encoder, and
the built-in constructors read their parameters through :meth:`Encoder.option_value`.
"""

from __future__ import annotations

import abc
import collections.abc
import functools
import inspect
import logging
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union

import numpy as np

if TYPE_CHECKING:
    from .calibration import Calibration

log = logging.getLogger(__name__)

Modality = Literal["text", "speech"]

#: Sample rate of the waveforms speech encoders receive (mono float32 in [-1, 1]).
SAMPLE_RATE = 16_000
#: Characters of one text item an encoder reads unless it declares its own ``max_chars``
#: (plug-ins included): longer items are truncated to their first ``max_chars`` characters.
DEFAULT_MAX_CHARS = 20_000
#: Longest speech item (seconds) unless a speech encoder declares its own ``max_seconds``.
DEFAULT_MAX_SECONDS = 120.0


class EncoderError(ValueError):
    """An encoder cannot be built or cannot encode the given input (message says why)."""


def unknown_options_error(encoder: str, options: Mapping[str, Any]) -> EncoderError:
    """The error for options an encoder does not take (constructors and ``identity()``)."""
    return EncoderError(f"encoder {encoder!r} got unknown option(s) {sorted(options)}")


# ---------------------------------------------------------------------------------------
# options parsed by declared type

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})
_INT_RE = re.compile(r"\s*[+-]?\d+\s*")


class _Invalid(Exception):
    """A value does not convert to an annotation (internal to :func:`convert_option`)."""


def _describe(tp: Any, minimum: float | None = None) -> str:
    """What a value of annotation ``tp`` must be, in words (for messages)."""
    at_least = f" >= {minimum:g}" if minimum is not None else ""
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return " or ".join(_describe(a, minimum) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if tp is bool:
        return "a boolean (true/false, yes/no, y/n, on/off, 1/0)"
    if tp is int:
        return "an integer" + at_least
    if tp is float:
        return "a number" + at_least
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if _container(tp) is not None:
        return "a list"
    if _is_mapping(tp):
        return "a mapping"
    return f"a {getattr(tp, '__name__', str(tp))}"


def _container(tp: Any) -> type | None:
    """``list`` or ``tuple`` when ``tp`` is a sequence annotation (the type it converts to)."""
    origin = typing.get_origin(tp) or tp
    if origin is tuple:
        return tuple
    if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence):
        return list
    return None


def _is_mapping(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def _exact(value: Any, tp: Any) -> bool:
    """Is ``value`` already of type ``tp`` (so that a union picks that member)?"""
    if tp is bool:
        return isinstance(value, (bool, np.bool_))
    if tp is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if tp is float:
        return isinstance(value, (float, np.floating))
    if tp is str:
        return isinstance(value, str)
    if tp is type(None):
        return value is None
    if _container(tp) is not None:
        return isinstance(value, (list, tuple))
    if _is_mapping(tp):
        return isinstance(value, collections.abc.Mapping)
    return isinstance(tp, type) and isinstance(value, tp)


def _to_int(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise _Invalid
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and \
            float(value).is_integer():
        return int(value)
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        return int(value)
    raise _Invalid


def _to_float(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise _Invalid
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Invalid from None
    else:
        raise _Invalid
    if not math.isfinite(number):
        raise _Invalid
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _Invalid


def _convert(value: Any, tp: Any, minimum: float | None) -> Any:
    """``value`` converted to annotation ``tp``; raises :class:`_Invalid` when it is not one."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        members = typing.get_args(tp)
        for member in members:  # a value already of a member's type stays that type
            if _exact(value, member):
                return _convert(value, member, minimum)
        for member in members:
            try:
                return _convert(value, member, minimum)
            except _Invalid:
                continue
        raise _Invalid
    if tp is type(None):
        if value is None:
            return None
        raise _Invalid
    if tp is bool:
        return _to_bool(value)
    if tp in (int, float):
        number = _to_int(value) if tp is int else _to_float(value)
        if minimum is not None and number < minimum:
            raise _Invalid
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise _Invalid
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise _Invalid
    kind = _container(tp)
    if kind is not None:  # checked shallowly: the container, not its items
        if isinstance(value, (str, bytes)) or not isinstance(value, collections.abc.Sequence):
            raise _Invalid
        return kind(value)
    if _is_mapping(tp):
        if not isinstance(value, collections.abc.Mapping):
            raise _Invalid
        return dict(value)
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Invalid
    return value  # an annotation this parser does not know: unchecked


def convert_option(value: Any, tp: Any, *, name: str = "option", encoder: str | None = None,
                   minimum: float | None = None) -> Any:
    """``value`` converted to the annotation ``tp``, or :class:`EncoderError` naming the
    option, the expected type and the value.

    ``bool``: a bool, or one of the strings true/false, yes/no, y/n, on/off, 1/0 (any case;
    never an arbitrary truthy value: ``"false"``, ``2`` and ``None`` are errors); ``int``: an
    int (not a bool), an integral float or a decimal string; ``float``: a finite number or a
    numeric string; ``str``: a string (a path becomes its string); ``X | None``: None or an
    X; lists, tuples and mappings: checked shallowly (the container, not its items); a
    class: an instance of it; ``Any`` or an annotation not listed here: unchanged.
    ``minimum`` bounds ints and floats from below (inclusive).
    """
    try:
        return _convert(value, tp, minimum)
    except _Invalid:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        who = f"encoder {encoder!r} option" if encoder else "option"
        raise EncoderError(f"{who} {name!r}: expected {_describe(tp, minimum)}, got {shown}"
                           ) from None


def parse_bool(value: Any, name: str = "option", encoder: str | None = None) -> bool:
    """``value`` as a bool by :func:`convert_option`'s rules (never ``bool(value)``)."""
    return bool(convert_option(value, bool, name=name, encoder=encoder))


def _init_hints(klass: type) -> dict[str, Any]:
    """Annotations of ``klass.__init__``'s named parameters (``lang`` aside); one that does
    not resolve is ``Any``."""
    init = klass.__dict__.get("__init__")
    if init is None:
        return {}
    params = inspect.signature(init).parameters
    names = [n for n, p in params.items()
             if n not in ("self", "lang") and p.kind not in (inspect.Parameter.VAR_KEYWORD,
                                                            inspect.Parameter.VAR_POSITIONAL)]
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # a plug-in annotation that does not resolve: take what does
        hints = {}
        namespace = dict(getattr(init, "__globals__", {}))
        for n in names:
            raw = init.__annotations__.get(n, Any)
            try:
                hints[n] = eval(raw, namespace) if isinstance(raw, str) else raw
            except Exception:
                hints[n] = Any
    return {n: hints.get(n, Any) for n in names}


@functools.cache
def option_types(cls: type[Encoder]) -> dict[str, Any]:
    """``{option: annotation}`` of encoder class ``cls``: the named parameters of every
    ``__init__`` in its MRO (``lang`` aside) and the ``OPTION_TYPES`` the classes declare
    for what they read from ``**options``; the most derived class wins. Do not mutate."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, Encoder)):
            continue
        out.update(_init_hints(klass))
        out.update(klass.__dict__.get("OPTION_TYPES", {}))
    return out


@functools.cache
def option_minimums(cls: type[Encoder]) -> dict[str, float]:
    """``{option: inclusive lower bound}``: the ``OPTION_MIN`` of ``cls`` and its bases."""
    out: dict[str, float] = {}
    for klass in reversed(cls.__mro__):
        out.update(klass.__dict__.get("OPTION_MIN", {}))
    return out


def check_options(cls: type[Encoder], options: Mapping[str, Any]) -> dict[str, Any]:
    """Encoder ``options`` converted to their declared types and checked; no side effects.

    Types come from the annotations of the constructor's named parameters (every
    ``__init__`` in the MRO) and from the class's ``OPTION_TYPES`` (options it reads from
    ``**options``); inclusive lower bounds from ``OPTION_MIN`` (``batch_size >= 1`` for
    every encoder, other counts per encoder). The conversion rules are
    :func:`convert_option`'s: booleans accept a bool or true/false, yes/no, y/n, on/off,
    1/0 in any case, never an arbitrary value by its truth. A name in ``OPTIONS`` without a
    type passes unchanged; any other name is an unknown option. Then the class's
    :meth:`Encoder.validate_options` runs (nested and cross-option checks, e.g. the
    cascade's ``text_options`` and ``asr_options``).

    Cheap: no model is loaded, no file read, nothing downloaded (a registered class may be
    imported to check a nested encoder). Returns a new dict with the same keys. Raises
    :class:`EncoderError` naming the option, the expected type and the value, or listing
    the unknown options.
    """
    typed = option_types(cls)
    minimums = option_minimums(cls)
    declared = set(getattr(cls, "OPTIONS", ()))
    out: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in options.items():
        if key in typed:
            out[key] = convert_option(value, typed[key], name=key, encoder=cls.name,
                                      minimum=minimums.get(key))
        elif key in declared:
            out[key] = value
        else:
            unknown[key] = value
    if unknown:
        raise unknown_options_error(cls.name, unknown)
    return cls.validate_options(out)


class Encoder(abc.ABC):
    """Base class of all encoders.

    Class attributes a subclass sets:
        name: registry key (``"usem3"``, ``"sonar_text"`` ...).
        modality: ``"text"`` or ``"speech"``: what :meth:`encode_batch` accepts.

    Instance attributes:
        dim: embedding width; known after ``__init__`` (no lazy surprise at index time).
        lang: language of the side this encoder serves (``None`` when the model ignores it).
        batch_size: items per call to :meth:`encode_batch` (transient: does not change
            results); at least 1.
        n_truncated: items this encoder has embedded only in part since it was built (text
            cut at :attr:`max_chars` characters or at the model's token limit), counted per
            item, not per batch; cumulative (the caller may read it before and after a shard,
            or set it to 0).

    Input bounds (per item, so that one huge line or segment cannot exhaust memory):
        max_chars: text encoders embed at most the first ``max_chars`` characters of an item
            (:meth:`limit_text`, applied by :meth:`encode`); plug-ins get
            :data:`DEFAULT_MAX_CHARS` unless they declare their own.
        max_tokens: the model's token limit where it has one (text beyond it is dropped, as
            the reference implementations do, and counted); documentation for the others.
        max_seconds: speech encoders refuse longer items through :meth:`check` (a reject
            reason) and :meth:`encode` (an :class:`EncoderError`).

    Options: the constructor's annotated parameters, ``OPTION_TYPES`` for the ones read from
    ``**options`` and ``OPTION_MIN`` for lower bounds are what :func:`check_options` parses.
    """

    name: ClassVar[str] = ""
    modality: ClassVar[Modality] = "text"
    #: Normalised output? The pipeline L2-normalises anyway; this only documents the model.
    normalized: ClassVar[bool] = False
    #: Option names a subclass reads from ``**options`` itself (besides its named
    #: parameters); the config layer accepts exactly these and reports the rest.
    OPTIONS: ClassVar[frozenset[str]] = frozenset()
    #: Options that cannot change the vectors beyond floating-point rounding (speed only):
    #: left out of cache keys. ``device`` is not among them: it decides the effective dtype
    #: and quantisation, which encoders that take it put into :meth:`identity`.
    TRANSIENT_OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"batch_size", "threads", "num_threads"})
    #: Distributions on the encode path: their versions enter :meth:`identity`.
    PACKAGES: ClassVar[tuple[str, ...]] = ("numpy",)
    #: Does the output depend on ``lang``? Only then does the language enter the identity,
    #: so that a language-blind model embeds a file once whichever side names it.
    USES_LANG: ClassVar[bool] = False
    #: Bump when a built-in encoder's code changes what it outputs (speechmine's own code
    #: is identified by this, not by the package version).
    VERSION: ClassVar[int] = 1
    #: Types of the options a subclass reads from ``**options`` (its named parameters are
    #: typed by their annotations): what :func:`check_options` converts them to.
    OPTION_TYPES: ClassVar[Mapping[str, Any]] = {}
    #: Inclusive lower bounds of numeric options (merged along the MRO): a count of 0 would
    #: hang or make no sense.
    OPTION_MIN: ClassVar[Mapping[str, float]] = {"batch_size": 1}
    #: Languages it covers, codes in any form (``en``, ``eng``, ``eng_Latn``); None: not
    #: declared. Read by the choice of an encoder by language (:mod:`.choice`); a class
    #: whose coverage depends on its options defines ``languages_for(options)`` instead.
    LANGS: ClassVar[frozenset[str] | None] = None
    #: The threshold measured for it (:class:`.calibration.Calibration`), used when a config
    #: sets none; None: not calibrated (the fallback, with a warning). A class whose
    #: calibration depends on its options defines ``calibration_for(options)`` instead.
    CALIBRATION: ClassVar[Calibration | None] = None

    #: Text: characters of one item that are embedded (the rest is dropped and counted).
    max_chars: int | None = DEFAULT_MAX_CHARS
    #: Text: tokens of one item the model reads, where it has a limit (None: no such limit).
    max_tokens: int | None = None
    #: Speech: the longest item in seconds (:meth:`check` rejects longer ones).
    max_seconds: float | None = DEFAULT_MAX_SECONDS

    def __init__(self, lang: str | None = None, batch_size: int = 64, **options: Any) -> None:
        if options:
            raise unknown_options_error(self.name, options)
        self.lang = self.option_value("lang", lang, str | None)
        self.batch_size: int = self.option_value("batch_size", batch_size)
        self.dim: int = 0
        self.n_truncated: int = 0
        #: truncation flags of the batch :meth:`encode` is embedding (see note_truncated)
        self._batch_truncated: np.ndarray | None = None

    # -- options -------------------------------------------------------------------------
    @classmethod
    def option_value(cls, name: str, value: Any, tp: Any = None) -> Any:
        """``value`` of option ``name`` converted to its declared type (or ``tp``) and lower
        bound, as :func:`check_options` does; constructors read their parameters with it,
        so that building an encoder directly is as strict as building it from a config."""
        if tp is None:
            tp = option_types(cls).get(name, Any)
        return convert_option(value, tp, name=name, encoder=cls.name,
                              minimum=option_minimums(cls).get(name))

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Hook of :func:`check_options`, after each option got its declared type: checks
        that involve several options or nested ones. Returns the (possibly converted)
        options; raises :class:`EncoderError`. Must stay cheap (no model loading)."""
        return options

    # -- what subclasses implement -------------------------------------------------------
    @abc.abstractmethod
    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        """Embed one batch. Returns ``(len(items), dim)`` float32 (need not be normalised)."""

    def check(self, item: Any) -> str | None:
        """Why ``item`` cannot be embedded (too short, too long …), or None when it can.

        The pipeline calls this before encoding and turns a reason into a reject line. This
        default rejects speech items longer than :attr:`max_seconds`; overrides should call
        it (or check the length themselves).
        """
        return self._too_long(item)

    def _too_long(self, item: Any) -> str | None:
        """The reject reason of a speech item over :attr:`max_seconds` (None otherwise)."""
        if self.modality != "speech" or self.max_seconds is None:
            return None
        n = int(np.shape(item)[0]) if np.ndim(item) else 0
        if n > self.max_seconds * SAMPLE_RATE:
            return (f"too long: {n / SAMPLE_RATE:.2f} s exceeds the {self.name} encoder's "
                    f"limit of {self.max_seconds:g} s")
        return None

    def limit_text(self, text: str) -> tuple[str, bool]:
        """``(what this encoder embeds of text, whether content was dropped)``: by default
        the first :attr:`max_chars` characters.

        :meth:`encode` applies it to every text item and counts the items it reports as
        truncated. Override (calling ``super()``) to cut further, e.g. at a token limit; an
        encoder that cuts tokens inside :meth:`encode_batch` reports those items with
        :meth:`note_truncated` instead.
        """
        if self.max_chars is not None and len(text) > self.max_chars:
            return text[: self.max_chars], True
        return text, False

    def note_truncated(self, positions: Iterable[int]) -> None:
        """Record that the items at ``positions`` of the batch given to
        :meth:`encode_batch` lost content at a limit (e.g. tokens beyond the model's).

        Within :meth:`encode` an item is counted once however many limits cut it; when
        :meth:`encode_batch` is called directly, the count grows here.
        """
        where = list(positions)
        if not where:
            return
        if self._batch_truncated is not None:
            self._batch_truncated[where] = True
        else:
            self.n_truncated += len(where)
            log.warning("%s: %d item(s) truncated%s (%d so far)", self.name, len(where),
                        self._limits(), self.n_truncated)

    def _limits(self) -> str:
        kept = []
        if self.max_chars is not None:
            kept.append(f"{self.max_chars:,} characters")
        if self.max_tokens is not None:
            kept.append(f"{self.max_tokens:,} tokens")
        return f" to their first {' / '.join(kept)}" if kept else ""

    def item_cost(self, item: Any) -> int:
        """Relative cost of one item (characters, samples); used to sort before batching."""
        return len(item)

    # -- identity (known without loading the model) -------------------------------------
    @classmethod
    def identity(cls, options: Mapping[str, Any], lang: str | None,
                 verify: str = "content") -> dict[str, Any]:
        """Everything that decides this encoder's vectors, as JSON-able data for cache keys.

        Computed without loading the model: the class and its code (see
        :func:`code_identity`), the versions of :attr:`PACKAGES`, ``lang`` when
        :attr:`USES_LANG`, and the options minus :attr:`TRANSIENT_OPTIONS`, where an option
        naming an existing file or directory is replaced by that file's identity (its bytes,
        or with ``verify="stat"`` its path, size and mtime; see :mod:`speechmine.io.identity`).

        This default is the documented hook for plug-in encoders and is safe as is for models
        whose weights ship in a versioned package or sit in files named by options. Override
        it (calling ``super().identity``) to add what the options do not show: weights found
        through a model name, the effective dtype or quantisation on the device the model
        will run on, a tokenizer. It must not load the model.
        """
        return {
            "encoder": cls.name,
            "code": code_identity(cls),
            "packages": package_versions(cls.PACKAGES),
            "lang": lang if cls.USES_LANG else None,
            "options": option_identity(
                {k: v for k, v in options.items() if k not in cls.TRANSIENT_OPTIONS}, verify),
        }

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        """The embedding width without loading the model, or None when only the model knows.

        The pipeline uses it to check both sides share a space before embedding anything.
        """
        return None

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this encoder's *results*: goes into cache keys and sidecars.

        Subclasses add model file checksums, weights versions, options that change output.
        Batch size, threads and device are deliberately absent: they do not change results.
        """
        return {"encoder": self.name, "dim": self.dim, "lang": self.lang}

    # -- shared machinery ----------------------------------------------------------------
    #: Optional padded-batch budget in cost units (e.g. samples for speech: the longest item
    #: × batch length stays within it); ``batch_size`` still caps the item count.
    max_batch_cost: int | None = None

    def iter_batches(self, items: Sequence[Any]) -> Iterator[tuple[np.ndarray, list[Any]]]:
        """Yield ``(positions, batch)`` with items sorted by cost so batches pad little."""
        size = int(self.batch_size)
        if size < 1:  # set after construction: a zero step would never advance
            raise EncoderError(f"encoder {self.name!r}: batch_size must be >= 1, got {size}")
        costs = np.fromiter((self.item_cost(x) for x in items), dtype=np.int64, count=len(items))
        order = np.argsort(costs, kind="stable")
        start = 0
        while start < len(order):
            stop = min(start + size, len(order))
            if self.max_batch_cost:
                # sorted ascending: the last item of a batch is its longest
                while stop - start > 1 and costs[order[stop - 1]] * (stop - start) > \
                        self.max_batch_cost:
                    stop -= 1
            pos = order[start:stop]
            yield pos, [items[i] for i in pos]
            start = stop

    def encode(self, items: Sequence[Any], progress: Any = None) -> np.ndarray:
        """Embed ``items`` in input order. Returns ``(len(items), dim)`` float32.

        Text items are first cut to :meth:`limit_text` (at most :attr:`max_chars`
        characters); every item that loses content, there or at a token limit inside
        :meth:`encode_batch`, adds one to :attr:`n_truncated`, and one warning per call says
        how many. A speech item over :attr:`max_seconds` raises :class:`EncoderError`
        (:meth:`check` lets the pipeline reject it before).

        ``progress``: optional object with ``update(n)`` (a tqdm bar) advanced per batch.
        """
        cut = np.zeros(len(items), dtype=bool)
        if self.modality == "text":
            kept = []
            for i, text in enumerate(items):
                if isinstance(text, str):
                    text, cut[i] = self.limit_text(text)
                kept.append(text)
            items = kept
        else:
            for i, item in enumerate(items):
                reason = self._too_long(item)
                if reason is not None:
                    raise EncoderError(f"item {i}: {reason}")
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        before = self.n_truncated
        for pos, batch in self.iter_batches(items):
            flags = cut[pos]  # a copy: encode_batch may add token cuts (note_truncated)
            self._batch_truncated = flags
            try:
                emb = np.asarray(self.encode_batch(batch), dtype=np.float32)
            finally:
                self._batch_truncated = None
            self.n_truncated += int(flags.sum())
            if emb.shape != (len(batch), self.dim):
                raise EncoderError(
                    f"encoder {self.name!r} returned shape {emb.shape} for a batch of "
                    f"{len(batch)} (expected ({len(batch)}, {self.dim}))"
                )
            out[pos] = emb
            if progress is not None:
                progress.update(len(batch))
        if self.n_truncated > before:
            log.warning("%s: %d of %d item(s) truncated%s (%d so far)", self.name,
                        self.n_truncated - before, len(items), self._limits(), self.n_truncated)
        return out


# ---------------------------------------------------------------------------------------
# identity helpers (also for plug-in encoders)


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """``{distribution: version}`` (``"not installed"`` for a missing one)."""
    return {name: _package_version(name) for name in names}


@functools.cache
def _package_version(name: str) -> str:
    """One distribution's version, read once per process (reading metadata costs ~1 ms, and
    a plan asks for it once per stage; an install takes effect in the next process)."""
    from importlib.metadata import PackageNotFoundError, version

    if name == "faiss":  # faiss-cpu, faiss-gpu, conda's faiss: one module, many names
        import faiss

        return str(faiss.__version__)
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def option_identity(value: Any, verify: str = "content") -> Any:
    """Options as JSON-able data; strings naming existing files or folders become their
    identity (so that new weights at the same path change it and a moved file does not)."""
    from ..io.identity import file_identity

    if isinstance(value, Mapping):
        return {str(k): option_identity(v, verify) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [option_identity(v, verify) for v in value]
    if isinstance(value, (str, os.PathLike)) and os.fspath(value) and \
            os.path.exists(os.fspath(value)):
        return {"file": file_identity(value, verify)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"encoder option value {value!r} ({type(value).__name__}) cannot enter a "
                    "cache key: give plain values (str, number, bool, list, mapping)")


def code_identity(cls: type) -> dict[str, Any]:
    """What identifies an encoder class's code.

    speechmine's own encoders: the class's ``VERSION``. A class from an installed
    distribution: its name and version, plus the sha256 of the module's source when the
    install is editable (the code can change without a version bump). A class with no
    distribution (a script, a test): the sha256 of its module's source file.
    """
    import inspect

    from ..io.identity import sha256_file

    module = cls.__module__
    top = module.split(".")[0]
    qual = f"{module}.{cls.__qualname__}"
    if top == "speechmine":
        return {"class": qual, "version": getattr(cls, "VERSION", 1)}
    out: dict[str, Any] = {"class": qual}
    dist = _distribution_of(top)
    editable = False
    if dist is not None:
        out["distribution"] = f"{dist.metadata['Name']}=={dist.version}"
        editable = _is_editable(dist)
    if dist is None or editable:
        try:
            source = inspect.getsourcefile(cls)
        except TypeError:
            source = None
        if source is None or not os.path.isfile(source):
            raise EncoderError(f"encoder class {qual} has no installed distribution and no "
                               "source file: its code cannot be identified for the cache; "
                               "install it as a package or override identity()")
        out["source_sha256"] = sha256_file(source)
    return out


def _distribution_of(top_module: str) -> Any:
    from importlib.metadata import distribution, packages_distributions

    names = packages_distributions().get(top_module) or []
    for name in names:
        try:
            return distribution(name)
        except Exception:
            continue
    return None


def _is_editable(dist: Any) -> bool:
    import json

    try:
        text = dist.read_text("direct_url.json")
        return bool(text and json.loads(text).get("dir_info", {}).get("editable"))
    except (OSError, ValueError):
        return False
