"""Config loading: stopes presets as they are, clear errors (key + file), fingerprints."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import SONAR_DATA

from speechmine.config import ConfigError, load_config
from speechmine.config.model import IndexConfig

# --------------------------------------------------------------------------- stopes presets

#: shaped like stopes conf/global_mining.yaml + preset/demo.yaml (LASER3 text mining)
STOPES_DEMO = """\
launcher:
  cluster: local
  partition: null
  cache:
    caching_dir: /tmp/global_mining_cache
demo_dir: ???
output_dir: ${demo_dir}/mined
model_dir: ${demo_dir}/models
vocab_dir: ${demo_dir}/models
src_lang: en
tgt_lang: fr
populate_index:
  config:
    use_gpu: False
train_index:
  config:
    use_gpu: False
calculate_distances:
  config:
    gpu_memory_gb: 32
mine_indexes:
  config:
    knn_dist: 16
    k_extract: 1
    margin: ratio
    margin_norm: mean
    num_probe: 128
    gpu_type: fp16-shard
data:
  data_version: V32m
  iteration: 1
  data_shard_dir: ${demo_dir}
  shard_type: text
  bname: demo_wmt22
  shard_glob: ${.data_shard_dir}/{lang}.gz
  nl_file_template: "{lang}.nl"
embed_text:
  encoder:
    _target_: toy
default_spm: ${model_dir}/laser2.spm
lang_configs:
  en:
    encoder_model: ${model_dir}/laser3-en.v1.pt
    spm_model: ${default_spm}
    data:
      bname: english
  fr:
    data:
      data_version: V33
      iteration: 2
"""

#: shaped like stopes conf/preset/demo_speechmine.yaml (French speech vs French text, SONAR)
STOPES_SPEECHMINE = """\
launcher:
  cluster: local
  partition: null
  cache:
    caching_dir: /tmp/global_mining_cache
demo_text_dir: ???
demo_audio_dir: ???
output_dir: .
src_lang: frA
tgt_lang: fr
model_dir: ${demo_dir}/models/wmt22
embedding_sample:
  sample_shards: False
calculate_distances:
  config:
    gpu_memory_gb: 32
    gpu_type: ""
data:
  data_version: V32m
  iteration: 1
  data_shard_dir: ${demo_dir}
  shard_type: text
  bname: demo_wmt22
  shard_glob: ${.data_shard_dir}/{lang}.gz
  nl_file_template: "{lang}.nl"
