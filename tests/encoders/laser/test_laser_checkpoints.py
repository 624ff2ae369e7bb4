"""Checkpoint loading: only inert metadata unpickled, every tensor used and shaped as the
configuration says, dictionaries read as fairseq reads them; each refusal names the file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from speechmine.encoders import EncoderError, create
from speechmine.encoders.laser import CheckpointError, UnsafeCheckpointError
from speechmine.encoders.laser.checkpoint import load_laser, read_vocab


def _touch(path: str) -> str:
    """Module-level so that a pickle can name it: creates ``path`` when called."""
    Path(path).write_text("pickled code ran")
    return path


class Payload:
    """Unpickling calls :func:`_touch` (a global the safe loader does not allow)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_touch, (self.marker,))


def _load(path: Path) -> dict[str, Any]:
    obj: dict[str, Any] = torch.load(path, weights_only=False)
    return obj


def _save(obj: Any, folder: Path, name: str) -> Path:
    path = folder / name
    torch.save(obj, path)
    return path


# -- safety ----------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["tiny_laser2", "tiny_laser3"])
def test_pickled_code_is_refused_unless_trusted(model: str, laser_dir: Path, tmp_path: Path,
                                                options: Any) -> None:
    marker = tmp_path / "ran"
    obj = _load(laser_dir / f"{model}.pt")
    obj["extra"] = Payload(marker)
    bad = _save(obj, laser_dir, "bad.pt")
    with pytest.raises(UnsafeCheckpointError) as err:
        create("laser", **options(model, encoder_model=str(bad)))
    msg = str(err.value)
    assert str(bad) in msg and "_touch" in msg and "trust_checkpoint" in msg
    assert "\n" not in msg and err.value.__cause__ is None
    assert not marker.exists()
    # a real boolean: the string "false" does not trust it
    with pytest.raises(UnsafeCheckpointError):
        create("laser", **options(model, encoder_model=str(bad), trust_checkpoint="false"))
    with pytest.raises(EncoderError, match="trust_checkpoint"):
        create("laser", **options(model, encoder_model=str(bad), trust_checkpoint="maybe"))
    assert not marker.exists()
    enc = create("laser", **options(model, encoder_model=str(bad), trust_checkpoint="yes"))
    assert marker.exists() and enc.dim == 16  # trusted: it ran, as asked


def test_training_metadata_loads_inert(laser_dir: Path) -> None:
    """The fairseq checkpoint pickles a Namespace, numpy scalars, optimizer history: they
    load (Namespace as itself, numpy as inert records) and nothing else is needed."""
    ckpt = load_laser(laser_dir / "tiny_laser3.pt", laser_dir / "tiny.cvocab")
    assert ckpt.arch == "transformer" and ckpt.prepend_bos
    assert ckpt.config.pooling == "cls" and ckpt.config.final_layer_norm  # type: ignore[union-attr]
    # the decoder, the masked-LM head and fairseq's buffers are not weights of the encoder
    assert not [k for k in ckpt.state if k.startswith(("decoder", "project_vocabulary",
                                                       "lm_head", "version"))]
    assert "<mask>" in ckpt.dictionary  # added as the reference adds it


def test_omegaconf_training_config_is_read(laser_dir: Path, options: Any,
                                           reference: dict[str, Any]) -> None:
    """A checkpoint whose cfg is an omegaconf DictConfig (loaded as inert records) works."""
    omegaconf = pytest.importorskip("omegaconf")
    obj = _load(laser_dir / "tiny_laser3.pt")
    obj["cfg"] = omegaconf.OmegaConf.create({"model": vars(obj["cfg"]["model"]),
                                             "common": {"seed": 1}})
    path = _save(obj, laser_dir, "omega.pt")
    out = create("laser", **options("tiny_laser3", encoder_model=str(path))).encode(
        reference["sentences"][:3])
    assert np.abs(out - reference["arrays"]["tiny_laser3"][:3]).max() <= 1e-5


# -- strictness ------------------------------------------------------------------------------

def _lstm_variant(laser_dir: Path, edit: Any) -> Path:
    obj = _load(laser_dir / "tiny_laser2.pt")
    edit(obj)
    return _save(obj, laser_dir, "variant.pt")


@pytest.mark.parametrize("edit,message", [
    (lambda o: o["model"].pop("lstm.bias_hh_l1_reverse"), r"missing \['lstm.bias_hh_l1_reverse'\]"),
    (lambda o: o["model"].__setitem__("extra.weight", torch.zeros(2)), r"unexpected \['extra"),
    (lambda o: o["model"].__setitem__("embed_tokens.weight", torch.zeros(5, 12)),
     r"embed_tokens.weight \(5, 12\) \(expected \(190, 12\)\)"),
    (lambda o: o["params"].__setitem__("hidden_size", 9), "tensor shapes do not match"),
    (lambda o: o["params"].__setitem__("dropout", 0.1), r"unknown BiLSTM params \['dropout'\]"),
    (lambda o: o["params"].__setitem__("num_layers", "2"), "num_layers='2' is not valid"),
    (lambda o: o["dictionary"].__setitem__("zz", 500), "'zz': 500 is not a token id"),
    (lambda o: o.__setitem__("dictionary", ["a"]), "'dictionary' is a list"),
    (lambda o: o["model"].__setitem__("embed_tokens.weight", torch.zeros(190, 12).long()),
     "not floating point"),
])
def test_mismatched_bilstm_is_refused(laser_dir: Path, options: Any, edit: Any,
                                      message: str) -> None:
    path = _lstm_variant(laser_dir, edit)
    with pytest.raises(CheckpointError, match=message) as err:
        create("laser", **options(encoder_model=str(path)))
    assert str(path) in str(err.value)


