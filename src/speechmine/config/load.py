"""Loading: YAML (or a dict), ``key=value`` overrides, OmegaConf interpolation, and the
stopes merge of ``lang_configs.<name>`` over the whole config per side, then validation.

``${...}`` interpolation and ``???`` (must be given on the command line) come from OmegaConf.
Only the keys speechmine reads are resolved, so a stopes preset with values nobody uses
(``model_dir: ${demo_dir}/…``) loads as it does in stopes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import Container, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (
    InterpolationToMissingValueError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from . import validate
from .defaults import choose_encoders
from .ensemble import adopt_ensemble, check_ensembles, check_fusion_rule, merge_side
from .interp import ExpansionError, check_expansion, env_dependent
from .model import MineConfig, RunConfig
from .stopes import IGNORED_LAUNCHER, IGNORED_TOP, STOPES_READ
from .validate import ConfigError, Source, as_bool, as_str, err

TOP_KEYS = {"src_lang", "tgt_lang", "output_dir", "embedding_dimensions", "mine_threshold",
            "index_type", "existing_embedding_glob", "existing_index_path", "data",
            "lang_configs", "embed_text", "embed_speech", "launcher", "mine", "index",
            "mine_indexes", "calculate_distances", "mine_sentences", "fp16", "on_error",
            "progress", "lang", "segment_audio", "work_dir", "cache", "output",
            "max_shard_size", "sharded_langs", "embedding_sample"}


def _variables(node: Any) -> set[str]:
    """Names referenced as ``${name...}`` anywhere in the raw config (user variables)."""
    text = OmegaConf.to_yaml(node, resolve=False) if isinstance(node, (DictConfig, ListConfig)) \
        else str(node)
    return set(re.findall(r"\$\{\s*([A-Za-z_][\w]*)", text))


#: YAML nodes a config (or a shard list file) may hold: 100,000-entry shard lists are normal;
#: OmegaConf's separate guard against alias ("billion laughs") expansion stays on
MAX_YAML_NODES = 20_000_000


def load_yaml(path: str | Path) -> Container:
    """A YAML file through OmegaConf, with errors as :class:`ConfigError` naming file, line
    and column (syntax, duplicate keys, text that is not UTF-8)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {exc.start}: "
                              f"{data[exc.start:exc.start + 1]!r}); save the file as UTF-8"
                              ) from None
        return OmegaConf.create(text, max_yaml_expanded_nodes=MAX_YAML_NODES)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}:{_yaml_where(exc)}{_yaml_problem(exc)}") from None
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{path}: {str(exc).splitlines()[0]}") from None


def _yaml_where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f"{mark.line + 1}:{mark.column + 1}: " if mark is not None else " "


def _yaml_problem(exc: yaml.YAMLError) -> str:
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = ", ".join(p for p in parts if p) or str(exc).splitlines()[0]
    return f"invalid YAML: {text}"


def _parse_override(ov: str) -> Container:
    """One ``key=value`` from the command line (``+key=``/``++key=``: add or force, as
    Hydra); errors name the override."""
    key, eq, value = ov.partition("=")
    if not eq:
        raise ConfigError(f"command line: override {ov!r} is not key=value (or ~key)")
    # Hydra's escapes: \{lang\} keeps the braces away from its grammar; `key=` is ""
    value = value.replace("\\{", "{").replace("\\}", "}") or "''"
    try:
        return OmegaConf.from_dotlist([f"{key.lstrip('+')}={value}"])
    except (OmegaConfBaseException, yaml.YAMLError) as exc:
        detail = _yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else \
            str(exc).splitlines()[0]
        raise ConfigError(f"command line: override {ov!r}: {detail}") from None


