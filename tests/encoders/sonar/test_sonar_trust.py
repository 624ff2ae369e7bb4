"""trust_checkpoint is a real boolean, and a refused checkpoint is a one-line EncoderError.

The checkpoints here are crafted so that unpickling them *creates a file* (a payload that
runs on load): the marker file shows whether any pickled code ran.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import sonar_options

from speechmine.encoders import EncoderError, create, resolve
from speechmine.encoders.sonar import UnsafeCheckpointError
from speechmine.encoders.sonar.checkpoint import CheckpointError, load_checkpoint


def _touch(path: str) -> str:
    """Module-level, so that a pickle can name it: creates ``path`` when called."""
    Path(path).write_text("pickled code ran")
    return path


class TouchPayload:
    """Unpickling calls :func:`_touch` (a global the safe loader does not allow)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_touch, (self.marker,))


class MkdirPayload:
    """Unpickling calls ``os.mkdir`` (pickled as ``posix.mkdir``: a module torch blocks)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.marker,))


def _craft(folder: Path, kind: str) -> tuple[Path, Path]:
    """A checkpoint whose unpickling creates ``marker``; no tensors, so even a trusted load
    then fails the state-dict check (a harmless end)."""
    marker = folder / f"{kind}.ran"
    path = folder / f"{kind}.pt"
    payload: Any = MkdirPayload(marker) if kind.startswith("mkdir") else TouchPayload(marker)
    obj = {"model": {"note": "no tensors"}, "extra": payload}
    if kind.endswith("zip"):
        torch.save(obj, path)
    elif kind.endswith("legacy"):
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:  # a plain pickle (not torch.save output), protocol 4 or 2
        with path.open("wb") as f:
            pickle.dump(obj, f, protocol=4 if kind.endswith("p4") else 2)
    return path, marker


KINDS = ["touch_zip", "touch_legacy", "mkdir_zip", "mkdir_legacy", "touch_plain_p4",
         "touch_plain_p2", "mkdir_plain_p4"]


def _one_line_without_traceback(err: BaseException, path: Path) -> None:
    msg = str(err)
    assert "\n" not in msg and str(path) in msg
    assert "weights_only" not in msg
    # nothing chained for the CLI to print as a traceback
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("trust", ["unset", False, "false", "False", "n", "0", "off", "no"])
def test_untrusted_crafted_checkpoint_is_refused(data: Path, tmp_path: Path, kind: str,
                                                 trust: Any) -> None:
    path, marker = _craft(tmp_path, kind)
    extra = {} if trust == "unset" else {"trust_checkpoint": trust}
    with pytest.raises(UnsafeCheckpointError) as err:
        create("sonar_text", lang="fr", **sonar_options(data, model=str(path), **extra))
    assert not marker.exists()
    assert isinstance(err.value, EncoderError)
    assert "trust_checkpoint: true only for a file you trust" in str(err.value)
    _one_line_without_traceback(err.value, path)


@pytest.mark.parametrize("kind", ["touch_zip", "mkdir_legacy", "touch_plain_p4"])
def test_a_value_that_is_not_a_boolean_is_an_option_error(data: Path, tmp_path: Path,
                                                          kind: str) -> None:
    path, marker = _craft(tmp_path, kind)
    for bad in ("maybe", "", 2, None):
        with pytest.raises(EncoderError, match="'trust_checkpoint': expected a boolean") as err:
            create("sonar_text", lang="fr",
                   **sonar_options(data, model=str(path), trust_checkpoint=bad))
        assert not isinstance(err.value, CheckpointError)
        assert not marker.exists()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("trust", [True, "true", "yes"])
def test_only_real_trust_runs_the_pickle(data: Path, tmp_path: Path, kind: str,
                                         trust: Any) -> None:
    path, marker = _craft(tmp_path, kind)
    with pytest.raises(CheckpointError) as err:  # no tensors in it (or not torch.save output)
        create("sonar_text", lang="fr",
               **sonar_options(data, model=str(path), trust_checkpoint=trust))
    assert marker.exists()  # the payload ran: trusted means fully unpickled
    assert not isinstance(err.value, UnsafeCheckpointError)
    _one_line_without_traceback(err.value, path)


def test_width_lookup_refuses_too(data: Path, tmp_path: Path) -> None:
    """dim_of reads a zip checkpoint's shapes through the same loader and the same parsing."""
    path, marker = _craft(tmp_path, "touch_zip")
    text = resolve("sonar_text")
    for trust in ("false", "n", False):
        with pytest.raises(UnsafeCheckpointError):
            text.dim_of(sonar_options(data, model=str(path), trust_checkpoint=trust), "fr")
    assert not marker.exists()


def test_load_checkpoint_itself_never_reads_trust_by_truthiness(tmp_path: Path) -> None:
    path, marker = _craft(tmp_path, "touch_legacy")
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(path, trust="false")  # type: ignore[arg-type]
    with pytest.raises(EncoderError, match="expected a boolean"):
        load_checkpoint(path, trust="maybe")  # type: ignore[arg-type]
    assert not marker.exists()


def test_damaged_checkpoint_is_a_one_line_error(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.pt"
    path.write_bytes((data / "tiny_text_encoder.pt").read_bytes()[:5000])  # a cut download
    with pytest.raises(CheckpointError) as err:
        create("sonar_text", lang="fr", **sonar_options(data, model=str(path)))
    _one_line_without_traceback(err.value, path)
