"""Read LASER checkpoints safely and strictly; read fairseq ``.cvocab`` dictionaries.

Two formats, told apart as the reference (``laser_encoders.models.SentenceEncoder``) does:

* ``{"params", "model", "dictionary"}`` (``laser2.pt``, LASER1's ``bilstm.93langs``): the
  BiLSTM's keyword arguments, its state dict, and the token → id dictionary (whose four
  specials the reference forces to ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3);
* a fairseq checkpoint (``laser3-*.v1.pt``): ``cfg["model"]`` (the training arguments, an
  ``argparse.Namespace``) and ``model``, a transformer student's tensors, either the whole
  ``laser_transformer`` model (``encoder.*`` and ``decoder.*``: only ``encoder.layer_norm``,
  ``encoder.layers``, ``encoder.embed*`` and ``encoder.version`` are kept, ``encoder.``
  dropped, as the reference does) or the encoder alone. Its dictionary is the ``.cvocab``
  file (``spm_vocab``), plus ``<mask>`` when the checkpoint has a final ``layer_norm`` (the
  students trained with a masked-LM task).

Files load through :func:`speechmine.encoders.sonar.checkpoint.load_checkpoint`
(``torch.load(weights_only=True)``; only tensors, builtin containers, ``argparse.Namespace``
and inert stand-ins for training metadata; anything else is refused unless
``trust_checkpoint``). Every tensor must be one the model uses (or one the reference drops),
with the shape the configuration gives; anything else is a :class:`CheckpointError` naming
the file.
"""

from __future__ import annotations

import argparse
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from torch import Tensor

from ..sonar.checkpoint import CheckpointError, InertRecord, UnsafeCheckpointError, load_checkpoint
from .model import ACTIVATIONS, BOS, EOS, PAD, UNK, LstmConfig, TransformerConfig

log = logging.getLogger(__name__)

__all__ = ["CheckpointError", "UnsafeCheckpointError", "LaserCheckpoint", "load_laser",
           "read_vocab", "checkpoint_width", "checkpoint_arch"]

_SPECIALS = {"<s>": BOS, "<pad>": PAD, "</s>": EOS, "<unk>": UNK}


@dataclass
class LaserCheckpoint:
    """A LASER checkpoint ready for :mod:`.model`."""

    path: Path
    #: ``lstm`` or ``transformer``
    arch: str
    config: LstmConfig | TransformerConfig
    #: tensors under the model's parameter names
    state: dict[str, Tensor]
    #: token → id, the four specials forced as the reference does
    dictionary: dict[str, int]
    prepend_bos: bool

    @property
    def dim(self) -> int:
        return self.config.dim


# -- the whole file --------------------------------------------------------------------------

def checkpoint_arch(obj: Any, path: Path) -> str:
    """``lstm`` or ``transformer`` for an unpickled checkpoint (the reference's test:
    ``"params" in state_dict``), or a :class:`CheckpointError`."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: not a LASER checkpoint (it holds a "
                              f"{type(obj).__name__}, not a dict)")
    if "params" in obj:
        return "lstm"
    if "model" in obj and ("cfg" in obj or "args" in obj):
        return "transformer"
    raise CheckpointError(
        f"{path}: not a LASER checkpoint: expected params/model/dictionary (LASER2 BiLSTM) "
        f"or a fairseq cfg/model (LASER3 transformer); top-level keys: {sorted(obj)[:10]}")


def load_laser(path: str | Path, vocab: str | Path | None = None,
               trust: bool = False) -> LaserCheckpoint:
    """Load and check the checkpoint at ``path``; ``vocab``: the ``.cvocab`` file, needed by a
    transformer checkpoint (a BiLSTM carries its own dictionary and ignores it, as the
    reference does)."""
    path = Path(path)
    obj = load_checkpoint(path, trust=trust)
    arch = checkpoint_arch(obj, path)
    if arch == "lstm":
        return _lstm(obj, path)
    if vocab is None:
        raise CheckpointError(f"{path} is a LASER3 transformer checkpoint: its dictionary is "
                              "the .cvocab file; give it as spm_vocab")
    return _transformer(obj, path, Path(vocab))


def checkpoint_width(path: str | Path, trust: bool = False) -> int | None:
    """The embedding width of the checkpoint at ``path`` without reading its weights.

    A zip-format file (what ``torch.save`` writes since torch 1.6) is memory-mapped by the
    safe loader: its tensors are not read until touched, and the width comes from the
    BiLSTM's ``params`` or the token embedding's shape. A legacy (non-zip) pickle cannot be
    mapped, so reading it would read the weights: None then (only the model knows).
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return None
    obj = load_checkpoint(path, trust=trust)
    if checkpoint_arch(obj, path) == "lstm":
        return _lstm_config(obj, path).dim
    model = obj.get("model")
    if not isinstance(model, Mapping):
        return None
    for key in ("encoder.embed_tokens.weight", "embed_tokens.weight"):
        t = model.get(key)
        if isinstance(t, Tensor) and t.dim() == 2:
            return int(t.shape[1])
    return None


