"""LASER's two sentence-encoder architectures in plain PyTorch (inference only).

* :class:`LaserLstm`: LASER / LASER2, a BiLSTM over token embeddings, max-pooled over time
  (``laser_encoders.models.LaserLstmEncoder``; parameter names equal the checkpoint's).
* :class:`LaserTransformer`: the LASER3 students, a fairseq ``TransformerEncoder`` (0.12)
  read by ``laser_encoders.models.LaserTransformerEncoder``: scaled token embeddings plus
  sinusoidal (or learned) positions counted over non-pad tokens, post- or pre-LayerNorm
  layers, an optional final LayerNorm, then the embedding of the first token (``cls``) or a
  max over non-pad tokens (``maxpool``).

Both take right-padded ``(batch, time)`` token ids: padding sides make no difference to
either (positions skip pads, attention and pooling mask them, the LSTM packs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LstmConfig", "TransformerConfig", "LaserLstm", "LaserTransformer", "ACTIVATIONS",
           "sinusoidal_table", "make_positions"]

#: fairseq's dictionary specials, which the reference also forces into LASER2's dictionary.
BOS, PAD, EOS, UNK = 0, 1, 2, 3


@dataclass(frozen=True)
class LstmConfig:
    """``params`` of a LASER BiLSTM checkpoint (the keyword arguments of the reference's
    ``LaserLstmEncoder``, with its defaults)."""

    num_embeddings: int
    padding_idx: int
    embed_dim: int = 320
    hidden_size: int = 512
    num_layers: int = 1
    bidirectional: bool = False
    #: accepted and unused, as in the reference (batches are right-padded)
    left_pad: bool = True
    padding_value: float = 0.0

    @property
    def dim(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)


@dataclass(frozen=True)
class TransformerConfig:
    """A LASER transformer student, read off its fairseq training arguments and tensors."""

    vocab_size: int
    embed_dim: int
    ffn_dim: int
    num_layers: int
    num_heads: int
    normalize_before: bool
    learned_pos: bool
    no_positions: bool
    scale_embedding: bool
    layernorm_embedding: bool
    quant_noise: bool
    final_layer_norm: bool
    max_positions: int
    activation: str
    #: ``cls`` (the first token's output) or ``maxpool``
    pooling: str
    prepend_bos: bool
    #: how the reference pads batches (it makes no difference to the result)
    left_pad: bool

    @property
    def dim(self) -> int:
        return self.embed_dim


def _gelu(x: Tensor) -> Tensor:
    return F.gelu(x.float()).type_as(x)


def _gelu_accurate(x: Tensor) -> Tensor:
    a = math.sqrt(2 / math.pi)
    return 0.5 * x * (1 + torch.tanh(a * (x + 0.044715 * torch.pow(x, 3))))


def _relu_squared(x: Tensor) -> Tensor:
    return F.relu(x).pow(2)


def _linear(x: Tensor) -> Tensor:
    return x


#: fairseq's ``utils.get_activation_fn`` names (``swish`` is broken there: not offered)
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu, "relu_squared": _relu_squared, "gelu": _gelu, "gelu_fast": _gelu_accurate,
    "gelu_accurate": _gelu_accurate, "tanh": torch.tanh, "linear": _linear,
}


class LaserLstm(nn.Module):
    """LASER's BiLSTM encoder: ``embed_tokens`` → ``lstm`` (packed) → max over time."""

    def __init__(self, cfg: LstmConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.num_embeddings, cfg.embed_dim,
                                         padding_idx=cfg.padding_idx)
        self.lstm = nn.LSTM(input_size=cfg.embed_dim, hidden_size=cfg.hidden_size,
                            num_layers=cfg.num_layers, bidirectional=cfg.bidirectional)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """``tokens`` ``(B, T)`` right-padded with :data:`PAD`, rows sorted by decreasing
        ``lengths`` (CPU int64); returns ``(B, dim)``."""
        x = self.embed_tokens(tokens).transpose(0, 1)  # T x B x C
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu())
        out, _ = self.lstm(packed)  # zero initial states
        x, _ = nn.utils.rnn.pad_packed_sequence(out, padding_value=self.cfg.padding_value,
                                                total_length=tokens.shape[1])
        # pads (the checkpoint's padding_idx, as the reference) never win the max
        mask = tokens.eq(self.cfg.padding_idx).t().unsqueeze(-1)
        if bool(mask.any()):
            x = x.float().masked_fill(mask, float("-inf")).type_as(x)
        return x.max(dim=0)[0]


