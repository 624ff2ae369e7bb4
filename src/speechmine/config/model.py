"""The typed configuration of a run: frozen dataclasses, mining presets, transient marks.

Every field that cannot change the bytes of any stage output is marked *transient* where it
is declared (``metadata={"transient": why}``); :func:`result_view` drops those fields, and the
stage contract (:mod:`speechmine.pipeline.stage`) builds every cache key from that view, so
changing a transient field reuses everything and changing any other field redoes the stages
that read it and everything downstream. Encoder options have their own transient list
(:attr:`speechmine.encoders.Encoder.TRANSIENT_OPTIONS`).

Fields whose effect goes through the files they find (``data_shard_dir``, ``shard_glob`` …)
are not transient: the files they select enter the keys by content, so two spellings that find
the same files share the work, and a spelling that finds other files does not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..io.manifest import Units


def transient(default: Any = dataclasses.MISSING, *, why: str, **kwargs: Any) -> Any:
    """A dataclass field that cannot change any output byte (left out of cache keys)."""
    if default is dataclasses.MISSING:
        return field(metadata={"transient": why}, **kwargs)
    return field(default=default, metadata={"transient": why}, **kwargs)


def is_transient(f: dataclasses.Field[Any]) -> bool:
    return "transient" in f.metadata


def result_view(value: Any) -> Any:
    """``value`` with transient dataclass fields removed, as JSON-able builtins.

    Dataclasses become dicts of their non-transient fields (recursively); tuples become
    lists; dict keys must be strings. Anything else that is not a JSON scalar is an error,
    so an object's repr (with its memory address) can never slip into a key.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: result_view(getattr(value, f.name))
                for f in dataclasses.fields(value) if not is_transient(f)}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"config mapping key {k!r} is not a string")
            out[k] = result_view(v)
        return out
    if isinstance(value, (list, tuple)):
        return [result_view(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(f"config value {value!r} is not a finite number")
        return value
    raise TypeError(f"config value {value!r} of type {type(value).__name__} cannot enter a "
                    "cache key")


# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """Where a side's shards are (stopes ``data`` block)."""

    data_version: str = transient("v1", why="a name: in stopes' output layout it names the "
                                  "mine.<data_version> folder (where outputs go, not what)")
    iteration: int = transient(1, why="stopes bookkeeping: names runs, read by nothing")
    #: the next six select files; the files they find enter keys by content
    data_shard_dir: str | None = None
    shard_type: str = "text"
    bname: str = "data"
    shard_list: Any = None
    shard_glob: str | None = None
    meta_glob: str | None = None
    nl_file_template: str | None = "{lang}.nl"
    #: speech manifests: ``samples`` (stopes, 16 kHz) or ``seconds``
    manifest_units: Units = "samples"


@dataclass(frozen=True)
class EncoderConfig:
    """An encoder: registry key and the options passed to its constructor.

    Which options are transient is the encoder class's business (``TRANSIENT_OPTIONS``);
    its :meth:`~speechmine.encoders.Encoder.identity` is what enters keys.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    #: an ensemble member's weight in the fused scores (``mine.fusion``); unread with one
    #: encoder. Never in the embed keys: a member's embeddings do not depend on it
    weight: float = 1.0
    #: the config names no encoder for this side: speechmine chooses one by language
    #: (:mod:`speechmine.config.defaults`)
    by_default: bool = transient(False, why="bookkeeping: the choice is the name and options",
                                 compare=False)


@dataclass(frozen=True)
class SegmentConfig:
    """Silero VAD segmentation of raw audio shards (``segment_audio`` block); seconds."""

    min_dur: float = 0.5
    max_dur: float = 20.0
    pad: float = 0.2
    merge_gap: float = 0.3
    threshold: float = 0.5
    #: add SeamlessAlign-style overlapping windows of consecutive regions (clean-up after
    #: mining keeps the best pair of overlapping segments)
    overlap_windows: bool = False
    window_min: float = 1.0
    window_max: float = 20.0


@dataclass(frozen=True)
class SideConfig:
    """One side of the mining (source or target), after merging its ``lang_configs`` entry."""

    name: str  # the lang_configs key (``fr``, ``frA``): replaces {lang}; names outputs
    lang: str  # the language code given to the encoder (in keys when the encoder uses it)
    data: DataConfig
    encoder: EncoderConfig
    existing_embedding_glob: str | None = None
    existing_index_path: str | None = None
    index_type: str | None = None
    segment: SegmentConfig | None = None
    #: stopes' ``sharded_langs``: the side's data is that of these sub-languages (their names
    #: replace ``{lang}``), one after the other; they enter keys through the files they find
    subsets: tuple[str, ...] = ()
    #: an encoder ensemble (``embed_text.encoder`` given as a list): the members after
    #: ``encoder``, the first; each embeds the side on its own and the spaces are fused
    #: (``mine.fusion``, docs/ensembles.md). Empty: one encoder
    more_encoders: tuple[EncoderConfig, ...] = ()

    @property
    def encoders(self) -> tuple[EncoderConfig, ...]:
        """Every encoder of the side: ``encoder``, then an ensemble's other members."""
        return (self.encoder, *self.more_encoders)

    @property
    def modality(self) -> str:
        return "speech" if self.data.shard_type == "speech" else "text"


@dataclass(frozen=True)
class MineConfig:
    """Margin mining settings; ``preset`` names a tool whose choices to reproduce."""

    # defaults chosen on the bundled dev set (docs/tuning.md): LASER's rule, with the
    # threshold that maximised F1 for the default encoder
    k: int = 4
    k_mean: int | None = None
    margin: str = "ratio"
    margin_norm: str = "mean"  # "mean" of the k, or "last" (k-th neighbour), as stopes
    candidate: str = "best"
    retrieval: str = "max"
    threshold: float = 1.1
    max_score: float | None = None
    dedup: bool = True
    unify: bool = False
    #: stopes' mine_sentences ``dedup_bitexts``: of pairs with the same source and target
    #: *texts*, keep the best-scoring one (a pair found in both directions, copies)
    dedup_texts: bool = False
    #: stopes stores kNN distances as float16 (``save_dists_as_fp16``): round the distances
    #: the same way before scoring, for stopes' scores to the last printed digit
    fp16_distances: bool = False
    #: how an encoder ensemble's spaces are fused: ``margin_mean`` (each member's margins
    #: over the union of their neighbours, averaged by weight) or ``concat`` (the normalised
    #: embeddings side by side, mined as one space); read by ensembles only
    fusion: str = "margin_mean"


#: Named presets that reproduce each tool's mining rule exactly.
MINE_PRESETS: dict[str, dict[str, Any]] = {
    # LASER source/mining/mine.py: k=4 both ways, ratio margin, best of the k, greedy 1:1
    "laser": dict(k=4, k_mean=None, margin="ratio", margin_norm="mean", candidate="best",
                  retrieval="max", dedup=True),
    # stopes (global_mining.yaml and its groups): calculate_distances knn=16, mean margin,
    # k_extract=1, both directions concatenated (union, no pair dedup), fp16 distances, then
    # mine_sentences: threshold 1.04, score_max 1.25, text dedup
    "stopes": dict(k=16, k_mean=None, margin="ratio", margin_norm="mean", candidate="nearest",
                   retrieval="union", dedup=False, threshold=1.04, max_score=1.25,
                   dedup_texts=True, fp16_distances=True),
}


@dataclass(frozen=True)
class IndexConfig:
    """Index choice: exact below ``exact_max_size`` rows, else IVF-PQ chosen by size."""

    type: str = "auto"
    exact_max_size: int = 200_000
    #: IVF lists searched per query. 256, not stopes' 128 (its ``num_probe``, which a stopes
    #: YAML still sets): with the default OPQ index and re-ranking, probing is what limits
    #: recall, 0.894 → 0.958 recall@1 at 200 k a side (docs/scaling.md, "Defaults")
    nprobe: int = 256
    train_sample_size: int = 200_000
    seed: int = 1234
    #: exact search tile edge: not transient, the tile decides which of equal similarities
    #: a FAISS heap keeps first
    tile: int = 4096
    #: approximate search: candidates per query re-scored exactly with the stored embeddings
    #: (the best k kept); 0 = keep the index's own (coarse, PQ) similarities, as stopes.
    #: 16 suffices after an OPQ rotation (16, 64 and 256 give the same recall@1); an index
    #: without OPQ (``IVF…,PQ64``) needs 64-256
    rerank_k: int = 16
    #: iterations of the OPQ rotation's training (indexes whose factory starts with OPQ).
    #: FAISS' default is 50, ~13 s each at d=1024 on 2 cores; 10 already quantise well enough
    #: that re-ranking 16 candidates finds what 256 find (docs/scaling.md). Keyed: it changes
    #: the index.
    opq_niter: int = 10


@dataclass(frozen=True)
class OutputConfig:
    """How the output files are laid out and written.

    ``speechmine`` (default): in ``output_dir``, scores ``%.6f``, bimeta direction
    ``src2tgt``/``tgt2src``/``both`` and ``file:line`` without meta files. ``stopes``: what
    stopes writes — files in ``output_dir/mine.<data_version>/``, ``TH-`` tag and scores as
    Python prints them (``1.0``, ``1.2818745``), rows through ``csv`` (its quoting and
    ``\r\n``), direction ``fwd``/``bwd``, an empty meta column without meta files, and
    mine_indexes' ``<src>-<tgt>.<index_type>.k<src_k>-<tgt_k>.<margin_norm>.np<num_probe>.
    <gpu_type>.align.npz`` (``scores``, ``src_idx``, ``trg_idx``, ``bwd_pos``). The other
    fields are the parts of that name.
    """

    layout: str = "speechmine"
    index_type: str | None = None  # stopes' index_type; None: the one chosen by size
    src_k: int = 16
    tgt_k: int = 16
    num_probe: int = 128
    gpu_type: str = "fp16-shard"


@dataclass(frozen=True)
class Resources:
    """What one job of a stage asks the cluster for (SLURM: ``--cpus-per-task``,
    ``--gpus-per-node``, ``--mem``, ``--time``); the local executor uses ``gpus`` only."""

    cpus: int = 1
    gpus: int = 0
    mem_gb: float = 8.0
    timeout_min: int = 720


#: the jobs of a run, in data-flow order (``launcher.resources.<stage>`` keys)
JOB_STAGES = ("segment", "scan", "embed", "concat", "index_train", "index_populate",
              "index_merge", "knn", "select", "outputs")

#: per-stage defaults, sized for a 1024-d corpus of a few million rows per side (docs/
#: scaling.md); every field can be overridden, e.g. ``launcher.resources.embed.gpus=1``
DEFAULT_RESOURCES: dict[str, Resources] = {
    "segment": Resources(cpus=2, mem_gb=8, timeout_min=240),
    "scan": Resources(cpus=1, mem_gb=4, timeout_min=120),
    "embed": Resources(cpus=4, mem_gb=32, timeout_min=720),
    # an ensemble's concat fusion: members' part embeddings side by side (I/O bound)
    "concat": Resources(cpus=1, mem_gb=8, timeout_min=240),
    "index_train": Resources(cpus=8, mem_gb=64, timeout_min=720),
    "index_populate": Resources(cpus=4, mem_gb=32, timeout_min=240),
    "index_merge": Resources(cpus=2, mem_gb=64, timeout_min=240),
    "knn": Resources(cpus=8, mem_gb=64, timeout_min=720),
    "select": Resources(cpus=4, mem_gb=64, timeout_min=240),
    "outputs": Resources(cpus=2, mem_gb=32, timeout_min=240),
}


@dataclass(frozen=True)
class LauncherConfig:
    """Where and how jobs run; never changes what they compute (every field transient).

    cluster: ``local`` (default: a pool of ``workers`` processes on this machine), ``debug``
    (every job in this process, one after the other: for tests and pdb) or ``slurm``
    (submitit job arrays, one per stage, chunked to ``max_array_size`` tasks, at most
    ``array_parallelism`` running). A task that fails is retried ``max_retries`` times; a
    preempted or timed-out SLURM task is requeued and resumes.
    """

    cluster: str = transient("local", why="where jobs run, not what they compute")
    #: local: parallel jobs; None = one per GPU when GPUs are visible, else one per 2 cores
    workers: int | None = transient(None, why="parallelism")
    partition: str | None = transient(None, why="cluster resource")
    account: str | None = transient(None, why="cluster resource")
    qos: str | None = transient(None, why="cluster resource")
    constraint: str | None = transient(None, why="cluster resource")
    #: extra ``#SBATCH`` options, e.g. ``{exclusive: "", reservation: mine}``
    sbatch: dict[str, Any] = transient(why="cluster resource", default_factory=dict)
    #: extra submitit parameters, as stopes' ``launcher.update_parameters``
    update_parameters: dict[str, Any] = transient(why="cluster resource", default_factory=dict)
    #: time limit of every stage's jobs unless ``resources.<stage>.timeout_min`` says
    timeout_min: int | None = transient(None, why="cluster resource")
    #: per-stage overrides, complete (the loader fills the fields a config leaves out)
    resources: dict[str, Resources] = transient(why="cluster resource", default_factory=dict)
    max_retries: int = transient(2, why="failure handling")
    max_array_size: int = transient(1000, why="cluster limit (stopes' max_jobarray_jobs)")
    array_parallelism: int = transient(256, why="cluster resource")
    log_dir: str | None = transient(None, why="where job logs go")

    def resources_for(self, stage: str) -> Resources:
        """The resources of ``stage``'s jobs: its defaults, then ``timeout_min``, then
        ``resources.<stage>``."""
        base = DEFAULT_RESOURCES[stage]
        if self.timeout_min is not None:
            base = dataclasses.replace(base, timeout_min=self.timeout_min)
        return self.resources.get(stage, base)


@dataclass(frozen=True)
class CacheConfig:
    """How a rerun decides what it may reuse.

    ``verify: content`` (default) identifies every input file by a streamed sha256 of its
    bytes; ``stat`` by path, size and mtime (for huge corpora on slow disks: an edit that
    keeps size and mtime, e.g. ``cp -p``, then goes unnoticed). Not transient: switching
    changes how every input is named, so it redoes the work.
    """

    verify: str = "content"


@dataclass(frozen=True)
class RunConfig:
    """The whole run, validated."""

    src_lang: str  # output file names
    tgt_lang: str
    output_dir: str = field(metadata={"transient": "where outputs go, not what they hold"})
    src: SideConfig
    tgt: SideConfig
    mine: MineConfig = MineConfig()
    index: IndexConfig = IndexConfig()
    launcher: LauncherConfig = LauncherConfig()
    cache: CacheConfig = CacheConfig()
    output: OutputConfig = OutputConfig()
    embedding_dimensions: int | None = None
    fp16: bool = False  # store embeddings as float16
    #: language splitting (stopes' key): a side is embedded, indexed and searched in parts of
    #: at most this many rows; None/0 = one part per shard. Margins still use the whole other
    #: side, so results change only where an approximate index would (docs/scaling.md)
    max_shard_size: int | None = None
    #: bad input: "fail" (error naming file and line) or "skip" (rejects.tsv); None = the
    #: modality's default: text fails, speech skips (a bad segment in a large audio
    #: collection is routine; --strict makes it fatal)
    on_error: str | None = None
    progress: bool = transient(True, why="progress bars only")
    #: stage outputs (embeddings, indexes, kNN); default ``<output_dir>/work``. Runs that
    #: share it share every stage whose key matches (e.g. one speech side mined twice).
    work_dir: str | None = transient(None, why="where stage outputs go, not what they hold")
    source_file: str = transient("<arguments>", why="bookkeeping (messages)")
    ignored: tuple[str, ...] = transient((), why="bookkeeping (the log)")
    #: choices speechmine made for the user (logged at the start of a run)
    notes: tuple[str, ...] = transient((), why="bookkeeping (the log)")
    raw: dict[str, Any] = transient(why="the resolved YAML written to config.yaml",
                                    default_factory=dict, compare=False, repr=False)

    def on_error_for(self, side: SideConfig) -> str:
        """The bad-input policy of one side (see :attr:`on_error`)."""
        return self.on_error or ("skip" if side.modality == "speech" else "fail")

    def side(self, role: str) -> SideConfig:
        return self.src if role == "src" else self.tgt

    def threshold_tag(self) -> str:
        """The ``TH-<threshold>`` part of output names (stopes' convention; its layout prints
        the number as Python does: ``TH-1.0``)."""
        if self.output.layout == "stopes":
            return f"TH-{float(self.mine.threshold)}"
        return f"TH-{self.mine.threshold:g}"

    @property
    def output_path(self) -> Path:
        """Where the output files go (stopes' layout: ``output_dir/mine.<data_version>``)."""
        if self.output.layout == "stopes":
            return Path(self.output_dir) / f"mine.{self.src.data.data_version}"
        return Path(self.output_dir)

    def output_prefix(self) -> Path:
        return self.output_path / f"{self.src_lang}-{self.tgt_lang}.{self.threshold_tag()}"

    @property
    def work_path(self) -> Path:
        """Where stage outputs live (``work_dir``, default ``<output_dir>/work``)."""
        return Path(self.work_dir) if self.work_dir else Path(self.output_dir) / "work"