lang_configs:
  frA:
    data:
      data_version: 23H1RCLSP
      iteration: 1
      data_shard_dir: ${demo_audio_dir}
      shard_type: speech
      bname: speech
      shard_list: null
      shard_glob: ${.data_shard_dir}/speech/*.ogg
      nl_file_template: "{lang}.nl"
    embed_speech:
      preprocess: null
      encoder:
        _target_: stopes.modules.preprocess.mining_speech_encoder.Sonar2MiningSpeechEncoder
        encoder_model: sonar_speech_encoder_fra
        _name: sonar2_speech_encoder
        spm_model: null
        spm_vocab: null
        mini_batch_size: null
        fp16: true
        gpu: true
        num_processes: 4
  fr:
    data:
      data_version: 23H1RCL
      iteration: 1
      data_shard_dir: ${demo_text_dir}
      shard_type: text
      bname: text
      shard_list: null
      shard_glob: ${.data_shard_dir}/{lang}.gz
      nl_file_template: "{lang}.nl"
    embed_text:
      encoder:
        _target_: stopes.modules.preprocess.sonar_sentence_encoder.SonarTextEncoder
        _name: text_sonar_basic_encoder
        spm_model: null
        spm_vocab: null
"""


def _write(tmp_path: Path, text: str, name: str = "preset.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_stopes_demo_preset_needs_demo_dir(tmp_path: Path) -> None:
    p = _write(tmp_path, STOPES_DEMO)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert "demo_dir=..." in msg
    assert str(p) in msg


def test_stopes_demo_preset_loads(tmp_path: Path) -> None:
    p = _write(tmp_path, STOPES_DEMO)
    cfg = load_config(p, [f"demo_dir={tmp_path}"])
    # ??? filled from the command line, ${demo_dir} and relative ${.data_shard_dir} resolved
    assert cfg.output_dir == f"{tmp_path}/mined"
    for side in (cfg.src, cfg.tgt):
        assert side.data.data_shard_dir == str(tmp_path)
        assert side.data.shard_glob == f"{tmp_path}/{{lang}}.gz"
        assert side.data.nl_file_template == "{lang}.nl"
        assert side.data.shard_type == "text"
        assert side.encoder.name == "toy"
        assert side.modality == "text"
    # lang_configs entries deep-merge over the shared data block: only the keys they set
    assert (cfg.src.name, cfg.src.lang, cfg.tgt.name, cfg.tgt.lang) == ("en", "en", "fr", "fr")
    assert cfg.src.data.bname == "english"
    assert (cfg.src.data.data_version, cfg.src.data.iteration) == ("V32m", 1)
    assert cfg.tgt.data.bname == "demo_wmt22"
    assert (cfg.tgt.data.data_version, cfg.tgt.data.iteration) == ("V33", 2)
    # stopes mine_indexes.config → MineConfig / IndexConfig
    assert cfg.mine.k == 16  # knn_dist
    assert cfg.mine.candidate == "nearest"  # k_extract: 1
    assert cfg.mine.margin == "ratio" and cfg.mine.margin_norm == "mean"
    # its calculate_distances leaves num_probe out: stopes' default, not speechmine's (256)
    assert cfg.index.nprobe == 128 != IndexConfig().nprobe
    assert cfg.index.train_sample_size == 200_000  # no embedding_sample.sample_sz: ours
    assert cfg.launcher.cluster == "local" and cfg.launcher.partition is None
    # GPU and stopes-only settings are accepted and reported, not silently dropped
    ignored = " ".join(cfg.ignored)
    assert (cfg.output.num_probe, cfg.output.gpu_type) == (128, "fp16-shard")  # align name
    for key in ("calculate_distances.config.gpu_memory_gb", "launcher.cache",
                "model_dir", "vocab_dir", "train_index", "populate_index", "default_spm"):
        assert key in ignored, key


def test_required_key_left_as_question_marks_asks_for_it(tmp_path: Path) -> None:
    text = STOPES_DEMO.replace("output_dir: ${demo_dir}/mined", "output_dir: ???")
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text), [f"demo_dir={tmp_path}"])
    assert "required on the command line: output_dir=..." in str(exc.value)
    cfg = load_config(_write(tmp_path, text), [f"demo_dir={tmp_path}", "output_dir=/x/out"])
    assert cfg.output_dir == "/x/out"


def test_mine_indexes_stopes_keys_map_or_are_refused(tmp_path: Path) -> None:
    # k_extract is how many pairs stopes extracts per query: speechmine takes one
    text = STOPES_DEMO.replace("k_extract: 1", "k_extract: 4")
    with pytest.raises(ConfigError, match="mine_indexes.config.k_extract"):
        load_config(_write(tmp_path, text), [f"demo_dir={tmp_path}"])
    # stopes' k is calculate_distances.config.knn (knn_dist is read by nothing); best-of-k is
    # sort_neighbors; mine_type picks the directions; src_k/tgt_k count only with
    # margin_norm: last; calculate_distances.num_probe is the IVF probes
    text = STOPES_DEMO.replace("knn_dist: 16", "knn_dist: 8\n    sort_neighbors: true\n"
                               "    mine_type: forward\n    src_k: 6\n    tgt_k: 6")
    text = text.replace("gpu_memory_gb: 32", "gpu_memory_gb: 32\n    num_probe: 64\n"
                        "    knn: 12")
    cfg = load_config(_write(tmp_path, text, "b.yaml"), [f"demo_dir={tmp_path}"])
    assert (cfg.mine.k, cfg.mine.k_mean, cfg.mine.candidate, cfg.mine.retrieval,
            cfg.mine.dedup) == (12, None, "best", "fwd", False)
    assert any("knn_dist" in i for i in cfg.ignored) and any("src_k" in i for i in cfg.ignored)
    assert cfg.index.nprobe == 64
    text = text.replace("margin_norm: mean", "margin_norm: last")
    last = load_config(_write(tmp_path, text, "l.yaml"), [f"demo_dir={tmp_path}"])
    assert (last.mine.margin_norm, last.mine.k_mean) == ("last", 6)
    with pytest.raises(ConfigError, match="src_k"):
        load_config(_write(tmp_path, text.replace("tgt_k: 6", "tgt_k: 4"), "c.yaml"),
                    [f"demo_dir={tmp_path}"])


def test_a_partial_mine_indexes_block_fills_the_rest_from_stopes_defaults(tmp_path: Path
                                                                         ) -> None:
    """stopes' own global_mining.yaml sets only a few mine_indexes keys: the others are
    stopes' defaults (k 16, nearest, union, mean), not speechmine's (4, best, max)."""
    text = STOPES_DEMO.replace("    knn_dist: 16\n    k_extract: 1\n    margin: ratio\n"
                               "    margin_norm: mean\n", "    mine_threshold: 1.05\n")
    assert "knn_dist" not in text
    cfg = load_config(_write(tmp_path, text, "p.yaml"), [f"demo_dir={tmp_path}"])
    assert (cfg.mine.k, cfg.mine.candidate, cfg.mine.retrieval, cfg.mine.margin_norm,
            cfg.mine.dedup, cfg.mine.dedup_texts, cfg.mine.max_score) == \
        (16, "nearest", "union", "mean", False, True, 1.25)
    assert cfg.output.layout == "stopes"


def test_stopes_speechmine_preset_loads(tmp_path: Path) -> None:
    p = _write(tmp_path, STOPES_SPEECHMINE)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "demo_audio_dir=..." in str(exc.value) and "demo_text_dir=..." in str(exc.value)
    cfg = load_config(p, ["demo_text_dir=/nowhere/text", "demo_audio_dir=/nowhere/audio"],
                      check_files=False)
    src, tgt = cfg.src, cfg.tgt
    assert (src.name, src.lang, src.modality) == ("frA", "fr", "speech")
    assert (tgt.name, tgt.lang, tgt.modality) == ("fr", "fr", "text")
    # relative interpolation inside each lang_configs entry sees that entry's data_shard_dir
    assert src.data.shard_glob == "/nowhere/audio/speech/*.ogg"
    assert tgt.data.shard_glob == "/nowhere/text/{lang}.gz"
    assert src.data.bname == "speech" and tgt.data.bname == "text"
    # stopes class paths map onto the SONAR encoders
    assert src.encoder.name == "sonar_speech"
    assert tgt.encoder.name == "sonar_text"
    assert src.encoder.options["encoder_model"] == "sonar_speech_encoder_fra"
    assert src.encoder.options["fp16"] is True and src.encoder.options["gpu"] is True
    assert "batch_size" not in src.encoder.options  # mini_batch_size: null → default
    # the stopes `_name` reaches the encoder as a keyword that create() does not itself take
    assert "name" not in src.encoder.options and "name" not in tgt.encoder.options
    assert tgt.encoder.options["_name"] == "text_sonar_basic_encoder"
    ignored = " ".join(cfg.ignored)
    assert "calculate_distances" in ignored  # gpu_memory_gb / gpu_type
    assert "embedding_sample" in ignored and "launcher.cache" in ignored


def test_stopes_speechmine_preset_with_missing_dirs_is_a_config_error(tmp_path: Path) -> None:
    p = _write(tmp_path, STOPES_SPEECHMINE)
    with pytest.raises(ConfigError, match=r"data_shard_dir.*not a directory"):
        load_config(p, ["demo_text_dir=/nowhere/text", "demo_audio_dir=/nowhere/audio"])


def test_sonar_text_stopes_name_reaches_the_encoder(tmp_path: Path) -> None:
    """stopes' SonarTextEncoder names its model with `_name`; create() must not choke on it."""
    pytest.importorskip("torch")
    pytest.importorskip("sentencepiece")
    from speechmine import encoders

    data = SONAR_DATA
    text = STOPES_SPEECHMINE.replace("_name: text_sonar_basic_encoder",
                                     f"_name: {data / 'tiny_text_encoder.pt'}")
    cfg = load_config(_write(tmp_path, text), ["demo_text_dir=/a", "demo_audio_dir=/b"],
                      check_files=False)
    enc = encoders.create(cfg.tgt.encoder.name, lang=cfg.tgt.lang, **cfg.tgt.encoder.options,
                          tokenizer=str(data / "tiny_spm.model"),
                          lang_table=["eng_Latn", "fra_Latn", "deu_Latn"])
    assert enc.dim == 32
    assert enc.encode(["Bonjour."]).shape == (1, 32)


def test_sonar_speech_accepts_stopes_spm_model_null(tmp_path: Path) -> None:
    """The options the config hands over (spm_model: null included) build the encoder."""
    pytest.importorskip("torch")
    from speechmine import encoders

    tiny = SONAR_DATA / "tiny_speech_encoder.pt"
    text = STOPES_SPEECHMINE.replace("encoder_model: sonar_speech_encoder_fra",
                                     f"encoder_model: {tiny}")
    cfg = load_config(_write(tmp_path, text), ["demo_text_dir=/a", "demo_audio_dir=/b"],
                      check_files=False)
    enc = encoders.create(cfg.src.encoder.name, lang=cfg.src.lang, **cfg.src.encoder.options)
    assert enc.dim == 32


def test_shared_relative_glob_follows_per_language_shard_dir(tmp_path: Path) -> None:
    text = STOPES_DEMO.replace("      data_version: V33\n",
                               "      data_version: V33\n      data_shard_dir: /other\n")
    cfg = load_config(_write(tmp_path, text), [f"demo_dir={tmp_path}"], check_files=False)
    assert cfg.tgt.data.data_shard_dir == "/other"
    assert cfg.tgt.data.shard_glob == "/other/{lang}.gz"


# --------------------------------------------------------------------------- mine presets


@pytest.fixture()
def shard_dir(tmp_path: Path) -> Path:
    d = tmp_path / "shards"
    d.mkdir()
    return d


def _base(shard_dir: Path, out: Path) -> dict[str, Any]:
    return {
        "src_lang": "en", "tgt_lang": "fr", "output_dir": str(out),
        "data": {"data_shard_dir": str(shard_dir), "shard_glob": "${.data_shard_dir}/{lang}.txt"},
        "embed_text": {"encoder": {"_target_": "toy"}},
        "lang_configs": {"en": {}, "fr": {}},
    }


def _load(tmp_path: Path, cfg: dict[str, Any], overrides: list[str] | None = None):
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return load_config(p, overrides or [])


# the rules as documented (config.MINE_PRESETS comments, docs/tuning.md)
LASER = dict(k=4, k_mean=None, margin="ratio", margin_norm="mean", candidate="best",
             retrieval="max", dedup=True)
STOPES = dict(k=16, k_mean=None, margin="ratio", margin_norm="mean", candidate="nearest",
              retrieval="union", dedup=False)


@pytest.mark.parametrize("preset,expected", [("laser", LASER), ("stopes", STOPES)])
def test_mine_presets(tmp_path: Path, shard_dir: Path, preset: str, expected: dict) -> None:
    cfg = _load(tmp_path, _base(shard_dir, tmp_path / "out"), [f"mine.preset={preset}"])
    got = {k: getattr(cfg.mine, k) for k in expected}
    assert got == expected
    # stopes' mine_threshold default (global_mining.yaml) comes with its rule
    assert cfg.mine.threshold == (1.04 if preset == "stopes" else 1.1)
    assert cfg.mine.unify is False


def test_mine_preset_then_explicit_override(tmp_path: Path, shard_dir: Path) -> None:
    cfg = _load(tmp_path, _base(shard_dir, tmp_path / "out"),
                ["mine.preset=stopes", "mine.k=8", "mine_threshold=1.05"])
    assert (cfg.mine.k, cfg.mine.retrieval, cfg.mine.threshold) == (8, "union", 1.05)
    assert cfg.threshold_tag() == "TH-1.05"


def test_unknown_mine_preset(tmp_path: Path, shard_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"mine\.preset.*laser.*stopes"):
        _load(tmp_path, _base(shard_dir, tmp_path / "out"), ["mine.preset=lasr"])


# --------------------------------------------------------------------------- errors


def _bad(tmp_path: Path, shard_dir: Path, change, overrides: list[str] | None = None) -> str:
    cfg = copy.deepcopy(_base(shard_dir, tmp_path / "out"))
    change(cfg)
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, cfg, overrides)
    msg = str(exc.value)
    if overrides:  # a key set on the command line is blamed on the command line
        assert any(f"command line ({ov})" in msg for ov in overrides), msg
    else:
        assert str(tmp_path / "cfg.yaml") in msg, msg  # the file is named
    return msg


def test_error_unknown_top_level_key(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: c.update(mine_treshold=1.2))
    assert "mine_treshold" in msg and "did you mean mine_threshold" in msg


def test_error_unknown_data_key(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: c["data"].update(shard_globb="x"))
    assert "data.shard_globb" in msg and "unknown key" in msg and "shard_glob" in msg


def test_error_wrong_type(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: c.update(mine={"k": "four"}))
    assert "mine.k" in msg and "integer" in msg and "four" in msg


def test_error_wrong_type_override(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: None, ["mine.k=four"])
    assert "mine.k" in msg and "four" in msg


def test_error_unknown_encoder_lists_known(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir,
               lambda c: c["embed_text"]["encoder"].update(_target_="laser9"))
    assert "embed_text.encoder._target_" in msg and "laser9" in msg
    for name in ("usem3", "toy", "sonar_text"):
        assert name in msg


def test_error_arbitrary_class_path_is_never_imported(tmp_path: Path, shard_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # a module that records its import: the config must refuse it without importing it
    mod_dir = tmp_path / "mods"
    mod_dir.mkdir()
    (mod_dir / "sm_evil_probe.py").write_text(
        "import os\nos.environ['SM_EVIL_PROBE'] = 'imported'\nclass Boom:\n    pass\n")
    monkeypatch.syspath_prepend(str(mod_dir))
    monkeypatch.delenv("SM_EVIL_PROBE", raising=False)
    msg = _bad(tmp_path, shard_dir,
               lambda c: c["embed_text"]["encoder"].update(_target_="sm_evil_probe.Boom"))
    assert "sm_evil_probe.Boom" in msg and "usem3" in msg
    assert "sm_evil_probe" not in sys.modules
    assert "SM_EVIL_PROBE" not in os.environ
    msg = _bad(tmp_path, shard_dir,
               lambda c: c["embed_text"]["encoder"].update(_target_="os.system"))
    assert "unknown encoder 'os.system'" in msg


def test_error_launcher_cluster(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: c.update(launcher={"cluster": "foo"}))
    assert "launcher.cluster" in msg and "foo" in msg and "local" in msg


def test_error_empty_threshold_window(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: c.update(mine_threshold=1.2,
                                                       mine={"max_score": 1.1}))
    assert "mine.max_score" in msg and "empty" in msg


def test_error_same_languages(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: c.update(tgt_lang="en"))
    assert "tgt_lang" in msg and "'en'" in msg


def test_error_missing_shard_dir(tmp_path: Path, shard_dir: Path) -> None:
    missing = tmp_path / "no-such-dir"
    msg = _bad(tmp_path, shard_dir, lambda c: c["data"].update(data_shard_dir=str(missing)))
    assert "data.data_shard_dir" in msg and str(missing) in msg


def test_error_bad_index_type(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: c.update(index_type="IVFbad,PQ"))
    assert "index_type" in msg and "IVFbad,PQ" in msg and "FAISS" in msg


@pytest.mark.parametrize("factory", ["OPQ64,IVF1024,PQ64", "IVF1024,PQ96", "OPQ48,IVF1024,PQ48",
                                     "PCA256,IVF1024,Flat", "HNSW32"])
def test_good_index_type(tmp_path: Path, shard_dir: Path, factory: str) -> None:
    """Valid for some width: accepted here, checked against the real width once known."""
    cfg = copy.deepcopy(_base(shard_dir, tmp_path / "out"))
    cfg["index_type"] = factory
    assert _load(tmp_path, cfg).index.type == factory


def test_error_index_type_checked_against_the_real_width_before_embedding(
        tmp_path: Path) -> None:
    from helpers import Corpus, make_config, sentences

    from speechmine.pipeline import run

    corpus = Corpus(tmp_path / "c", *sentences(20))
    cfg = make_config(tmp_path, corpus.dir, extra={"index_type": "IVF8,PQ7"})  # toy: 64-d
    with pytest.raises(ConfigError, match=r"index_type: 'IVF8,PQ7' cannot be built for 64-d"):
        run(cfg)
    assert not list((tmp_path / "out" / "work").glob("embed/*/DONE.json"))


