"""Language names → one canonical code, for choosing an encoder that covers a pair.

Users and stopes presets name languages in many forms: ISO 639-1 (``en``), ISO 639-3
(``eng``), FLORES-200 (``eng_Latn``), BCP 47 (``fr-FR``, ``zh-tw``) and stopes' side names
(``enA`` for English speech, ``eng001`` for a split language; :func:`speechmine.config.
lang_code_of` strips those). :func:`base_lang` maps all of them to the ISO 639-3 code SONAR
uses (``eng``), so that an encoder's language list, written in any of these forms, can be
compared with a side's language. Scripts and regions are dropped: coverage is decided by
language (``zh-tw`` and ``zho_Hant`` are both ``zho``).

No model, no torch: this module is imported when a config is validated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["ISO1_TO_3", "base_lang", "base_langs"]

#: ISO 639-1 (and a few 639-2/B or macro-language codes) → the ISO 639-3 code SONAR uses.
#: Macro-languages map to the member FLORES-200 / SONAR chose (``ar`` → ``arb``,
#: ``fa`` → ``pes``).
ISO1_TO_3: dict[str, str] = {
    "af": "afr", "ak": "aka", "am": "amh", "ar": "arb", "as": "asm", "ay": "ayr", "az": "azj",
    "ba": "bak", "be": "bel", "bg": "bul", "bm": "bam", "bn": "ben", "bo": "bod", "bs": "bos",
    "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "dz": "dzo", "ee": "ewe",
    "el": "ell", "en": "eng", "eo": "epo", "es": "spa", "et": "est", "eu": "eus", "fa": "pes",
    "ff": "fuv", "fi": "fin", "fj": "fij", "fo": "fao", "fr": "fra", "fy": "fry", "ga": "gle",
    "gd": "gla", "gl": "glg", "gn": "grn", "gu": "guj", "ha": "hau", "he": "heb", "hi": "hin",
    "hr": "hrv", "ht": "hat", "hu": "hun", "hy": "hye", "id": "ind", "ig": "ibo", "is": "isl",
    "it": "ita", "iw": "heb", "ja": "jpn", "jv": "jav", "ka": "kat", "kg": "kon", "ki": "kik",
    "kk": "kaz", "km": "khm", "kn": "kan", "ko": "kor", "kr": "knc", "ks": "kas", "ku": "kmr",
    "ky": "kir", "lb": "ltz", "lg": "lug", "li": "lim", "ln": "lin", "lo": "lao", "lt": "lit",
    "lv": "lvs", "mg": "plt", "mi": "mri", "mk": "mkd", "ml": "mal", "mn": "khk", "mr": "mar",
    "ms": "zsm", "mt": "mlt", "my": "mya", "nb": "nob", "ne": "npi", "nl": "nld", "nn": "nno",
    "no": "nob", "ny": "nya", "oc": "oci", "om": "gaz", "or": "ory", "pa": "pan", "pl": "pol",
    "ps": "pbt", "pt": "por", "qu": "quy", "rn": "run", "ro": "ron", "ru": "rus", "rw": "kin",
    "sa": "san", "sc": "srd", "sd": "snd", "sg": "sag", "si": "sin", "sk": "slk", "sl": "slv",
    "sm": "smo", "sn": "sna", "so": "som", "sq": "als", "sr": "srp", "ss": "ssw", "st": "sot",
    "su": "sun", "sv": "swe", "sw": "swh", "ta": "tam", "te": "tel", "tg": "tgk", "th": "tha",
    "ti": "tir", "tk": "tuk", "tl": "tgl", "tn": "tsn", "tr": "tur", "ts": "tso", "tt": "tat",
    "tw": "twi", "ug": "uig", "uk": "ukr", "ur": "urd", "uz": "uzn", "vi": "vie", "wo": "wol",
    "xh": "xho", "yi": "ydd", "yo": "yor", "zh": "zho", "zu": "zul",
    # ISO 639-2/B and macro-language 639-3 codes people also write
    "alb": "als", "sqi": "als", "ara": "arb", "arm": "hye", "baq": "eus", "bur": "mya",
    "chi": "zho", "cze": "ces", "dut": "nld", "est": "est", "fas": "pes", "per": "pes",
    "fre": "fra", "geo": "kat", "ger": "deu", "gre": "ell", "ice": "isl", "lav": "lvs",
    "mac": "mkd", "mao": "mri", "may": "zsm", "msa": "zsm", "mon": "khk", "nep": "npi",
    "nor": "nob", "orm": "gaz", "pus": "pbt", "que": "quy", "rum": "ron", "slo": "slk",
    "swa": "swh", "uzb": "uzn", "wel": "cym", "yid": "ydd", "aze": "azj", "aym": "ayr",
    "grn": "grn", "kau": "knc", "kur": "kmr", "mlg": "plt", "cmn": "zho", "hbs": "srp",
    # languages of LaBSE and XLM-R (e5) that SONAR does not name
    "br": "bre", "co": "cos", "la": "lat",
}


_SPLIT = re.compile(r"[-_ ]+")


def base_lang(code: str) -> str:
    """The ISO 639-3 code of a language name: ``en``, ``eng``, ``eng_Latn``, ``en-GB``,
    ``EN`` → ``eng``; ``ar`` → ``arb`` (the macro-language member SONAR and FLORES use);
    ``zh-tw`` → ``zho``. A code it does not know is returned lower-cased (``xyz``)."""
    parts = [p for p in _SPLIT.split(code.strip()) if p]
    if not parts:
        return ""
    base = parts[0].lower()
    return ISO1_TO_3.get(base, base)


def base_langs(codes: Iterable[str]) -> frozenset[str]:
    """:func:`base_lang` of each code (an encoder's language list, in any form)."""
    return frozenset(base_lang(c) for c in codes)
