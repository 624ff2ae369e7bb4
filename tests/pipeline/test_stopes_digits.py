"""stopes' digits end-to-end test (stopes/pipelines/tests/test_global_mining.py), ported.

The same data (numbers 0–999 as digit words, English in one shard, French in three, meta
files with the number), the same bit-vector encoder registered as a plug-in under stopes'
own ``_target_``, stopes' own ``global_mining.yaml`` and test config groups (vendored in
tests/data/stopes_conf) composed with the same overrides, and stopes' own assertions: every
true pair found, precision 1, exactly n rows, meta rows aligned with bitext rows. The case
that splits languages (``max_shard_size=500``) belongs to the corpus-scale issue.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DATA

from speechmine import encoders
from speechmine.config import load_config
from speechmine.pipeline import run

STOPES_CONF = DATA / "stopes_conf"
DIGIT_NAMES = {
    "en": "zero one two three four five six seven eight nine".split(),
    "fr": "zéro un deux trois quatre cinq six sept huit neuf".split(),
}
N = 1000


def create_digits(folder: Path, lang: str, n_min: int, n_max: int, suffix: str = "",
                  use_meta: bool = True) -> None:
    with open(folder / f"{lang}{suffix}_text.tsv", "w") as fh:
        for i in range(n_min, n_max):
            print(*(DIGIT_NAMES[lang][int(d)] for d in str(i)), sep=" ", file=fh)
    if use_meta:
        with open(folder / f"{lang}{suffix}_meta.tsv", "w") as fh:
            for i in range(n_min, n_max):
                print(i, file=fh)


def text2number(text: str) -> int:
    def digit(word: str) -> int:
        for words in DIGIT_NAMES.values():
            if word in words:
                return words.index(word)
        return 0

    return int("".join(str(digit(w)) for w in text.split()))


def digits2vec(text: str, dim: int = 1024) -> np.ndarray:
    """The bits of (number + 1), as stopes' ToyNumbersEncoder."""
    return np.asarray([int(b) for b in format(text2number(text) + 1, "b").zfill(dim)],
                      dtype=np.float32)


class ToyNumbersEncoder(encoders.Encoder):
    """stopes' test encoder as a speechmine plug-in (registered under its ``_target_``)."""

    name = "stopes.pipelines.tests.test_global_mining.ToyNumbersEncoder"
    modality = "text"

    def __init__(self, lang: str | None = None, batch_size: int = 64, **options: Any) -> None:
        super().__init__(lang=lang, batch_size=batch_size, **options)
        self.dim = 1024

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        return np.stack([digits2vec(s) for s in items])


@pytest.fixture(autouse=True)
def _plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(encoders._registered, ToyNumbersEncoder.name, ToyNumbersEncoder)


@pytest.mark.slow
@pytest.mark.parametrize("use_meta,fp16,modality", [(False, True, "text"),
                                                    (True, False, "text"),
                                                    (True, True, "speech")])
def test_global_mining_pipeline(tmp_path: Path, use_meta: bool, fp16: bool,
                                modality: str) -> None:
    demo_dir, model_dir, output_dir = (tmp_path / d for d in ("source_data", "models", "result"))
    demo_dir.mkdir()
    create_digits(demo_dir, "en", 0, N, use_meta=use_meta)
    thresholds = [0, 100, 300, 1000]
    for i in range(3):
        create_digits(demo_dir, "fr", thresholds[i], thresholds[i + 1], suffix=f".00{i}.",
                      use_meta=use_meta)
    overrides = [  # stopes' own, but for hydra.searchpath (here: config_dirs)
        "launcher.cluster=local", "launcher.partition=null", "launcher.cache=null",
        "+data.data_version=V32m", "+data.iteration=1", f"+data.data_shard_dir={demo_dir}",
        "+data.bname=demo_wmt22", f"+data.shard_glob={demo_dir}/\\{{lang\\}}*_text.tsv",
        f"+data.meta_glob={demo_dir}/\\{{lang\\}}*_meta.tsv",
        "src_lang=fr", "tgt_lang=en", f"+demo_dir={demo_dir}", f"+model_dir={model_dir}",
        f"output_dir={output_dir}",
        "calculate_distances.config.gpu_type=", "train_index.config.use_gpu=False",
        "+populate_index.config.use_gpu=False", "mine_sentences.config.score_max=100000",
        "+lang_configs.fr.index_type='IVF8,Flat'", "embedding_sample.sample_shards=False",
        f"+launcher.config_dump_dir={tmp_path}/conf", f"launcher.log_folder={tmp_path}/logs",
        f"local_tmp_dir={tmp_path}/tmp",
        f"embed_{modality}.encoder.fp16={fp16}", f"train_index.config.fp16={fp16}",
        f"+populate_index.config.fp16={fp16}", f"+calculate_distances.config.fp16={fp16}",
        "progress=false",
    ]
    if modality == "text":
        overrides.append("embed_text=test_numbers_encoder")
    else:
        overrides += ["embed_speech=test_dummy_speech_encoder",
                      "embed_speech.encoder.encoder_model=some_random_name"]
    cfg = load_config(STOPES_CONF / "conf" / "global_mining.yaml", overrides,
                      config_dirs=[str(STOPES_CONF / "tests_conf")])
    result = run(cfg)
    out_texts_path = Path(result.outputs["bitext"])
    out_meta_path = Path(result.outputs["bimeta"])
    assert out_texts_path == output_dir / "mine.V32m" / "fr-en.TH-1.04.bitext.tsv.gz"

    # stopes' assertions, unchanged
    with gzip.open(out_texts_path, "rt") as f:
        matched = [line.strip().split("\t") for line in f.readlines()]
    true_positives = sum(text2number(m[1]) == text2number(m[2]) for m in matched)
    if use_meta:
        with gzip.open(out_meta_path, "rt") as f:
            matched_meta = [line.strip().split("\t") for line in f.readlines()]
        assert len(matched) == len(matched_meta)
        assert all(text2number(line[1]) == int(m[1]) and text2number(line[2]) == int(m[2])
                   for line, m in zip(matched, matched_meta))
    # stopes' layout: its mine_indexes file beside, its columns and number printing
    align = output_dir / "mine.V32m" / "fr-en.IVF8,Flat.k16-16.mean.np128.fp16-shard.align.npz"
    with np.load(align) as z:
        assert set(z.files) == {"scores", "src_idx", "trg_idx", "bwd_pos"}
        assert z["src_idx"].dtype == np.uint32 and len(z["scores"]) >= N
    with gzip.open(out_meta_path, "rt") as f:
        rows = [line.rstrip("\r\n").split("\t") for line in f]
    assert {r[3] for r in rows} <= {"fwd", "bwd"}
    assert all(r[0] == str(np.float32(float(r[0]))) for r in rows)
    if not use_meta:
        assert all(r[1] == r[2] == "" for r in rows)
    precision = true_positives / len(matched)
    assert true_positives == N, f"{true_positives} correct pairs out of {N}"
    assert precision == 1, f"{true_positives} correct pairs out of {len(matched)}"
    assert len(matched) == N, f"{len(matched)} pairs out of {N}"
