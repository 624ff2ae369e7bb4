"""Typed configuration, read from the stopes global-mining preset shape.

* :mod:`.model`: the frozen dataclasses, mining presets and transient marks;
* :mod:`.stopes`: what stopes' keys mean here (ignored keys, ``mine_indexes`` mapping);
* :mod:`.load`: YAML, overrides, interpolation, the per-side ``lang_configs`` merge;
* :mod:`.validate`: values → dataclasses, or a :class:`ConfigError` naming key and file.

Everything is validated before any heavy work: an unknown key, a wrong type, a value out of
range or a missing file is a :class:`ConfigError` naming the key and the config file. Stopes
keys that do not apply are accepted and listed in :attr:`RunConfig.ignored`.
"""

from __future__ import annotations

from .load import build_config, load_config, resolved_yaml
from .model import (
                    DEFAULT_RESOURCES,
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
                    RunConfig,
                    SegmentConfig,
                    SideConfig,
                    is_transient,
                    result_view,
                    transient,
)
from .stopes import lang_code_of
from .validate import ConfigError

__all__ = [
    "ConfigError", "RunConfig", "SideConfig", "DataConfig", "EncoderConfig", "SegmentConfig",
    "MineConfig", "IndexConfig", "LauncherConfig", "CacheConfig", "OutputConfig", "MINE_PRESETS",
    "Resources", "DEFAULT_RESOURCES", "JOB_STAGES",
    "load_config", "build_config", "resolved_yaml", "lang_code_of", "transient",
    "is_transient", "result_view",
]
