"""Load SONAR checkpoints without executing pickled code, and convert legacy layouts.

Loading policy (:func:`load_checkpoint`):

* ``*.safetensors`` → ``safetensors`` (when installed): no pickle at all.
* anything else → ``torch.load(weights_only=True)``. The only non-tensor globals allowed are
  the metadata that fairseq/fairseq2 training runs pickle next to the weights
  (``argparse.Namespace``, plain builtin containers, and *inert stand-ins* for
  ``omegaconf``/``fairseq``/``numpy``/``typing``/``torch.nn`` objects: classes that only
  record their constructor arguments and state, so nothing of the original code runs).
* any other global (e.g. ``os.system``, a user class), or a pickle the safe unpickler
  cannot read at all (a plain ``pickle.dump`` file, a newer pickle protocol) →
  :class:`UnsafeCheckpointError`, unless the caller passes ``trust=True`` for that file
  (encoder option ``trust_checkpoint: true``, parsed as a real boolean).

Every failure is a one-line :class:`CheckpointError` (an
:class:`~speechmine.encoders.base.EncoderError`) naming the file, raised without a chained
exception: torch's own messages (which suggest ``weights_only=False``) never reach the user.

Layout conversion (:func:`to_fairseq2_text`, :func:`to_fairseq2_speech`): the released files
on Meta's file host may be in the older fairseq layout (``encoder.w2v_model.*``,
``linear_pos``, ``pos_bias_u``, ``layers.N.fc1`` ...), whose text embedding also orders the
four special rows as fairseq's dictionary does (bos, pad, eos, unk) instead of fairseq2's
(pad, unk, bos, eos).
"""

from __future__ import annotations

import argparse
import collections
import logging
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..base import EncoderError, parse_bool

log = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "load_checkpoint",
    "checkpoint_state",
    "extract_state_dict",
    "to_fairseq2_text",
    "to_fairseq2_speech",
    "embedding_width",
]


class CheckpointError(EncoderError):
    """A checkpoint file cannot be read, or holds no usable state dict (message says which)."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint pickles objects that are not plain weights or known metadata, or is a
    pickle the safe loader cannot read: only ``trust_checkpoint: true`` would load it."""


class InertRecord:
    """Stand-in for a pickled metadata object: records arguments and state, runs nothing."""

    args: tuple[Any, ...]
    state: Any
    items: dict[Any, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> InertRecord:
        obj = super().__new__(cls)
        obj.args, obj.state, obj.items = args, None, {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.items[len(self.items)] = value

    def extend(self, values: Any) -> None:
        for v in values:
            self.append(v)

    def __repr__(self) -> str:
        return f"InertRecord(args={self.args!r})"


#: Globals that are safe as the real thing: calling them only builds plain data.
_REAL_SAFE: dict[str, Any] = {
    "argparse.Namespace": argparse.Namespace,
    "collections.defaultdict": collections.defaultdict,
    **{f"builtins.{t.__name__}": t for t in (list, dict, set, frozenset, tuple, int, float,
                                              str, bytes, bool, complex, slice)},
}

#: Module prefixes of training metadata that may be replaced by :class:`InertRecord`.
_INERT_PREFIXES = (
    "omegaconf.", "fairseq.", "fairseq2.", "fairseq2n.", "numpy.", "typing.", "enum.",
    "pathlib.", "torch.nn.modules.", "torch.optim.", "datetime.",
)

#: torch's weights-only refusals of one global: "GLOBAL x.y was not an allowed global" (a
#: global it could allow) and "unsupported GLOBAL x.y whose module x is blocked"
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+) (?:was not an allowed global|whose module)")
#: what else the weights-only unpickler says it cannot do ("Unsupported operand 149")
_REASON_RE = re.compile(r"(Unsupported operand \S+|Unsupported class \S+|Invalid magic number"
                        r"|[Uu]nsupported global: \S+ \S+)")


def _allowed(name: str) -> Any | None:
    """What to substitute for global ``name``, or None when it must be refused."""
    if name in _REAL_SAFE:
        return _REAL_SAFE[name]
    if name.startswith(_INERT_PREFIXES):
        return InertRecord
    return None


_TRUST_HINT = ("set the encoder option trust_checkpoint: true only for a file you trust "
               "(loading it runs the code it pickles), or convert it to safetensors")


def _refuse(path: Path, names: list[str]) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"refusing to load {path}: it pickles objects that are neither weights nor known "
        f"training metadata ({', '.join(sorted(set(names)))}); {_TRUST_HINT}."
    )


