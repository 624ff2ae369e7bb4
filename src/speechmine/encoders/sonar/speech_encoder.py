"""``sonar_speech``: SONAR speech encoders (37 languages, same 1024-d space as the text side)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import register
from ..base import Encoder, EncoderError
from ._cards import SPEECH_MODELS
from .checkpoint import checkpoint_state, to_fairseq2_speech
from .download import model_file_identity
from .fbank import SAMPLE_RATE, kaldi_fbank, min_samples
from .langs import UnknownLanguageError, speech_lang, speech_model_for
from .options import (
    SONAR_OPTION_MIN,
    SPEECH_SPEC,
    find_model_file,
    model_width,
    option_types,
    parse_options,
    resolve_model_file,
)
from .runtime import build_model
from .speech_model import FBANK_STRIDE, SonarSpeechModel, SpeechConfig, infer_speech_config
from .text_encoder import sonar_weights_fingerprint

log = logging.getLogger(__name__)

__all__ = ["SonarSpeechEncoder", "SegmentRejected", "MIN_SAMPLES"]

#: Shortest waveform giving one encoder step (two 25 ms frames 10 ms apart): 35 ms.
MIN_SAMPLES = min_samples(FBANK_STRIDE)
#: Floor on the per-bin std: a bin that never changes standardises to 0 instead of NaN.
STD_FLOOR = 1e-6
#: card name → checkpoint file name
_CARDS = {name: card["file"] for name, card in SPEECH_MODELS.items()}


def _choose_model(model: str | None, lang: str | None) -> tuple[str, str | None]:
    """The model to load (the card for ``lang`` when ``model`` is None, English without a
    ``lang``) and a warning when a card's language contradicts ``lang``.

    Raises :class:`EncoderError` for a language no released speech encoder serves.
    """
    try:
        if model is None:
            return (speech_model_for(lang) if lang else "sonar_speech_encoder_eng"), None
        if lang and model in SPEECH_MODELS:
            card_lang = SPEECH_MODELS[model]["lang"]
            if card_lang != speech_lang(lang):
                return model, f"sonar_speech: model {model} is for {card_lang}, but lang={lang}"
        return model, None
    except UnknownLanguageError as exc:
        raise EncoderError(str(exc)) from None


class SegmentRejected(EncoderError):
    """A speech segment the encoder cannot embed; ``reason`` is a short machine-usable text."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        where = f"segment {index}: " if index is not None else ""
        super().__init__(f"{where}{reason}")
        self.reason = reason
        self.index = index


