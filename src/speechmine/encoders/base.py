"""The encoder protocol every embedding model implements.

An encoder turns a batch of items (sentences for text, :class:`~speechmine.types.AudioSegment`
for speech) into an ``(n, dim)`` float32 matrix. Subclasses implement one method,
:meth:`Encoder.encode_batch`; sorting by length, batching and restoring the input order live
once here, in :meth:`Encoder.encode`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Literal

import numpy as np

log = logging.getLogger(__name__)

Modality = Literal["text", "speech"]


class EncoderError(ValueError):
    """An encoder cannot be built or cannot encode the given input (message says why)."""


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
    #: Options that do not change results (speed, placement): left out of cache keys.
    TRANSIENT_OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"batch_size", "threads", "device", "num_threads", "gpu"})

    def __init__(self, lang: str | None = None, batch_size: int = 64, **options: Any) -> None:
        if options:
            raise EncoderError(
                f"encoder {self.name!r} got unknown option(s) {sorted(options)}"
            )
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

    @classmethod
    def cache_salt(cls) -> str:
        """Cheap identity of the model code/weights for cache keys, known without loading
        the model (e.g. the version of the package that ships it). Default: none."""
        return ""

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