# -- BiLSTM ----------------------------------------------------------------------------------

def _lstm_config(obj: Mapping[str, Any], path: Path) -> LstmConfig:
    params = obj.get("params")
    if not isinstance(params, Mapping):
        raise CheckpointError(f"{path}: 'params' is a {type(params).__name__}, not a mapping")
    known = {f.name: f for f in fields(LstmConfig)}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise CheckpointError(f"{path}: unknown BiLSTM params {unknown} "
                              f"(LASER's encoder takes {sorted(known)})")
    missing = [k for k in ("num_embeddings", "padding_idx") if k not in params]
    if missing:
        raise CheckpointError(f"{path}: BiLSTM params lack {missing}")
    values: dict[str, Any] = {}
    for key, value in params.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key in ("bidirectional", "left_pad"):
            ok = isinstance(value, bool) or value in (0, 1) and number
            value = bool(value)
        elif key == "padding_value":
            ok = number
            value = float(value) if number else value
        else:  # counts and sizes; padding_idx may be 0
            ok = isinstance(value, int) and not isinstance(value, bool) \
                and value >= (0 if key == "padding_idx" else 1)
        if not ok:
            raise CheckpointError(f"{path}: BiLSTM param {key}={params[key]!r} is not valid")
        values[key] = value
    return LstmConfig(**values)


def _lstm(obj: Mapping[str, Any], path: Path) -> LaserCheckpoint:
    cfg = _lstm_config(obj, path)
    model = obj.get("model")
    if not isinstance(model, Mapping):
        raise CheckpointError(f"{path}: 'model' is a {type(model).__name__}, not a state dict")
    state = _tensors(model, path)
    h, dirs = cfg.hidden_size, 2 if cfg.bidirectional else 1
    shapes: dict[str, tuple[int, ...]] = {
        "embed_tokens.weight": (cfg.num_embeddings, cfg.embed_dim)}
    for layer in range(cfg.num_layers):
        width = cfg.embed_dim if layer == 0 else h * dirs
        for suffix in ("", "_reverse")[:dirs]:
            shapes[f"lstm.weight_ih_l{layer}{suffix}"] = (4 * h, width)
            shapes[f"lstm.weight_hh_l{layer}{suffix}"] = (4 * h, h)
            shapes[f"lstm.bias_ih_l{layer}{suffix}"] = (4 * h,)
            shapes[f"lstm.bias_hh_l{layer}{suffix}"] = (4 * h,)
    _check_shapes(state, shapes, path, "BiLSTM")
    raw = obj.get("dictionary")
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path}: 'dictionary' is a {type(raw).__name__}, not a mapping "
                              "of tokens to ids")
    dictionary: dict[str, int] = {}
    for token, idx in raw.items():
        if not isinstance(token, str) or not isinstance(idx, int) or isinstance(idx, bool) \
                or not 0 <= idx < cfg.num_embeddings:
            raise CheckpointError(f"{path}: dictionary entry {token!r}: {idx!r} is not a token "
                                  f"id below num_embeddings={cfg.num_embeddings}")
        dictionary[token] = idx
    dictionary.update(_SPECIALS)
    return LaserCheckpoint(path, "lstm", cfg, state, dictionary, prepend_bos=False)


