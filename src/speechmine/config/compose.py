"""Hydra-style composition of a config from its ``defaults:`` list, with OmegaConf merges.

stopes builds its configs with Hydra: ``global_mining.yaml`` names, in its ``defaults:``
list, one option per config group (``embed_text: laser3``, ``mine_indexes: base`` …), each
a YAML file in a folder of that name, itself possibly with a defaults list of its own.
speechmine composes the same way, without Hydra (whose pinned OmegaConf would give up the
YAML expansion guards of OmegaConf 2.4):

* **search path**: the folder of the config given, then each ``--config-dir`` (in order),
  then speechmine's bundled groups (``speechmine/conf``); the first folder that holds a file
  wins;
* **defaults entries** (Hydra ≥ 1.1 grammar): ``group: option`` (``null``: none; a list:
  several), ``group@package: option``, ``name`` / ``dir/name`` / ``name@package`` (a config
  without a group), ``/absolute/group`` paths, ``_self_`` (where the config's own keys go;
  last when absent, as in Hydra 1.1), ``override group: option``, ``optional group: option``;
  packages are relative to the including config (``_here_``: its own, ``_global_``: the
  root); a ``# @package _global_`` (or ``# @package a.b``) header places a file's content;
* **command line**: ``group=option`` selects an option of a group of the defaults list (or
  of any folder of the search path holding ``option.yaml``), ``+group=option`` adds a group
  (e.g. ``+preset=demo``), ``~group`` removes one; every other ``key=value``, ``+key=value``,
  ``++key=value`` and ``~key`` is a value override, applied after composition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .validate import ConfigError

#: speechmine's own config groups (same group names as stopes')
BUNDLED = Path(str(files("speechmine") / "conf"))
_SUFFIXES = (".yaml", ".yml")
_PACKAGE_HEADER = re.compile(r"^#\s*@package\s+(\S+)\s*$")


@dataclass
class _Entry:
    """One parsed defaults-list entry."""

    path: str | None  # config path (group/option or name), None for _self_
    package: str  # absolute package ("" = root)
    group: str | None = None  # the group path for group defaults (overridable)
    optional: bool = False


@dataclass
class Composer:
    """Composes configs over a search path; ``choices`` hold command-line group picks."""

    search: list[Path]
    choices: dict[str, Any] = field(default_factory=dict)  # group → option (None: removed)
    added: list[tuple[str, Any]] = field(default_factory=list)  # +group=option
    #: every group → option used (for messages and the record of a run)
    used: dict[str, Any] = field(default_factory=dict)

    # -- files ------------------------------------------------------------------------
    def find(self, path: str) -> Path | None:
        """The file of config ``path`` (``group/option``) in the search path."""
        for root in self.search:
            for suffix in _SUFFIXES:
                candidate = root / f"{path}{suffix}"
                if candidate.is_file():
                    return candidate
        return None

    def options(self, group: str) -> list[str]:
        """The options a group has in the search path (for messages)."""
        names: set[str] = set()
        for root in self.search:
            folder = root / group
            if folder.is_dir():
                names |= {p.stem for p in folder.iterdir() if p.suffix in _SUFFIXES}
        return sorted(names)

    def is_group(self, group: str) -> bool:
        return any((root / group).is_dir() for root in self.search)

    # -- composition ------------------------------------------------------------------
    def compose(self, primary: Path) -> DictConfig:
        """The composed config of ``primary`` (a file), ``defaults`` removed."""
        out = self._load(primary, package=None, group_dir="", primary=True, seen=())
        unused = [g for g in self.choices if g not in self.used]
        if unused:
            g = unused[0]
            raise ConfigError(f"command line: {g}={_show(self.choices[g])}: no defaults list "
                              f"selects group {g!r}; add it with +{g}={_show(self.choices[g])}")
        return out

    def _load(self, file: Path, package: str | None, group_dir: str, primary: bool,
              seen: tuple[str, ...]) -> DictConfig:
        from .load import load_yaml

        key = str(file.resolve())
        if key in seen:
            raise ConfigError(f"{file}: defaults list includes itself (through "
                              f"{' → '.join(Path(s).name for s in seen)})")
        node = load_yaml(file)
        if not isinstance(node, DictConfig):
            raise ConfigError(f"{file}: the top level must be a mapping")
        header = _header_package(file)
        if header is not None:
            package = "" if header == "_global_" else header
        package = package or ""
        raw_defaults = node.pop("defaults") if "defaults" in node else None
        entries = self._entries(raw_defaults, file, package, group_dir, primary)
        out = OmegaConf.create({})
        for entry in entries:
            if entry.path is None:
                out = _merge(out, _place(node, package))
                continue
            target = self.find(entry.path)
            if target is None:
                if entry.optional:
                    continue
                group = entry.group or str(Path(entry.path).parent)
                opts = self.options(group) if entry.group else []
                raise ConfigError(
                    f"{file}: defaults: no config {entry.path!r} in the search path "
                    f"({', '.join(str(s) for s in self.search)})"
                    + (f"; {group} has: {', '.join(opts)}" if opts else ""))
            sub_dir = str(Path(entry.path).parent) if "/" in entry.path else ""
            out = _merge(out, self._load(target, entry.package, sub_dir, False,
                                         (*seen, key)))
        return out

    def _entries(self, raw: Any, file: Path, package: str, group_dir: str,
                 primary: bool) -> list[_Entry]:
        items = [] if raw is None else OmegaConf.to_container(raw, resolve=False)
        if not isinstance(items, list):
            raise ConfigError(f"{file}: defaults must be a list")
        entries: list[_Entry] = []
        for item in items:
            entries.extend(self._entry(item, file, package, group_dir))
        if not any(e.path is None for e in entries):
            entries.append(_Entry(None, package))  # _self_ last (Hydra >= 1.1)
        if primary:  # +group=option from the command line: after the config's own keys
            present = {e.group for e in entries if e.group}
            for group, option in self.added:
                if group in present:
                    raise ConfigError(f"command line: +{group}={_show(option)}: {group} is "
                                      "already in the defaults list; select it with "
                                      f"{group}={_show(option)}")
                entries.extend(self._group_entries(group, option, "", "", file, False))
        return entries

    def _entry(self, item: Any, file: Path, package: str, group_dir: str) -> list[_Entry]:
        if isinstance(item, str):
            if item == "_self_":
                return [_Entry(None, package)]
            name, _, pkg = item.partition("@")
            path = _join(group_dir, name)
            # a config named with its folder lands at that folder's package (relative to the
            # including config), or where @ says
            folder = name.strip("/").rpartition("/")[0].replace("/", ".")
            return [_Entry(path, _package(pkg or folder, package))]
        if isinstance(item, dict) and len(item) == 1:
            (raw_key, option), = item.items()
            words = str(raw_key).split()
            flags, key = set(words[:-1]), words[-1]
            if flags - {"override", "optional"}:
                raise ConfigError(f"{file}: defaults entry {item!r}: unknown keyword(s) "
                                  f"{sorted(flags - {'override', 'optional'})}")
            group, _, pkg = key.partition("@")
            if group.startswith("hydra/") or group == "hydra":
                return []  # Hydra's own settings (launchers, job dirs): not speechmine's
            return self._group_entries(group, option, pkg, package, file, "optional" in flags,
                                       group_dir)
        raise ConfigError(f"{file}: defaults entry {item!r} is neither a name, _self_ nor a "
                          "single group: option mapping")

    def _group_entries(self, group: str, option: Any, pkg: str, package: str, file: Path,
                       optional: bool, group_dir: str = "") -> list[_Entry]:
        full = group.lstrip("/") if group.startswith("/") else _join(group_dir, group)
        if full in self.choices:
            option = self.choices[full]
        self.used[full] = option
        if option is None:
            return []
        opts = option if isinstance(option, list) else [option]
        rel_pkg = pkg if pkg else group.lstrip("/").replace("/", ".")
        where = _package(rel_pkg, "" if group.startswith("/") and not pkg else package)
        return [_Entry(f"{full}/{opt}", where, full, optional) for opt in opts]


def _show(option: Any) -> str:
    return f"[{','.join(map(str, option))}]" if isinstance(option, list) else str(option)


def _header_package(file: Path) -> str | None:
    """The ``# @package`` of a file's first comment lines, if any."""
    with open(file, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                if line.strip():
                    break
                continue
            m = _PACKAGE_HEADER.match(line.strip())
            if m:
                return m.group(1)
    return None


def _join(base: str, path: str) -> str:
    if path.startswith("/"):
        return path.lstrip("/")
    return f"{base}/{path}" if base else path


def _join_pkg(base: str, pkg: str) -> str:
    return ".".join(p for p in (base, pkg) if p)


def _package(pkg: str, containing: str) -> str:
    """An entry's absolute package: ``_here_`` the containing config's, ``_global_`` the
    root, anything else relative to the containing package."""
    if pkg == "_global_" or pkg.startswith("_global_."):
        return pkg[len("_global_"):].lstrip(".")
    if pkg == "_here_":
        return containing
    return _join_pkg(containing, pkg)


def _place(node: DictConfig, package: str) -> DictConfig:
    """``node`` put at ``package`` (a dotted path) of an empty config."""
    if not package:
        return node
    out: Any = node
    for part in reversed(package.split(".")):
        out = {part: out}
    created = OmegaConf.create(out)
    assert isinstance(created, DictConfig)
    return created


def _merge(a: DictConfig, b: DictConfig) -> DictConfig:
    merged = OmegaConf.merge(a, b)
    assert isinstance(merged, DictConfig)
    return merged


def defaults_groups(file: Path) -> set[str]:
    """The groups the defaults list of ``file`` names (``embed_text`` …)."""
    from .load import load_yaml

    node = load_yaml(file)
    raw = node.get("defaults") if isinstance(node, DictConfig) else None
    items = OmegaConf.to_container(raw, resolve=False) if raw is not None else []
    groups = set()
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and len(item) == 1:
            key = str(next(iter(item))).split()[-1]
            groups.add(key.partition("@")[0].lstrip("/"))
    return groups


def split_overrides(overrides: list[str], composer: Composer, primary_defaults: set[str]
                    ) -> list[str]:
    """Take the group picks out of ``overrides`` (into ``composer``); return the value
    overrides, in order."""
    values: list[str] = []
    for ov in overrides:
        key, eq, value = ov.partition("=")
        bare = key.lstrip("+~")
        option: Any = value
        if value.startswith("[") and value.endswith("]"):
            option = [v.strip() for v in value[1:-1].split(",") if v.strip()]
        if key.startswith("~") and bare in primary_defaults:
            composer.choices[bare] = None
            continue
        group_pick = bool(eq) and not bare.startswith("hydra") and (
            bare in primary_defaults or (composer.is_group(bare) and all(
                composer.find(f"{bare}/{o}") is not None
                for o in (option if isinstance(option, list) else [option]))))
        if group_pick and (value == "null" or value == ""):
            composer.choices[bare] = None
        elif group_pick and key.startswith("+") and bare not in primary_defaults:
            composer.added.append((bare, option))
        elif group_pick:
            composer.choices[bare] = option
        else:
            values.append(ov)
    return values
