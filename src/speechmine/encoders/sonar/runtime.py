"""Where and how a SONAR model runs: device, dtype, threads, int8."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ..base import EncoderError

log = logging.getLogger(__name__)

__all__ = [
    "Runtime", "RUNTIME_OPTIONS", "effective_runtime", "resolve_runtime", "build_model",
]

#: Encoder options that :func:`resolve_runtime` takes (besides stopes' ``gpu`` / ``fp16``).
RUNTIME_OPTIONS = ("device", "dtype", "quantize", "threads")

M = TypeVar("M", bound=nn.Module)

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


@dataclass(frozen=True)
class Runtime:
    """Resolved execution settings of one encoder."""

    device: torch.device
    dtype: torch.dtype
    quantize: str | None

    def describe(self) -> str:
        """One line for logs: ``cuda:0 float16`` / ``cpu float32 int8``."""
        q = f" {self.quantize}" if self.quantize else ""
        return f"{self.device} {str(self.dtype).replace('torch.', '')}{q}"

    def identity(self) -> dict[str, Any]:
        """What of the runtime decides the vectors: device type (kernels differ between CPU
        and CUDA, not between two GPUs of one kind), dtype and quantisation."""
        return {"device": self.device.type, "dtype": str(self.dtype).replace("torch.", ""),
                "quantize": self.quantize}


def _decide(
    name: str,
    device: str | None,
    dtype: str | torch.dtype | None,
    quantize: str | None,
    gpu: bool | None,
    fp16: bool,
) -> tuple[Runtime, list[tuple[int, str]]]:
    """The runtime the options lead to, plus ``(log level, message)`` notes on requests that
    were overridden (so that :func:`effective_runtime` stays free of side effects)."""
    notes: list[tuple[int, str]] = []
    if device in (None, "auto"):
        want_gpu = torch.cuda.is_available() if gpu is None else gpu
        if want_gpu and not torch.cuda.is_available():
            notes.append((logging.WARNING,
                          f"{name}: gpu requested but CUDA is not available; using CPU"))
        dev = torch.device("cuda" if want_gpu and torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise EncoderError(f"{name}: device {device!r} requested but CUDA is not available")
    if isinstance(dtype, torch.dtype):
        dt = dtype
    elif dtype is None:
        dt = torch.float16 if fp16 else torch.float32
    else:
        try:
            dt = _DTYPES[str(dtype).lower()]
        except KeyError:
            raise EncoderError(
                f"{name}: unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}"
            ) from None
    if dt != torch.float32 and dev.type != "cuda":
        # half precision on CPU is slow and (for fp16) poorly supported: keep fp32
        notes.append((logging.INFO, f"{name}: dtype {dt} ignored on {dev}; using float32"))
        dt = torch.float32
    if quantize not in (None, "", "none", "int8"):
        raise EncoderError(f"{name}: quantize must be 'int8' or None, not {quantize!r}")
    q = "int8" if quantize == "int8" else None
    if q and dev.type != "cpu":
        notes.append((logging.INFO, f"{name}: int8 quantisation is CPU-only; ignored on {dev}"))
        q = None
    return Runtime(dev, dt, q), notes


def effective_runtime(
    name: str,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    quantize: str | None = None,
    gpu: bool | None = None,
    fp16: bool = False,
) -> Runtime:
    """The :class:`Runtime` a model will run with, without side effects (no logging, no
    thread setting): what :meth:`~speechmine.encoders.Encoder.identity` records.

    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``/None (CUDA when available,
    or as stopes' ``gpu`` says). ``dtype``: float32 (default; ``fp16`` makes it float16),
    float16/bfloat16 on CUDA only. ``quantize="int8"``: dynamic int8 ``nn.Linear``, on CPU
    only. Raises :class:`EncoderError` for a request that cannot be met (CUDA absent,
    unknown dtype or quantisation).
    """
    return _decide(name, device, dtype, quantize, gpu, fp16)[0]


def resolve_runtime(
    name: str,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    quantize: str | None = None,
    threads: int | None = None,
    gpu: bool | None = None,
    fp16: bool = False,
) -> Runtime:
    """:func:`effective_runtime`, logging overridden requests, and set torch's CPU
    ``threads`` (a process-wide setting) when given."""
    if threads:
        torch.set_num_threads(int(threads))
    runtime, notes = _decide(name, device, dtype, quantize, gpu, fp16)
    for level, message in notes:
        log.log(level, message)
    return runtime


def build_model(factory: Callable[[], M], state: dict[str, Tensor], rt: Runtime, what: str) -> M:
    """Build ``factory()`` on the meta device, load ``state`` strictly, move to ``rt``.

    Building on ``meta`` then ``assign=True`` avoids a second full copy of the weights.
    """
    with torch.device("meta"):
        model = factory()
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise EncoderError(f"{what}: checkpoint does not match the architecture: {exc}") from exc
    model.eval()
    model.to(device=rt.device, dtype=rt.dtype)
    if rt.quantize == "int8":
        with warnings.catch_warnings():  # torch.ao deprecation notices, once per load
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    return model