# -- transformer -----------------------------------------------------------------------------

#: what the reference keeps of a whole ``laser_transformer`` model (then drops ``encoder.``)
_KEEP = ("encoder.layer_norm", "encoder.layers", "encoder.embed", "encoder.version")
#: fused copies of q/k/v, out_proj, fc1, fc2 that fairseq >= 0.12.2 adds for its
#: "BetterTransformer" path; the reference rebuilds them from the real ones on load
_FUSED = re.compile(r"^layers\.\d+\.(in_proj|out_proj|fc1|fc2)_(weight|bias)$")
#: buffers of fairseq's encoder that are not weights
_BUFFERS = ("version", "embed_positions._float_tensor")
#: fairseq's TransformerConfig defaults for what a checkpoint's arguments may leave out
_DEFAULTS: dict[str, Any] = {
    "encoder_attention_heads": 8, "encoder_normalize_before": False,
    "encoder_learned_pos": False, "no_scale_embedding": False, "layernorm_embedding": False,
    "no_token_positional_embeddings": False, "max_source_positions": 1024,
    "activation_fn": "relu", "adaptive_input": False, "quant_noise_pq": 0,
}


def _plain(obj: Any) -> Any:
    """Training arguments as plain data: a Namespace's attributes, a mapping, or the inert
    record of an omegaconf ``DictConfig`` / value node (their ``_content`` / ``_val``)."""
    if isinstance(obj, argparse.Namespace):
        return dict(vars(obj))
    if isinstance(obj, InertRecord):
        state = obj.state if isinstance(obj.state, Mapping) else {}
        if "_content" in state:
            content = state["_content"]
            if isinstance(content, Mapping):
                return {k: _plain(v) for k, v in content.items()}
            if isinstance(content, (list, tuple)):
                return [_plain(v) for v in content]
            return content
        if "_val" in state:
            return _plain(state["_val"])
        return obj
    if isinstance(obj, Mapping):
        return dict(obj)
    return obj


def _model_args(obj: Mapping[str, Any], path: Path) -> dict[str, Any]:
    cfg = _plain(obj.get("cfg"))
    args = cfg.get("model") if isinstance(cfg, dict) else None
    if args is None:  # an older fairseq checkpoint keeps the arguments in "args"
        args = obj.get("args")
    args = _plain(args)
    if not isinstance(args, dict):
        raise CheckpointError(f"{path}: no model arguments (cfg['model'] or args) in this "
                              "fairseq checkpoint")
    # a structured (dataclass) config nests encoder.embed_dim …: flatten it as fairseq's
    # TransformerConfig does for a namespace
    for group in ("encoder", "quant_noise"):
        nested = _plain(args.get(group))
        if isinstance(nested, dict):
            for key, value in nested.items():
                args.setdefault(f"{group}_{key}", value)
    return args


def _transformer_state(model: Mapping[str, Any], path: Path) -> dict[str, Tensor]:
    sd = _tensors(model, path)
    if "decoder.version" in sd:  # a whole laser_transformer model: the reference's renaming
        sd = {k.replace("encoder.", ""): v for k, v in sd.items() if k.startswith(_KEEP)}
    dropped = [k for k in sd if _FUSED.match(k)]
    for key in dropped + [b for b in _BUFFERS if b in sd]:
        del sd[key]
    if dropped:
        log.debug("%s: ignored %d fused BetterTransformer copies", path, len(dropped))
    return sd