def sinusoidal_table(num: int, dim: int, padding_idx: int) -> Tensor:
    """fairseq's ``SinusoidalPositionalEmbedding.get_embedding`` (float32, row ``padding_idx``
    zero): ``[sin | cos]`` halves, frequency ``10000^(-j / (dim/2 - 1))``."""
    half = dim // 2
    step = math.log(10000) / (half - 1)
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -step)
    angles = torch.arange(num, dtype=torch.float).unsqueeze(1) * freq.unsqueeze(0)
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).view(num, -1)
    if dim % 2 == 1:
        emb = torch.cat([emb, torch.zeros(num, 1)], dim=1)
    emb[padding_idx, :] = 0
    return emb


def make_positions(tokens: Tensor, padding_idx: int) -> Tensor:
    """Position of each non-pad token, counted from ``padding_idx + 1``; pads get
    ``padding_idx`` (fairseq's ``utils.make_positions``)."""
    mask = tokens.ne(padding_idx).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + padding_idx


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding width {dim} is not a multiple of {heads} heads")
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        b, t, d = x.shape
        h = self.heads

        def split(y: Tensor) -> Tensor:
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        # key_mask: True where the key is a pad (B x T) -> attend where False
        allowed = None if key_mask is None else ~key_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class _Layer(nn.Module):
    """fairseq ``TransformerEncoderLayerBase`` (inference): post-LN unless ``normalize_before``."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.normalize_before = cfg.normalize_before
        self.activation = ACTIVATIONS[cfg.activation]
        self.self_attn = _SelfAttention(cfg.embed_dim, cfg.num_heads)
        self.self_attn_layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.embed_dim)
        self.final_layer_norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        residual = x
        if self.normalize_before:
            x = self.self_attn_layer_norm(x)
        x = residual + self.self_attn(x, key_mask)
        if not self.normalize_before:
            x = self.self_attn_layer_norm(x)
        residual = x
        if self.normalize_before:
            x = self.final_layer_norm(x)
        x = residual + self.fc2(self.activation(self.fc1(x)))
        if not self.normalize_before:
            x = self.final_layer_norm(x)
        return x


class LaserTransformer(nn.Module):
    """A LASER3 transformer student; parameter names are those of the checkpoint's encoder
    after the reference's renaming (``encoder.`` dropped), without its non-weight buffers."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.embed_tokens = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD)
        self.embed_scale = math.sqrt(d) if cfg.scale_embedding else 1.0
        self.embed_positions: nn.Embedding | None = None
        if cfg.learned_pos and not cfg.no_positions:
            self.embed_positions = nn.Embedding(cfg.max_positions + PAD + 1, d, padding_idx=PAD)
        self.layernorm_embedding = nn.LayerNorm(d) if cfg.layernorm_embedding else None
        self.quant_noise = nn.Linear(d, d, bias=False) if cfg.quant_noise else None
        self.layers = nn.ModuleList([_Layer(cfg) for _ in range(cfg.num_layers)])
        self.layer_norm = nn.LayerNorm(d) if cfg.final_layer_norm else None
        self._sinusoids: Tensor | None = None

    def _positions(self, tokens: Tensor, like: Tensor) -> Tensor:
        positions = make_positions(tokens, PAD)
        if self.embed_positions is not None:
            return self.embed_positions(positions)
        need = PAD + 1 + tokens.shape[1]
        table = self._sinusoids
        if table is None or table.shape[0] < need:
            table = sinusoidal_table(max(need, self.cfg.max_positions + PAD + 1),
                                     self.cfg.embed_dim, PAD)
        table = table.to(like)
        self._sinusoids = table
        return table.index_select(0, positions.reshape(-1)).view(*tokens.shape, -1)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``tokens`` ``(B, T)`` padded with :data:`PAD`; returns ``(B, dim)``."""
        pad = tokens.eq(PAD)
        x = self.embed_scale * self.embed_tokens(tokens)
        if not self.cfg.no_positions:
            x = x + self._positions(tokens, x)
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        if self.quant_noise is not None:
            x = self.quant_noise(x)
        has_pads = bool(pad.any())
        if has_pads:
            x = x * (1 - pad.unsqueeze(-1).type_as(x))
        key_mask = pad if has_pads else None
        for layer in self.layers:
            x = layer(x, key_mask)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        if self.cfg.pooling == "cls":  # the (first) BOS of each row
            first = tokens.eq(BOS).int().argmax(dim=1)
            return x[torch.arange(x.shape[0], device=x.device), first]
        if has_pads:
            x = x.float().masked_fill(pad.unsqueeze(-1), float("-inf")).type_as(x)
        return x.max(dim=1)[0]