@pytest.mark.parametrize("override,key", [
    ("launcher.timeout_min=abc", "launcher.timeout_min"),
    ("launcher.timeout_min=0", "launcher.timeout_min"),
    ("launcher.partition=[1]", "launcher.partition"),
    ("mine=laser", "mine"), ("index=5", "index"), ("cache.verify=mtime", "cache.verify"),
    ("cache=5", "cache"), ("work_dir=[1]", "work_dir"),
])
def test_error_wrong_value_names_the_key(tmp_path: Path, shard_dir: Path, override: str,
                                         key: str) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: None, [override])
    assert f": {key}: " in msg, msg
    if override == "mine=laser":
        assert "mine.preset=laser" in msg


def test_error_missing_required_key(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir, lambda c: c.pop("output_dir"))
    assert "output_dir" in msg


def test_error_unknown_encoder_option(tmp_path: Path, shard_dir: Path) -> None:
    msg = _bad(tmp_path, shard_dir,
               lambda c: c["embed_text"]["encoder"].update(frobnicate=3))
    assert "embed_text.encoder.frobnicate" in msg


def test_variable_used_through_interpolation_is_accepted(tmp_path: Path,
                                                         shard_dir: Path) -> None:
    cfg = copy.deepcopy(_base(shard_dir, tmp_path / "out"))
    cfg["my_root"] = str(shard_dir.parent)
    cfg["data"]["data_shard_dir"] = "${my_root}/shards"
    got = _load(tmp_path, cfg)
    assert got.src.data.data_shard_dir == str(shard_dir)
    assert got.src.data.shard_glob == f"{shard_dir}/{{lang}}.txt"
    # the same key, not used anywhere, is a typo
    cfg["data"]["data_shard_dir"] = str(shard_dir)
    with pytest.raises(ConfigError, match="my_root: unknown key"):
        _load(tmp_path, cfg)


