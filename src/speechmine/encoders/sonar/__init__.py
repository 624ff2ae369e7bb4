"""SONAR text and speech encoders in plain PyTorch (no fairseq2).

``sonar_text`` (:class:`SonarTextEncoder`) embeds sentences of ~200 languages and
``sonar_speech`` (:class:`SonarSpeechEncoder`) 16 kHz speech of ~37 languages into the same
1024-d space, from the released SONAR checkpoints (fairseq2-native or legacy fairseq layout).
Needs ``torch`` and ``sentencepiece`` (``pip install 'speechmine[sonar]'``). See docs/sonar.md.
"""

from __future__ import annotations

from .checkpoint import UnsafeCheckpointError
from .download import ModelFileError
from .langs import UnknownLanguageError
from .speech_encoder import SegmentRejected, SonarSpeechEncoder
from .text_encoder import SonarTextEncoder

__all__ = [
    "SonarTextEncoder",
    "SonarSpeechEncoder",
    "SegmentRejected",
    "ModelFileError",
    "UnsafeCheckpointError",
    "UnknownLanguageError",
]
