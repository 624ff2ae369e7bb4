"""Throughput of the plain-PyTorch LASER encoders at full size (random weights).

Measures, in one run on this machine:

* the baseline: ``torch.mm`` of 4096×4096 fp32 (FLOP/s), re-measured before each model;
* LASER2 (BiLSTM: 320-d embeddings, 5 bidirectional layers of 512, 50,004 tokens) and
  LASER3 (transformer student: 1024-d, 12 layers, 4 heads, FFN 2048, CLS pooling):
  sentences/s on batches of 20–40-token sentences (LASER's ``max_tokens`` 12,000 grouping),
  achieved FLOP/s and its fraction of the matmul rate;
* the text preprocessing (non-printing characters, Moses punctuation, lower case,
  SentencePiece) in sentences/s, on the fixture's SentencePiece model;
* with ``--reference``, when the official ``laser_encoders`` (and fairseq) import: the same
  forward passes through the reference modules on the same weights, and the speed ratio.

Usage::

    python benchmarks/laser.py                 # ~1.5 min on 2 cores
    python benchmarks/laser.py --sentences 512 --threads 1
    PYTHONPATH=<fairseq 0.12.2>:src python benchmarks/laser.py --reference   # in the
        # fixture environment of tests/data/laser/README.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechmine.encoders.laser.model import (
    PAD,
    LaserLstm,
    LaserTransformer,
    LstmConfig,
    TransformerConfig,
)

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 50_004  # laser2.spm's 50,000 pieces + fairseq's 4 specials

LSTM = LstmConfig(num_embeddings=VOCAB, padding_idx=PAD, embed_dim=320, hidden_size=512,
                  num_layers=5, bidirectional=True)
TRANSFORMER = TransformerConfig(
    vocab_size=VOCAB + 1, embed_dim=1024, ffn_dim=2048, num_layers=12, num_heads=4,
    normalize_before=False, learned_pos=False, no_positions=False, scale_embedding=True,
    layernorm_embedding=False, quant_noise=False, final_layer_norm=True, max_positions=1024,
    activation="relu", pooling="cls", prepend_bos=True, left_pad=False)


def timed(fn: Callable[[], object], reps: int) -> float:
    """Mean wall seconds per call after one warm-up call."""
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def matmul_rate() -> float:
    """FLOP/s of a 4096² fp32 matmul: the best of three rounds (a shared machine is noisy)."""
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    return max(2 * 4096**3 / timed(lambda: torch.mm(a, b), 2) for _ in range(3))


def batches(n: int, seed: int, bos: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Right-padded batches of 20–40-token sentences, longest first, at most 12,000 tokens
    each (LASER's grouping)."""
    rng = np.random.default_rng(seed)
    lengths = np.sort(rng.integers(20, 41, size=n))[::-1]
    out, start = [], 0
    while start < n:
        stop, tokens = start, 0
        while stop < n and tokens + lengths[stop] <= 12_000:
            tokens += int(lengths[stop])
            stop += 1
        lens = torch.from_numpy(lengths[start:stop].copy())
        ids = torch.full((stop - start, int(lens[0])), PAD, dtype=torch.int64)
        for row, k in enumerate(lens.tolist()):
            ids[row, :k] = torch.from_numpy(rng.integers(4, VOCAB, size=k))
            if bos:
                ids[row, 0] = 0
            ids[row, k - 1] = 2
        out.append((ids, lens))
        start = stop
    return out


def lstm_flops(tokens: int) -> float:
    h, dirs = LSTM.hidden_size, 2
    per = sum(2 * 4 * h * ((LSTM.embed_dim if i == 0 else h * dirs) + h) * dirs
              for i in range(LSTM.num_layers))
    return float(per * tokens)