def test_override_must_be_key_value(tmp_path: Path, shard_dir: Path) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        _load(tmp_path, _base(shard_dir, tmp_path / "out"), ["mine.k"])


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- fingerprint


def test_stopes_speech_preset_with_unresolvable_unused_values_loads(tmp_path: Path) -> None:
    """stopes' demo_speechmine.yaml points model_dir and the shared data block at a
    ${demo_dir} it never defines; both lang_configs replace the data block, so stopes never
    reads them: speechmine must not either."""
    audio = tmp_path / "audio"
    text = tmp_path / "text"
    (audio / "speech").mkdir(parents=True)
    text.mkdir()
    assert "${demo_dir}" in STOPES_SPEECHMINE and "\ndemo_dir:" not in STOPES_SPEECHMINE
    p = _write(tmp_path, STOPES_SPEECHMINE)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert "demo_audio_dir=..." in str(exc.value) and "demo_text_dir=..." in str(exc.value)
    assert "demo_dir=" not in str(exc.value)
    cfg = load_config(p, [f"demo_text_dir={text}", f"demo_audio_dir={audio}"])
    assert cfg.src.data.shard_glob == f"{audio}/speech/*.ogg"
    assert cfg.src.encoder.name == "sonar_speech"
    assert cfg.src.encoder.options["encoder_model"] == "sonar_speech_encoder_fra"
    assert cfg.src.segment is not None  # raw .ogg audio: segmented with VAD first
    assert cfg.tgt.data.shard_glob == f"{text}/{{lang}}.gz"
    assert cfg.tgt.encoder.name == "sonar_text" and cfg.tgt.lang == "fr"


def test_stopes_sample_sz_is_the_index_training_sample(tmp_path: Path) -> None:
    """stopes trains its index on ``embedding_sample.sample_sz`` rows; its other
    embedding_sample keys are reported; index.train_sample_size still wins."""
    text = STOPES_DEMO + ("embedding_sample:\n  sample_shards: false\n  max_num_workers: 40\n"
                          "  sample_sz: ${n_sample}\nn_sample: 40_000\n")
    cfg = load_config(_write(tmp_path, text), [f"demo_dir={tmp_path}"])
    assert cfg.index.train_sample_size == 40_000
    ignored = " ".join(cfg.ignored)
    assert "embedding_sample.sample_shards" in ignored
    assert "embedding_sample.max_num_workers" in ignored
    assert "embedding_sample.sample_sz" not in ignored
    own = load_config(_write(tmp_path, text, "o.yaml"),
                      [f"demo_dir={tmp_path}", "index.train_sample_size=5000"])
    assert own.index.train_sample_size == 5000
    with pytest.raises(ConfigError, match="train_sample_size"):
        load_config(_write(tmp_path, text.replace("n_sample: 40_000", "n_sample: 0"),
                           "z.yaml"), [f"demo_dir={tmp_path}"])
