"""Live parity with the official LASER code, when it is importable: ``laser_encoders``
(PyPI 0.0.2) and the fairseq it imports (0.12.2; its LSTM path does not use it, its
transformer path does). Skipped otherwise: laser_encoders requires fairseq, which does not
install from PyPI on current Pythons (tests/data/laser/README.md describes an environment
where both run, the one scripts/build_laser_fixtures.py uses).

The reference runs as the fixture script runs it: ``torch.load`` with
``weights_only=False`` (the reference predates torch 2.6) and fairseq's standard layer path
(its fast path calls a torch-internal op whose signature changed in torch 2).
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("laser_encoders") is None
    or importlib.util.find_spec("fairseq") is None,
    reason="the reference (laser_encoders + fairseq) is not installed")

#: sentences beyond the golden ones: random mixes of the fixture's scripts, punctuation the
#: normaliser rewrites, upper case, non-printing characters
_ALPHABET = ("The quick brown fox ÉLÈVE αθηνα ΜΟΣΧΑ москва ТЕКСТ مرحبا ሰላም 你好 नमस्ते ☃ "
             "“”‘’‚„«»—–…´`'\"()[]!?.,;:% \u00a0\u200b\t\x07\u00ad0123456789")


def _sentences(n: int = 40, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = _ALPHABET.split(" ")
    out = []
    for _ in range(n):
        k = rng.randint(0, 30)
        out.append("".join(rng.choice([*words, " ", " ", *_ALPHABET[-30:]]) for _ in range(k)))
    return out


@pytest.fixture(scope="module")
def reference_code() -> Any:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from build_laser_fixtures import allow_py311_fairseq
    finally:
        sys.path.pop(0)
    allow_py311_fairseq()
    from laser_encoders import models

    return models


def _reference(models: Any, model: Path, spm: Path, vocab: Path) -> Any:
    import torch
    from laser_encoders.laser_tokenizer import LaserTokenizer

    load = torch.load
    torch.load = lambda f, *a, **k: load(f, *a, **{"weights_only": False, **k})  # type: ignore
    try:
        enc = models.SentenceEncoder(str(model), spm_vocab=str(vocab), max_tokens=12_000,
                                     cpu=True)
    finally:
        torch.load = load  # type: ignore[assignment]
    for layer in getattr(enc.encoder, "layers", ()):
        layer.can_use_fastpath = False
    return LaserTokenizer(spm_model=spm), enc


@pytest.mark.parametrize("model", ["tiny_laser2", "tiny_laser3", "tiny_laser3_maxpool"])
def test_port_matches_the_reference_live(model: str, reference_code: Any, options: Any,
                                         laser_dir: Path, reference: dict[str, Any]) -> None:
    from speechmine.encoders import create

    tok, ref = _reference(reference_code, laser_dir / f"{model}.pt", laser_dir / "tiny.spm",
                          laser_dir / "tiny.cvocab")
    ours = create("laser", **options(model, max_seq_len=1_000 if model == "tiny_laser3"
                                     else None))
    sentences = [*reference["sentences"], *_sentences()]
    if model == "tiny_laser3_maxpool":  # learned positions: the reference cannot go past 40
        sentences = [s for s in sentences if len(ours.tokenizer.pieces(s)) + 1 <= 40]
    pieces = [tok.tokenize(s) for s in sentences]
    assert [" ".join(ours.tokenizer.pieces(s)) for s in sentences] == pieces
    assert ours.tokenize(sentences) == [ref._tokenize(p).tolist() for p in pieces]
    want = ref.encode_sentences(pieces)
    got = ours.encode(sentences)
    assert np.abs(got - want).max() <= 1e-5
