"""Finished runs to export, built once per module from small fixtures.

Text runs use the toy encoder over number sentences decorated with what an export must carry
unchanged (tabs, quotes, backslashes, non-ASCII); speech runs use the tiny SONAR encoders over
synthetic audio (:func:`helpers.make_audio`), a stereo file among them.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import SONAR_DATA, SR, make_audio, make_config, sentences, write_lines, write_manifest

#: what exported texts must keep: csv quoting in stopes' layout, JSON escapes, UTF-8
#: (the first five end up within stopes_text's score window)
DECORATIONS = ["a\ttab, a back\\slash \\t", 'a ""double"" quote', 'ends with a quote"',
               '"quoted" words', "naïve café ü 日本語 😀", "it's", "comma, semicolon; |pipe|"]


@pytest.fixture(scope="module", autouse=True)
def _offline_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Module-scoped runs get the private cache and offline switches tests have."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHMINE_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("SPEECHMINE_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf")))
        yield


@dataclass
class TextRun:
    """A finished run over ``en``/``fr`` lines (input files ``dir/en.txt``, ``dir/fr.txt``)."""

    out: Path
    en: list[str]
    fr: list[str]
    result: Any


def text_corpus(d: Path, n: int = 30, duplicates: int = 0) -> tuple[list[str], list[str]]:
    """en.txt/fr.txt (+ metas) in ``d``: ``n`` decorated translations, fr shuffled; the
    first ``duplicates`` sentences appear twice on both sides (the same text, other ids)."""
    en, fr = sentences(n)
    for i, deco in enumerate(DECORATIONS):
        en[i], fr[i] = f"{en[i]} {deco}", f"{fr[i]} {deco}"
    en += en[:duplicates]
    fr += fr[:duplicates]
    perm = list(range(len(fr)))
    random.Random(3).shuffle(perm)
    fr = [fr[p] for p in perm]
    d.mkdir(parents=True, exist_ok=True)
    write_lines(d / "en.txt", en)
    write_lines(d / "fr.txt", fr)
    write_lines(d / "en.meta.txt", [f'en "meta"\t{i} ü' for i in range(len(en))])
    write_lines(d / "fr.meta.txt", [f"fr-meta-{i}" for i in range(len(fr))])
    return en, fr


def text_run(tmp: Path, name: str, overrides: list[str], duplicates: int = 0) -> TextRun:
    from speechmine.pipeline import run

    data = tmp / f"{name}-data"
    en, fr = text_corpus(data, duplicates=duplicates)
    cfg = make_config(tmp, data, out=tmp / name, name=name, overrides=overrides)
    return TextRun(tmp / name, en, fr, run(cfg))


@pytest.fixture(scope="module")
def sm_text(tmp_path_factory: pytest.TempPathFactory) -> TextRun:
    """speechmine's layout."""
    return text_run(tmp_path_factory.mktemp("sm"), "sm", [])


#: between the toy encoder's scores of this corpus under stopes' rule (1.78 ... 1.90)
STOPES_MAX_SCORE = 1.89


@pytest.fixture(scope="module")
def stopes_text(tmp_path_factory: pytest.TempPathFactory) -> TextRun:
    """stopes' rule and layout (union of both directions, score_max window, dedup_bitexts)
    over inputs that hold duplicate sentences: the align file keeps rows the bitext drops."""
    return text_run(tmp_path_factory.mktemp("st"), "st",
                    ["mine.preset=stopes", f"mine.max_score={STOPES_MAX_SCORE}"], duplicates=4)


# ------------------------------------------------------------------------------ speech


@dataclass
class SpeechRun:
    """A finished run with speech on ``speech_roles``; ``audio[path]`` the files' samples."""

    out: Path
    root: Path
    result: Any
    audio: dict[str, np.ndarray]


SENTENCES = ["Le chat dort.", "Il pleut beaucoup.", "Ouvrez la fenêtre.", "Bonjour à tous.",
             "Le train part à midi.", "Où est la gare ?", "Nous aimons lire.", "C'est fini."]


def _sonar(tmp: Path) -> Path:
    dst = tmp / "sonar"
    shutil.copytree(SONAR_DATA, dst)
    return dst


