"""The collections ``speechmine xsim`` compares, embedded: text files, speech manifests or
ready embeddings (``.npy``).

An aligned collection pairs item ``i`` of one file with item ``i`` of the other, so nothing
may be skipped: a blank text line, invalid UTF-8, or a speech segment the audio or the
encoder cannot take is an :class:`InputError` naming file and line (mining skips such items
instead; here they would shift every later pair).

* text: one sentence per line (plain, ``.gz``, ``.xz``), embedded by a text encoder;
* speech: a stopes manifest (``audio_file start end [batch_no]``, 16 kHz samples or
  seconds), each segment decoded and embedded by a speech encoder; its "text" (for
  ``--by-text``) is the manifest line;
* ``.npy``: an (n, d) array of embeddings (no encoder, no texts).

Which of text and speech a file is follows from its side's encoder (``modality``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..types import InputError

log = logging.getLogger(__name__)

#: segments decoded and embedded per chunk (bounds memory on long manifests)
CHUNK = 1024


@dataclass(frozen=True)
class SideSpec:
    """How to embed one side: encoder registry name, its options, the language given to it,
    and the time unit of a manifest's offsets."""

    encoder: str = "usem3"
    options: dict[str, Any] = field(default_factory=dict)
    lang: str | None = None
    units: str = "samples"


@dataclass(frozen=True)
class Collection:
    """One embedded collection: ``vectors`` (n, d) float32 in file order; ``texts`` (n,)
    the lines (manifest lines for speech; None for embeddings); ``modality``: text, speech
    or embeddings."""

    path: str
    modality: str
    vectors: np.ndarray
    texts: list[str] | None


def spec_from_preset(preset: str, overrides: list[str], role: str) -> SideSpec:
    """A side's encoder as a mining preset sets it (``embed_text``/``embed_speech.encoder``,
    the side's ``lang``, ``data.manifest_units``); input files are not looked at."""
    from ..config import load_config

    side = load_config(preset, overrides, check_files=False).side(role)
    return SideSpec(encoder=side.encoder.name, options=dict(side.encoder.options),
                    lang=side.lang, units=side.data.manifest_units)


class Embedder:
    """Loads each distinct encoder once and embeds files with it."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress
        self._loaded: dict[str, Any] = {}

    def encoder(self, spec: SideSpec) -> Any:
        import json

        from .. import encoders

        key = json.dumps([spec.encoder, spec.lang, spec.options], sort_keys=True, default=repr)
        if key not in self._loaded:
            log.info("loading encoder %s (lang %s)", spec.encoder, spec.lang)
            self._loaded[key] = encoders.create(spec.encoder, lang=spec.lang, **spec.options)
        return self._loaded[key]

    def load(self, path: str | Path, spec: SideSpec) -> Collection:
        """Embed the file at ``path`` with ``spec`` (a ``.npy`` file is read as it is)."""
        p = str(path)
        if not Path(p).is_file():
            raise InputError(f"{p}: {'not a file' if Path(p).exists() else 'no such file'}")
        if p.endswith(".npy"):
            from ..io.embeddings import load_embeddings

            vectors = np.asarray(load_embeddings(p), dtype=np.float32)
            if len(vectors) == 0:
                raise InputError(f"{p}: no embeddings")
            return Collection(p, "embeddings", vectors, None)
        enc = self.encoder(spec)
        if enc.modality == "speech":
            return self._speech(p, enc, spec)
        return self._text(p, enc)

    def _bar(self, total: int, path: str) -> Any:
        from .. import progress

        return progress.bar(total=total, desc=f"embed {Path(path).name}", unit="item",
                            disable=not self.progress, leave=False)

    def _text(self, path: str, enc: Any) -> Collection:
        from ..io.text import iter_decoded_lines

        lines: list[str] = []
        for n, line in iter_decoded_lines(path, "fail", [], "xSIM reads UTF-8 text"):
            assert line is not None  # "fail": invalid UTF-8 raised above
            if not line.strip():
                raise InputError(f"{path}:{n}: blank line: xSIM pairs line i of one file with "
                                 "line i of the other; remove the pair from both files")
            lines.append(line.strip())
        if not lines:
            raise InputError(f"{path}: empty file")
        with self._bar(len(lines), path) as bar:
            vectors = enc.encode(lines, progress=bar)
        return Collection(path, "text", vectors, lines)

    def _speech(self, path: str, enc: Any, spec: SideSpec) -> Collection:
        from ..io.speech_inputs import iter_valid_waveforms
        from ..io.text import iter_decoded_lines

        lines = [line or "" for _, line in iter_decoded_lines(path, "fail", [],
                                                             "manifests are UTF-8")]
        if not lines:
            raise InputError(f"{path}: empty manifest")
        parts = []
        with self._bar(len(lines), path) as bar:
            # on_error "fail": a segment that cannot be embedded is an error naming its line
            for _, waves, _ in iter_valid_waveforms(path, np.arange(len(lines)), spec.units,  # type: ignore[arg-type]
                                                    enc, CHUNK, "fail"):
                parts.append(enc.encode(waves, progress=bar))
        return Collection(path, "speech", np.concatenate(parts), lines)
