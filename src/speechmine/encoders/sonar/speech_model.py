"""SONAR speech encoder: w2v-BERT 2.0 conformer encoder + attention pooler.

Input is the standardised 80-bin fbank of :mod:`.fbank`; two consecutive frames are stacked
(``(T, 80)`` → ``(T // 2, 160)``, i.e. one encoder step per 20 ms). Parameter names equal the
fairseq2-native checkpoint keys (``encoder_frontend.*``, ``encoder.layers.{i}.*``,
``layer_norm.*``, ``encoder_pooler.*``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import FeedForward, MultiheadAttention, key_padding_mask, sinusoidal_table

__all__ = ["SpeechConfig", "SonarSpeechModel", "infer_speech_config", "FBANK_STRIDE"]

#: fbank frames stacked per encoder step.
FBANK_STRIDE = 2


@dataclass(frozen=True)
class SpeechConfig:
    """Shape of a SONAR speech encoder. Defaults: the released ``english`` architecture."""

    feature_dim: int = 160
    model_dim: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    ffn_dim: int = 4096
    conv_kernel: int = 31
    #: Longest encoder input (stacked frames) the relative positions cover: 4096 ≈ 81.9 s.
    max_seq_len: int = 4096
    pooler_layers: int = 3
    pooler_heads: int = 16
    pooler_ffn_dim: int = 4096
    pooler_vocab: int = 1024
    bos_idx: int = 2


def infer_speech_config(state: dict[str, Tensor], **overrides: Any) -> SpeechConfig:
    """Read the architecture off a fairseq2-layout speech state dict."""
    try:
        dim, feat = state["encoder_frontend.model_dim_proj.weight"].shape
        heads = state["encoder.layers.0.self_attn.sdpa.u_bias"].shape[0]
        ffn = state["encoder.layers.0.ffn1.inner_proj.weight"].shape[0]
        kernel = state["encoder.layers.0.conv.depthwise_conv.weight"].shape[-1]
        if kernel % 2 == 0:
            raise ValueError(f"depthwise kernel {kernel} is even; SONAR uses odd ('same') kernels")
        pvocab = state["encoder_pooler.decoder_frontend.embed.weight"].shape[0]
        pffn = state["encoder_pooler.decoder.layers.0.ffn.inner_proj.weight"].shape[0]
    except KeyError as exc:
        raise ValueError(f"not a SONAR speech encoder state dict (missing {exc})") from None

    def count(prefix: str) -> int:
        n = prefix.count(".")
        return 1 + max(int(k.split(".")[n]) for k in state if k.startswith(prefix))

    values: dict[str, Any] = dict(
        feature_dim=int(feat), model_dim=int(dim), num_layers=count("encoder.layers."),
        num_heads=int(heads), ffn_dim=int(ffn), conv_kernel=int(kernel),
        pooler_layers=count("encoder_pooler.decoder.layers."),
        # the pooler's head count leaves no trace in shapes; released models use the encoder's
        pooler_heads=int(heads), pooler_ffn_dim=int(pffn), pooler_vocab=int(pvocab),
    )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SpeechConfig(**values)


def relative_table(seq_len: int, dim: int, device: torch.device) -> Tensor:
    """Transformer-XL relative encodings for offsets ``S-1, ..., 0, ..., -(S-1)`` → ``(2S-1, D)``.

    Interleaved ``sin, cos`` pairs with frequency ``10000^(-2j/D)``; computed in float32 in the
    same order as fairseq2 (the argument is formed from |offset|, the sign applied after).
    """
    idx = torch.arange(0, dim, 2, dtype=torch.float32, device=device)
    freqs = torch.exp(idx * -math.log(10000.0) / dim)
    steps = torch.arange(seq_len, dtype=torch.float32, device=device)
    ang = torch.outer(steps, freqs)  # (S, D/2), offsets 0..S-1
    ang = torch.cat([ang.flip(0), -ang[1:]], dim=0)  # offsets S-1 .. -(S-1)
    out = torch.empty(2 * seq_len - 1, dim, dtype=torch.float32, device=device)
    out[:, 0::2] = ang.sin()
    out[:, 1::2] = ang.cos()
    return out


class RelativePositionSDPA(nn.Module):
    """Holds ``u_bias``/``v_bias`` ``(H, K)`` and ``r_proj`` (no bias), the Transformer-XL terms."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.u_bias = nn.Parameter(torch.zeros(num_heads, dim // num_heads))
        self.v_bias = nn.Parameter(torch.zeros(num_heads, dim // num_heads))
        self.r_proj = nn.Linear(dim, dim, bias=False)


#: Query rows per block of :func:`position_bias`.
BIAS_BLOCK = 128


def position_bias(qv: Tensor, r: Tensor, scale: float) -> Tensor:
    """Transformer-XL position term ``bias[n,h,i,j] = scale · qv[n,h,i] · r[h, S-1-i+j]``.

    ``qv``: queries plus ``v_bias`` ``(N, H, S, K)``; ``r``: projected relative table
    ``(H, 2S-1, K)`` (offsets S-1 … -(S-1)). Returns ``(N, H, S, S)``.

    The classic "shift trick" multiplies every query with all 2S-1 offsets and keeps S of them.
    Working in blocks of rows, a block of b rows only needs S+b-1 offsets, which halves the
    work and memory for long inputs; inside a block the shift is a strided view (no copy).
    """
    n, h, s, _ = qv.shape
    out = qv.new_empty(n, h, s, s)
    for i0 in range(0, s, BIAS_BLOCK):
        i1 = min(s, i0 + BIAS_BLOCK)
        b, w = i1 - i0, s + i1 - i0 - 1
        # rows i0..i1-1 use offsets i-j ∈ [i0-(S-1), i1-1]: r rows S-i1 … 2S-2-i0
        bd = torch.matmul(qv[:, :, i0:i1], r[:, s - i1 : s - i1 + w].transpose(-1, -2)).contiguous()
        # local row t needs local column (b-1-t)+j
        view = bd.as_strided(
            (n, h, b, s), (h * b * w, b * w, w - 1, 1), bd.storage_offset() + b - 1
        )
        torch.mul(view, scale, out=out[:, :, i0:i1])
    return out


class RelativeSelfAttention(MultiheadAttention):
    """Self-attention with relative positions: score = (q+u)·k + (q+v)·r[i-j], scaled by K^-½."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__(dim, num_heads)
        self.sdpa = RelativePositionSDPA(dim, num_heads)

    def forward(self, x: Tensor, rel: Tensor, attn_mask: Tensor | None) -> Tensor:
        """Self-attention over ``x`` ``(N, S, D)`` → ``(N, S, D)``.

        ``rel``: :func:`relative_table` ``(2S-1, D)`` in ``x``'s dtype (shared by all layers);
        ``attn_mask``: boolean ``(N, 1, 1, S)``, True at real frames, or None.
        """
        n, s, d = x.shape
        h = self.num_heads
        q = self._heads(self.q_proj(x))
        k = self._heads(self.k_proj(x))
        v = self._heads(self.v_proj(x))
        r = self.sdpa.r_proj(rel)  # (2S-1, D)
        r = r.view(2 * s - 1, h, -1).transpose(0, 1)  # (H, 2S-1, K)
        bias = position_bias(q + self.sdpa.v_bias[:, None, :], r, q.shape[-1] ** -0.5)
        if attn_mask is not None:
            bias.masked_fill_(~attn_mask, float("-inf"))
        out = F.scaled_dot_product_attention(q + self.sdpa.u_bias[:, None, :], k, v, attn_mask=bias)
        return self.output_proj(out.transpose(1, 2).reshape(n, s, d))


class ConformerConvolution(nn.Module):
    """Pointwise (D→2D, GLU) → depthwise conv → BatchNorm → SiLU → pointwise; no biases."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.pointwise_conv1 = nn.Conv1d(dim, 2 * dim, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel, padding="same", groups=dim, bias=False)
        self.batch_norm = nn.BatchNorm1d(dim)
        self.pointwise_conv2 = nn.Conv1d(dim, dim, 1, bias=False)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """``(N, S, D)`` → ``(N, S, D)``; ``keep`` ``(N, S)`` True at real frames."""
        # Pointwise convs as matmuls in (N, S, D) layout: same maths, no transposes.
        x = F.glu(F.linear(x, self.pointwise_conv1.weight.squeeze(-1)), dim=-1)
        if keep is not None:
            # padded frames must not leak into real ones through the depthwise kernel
            x = x * keep.unsqueeze(-1).to(x.dtype)
        # Depthwise conv as a 1×K conv2d on an (N, D, 1, S) *view* of the (N, S, D) data: that
        # is the channels-last layout oneDNN/cuDNN depthwise kernels are fast on (13× faster
        # than conv1d on (N, D, S) on CPU) and it needs no transpose copies.
        w = self.depthwise_conv.weight  # (D, 1, K)
        k = w.shape[-1]
        x = F.conv2d(x.transpose(1, 2).unsqueeze(2), w.unsqueeze(2),
                     padding=(0, k // 2), groups=w.shape[0])
        x = x.squeeze(2).transpose(1, 2)  # (N, S, D), contiguous again
        bn = self.batch_norm  # eval mode: running statistics
        mean, var = bn.running_mean, bn.running_var
        if mean is None or var is None:  # only without track_running_stats, never built here
            raise ValueError("ConformerConvolution needs the BatchNorm running statistics")
        scale = bn.weight * torch.rsqrt(var + bn.eps)
        x = F.silu(torch.addcmul(bn.bias - mean * scale, x, scale))
        return F.linear(x, self.pointwise_conv2.weight.squeeze(-1))


class ConformerBlock(nn.Module):
    """½FFN → relative self-attention → convolution → ½FFN → LayerNorm (pre-LN, residuals)."""

    def __init__(self, cfg: SpeechConfig) -> None:
        super().__init__()
        d = cfg.model_dim
        self.ffn1_layer_norm = nn.LayerNorm(d)
        self.ffn1 = FeedForward(d, cfg.ffn_dim, "silu")
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.self_attn = RelativeSelfAttention(d, cfg.num_heads)
        self.conv_layer_norm = nn.LayerNorm(d)
        self.conv = ConformerConvolution(d, cfg.conv_kernel)
        self.ffn2_layer_norm = nn.LayerNorm(d)
        self.ffn2 = FeedForward(d, cfg.ffn_dim, "silu")
        self.layer_norm = nn.LayerNorm(d)

    def forward(
        self, x: Tensor, rel: Tensor, keep: Tensor | None, attn_mask: Tensor | None
    ) -> Tensor:
        """``(N, S, D)`` → ``(N, S, D)``; ``rel`` the shared relative table ``(2S-1, D)``."""
        x = torch.add(x, self.ffn1(self.ffn1_layer_norm(x)), alpha=0.5)
        x = x + self.self_attn(self.self_attn_layer_norm(x), rel, attn_mask)
        x = x + self.conv(self.conv_layer_norm(x), keep)
        x = torch.add(x, self.ffn2(self.ffn2_layer_norm(x)), alpha=0.5)
        return self.layer_norm(x)


class SpeechFrontend(nn.Module):
    """LayerNorm(160) → Linear(160 → D) on stacked fbank frames."""

    def __init__(self, cfg: SpeechConfig) -> None:
        super().__init__()
        self.post_extract_layer_norm = nn.LayerNorm(cfg.feature_dim)
        self.model_dim_proj = nn.Linear(cfg.feature_dim, cfg.model_dim)

    def forward(self, feats: Tensor) -> Tensor:
        """``(N, S, 160)`` → ``(N, S, D)``."""
        return self.model_dim_proj(self.post_extract_layer_norm(feats))


class PoolerLayer(nn.Module):
    """Post-LN transformer decoder layer: self-attn, cross-attn to the encoder, ReLU FFN."""

    def __init__(self, cfg: SpeechConfig) -> None:
        super().__init__()
        d = cfg.model_dim
        self.self_attn = MultiheadAttention(d, cfg.pooler_heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.encoder_decoder_attn = MultiheadAttention(d, cfg.pooler_heads)
        self.encoder_decoder_attn_layer_norm = nn.LayerNorm(d)
        self.ffn = FeedForward(d, cfg.pooler_ffn_dim, "relu")
        self.ffn_layer_norm = nn.LayerNorm(d)

    def forward(self, x: Tensor, enc: Tensor, enc_mask: Tensor | None) -> Tensor:
        """Query ``(N, 1, D)`` attending to ``enc`` ``(N, S, D)`` → ``(N, 1, D)``."""
        x = self.self_attn_layer_norm(x + self.self_attn(x, x, None))
        x = self.encoder_decoder_attn_layer_norm(x + self.encoder_decoder_attn(x, enc, enc_mask))
        return self.ffn_layer_norm(x + self.ffn(x))


class PoolerDecoderFrontend(nn.Module):
    """The pooler's token table: only row ``bos_idx`` is ever used, as the single query."""

    def __init__(self, cfg: SpeechConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.pooler_vocab, cfg.model_dim)


class PoolerDecoder(nn.Module):
    """Holds ``layers`` so that keys read ``encoder_pooler.decoder.layers.{i}.*``."""

    def __init__(self, cfg: SpeechConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(PoolerLayer(cfg) for _ in range(cfg.pooler_layers))


class AttentionPooler(nn.Module):
    """One learned query (BOS embedding × √D + position 0) decoded against the encoder output."""

    def __init__(self, cfg: SpeechConfig) -> None:
        super().__init__()
        self.bos_idx = cfg.bos_idx
        self.decoder_frontend = PoolerDecoderFrontend(cfg)
        self.decoder = PoolerDecoder(cfg)
        self.projection_out = nn.Linear(cfg.model_dim, cfg.model_dim, bias=False)

    def forward(self, enc: Tensor, enc_mask: Tensor | None) -> Tensor:
        """``enc`` ``(N, S, D)`` → ``(N, D)``."""
        n, _, d = enc.shape
        emb = self.decoder_frontend.embed.weight[self.bos_idx] * math.sqrt(d)
        pos0 = sinusoidal_table(torch.zeros(1, device=enc.device), d)[0]
        q = (emb.float() + pos0).to(enc.dtype).expand(n, 1, d)
        for layer in self.decoder.layers:
            q = layer(q, enc, enc_mask)
        return self.projection_out(q).squeeze(1)


class ConformerStack(nn.Module):
    """Holds ``layers`` so that keys read ``encoder.layers.{i}.*``."""

    def __init__(self, cfg: SpeechConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ConformerBlock(cfg) for _ in range(cfg.num_layers))


class SonarSpeechModel(nn.Module):
    """Stacked fbank features → speech embeddings ``(N, D)`` in the SONAR space."""

    def __init__(self, cfg: SpeechConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder_frontend = SpeechFrontend(cfg)
        self.encoder = ConformerStack(cfg)
        self.layer_norm = nn.LayerNorm(cfg.model_dim)
        self.encoder_pooler = AttentionPooler(cfg)

    def forward(self, feats: Tensor, lengths: Tensor) -> Tensor:
        """Embed a right-padded batch.

        Args:
            feats: ``(N, S, 160)`` stacked standardised fbank frames, zero past ``lengths``.
            lengths: ``(N,)`` int64 real encoder steps per row (1 ≤ len ≤ ``max_seq_len``).
        Returns:
            ``(N, D)`` embeddings (not normalised).
        """
        s = feats.shape[1]
        if s > self.config.max_seq_len:
            raise ValueError(f"{s} encoder steps exceed max_seq_len={self.config.max_seq_len}")
        keep = key_padding_mask(lengths, s)
        padded = not bool(keep.all())
        attn_mask = keep[:, None, None, :] if padded else None
        x = self.encoder_frontend(feats)
        rel = relative_table(s, x.shape[-1], x.device).to(x.dtype)
        for layer in self.encoder.layers:
            x = layer(x, rel, keep if padded else None, attn_mask)
        x = self.layer_norm(x)
        return self.encoder_pooler(x, attn_mask)
