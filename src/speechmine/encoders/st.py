"""Any sentence-transformers model (LaBSE, multilingual-e5, …) for users with internet access.

``pip install 'speechmine[st]'``; the model is fetched by sentence-transformers on first use
(or loaded from a local directory given as ``model``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import register
from .base import Encoder

DEFAULT_MODEL = "sentence-transformers/LaBSE"
#: LaBSE's 109 languages (Feng et al. 2022, table of languages in its appendix), ISO 639-1
#: where there is one
LABSE_LANGS = frozenset("""
af am ar as az be bg bn bo bs ca ceb co cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu
ha haw he hi hmn hr ht hu hy id ig is it ja jv ka kk km kn ko ku ky la lb lo lt lv mg mi mk ml
mn mr ms mt my ne nl no ny or pa pl pt ro ru rw si sk sl sm sn so sq sr st su sv sw ta te tg th
tk tl tr tt ug uk ur uz vi wo xh yi yo zh zu
""".split())

#: sentence-transformers modules that pass the embedding width through unchanged
_SAME_WIDTH = frozenset({"Normalize", "Dropout", "LayerNorm", "WordWeights"})


def _hub_caches() -> list[Path]:
    """Folders sentence-transformers may have downloaded hub models to, in its order."""
    out = []
    if os.environ.get("SENTENCE_TRANSFORMERS_HOME"):
        out.append(Path(os.environ["SENTENCE_TRANSFORMERS_HOME"]))
    if os.environ.get("HF_HUB_CACHE"):
        out.append(Path(os.environ["HF_HUB_CACHE"]))
    elif os.environ.get("HF_HOME"):
        out.append(Path(os.environ["HF_HOME"]) / "hub")
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) if xdg else Path.home() / ".cache"
        out.append(base / "huggingface" / "hub")
    return [p.expanduser() for p in out]


def cached_snapshot(name: str) -> Path | None:
    """The local snapshot of hub model ``name`` (``refs/main``), found without network.

    A bare name (``LaBSE``) is also looked up under ``sentence-transformers/``, as
    sentence-transformers does.
    """
    names = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for cache in _hub_caches():
        for repo in names:
            folder = cache / ("models--" + repo.replace("/", "--"))
            try:
                revision = (folder / "refs" / "main").read_text().strip()
            except OSError:
                continue
            snapshot = folder / "snapshots" / revision
            if snapshot.is_dir():
                return snapshot
    return None


def _local_folder(model: str) -> Path | None:
    """The folder ``model`` loads from without network: a local path or a cached snapshot."""
    path = Path(model).expanduser()
    return path if path.is_dir() else cached_snapshot(model)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _module_width(kind: str, folder: Path, width: int | None) -> tuple[bool, int | None]:
    """``(known, width)`` after one sentence-transformers module of class ``kind`` whose
    files are in ``folder``; ``width`` is the width before it."""
    if kind in _SAME_WIDTH:
        return True, width
    if kind == "Transformer":
        model_cfg = _read_json(folder / "config.json") or {}
        hidden = model_cfg.get("hidden_size", model_cfg.get("d_model"))
        return True, int(hidden) if hidden else None
    if kind == "Pooling":
        pooling = _read_json(folder / "config.json") or {}
        if "word_embedding_dimension" not in pooling:
            return False, None
        # concatenated pooling modes (cls, mean, max, …): one word width each
        modes = sum(bool(v) for k, v in pooling.items()
                    if k.startswith("pooling_mode_") and isinstance(v, bool))
        return True, int(pooling["word_embedding_dimension"]) * max(modes, 1)
    if kind == "Dense":
        out = (_read_json(folder / "config.json") or {}).get("out_features")
        return (True, int(out)) if out else (False, None)
    return False, None  # a module we do not know: only the model knows its width


def folder_width(folder: Path) -> int | None:
    """Sentence embedding width of a sentence-transformers model folder, from its configs.

    ``modules.json`` lists the modules in order (Transformer, Pooling, Dense …); a folder
    without it is a plain transformers model, which sentence-transformers mean-pools
    (width = ``hidden_size``). None when a module's width cannot be read.
    """
    modules = folder / "modules.json"
    if not modules.is_file():
        return _module_width("Transformer", folder, None)[1]
    try:
        entries = json.loads(modules.read_text())
    except (OSError, ValueError):
        return None
    width: int | None = None
    for entry in entries:
        kind = str(entry.get("type", "")).rsplit(".", 1)[-1]
        known, width = _module_width(kind, folder / entry.get("path", ""), width)
        if not known:
            return None
    return width


def effective_device(device: str | None) -> str:
    """The device type sentence-transformers will run on: for None/``"auto"`` CUDA when
    available, else Apple's MPS when available, else CPU; otherwise the given type."""
    if device not in (None, "auto"):
        return str(device).split(":", 1)[0]
    try:
        import torch
    except ImportError:  # sentence-transformers needs torch: it will not run at all
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


