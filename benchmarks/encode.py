"""Throughput of the plain-PyTorch SONAR encoders at full size (random weights).

Measures, in one run on this machine:

* the matmul roofline: ``torch.mm`` of 4096×4096 fp32 (FLOP/s);
* text encoder (1024-d, 24 layers, FFN 8192): sentences/s for 30-token sentences, fp32 and
  dynamic int8, with the int8/fp32 cosine on the same inputs;
* speech encoder (w2v-BERT 600M conformer + 3-layer pooler): real-time factor on 5 s and
  20 s segments (fbank included);
* achieved model FLOP/s as a fraction of the matmul rate, and peak RSS (getrusage);
* a GPU section (fp16/bf16) when CUDA is available.

Usage::

    python benchmarks/encode.py                  # default: < ~3 min on 2 cores
    python benchmarks/encode.py --text-sentences 96 --speech-segments 8 --threads 2
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from speechmine.encoders.sonar.fbank import kaldi_fbank
from speechmine.encoders.sonar.speech_model import SonarSpeechModel, SpeechConfig
from speechmine.encoders.sonar.text_model import SonarTextModel, TextConfig


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (GB; ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


@dataclass(frozen=True)
class Timing:
    """Seconds per call: wall clock and CPU time of this process (all its threads)."""

    wall: float
    cpu: float


def timed(fn: Callable[[], object], reps: int, sync: Callable[[], None] = lambda: None,
          warmup: Callable[[], object] | None = None) -> Timing:
    """Mean time per call of ``fn`` after one (cheaper, if given) warm-up call."""
    (warmup or fn)()
    sync()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn()
    sync()
    return Timing((time.perf_counter() - w0) / reps, (time.process_time() - c0) / reps)


@dataclass(frozen=True)
class Rate:
    """FLOP per wall second and per CPU second (the latter ignores cores other jobs took)."""

    wall: float
    cpu: float

    @staticmethod
    def of(flops: float, t: Timing) -> Rate:
        return Rate(flops / t.wall, flops / max(t.cpu, 1e-9))

    def vs(self, roof: Rate, device: str) -> str:
        """``'81.0% of matmul (84.2% per CPU-second)'``."""
        out = f"{100 * self.wall / roof.wall:5.1f}% of matmul"
        if device == "cpu":
            out += f" ({100 * self.cpu / roof.cpu:5.1f}% per CPU-second)"
        return out


def matmul_rate(device: str, dtype: torch.dtype, n: int = 4096, reps: int = 3) -> Rate:
    """FLOP rate of an n×n by n×n matmul."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return Rate.of(2 * n**3, timed(lambda: torch.mm(a, b), reps, sync))


