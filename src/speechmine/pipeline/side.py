"""One side of a run (source or target) as it moves through the stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import SideConfig
from ..types import SideInputs
from .stage import Stage


@dataclass
class Side:
    """A side's config, the files it reads, its stages (keys known before anything runs) and
    what the stages produced so far.

    shards: the shard files in id order (text shards, manifests, or the manifests the
    segment stage writes for raw audio); ``segment``/``scan``/``embed`` hold one stage per
    shard, ``inputs`` and ``index`` one per side.

    Once the inputs are known the side is cut into *parts*, the units of embedding, index
    population and kNN queries: a shard, or a piece of at most ``max_shard_size`` kept rows
    of one (language splitting). ``parts[i]`` is part ``i``'s embed stage, ``part_shard[i]``
    its shard, ``part_rows[i]`` its ``[lo, hi)`` positions among the shard's kept rows (None:
    all of them); ``emb_files[i]`` its finished embedding (rows = those kept rows, in order).

    An encoder ensemble plans one Side per member and role (the same shards, scans and
    inputs; its own embed and index stages, labelled with ``prefix``); with ``concat``
    fusion the run's own Side has ``concat`` stages in place of ``embed``
    (:mod:`.ensemble`).
    """

    role: str  # "src" | "tgt"
    cfg: SideConfig
    shards: list[str]
    metas: list[str] | None
    nl_file: str | None
    segment: list[Stage]
    scan: list[Stage]
    inputs_stage: Stage
    embed: list[Stage]
    index: Stage
    inputs: SideInputs = field(default_factory=lambda: SideInputs([], [], np.zeros(0, np.int64)))
    parts: list[Stage] = field(default_factory=list)
    part_shard: list[int] = field(default_factory=list)
    part_rows: list[tuple[int, int] | None] = field(default_factory=list)
    emb_files: list[str] = field(default_factory=list)
    part_sizes: list[int] = field(default_factory=list)
    embedded_now: int = 0
    #: label prefix of an encoder ensemble member's stages (``m1.``); "" for the run's own
    prefix: str = ""

    def label(self, what: str, i: int | None = None) -> str:
        """A stage's label in plans, logs and ``speechmine status``: ``m1.src.embed.0``."""
        return f"{self.prefix}{self.role}.{what}" + ("" if i is None else f".{i}")

    @property
    def part_keys(self) -> list[str]:
        return [p.key for p in self.parts]

    @property
    def n(self) -> int:
        """Rows this side mines (embedded, kept)."""
        return len(self.inputs.kept)

    @property
    def where(self) -> str:
        """The config entry of this side, for messages."""
        return f"lang_configs.{self.cfg.name}"
