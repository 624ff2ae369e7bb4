"""The mining pipeline through ``launcher.cluster: slurm`` on the real one-node cluster:
job arrays (chunked below the cluster's MaxArraySize) write what the local executor writes,
byte for byte; an array task that dies is resubmitted; a task preempted through submitit's
interrupt is requeued by SLURM and the run completes with the same bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest
from helpers import (
    comparable_outputs,
    ledger_entries,
    output_bytes,
    sharded_preset,
    write_sharded,
)

from speechmine import encoders
from speechmine.config import load_config
from speechmine.encoders.toy import ToyEncoder
from speechmine.pipeline import run

pytestmark = pytest.mark.slurm
# the plug-in encoders below travel to the SLURM tasks by value (tests are not importable
# there)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FLAGS = "SPEECHMINE_TEST_FLAGS"


class DiesOnce(ToyEncoder):
    """The toy encoder, but the first task that encodes kills itself (SIGKILL)."""

    name = "test_dies_once"

    @classmethod
    def identity(cls, options: Any, lang: str | None, verify: str = "content") -> Any:
        # a fixed identity (the documented hook), the same in the driver and on the node
        return {"class": cls.name, "version": 1, "options": dict(options)}

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        flag = Path(os.environ[FLAGS]) / "died"
        try:  # O_EXCL: of two tasks encoding at once, exactly one is first
            fd = os.open(flag, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return super().encode_batch(items)
        os.write(fd, os.environ.get("SLURM_JOB_ID", "?").encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
        return super().encode_batch(items)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    write_sharded(data, n_shards=4)
    return data


@pytest.fixture
def flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "flags"
    folder.mkdir()
    monkeypatch.setenv(FLAGS, str(folder))  # sbatch exports the driver's environment
    monkeypatch.setitem(encoders._registered, DiesOnce.name, DiesOnce)
    return folder


def _mine(tmp: Path, data: Path, out: str, cluster: Any, encoder: dict[str, Any],
          *overrides: str) -> Any:
    preset = sharded_preset(tmp, data, tmp / out, encoder, mine_threshold=1.05,
                            index={"exact_max_size": 0, "type": "IVF4,Flat", "nprobe": 4})
    ov = list(overrides)
    if cluster is not None:
        from speechmine.config import JOB_STAGES

        # the one node is small: every stage's jobs ask for one core and 1 GB
        ov = ["launcher.cluster=slurm", f"launcher.partition={cluster.partition}",
              f"launcher.max_array_size={min(3, cluster.max_array_size)}",
              "launcher.timeout_min=10",
              *(f"launcher.resources.{st}.{k}={v}" for st in JOB_STAGES
                for k, v in (("cpus", 1), ("mem_gb", 1))), *ov]
    return run(load_config(preset, ov))




def test_slurm_arrays_write_what_local_writes(slurm_cluster: Any, tmp_path: Path,
                                              corpus: Path) -> None:
    toy = {"_target_": "toy"}
    local = _mine(tmp_path, corpus, "local", None, toy)
    res = _mine(tmp_path, corpus, "slurm", slurm_cluster, toy)
    assert comparable_outputs(tmp_path / "slurm") == comparable_outputs(tmp_path / "local")
    assert len(res.alignment) == len(local.alignment) > 0
    # every job ran as a SLURM array task; 8 embed tasks in arrays of at most 3
    embeds = ledger_entries(tmp_path / "slurm", "embed")
    assert len(embeds) == 8 and all(e["executor"] == "slurm" and e["state"] == "done"
                                    for e in embeds)
    arrays = {e["slurm_array"].split("_")[0] for e in embeds}
    assert len(arrays) == 3  # 3 + 3 + 2
    for stage in ("scan", "index_train", "index_populate", "index_merge", "knn_part",
                  "select", "outputs"):
        assert ledger_entries(tmp_path / "slurm", stage), stage
    # a rerun with either executor submits nothing
    again = _mine(tmp_path, corpus, "slurm", slurm_cluster, toy)
    assert again.counts["src"]["shards_embedded_this_run"] == 0
    status = json.loads(subprocess.run(
        [sys.executable, "-m", "speechmine.cli", "status", str(tmp_path / "slurm"), "--json"],
        capture_output=True, text=True, check=True).stdout)
    assert status["executor"] == "slurm" and status["finished"]
    assert {r["state"] for r in status["stages"]} == {"done"}


def test_a_dead_array_task_is_resubmitted(slurm_cluster: Any, tmp_path: Path, corpus: Path,
                                          flags: Path) -> None:
    ref = _mine(tmp_path, corpus, "ref", None, {"_target_": "toy"})
    res = _mine(tmp_path, corpus, "out", slurm_cluster, {"_target_": DiesOnce.name})
    died = (flags / "died").read_text()
    embeds = ledger_entries(tmp_path / "out", "embed")
    retried = [e for e in embeds if e["attempt"] == 2]
    assert len(retried) == 1 and retried[0]["slurm_job_id"] != died
    assert all(e["state"] == "done" for e in embeds)
    name = "en-fr.TH-1.05.bitext.tsv.gz"
    assert output_bytes(tmp_path / "out")[name] == output_bytes(tmp_path / "ref")[name]
    assert len(res.alignment) == len(ref.alignment)


def test_a_preempted_task_is_requeued_and_the_run_completes(
        slurm_cluster: Any, tmp_path: Path, corpus: Path) -> None:
    from submitit.slurm.slurm import SlurmJob

    ref = _mine(tmp_path, corpus, "ref", None, {"_target_": "toy"})
    out = tmp_path / "out"
    # delay (seconds per batch, transient): a shard takes ~15 s, time to interrupt it
    slow = {"_target_": "toy", "batch_size": 4, "delay": 1.0}
    box: dict[str, Any] = {}

    def mine() -> None:
        try:
            box["result"] = _mine(tmp_path, corpus, "out", slurm_cluster, slow)
        except BaseException as exc:  # surfaced below
            box["error"] = exc

    thread = threading.Thread(target=mine)
    thread.start()
    victim = None
    deadline = time.time() + 240
    while victim is None and time.time() < deadline and thread.is_alive():
        running = [e for e in ledger_entries(out, "embed") if e["state"] == "running"]
        victim = running[0] if running else None
        time.sleep(0.5)
    assert victim is not None, box
    time.sleep(1)  # into the shard
    SlurmJob(folder=str(out / "work" / "logs" / "slurm" / "embed" / "%j"),
             job_id=victim["slurm_array"])._interrupt()
    thread.join(600)
    assert not thread.is_alive() and "error" not in box, box.get("error")
    acct = subprocess.run(["sacct", "-D", "-n", "-P", "-j", victim["slurm_array"], "-o",
                           "State"], capture_output=True, text=True, check=True).stdout
    assert "REQUEUED" in acct, acct
    again = [e for e in ledger_entries(out, "embed") if e["key"] == victim["key"]][0]
    assert again["state"] == "done" and again["attempt"] == 1  # requeued, not resubmitted
    name = "en-fr.TH-1.05.bitext.tsv.gz"
    assert output_bytes(out)[name] == output_bytes(tmp_path / "ref")[name]
    assert len(box["result"].alignment) == len(ref.alignment)