@register
class SentenceTransformerEncoder(Encoder):
    """Wraps ``sentence_transformers.SentenceTransformer(model)``.

    Input bound: sentence-transformers keeps the first ``max_seq_length`` tokens of the
    model (LaBSE: 256); before that, a sentence is cut to ``max(20,000, 40 × max_seq_length)``
    characters, far more than those tokens need, so that the tokenizer never sees a
    megabyte line. Character cuts count in ``n_truncated``; the model's own token cut is not
    counted (sentence-transformers does not report it).
    """

    #: stopes' HFTextEncoder names the model with ``_name`` (hf_encoder.yaml: ``_name: LaBSE``)
    MODEL_FROM_STOPES_NAME = True

    name = "sentence_transformers"
    modality = "text"

    @classmethod
    def languages_for(cls, options: Mapping[str, Any]) -> frozenset[str] | None:
        """LaBSE's languages when the model is LaBSE (the default); None (unknown) for any
        other model."""
        model = str(options.get("model") or DEFAULT_MODEL)
        return LABSE_LANGS if model.rstrip("/").rsplit("/", 1)[-1] == "LaBSE" else None
    PACKAGES = ("sentence-transformers", "transformers", "tokenizers", "huggingface-hub",
                "torch", "numpy")

    def __init__(self, lang: str | None = None, model: str = DEFAULT_MODEL,
                 batch_size: int = 32, device: str | None = None, prefix: str = "",
                 **options: Any) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        from sentence_transformers import SentenceTransformer

        model = self.option_value("model", model)
        device = self.option_value("device", device)
        self.model_name, self.prefix = model, self.option_value("prefix", prefix)
        self._model = SentenceTransformer(model, device=device)
        self.dim = int(self._model.get_sentence_embedding_dimension())
        seq = getattr(self._model, "max_seq_length", None)
        if isinstance(seq, int) and seq > 0:
            self.max_tokens = seq
            self.max_chars = max(self.max_chars or 0, 40 * seq)

    @classmethod
    def identity(cls, options: Mapping[str, Any], lang: str | None,
                 verify: str = "content") -> dict[str, Any]:
        """The default identity with ``model`` replaced by the identity of the folder it
        loads from (a local folder, or the hub snapshot cached by Hugging Face, found
        without network; ``{"hub": name, "cached": False}`` before the first download) and
        ``device`` by the effective device type; ``prefix`` and other options as given."""
        from ..io.identity import file_identity

        rest = {k: v for k, v in options.items() if k not in ("model", "device")}
        ident = super().identity(rest, lang, verify)
        model = str(options.get("model") or DEFAULT_MODEL)
        folder = _local_folder(model)
        ident["options"]["model"] = (file_identity(folder, verify) if folder is not None
                                     else {"hub": model, "cached": False})
        ident["options"]["device"] = effective_device(options.get("device"))
        return ident

    @classmethod
    def dim_of(cls, options: Mapping[str, Any], lang: str | None) -> int | None:
        """Width from the local model folder's configs, None before it is downloaded."""
        folder = _local_folder(str(options.get("model") or DEFAULT_MODEL))
        return folder_width(folder) if folder is not None else None

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        """Embed ``prefix + sentence`` → ``(len(items), dim)`` float32."""
        texts = [self.prefix + t for t in items]
        return self._model.encode(texts, batch_size=len(texts), convert_to_numpy=True)

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "lang": None, "model": self.model_name,
                "prefix": self.prefix}
