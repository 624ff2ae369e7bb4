#!/usr/bin/env python3
"""Build tests/data/laser/: tiny LASER checkpoints with golden outputs of the reference code.

What it writes (see tests/data/laser/README.md for the full description):

* ``tiny.spm`` (a SentencePiece model trained here on a few lines in eight scripts) and
  ``tiny.cvocab`` (its pieces as a fairseq dictionary, the recipe of the released
  ``laser2.cvocab``: every piece after ``<unk> <s> </s>``, count 100);
* ``tiny_laser2.pt``: a BiLSTM encoder in the format of ``laser2.pt``
  (``{"params", "model", "dictionary"}``, what ``laser_encoders.models.LaserLstmEncoder``
  takes), randomly initialised;
* ``tiny_laser3.pt``: a transformer student in the format of the ``laser3-*.v1.pt`` files
  (a fairseq checkpoint of the ``laser_transformer`` architecture: ``cfg["model"]`` an
  ``argparse.Namespace``, ``encoder.*`` and ``decoder.*`` tensors, the masked-LM head, CLS
  pooling), and ``tiny_laser3_maxpool.pt``, a second transformer that takes the other
  branches (pre-norm, learned positions, embedding LayerNorm, GELU, max pooling, no BOS,
  encoder-only keys);
* ``reference.json`` / ``reference.npz``: the input sentences, the reference tokenizer's
  pieces, the token ids and the embeddings the reference encoder computed.

The reference is the official ``laser_encoders`` package (PyPI 0.0.2: ``LaserTokenizer`` and
``SentenceEncoder``), run as is. It imports fairseq (0.12.2, the version it requires) at
module level, for its transformer path. fairseq 0.12.2 predates Python 3.11 and defines its
config dataclasses with dataclass-instance defaults, which 3.11 refuses;
:func:`allow_py311_fairseq` lets them through unchanged (the check is skipped, nothing else).
The reference's ``torch.load(path)`` also predates torch 2.6, where ``weights_only`` became
True by default (a fairseq checkpoint pickles an ``argparse.Namespace``): the reference run
gets ``weights_only=False``, the behaviour it was written for (these files are our own). And
fairseq 0.12.2's "BetterTransformer" fast path for post-norm layers calls a torch-internal op
whose signature changed in torch 2 (it fails with "Mask Type should be defined" on a padded
batch): the run takes fairseq's standard layer path, the computation that fast path
reproduces (``layer.can_use_fastpath = False``).

Environment: laser_encoders requires fairseq (>= 0.12.2), which has no wheel for current
Pythons and whose sdist does not build here, so fairseq runs from its source tree (v0.12.2,
commit 4a388e64; its C++/Cython extensions are not needed on this path)::

    python3.11 -m venv /tmp/refvenv && . /tmp/refvenv/bin/activate
    pip install torch numpy sentencepiece   # or a .pth line to speechmine's environment
    pip install laser-encoders==0.0.2 --no-deps
    pip install sacremoses==0.1.0 unicategories==0.1.2 requests \\
        hydra-core omegaconf sacrebleu bitarray regex
    git clone https://github.com/facebookresearch/fairseq && git -C fairseq checkout v0.12.2
    PYTHONPATH=fairseq python scripts/build_laser_fixtures.py   # from the repository root

fairseq pins hydra-core < 1.1 / omegaconf < 2.1, which only its training code uses: with
hydra-core 1.3.8 / omegaconf 2.3.1 it imports (with :func:`allow_py311_fairseq`) and the
fixtures come out byte-identical to a run with hydra-core 1.0.7 / omegaconf 2.0.6 (checked;
those need ``pip<24.1`` for omegaconf 2.0.6's metadata).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import platform
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "laser"


def allow_py311_fairseq() -> None:
    """Let fairseq 0.12.2 define its config dataclasses on Python 3.11.

    3.11 refuses a field default whose class is unhashable (fairseq uses dataclass instances
    as defaults, which 3.10 allowed). Such a default's class gets identity hashing just
    before the check; the default itself (one shared instance, as on 3.10) is unchanged.
    Idempotent; call before the first fairseq import.
    """
    if getattr(dataclasses, "_speechmine_fairseq_shim", False):
        return
    original = dataclasses._get_field  # type: ignore[attr-defined]

    def _get_field(cls: type, a_name: str, a_type: Any, *args: Any, **kwargs: Any) -> Any:
        default = cls.__dict__.get(a_name, dataclasses.MISSING)
        if isinstance(default, dataclasses.Field):
            default = default.default
        if (default is not dataclasses.MISSING and dataclasses.is_dataclass(default)
                and type(default).__hash__ is None):
            type(default).__hash__ = object.__hash__  # type: ignore[method-assign]
        return original(cls, a_name, a_type, *args, **kwargs)

    dataclasses._get_field = _get_field  # type: ignore[attr-defined]
    dataclasses._speechmine_fairseq_shim = True  # type: ignore[attr-defined]


# -- inputs ---------------------------------------------------------------------------------

#: what the golden outputs are computed for: punctuation to normalise, upper case in three
#: alphabets, non-printing characters, French quotes with no-break spaces, five other
#: scripts, characters the SentencePiece model never saw, empty inputs, and a long sentence
#: (longer than the transformers' 40 positions)
SENTENCES = [
    "The “quick” brown fox — isn’t it… (really)  fast ?  Yes!!",
    "ΑΘΗΝΑ ΚΑΙ ΜΟΣΧΑ : Ελληνικά, Русский ТЕКСТ.",
    "zero\u200bwidth\tTAB\x07bell\u00adsoft\ufeffbom  end",
    "« Bonjour », dit-il\u00a0: «\u00a0ça va\u00a0?\u00a0» — Très bien !",
    "مرحبا بالعالم، كيف حالك؟",
    "ሰላም ለዓለም። እንዴት ነህ?",
    "你好，世界。我们在这里！",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "snowman ☃ and smile 🙂 with ‚low‘ quotes and `penn'' ones",
    "1\u00a0000 km,  100 % sure (ok) .",
    "",
    "\u200b\u2060\x1f",
    " ".join(["The long sentence goes on and on, with quick foxes and lazy dogs"] * 8),
]

#: SentencePiece training text (lower case, as LASER encodes lower-cased text): the inputs'
#: scripts, without the snowman and the smile (they stay unknown)
SPM_TEXT = """\
the quick brown fox jumps over the lazy dog. isn't it really fast? yes!
the long sentence goes on and on, with quick foxes and lazy dogs.
a sentence with "quotes" and (parentheses) and some numbers: 1,000 km, 100% sure.
bonjour, dit-il : " ça va ? " très bien ! les élèves étaient là.
αθηνα και μοσχα: ελληνικά γράμματα, ένα κείμενο.
русский текст, москва и мир. привет, как дела?
مرحبا بالعالم، كيف حالك؟ هذا نص عربي قصير.
ሰላም ለዓለም። እንዴት ነህ? ይህ አማርኛ ነው።
你好，世界。我们在这里！这是中文。
नमस्ते दुनिया, आप कैसे हैं? यह हिंदी है।
zero width tab bell soft bom end snowman smile low quotes penn ones
"""


# -- files ----------------------------------------------------------------------------------

def train_spm(path: Path) -> Any:
    import sentencepiece as spm

    lines = [ln for ln in SPM_TEXT.splitlines() if ln.strip()] * 20
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=260, model_type="unigram",
        character_coverage=1.0, num_threads=1, hard_vocab_limit=False, seed_sentencepiece_size=10_000,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())
    return spm.SentencePieceProcessor(model_file=str(path))


def write_cvocab(sp: Any, path: Path) -> list[str]:
    """fairseq dictionary text of the pieces after <unk> <s> </s>, count 100 (LASER's recipe)."""
    pieces = [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())]
    path.write_text("".join(f"{p} 100\n" for p in pieces), encoding="utf-8")
    return pieces


