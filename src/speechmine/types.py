"""The shared nouns of speechmine: speech time, segments, inputs, neighbours, alignments, errors.

Speech time lives in one place: stopes manifests count samples at 16 kHz (end exclusive);
:data:`SAMPLE_RATE` and the helpers here are the only conversion between samples and seconds.

Every module that passes one of these between stages imports it from here, so a type has one
home and the algorithm layer (knn, margin, select) never imports the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Sample rate of stopes manifests and of every speech encoder input (Hz).
SAMPLE_RATE = 16_000


def samples_to_seconds(n: int) -> float:
    """Samples at 16 kHz → seconds."""
    return n / SAMPLE_RATE


def seconds_to_samples(s: float) -> int:
    """Seconds → samples at 16 kHz (rounded to the nearest sample)."""
    return int(round(s * SAMPLE_RATE))


# ------------------------------------------------------------------------------ errors


class InputError(ValueError):
    """Bad input data: the message names the file (and line where there is one)."""


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class AudioSegment:
    """One speech segment of a manifest: ``audio[start:end]`` in 16 kHz samples.

    ``line`` is the raw manifest line (what the bitext column shows for speech sides),
    ``source``/``lineno`` point back to the manifest for error messages and rejects.
    """

    path: str
    start: int
    end: int
    line: str = ""
    source: str = ""
    lineno: int = 0

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return samples_to_seconds(self.end - self.start)


@dataclass
class Reject:
    """One input item left out, with why. Written to ``rejects.tsv``."""

    side: str
    file: str
    line: int
    reason: str


@dataclass
class SideInputs:
    """What the inputs stage learnt about one side.

    shards: shard files in id order; sizes: lines (or segments) per shard;
    kept: (n_kept,) int64 global ids that are embedded and searched (not blank, not rejected,
    first occurrence when unifying); a read-only memory map of the inputs stage's
    ``kept.npy`` when large (index it, never write to it); metas: meta files paired with the
    shards (or None).
    """

    shards: list[str]
    sizes: list[int]
    kept: np.ndarray
    metas: list[str] | None = None
    rejects: list[Reject] = field(default_factory=list)
    blank: int = 0
    duplicates: int = 0

    @property
    def offsets(self) -> np.ndarray:
        """(n_shards + 1,) first global id of each shard, then the total."""
        return np.concatenate([[0], np.cumsum(self.sizes, dtype=np.int64)]).astype(np.int64)

    @property
    def total(self) -> int:
        return int(sum(self.sizes))

    def locate(self, gid: int) -> tuple[str, int]:
        """(shard file, 1-based line number) of a global id."""
        offsets = self.offsets
        s = int(np.searchsorted(offsets, gid, side="right") - 1)
        return self.shards[s], int(gid - offsets[s] + 1)


# ------------------------------------------------------------------------------ results

#: Direction codes stored in align.npz and written (as names) to bimeta.
FWD, BWD, BOTH = 0, 1, 2
DIRECTION_NAMES = ("src2tgt", "tgt2src", "both")


@dataclass(frozen=True)
class Neighbours:
    """kNN result of one direction.

    sims: (n, k) float32, cosine similarities, each row sorted in decreasing order.
    ids:  (n, k) int64, ids of the neighbours in the searched collection (-1: empty slot).
    l2: (n, k) float32 squared L2 distances as FAISS' ``IndexFlatL2`` returned them, when
    the search was made that way (stopes' float16 distances round exactly those), else None.
    """

    sims: np.ndarray
    ids: np.ndarray
    l2: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.sims.shape != self.ids.shape or self.sims.ndim != 2:
            raise ValueError(f"sims {self.sims.shape} and ids {self.ids.shape} must be equal 2-D")

    @property
    def k(self) -> int:
        return int(self.sims.shape[1])


@dataclass(frozen=True)
class Alignment:
    """Mined pairs, sorted by (-score, src, tgt).

    scores: (p,) float32 margin scores; src, tgt: (p,) int64 ids; direction: (p,) int8
    (:data:`FWD`, :data:`BWD` or :data:`BOTH` when both directions proposed the pair).
    """

    scores: np.ndarray
    src: np.ndarray
    tgt: np.ndarray
    direction: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, idx: np.ndarray) -> Alignment:
        return Alignment(self.scores[idx], self.src[idx], self.tgt[idx], self.direction[idx])

    @staticmethod
    def concat(a: Alignment, b: Alignment) -> Alignment:
        """Rows of ``a`` then rows of ``b`` (no sorting)."""
        return Alignment(np.concatenate([a.scores, b.scores]), np.concatenate([a.src, b.src]),
                         np.concatenate([a.tgt, b.tgt]),
                         np.concatenate([a.direction, b.direction]))
