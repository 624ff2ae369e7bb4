"""identity() and dim_of() without loading the model: files by content, what changes the
vectors changes the identity, what only changes speed does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from speechmine.encoders import resolve
from speechmine.encoders.laser import encoder as laser_encoder
from speechmine.encoders.laser import options as laser_options_module


def ident(options: dict[str, Any], lang: str | None = None, verify: str = "content") -> Any:
    return resolve("laser").identity(options, lang, verify)


class Loaded(Exception):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise Loaded("a model was loaded")


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(laser_encoder, "load_laser", _refuse)
    monkeypatch.setattr(laser_encoder, "build_model", _refuse)


def test_identity_and_dim_of_load_nothing(no_loading: None, options: Any) -> None:
    for model in ("tiny_laser2", "tiny_laser3"):
        got = ident(options(model))
        assert got["encoder"] == "laser" and got["lang"] is None
        assert json.loads(json.dumps(got)) == got
        assert resolve("laser").dim_of(options(model), None) == 16
    from speechmine.encoders import create

    with pytest.raises(Loaded):  # the patch is live
        create("laser", **options())


def test_identity_records_files_packages_and_runtime(options: Any) -> None:
    got = ident(options())
    opts = got["options"]
    assert set(opts["model"]["file"]) == {"sha256", "size"}
    assert opts["spm_model"]["file"]["sha256"] and opts["spm_vocab"]["file"]["sha256"]
    assert opts["runtime"] == {"device": "cpu", "dtype": "float32", "quantize": None}
    assert opts["preprocess"]["punct_lang"] == "en"
    assert set(got["packages"]) == {"torch", "sentencepiece", "sacremoses", "numpy"}
    assert got["code"]["class"].endswith("LaserEncoder")


@pytest.mark.parametrize("name", ["tiny_laser2.pt", "tiny.spm", "tiny.cvocab"])
def test_new_bytes_change_the_identity(name: str, laser_dir: Path, options: Any) -> None:
    before = ident(options("tiny_laser3"))
    path = laser_dir / name
    data = bytearray(path.read_bytes())
    if name.endswith(".pt"):
        path = laser_dir / "tiny_laser3.pt"
        obj = torch.load(path, weights_only=False)
        obj["model"]["encoder.layers.0.fc1.bias"] += 1
        torch.save(obj, path)
    else:
        data[-2:-1] = b"7" if data[-2:-1] != b"7" else b"8"
        path.write_bytes(bytes(data))
    assert ident(options("tiny_laser3")) != before


def test_a_moved_file_keeps_its_identity(laser_dir: Path, tmp_path: Path, options: Any) -> None:
    before = ident(options("tiny_laser3"))
    # stat mode: the path is part of the identity
    assert ident(options("tiny_laser3"), verify="stat") != before
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("tiny_laser3.pt", "tiny.spm", "tiny.cvocab"):
        shutil.move(laser_dir / name, moved / name)
    after = ident({"encoder_model": str(moved / "tiny_laser3.pt"),
                   "spm_model": str(moved / "tiny.spm"), "spm_vocab": str(moved / "tiny.cvocab"),
                   "device": "cpu"})
    assert after == before


def test_speed_options_leave_the_identity(options: Any) -> None:
    base = ident(options())
    for extra in ({"batch_size": 3}, {"mini_batch_size": 9}, {"max_tokens": 50},
                  {"max_sentences": 2}, {"stable_sort": True}, {"threads": 1},
                  {"trust_checkpoint": True}, {"_name": "laser3_encoder"},
                  {"fp16": True}):  # fp16: float32 on CPU anyway
        assert ident(options(**extra)) == base, extra
    for extra in ({"normalize": True}, {"max_seq_len": 10}):
        assert ident(options(**extra)) != base, extra
    # "auto" on a machine without CUDA is the CPU runtime
    if not torch.cuda.is_available():
        assert ident({**options(), "device": None}) == base
        assert ident({**options(), "device": None, "cpu": True}) == base


def test_released_names_fetch_to_identify_and_dim_of_reads_nothing(
        monkeypatch: pytest.MonkeyPatch, laser_dir: Path) -> None:
    """A released model name: dim_of is 1024 before anything is fetched; identity fetches
    (here: finds in the cache) the files and names the model and its LASER3 language."""
    from speechmine.encoders.laser.download import cache_dir

    cls = resolve("laser")
    assert cls.dim_of({"model": "laser3-wol_Latn"}, None) == 1024
    assert cls.dim_of({"_name": "laser3_encoder"}, "amh") == 1024
    assert cls.dim_of({}, "en") == 1024
    cache = cache_dir()
    cache.mkdir(parents=True)
    shutil.copy(laser_dir / "tiny_laser3.pt", cache / "laser3-wol_Latn.v1.pt")
    shutil.copy(laser_dir / "tiny.spm", cache / "laser2.spm")
    shutil.copy(laser_dir / "tiny.cvocab", cache / "laser2.cvocab")
    got = cls.identity({"model": "laser3", "device": "cpu"}, "wol")
    assert got["options"]["model"]["card"] == "laser3-wol_Latn"
    assert got["options"]["laser3_lang"] == "wol_Latn"
    assert got["options"]["spm_model"]["card"] == "laser2.spm"
    # the same model named another way is the same identity
    assert cls.identity({"encoder_model": "laser3-wol.v1.pt", "device": "cpu"}, None) == got
    assert cls.dim_of({"model": "laser3-wol_Latn"}, None) == 16  # now read off the file


def test_dim_of_a_legacy_file_is_unknown(laser_dir: Path, options: Any) -> None:
    obj = torch.load(laser_dir / "tiny_laser2.pt", weights_only=False)
    legacy = laser_dir / "legacy.pt"
    torch.save(obj, legacy, _use_new_zipfile_serialization=False)
    assert resolve("laser").dim_of(options(encoder_model=str(legacy)), None) is None


def test_fingerprint_after_loading(options: Any) -> None:
    from speechmine.encoders import create

    enc = create("laser", **options("tiny_laser3"))
    fp = enc.fingerprint()
    assert fp["arch"] == "transformer" and fp["dim"] == 16 and fp["max_tokens"] == 40
    assert set(fp["sha256"]) == {"checkpoint", "spm_model", "spm_vocab"}
    assert laser_options_module.DEFAULT_MAX_TOKENS == enc.opts.max_tokens
