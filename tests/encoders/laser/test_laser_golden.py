"""Golden parity with the official LASER code (laser_encoders 0.0.2 on fairseq 0.12.2) on the
tiny fixtures, without the reference installed: same pieces, same token ids, embeddings
within 1e-5 (tests/data/laser/README.md says how they were made)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from speechmine.encoders import create

TOL = 1e-5
#: the fixture checkpoints and their architectures
MODELS = {"tiny_laser2": "lstm", "tiny_laser3": "transformer",
          "tiny_laser3_maxpool": "transformer"}


def test_preprocessing_matches_the_reference_tokenizer(laser_dir: Path,
                                                       reference: dict[str, Any]) -> None:
    from speechmine.encoders.laser.tokenizer import LaserTokenizer

    tok = LaserTokenizer(laser_dir / "tiny.spm", {})
    for text, pieces in zip(reference["sentences"], reference["pieces"]):
        assert " ".join(tok.pieces(text)) == pieces, text


@pytest.mark.parametrize("model", sorted(MODELS))
def test_ids_and_embeddings_match_the_reference(model: str, options: Any,
                                                reference: dict[str, Any]) -> None:
    gold = reference["models"][model]
    enc = create("laser", **options(model))
    assert (enc.arch, enc.dim) == (MODELS[model], gold["dim"])
    sentences = reference["sentences"]
    assert enc.tokenize(sentences) == gold["ids"]
    enc.n_truncated = 0
    out = enc.encode(sentences)
    assert out.dtype == np.float32 and out.shape == (len(sentences), gold["dim"])
    assert np.abs(out - reference["arrays"][model]).max() <= TOL
    # the transformers' 40 positions cut the sentences the reference was given cut
    assert enc.n_truncated == len(gold["cut"])


def test_uncut_long_sentences_match_the_reference(options: Any,
                                                  reference: dict[str, Any]) -> None:
    """With max_seq_len over the model's limit, a sinusoidal model embeds the whole sentence,
    as the reference (which has no limit) does."""
    gold = reference["models"]["tiny_laser3"]
    enc = create("laser", **options("tiny_laser3", max_seq_len=1_000))
    assert enc.max_tokens == 1_000
    for i in gold["full"]:
        out = enc.encode([reference["sentences"][i]])[0]
        assert np.abs(out - reference["arrays"][f"tiny_laser3_full_{i}"]).max() <= TOL
    assert enc.n_truncated == 0
    # learned positions end at the limit, whatever is asked
    assert create("laser", **options("tiny_laser3_maxpool", max_seq_len=1_000)).max_tokens == 40


@pytest.mark.parametrize("model", sorted(MODELS))
def test_batching_does_not_change_results(model: str, options: Any,
                                          reference: dict[str, Any]) -> None:
    sentences = reference["sentences"]
    batched = create("laser", **options(model)).encode(sentences)
    one_by_one = create("laser", **options(model, max_sentences=1, stable_sort=True))
    small = create("laser", **options(model, max_tokens=30, batch_size=3))
    assert np.abs(one_by_one.encode(sentences) - batched).max() <= TOL
    assert np.abs(small.encode(sentences) - batched).max() <= TOL
    alone = np.stack([create("laser", **options(model)).encode([s])[0] for s in sentences[:4]])
    assert np.abs(alone - batched[:4]).max() <= TOL


def test_normalize_as_laser(options: Any, reference: dict[str, Any]) -> None:
    gold = reference["arrays"]["tiny_laser2"]
    out = create("laser", **options(normalize=True)).encode(reference["sentences"])
    want = gold / np.linalg.norm(gold, axis=1, keepdims=True)
    assert np.abs(out - want).max() <= TOL
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_legacy_pickle_format_loads_the_same(laser_dir: Path, options: Any,
                                             reference: dict[str, Any]) -> None:
    """A checkpoint in torch's pre-1.6 (non-zip) format gives the same vectors."""
    for model in ("tiny_laser2", "tiny_laser3"):
        obj = torch.load(laser_dir / f"{model}.pt", weights_only=False)
        legacy = laser_dir / f"legacy_{model}.pt"
        torch.save(obj, legacy, _use_new_zipfile_serialization=False)
        enc = create("laser", **options(model, encoder_model=str(legacy)))
        out = enc.encode(reference["sentences"])
        assert np.abs(out - reference["arrays"][model]).max() <= TOL


def test_character_cut_counts_once(options: Any) -> None:
    """A line over max_chars is cut (LASER itself embeds everything) and counted once, even
    when its tokens are cut too."""
    enc = create("laser", **options("tiny_laser3"))
    assert enc.max_chars == 20_000
    enc.encode(["a" * 25_000, "short"])
    assert enc.n_truncated == 1
    lstm = create("laser", **options())
    assert (lstm.max_tokens, lstm.max_chars) == (None, 20_000)
    lstm.encode(["word " * 5_000])  # 25,000 characters, no token limit: cut at characters
    assert lstm.n_truncated == 1
    capped = create("laser", **options(max_seq_len=8))
    assert capped.tokenize(["one two three four five six seven eight nine ten"])[0][-1] == 2
    assert len(capped.tokenize(["one two three four five six seven eight nine ten"])[0]) == 8
