"""Writing the tuned threshold into a preset: where the preset sets it, the rest kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from speechmine.tune import TuneError, set_threshold_text, write_threshold

HEAD = """# my dev preset
src_lang: en   # English
tgt_lang: fr
"""


def test_an_existing_top_level_value_is_replaced_in_place() -> None:
    text = HEAD + "mine_threshold: 1.1  # old value\noutput_dir: /tmp/x\n"
    new, w = set_threshold_text(text, 1.0425)
    assert new == HEAD + "mine_threshold: 1.0425  # old value\noutput_dir: /tmp/x\n"
    assert w.keys == ("mine_threshold",) and not w.added and w.comments_kept


def test_a_preset_without_threshold_gets_a_line() -> None:
    new, w = set_threshold_text(HEAD.rstrip("\n"), 1.25, comment="speechmine tune: F1 0.9")
    assert new == HEAD + "mine_threshold: 1.25  # speechmine tune: F1 0.9\n"
    assert w.added and w.keys == ("mine_threshold",)


def test_mine_threshold_in_the_mine_block() -> None:
    text = HEAD + "mine:\n  preset: laser\n  threshold: '1.2'   # quoted\n  k: 4\n"
    new, w = set_threshold_text(text, 1.07)
    assert new == HEAD + "mine:\n  preset: laser\n  threshold: 1.07   # quoted\n  k: 4\n"
    assert w.keys == ("mine.threshold",) and not w.added


def test_stopes_blocks_literal_values_follow_interpolations_stay() -> None:
    text = HEAD + ("mine_threshold: 1.06\n"
                   "mine_indexes:\n  config:\n    mine_threshold: ${mine_threshold}\n"
                   "mine_sentences:\n  config: {mine_threshold: 1.04, score_max: 1.25}\n")
    new, w = set_threshold_text(text, 1.09)
    assert new == HEAD + ("mine_threshold: 1.09\n"
                          "mine_indexes:\n  config:\n    mine_threshold: ${mine_threshold}\n"
                          "mine_sentences:\n  config: {mine_threshold: 1.09, score_max: 1.25}\n")
    assert set(w.keys) == {"mine_threshold", "mine_sentences.config.mine_threshold"}


def test_a_flow_style_preset_is_rewritten_and_says_comments_are_lost() -> None:
    new, w = set_threshold_text("{src_lang: en, tgt_lang: fr}  # flow\n", 1.2)
    assert yaml.safe_load(new) == {"src_lang": "en", "tgt_lang": "fr", "mine_threshold": 1.2}
    assert not w.comments_kept and "# flow" not in new


def test_not_yaml_is_an_error() -> None:
    with pytest.raises(TuneError, match="not valid YAML"):
        set_threshold_text("a: [1, 2\n", 1.1)


def test_write_is_atomic_and_may_replace_the_preset(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(HEAD)
    w = write_threshold(preset, preset, 1.15)
    assert preset.read_text() == HEAD + "mine_threshold: 1.15\n" and w.path == str(preset)
    assert [p.name for p in tmp_path.iterdir()] == ["p.yaml"]  # no temporary left
