"""lhotse manifests of the speech sides: recordings, supervisions and cuts (``.jsonl.gz``).

For each speech side ``<role>`` (src, tgt) of the run, three files in the output folder:

* ``<role>_recordings.jsonl.gz``: one ``Recording`` per audio file the pairs use (native
  sampling rate, frames and channels; id: the file's stem and 8 hex digits of its path);
* ``<role>_supervisions.jsonl.gz``: one ``SupervisionSegment`` per pair, over the segment:
  ``language`` is the side's language; ``text`` the other side's text when it is a text
  side (a transcript or a translation, ``custom.text_language`` says which language), None
  when both sides are speech;
* ``<role>_cuts.jsonl.gz``: one cut per pair, the segment and its supervision (a
  ``MonoCut``; a ``MultiCut`` over all channels for a multi-channel file: speechmine mined
  their mean), with ``custom``: ``score``, ``direction``, ``src_id``, ``tgt_id``, ``side``
  and ``other`` (the other side: ``modality``, ``lang`` and its ``text``, or for speech its
  ``audio_path``, ``start`` and ``duration`` in seconds).

Cut ids are ``<run prefix>-<row>`` (7 digits) and the same in both sides' files, so the two
halves of a speech–speech pair share an id. Start and duration are the manifest's 16 kHz
offsets in seconds; lhotse reads them at the file's own rate (``cut.resample(16000)`` gives
the rate speechmine used). The dicts are lhotse's serialised form (what ``to_dict()`` gives,
read back by ``lhotse.load_manifest``), written without importing lhotse (which pulls in
torch): the tests read every file back with lhotse itself. Each file is written to a
temporary sibling and renamed when complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from ..io.atomic import atomic_open
from ..types import AudioSegment, samples_to_seconds
from .audio import AudioInfo, probe
from .reader import ExportError, MinedRun, Pair, SideInfo

log = logging.getLogger(__name__)

KINDS = ("recordings", "supervisions", "cuts")


def manifest_paths(folder: Path, role: str) -> dict[str, Path]:
    """``{kind: path}`` of one side's three manifests."""
    return {kind: folder / f"{role}_{kind}.jsonl.gz" for kind in KINDS}


def recording_id(path: str) -> str:
    return f"{Path(path).stem}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def recording(path: str, info: AudioInfo) -> dict[str, Any]:
    """lhotse's ``Recording`` dict of one audio file."""
    channels = list(range(info.channels))
    return {"id": recording_id(path),
            "sources": [{"type": "file", "channels": channels, "source": path}],
            "sampling_rate": info.sampling_rate, "num_samples": info.num_samples,
            "duration": info.num_samples / info.sampling_rate, "channel_ids": channels}


def _other(side: SideInfo, text: str, seg: AudioSegment | None) -> dict[str, Any]:
    if seg is None:
        return {"modality": "text", "lang": side.lang, "text": text}
    return {"modality": "speech", "lang": side.lang, "audio_path": seg.path,
            "start": samples_to_seconds(seg.start),
            "duration": samples_to_seconds(seg.end - seg.start)}


def pair_items(run: MinedRun, pair: Pair, i: int, rec: dict[str, Any]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(supervision, cut) dicts of side ``i`` of ``pair`` over recording ``rec``."""
    side, other = run.sides[i], run.sides[1 - i]
    seg = pair.segments[i]
    assert seg is not None, "a speech side has a segment in every pair"
    cut_id = f"{run.prefix.name}-{pair.row:07d}"
    start, duration = samples_to_seconds(seg.start), samples_to_seconds(seg.end - seg.start)
    channel: int | list[int] = 0 if len(rec["channel_ids"]) == 1 else rec["channel_ids"]
    sup: dict[str, Any] = {"id": cut_id, "recording_id": rec["id"], "start": start,
                           "duration": duration, "channel": channel, "language": side.lang}
    if other.modality == "text":
        sup["text"] = pair.texts[1 - i]
        sup["custom"] = {"text_language": other.lang}
    cut = {"id": cut_id, "start": start, "duration": duration, "channel": channel,
           "supervisions": [{**sup, "start": 0.0}], "recording": rec,
           "custom": {"score": pair.score, "direction": pair.direction, "src_id": pair.ids[0],
                      "tgt_id": pair.ids[1], "side": side.role,
                      "other": _other(other, pair.texts[1 - i], pair.segments[1 - i])},
           "type": "MonoCut" if channel == 0 else "MultiCut"}
    return sup, cut


def write_lhotse(run: MinedRun, folder: Path, progress: Callable[[int], object] | None = None
                 ) -> dict[str, dict[str, Path]]:
    """Write the manifests of every speech side into ``folder``; returns ``{role: {kind:
    path}}``. A run without a speech side is an :class:`ExportError`."""
    roles = [i for i, s in enumerate(run.sides) if s.modality == "speech"]
    if not roles:
        raise ExportError(f"{run.folder}: a text–text run ({run.sides[0].name}, "
                          f"{run.sides[1].name}) has no audio for lhotse manifests; export it "
                          "with --format parquet or --format jsonl")
    paths = {run.sides[i].role: manifest_paths(folder, run.sides[i].role) for i in roles}
    recordings: dict[int, dict[str, dict[str, Any]]] = {i: {} for i in roles}
    n = 0
    with ExitStack() as stack:
        # supervisions and cuts stream; recordings are written once all are known
        files: dict[tuple[int, str], IO[str]] = {
            (i, kind): stack.enter_context(atomic_open(paths[run.sides[i].role][kind], gz=True))
            for i in roles for kind in ("supervisions", "cuts")}
        for pair in run.pairs():
            for i in roles:
                seg = pair.segments[i]
                assert seg is not None
                recs = recordings[i]
                if seg.path not in recs:
                    recs[seg.path] = recording(seg.path, probe(seg.path))
                sup, cut = pair_items(run, pair, i, recs[seg.path])
                files[i, "supervisions"].write(json.dumps(sup, ensure_ascii=False) + "\n")
                files[i, "cuts"].write(json.dumps(cut, ensure_ascii=False) + "\n")
            n += 1
            if progress is not None:
                progress(1)
        for i in roles:
            with atomic_open(paths[run.sides[i].role]["recordings"], gz=True) as fh:
                for rec in recordings[i].values():
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    log.info("wrote lhotse manifests of %d pairs to %s", n, folder)
    return paths