def _transformer_variant(laser_dir: Path, edit: Any) -> Path:
    obj = _load(laser_dir / "tiny_laser3.pt")
    edit(obj)
    return _save(obj, laser_dir, "variant.pt")


@pytest.mark.parametrize("edit,message", [
    (lambda o: o["model"].pop("encoder.layers.1.fc2.bias"), r"missing \['layers.1.fc2.bias'\]"),
    (lambda o: o["model"].__setitem__("encoder.layers.0.fc1.weight", torch.zeros(32, 8)),
     r"layers.0.fc1.weight \(32, 8\)"),
    (lambda o: setattr(o["cfg"]["model"], "encoder_layers", 3), "encoder_layers=3"),
    (lambda o: setattr(o["cfg"]["model"], "encoder_attention_heads", 3), "multiple of"),
    (lambda o: setattr(o["cfg"]["model"], "activation_fn", "swish"), "activation_fn 'swish'"),
    (lambda o: setattr(o["cfg"]["model"], "sentemb_criterion", "mean"), "neither cls nor"),
    (lambda o: delattr(o["cfg"]["model"], "prepend_bos"), "lack 'prepend_bos'"),
    (lambda o: setattr(o["cfg"]["model"], "encoder_learned_pos", True),
     r"missing \['embed_positions.weight'\]"),
    (lambda o: o.pop("cfg"), "no model arguments"),
    (lambda o: o.__setitem__("model", {"x": torch.zeros(1)}), "not a LASER checkpoint|no embed"),
])
def test_mismatched_transformer_is_refused(laser_dir: Path, options: Any, edit: Any,
                                           message: str) -> None:
    path = _transformer_variant(laser_dir, edit)
    with pytest.raises(CheckpointError, match=message) as err:
        create("laser", **options("tiny_laser3", encoder_model=str(path)))
    assert str(path) in str(err.value)


def test_not_a_laser_checkpoint(laser_dir: Path, options: Any) -> None:
    path = _save({"state_dict": {"w": torch.zeros(2)}}, laser_dir, "other.pt")
    with pytest.raises(CheckpointError, match="not a LASER checkpoint") as err:
        create("laser", **options(encoder_model=str(path)))
    assert str(path) in str(err.value)
    plain = laser_dir / "plain.pt"
    plain.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=str(plain)):
        create("laser", **options(encoder_model=str(plain)))


# -- dictionaries ----------------------------------------------------------------------------

def test_transformer_needs_its_vocabulary(laser_dir: Path, options: Any) -> None:
    os.remove(laser_dir / "tiny.cvocab")
    with pytest.raises(CheckpointError, match="spm_vocab"):
        create("laser", **{k: v for k, v in options("tiny_laser3").items() if k != "spm_vocab"})
    # a BiLSTM carries its own dictionary: no .cvocab needed
    enc = create("laser", **{k: v for k, v in options().items() if k != "spm_vocab"})
    assert enc.files.vocab is None


def test_wrong_vocabulary_size_names_both_files(laser_dir: Path, options: Any) -> None:
    short = laser_dir / "short.cvocab"
    short.write_text("".join((laser_dir / "tiny.cvocab").read_text("utf-8").splitlines(True)[:-3]),
                     encoding="utf-8")
    with pytest.raises(CheckpointError) as err:
        create("laser", **options("tiny_laser3", spm_vocab=str(short)))
    msg = str(err.value)
    assert str(short) in msg and "tiny_laser3.pt" in msg and "wrong vocabulary" in msg


def test_vocab_file_is_read_as_fairseq_reads_it(tmp_path: Path) -> None:
    vocab = tmp_path / "v.cvocab"
    vocab.write_text("▁a 100\nb c 7\nd 3\nd 1 #fairseq:overwrite\n", encoding="utf-8")
    indices, size = read_vocab(vocab)
    assert indices == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "▁a": 4, "b c": 5, "d": 7}
    assert size == 8  # the overwritten row stays
    vocab.write_text("a 1\na 2\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"v.cvocab:2: duplicate token 'a'"):
        read_vocab(vocab)
    vocab.write_text("a 1\nnocount\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"v.cvocab:2: expected '<token> <count>"):
        read_vocab(vocab)
    vocab.write_text("<s> 1\n", encoding="utf-8")  # fairseq's own specials
    with pytest.raises(CheckpointError, match="duplicate"):
        read_vocab(vocab)


def test_namespace_arguments_keep_fairseq_truthiness(laser_dir: Path) -> None:
    """LASER3's model arguments keep ``left_pad_source`` as typed ("False"): the reference
    reads its truth value (left padding), which changes nothing in the result."""
    ckpt = load_laser(laser_dir / "tiny_laser3.pt", laser_dir / "tiny.cvocab")
    args = _load(laser_dir / "tiny_laser3.pt")["cfg"]["model"]
    assert isinstance(args, argparse.Namespace) and args.left_pad_source == "False"
    assert ckpt.config.left_pad is True  # type: ignore[union-attr]
