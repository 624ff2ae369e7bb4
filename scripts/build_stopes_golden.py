#!/usr/bin/env python3
"""Build tests/data/stopes_golden/: inputs, and what stopes' own mining code makes of them.

The inputs (``inputs/``): 400 French-side and 400 English-side text lines in two shards per
side (``{lang}.000.txt``, ``{lang}.001.txt``), a meta file per shard (``{lang}.00N.meta``,
one line per text line) and the embeddings, one ``.npy`` per shard (float32, 64-d,
L2-normalised, row = line). The space is clustered so that margins spread around stopes'
window [1.04, 1.25]: 25 cluster centres, each row a centre plus noise of a per-cluster
spread; 300 source rows have a planted target (the source vector plus noise of a per-pair
level, some so close that the score passes ``score_max``), the other rows have none. Some
lines are exact duplicates of another line of the same side (same text, an embedding a hair
apart, as a batched encoder gives); some hold tabs, double quotes, ``+``, trailing spaces
and non-ASCII letters; some meta lines hold tabs and quotes (csv quoting).

stopes (``pip install stopes==2.2.1``: its mining modules are byte-identical to
facebookresearch/stopes a4e75e8, the reference copy in shared/reference/stopes) is run as
its global mining pipeline runs it, module by module, through ``StopesModule.build`` on its
own config groups (``stopes/pipelines/bitext/conf``) with the keys ``global_mining.yaml``
and the pipeline set:

* ``train_index`` (index_factory on the first shard, as with ``sample_shards: false``),
  ``populate_index`` (one populated index per shard, L2-normalised rows), ``merge_indexes``
  (when a side has more than one shard), all on CPU;
* ``calculate_distances`` per query shard (knn 16, ``save_dists_as_fp16: True``, the
  queries L2-normalised), writing ``.dist.npy`` (float16) and ``.idx.npy`` (uint32);
* ``mine_indexes`` (``mine()``: ratio margin, mean, k_extract 1, union, sort_neighbors false,
  mine_threshold 1.04) writing its ``.align.npz`` with ``np.savez``;
* ``mine_sentences`` (``Alignments.from_npz(…, 1.04, 1.25)`` and ``save_texts(…,
  dedup_bitexts=True)``) writing ``bitext``/``bimeta`` (gzip; kept decompressed here).

Two cases:

* ``flat/``: each side as one shard (the two shard files concatenated: stopes' pipeline
  refuses a ``Flat`` index over several shards) searched with ``Flat`` (``IndexFlatL2``,
  exhaustive), as stopes picks for fewer than 10,000 sentences;
* ``sharded/``: the two shards per side, each side's index ``IVF1,Flat`` (what stopes'
  pipeline asks for with several shards; one list and ``num_probe`` 128: still exhaustive),
  trained, populated per shard and merged with ``faiss.merge_into`` as stopes does.

Two shims, neither in the computation: ``stopes.eval.auto_pcp.audio_comparator`` (imported
at module level by ``mine_bitext_indexes_utils`` for blended retrieval, which needs aux
embeddings and is not used here) needs librosa/torchaudio: a stub module with its two names
takes its place; and Python 3.11 refuses the unhashable dataclass default of the
``requirements`` field of stopes' mine_indexes/mine_sentences configs (stopes targets
3.8-3.10): ``Requirements`` gets ``object.__hash__`` so that check passes. stopes 2.2.1 also
uses ``np.lib.format._check_version``, gone in numpy 2: the venv has numpy 1.26.

Environment (not speechmine's venv: stopes pins its own hydra/omegaconf)::

    python3 -m venv /tmp/stopes-venv && . /tmp/stopes-venv/bin/activate
    pip install stopes==2.2.1 'numpy<2' faiss-cpu scipy scikit-learn torch requests \\
        sentencepiece fairscale
    python scripts/build_stopes_golden.py   # rewrites tests/data/stopes_golden
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import json
import logging
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "stopes_golden"
SRC, TGT = "fr", "en"
N_SRC, N_TGT, DIM, N_CLUSTERS, N_PLANTED = 400, 400, 64, 25, 300
SPLIT = {SRC: 170, TGT: 230}  # rows in shard 000 (the rest in 001)
THRESHOLD, SCORE_MAX, KNN = 1.04, 1.25, 16
SEED = 20240611


# ------------------------------------------------------------------------------ the data


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


SRC_WORDS = ("le chat dort sur la table la maison est grande il pleut encore ce matin nous "
             "allons à la plage demain élève écrit une lettre à sa grand-mère").split()
TGT_WORDS = ("the cat sleeps on the table the house is big it is raining again this morning "
             "we are going to the beach tomorrow pupil writes a letter to his grandmother").split()


def _sentence(rng: np.random.Generator, words: list[str], i: int, lang: str) -> str:
    n = int(rng.integers(3, 9))
    body = " ".join(rng.choice(words, size=n).tolist())
    return f"{body} {lang}{i}"


def make_data(rng: np.random.Generator) -> dict[str, dict[str, list]]:
    """Texts, metas and embeddings of both sides (see module doc)."""
    centres = _unit(rng.standard_normal((N_CLUSTERS, DIM)))
    spread = rng.uniform(0.3, 0.9, N_CLUSTERS)

    def member(c: int) -> np.ndarray:
        return centres[c] + spread[c] * rng.standard_normal(DIM) / np.sqrt(DIM)

    src_cluster = rng.integers(0, N_CLUSTERS, N_SRC)
    src_emb = _unit(np.stack([member(c) for c in src_cluster]))
    # planted pairs: src row p[j] ↔ tgt row q[j]; noise from a hair to well apart
    planted_src = rng.permutation(N_SRC)[:N_PLANTED]
    planted_tgt = rng.permutation(N_TGT)[:N_PLANTED]
    noise = np.concatenate([rng.uniform(0.01, 0.08, 40), rng.uniform(0.08, 0.9, N_PLANTED - 40)])
    rng.shuffle(noise)
    tgt_emb = np.empty((N_TGT, DIM), np.float32)
    free = np.setdiff1d(np.arange(N_TGT), planted_tgt)
    tgt_emb[free] = _unit(np.stack([member(c) for c in rng.integers(0, N_CLUSTERS, len(free))]))
    tgt_emb[planted_tgt] = _unit(src_emb[planted_src]
                                 + noise[:, None] * rng.standard_normal((N_PLANTED, DIM))
                                 / np.sqrt(DIM))
    src_text = [_sentence(rng, SRC_WORDS, i, "f") for i in range(N_SRC)]
    tgt_text = [_sentence(rng, TGT_WORDS, i, "e") for i in range(N_TGT)]
    partner = dict(zip(planted_src.tolist(), planted_tgt.tolist()))
    # planted partners translate each other: give them a shared tag, so a reader can see them
    for s, t in partner.items():
        src_text[s] = src_text[s].rsplit(" ", 1)[0] + f" #{s}"
        tgt_text[t] = tgt_text[t].rsplit(" ", 1)[0] + f" #{s}"
    # csv quoting, "+" (stopes' dedup key joins texts with "+"), trailing space, non-ASCII
    specials = {
        SRC: ['il a dit "bonjour" #{}', "colonne\tune\tdeux #{}", 'guillemet " seul #{}',
              "a+b plus c #{}", "fin avec espace #{} ", "déjà-vu ça où #{}",
              '"entre guillemets"\tet tab #{}'],
        TGT: ['he said "hello" #{}', "column\tone\ttwo #{}", 'lone " quote #{}',
              "a+b plus c #{}", "ends with space #{} ", "déjà vu naïve #{}",
              '"quoted"\tand tab #{}'],
    }
    # the special lines go to planted pairs that land inside the window: their margin as
    # estimated here (exact cosines; stopes' float16 rounding moves it by ~1e-4) in
    # [1.08, 1.2], each the nearest neighbour of the other
    sims = src_emb @ tgt_emb.T
    mean_x = np.sort(sims, axis=1)[:, -KNN:].mean(axis=1)
    mean_y = np.sort(sims, axis=0)[-KNN:, :].mean(axis=0)
    inside = [(s, t) for s, t in sorted(partner.items())
              if 1.08 <= sims[s, t] / ((mean_x[s] + mean_y[t]) / 2) <= 1.2
              and sims[s].argmax() == t and sims[:, t].argmax() == s]
    n_special = len(specials[SRC])
    assert len(inside) >= n_special + 10
    for (s, t), src_line, tgt_line in zip(inside, specials[SRC], specials[TGT]):
        src_text[s] = src_line.format(s)
        tgt_text[t] = tgt_line.format(s)
    # exact duplicate lines: a line copied onto another row of the same side (a planted row,
    # or one without a partner), its embedding a hair apart (as a batched encoder gives)
    rest = inside[n_special:]
    lonely = [i for i in range(N_SRC) if i not in partner]
    for a, b in ((rest[0][0], rest[1][0]), (rest[2][0], rest[3][0]), (rest[4][0], lonely[0])):
        src_text[b] = src_text[a]
        src_emb[b] = _unit(src_emb[a] + 1e-3 * rng.standard_normal(DIM))
    for a, b in ((rest[5][1], rest[6][1]), (rest[7][1], free[0])):
        tgt_text[b] = tgt_text[a]
        tgt_emb[b] = _unit(tgt_emb[a] + 1e-3 * rng.standard_normal(DIM))
    src_meta = [f"src-doc-{i // 7}\tline {i}" if i % 50 == 3 else
                (f'src-doc-{i // 7} "q{i}"' if i % 50 == 4 else f"src-doc-{i // 7}:{i}")
                for i in range(N_SRC)]
    tgt_meta = [f"tgt-doc-{i // 5}\tline {i}" if i % 40 == 3 else
                (f'tgt-doc-{i // 5} "q{i}"' if i % 40 == 4 else f"tgt-doc-{i // 5}:{i}")
                for i in range(N_TGT)]
    for texts in (src_text, tgt_text):
        assert all(t.strip() and "\n" not in t and "\r" not in t for t in texts)
    return {SRC: {"text": src_text, "meta": src_meta, "emb": list(src_emb)},
            TGT: {"text": tgt_text, "meta": tgt_meta, "emb": list(tgt_emb)}}


def write_inputs(data: dict[str, dict[str, list]], folder: Path, split: bool) -> None:
    """Per side: ``{lang}.00N.txt``, ``.meta``, ``.npy`` (two shards, or one when not split)."""
    folder.mkdir(parents=True, exist_ok=True)
    for lang, d in data.items():
        n = len(d["text"])
        bounds = [(0, SPLIT[lang]), (SPLIT[lang], n)] if split else [(0, n)]
        for s, (lo, hi) in enumerate(bounds):
            stem = folder / f"{lang}.{s:03d}"
            for kind, ext in (("text", "txt"), ("meta", "meta")):
                with open(f"{stem}.{ext}", "w", encoding="utf-8", newline="\n") as fh:
                    fh.writelines(line + "\n" for line in d[kind][lo:hi])
            np.save(f"{stem}.npy", np.stack(d["emb"][lo:hi]).astype(np.float32))


# ------------------------------------------------------------------------------ stopes


def import_stopes() -> types.ModuleType:
    """stopes, with the one stand-in described in the module doc."""
    stub = types.ModuleType("stopes.eval.auto_pcp.audio_comparator")

    class Comparator:  # blended retrieval only (aux embeddings): never called here
        @classmethod
        def load(cls, *_a: object, **_k: object) -> None:
            raise NotImplementedError("stub: blended retrieval is not used")

    def get_model_pred(*_a: object, **_k: object) -> None:
        raise NotImplementedError("stub: blended retrieval is not used")

    stub.Comparator = Comparator  # type: ignore[attr-defined]
    stub.get_model_pred = get_model_pred  # type: ignore[attr-defined]
    sys.modules[stub.__name__] = stub
    import stopes
    from stopes.core.stopes_module import Requirements

    # Python 3.11 refuses an unhashable dataclass instance as a field default, which the
    # mine_indexes / mine_sentences configs use (``requirements: Requirements =
    # field(default=Requirements(...))``; stopes was written for 3.8-3.10): the check is
    # let through, nothing else changes
    Requirements.__hash__ = object.__hash__
    return stopes


def run_stopes(inputs: Path, work: Path, index_type: str) -> dict[str, Path]:
    """stopes' modules on ``inputs`` (see module doc); returns its output files."""
    import faiss
    from omegaconf import OmegaConf
    from stopes.core.stopes_module import StopesModule
    from stopes.modules.bitext.mining.calculate_distances import DistanceType
    from stopes.utils.mining_utils import extract_shard_id

    conf = Path(str(sys.modules["stopes"].__file__)).parent / "pipelines" / "bitext" / "conf"
    data = OmegaConf.create({"data_version": "golden", "iteration": 1, "bname": "golden",
                             "shard_glob": str(inputs / "{lang}.*.txt")})

    def group(name: str, **config: object) -> Any:
        # the group's YAML, with the keys global_mining.yaml sets, then the pipeline's
        node = OmegaConf.load(conf / name)
        node.config = OmegaConf.merge(node.config, config)
        return node

    sides: dict[str, dict[str, Any]] = {}
    for lang in (SRC, TGT):
        shards = sorted(map(str, inputs.glob(f"{lang}.*.txt")), key=extract_shard_id)
        emb = sorted(map(str, inputs.glob(f"{lang}.*.npy")), key=extract_shard_id)
        metas = sorted(map(str, inputs.glob(f"{lang}.*.meta")), key=extract_shard_id)
        assert not (index_type == "Flat" and len(shards) > 1), "stopes refuses this"
        trained = StopesModule.build(group(
            "train_index/train_faiss.yaml", lang=lang, index_type=index_type,
            embedding_file=emb[0], data=data, output_dir=str(work / "index"),
            embedding_dimensions=DIM, use_gpu=False, fp16=False))()
        populate = group(
            "populate_index/populate_faiss.yaml", lang=lang, index=str(trained),
            index_type=index_type, embedding_files=emb, data=data,
            output_dir=str(work / "index"), embedding_dimensions=DIM, use_gpu=False)
        # an array module: the launcher runs each shard in a job of its own, on a fresh copy
        # of the module (its checkpoint state is per job)
        populated = [str(StopesModule.build(populate)(e, i)) for i, e in enumerate(emb)]
        if len(populated) == 1:
            merged = populated[0]
        else:
            merged = str(StopesModule.build(group(
                "merge_indexes/merge_faiss.yaml", lang=lang, index_type=index_type,
                indexes=sorted(populated, key=extract_shard_id), data=data,
                expected_line_count=sum(len(np.load(e, mmap_mode="r")) for e in emb),
                output_dir=str(work / "index")))())
        assert faiss.read_index(merged).ntotal == sum(len(np.load(e)) for e in emb)
        sides[lang] = {"shards": shards, "emb": emb, "metas": metas, "index": merged}

    dist: dict[Any, list[tuple[Path, Path]]] = {}
    for lang, other, kind in ((SRC, TGT, DistanceType.src2tgt), (TGT, SRC, DistanceType.tgt2src)):
        module = StopesModule.build(group(
            "calculate_distances/base.yaml", lang=lang, other_lang=other, distance_type=kind,
            lang_embeddings=sides[lang]["emb"], index_other_lang=sides[other]["index"],
            index_other_lang_type=index_type, output_dir=str(work / f"mine.{data.data_version}"),
            embedding_dimensions=DIM, gpu_type=""))
        dist[kind] = [copy.deepcopy(module)(e, i) for i, e in enumerate(sides[lang]["emb"])]
    # global_mining.yaml: mine_indexes/mine_sentences mine_threshold: ${mine_threshold}
    out_dir = str(work / f"mine.{data.data_version}")
    align = StopesModule.build(group(
        "mine_indexes/base.yaml", src_lang=SRC, tgt_lang=TGT, output_dir=out_dir,
        mine_threshold=THRESHOLD, index_type=index_type,
        src2tgt_dist_files=[str(d) for d, _ in dist[DistanceType.src2tgt]],
        src2tgt_index_files=[str(i) for _, i in dist[DistanceType.src2tgt]],
        tgt2src_dist_files=[str(d) for d, _ in dist[DistanceType.tgt2src]],
        tgt2src_index_files=[str(i) for _, i in dist[DistanceType.tgt2src]]))()
    bitext, bimeta = StopesModule.build(group(
        "mine_sentences/base.yaml", src_lang=SRC, tgt_lang=TGT, output_dir=out_dir,
        mine_threshold=THRESHOLD, data=data, alignment_file=str(align),
        src_text_files=sides[SRC]["shards"], src_meta_files=sides[SRC]["metas"],
        tgt_text_files=sides[TGT]["shards"], tgt_meta_files=sides[TGT]["metas"]))()
    for d, i in dist[DistanceType.src2tgt] + dist[DistanceType.tgt2src]:
        assert np.load(d).dtype == np.float16 and np.load(i).dtype == np.uint32
    return {"align": Path(align), "bitext": Path(bitext), "bimeta": Path(bimeta)}


