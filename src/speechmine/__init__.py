"""speechmine: global margin mining of translations and transcriptions, text and speech."""

from __future__ import annotations

__version__ = "0.1.0"

from .api import mine

__all__ = ["mine", "__version__"]