def _transformer(obj: Mapping[str, Any], path: Path, vocab: Path) -> LaserCheckpoint:
    model = obj.get("model")
    if not isinstance(model, Mapping):
        raise CheckpointError(f"{path}: 'model' is a {type(model).__name__}, not a state dict")
    args = {**_DEFAULTS, **_model_args(obj, path)}
    with_mask = "encoder.layer_norm.weight" in model or "layer_norm.weight" in model
    sd = _transformer_state(model, path)
    emb = sd.get("embed_tokens.weight")
    if emb is None or emb.dim() != 2:
        raise CheckpointError(f"{path}: no embed_tokens.weight (V x D) among the encoder's "
                              f"tensors {sorted(sd)[:8]}")
    vocab_size, dim = int(emb.shape[0]), int(emb.shape[1])
    for key in ("sentemb_criterion", "prepend_bos", "left_pad_source"):
        if key not in args:
            raise CheckpointError(f"{path}: the model arguments lack {key!r}, which LASER "
                                  "reads to embed (is this a LASER transformer?)")
    pooling = str(args["sentemb_criterion"])
    if pooling not in ("cls", "maxpool"):
        raise CheckpointError(f"{path}: sentemb_criterion {pooling!r} is neither cls nor "
                              "maxpool")
    if pooling == "cls" and not args["prepend_bos"]:
        raise CheckpointError(f"{path}: sentemb_criterion cls needs prepend_bos")
    activation = str(args["activation_fn"])
    if activation not in ACTIVATIONS:
        raise CheckpointError(f"{path}: activation_fn {activation!r} is not supported "
                              f"({', '.join(ACTIVATIONS)})")
    if args["adaptive_input"]:
        raise CheckpointError(f"{path}: adaptive_input models are not LASER encoders")
    layer_ids = {int(m.group(1)) for k in sd if (m := re.match(r"^layers\.(\d+)\.", k))}
    num_layers = int(args.get("encoder_layers", len(layer_ids)))
    if layer_ids != set(range(num_layers)):
        raise CheckpointError(f"{path}: encoder_layers={num_layers} but the checkpoint holds "
                              f"layers {sorted(layer_ids)}")
    if "encoder_embed_dim" in args and int(args["encoder_embed_dim"]) != dim:
        raise CheckpointError(f"{path}: encoder_embed_dim={args['encoder_embed_dim']} but "
                              f"embed_tokens is {vocab_size} x {dim}")
    fc1 = sd.get("layers.0.fc1.weight")
    ffn = int(fc1.shape[0]) if fc1 is not None and num_layers else int(
        args.get("encoder_ffn_embed_dim", 2048))
    # truthiness, as fairseq and the reference read these arguments
    cfg = TransformerConfig(
        vocab_size=vocab_size, embed_dim=dim, ffn_dim=ffn, num_layers=num_layers,
        num_heads=int(args["encoder_attention_heads"]),
        normalize_before=bool(args["encoder_normalize_before"]),
        learned_pos=bool(args["encoder_learned_pos"]),
        no_positions=bool(args["no_token_positional_embeddings"]),
        scale_embedding=not args["no_scale_embedding"],
        layernorm_embedding=bool(args["layernorm_embedding"]),
        quant_noise=float(args["quant_noise_pq"] or 0) > 0,
        final_layer_norm=bool(args["encoder_normalize_before"]) or "layer_norm.weight" in sd,
        max_positions=int(args["max_source_positions"]),
        activation=activation, pooling=pooling, prepend_bos=bool(args["prepend_bos"]),
        left_pad=bool(args["left_pad_source"]))
    if dim % cfg.num_heads:
        raise CheckpointError(f"{path}: width {dim} is not a multiple of "
                              f"encoder_attention_heads={cfg.num_heads}")
    _check_shapes(sd, _transformer_shapes(cfg), path, "LASER transformer")
    dictionary, size = read_vocab(vocab)
    if with_mask and "<mask>" not in dictionary:
        dictionary["<mask>"] = size
        size += 1
    if size != vocab_size:
        raise CheckpointError(
            f"spm_vocab {vocab} gives {size} symbols (4 specials + its lines"
            f"{' + <mask>' if with_mask else ''}) but {path} embeds {vocab_size}: wrong "
            "vocabulary for this model")
    dictionary.update(_SPECIALS)
    return LaserCheckpoint(path, "transformer", cfg, sd, dictionary,
                           prepend_bos=cfg.prepend_bos)