def _unreadable(path: Path, exc: BaseException) -> UnsafeCheckpointError:
    """The refusal of a file the weights-only unpickler cannot parse (not torch's message,
    which suggests ``weights_only=False``)."""
    m = _REASON_RE.search(str(exc))
    why = m.group(1) if m else type(exc).__name__
    return UnsafeCheckpointError(
        f"refusing to load {path}: it is not a weights file the safe loader can read ({why}; "
        f"e.g. a plain pickle rather than torch.save output); {_TRUST_HINT}."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _torch_load(path: Path, trust: bool) -> Any:
    """``torch.load`` of ``path`` under the loading policy; failures are
    :class:`CheckpointError` without a chained exception."""
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}") from None
    # mmap keeps peak memory at one copy of the weights (zip format only)
    kwargs: dict[str, Any] = {"map_location": "cpu", "mmap": is_zip}
    if trust:
        log.warning("loading %s with full unpickling (trust_checkpoint: true)", path)
        try:
            return torch.load(path, weights_only=False, **kwargs)
        except Exception as exc:
            raise CheckpointError(
                f"cannot load checkpoint {path} (trust_checkpoint: true): {_first_line(exc)}"
            ) from None
    extra: dict[str, Any] = {}
    if is_zip:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception as exc:  # a damaged archive (e.g. a cut download)
            raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}"
                                  ) from None
        bad = [n for n in names if _allowed(n) is None]
        if bad:
            raise _refuse(path, bad)
        extra = {n: _allowed(n) for n in names}
    # Legacy (non-zip) files cannot be scanned up front: learn their globals one refusal
    # at a time (each is a cheap failed parse of the pickle header area).
    for _ in range(64):
        with torch.serialization.safe_globals([(obj, name) for name, obj in extra.items()]), \
                warnings.catch_warnings():
            # a plain pickle draws "Detected pickle protocol 4 ..." before it is refused
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            try:
                return torch.load(path, weights_only=True, **kwargs)
            except pickle.UnpicklingError as exc:  # the weights-only unpickler refused
                m = _GLOBAL_RE.search(str(exc))
                if m is None:
                    raise _unreadable(path, exc) from None
                name = m.group(1)
                if _allowed(name) is None or name in extra:
                    raise _refuse(path, [name]) from None
                extra[name] = _allowed(name)
            except Exception as exc:  # not a torch.save file, or a damaged one
                if "magic number" in str(exc):
                    raise _unreadable(path, exc) from None
                raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}"
                                      ) from None
    raise _refuse(path, list(extra))  # pragma: no cover - pathological file