def _delete(cfg: DictConfig, ov: str) -> None:
    """``~key`` (or ``~key=value``: only when it holds that value) removes a key."""
    key, eq, value = ov[1:].partition("=")
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig) or leaf not in parent:
        raise ConfigError(f"command line: {ov}: there is no key {key!r} to remove")
    if eq and str(parent[leaf]) != value:
        raise ConfigError(f"command line: {ov}: {key} is {parent[leaf]!r}, not {value!r}")
    del parent[leaf]


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None, check_files: bool = True,
                config_dirs: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a preset YAML (or ``base`` dict), compose its ``defaults:`` list, apply
    overrides, validate.

    Overrides use Hydra's command-line grammar: ``key=value`` (OmegaConf dot syntax,
    ``mine.k=4``, ``demo_dir=/data``), ``+key=value`` / ``++key=value``, ``~key``, and group
    picks such as ``embed_text=sonar`` or ``+preset=demo`` (see :mod:`.compose`; the search
    path is the config's folder, then ``config_dirs``, then speechmine's bundled groups).
    Errors about a key given on the command line name the command line, not the file.
    """
    from .compose import BUNDLED, Composer, defaults_groups, split_overrides

    source = Source(str(path) if path else "<arguments>")
    values = list(overrides)
    if path is not None:
        if not Path(path).is_file():
            what = "is a directory" if Path(path).is_dir() else "does not exist"
            raise ConfigError(f"config file {path} {what}")
        for d in config_dirs:
            if not Path(d).is_dir():
                raise ConfigError(f"command line: --config-dir {d} is not a folder")
        composer = Composer([Path(path).resolve().parent, *map(Path, config_dirs), BUNDLED])
        values = split_overrides(values, composer, defaults_groups(Path(path)))
        cfg: Container = composer.compose(Path(path))
    else:
        cfg = OmegaConf.create(base or {})
    try:
        if path and base:
            cfg = OmegaConf.merge(OmegaConf.create(base), cfg)
        for ov in values:
            if ov.startswith("~"):
                assert isinstance(cfg, DictConfig)
                _delete(cfg, ov)
                continue
            parsed = _parse_override(ov)
            key, _, value = ov.partition("=")
            source.overrides[key.strip().lstrip("+")] = ov
            if value.strip() == "???":  # a merge never overwrites with ???: set it
                assert isinstance(cfg, DictConfig)
                OmegaConf.update(cfg, key.strip().lstrip("+"), "???", force_add=True)
                continue
            try:
                cfg = OmegaConf.merge(cfg, parsed)
            except TypeError:  # a list over a mapping or back (an encoder ensemble given
                # on the command line over a preset's single encoder): the value replaces
                assert isinstance(cfg, DictConfig)
                dotted = key.strip().lstrip("+")
                OmegaConf.update(cfg, dotted, OmegaConf.select(parsed, dotted), merge=False,
                                 force_add=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{source}: {str(exc).splitlines()[0]}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        check_expansion(_raw(cfg))
    except ExpansionError as exc:
        raise err(exc.key, str(exc).split(": ", 1)[1], source) from None
    return build_config(cfg, source, check_files=check_files)


#: the side-level keys speechmine reads after merging lang_configs.<name> over the config
#: (of stopes' embed_text/embed_speech module blocks, only the encoder is read)
SIDE_READ = ("data", "embed_text.encoder", "embed_speech.encoder", "existing_embedding_glob",
             "existing_index_path", "index_type", "lang", "segment_audio")
#: keys of an embed_text/embed_speech block besides `encoder` (stopes' module settings)
EMBED_MODULE_KEYS = {"_target_", "lang", "shards", "output_dir", "lang_shard_name", "encode",
                     "preprocess", "config"}


def _resolve_keys(node: DictConfig, keys: Any, source: str, need_out: list[str]
                  ) -> tuple[dict[str, Any], bool]:
    """Resolve only ``keys`` (dotted paths) of ``node``: like stopes, a value nobody reads
    (``model_dir: ${demo_dir}/…`` with no demo_dir) is never an error. A ``???`` that is read
    is: its full key (or the key an interpolation leads to) goes to ``need_out``, reported
    with every other once all sides were looked at. Returns the resolved values (nested as
    in the config) and whether any was missing."""
    out: dict[str, Any] = {}
    gap = False
    for key in keys:
        parent_key, _, leaf = key.rpartition(".")
        try:
            parent = OmegaConf.select(node, parent_key) if parent_key else node
        except OmegaConfBaseException:
            parent = None
        if not isinstance(parent, DictConfig) or leaf not in parent.keys():
            continue  # `in` is False for ??? values: keys() has them
        try:
            value = OmegaConf.select(node, key, throw_on_missing=True)
            value = OmegaConf.to_container(value, resolve=True, throw_on_missing=True) \
                if isinstance(value, (DictConfig, ListConfig)) else value
        except (MissingMandatoryValue, InterpolationToMissingValueError) as exc:
            # a ??? inside what is read: its full key; an interpolation to a ???: the key
            # it leads to (the one to give on the command line)
            found = re.findall(r"Missing mandatory value: ?([\w.]+)", str(exc))
            if OmegaConf.is_missing(parent, leaf):
                root = key
            elif isinstance(exc, InterpolationToMissingValueError):
                root = found[-1] if found else key
            else:
                root = str(getattr(exc, "full_key", None) or (found[-1] if found else key))
            gap = True
            if root not in need_out:
                need_out.append(root)
            continue
        except OmegaConfBaseException as exc:
            raise ConfigError(f"{source}: {key}: {str(exc).splitlines()[0]}") from None
        _set(out, key, value)
    return out, gap


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _launcher_keys(node: DictConfig, ignored: list[str]) -> list[str]:
    """The launcher keys to resolve: stopes' launcher settings speechmine does not use
    (``throttle: ${oc.env:USER}`` …) are reported as ignored and never resolved."""
    launcher = node.get("launcher") if "launcher" in node.keys() else None
    if not isinstance(launcher, DictConfig):
        return ["launcher"] if "launcher" in node.keys() else []
    keys = []
    for key in map(str, launcher.keys()):
        if key in IGNORED_LAUNCHER:
            ignored.append(f"launcher.{key} ({IGNORED_LAUNCHER[key]})")
        else:
            keys.append(f"launcher.{key}")
    return keys


def _stopes_block_keys(node: DictConfig, ignored: list[str]) -> list[str]:
    """The keys of stopes' mining blocks that speechmine reads (``block.config.key``, and
    ``embedding_sample.sample_sz``: the index training sample); every other key of those
    blocks is reported as ignored and never resolved."""
    read: list[str] = []
    sample = node.get("embedding_sample") if "embedding_sample" in node.keys() else None
    if isinstance(sample, DictConfig):
        for key in map(str, sample.keys()):
            if key == "sample_sz":
                read.append("embedding_sample.sample_sz")
            else:
                ignored.append(f"embedding_sample.{key} (stopes pipeline setting: speechmine "
                               "draws the index training sample from every part)")
    for block, keys in STOPES_READ.items():
        sub = node.get(block) if block in node.keys() else None
        if not isinstance(sub, DictConfig):
            continue
        for key in map(str, sub.keys()):
            if key != "config":
                ignored.append(f"{block}.{key} (stopes module setting)")
        config = sub.get("config") if "config" in sub.keys() else None
        if not isinstance(config, DictConfig):
            continue
        for key in map(str, config.keys()):
            if key in keys:
                read.append(f"{block}.config.{key}")
            else:
                ignored.append(f"{block}.config.{key} (stopes pipeline setting)")
    return read


def _is_missing(node: DictConfig, key: str) -> bool:
    """Is ``key`` (dotted) a ``???`` of ``node`` itself?"""
    parent_key, _, leaf = key.rpartition(".")
    try:
        parent = OmegaConf.select(node, parent_key) if parent_key else node
    except OmegaConfBaseException:
        return False
    return isinstance(parent, DictConfig) and leaf in parent.keys() and \
        OmegaConf.is_missing(parent, leaf)


def _added(source: str, key: str) -> bool:
    """Was ``key`` added with ``+key=value`` on the command line (Hydra: a new key)?"""
    given = source.overrides.get(key, "") if isinstance(source, Source) else ""
    return given.startswith("+")


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
    # part alone here and each side after its merge (in validate.side)
    shared = cfg.copy()
    if "lang_configs" in shared.keys():
        del shared["lang_configs"]
    # side blocks are resolved per side, after their merge; index_type is read at both levels
    side_roots = {k.split(".")[0] for k in SIDE_READ}
    read_top = [k for k in map(str, shared.keys()) if k in TOP_KEYS and k not in STOPES_READ
                and k not in ("launcher", "embedding_sample")
                and (k not in side_roots or k == "index_type")]
    need: list[str] = []
    raw, _ = _resolve_keys(shared, [k for k in read_top if k not in ("src_lang", "tgt_lang")],
                           source, need)
    stopes_raw, _ = _resolve_keys(shared, _stopes_block_keys(shared, ignored)
                                  + _launcher_keys(shared, ignored), source, need)
    raw.update(stopes_raw)
    names, missing_names = _resolve_keys(shared, ["src_lang", "tgt_lang"], source, need)
    if missing_names:
        _raise_missing(need, source)
    raw.update(names)
    for key in map(str, shared.keys()):  # a YAML key may be a number: named, it is unknown
        if key in TOP_KEYS:
            continue
        if key in IGNORED_TOP:
            ignored.append(f"{key} ({IGNORED_TOP[key]})")
        elif _added(source, key):
            ignored.append(f"{key} (added on the command line; read by nothing)")
        elif key not in variables:
            validate.unknown(key, TOP_KEYS | set(IGNORED_TOP), source)
        else:  # a user variable: recorded in the resolved config when it resolves
            try:
                value, gap = _resolve_keys(shared, [key], source, [])
            except ConfigError:
                continue  # unresolvable and unread by speechmine: stopes would not mind
            if not gap:
                raw.update(value)

    src_lang, tgt_lang = as_str(raw, "src_lang", source), as_str(raw, "tgt_lang", source)
    if src_lang == tgt_lang:
        raise err("tgt_lang", f"src_lang and tgt_lang are both {src_lang!r}; for mining "
                  "inside one language, use two lang_configs entries (e.g. en and enA)", source)
    lang_configs = cfg.get("lang_configs") or OmegaConf.create({})
    if not isinstance(lang_configs, DictConfig):
        raise err("lang_configs", "must be a mapping of name → settings", source)
    emb_dim = raw.get("embedding_dimensions")
    if emb_dim is not None and (not isinstance(emb_dim, int) or emb_dim <= 0):
        raise err("embedding_dimensions", f"must be a positive integer, got {emb_dim!r}", source)
    fp16 = as_bool(raw, "fp16", False, source)
    sides = []
    notes: list[str] = []
    resolved_entries: dict[str, Any] = {}
    for name in (src_lang, tgt_lang):
        entry = lang_configs.get(name) or OmegaConf.create({})
        if not isinstance(entry, DictConfig):
            raise err(f"lang_configs.{name}", "must be a mapping", source)
        side_node = merge_side(shared, entry)  # (an encoder list and a mapping: entry's)
        if not isinstance(side_node, DictConfig):  # cannot happen: both are mappings
            raise err(f"lang_configs.{name}", "the merged settings are not a mapping", source)
        side_need: list[str] = []
        merged, side_missing = _resolve_keys(side_node, SIDE_READ, source, side_need)
        for key in side_need:  # a ??? of the language's own entry: name it there
            in_entry = _is_missing(entry, key)
            full = f"lang_configs.{name}.{key}" if in_entry else key
            if full not in need:
                need.append(full)
        if side_missing:
            continue  # reported below, with every other missing value
        for block in ("embed_text", "embed_speech"):
            module = side_node.get(block) if block in side_node.keys() else None
            if isinstance(module, DictConfig):
                for k in map(str, module.keys()):
                    if k not in EMBED_MODULE_KEYS | {"encoder"}:
                        validate.unknown(f"lang_configs.{name}.{block}.{k}",
                                         EMBED_MODULE_KEYS | {"encoder"}, source)
                ignored.extend(f"{block}.{k} (stopes module setting: speechmine reads "
                               f"{block}.encoder)" for k in map(str, module.keys())
                               if k in EMBED_MODULE_KEYS - {"preprocess"})
                if module.get("preprocess") if "preprocess" in module.keys() else None:
                    ignored.append(f"{block}.preprocess (speechmine embeds raw lines)")
        sides.append(validate.side(name, merged, [str(k) for k in entry.keys()], source,
                                   ignored, check_files, notes))
        resolved_entries[name] = merged
    if need:
        _raise_missing(need, source)
    sides = validate.sharded_langs(raw, sides, source)
    sides = adopt_ensemble(sides, source, notes)  # next to an ensemble: the ensemble
    sides = choose_encoders(sides, source, notes)  # sides that name none: by language
    sides = check_ensembles(sides, source, notes)  # paired; members by language
    mine = validate.mine(raw, source, ignored, [s.encoder for s in sides], notes,
                         [s.encoders for s in sides if s.more_encoders])
    check_fusion_rule(sides, mine, source)
    if mine.fusion != MineConfig.fusion and not any(s.more_encoders for s in sides):
        ignored.append(f"mine.fusion={mine.fusion} (read by encoder ensembles only; this run "
                       "has one encoder a side)")
    index = validate.index(raw, source, ignored)
    launcher = validate.launcher(raw, source, ignored)
    cache = validate.cache(raw, source)
    output = validate.output(raw, source)
    if isinstance(source, Source):
        source.report_unknown()
    on_error = raw.get("on_error")
    if on_error not in ("fail", "skip", None):
        raise err("on_error", f"must be 'fail' or 'skip', got {on_error!r}", source)
    out = raw["output_dir"]
    if not isinstance(out, str) or not out:
        raise err("output_dir", "must be a path", source)
    return RunConfig(src_lang=src_lang, tgt_lang=tgt_lang, output_dir=out, src=sides[0],
                     tgt=sides[1], mine=mine, index=index, launcher=launcher, cache=cache,
                     output=output,
                     embedding_dimensions=emb_dim, fp16=fp16, on_error=on_error,
                     max_shard_size=validate.as_num(raw, "max_shard_size", None, source, "",
                                                    int, 0)
                     or None,
                     progress=as_bool(raw, "progress", True, source), source_file=source,
                     work_dir=as_str(raw, "work_dir", source, optional=True),
                     ignored=tuple(sorted(set(ignored))), notes=tuple(notes),
                     raw=_without_secrets({**raw, "lang_configs": resolved_entries}, cfg))


def _without_secrets(resolved: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """``resolved`` with every value that comes from an environment variable put back as
    its interpolation (``${oc.env:TOKEN}``): config.yaml must not store secrets."""
    unresolved = _raw(cfg)
    env = env_dependent(unresolved)
    if not env:
        return resolved

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if path in env:
            return env[path]
        side = re.match(r"lang_configs\.[^.]+\.(.+)$", path)
        if side and side.group(1) in env and path not in _raw_paths:
            return env[side.group(1)]  # a shared value merged into this side
        return node

    _raw_paths = set(_flat_paths(unresolved))
    out = walk(resolved, "")
    assert isinstance(out, dict)
    return out


def _raw(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data, interpolations unresolved (keys as strings)."""
    container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


def _flat_paths(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        return [p for k, v in node.items()
                for p in _flat_paths(v, f"{path}.{k}" if path else str(k))]
    return [path]


def resolved_yaml(cfg: RunConfig) -> str:
    """The resolved config as YAML (written to the output dir by every run); values from
    environment variables stay interpolations."""
    return OmegaConf.to_yaml(OmegaConf.create(cfg.raw), sort_keys=False)