def transformer_flops(data: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    d, f, layers = TRANSFORMER.embed_dim, TRANSFORMER.ffn_dim, TRANSFORMER.num_layers
    total = 0.0
    for ids, _ in data:
        b, t = ids.shape
        total += layers * (b * t * 2 * (4 * d * d + 2 * d * f) + b * 4 * t * t * d)
    return total


def random_model(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model: torch.nn.Module = LaserLstm(LSTM) if kind == "lstm" else LaserTransformer(TRANSFORMER)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.05, 0.05)
    return model.eval()


def run(fn: Callable[[], object], reps: int) -> float:
    with torch.inference_mode():
        return timed(fn, reps)


def reference_module(kind: str, ours: torch.nn.Module, tmp: Path) -> Any:
    """The official module with our weights (the reference's own loading code)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from build_laser_fixtures import allow_py311_fairseq

    allow_py311_fairseq()
    from laser_encoders.models import LaserLstmEncoder, LaserTransformerEncoder

    state = ours.state_dict()
    if kind == "lstm":
        ref = LaserLstmEncoder(**{k: getattr(LSTM, k) for k in (
            "num_embeddings", "padding_idx", "embed_dim", "hidden_size", "num_layers",
            "bidirectional")})
        ref.load_state_dict(state)
        return ref.eval()
    vocab = tmp / "v.cvocab"
    vocab.write_text("".join(f"p{i} 100\n" for i in range(VOCAB - 4)))
    args = Namespace(encoder_embed_dim=1024, encoder_ffn_embed_dim=2048, encoder_layers=12,
                     encoder_attention_heads=4, sentemb_criterion="cls", prepend_bos=True,
                     left_pad_source=False, max_source_positions=1024, dropout=0.0)
    from fairseq.models.transformer import base_architecture

    base_architecture(args)
    ckpt = {"cfg": {"model": args}, "model": {
        **{f"encoder.{k}": v for k, v in state.items()},
        "encoder.embed_positions._float_tensor": torch.zeros(1),
        "encoder.version": torch.Tensor([3]), "decoder.version": torch.Tensor([3])}}
    ref = LaserTransformerEncoder(ckpt, str(vocab))
    for layer in ref.layers:  # fairseq 0.12.2's fast path does not run on torch 2
        layer.can_use_fastpath = False
    return ref.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=256)
    ap.add_argument("--reps", type=int, default=1, help="timed calls per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the best one counts")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    ap.add_argument("--reference", action="store_true",
                    help="also time the official laser_encoders modules (needs fairseq)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.sentences} sentences of 20-40 tokens per run")

    from speechmine.encoders.laser.tokenizer import LaserTokenizer

    tok = LaserTokenizer(ROOT / "tests" / "data" / "laser" / "tiny.spm", {})
    texts = ["The “quick” brown fox — isn’t it… (really) fast? Yes!! " * 2] * 2_000
    t = timed(lambda: [tok.pieces(s) for s in texts], 1)
    print(f"preprocessing + SentencePiece: {len(texts) / t:,.0f} sentences/s "
          "(~110 characters each)")

    with tempfile.TemporaryDirectory() as tmp:
        for kind, title in (("lstm", "LASER2 BiLSTM"), ("transformer", "LASER3 transformer")):
            bench(kind, title, args, Path(tmp))


def forward_all(model: Any, data: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], Any]:
    return lambda: [model(ids, lens) for ids, lens in data]


def bench(kind: str, title: str, args: argparse.Namespace, tmp: Path) -> None:
    roof = matmul_rate()
    data = batches(args.sentences, 0, bos=kind == "transformer")
    tokens = sum(int(lens.sum()) for _, lens in data)
    flops = lstm_flops(tokens) if kind == "lstm" else transformer_flops(data)
    model = random_model(kind)
    ref = reference_module(kind, model, tmp) if args.reference else None
    ours_t, ref_t = [], []
    for _ in range(args.rounds):  # alternate, keep the best: other jobs add noise
        ours_t.append(run(forward_all(model, data), args.reps))
        if ref is not None:
            ref_t.append(run(forward_all(ref, data), args.reps))
    secs = min(ours_t)
    rate = flops / secs
    print(f"\n{title}: {args.sentences / secs:,.1f} sentences/s, "
          f"{rate / 1e9:.1f} GFLOP/s = {100 * rate / roof:.0f}% of matmul "
          f"({roof / 1e9:.0f} GFLOP/s, measured just before)")
    if ref is not None:
        with torch.inference_mode():
            ours_out = torch.cat([model(i, n) for i, n in data])
            ref_out = torch.cat([ref(i, n)["sentemb"] for i, n in data])
        diff = float((ours_out - ref_out).abs().max())
        ref_secs = min(ref_t)
        print(f"  reference (laser_encoders): {args.sentences / ref_secs:,.1f} sentences/s; "
              f"ours/reference speed {ref_secs / secs:.2f}x; max |diff| {diff:.1e}")


if __name__ == "__main__":
    main()