def load_checkpoint(path: str | Path, trust: bool = False) -> Any:
    """Load a checkpoint file safely (see module doc). Returns the unpickled object.

    Raises :class:`UnsafeCheckpointError` for what only ``trust=True`` would load and
    :class:`CheckpointError` for a file that cannot be read (both one line, no chained
    exception); ``FileNotFoundError`` when ``path`` is not a file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ImportError(f"{path} is a safetensors file: pip install safetensors") from exc
        try:
            return load_file(str(path))
        except Exception as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}"
                                  ) from None
    return _torch_load(path, parse_bool(trust, "trust_checkpoint"))


def checkpoint_state(path: str | Path, trust: bool = False
                     ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """:func:`load_checkpoint` then :func:`extract_state_dict`: ``(state_dict, wrapper)``;
    a file without a state dict is a :class:`CheckpointError` naming it."""
    obj = load_checkpoint(path, trust=trust)
    try:
        return extract_state_dict(obj)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def _tensor_of(obj: Any, name: str = "weight") -> Tensor | None:
    """The tensor ``obj`` carries: a tensor, an ``nn.Module``, or an inert record of one."""
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, torch.nn.Module):
        return getattr(obj, name, None)
    if isinstance(obj, InertRecord) and isinstance(obj.state, dict):
        params = obj.state.get("_parameters") or {}
        t = params.get(name)
        return t if isinstance(t, Tensor) else None
    return None


def extract_state_dict(obj: Any) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Unwrap ``{"model": sd}`` / ``{"state_dict": sd}`` / bare ``sd``.

    Returns ``(state_dict, wrapper)`` where ``wrapper`` is the outer dict (empty when bare),
    kept because legacy text files store the embedding table next to the state dict.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint holds a {type(obj).__name__}, not a state dict")
    for key in ("model", "state_dict", "module"):
        inner = obj.get(key)
        if isinstance(inner, dict) and any(isinstance(v, Tensor) for v in inner.values()):
            return {k: v for k, v in inner.items() if isinstance(v, Tensor)}, obj
    tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise ValueError(f"no tensors found in checkpoint (top-level keys: {sorted(obj)[:10]})")
    return tensors, {}


def _rename(sd: dict[str, Tensor], rules: list[tuple[str, str]]) -> dict[str, Tensor]:
    compiled = [(re.compile(p), r) for p, r in rules]
    out: dict[str, Tensor] = {}
    for key, val in sd.items():
        for pat, rep in compiled:
            new, n = pat.subn(rep, key)
            if n:
                key = new
                break
        out[key] = val
    return out


_DROP = re.compile(r"(^|\.)(version|_float_tensor)$")

_TEXT_RULES = [
    (r"^layers\.(\d+)\.self_attn\.out_proj\.", r"encoder.layers.\1.self_attn.output_proj."),
    (r"^layers\.(\d+)\.self_attn\.([qkv])_proj\.", r"encoder.layers.\1.self_attn.\2_proj."),
    (r"^layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"^layers\.(\d+)\.fc1\.", r"encoder.layers.\1.ffn.inner_proj."),
    (r"^layers\.(\d+)\.fc2\.", r"encoder.layers.\1.ffn.output_proj."),
    (r"^layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.ffn_layer_norm."),
    (r"^embed_tokens\.", r"encoder_frontend.embed."),
]

#: fairseq dictionary rows (bos=0, pad=1, eos=2, unk=3) -> fairseq2 (pad, unk, bos, eos).
_FAIRSEQ_TO_FAIRSEQ2_ROWS = [1, 3, 0, 2]


def to_fairseq2_text(sd: dict[str, Tensor], wrapper: dict[str, Any]) -> dict[str, Tensor]:
    """Return a fairseq2-layout text encoder state dict (no-op when it already is one)."""
    if "encoder_frontend.embed.weight" in sd:
        return sd
    if any(k.startswith("encoder.layers.") for k in sd):  # whole fairseq model: keep encoder
        sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    sd = {k: v for k, v in sd.items() if not _DROP.search(k)}
    out = _rename(sd, _TEXT_RULES)
    # Legacy SONAR files keep the embedding table beside the state dict too; it wins, as in
    # the official converter.
    side = _tensor_of(wrapper.get("embed_tokens"))
    if side is not None:
        out["encoder_frontend.embed.weight"] = side
    emb = out.get("encoder_frontend.embed.weight")
    if emb is None:
        raise ValueError("legacy text checkpoint has no embed_tokens table")
    emb = emb.clone()
    emb[:4] = emb[_FAIRSEQ_TO_FAIRSEQ2_ROWS]
    out["encoder_frontend.embed.weight"] = emb
    log.info("converted a fairseq-layout SONAR text checkpoint (%d tensors)", len(out))
    return out


_W2V = r"^encoder\.w2v_model\.encoder\.layers\.(\d+)\."
_SPEECH_RULES = [
    (r"^encoder\.w2v_model\.layer_norm\.", "encoder_frontend.post_extract_layer_norm."),
    (r"^encoder\.w2v_model\.post_extract_proj\.", "encoder_frontend.model_dim_proj."),
    (_W2V + r"conv_module\.layer_norm\.", r"encoder.layers.\1.conv_layer_norm."),
    (_W2V + r"conv_module\.", r"encoder.layers.\1.conv."),
    (_W2V + r"ffn(1|2)\.layer_norm\.", r"encoder.layers.\1.ffn\2_layer_norm."),
    (_W2V + r"ffn(1|2)\.w_1\.", r"encoder.layers.\1.ffn\2.inner_proj."),
    (_W2V + r"ffn(1|2)\.w_2\.", r"encoder.layers.\1.ffn\2.output_proj."),
    (_W2V + r"self_attn_layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (_W2V + r"self_attn\.linear_([qkv])\.", r"encoder.layers.\1.self_attn.\2_proj."),
    (_W2V + r"self_attn\.linear_out\.", r"encoder.layers.\1.self_attn.output_proj."),
    (_W2V + r"self_attn\.linear_pos\.", r"encoder.layers.\1.self_attn.sdpa.r_proj."),
    (_W2V + r"self_attn\.pos_bias_u$", r"encoder.layers.\1.self_attn.sdpa.u_bias"),
    (_W2V + r"self_attn\.pos_bias_v$", r"encoder.layers.\1.self_attn.sdpa.v_bias"),
    (_W2V + r"final_layer_norm\.", r"encoder.layers.\1.layer_norm."),
    # w2v-BERT was pre-trained with a redundant LayerNorm after the conformer stack; SONAR
    # keeps it as the model-level layer_norm.
    (r"^encoder\.w2v_model\.encoder\.layer_norm\.", "layer_norm."),
    (r"^decoder\.embed_tokens\.", "encoder_pooler.decoder_frontend.embed."),
    (r"^decoder\.embed_out$", "encoder_pooler.projection_out.weight"),
    (r"^decoder\.layers\.(\d+)\.self_attn\.out_proj\.",
     r"encoder_pooler.decoder.layers.\1.self_attn.output_proj."),
    (r"^decoder\.layers\.(\d+)\.self_attn\.", r"encoder_pooler.decoder.layers.\1.self_attn."),
    (r"^decoder\.layers\.(\d+)\.self_attn_layer_norm\.",
     r"encoder_pooler.decoder.layers.\1.self_attn_layer_norm."),
    (r"^decoder\.layers\.(\d+)\.encoder_attn\.out_proj\.",
     r"encoder_pooler.decoder.layers.\1.encoder_decoder_attn.output_proj."),
    (r"^decoder\.layers\.(\d+)\.encoder_attn\.",
     r"encoder_pooler.decoder.layers.\1.encoder_decoder_attn."),
    (r"^decoder\.layers\.(\d+)\.encoder_attn_layer_norm\.",
     r"encoder_pooler.decoder.layers.\1.encoder_decoder_attn_layer_norm."),
    (r"^decoder\.layers\.(\d+)\.fc1\.", r"encoder_pooler.decoder.layers.\1.ffn.inner_proj."),
    (r"^decoder\.layers\.(\d+)\.fc2\.", r"encoder_pooler.decoder.layers.\1.ffn.output_proj."),
    (r"^decoder\.layers\.(\d+)\.final_layer_norm\.",
     r"encoder_pooler.decoder.layers.\1.ffn_layer_norm."),
]

#: w2v-BERT pre-training parts that the SONAR encoder does not use.
_SPEECH_TRAINING_ONLY = re.compile(
    r"^encoder\.w2v_model\.(mask_emb|quantizer\.|project_q\.|final_proj\.|label_embs)"
)


def to_fairseq2_speech(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Return a fairseq2-layout speech encoder state dict (no-op when it already is one)."""
    if not any(k.startswith("encoder.w2v_model.") for k in sd):
        return sd
    kept = {k: v for k, v in sd.items() if not (_DROP.search(k) or _SPEECH_TRAINING_ONLY.match(k))}
    if len(kept) != len(sd):
        log.debug("dropped %d training-only tensors", len(sd) - len(kept))
    out = _rename(kept, _SPEECH_RULES)
    log.info("converted a fairseq-layout SONAR speech checkpoint (%d tensors)", len(out))
    return out


