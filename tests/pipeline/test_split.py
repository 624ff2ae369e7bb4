"""Language splitting (``max_shard_size``) and exact re-ranking of approximate candidates.

Splitting cuts a side into parts for embedding, index population and kNN queries; margins
still use the whole other side, so a split run writes what an unsplit one writes — exactly
on the exact path, and on the IVF path too, since the index is trained once per side on the
same sample (stopes instead mines each sub-language against each, and its digits test only
asks for precision ≥ 0.25 when split). Re-ranking scores the approximate candidates with the
stored embeddings: on PQ codes it brings the pairs back to the exact search's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import comparable_outputs, output_bytes, sharded_preset, write_sharded

from speechmine.config import load_config
from speechmine.pipeline import run


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    write_sharded(data, n_shards=2)
    return data



@pytest.mark.parametrize("index", [{}, {"exact_max_size": 0, "type": "IVF4,Flat",
                                        "nprobe": 2}], ids=["exact", "ivf"])
def test_a_split_language_is_mined_as_one(tmp_path: Path, corpus: Path,
                                         index: dict[str, Any]) -> None:
    def mine(out: str, *ov: str) -> Any:
        preset = sharded_preset(tmp_path, corpus, tmp_path / out, {"_target_": "toy"},
                                mine_threshold=1.05, index=index)
        return run(load_config(preset, ["launcher.workers=2", *ov]))

    whole = mine("whole")
    split = mine("split", "max_shard_size=7")
    drop = ("config_file", "keys")
    assert comparable_outputs(tmp_path / "whole", drop) == \
        comparable_outputs(tmp_path / "split", drop)
    assert len(split.alignment) == len(whole.alignment) > 0
    # the parts were embedded (and, on the IVF path, indexed and searched) separately
    n_shards = split.counts["src"]["shards"] + split.counts["tgt"]["shards"]
    parts = list((tmp_path / "split" / "work" / "embed").glob("*/DONE.json"))
    assert len(parts) > n_shards
    if index:
        populated = list((tmp_path / "split" / "work" / "index_populate").glob("*/DONE.json"))
        assert len(populated) == len(parts)
        queried = list((tmp_path / "split" / "work" / "knn_part").glob("*/DONE.json"))
        assert len(queried) == len(parts)


def _planted(folder: Path, n: int = 1500, d: int = 64, seed: int = 3) -> None:
    """Imported embeddings: random unit vectors, and on the other side noisy copies of a
    third of them among random ones."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.standard_normal((n, d)).astype(np.float32)
    y[: n // 3] = x[: n // 3] + 0.35 * rng.standard_normal((n // 3, d)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    for lang, m in (("en", x), ("fr", y)):
        np.save(folder / f"{lang}.000.npy", m)
        (folder / f"{lang}.000.txt").write_text("".join(f"{lang} {i}\n" for i in range(n)))


def _mine(tmp: Path, data: Path, out: str, index: dict[str, Any]) -> Any:
    from helpers import write_preset

    cfg = {"src_lang": "en", "tgt_lang": "fr", "output_dir": str(tmp / out),
           "progress": False, "mine_threshold": 1.0, "embedding_dimensions": 64,
           "existing_embedding_glob": str(data / "{lang}.*.npy"),
           "data": {"data_shard_dir": str(data), "shard_glob": str(data / "{lang}.*.txt")},
           "embed_text": {"encoder": {"_target_": "toy"}}, "index": index,
           "lang_configs": {"en": {}, "fr": {}}}
    return run(load_config(write_preset(tmp / f"{out}.yaml", cfg)))


def test_reranking_brings_pq_candidates_back_to_the_exact_pairs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _planted(data)
    exact = _mine(tmp_path, data, "exact", {})
    # 16 sub-quantisers of 4 dims: the true 4 nearest are among the 128 best PQ candidates
    pq = {"exact_max_size": 0, "type": "IVF8,PQ16", "nprobe": 8}
    raw = _mine(tmp_path, data, "raw", {**pq, "rerank_k": 0})
    reranked = _mine(tmp_path, data, "reranked", {**pq, "rerank_k": 128})

    def pairs(res: Any) -> dict[tuple[int, int], float]:
        al = res.alignment
        return {(int(a), int(b)): float(s) for a, b, s in zip(al.src, al.tgt, al.scores)}

    want, got, coarse = pairs(exact), pairs(reranked), pairs(raw)
    assert len(want) > 400
    assert got.keys() == want.keys()
    assert max(abs(got[k] - want[k]) for k in want) < 1e-5
    # PQ's own similarities are coarse: without re-ranking the pairs or their scores drift
    drift = [abs(coarse[k] - want[k]) for k in want.keys() & coarse.keys()]
    assert coarse.keys() != want.keys() or max(drift) > 1e-3


def test_sharded_langs_mine_the_sub_languages_as_one(tmp_path: Path) -> None:
    """stopes' ``sharded_langs: {en: [en0, en1]}``: en is en0's lines then en1's."""
    from helpers import Corpus, make_config, sentences, write_lines

    en, fr = sentences(60)
    whole = Corpus(tmp_path / "whole", en, fr, metas=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    write_lines(parts / "en0.txt", whole.en[:25])
    write_lines(parts / "en1.txt", whole.en[25:])
    write_lines(parts / "fr.txt", whole.fr)
    run(make_config(tmp_path, whole.dir, out=tmp_path / "ref", meta=False))
    cfg = make_config(tmp_path, parts, out=tmp_path / "split", name="split", meta=False,
                      extra={"sharded_langs": {"en": ["en0", "en1"]}})
    assert cfg.src.subsets == ("en0", "en1")
    res = run(cfg)
    assert res.counts["src"]["shards"] == 2 and res.counts["src"]["lines"] == 60
    name = "en-fr.TH-1.1.bitext.tsv.gz"
    assert output_bytes(tmp_path / "split")[name] == output_bytes(tmp_path / "ref")[name]
    from speechmine.config import ConfigError

    with pytest.raises(ConfigError, match="sharded_langs.en: must be a list"):
        make_config(tmp_path, parts, name="bad", meta=False,
                    extra={"sharded_langs": {"en": "en0"}})
