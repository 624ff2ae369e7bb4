"""LASER's preprocessing: the reference's punctuation rules exactly, its non-printing set,
and no side effect on other users of sacremoses."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

from speechmine.encoders.laser.tokenizer import (
    LaserTokenizer,
    non_printing_pattern,
    punct_normalizer,
)

#: the rule list of laser_encoders 0.0.2's LaserTokenizer: sacremoses 0.1.0's
#: MosesPunctNormalizer("en", perl_parity=True) with substitutions[21] and [22] replaced
#: (dumped from the reference environment)
REFERENCE_RULES = [
    ("\\r", ""), ("\\(", " ("), ("\\)", ") "), (" +", " "), ("\\) ([.!:?;,])", ")\\g<1>"),
    ("\\( ", "("), (" \\)", ")"), ("(\\d) %", "\\g<1>%"), (" :", ":"), (" ;", ";"),
    ("`", "'"), ("''", ' " '), ("\u201e", '"'), ("\u201c", '"'), ("\u201d", '"'),
    ("\u2013", "-"), ("\u2014", " - "), (" +", " "), ("\u00b4", "'"),
    ("([a-zA-Z])\u2018([a-zA-Z])", "\\g<1>'\\g<2>"),
    ("([a-zA-Z])\u2019([a-zA-Z])", "\\g<1>'\\g<2>"), ("\u2018", '"'), ("\u201a", '"'),
    ("\u2019", '"'), ("''", '"'), ("\u00b4\u00b4", '"'), ("\u2026", "..."),
    ("\u00a0\u00ab\u00a0", ' "'), ("\u00ab\u00a0", '"'), ("\u00ab", '"'),
    ("\u00a0\u00bb\u00a0", '" '), ("\u00a0\u00bb", '"'), ("\u00bb", '"'), ("\u00a0%", "%"),
    ("n\u00ba\u00a0", "n\u00ba "), ("\u00a0:", ":"), ("\u00a0\u00baC", " \u00baC"),
    ("\u00a0cm", " cm"), ("\u00a0\\?", "?"), ("\u00a0\\!", "!"), ("\u00a0;", ";"),
    (",\u00a0", ", "), (" +", " "), ('"([,.]+)', '\\g<1>"'), ("(\\d)\u00a0(\\d)", "\\g<1>.\\g<2>"),
]


def test_punctuation_rules_are_the_references() -> None:
    assert [tuple(r) for r in punct_normalizer().substitutions] == REFERENCE_RULES


def test_sacremoses_class_rules_are_left_alone() -> None:
    from sacremoses import MosesPunctNormalizer

    before = (list(MosesPunctNormalizer.NORMALIZE_UNICODE),
              list(MosesPunctNormalizer.FRENCH_QUOTES))
    punct_normalizer()
    assert (MosesPunctNormalizer.NORMALIZE_UNICODE,
            MosesPunctNormalizer.FRENCH_QUOTES) == before


def test_non_printing_set_is_unicode_category_c() -> None:
    """The reference's set (unicategories' category C, built from unicodedata) == ours."""
    pattern = non_printing_pattern()
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        assert bool(pattern.fullmatch(ch)) == (unicodedata.category(ch)[0] == "C"), hex(cp)


def test_preprocessing_steps(laser_dir: Path) -> None:
    """(The expected strings are the reference tokenizer's, run on the same inputs.)"""
    tok = LaserTokenizer(laser_dir / "tiny.spm", {"▁a": 7}, prepend_bos=True)
    assert tok.preprocess("A\u200bB\tC\x00D") == "a b c d"
    assert tok.preprocess("“Isn’t it…”  (HERE) ,") == '"isn\'t it..." (here),'
    assert tok.preprocess("a\u00a0«\u00a0Oui\u00a0»\u00a0b") == 'a "oui" b'
    assert tok.preprocess("  \u200b ") == ""
    assert tok.ids_of(["▁a", "zz"]) == [0, 7, 3, 2]
    assert tok.ids_of(["▁a", "zz", "▁a"], limit=4) == [0, 7, 3, 2]
    assert tok.encode("") == [0, 2]
