"""Where speechmine keeps files of its own: ``$SPEECHMINE_CACHE``, else
``$XDG_CACHE_HOME/speechmine``, else ``~/.cache/speechmine``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """The root of speechmine's cache (model files, demo outputs)."""
    root = os.environ.get("SPEECHMINE_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "speechmine"
