"""The encoder protocol every embedding model implements.

An encoder turns a batch of items (sentences for text, :class:`~speechmine.types.AudioSegment`
for speech) into an ``(n, dim)`` float32 matrix. Subclasses implement one method,
:meth:`Encoder.encode_batch`; sorting by length, batching and restoring the input order live
once here, in :meth:`Encoder.encode`.
"""

from __future__ import annotations

import abc
import functools
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np

log = logging.getLogger(__name__)

Modality = Literal["text", "speech"]


class EncoderError(ValueError):
    """An encoder cannot be built or cannot encode the given input (message says why)."""


def unknown_options_error(encoder: str, options: Mapping[str, Any]) -> EncoderError:
    """The error for options an encoder does not take (constructors and ``identity()``)."""
    return EncoderError(f"encoder {encoder!r} got unknown option(s) {sorted(options)}")


class Encoder(abc.ABC):
    """Base class of all encoders.

    Class attributes a subclass sets:
        name: registry key (``"usem3"``, ``"sonar_text"`` ...).
        modality: ``"text"`` or ``"speech"``: what :meth:`encode_batch` accepts.

    Instance attributes:
        dim: embedding width; known after ``__init__`` (no lazy surprise at index time).
        lang: language of the side this encoder serves (``None`` when the model ignores it).
        batch_size: items per call to :meth:`encode_batch` (transient: does not change results).
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

    def __init__(self, lang: str | None = None, batch_size: int = 64, **options: Any) -> None:
        if options:
            raise unknown_options_error(self.name, options)
        self.lang = lang
        self.batch_size = int(batch_size)
        self.dim: int = 0

    # -- what subclasses implement -------------------------------------------------------
    @abc.abstractmethod
    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        """Embed one batch. Returns ``(len(items), dim)`` float32 (need not be normalised)."""

    def check(self, item: Any) -> str | None:
        """Why ``item`` cannot be embedded (too short, too long …), or None when it can.

        The pipeline calls this before encoding and turns a reason into a reject line.
        """
        return None

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
        costs = np.fromiter((self.item_cost(x) for x in items), dtype=np.int64, count=len(items))
        order = np.argsort(costs, kind="stable")
        start = 0
        while start < len(order):
            stop = min(start + self.batch_size, len(order))
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

        ``progress``: optional object with ``update(n)`` (a tqdm bar) advanced per batch.
        """
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for pos, batch in self.iter_batches(items):
            emb = np.asarray(self.encode_batch(batch), dtype=np.float32)
            if emb.shape != (len(batch), self.dim):
                raise EncoderError(
                    f"encoder {self.name!r} returned shape {emb.shape} for a batch of "
                    f"{len(batch)} (expected ({len(batch)}, {self.dim}))"
                )
            out[pos] = emb
            if progress is not None:
                progress.update(len(batch))
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