def lstm_checkpoint(pieces: list[str], path: Path) -> None:
    """``laser2.pt``'s format: params for LaserLstmEncoder, its state dict, the dictionary."""
    import torch
    from laser_encoders.models import LaserLstmEncoder

    dictionary = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    dictionary.update({p: 4 + i for i, p in enumerate(pieces)})
    for gone in pieces[10:13]:  # rows the dictionary does not reach: those pieces become <unk>
        del dictionary[gone]
    params = dict(num_embeddings=4 + len(pieces), padding_idx=1, embed_dim=12, hidden_size=8,
                  num_layers=2, bidirectional=True, left_pad=True, padding_value=0.0)
    torch.manual_seed(1)
    model = LaserLstmEncoder(**params)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5)
    torch.save({"params": params, "model": model.state_dict(), "dictionary": dictionary}, path)


def _namespace(**overrides: Any) -> argparse.Namespace:
    """A ``laser_transformer`` training Namespace (fairseq's base_architecture filled in)."""
    from fairseq.models.transformer import base_architecture

    ns = argparse.Namespace(
        arch="laser_transformer", task="laser_distillation", criterion="encoder_similarity",
        student_teacher_config="mask:wol_Latn-wol_Latn,distil:wol_Latn-eng_Latn",
        max_source_positions=40, max_target_positions=40, dropout=0.3,
        encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_layers=2,
        encoder_attention_heads=2, decoder_embed_dim=1, decoder_ffn_embed_dim=1,
        decoder_layers=1, decoder_attention_heads=1, decoder_lang_embed_dim=1,
        sentemb_criterion="cls", prepend_bos=True,
        # kept as typed on the command line: the task parses it (eval_bool) into its own copy
        # of the arguments, the model's copy keeps the string
        left_pad_source="False", left_pad_target="True",
        lr=[0.0001], adam_betas="(0.9,0.98)", seed=1,
    )
    for key, value in overrides.items():
        setattr(ns, key, value)
    base_architecture(ns)
    return ns


