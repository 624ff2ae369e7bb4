"""Exports of a finished run for training: Parquet, JSON Lines, lhotse manifests.

``export_run(folder, "parquet")`` reads the run in ``folder`` (:class:`.reader.MinedRun`:
``run.json``, the bitext/bimeta rows, the align file; the inputs when the rows alone cannot
say a speech segment or a stopes-layout id) and writes one record per pair:

* ``parquet`` (:mod:`.parquet`): pandas and ``datasets.load_dataset("parquet", ...)`` read
  it; ``audio="embed"`` stores each speech segment as FLAC in ``datasets``' ``Audio`` layout;
* ``jsonl`` (:mod:`.jsonl`): the same fields, audio as path + start + end seconds;
* ``lhotse`` (:mod:`.lhotse`): recordings, supervisions and cuts of the speech sides.

Every file is written to a temporary sibling and renamed when complete.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .reader import ExportError, MinedRun, Pair, SideInfo

__all__ = ["export_run", "default_output", "ExportError", "MinedRun", "Pair", "SideInfo",
           "FORMATS"]

FORMATS = ("parquet", "jsonl", "lhotse")
_SUFFIX = {"parquet": ".parquet", "jsonl": ".jsonl", "lhotse": ".lhotse"}


def default_output(run: MinedRun, fmt: str) -> Path:
    """``<prefix>.parquet`` / ``.jsonl`` / ``.lhotse/`` beside the run's bitext."""
    return run.prefix.with_name(run.prefix.name + _SUFFIX[fmt])


def export_run(folder: str | Path | MinedRun, fmt: str, out: str | Path | None = None,
               audio: str = "path", progress: Callable[[int], object] | None = None) -> Path:
    """Export the run in ``folder`` (or an open :class:`MinedRun`) as ``fmt`` (one of
    :data:`FORMATS`) to ``out`` (default :func:`default_output`); ``audio``: ``path`` (path +
    start/end seconds) or ``embed`` (Parquet only: FLAC bytes). Returns the file (lhotse: the
    folder) written.

    Raises:
        ExportError: no finished run in ``folder``, files not of one run, inputs changed
            since the run, a text–text run asked for lhotse, ``embed`` with another format.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    if audio not in ("path", "embed"):
        raise ExportError(f"audio must be 'path' or 'embed', got {audio!r}")
    if audio == "embed" and fmt != "parquet":
        raise ExportError(f"--audio embed is for --format parquet; {fmt} refers to the audio "
                          "files (path, start, end)")
    run = folder if isinstance(folder, MinedRun) else MinedRun(folder)
    target = Path(out) if out is not None else default_output(run, fmt)
    if fmt == "parquet":
        from .parquet import write_parquet

        write_parquet(run, target, embed=audio == "embed", progress=progress)
    elif fmt == "jsonl":
        from .jsonl import write_jsonl

        write_jsonl(run, target, progress=progress)
    else:
        from .lhotse import write_lhotse

        write_lhotse(run, target, progress=progress)
    return target