def save_case(files: dict[str, Path], dst: Path, knn: bool) -> dict[str, Any]:
    """stopes' outputs into ``dst`` (bitext/bimeta decompressed, under the names stopes gave
    them less ``.gz``) and a summary; ``knn``: calculate_distances' files too."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(files["align"], dst / files["align"].name)
    if knn:
        for f in sorted(files["align"].parent.glob("*.npy")):
            shutil.copyfile(f, dst / f.name)
    for kind in ("bitext", "bimeta"):
        name = files[kind].name.removesuffix(".gz")
        with gzip.open(files[kind], "rb") as fh:
            (dst / name).write_bytes(fh.read())
    with np.load(files["align"]) as z:
        scores, bwd = z["scores"], z["bwd_pos"]
        summary: dict[str, Any] = {"align_file": files["align"].name, "bitext_file": files["bitext"].name,
                   "bimeta_file": files["bimeta"].name, "align_rows": int(len(scores)),
                   "align_bwd_rows": int(len(bwd)),
                   "align_score_range": [float(scores.min()), float(scores.max())],
                   "align_rows_in_window": int(((scores >= THRESHOLD)
                                                & (scores <= SCORE_MAX)).sum())}
    with gzip.open(files["bitext"], "rt", encoding="utf-8", newline="") as fh:
        summary["bitext_rows"] = fh.read().count("\r\n")
    return summary


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    stopes = import_stopes()
    from importlib.metadata import version

    import faiss

    data = make_data(np.random.default_rng(SEED))
    out: Path = args.out
    if (out / "inputs").exists():
        shutil.rmtree(out / "inputs")
    write_inputs(data, out / "inputs", split=True)
    cases: dict[str, dict[str, Any]] = {}
    provenance: dict[str, Any] = {
        "stopes": version("stopes"), "faiss": faiss.__version__, "numpy": np.__version__,
        "python": sys.version.split()[0], "seed": SEED, "threshold": THRESHOLD,
        "score_max": SCORE_MAX, "knn": KNN, "cases": cases}
    with tempfile.TemporaryDirectory() as tmp:
        single = Path(tmp) / "single"
        write_inputs(data, single, split=False)
        for case, inputs, index_type in (("flat", single, "Flat"),
                                         ("sharded", out / "inputs", "IVF1,Flat")):
            work = Path(tmp) / case
            files = run_stopes(inputs, work, index_type)
            if (out / case).exists():
                shutil.rmtree(out / case)
            summary = save_case(files, out / case, knn=case == "flat")
            summary["index_type"] = index_type
            summary["files"] = {p.name: sha(p) for p in sorted((out / case).iterdir())}
            cases[case] = summary
    # both searches are exhaustive: stopes mines the same pairs, scores and rows in both
    for kind in ("bitext", "bimeta"):
        a, b = (cases[c]["files"][cases[c][f"{kind}_file"].removesuffix(".gz")]
                for c in ("flat", "sharded"))
        assert a == b, f"stopes' {kind} differs between the flat and sharded cases"
    with np.load(out / "flat" / cases["flat"]["align_file"]) as a, \
            np.load(out / "sharded" / cases["sharded"]["align_file"]) as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files), "the align files differ"
    provenance["inputs"] = {p.name: sha(p) for p in sorted((out / "inputs").iterdir())}
    (out / "provenance.json").write_text(json.dumps(provenance, indent=1, ensure_ascii=False)
                                         + "\n")
    print(json.dumps(provenance["cases"], indent=1))
    del stopes


if __name__ == "__main__":
    main()
