"""Finished runs for the report tests, mined by the real pipeline (fixtures in conftest.py).

* ``text_run``: the toy encoder over number sentences, plus one pair whose texts (and one
  meta line) hold HTML, script, quotes and ``&``; gold as ids and as sentence pairs;
* ``speech_run``: two manifests over the same synthetic audio (the tiny SONAR speech
  encoder on both sides), so every pair is a segment and itself: known answers; in
  speechmine's and in stopes' layout.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import (
    SONAR_DATA,
    Corpus,
    make_audio,
    sentences,
    sonar_speech_cfg,
    toy_preset,
    write_lines,
    write_manifest,
    write_preset,
)

#: what a mined sentence may hold; none of it may run (no digits but the 1 of alert(1),
#: on both sides, so the toy encoder still pairs the two lines)
EN_XSS = ('nineteen and twenty <script>alert(1)</script> "double" & \'single\' '
          '</td></tr><img src=x onerror="window.__pwned=true">')
FR_XSS = ("dix-neuf et vingt <script>alert(1)</script> &amp; «guillemets» \"x\" "
          "<!-- --> </script><script>window.__pwned=true</script>")
META_XSS = '<b onmouseover="window.__pwned=true">meta & more</b>'


@contextlib.contextmanager
def _private_env(folder: Path) -> Iterator[None]:
    """The per-test environment of tests/conftest.py, for session fixtures."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHMINE_CACHE", str(folder / "cache"))
        mp.setenv("SPEECHMINE_OFFLINE", "1")
        mp.delenv("SPEECHMINE_KILL_AT", raising=False)
        yield


def _mine(preset: Path, overrides: list[str] | None = None) -> Any:
    from speechmine.config import load_config
    from speechmine.pipeline import run

    with _private_env(preset.parent):
        return run(load_config(preset, overrides or []))


@dataclass(frozen=True)
class TextRun:
    out: Path
    stopes_out: Path
    gold_ids: Path
    gold_text: Path
    corpus: Corpus


def mine_text_run(d: Path) -> TextRun:
    en, fr = sentences(40)
    corpus = Corpus(d / "data", en + [EN_XSS], fr + [FR_XSS], seed=3)
    metas = [f"en-meta-{i}" for i in range(len(corpus.en))]
    metas[-1] = META_XSS
    write_lines(d / "data" / "en.meta.txt", metas)
    work = {"work_dir": str(d / "work")}
    _mine(toy_preset(d, d / "data", d / "out", extra=work))
    _mine(toy_preset(d, d / "data", d / "stopes", name="stopes",
                     extra={**work, "output": {"layout": "stopes"}}))
    gold_ids = d / "gold_ids.tsv"
    gold_ids.write_text("".join(f"{s}\t{t}\n" for s, t in sorted(corpus.gold.items())))
    gold_text = d / "gold_text.tsv"
    gold_text.write_text("".join(f"{corpus.en[s]}\t{corpus.fr[t]}\n"
                                 for s, t in sorted(corpus.gold.items())))
    return TextRun(d / "out", d / "stopes", gold_ids, gold_text, corpus)


@dataclass(frozen=True)
class SpeechRun:
    out: Path
    stopes_out: Path
    gold: Path
    segments: list[tuple[str, int, int]]  # (path relative to root, start, end) in samples
    root: Path


def mine_speech_run(d: Path) -> SpeechRun:
    sonar = d / "sonar"
    shutil.copytree(SONAR_DATA, sonar)  # the encoder writes checksum sidecars next to it
    segs = make_audio(d / "audio")
    perm = np.random.default_rng(1).permutation(len(segs))
    write_manifest(d / "a.tsv", segs[:8])
    write_manifest(d / "b.tsv", segs, order=perm)

    def side(manifest: str) -> dict[str, Any]:
        return {"data": {"shard_type": "speech", "shard_glob": str(d / manifest),
                         "bname": "speech"},
                "embed_speech": {"encoder": sonar_speech_cfg(sonar)}}

    # one work_dir: the stopes-layout run reuses the embeddings and neighbours
    cfg = {"src_lang": "enA", "tgt_lang": "frA", "progress": False, "mine_threshold": 0.0,
           "output_dir": str(d / "out"), "work_dir": str(d / "work"),
           "lang_configs": {"enA": side("a.tsv"), "frA": side("b.tsv")}}
    _mine(write_preset(d / "preset.yaml", cfg))
    _mine(write_preset(d / "stopes.yaml", {**cfg, "output_dir": str(d / "stopes"),
                                           "output": {"layout": "stopes"}}))
    gold = d / "gold.tsv"
    gold.write_text("".join(f"{i}\t{int(np.flatnonzero(perm == i)[0])}\n" for i in range(8)))
    return SpeechRun(d / "out", d / "stopes", gold, segs, d)