@register
class SonarSpeechEncoder(Encoder):
    """SONAR speech encoder (w2v-BERT conformer + attention pooler), plain PyTorch.

    Items are 1-D float32 numpy waveforms at 16 kHz in [-1, 1].

    Options (besides ``lang`` and ``batch_size``):
        model / encoder_model: card name (``sonar_speech_encoder_eng``) or a checkpoint path;
            default: the card for ``lang`` (English when ``lang`` is None).
        max_seq_len: encoder steps (20 ms each) the relative positions allow (default 4096).
        max_batch_seconds: padded audio per batch (longest item × count, default 160 s).
        pooler_heads: attention heads of the pooler when they differ from the encoder's.
        device, dtype, threads, quantize, trust_checkpoint, cache_dir, sha256: as ``sonar_text``.
        stopes options: mini_batch_size, gpu, fp16, num_processes.

    Input bound: ``max_seconds`` = what ``max_seq_len`` encoder steps cover (81.9 s by
    default); :meth:`check` rejects longer waveforms (and shorter than 35 ms), and
    :meth:`encode_batch` raises :class:`SegmentRejected` for them. Nothing is truncated.
    """

    name = "sonar_speech"
    modality = "speech"
    normalized = False
    # stopes' `_name: sonar2_speech_encoder` names its module, not a model: not listed, so the
    # config reports it as ignored
    OPTIONS = frozenset({"model", "encoder_model", "max_seq_len", "pooler_heads",
                         "trust_checkpoint", "cache_dir", "sha256", "device", "dtype",
                         "quantize", "threads", "gpu", "fp16", "max_batch_seconds"})
    #: speed, safety and bookkeeping only; batching matters under int8 (identity())
    TRANSIENT_OPTIONS = Encoder.TRANSIENT_OPTIONS | {
        "mini_batch_size", "trust_checkpoint", "cache_dir", "sha256", "max_batch_seconds",
        "spm_vocab", "num_processes", "_name"}
    PACKAGES = ("torch", "numpy")
    OPTION_TYPES = option_types(SPEECH_SPEC)
    OPTION_MIN = SONAR_OPTION_MIN

    def __init__(self, lang: str | None = None, batch_size: int = SPEECH_SPEC.batch_size,
                 **options: Any) -> None:
        opts, rest = parse_options(SPEECH_SPEC, {"batch_size": batch_size, **options},
                                   strict=False)
        super().__init__(lang=lang, batch_size=opts.batch_size, **rest)
        opts.log_unused()

        self.runtime = opts.resolve_runtime()
        # padded audio per batch: attention memory grows with length², so long segments
        # go in smaller batches (batch_size still caps the count)
        self.max_batch_cost = int(opts.max_batch_seconds * SAMPLE_RATE)
        model, mismatch = _choose_model(opts.model, lang)
        if mismatch:
            log.warning("%s", mismatch)
        self.model_path, self.model_label = resolve_model_file(
            model, _CARDS, "SONAR speech encoder", opts.cache_dir, opts.sha256
        )
        state, _ = checkpoint_state(self.model_path, trust=opts.trust_checkpoint)
        try:
            state = to_fairseq2_speech(state)
            cfg = infer_speech_config(state, max_seq_len=opts.max_seq_len,
                                      pooler_heads=opts.pooler_heads)
        except ValueError as exc:
            raise EncoderError(f"{self.model_path}: {exc}") from None
        self.config = cfg
        self.model = build_model(
            lambda: SonarSpeechModel(cfg), state, self.runtime, str(self.model_path)
        )
        self.dim = cfg.model_dim
        self.max_seconds = self.max_samples / SAMPLE_RATE
        self._sha: str | None = None
        log.info("sonar_speech: %s (%d conformer layers, %d pooler layers) on %s", self.model_label,
                 cfg.num_layers, cfg.pooler_layers, self.runtime.describe())

    # -- identity (without loading the model) ------------------------------------------
    @classmethod
    def identity(cls, options: Mapping[str, Any], lang: str | None,
                 verify: str = "content") -> dict[str, Any]:
        """Code, package versions and ``options``: the checkpoint ``lang`` or ``model`` resolves
        to (file identity and card name; a card's file is fetched when absent, not loaded),
        ``max_seq_len`` (default filled in), ``pooler_heads`` (None: derived from the weights),
        the effective runtime and, under int8, the batching (``batch_size`` and
        ``max_batch_seconds``). ``lang`` itself only acts through the checkpoint it picks."""
        opts, _ = parse_options(SPEECH_SPEC, options)
        model, _ = _choose_model(opts.model, lang)
        path, card = find_model_file(model, _CARDS, "SONAR speech encoder", opts.cache_dir,
                                     opts.sha256)
        assert path is not None  # fetched (or find_model_file raised)
        return {
            **super().identity({}, lang, verify),
            "options": {
                "model": model_file_identity(path, card, verify),
                "max_seq_len": opts.max_seq_len or SpeechConfig.max_seq_len,
                "pooler_heads": opts.pooler_heads,
                **opts.runtime_identity(),
            },
        }

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        """Width read off the checkpoint's tensor shapes (1024 for a card not fetched yet)."""
        opts, _ = parse_options(SPEECH_SPEC, options, strict=False)
        model, _ = _choose_model(opts.model, lang)
        return model_width(model, _CARDS, "SONAR speech encoder", opts, "speech")

    # -- limits ------------------------------------------------------------------------
    @property
    def max_samples(self) -> int:
        """Longest waveform (samples) whose encoder steps fit the position limit."""
        return min_samples(FBANK_STRIDE * self.config.max_seq_len + 2) - 1

    def check(self, waveform: Any) -> str | None:
        """Why ``waveform`` cannot be embedded, or None when it can (cheap: no fbank)."""
        x = np.asarray(waveform)
        if x.ndim != 1:
            return f"expected a 1-D mono waveform, got shape {x.shape}"
        if not np.issubdtype(x.dtype, np.floating):
            return f"expected float samples in [-1, 1], got dtype {x.dtype}"
        n = x.shape[0]
        if n < MIN_SAMPLES:
            return (f"too short: {n} samples ({1000 * n / SAMPLE_RATE:.1f} ms); one encoder frame "
                    f"needs {MIN_SAMPLES} samples ({1000 * MIN_SAMPLES / SAMPLE_RATE:.0f} ms)")
        if n > self.max_samples:
            return (f"too long: {n / SAMPLE_RATE:.2f} s exceeds the encoder's position limit of "
                    f"{self.config.max_seq_len} steps ({self.max_samples / SAMPLE_RATE:.2f} s)")
        if not np.isfinite(x).all():
            return "waveform contains NaN or infinite samples"
        if x.max() == x.min():
            return "constant signal (digital silence): its fbank has no variance to standardise"
        return None

    def _features(self, waveform: np.ndarray) -> torch.Tensor:
        """Stacked standardised fbank ``(T // 2, 160)`` of one waveform."""
        # a copy: decoded audio arrays are read-only views of a shared cache
        fb = kaldi_fbank(torch.from_numpy(np.array(waveform, dtype=np.float32)))
        std, mean = torch.std_mean(fb, dim=0)  # unbiased std, as SONAR
        fb = (fb - mean) / std.clamp_min(STD_FLOOR)
        steps = fb.shape[0] // FBANK_STRIDE  # an odd last frame is dropped, as fairseq2 does
        return fb[: steps * FBANK_STRIDE].reshape(steps, FBANK_STRIDE * fb.shape[1])

    def encode_batch(self, items: Sequence[np.ndarray]) -> np.ndarray:
        """Embed waveforms → ``(len(items), dim)`` float32; raises :class:`SegmentRejected`."""
        for i, x in enumerate(items):
            reason = self.check(x)
            if reason is not None:
                raise SegmentRejected(reason, index=i)
        feats = [self._features(x) for x in items]
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
        batch = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
        for i, f in enumerate(feats):
            batch[i, : f.shape[0]] = f
        dev = self.runtime.device
        with torch.inference_mode():
            out = self.model(batch.to(dev, self.runtime.dtype), lengths.to(dev))
        return out.float().cpu().numpy()

    def weights_fingerprint(self) -> dict[str, Any]:
        """Model name, checkpoint sha256 (hashed once) and precision, as ``sonar_text``'s."""
        return sonar_weights_fingerprint(self)

    def fingerprint(self) -> dict[str, Any]:
        """Base fingerprint + checkpoint sha256, model name, precision."""
        return {**super().fingerprint(), **self.weights_fingerprint()}
