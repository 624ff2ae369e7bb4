"""Kaldi-compatible log-mel filterbank in plain torch (no torchaudio needed).

Matches Kaldi's ``compute-fbank-feats`` defaults as used by SONAR/fairseq2
(``WaveformToFbankConverter(num_mel_bins=80, waveform_scale=2**15, standardize=True)``):
25 ms frames every 10 ms with ``snip_edges`` (no padding at the ends), DC offset removed per
frame, pre-emphasis 0.97, Povey window, 512-point power spectrum, 80 triangular mel bins from
20 Hz to Nyquist, natural log floored at float32 epsilon, no dither, no energy term. Then every
bin is standardised per utterance with the *unbiased* standard deviation.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

__all__ = [
    "SAMPLE_RATE",
    "WINDOW",
    "SHIFT",
    "NUM_MEL_BINS",
    "num_frames",
    "min_samples",
    "kaldi_fbank",
    "standardized_fbank",
]

SAMPLE_RATE = 16_000
WINDOW = 400  # samples: 25 ms
SHIFT = 160  # samples: 10 ms
NFFT = 512  # next power of two above WINDOW
NUM_MEL_BINS = 80
LOW_FREQ = 20.0
PREEMPH = 0.97
#: Kaldi floors mel energies at float32 epsilon before the log.
ENERGY_FLOOR = float(torch.finfo(torch.float32).eps)
#: SONAR scales [-1, 1] floats back to the int16 range before Kaldi features.
WAVEFORM_SCALE = 2.0**15


def num_frames(num_samples: int) -> int:
    """fbank frames for ``num_samples`` (snip_edges: only whole windows)."""
    return 0 if num_samples < WINDOW else 1 + (num_samples - WINDOW) // SHIFT


def min_samples(frames: int) -> int:
    """Fewest samples that yield ``frames`` fbank frames."""
    return WINDOW + (frames - 1) * SHIFT


@lru_cache(maxsize=4)
def _povey_window(device: str) -> Tensor:
    n = torch.arange(WINDOW, dtype=torch.float64)
    hann = 0.5 - 0.5 * torch.cos(2 * math.pi * n / (WINDOW - 1))
    return hann.pow(0.85).to(torch.float32).to(device)


def _mel(f: Tensor) -> Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


@lru_cache(maxsize=4)
def _mel_banks(device: str) -> Tensor:
    """``(NFFT//2 + 1, NUM_MEL_BINS)`` triangular weights (Kaldi ``MelBanks``, no VTLN)."""
    nyquist = SAMPLE_RATE / 2
    fft_freqs = torch.arange(NFFT // 2, dtype=torch.float64) * (SAMPLE_RATE / NFFT)
    mel = _mel(fft_freqs)[:, None]  # (256, 1)
    lo, hi = _mel(torch.tensor(LOW_FREQ, dtype=torch.float64)), _mel(
        torch.tensor(nyquist, dtype=torch.float64)
    )
    delta = (hi - lo) / (NUM_MEL_BINS + 1)
    b = torch.arange(NUM_MEL_BINS, dtype=torch.float64)[None, :]
    left, center, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    w = torch.clamp(torch.minimum(up, down), min=0.0)
    # Kaldi leaves the Nyquist bin out of every filter.
    w = torch.cat([w, torch.zeros(1, NUM_MEL_BINS, dtype=torch.float64)], dim=0)
    return w.to(torch.float32).to(device)


def kaldi_fbank(waveform: Tensor) -> Tensor:
    """Log-mel energies of one utterance.

    Args:
        waveform: ``(num_samples,)`` float waveform at 16 kHz, in [-1, 1] (scaled by 2^15 here).
    Returns:
        ``(num_frames(num_samples), 80)`` float32; empty when shorter than one window.
    """
    x = waveform.to(torch.float32).reshape(-1) * WAVEFORM_SCALE
    if x.numel() < WINDOW:
        return x.new_zeros((0, NUM_MEL_BINS))
    frames = x.unfold(0, WINDOW, SHIFT)  # (T, 400), a view
    frames = frames - frames.mean(dim=1, keepdim=True)
    # pre-emphasis; Kaldi treats the sample before the first as the first itself
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = (frames - PREEMPH * prev) * _povey_window(str(x.device))
    spec = torch.fft.rfft(frames, n=NFFT).abs().pow(2)  # (T, 257) power spectrum
    mel = spec @ _mel_banks(str(x.device))
    return torch.log(torch.clamp(mel, min=ENERGY_FLOOR))


def standardized_fbank(waveform: Tensor) -> Tensor:
    """:func:`kaldi_fbank` then per-bin ``(x - mean) / std`` over frames (unbiased std).

    Returns ``(T, 80)`` float32. Callers must ensure ≥ 2 frames and non-constant bins
    (otherwise the std is 0 or undefined and the result NaN); see
    :meth:`SonarSpeechEncoder.check`.
    """
    fb = kaldi_fbank(waveform)
    std, mean = torch.std_mean(fb, dim=0)
    return (fb - mean) / std
