"""Small value types shared by the stages.

Speech time lives in one place: stopes manifests count samples at 16 kHz (end exclusive);
:data:`SAMPLE_RATE` and the helpers here are the only conversion between samples and seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Sample rate of stopes manifests and of every speech encoder input (Hz).
SAMPLE_RATE = 16_000


def samples_to_seconds(n: int) -> float:
    """Samples at 16 kHz → seconds."""
    return n / SAMPLE_RATE


def seconds_to_samples(s: float) -> int:
    """Seconds → samples at 16 kHz (rounded to the nearest sample)."""
    return int(round(s * SAMPLE_RATE))


@dataclass(frozen=True)
class AudioSegment:
    """One speech segment of a manifest: ``audio[start:end]`` in 16 kHz samples.

    ``line`` is the raw manifest line (what the bitext column shows for speech sides),
    ``source``/``lineno`` point back to the manifest for error messages and rejects.
    """

    path: str
    start: int
    end: int
    line: str = ""
    source: str = ""
    lineno: int = 0

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return samples_to_seconds(self.end - self.start)
