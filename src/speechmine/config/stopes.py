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
    "train_index": "stopes module settings (GPU)", "populate_index": "stopes module settings",
    "merge_indexes": "stopes module settings",
    "count_lines": "stopes module settings",
    "default_spm": "LASER spm", "default_vocab": "LASER vocab", "moses": "Moses settings",
    "moses_filter": "Moses settings",
    "split_in_shards": "stopes module settings (speechmine splits by max_shard_size without "
                       "rewriting the data)",
    "merge_shards": "stopes module settings (a split language is mined as one)",
    "existing_aux_embedding_glob": "auxiliary embeddings (blended retrieval) are not "
                                   "implemented",
}
IGNORED_LAUNCHER = {"cache": "speechmine caches in output_dir/work",
                    "config_dump_dir": "config written to output_dir", "_target_": "hydra",
                    "throttle": "stopes' submission throttle: use launcher.array_parallelism"}
#: stopes launcher keys with a speechmine name
LAUNCHER_ALIASES = {"log_folder": "log_dir", "max_jobarray_jobs": "max_array_size"}
#: stopes encoder options speechmine's encoder may not take: accepted, reported when set
#: (``normalize``: speechmine L2-normalises every embedding anyway)
IGNORED_ENCODER = {"spm_model", "spm_vocab", "num_processes", "gpu", "fp16", "preprocess",
                   "max_tokens", "_name", "mini_batch_size", "encoder_model", "normalize",
                   "max_sentences", "stable_sort", "cpu", "fp16_model"}
#: the keys of stopes' mining module blocks (``<block>.config.<key>``) that speechmine reads;
#: the rest of those blocks (file lists set by stopes' pipeline, GPU settings …) is accepted
#: and reported as ignored, never resolved (so their ``???`` are never asked for)
STOPES_READ = {
    "calculate_distances": ("knn", "num_probe", "save_dists_as_fp16"),
    "mine_indexes": ("knn_dist", "src_k", "tgt_k", "k_extract", "margin_type", "margin",
                     "mine_type", "sort_neighbors", "margin_norm", "mine_threshold",
                     "num_probe", "gpu_type"),
    "mine_sentences": ("mine_threshold", "score_max", "score_min", "dedup_bitexts"),
}
#: stopes' mine_type → speechmine retrieval
STOPES_MINE_TYPES = {"forward": "fwd", "backward": "bwd", "union": "union"}
#: stopes' defaults for the keys above (its conf groups *_/base.yaml and global_mining.yaml)
STOPES_DEFAULTS = {"knn": 16, "num_probe": 128, "gpu_type": "fp16-shard",
                   "save_dists_as_fp16": True, "src_k": 16, "tgt_k": 16, "k_extract": 1,
                   "margin_type": "ratio", "mine_type": "union", "sort_neighbors": False,
                   "margin_norm": "mean", "score_max": 1.25, "dedup_bitexts": True}

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


def stopes_blocks(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{block: its read config keys}`` for the stopes mining blocks present in ``raw``."""
    out = {}
    for block in STOPES_READ:
        node = raw.get(block)
        if isinstance(node, dict) and isinstance(node.get("config"), dict):
            out[block] = node["config"]
    return out


def stopes_mine_values(raw: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    """stopes' mining blocks, mapped onto :class:`MineConfig` fields as stopes reads them.

    When any of ``calculate_distances``, ``mine_indexes``, ``mine_sentences`` has a
    ``config`` block, every key a block leaves out takes stopes' default (not speechmine's):

    * k = ``calculate_distances.config.knn`` (the neighbours stopes searches and averages);
      ``mine_indexes.config.knn_dist`` is not read by stopes' mining code either;
    * ``margin_type``/``margin`` → margin; ``margin_norm``; ``src_k``/``tgt_k`` only with
      ``margin_norm: last`` (the neighbour whose similarity normalises: stopes uses them
      nowhere else); ``k_extract`` must be 1; ``sort_neighbors: true`` → the best margin
      among the k, else the nearest; ``mine_type`` forward/backward/union → fwd/bwd/union,
      without pair dedup (stopes writes both directions);
    * mine_sentences: ``mine_threshold`` (and ``score_min`` if present) → the threshold,
      ``score_max`` → max_score, ``dedup_bitexts`` → dedup_texts;
    * ``calculate_distances.config.save_dists_as_fp16`` → fp16_distances.

    Raises :class:`StopesKeyError` naming the key for a value speechmine cannot honour.
    """
    blocks = stopes_blocks(raw)
    if not blocks:
        return {}
    cd, mi, ms = (blocks.get(b, {}) for b in ("calculate_distances", "mine_indexes",
                                               "mine_sentences"))

    def get(block: dict[str, Any], key: str) -> Any:
        value = block.get(key)
        return STOPES_DEFAULTS.get(key) if value is None else value

    values: dict[str, Any] = {
        "k": get(cd, "knn"), "k_mean": None, "margin": mi.get("margin") or get(mi, "margin_type"),
        "margin_norm": get(mi, "margin_norm"),
        "candidate": "best" if get(mi, "sort_neighbors") else "nearest",
        "dedup": False, "max_score": get(ms, "score_max"),
        "dedup_texts": get(ms, "dedup_bitexts"),
        "fp16_distances": get(cd, "save_dists_as_fp16"),
    }
    mine_type = get(mi, "mine_type")
    if mine_type not in STOPES_MINE_TYPES:
        raise StopesKeyError("mine_indexes.config.mine_type",
                             f"{mine_type!r} is not one of {sorted(STOPES_MINE_TYPES)}")
    values["retrieval"] = STOPES_MINE_TYPES[mine_type]
    if get(mi, "k_extract") != 1:
        raise StopesKeyError("mine_indexes.config.k_extract", f"{mi.get('k_extract')}: "
                             "speechmine takes one candidate per query (k_extract: 1)")
    src_k, tgt_k = get(mi, "src_k"), get(mi, "tgt_k")
    if values["margin_norm"] == "last":
        if src_k != tgt_k:
            raise StopesKeyError("mine_indexes.config.src_k", f"src_k={src_k} and "
                                 f"tgt_k={tgt_k} differ; speechmine normalises both "
                                 "directions by the same neighbour (mine.k_mean)")
        values["k_mean"] = src_k
    elif "src_k" in mi or "tgt_k" in mi:
        ignored.append("mine_indexes.config.src_k/tgt_k (stopes reads them only with "
                       "margin_norm: last)")
    if mi.get("knn_dist") is not None:
        ignored.append("mine_indexes.config.knn_dist (stopes' mining reads k from "
                       "calculate_distances.config.knn)")
    thresholds = [v for v in (ms.get("mine_threshold"), ms.get("score_min"),
                              mi.get("mine_threshold")) if v is not None]
    if thresholds:
        # stopes keeps a pair only past both filters (mine_indexes, then mine_sentences)
        values["threshold"] = max(thresholds)
    return values


def stopes_output(raw: dict[str, Any]) -> dict[str, Any]:
    """The parts of stopes' output file names found in its blocks (see OutputConfig).

    All from ``mine_indexes``, which names the align file from its own block: its
    ``num_probe`` and ``gpu_type`` are not calculate_distances' (a CPU run sets
    ``calculate_distances.config.gpu_type: ""`` and still gets ``.fp16-shard.align.npz``).
    """
    mi = stopes_blocks(raw).get("mine_indexes", {})
    out = {k: mi.get(k) for k in ("src_k", "tgt_k", "num_probe", "gpu_type")}
    return {k: (STOPES_DEFAULTS[k] if v is None else v) for k, v in out.items()}