def transformer_checkpoint(cvocab: Path, path: Path, *, variant: str) -> None:
    """A fairseq checkpoint of a LASER transformer student (``laser3-*.v1.pt``'s format)."""
    import numpy as np
    import torch
    from fairseq.data.dictionary import Dictionary
    from fairseq.models.transformer import Embedding, TransformerEncoder

    dictionary = Dictionary.load(str(cvocab))
    if variant == "cls":  # LASER3's recipe: CLS pooling, BOS, masked-LM head (its LayerNorm)
        ns = _namespace()
        final_norm = True
    else:  # the other branches of the reference code
        ns = _namespace(sentemb_criterion="maxpool", prepend_bos=False, left_pad_source=False,
                        encoder_normalize_before=True, encoder_learned_pos=True,
                        layernorm_embedding=True, activation_fn="gelu", no_scale_embedding=True,
                        student_teacher_config="distil:wol_Latn-eng_Latn")
        final_norm = True  # pre-norm: the encoder's own final LayerNorm
    if final_norm:
        dictionary.add_symbol("<mask>")  # the reference adds it when layer_norm is present
    torch.manual_seed(2 if variant == "cls" else 3)
    embed = Embedding(len(dictionary), ns.encoder_embed_dim, dictionary.pad())
    encoder = TransformerEncoder(ns, dictionary, embed)
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if name.endswith("layer_norm.weight") or "layernorm_embedding.weight" in name:
                p.uniform_(0.5, 1.5)
            elif name.endswith(".bias"):
                p.uniform_(-0.2, 0.2)
    state = {k: v for k, v in encoder.state_dict().items()
             # fairseq >= 0.12.2 duplicates q/k/v into fused "BetterTransformer" tensors; the
             # nllb-era training code that wrote the released files has no such tensors
             if not k.rsplit(".", 1)[-1].endswith(("in_proj_weight", "in_proj_bias",
                                                   "out_proj_weight", "out_proj_bias",
                                                   "fc1_weight", "fc1_bias", "fc2_weight",
                                                   "fc2_bias"))}
    if "embed_positions._float_tensor" in state:  # an uninitialised dummy: make it repeatable
        state["embed_positions._float_tensor"] = torch.zeros(1)
    gen = torch.Generator().manual_seed(4)
    dim = ns.encoder_embed_dim
    if variant == "cls":
        state["layer_norm.weight"] = torch.rand(dim, generator=gen) + 0.5
        state["layer_norm.bias"] = torch.rand(dim, generator=gen) - 0.5
        # masked-LM head of the student (dropped by the reference's loader)
        state["project_vocabulary.weight"] = torch.randn(len(dictionary), dim, generator=gen)
        state["lm_head_transform_weight.weight"] = torch.randn(dim, dim, generator=gen)
        state["lm_head_transform_weight.bias"] = torch.randn(dim, generator=gen)
        model = {f"encoder.{k}": v for k, v in state.items()}
        # the (tiny) decoder of the laser_transformer model
        model["decoder.version"] = torch.Tensor([3])
        model["decoder.embed_tokens.weight"] = torch.randn(len(dictionary), 1, generator=gen)
        model["decoder.embed_lang.weight"] = torch.randn(2, 1, generator=gen)
        model["decoder.layers.0.fc1.weight"] = torch.randn(1, dim + 2, generator=gen)
    else:
        model = dict(state)
    ckpt = {
        "args": None,
        "cfg": {"_name": None, "common": {"seed": 1, "fp16": True}, "model": ns,
                "task": argparse.Namespace(**vars(ns)),
                "criterion": {"_name": "encoder_similarity"}, "optimizer": {"_name": "adam"}},
        "model": model,
        "criterion": None,
        "optimizer_history": [{"criterion_name": "EncoderSimilarityCriterion",
                               "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": np.float64(0.25)},
                               "num_updates": 30_000}],
        "task_state": {},
        "extra_state": {"previous_training_time": 12.5, "metrics": {},
                        "train_iterator": {"epoch": 3, "iterations_in_epoch": 0,
                                           "shuffle": True}},
    }
    torch.save(ckpt, path)


# -- the reference run ----------------------------------------------------------------------