def speech_side(sonar: Path, manifest: Path) -> dict[str, Any]:
    from helpers import sonar_speech_cfg

    return {"data": {"shard_type": "speech", "shard_glob": str(manifest), "bname": "speech"},
            "embed_speech": {"encoder": sonar_speech_cfg(sonar)}}


def text_side(sonar: Path, path: Path) -> dict[str, Any]:
    from helpers import sonar_text_cfg

    return {"data": {"shard_type": "text", "shard_glob": str(path), "bname": "text"},
            "embed_text": {"encoder": sonar_text_cfg(sonar)}}


def speech_run(tmp: Path, sides: dict[str, dict[str, Any]], src: str, tgt: str) -> Any:
    import yaml

    from speechmine.config import load_config
    from speechmine.pipeline import run

    cfg = {"src_lang": src, "tgt_lang": tgt, "output_dir": str(tmp / "out"), "progress": False,
           "mine_threshold": 0.0, "lang_configs": sides}
    (tmp / "preset.yaml").write_text(yaml.safe_dump(cfg))
    return run(load_config(tmp / "preset.yaml"))


def _audio(tmp: Path) -> tuple[list[tuple[str, int, int]], dict[str, np.ndarray]]:
    """make_audio's mono files, a loud mono file (near full scale: 16-bit rounding shows)
    and a stereo file (two different channels)."""
    import soundfile as sf

    segs = make_audio(tmp / "audio", n_files=2)
    rng = np.random.default_rng(7)
    t = np.arange(SR * 2) / SR
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 523 * t)
                       + 0.01 * rng.standard_normal(len(t))], axis=1)
    sf.write(tmp / "audio" / "stereo file.wav", stereo.astype(np.float32), SR, subtype="PCM_16")
    loud = 0.97 * np.sin(2 * np.pi * (200 + 300 * t) * t)
    sf.write(tmp / "audio" / "loud.wav", loud.astype(np.float32), SR, subtype="PCM_16")
    segs += [("audio/stereo file.wav", 1000, 1000 + SR // 2),
             ("audio/stereo file.wav", SR, SR + 7 * SR // 10), ("audio/loud.wav", 333, SR)]
    audio = {os.path.normpath(tmp / p): sf.read(tmp / p, dtype="float32", always_2d=True)[0]
             for p in {s[0] for s in segs}}
    return segs, audio


@pytest.fixture(scope="module")
def speech_text(tmp_path_factory: pytest.TempPathFactory) -> SpeechRun:
    """English speech (src) against French text (tgt)."""
    pytest.importorskip("torch")
    pytest.importorskip("soundfile")
    tmp = tmp_path_factory.mktemp("speech_text")
    sonar = _sonar(tmp)
    segs, audio = _audio(tmp)
    write_manifest(tmp / "speech.tsv", segs)
    (tmp / "fr.txt").write_text("\n".join(SENTENCES) + "\n")
    res = speech_run(tmp, {"enA": speech_side(sonar, tmp / "speech.tsv"),
                           "fr": text_side(sonar, tmp / "fr.txt")}, "enA", "fr")
    return SpeechRun(tmp / "out", tmp, res, audio)


@pytest.fixture(scope="module")
def speech_speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechRun:
    """The same segments on both sides (B shuffled, with more): each pairs with itself."""
    pytest.importorskip("torch")
    pytest.importorskip("soundfile")
    tmp = tmp_path_factory.mktemp("speech_speech")
    sonar = _sonar(tmp)
    segs, audio = _audio(tmp)
    perm = np.random.default_rng(1).permutation(len(segs))
    write_manifest(tmp / "a.tsv", segs[2:])
    write_manifest(tmp / "b.tsv", segs, order=perm)
    res = speech_run(tmp, {"enA": speech_side(sonar, tmp / "a.tsv"),
                           "frA": speech_side(sonar, tmp / "b.tsv")}, "enA", "frA")
    return SpeechRun(tmp / "out", tmp, res, audio)


def segment_samples(audio: dict[str, np.ndarray], path: str, start_s: float, end_s: float
                    ) -> np.ndarray:
    """``(n, channels)`` samples of a 16 kHz file between two times (as the manifest said)."""
    a, b = round(start_s * SR), round(end_s * SR)
    return audio[path][a:b]
