"""Helpers shared by the speech tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEMO = Path(__file__).resolve().parents[2] / "src" / "speechmine" / "data" / "speech_demo"


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    """``(round(seconds * sr),)`` float32 sine."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(x: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the largest FFT bin."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


def words(text: str) -> list[str]:
    """Lower-case words for WER ("Mr." and "mister" count as the same word)."""
    import re

    text = text.lower().replace("mr.", "mister").replace("-", " ")
    return re.sub(r"[^a-z' ]", " ", text).split()


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between word lists (substitutions + insertions + deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        new = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            new[j] = min(row[j] + 1, new[j - 1] + 1, row[j - 1] + (r != h))
        row = new
    return row[-1]
