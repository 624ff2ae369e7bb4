"""What stopes' global-mining YAML means to speechmine: accepted-but-ignored keys, the
``mine_indexes`` block mapped onto :class:`~speechmine.config.model.MineConfig`, and stopes'
naming conventions (language names, raw-audio shard globs)."""

from __future__ import annotations

import re
from typing import Any

from .model import DataConfig

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

#: file endings taken for raw audio (not manifests) on a speech side
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".webm")


def lang_code_of(name: str) -> str:
    """Language code from a lang_configs name: ``frA`` → ``fr``, ``eng001`` → ``eng``."""
    m = re.match(r"^([a-z]{2,3}(?:_[A-Z][a-z]{3})?)", name)
    return m.group(1) if m else name


def names_audio(data: DataConfig) -> bool:
    """Does the side's shard glob or list name audio files rather than manifests?"""
    names = [data.shard_glob] if data.shard_glob else (
        data.shard_list if isinstance(data.shard_list, list) else [])
    return bool(names) and all(str(n).lower().endswith(AUDIO_SUFFIXES) for n in names)


class StopesKeyError(ValueError):
    """A stopes key with a value speechmine cannot honour: ``(key, message)``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def mine_indexes_values(raw: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    """stopes' ``mine_indexes.config`` block, mapped onto :class:`MineConfig` fields.

    knn_dist → k; src_k/tgt_k (neighbours averaged) → k_mean; margin/margin_type → margin;
    margin_norm; k_extract must be 1 (one candidate per query); sort_neighbors: true → the
    best margin among the k (else the nearest, stopes' default); mine_type forward /
    backward / union → fwd / bwd / union without dedup (stopes writes both directions).
    Raises :class:`StopesKeyError` naming the key under ``mine_indexes.config``.
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
                raise StopesKeyError(w + key, f"{value}: speechmine takes one candidate per "
                                     "query (k_extract: 1)")
        elif key == "sort_neighbors":
            values["candidate"] = "best" if value else "nearest"
        elif key == "mine_type":
            if value not in STOPES_MINE_TYPES:
                raise StopesKeyError(w + key,
                                     f"{value!r} is not one of {sorted(STOPES_MINE_TYPES)}")
            values["retrieval"] = STOPES_MINE_TYPES[value]
            values["dedup"] = False
        elif key in ("src_k", "tgt_k"):
            other = block.get("tgt_k" if key == "src_k" else "src_k", value)
            if value != other:
                raise StopesKeyError(w + key, f"src_k={block.get('src_k')} and tgt_k="
                                     f"{block.get('tgt_k')} differ; speechmine averages one "
                                     "neighbourhood size (mine.k_mean)")
            values["k_mean"] = value
        else:
            ignored.append(f"{w}{key}")
    return values