def run_reference(model: Path, spm_path: Path, cvocab: Path,
                  limit: int | None) -> tuple[list[list[int]], list[int], Any, dict[int, Any]]:
    """Token ids and embeddings of SENTENCES by the reference: ``(ids, cut, emb, full)``.

    ``limit``: the model's position limit (tokens with BOS/EOS). A sentence over it is
    embedded from its first pieces, as speechmine cuts it (``cut`` lists those sentences; the
    reference itself has no limit); ``full`` maps each of them to the reference's embedding
    of the whole sentence, where the model can embed it (sinusoidal positions).
    """
    import numpy as np
    import torch
    from laser_encoders.laser_tokenizer import LaserTokenizer
    from laser_encoders.models import SentenceEncoder

    tok = LaserTokenizer(spm_model=spm_path)
    pieces = [tok.tokenize(s) for s in SENTENCES]
    load = torch.load
    torch.load = lambda f, *a, **k: load(f, *a, **{"weights_only": False, **k})  # type: ignore
    try:
        enc = SentenceEncoder(str(model), spm_vocab=str(cvocab), max_tokens=12_000, cpu=True)
    finally:
        torch.load = load  # type: ignore[assignment]
    for layer in getattr(enc.encoder, "layers", ()):
        # fairseq 0.12.2's "BetterTransformer" fast path calls a torch-internal op whose
        # signature changed in torch 2 ("Mask Type should be defined"): take fairseq's
        # standard layer path, the computation the fast path reproduces
        layer.can_use_fastpath = False
    ids = [enc._tokenize(p).tolist() for p in pieces]
    special = 2 if enc.prepend_bos else 1
    cut_at = [i for i, x in enumerate(ids) if limit is not None and len(x) > limit]
    kept = list(pieces)
    full: dict[int, Any] = {}
    for i in cut_at:
        assert limit is not None
        kept[i] = " ".join(pieces[i].split()[: limit - special])
        ids[i] = enc._tokenize(kept[i]).tolist()
        try:
            full[i] = enc.encode_sentences([pieces[i]])[0]
        except IndexError:  # learned positions end at the limit
            pass
    emb = enc.encode_sentences(kept)
    # one at a time too: batching (padding, packing) must not change the result
    alone = np.stack([enc.encode_sentences([p])[0] for p in kept])
    assert np.abs(alone - emb).max() < 1e-5, np.abs(alone - emb).max()
    return ids, cut_at, emb.astype(np.float32), full


def main() -> None:
    allow_py311_fairseq()
    import fairseq
    import laser_encoders
    import numpy as np
    import sacremoses
    import sentencepiece
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    spm_path, cvocab = OUT / "tiny.spm", OUT / "tiny.cvocab"
    sp = train_spm(spm_path)
    pieces = write_cvocab(sp, cvocab)
    lstm_checkpoint(pieces, OUT / "tiny_laser2.pt")
    transformer_checkpoint(cvocab, OUT / "tiny_laser3.pt", variant="cls")
    transformer_checkpoint(cvocab, OUT / "tiny_laser3_maxpool.pt", variant="maxpool")

    from laser_encoders.laser_tokenizer import LaserTokenizer

    tok = LaserTokenizer(spm_model=spm_path)
    ref: dict[str, Any] = {
        "sentences": SENTENCES,
        "pieces": [tok.tokenize(s) for s in SENTENCES],
        "models": {},
        "versions": {
            "laser_encoders": getattr(laser_encoders, "__version__", None) or _dist("laser_encoders"),
            "fairseq": fairseq.__version__, "sacremoses": _dist("sacremoses"),
            "unicategories": _dist("unicategories"), "sentencepiece": sentencepiece.__version__,
            "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "unicodedata": __import__("unicodedata").unidata_version,
        },
        "spm_pieces": sp.get_piece_size(),
    }
    arrays: dict[str, Any] = {}
    for name, arch, limit in (("tiny_laser2", "lstm", None), ("tiny_laser3", "transformer", 40),
                              ("tiny_laser3_maxpool", "transformer", 40)):
        ids, cut, emb, full = run_reference(OUT / f"{name}.pt", spm_path, cvocab, limit)
        ref["models"][name] = {"file": f"{name}.pt", "arch": arch, "dim": int(emb.shape[1]),
                               "max_positions": limit, "ids": ids, "cut": cut,
                               "full": sorted(full)}
        arrays[name] = emb
        for i, vec in full.items():
            arrays[f"{name}_full_{i}"] = vec.astype(np.float32)
    (OUT / "reference.json").write_text(json.dumps(ref, ensure_ascii=False, indent=1) + "\n",
                                        encoding="utf-8")
    np.savez(OUT / "reference.npz", **arrays)
    for name in sorted(OUT.iterdir()):
        print(f"{name.stat().st_size:>8}  {name.name}")
    print("python", sys.version.split()[0], "| torch", torch.__version__, "| sacremoses",
          sacremoses.__name__, ref["versions"]["sacremoses"])


def _dist(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