def _transformer_shapes(cfg: TransformerConfig) -> dict[str, tuple[int, ...]]:
    d, f = cfg.embed_dim, cfg.ffn_dim
    out: dict[str, tuple[int, ...]] = {"embed_tokens.weight": (cfg.vocab_size, d)}
    if cfg.learned_pos and not cfg.no_positions:
        out["embed_positions.weight"] = (cfg.max_positions + PAD + 1, d)
    norms = ["layer_norm"] if cfg.final_layer_norm else []
    if cfg.layernorm_embedding:
        norms.append("layernorm_embedding")
    if cfg.quant_noise:
        out["quant_noise.weight"] = (d, d)
    for i in range(cfg.num_layers):
        p = f"layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out[f"{p}self_attn.{proj}.weight"] = (d, d)
            out[f"{p}self_attn.{proj}.bias"] = (d,)
        out[f"{p}fc1.weight"], out[f"{p}fc1.bias"] = (f, d), (f,)
        out[f"{p}fc2.weight"], out[f"{p}fc2.bias"] = (d, f), (d,)
        norms += [f"{p}self_attn_layer_norm", f"{p}final_layer_norm"]
    for norm in norms:
        out[f"{norm}.weight"] = out[f"{norm}.bias"] = (d,)
    return out


# -- shared ----------------------------------------------------------------------------------

def _tensors(model: Mapping[str, Any], path: Path) -> dict[str, Tensor]:
    bad = [k for k, v in model.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{path}: the state dict holds non-tensors: {sorted(bad)[:5]}")
    return {str(k): v for k, v in model.items()}


def _check_shapes(state: Mapping[str, Tensor], shapes: Mapping[str, tuple[int, ...]],
                  path: Path, what: str) -> None:
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:6]}{' …' if len(missing) > 6 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:6]}{' …' if len(unexpected) > 6 else ''}")
        raise CheckpointError(f"{path}: tensors do not match the {what} its configuration "
                              f"describes: {'; '.join(parts)}")
    wrong = [f"{k} {tuple(state[k].shape)} (expected {shape})" for k, shape in shapes.items()
             if tuple(state[k].shape) != shape]
    if wrong:
        raise CheckpointError(f"{path}: tensor shapes do not match the {what}: "
                              f"{'; '.join(wrong[:4])}")
    floats = [k for k in shapes if not state[k].is_floating_point()]
    if floats:
        raise CheckpointError(f"{path}: tensors that are not floating point: {floats[:4]}")


def read_vocab(path: str | Path) -> tuple[dict[str, int], int]:
    """A fairseq dictionary file as ``fairseq.data.Dictionary.load`` reads it:
    ``(token → id, number of symbols)``.

    Ids 0–3 are ``<s> <pad> </s> <unk>``; each line ``<token> <count>`` (optionally followed
    by ``#fairseq:overwrite``) adds its token at the next id; a token seen again without the
    flag is an error, with it the token moves to the new id (the old row stays).
    """
    path = Path(path)
    indices = dict(_SPECIALS)
    size = len(indices)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not UTF-8 text (a .cvocab dictionary is)") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read dictionary {path}: {exc}") from None
    for n, raw in enumerate(lines, 1):
        try:
            line, field = raw.rstrip().rsplit(" ", 1)
            overwrite = field == "#fairseq:overwrite"
            if overwrite:
                line, field = line.rsplit(" ", 1)
            int(field)
        except ValueError:
            raise CheckpointError(f"{path}:{n}: expected '<token> <count> [flags]', got "
                                  f"{raw.rstrip()!r}") from None
        if line in indices and not overwrite:
            raise CheckpointError(f"{path}:{n}: duplicate token {line!r} (fairseq refuses it "
                                  "without #fairseq:overwrite)")
        indices[line] = size
        size += 1
    return indices, size
