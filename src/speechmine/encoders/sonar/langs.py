"""Language codes users write → the codes SONAR models use.

The text encoder wants FLORES-200 codes (``fra_Latn``: ISO 639-3 + ISO 15924 script); the
speech encoders are named by ISO 639-3 (``fra``). Users write ``fr``, ``fra``, ``fre``,
``fr-FR``, ``FRA_latn``... :func:`text_lang` and :func:`speech_lang` accept all of these and
fail with close matches for anything unknown.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from ..langcodes import ISO1_TO_3  # ISO 639-1 and other codes → ISO 639-3 (shared)
from ._cards import SPEECH_MODELS, TEXT_LANGS

__all__ = ["UnknownLanguageError", "text_lang", "speech_lang", "speech_model_for"]


class UnknownLanguageError(ValueError):
    """The language is not served by the model (message lists close matches)."""


#: Default script where a language has several in the text table.
DEFAULT_SCRIPT: dict[str, str] = {
    "ace": "Latn", "bjn": "Latn", "kas": "Arab", "knc": "Latn", "min": "Latn",
    "taq": "Latn", "zho": "Hans",
}

#: Speech cards name a few languages differently from the text table.
_SPEECH_ALIASES: dict[str, str] = {"zho": "cmn"}

_SPLIT = re.compile(r"[-_ ]+")


def _close(bad: str, candidates: Iterable[str], n: int = 5) -> str:
    cands = sorted(set(candidates))
    got = difflib.get_close_matches(bad, cands, n=n, cutoff=0.5)
    if not got:
        low = bad.lower()[:3]
        got = [c for c in cands if c.lower().startswith(low)][:n]
    return ", ".join(got) if got else "(none)"


def _split(code: str) -> tuple[str, str | None]:
    """``'fr-FR'`` → ``('fra', None)``; ``'zho_hant'`` → ``('zho', 'Hant')``."""
    parts = [p for p in _SPLIT.split(code.strip()) if p]
    if not parts:
        raise UnknownLanguageError("empty language code")
    base = parts[0].lower()
    base = ISO1_TO_3.get(base, base)
    script = None
    for p in parts[1:]:
        if len(p) == 4 and p.isalpha():  # ISO 15924 script; region subtags are ignored
            script = p.title()
    return base, script


def text_lang(code: str, table: Sequence[str] = TEXT_LANGS) -> str:
    """Map a user language code to an entry of the text encoder's language ``table``.

    ``table`` is the model's language list (card order). Raises
    :class:`UnknownLanguageError` listing close matches when nothing fits.
    """
    if code in table:
        return code
    base, script = _split(code)
    if script is not None:
        cand = f"{base}_{script}"
        if cand in table:
            return cand
    members = [t for t in table if t.split("_", 1)[0] == base]
    if len(members) == 1 and script is None:
        return members[0]
    if members and script is None:
        preferred = f"{base}_{DEFAULT_SCRIPT.get(base, '')}"
        if preferred in members:
            return preferred
        return members[0]
    raise UnknownLanguageError(
        f"language {code!r} is not in the SONAR text encoder's table ({len(table)} languages); "
        f"close matches: {_close(code if '_' in code else base, table)}"
    )


def speech_lang(code: str) -> str:
    """Map a user language code to the ISO 639-3 code of a released SONAR speech encoder."""
    base, _ = _split(code)
    base = _SPEECH_ALIASES.get(base, base)
    langs = {card["lang"] for card in SPEECH_MODELS.values()}
    if base in langs:
        return base
    raise UnknownLanguageError(
        f"no SONAR speech encoder for language {code!r}; released: {len(langs)} languages; "
        f"close matches: {_close(base, langs)}"
    )


def speech_model_for(code: str) -> str:
    """Card name of the speech encoder for ``code`` (``'fr'`` → ``sonar_speech_encoder_fra``)."""
    lang = speech_lang(code)
    for name, card in SPEECH_MODELS.items():
        if card["lang"] == lang:
            return name
    raise UnknownLanguageError(f"no SONAR speech encoder for {code!r}")  # pragma: no cover