#: Per model kind, tensors whose first dimension is the embedding width, in every accepted
#: layout: the text encoder's final LayerNorm (``encoder.`` prefixed in a whole fairseq
#: model), the speech encoder's projection to the model width (fairseq2 / fairseq names).
_WIDTH_KEYS: dict[str, tuple[str, ...]] = {
    "text": ("layer_norm.weight", "encoder.layer_norm.weight"),
    "speech": ("encoder_frontend.model_dim_proj.weight",
               "encoder.w2v_model.post_extract_proj.weight"),
}


def embedding_width(path: str | Path, kind: str, trust: bool = False) -> int | None:
    """The output width of a text or speech checkpoint, read off tensor shapes.

    Nothing of the weights is read: a zip-format file is memory-mapped by the safe loader
    (its tensors only map the file until touched; shapes live in the pickle), a safetensors
    file's header lists the shapes. A legacy (non-zip) pickle cannot be mapped, so reading
    it would materialise the weights: None then (only the model knows), as for a state dict
    without the expected tensors.
    """
    path = Path(path)
    keys = _WIDTH_KEYS[kind]
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open
        except ImportError:
            return None
        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            key = next((k for k in keys if k in names), None)
            return int(f.get_slice(key).get_shape()[0]) if key else None
    if not zipfile.is_zipfile(path):
        return None
    state, _ = extract_state_dict(_torch_load(path, trust))
    key = next((k for k in keys if k in state), None)
    return int(state[key].shape[0]) if key else None
