"""Transformer building blocks shared by the SONAR text and speech models.

Attribute names mirror the fairseq2-native checkpoint keys (``q_proj``, ``output_proj``,
``inner_proj`` ...) so that ``load_state_dict(strict=True)`` needs no renaming. Shapes use
N = batch, S = sequence length, D = model dim, H = heads, K = head dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "MultiheadAttention",
    "FeedForward",
    "sinusoidal_table",
    "key_padding_mask",
]


def sinusoidal_table(positions: Tensor, dim: int) -> Tensor:
    """Sinusoidal encodings ``[sin | cos]`` of ``positions`` → ``(len(positions), dim)``.

    Frequency of pair j is ``10000^(-j / (dim/2 - 1))`` (tensor2tensor / fairseq2). Computed in
    float32 with the same op order as fairseq2 so the tables agree bit for bit.
    """
    half = dim // 2
    idx = torch.arange(half, dtype=torch.float32, device=positions.device)
    freqs = torch.exp(idx * -math.log(10000.0) / (half - 1))
    ang = torch.outer(positions.to(torch.float32), freqs)
    return torch.cat([ang.sin(), ang[:, : dim - half].cos()], dim=1)


def key_padding_mask(lengths: Tensor, width: int) -> Tensor:
    """Boolean ``(N, width)`` mask, True at real positions (``j < lengths[n]``)."""
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


class MultiheadAttention(nn.Module):
    """Multi-head attention with biased projections (fairseq2 ``StandardMultiheadAttention``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"model dim {dim} is not a multiple of {num_heads} heads")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)

    def _heads(self, x: Tensor) -> Tensor:
        """``(N, S, D)`` → ``(N, H, S, K)``."""
        n, s, _ = x.shape
        return x.view(n, s, self.num_heads, -1).transpose(1, 2)

    def forward(self, x: Tensor, kv: Tensor, attn_mask: Tensor | None) -> Tensor:
        """Attend from ``x`` ``(N, S, D)`` to ``kv`` ``(N, T, D)``.

        ``attn_mask``: boolean, broadcastable to ``(N, H, S, T)``, True where attention is
        allowed (padding keys are False). Returns ``(N, S, D)``.
        """
        q = self._heads(self.q_proj(x))
        k = self._heads(self.k_proj(kv))
        v = self._heads(self.v_proj(kv))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        n, _, s, _ = out.shape
        return self.output_proj(out.transpose(1, 2).reshape(n, s, -1))


class FeedForward(nn.Module):
    """FFN ``output_proj(act(inner_proj(x)))``; ReLU (text, pooler) or SiLU (conformer)."""

    def __init__(self, dim: int, inner_dim: int, activation: str = "relu") -> None:
        super().__init__()
        self.inner_proj = nn.Linear(dim, inner_dim)
        self.output_proj = nn.Linear(inner_dim, dim)
        self._act = F.relu if activation == "relu" else F.silu

    def forward(self, x: Tensor) -> Tensor:
        """``(..., D)`` → ``(..., D)``."""
        return self.output_proj(self._act(self.inner_proj(x)))
