"""LASER sentence encoders in plain PyTorch (no fairseq): ``laser``.

LASER2 (``laser2.pt``: a BiLSTM for the ~100 languages LASER was trained on) and the 147
LASER3 students (``laser3-<language>.v1.pt``: fairseq transformers distilled into LASER2's
space), with LASER's own text preprocessing, from the released files (downloaded into
``$SPEECHMINE_CACHE/laser``) or local paths. stopes' ``LaserSentenceEncoder`` maps here.
Needs ``torch``, ``sentencepiece`` and ``sacremoses`` (``pip install 'speechmine[laser]'``).
See docs/laser.md.
"""

from __future__ import annotations

from ..sonar.checkpoint import CheckpointError, UnsafeCheckpointError
from ..sonar.download import ModelFileError
from .encoder import LaserEncoder
from .langs import LASER3_LANGS, UnknownModelError

__all__ = ["LaserEncoder", "LASER3_LANGS", "CheckpointError", "UnsafeCheckpointError",
           "ModelFileError", "UnknownModelError"]