def random_model(factory: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    """Build on the meta device, then fill: weights U(±0.02·√3) (std 0.02), norms at identity.

    Skips torch's default initialisation (a second pass over ~700M parameters) and uses
    uniform draws, which are cheaper than normal ones; the values only need realistic scales.
    """
    with torch.device("meta"):
        model = factory()
    model.to_empty(device="cpu")
    torch.manual_seed(seed)
    bound = 0.02 * 3**0.5
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2 or name.endswith(("u_bias", "v_bias")):
                p.uniform_(-bound, bound)
            elif "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.fill_(1.0)
            else:
                b.zero_()
    return model.eval()


# -- FLOP counts (multiply-add = 2 FLOP; matmuls and convolutions only) ------------------
def text_flops(cfg: TextConfig, batch: int, seq: int) -> float:
    """Linear layers (2 × 504M params per token at full size) + attention scores/values."""
    d, f = cfg.model_dim, cfg.ffn_dim
    linear = 4 * d * d + 2 * d * f  # multiply-adds per token: q, k, v, out, FFN
    attn = 2 * seq * d  # QK^T and AV multiply-adds per token
    return 2.0 * cfg.num_layers * batch * seq * (linear + attn)


def speech_flops(cfg: SpeechConfig, batch: int, steps: int) -> float:
    """Conformer + pooler FLOPs for ``batch`` segments of ``steps`` encoder steps (20 ms)."""
    d, f, t = cfg.model_dim, cfg.ffn_dim, steps
    per_step = (
        2 * 2 * d * f  # two macaron FFNs
        + 4 * d * d  # q, k, v, output projections
        + 3 * d * d  # pointwise convs (d→2d, d→d)
        + d * cfg.conv_kernel  # depthwise conv
    )
    layer = 2 * batch * t * per_step
    layer += 2 * (2 * t - 1) * d * d  # r_proj on the relative table (shared by the batch)
    # QK^T, AV and the position term (q+v)·r[i-j]: S×S dot products each (the shift trick's
    # extra offsets are implementation overhead, not counted)
    layer += 2 * batch * 3 * t * t * d
    enc = cfg.num_layers * layer + 2 * batch * t * cfg.feature_dim * d
    pool = cfg.pooler_layers * 2 * batch * (
        2 * t * d * d  # cross-attention K, V over the encoder output
        + 2 * t * d  # scores and values of the single query
        + 6 * d * d + 2 * d * cfg.pooler_ffn_dim  # the query's own projections and FFN
    ) + 2 * batch * d * d
    return enc + pool


# -- benchmarks --------------------------------------------------------------------------
def bench_text(args: argparse.Namespace, device: str, dtype: torch.dtype, roof: Callable[[], Rate],
               int8: bool) -> None:
    cfg = TextConfig(vocab_size=args.vocab)
    t0 = time.perf_counter()
    model = random_model(lambda: SonarTextModel(cfg)).to(device=device, dtype=dtype)
    print(f"  built text model in {time.perf_counter() - t0:.1f} s; "
          f"peak RSS {peak_rss_gb():.2f} GB")
    b, s = args.text_batch, args.text_tokens
    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(4, cfg.vocab_size, (b, s), generator=g).to(device)
               for _ in range(max(1, args.text_sentences // b))]
    lengths = torch.full((b,), s, dtype=torch.int64, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    outputs: list[torch.Tensor] = []

    def run(m: nn.Module) -> None:
        with torch.inference_mode():
            outputs[:] = [m(x, lengths) for x in batches]

    def warm(m: nn.Module) -> None:
        with torch.inference_mode():
            m(batches[0][:2], lengths[:2])

    n_sent = b * len(batches)
    peak = roof()
    t = timed(lambda: run(model), 1, sync, warmup=lambda: warm(model))
    flops = text_flops(cfg, n_sent, s)
    rate = Rate.of(flops, t)
    tag = str(dtype).replace("torch.", "")
    print(f"  text {tag:8s}: {n_sent / t.wall:8.2f} sentences/s ({s} tokens, batch {b}); "
          f"{rate.wall / 1e9:7.1f} GFLOP/s = {rate.vs(peak, device)}; "
          f"peak RSS {peak_rss_gb():.2f} GB")
    if int8:
        ref = torch.cat(outputs).float()
        with warnings.catch_warnings():  # torch.ao deprecation notices
            warnings.simplefilter("ignore")
            qmodel = torch.ao.quantization.quantize_dynamic(
                model, {nn.Linear}, dtype=torch.qint8, inplace=True
            )
        t = timed(lambda: run(qmodel), 1, warmup=lambda: warm(qmodel))
        cos = torch.nn.functional.cosine_similarity(torch.cat(outputs).float(), ref, dim=1)
        print(f"  text int8    : {n_sent / t.wall:8.2f} sentences/s "
              f"({flops / t.wall / 1e9:.1f} fp32-equivalent "
              f"GFLOP/s); cosine to fp32 min {cos.min():.4f} mean {cos.mean():.4f}; "
              f"peak RSS {peak_rss_gb():.2f} GB")


def warm_speech(model: nn.Module, device: str, dtype: torch.dtype) -> None:
    """One second of input: allocations and kernel selection happen outside the timing."""
    x = torch.randn(1, 50, 160, device=device, dtype=dtype)
    with torch.inference_mode():
        model(x, torch.tensor([50], device=device))


def bench_speech(args: argparse.Namespace, device: str, dtype: torch.dtype,
                 roof: Callable[[], Rate]) -> None:
    cfg = SpeechConfig()
    if args.speech_layers:
        cfg = replace(cfg, num_layers=args.speech_layers)
    t0 = time.perf_counter()
    model = random_model(lambda: SonarSpeechModel(cfg)).to(device=device, dtype=dtype)
    print(f"  built speech model ({cfg.num_layers} conformer layers) in "
          f"{time.perf_counter() - t0:.1f} s; peak RSS {peak_rss_gb():.2f} GB")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    tag = str(dtype).replace("torch.", "")
    for seconds, batch in zip(args.speech_seconds, args.speech_batch):
        n = int(seconds * 16_000)
        waves = [torch.from_numpy((0.1 * rng.standard_normal(n)).astype(np.float32))
                 for _ in range(batch)]

        def run(waves: list[torch.Tensor] = waves, batch: int = batch) -> torch.Tensor:
            feats = []
            for w in waves:
                fb = kaldi_fbank(w)
                std, mean = torch.std_mean(fb, dim=0)
                fb = (fb - mean) / std
                steps = fb.shape[0] // 2
                feats.append(fb[: 2 * steps].reshape(steps, 160))
            x = torch.stack(feats).to(device=device, dtype=dtype)
            lengths = torch.full((batch,), x.shape[1], dtype=torch.int64, device=device)
            with torch.inference_mode():
                return model(x, lengths)

        peak = roof()
        t = timed(run, args.speech_reps, sync, warmup=lambda: warm_speech(model, device, dtype))
        steps = (1 + (n - 400) // 160) // 2
        rate = Rate.of(speech_flops(cfg, batch, steps), t)
        print(f"  speech {tag:8s} {seconds:4.0f} s x{batch}: RTF {t.wall / (seconds * batch):.3f} "
              f"({seconds * batch / t.wall:6.1f}x real time); {rate.wall / 1e9:7.1f} GFLOP/s = "
              f"{rate.vs(peak, device)}; peak RSS {peak_rss_gb():.2f} GB")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--text-sentences", type=int, default=32)
    p.add_argument("--text-batch", type=int, default=16)
    p.add_argument("--text-tokens", type=int, default=30)
    p.add_argument("--vocab", type=int, default=256_206, help="embedding rows (no effect on speed)")
    p.add_argument("--speech-seconds", type=float, nargs="+", default=[5.0, 20.0])
    p.add_argument("--speech-batch", type=int, nargs="+", default=[2, 1])
    p.add_argument("--speech-reps", type=int, default=1)
    p.add_argument("--speech-layers", type=int, default=0, help="conformer layers (0: 24)")
    p.add_argument("--skip", choices=["text", "speech", "none"], default="none")
    p.add_argument("--no-int8", action="store_true")
    p.add_argument("--no-gpu", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    def cpu_roof() -> Rate:
        # re-measured before each phase: on a shared machine the attainable rate drifts
        r = matmul_rate("cpu", torch.float32, reps=1)
        print(f"  (matmul 4096x4096 fp32 now: {r.wall / 1e9:.1f} GFLOP/s, "
              f"{r.cpu / 1e9:.1f} per CPU-second)")
        return r

    roof = matmul_rate("cpu", torch.float32)
    print(f"CPU matmul 4096x4096 fp32: {roof.wall / 1e9:.1f} GFLOP/s "
          f"({roof.cpu / 1e9:.1f} per CPU-second)")
    if args.skip != "text":
        bench_text(args, "cpu", torch.float32, cpu_roof, int8=not args.no_int8)
    if args.skip != "speech":
        bench_speech(args, "cpu", torch.float32, cpu_roof)
    print(f"load average {os.getloadavg()[0]:.1f}; peak RSS {peak_rss_gb():.2f} GB")

    if torch.cuda.is_available() and not args.no_gpu:
        print(f"\nGPU: {torch.cuda.get_device_name()}")
        for dtype in (torch.float16, torch.bfloat16):
            groof = matmul_rate("cuda", dtype, n=8192, reps=20)
            print(f"GPU matmul 8192x8192 {dtype}: {groof.wall / 1e12:.1f} TFLOP/s")
            gargs = argparse.Namespace(**vars(args))
            gargs.text_batch, gargs.text_sentences = 256, 4096
            gargs.speech_batch = [64, 16]
            gargs.speech_reps = 3
            if args.skip != "text":
                bench_text(gargs, "cuda", dtype, lambda g=groof: g, int8=False)
            if args.skip != "speech":
                bench_speech(gargs, "cuda", dtype, lambda g=groof: g)
            print(f"  peak CUDA memory {torch.cuda.max_memory_allocated() / 1e9:.2f} GB")

if __name__ == "__main__":
    main()
