"""SONAR text encoder: NLLB-style pre-LN transformer encoder with masked mean pooling.

Parameter names equal the fairseq2-native checkpoint keys::

    encoder_frontend.embed.weight                     (V, D)
    encoder.layers.{i}.self_attn_layer_norm.*         LayerNorm(D)
    encoder.layers.{i}.self_attn.{q,k,v,output}_proj.*
    encoder.layers.{i}.ffn_layer_norm.*
    encoder.layers.{i}.ffn.{inner,output}_proj.*      D -> F -> D, ReLU
    layer_norm.*                                      final LayerNorm(D)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .layers import FeedForward, MultiheadAttention, key_padding_mask, sinusoidal_table

__all__ = ["TextConfig", "SonarTextModel", "infer_text_config"]

#: fairseq numbers positions from pad_idx + 1 = 2 (legacy pad index 1), fairseq2 keeps that.
POSITION_OFFSET = 2


@dataclass(frozen=True)
class TextConfig:
    """Shape of a SONAR text encoder. Defaults: the released ``basic`` architecture."""

    vocab_size: int = 256_206
    model_dim: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    ffn_dim: int = 8192
    #: Longest token sequence (language token + pieces + EOS) the position table covers.
    max_seq_len: int = 514
    pad_idx: int = 0


def default_num_heads(model_dim: int) -> int:
    """Head count when the checkpoint does not say: 64-dim heads (released models), else 16-dim.

    Attention heads leave no trace in a text state dict's shapes, so this is a convention:
    the released SONAR/NLLB encoders use 1024/16 = 64; the test fixtures use 32/2 = 16.
    Pass ``num_heads=`` explicitly for anything else.
    """
    if model_dim >= 512 and model_dim % 64 == 0:
        return model_dim // 64
    return max(1, model_dim // 16)


def infer_text_config(state: dict[str, Tensor], **overrides: Any) -> TextConfig:
    """Read dims, layer count and vocabulary size off a fairseq2-layout state dict."""
    try:
        vocab, dim = state["encoder_frontend.embed.weight"].shape
        ffn_dim = state["encoder.layers.0.ffn.inner_proj.weight"].shape[0]
    except KeyError as exc:
        raise ValueError(f"not a SONAR text encoder state dict (missing {exc})") from None
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layers."))
    values: dict[str, Any] = dict(
        vocab_size=int(vocab), model_dim=int(dim), num_layers=layers, ffn_dim=int(ffn_dim),
        num_heads=default_num_heads(int(dim)),
    )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TextConfig(**values)


class TextFrontend(nn.Module):
    """Token embedding × sqrt(D) + sinusoidal positions (from :data:`POSITION_OFFSET`)."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.model_dim, padding_idx=cfg.pad_idx)
        self.scale = math.sqrt(cfg.model_dim)
        self.max_seq_len = cfg.max_seq_len

    def forward(self, tokens: Tensor) -> Tensor:
        """``(N, S)`` int64 → ``(N, S, D)`` in the embedding's dtype."""
        s = tokens.shape[1]
        if s > self.max_seq_len:
            raise ValueError(f"sequence of {s} tokens exceeds max_seq_len={self.max_seq_len}")
        x = self.embed(tokens) * self.scale
        pos = torch.arange(POSITION_OFFSET, POSITION_OFFSET + s, device=tokens.device)
        # positions are added in fp32 then cast back, as fairseq2 does for half models
        return (x.float() + sinusoidal_table(pos, x.shape[-1])).to(x.dtype)


class TextEncoderLayer(nn.Module):
    """Pre-LN transformer encoder layer (self-attention, ReLU FFN)."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.self_attn_layer_norm = nn.LayerNorm(cfg.model_dim)
        self.self_attn = MultiheadAttention(cfg.model_dim, cfg.num_heads)
        self.ffn_layer_norm = nn.LayerNorm(cfg.model_dim)
        self.ffn = FeedForward(cfg.model_dim, cfg.ffn_dim, "relu")

    def forward(self, x: Tensor, attn_mask: Tensor | None) -> Tensor:
        """``(N, S, D)`` → ``(N, S, D)``; ``attn_mask`` boolean ``(N, 1, 1, S)``."""
        h = self.self_attn_layer_norm(x)
        x = x + self.self_attn(h, h, attn_mask)
        return x + self.ffn(self.ffn_layer_norm(x))


class TextEncoderStack(nn.Module):
    """Holds ``layers`` so that keys read ``encoder.layers.{i}.*``."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TextEncoderLayer(cfg) for _ in range(cfg.num_layers))


class SonarTextModel(nn.Module):
    """Token ids → sentence embeddings ``(N, D)``: masked mean of the last layer, not normalised."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder_frontend = TextFrontend(cfg)
        self.encoder = TextEncoderStack(cfg)
        self.layer_norm = nn.LayerNorm(cfg.model_dim)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Embed a right-padded batch.

        Args:
            tokens: ``(N, S)`` int64 token ids, padded with ``pad_idx`` after ``lengths[n]``.
            lengths: ``(N,)`` int64 number of real tokens per row (≥ 1).
        Returns:
            ``(N, D)`` mean over real positions of the final LayerNorm output.
        """
        keep = key_padding_mask(lengths, tokens.shape[1])  # (N, S)
        # No mask when nothing is padded: lets SDPA pick its fastest kernel.
        attn_mask = None if bool(keep.all()) else keep[:, None, None, :]
        x = self.encoder_frontend(tokens)
        for layer in self.encoder.layers:
            x = layer(x, attn_mask)
        x = self.layer_norm(x)
        w = keep.to(x.dtype).unsqueeze(-1)
        return (x * w).sum(dim=1) / lengths.to(x.dtype).unsqueeze(-1)
