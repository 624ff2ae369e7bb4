"""The local executor (a pool of spawned workers) and the debug one (this process): the same
bytes, jobs really elsewhere and in parallel, a killed worker replaced and its job retried, a
job that always fails stopping the run with its log, bad input never retried, one GPU per
worker, progress forwarded, and `speechmine status` telling what happened."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import (
    cli,
    comparable_outputs,
    ledger_entries,
    output_bytes,
    sharded_preset,
    write_sharded,
)

from speechmine import encoders, progress
from speechmine.config import Resources, load_config
from speechmine.encoders.toy import ToyEncoder
from speechmine.executors import Job, JobFailed, LocalExecutor
from speechmine.pipeline import run

FLAG_DIR = "SPEECHMINE_TEST_FLAGS"


class CrashOnce(ToyEncoder):
    """The toy encoder, but the first process to encode a batch kills itself (SIGKILL): a
    worker lost to the out-of-memory killer or a segfault."""

    name = "test_crash_once"

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        flag = Path(os.environ[FLAG_DIR]) / "crashed"
        try:  # O_EXCL: of two workers encoding at once, exactly one is first
            fd = os.open(flag, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return super().encode_batch(items)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
        return super().encode_batch(items)


class AlwaysFails(ToyEncoder):
    name = "test_always_fails"

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        raise RuntimeError(f"boom in pid {os.getpid()}")


@pytest.fixture(autouse=True)
def _plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for cls in (CrashOnce, AlwaysFails):
        monkeypatch.setitem(encoders._registered, cls.name, cls)
    flags = tmp_path / "flags"
    flags.mkdir()
    monkeypatch.setenv(FLAG_DIR, str(flags))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    write_sharded(data, n_shards=4)
    return data


def _preset(tmp: Path, data: Path, out: Path, encoder: str = "toy", **extra: Any) -> Path:
    return sharded_preset(tmp, data, out, {"_target_": encoder}, mine_threshold=1.05, **extra)




def test_local_workers_and_debug_write_the_same_bytes(tmp_path: Path, corpus: Path) -> None:
    local = run(load_config(_preset(tmp_path, corpus, tmp_path / "local"),
                            ["launcher.workers=2"]))
    debug = run(load_config(_preset(tmp_path, corpus, tmp_path / "debug"),
                            ["launcher.cluster=debug"]))
    assert comparable_outputs(tmp_path / "local") == comparable_outputs(tmp_path / "debug")
    assert len(local.alignment) == len(debug.alignment) > 0
    # the embed jobs ran in two other processes, the debug ones in this one
    pids = {e["pid"] for e in ledger_entries(tmp_path / "local", "embed")}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {e["pid"] for e in ledger_entries(tmp_path / "debug", "embed")} == {os.getpid()}
    assert all(e["state"] == "done" for e in ledger_entries(tmp_path / "local", "embed"))


def test_a_killed_worker_is_replaced_and_its_job_retried(tmp_path: Path, corpus: Path) -> None:
    ref = tmp_path / "ref"
    run(load_config(_preset(tmp_path, corpus, ref), ["launcher.cluster=debug"]))
    out = tmp_path / "out"
    res = run(load_config(_preset(tmp_path, corpus, out, "test_crash_once"),
                          ["launcher.workers=2"]))
    crashed = int((Path(os.environ[FLAG_DIR]) / "crashed").read_text())
    entries = ledger_entries(out, "embed")
    assert crashed not in {e["pid"] for e in entries}  # every job ended in a live worker
    retried = [e for e in entries if e["attempt"] == 2]
    assert len(retried) == 1, entries
    first_log = Path(retried[0]["log"]).with_name(f"{retried[0]['label']}.1.log")
    assert first_log.exists()  # what the lost attempt logged before it died
    name = "en-fr.TH-1.05.bitext.tsv.gz"
    assert output_bytes(out)[name] == output_bytes(ref)[name]
    assert res.counts["pairs"] > 0


def test_a_job_failing_every_time_stops_the_run_with_its_log(tmp_path: Path,
                                                               corpus: Path) -> None:
    out = tmp_path / "out"
    # a CLI run: the plug-in is registered through a tiny module on sys.path
    (tmp_path / "plugin_mod.py").write_text(
        "from speechmine import encoders\n"
        "from speechmine.encoders.toy import ToyEncoder\n"
        "class Boom(ToyEncoder):\n"
        "    name = 'boom'\n"
        "    def encode_batch(self, items):\n"
        "        raise RuntimeError('boom 42: the model ran out of memory')\n"
        "encoders.register(Boom)\n")
    preset = _preset(tmp_path, corpus, out, "boom")
    code = "import plugin_mod, sys; from speechmine.cli import main; sys.exit(main())"
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code, "mine", str(preset),
                           "launcher.max_retries=1", "launcher.workers=2"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = proc.stderr
    assert "failed after 2 attempt(s)" in err and "RuntimeError: boom 42" in err
    assert "log: " in err and "last lines:" in err and "plugin_mod.py" in err
    log_file = Path(err.split("log: ", 1)[1].split()[0])
    assert log_file.exists() and "boom 42" in log_file.read_text()
    status = cli("status", str(out))
    assert status.returncode == 0, status.stderr
    assert "failed" in status.stdout and str(log_file) in status.stdout
    info = json.loads(cli("status", str(out), "--json").stdout)
    assert info["finished"] is False
    assert info["counts"]["scan"] == {"done": 8}
    assert info["counts"]["embed"].get("failed", 0) >= 1


def test_bad_input_is_not_retried(tmp_path: Path, corpus: Path) -> None:
    data = tmp_path / "data"
    write_sharded(data, n_shards=2)
    bad = data / "tiny.text.fr.001.xz"
    import lzma

    bad.write_bytes(lzma.compress(lzma.decompress(bad.read_bytes()) + b"\xff\xfe bad\n"))
    (data / "fr.nl").unlink()
    proc = cli("mine", str(_preset(tmp_path, data, tmp_path / "out")), "launcher.workers=2")
    assert proc.returncode == 2
    assert "tiny.text.fr.001.xz" in proc.stderr and "UTF-8" in proc.stderr
    scans = [e for e in ledger_entries(tmp_path / "out", "scan") if e["state"] == "failed"]
    assert [e["attempt"] for e in scans] == [1]


def test_status_after_a_finished_run(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "out"
    run(load_config(_preset(tmp_path, corpus, out)))
    info = json.loads(cli("status", str(out), "--json").stdout)
    assert info["finished"] is True
    assert {r["state"] for r in info["stages"]} == {"done"}
    assert {"scan", "inputs", "embed", "knn", "select", "outputs"} <= set(info["counts"])
    text = cli("status", str(out)).stdout
    assert "finished" in text and "8 done" in text  # scan: 4 shards × 2 sides
    missing = cli("status", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no speechmine run" in missing.stderr


# ------------------------------------------------------------------------------ the pool


def environment(_: Any) -> dict[str, str]:
    """A job that reports what its worker was given."""
    return {k: os.environ.get(k, "") for k in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")}


def counting(n: int) -> int:
    """A job that reports progress through speechmine's bar."""
    with progress.bar(total=n, desc="count") as bar:
        for _ in range(n):
            bar.update(1)
    return n


def _jobs(fn: Any, args: list[Any]) -> list[Job]:
    return [Job("test", f"k{i}", f"t.{i}", fn, a) for i, a in enumerate(args)]


def test_each_worker_gets_one_gpu_and_its_share_of_the_cores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    ex = LocalExecutor(tmp_path, max_retries=0, show_progress=False)
    try:
        assert ex.size == 2  # one worker per visible GPU
        got = ex.run("test", _jobs(environment, [None] * 6), Resources())
    finally:
        ex.close()
    assert {g["CUDA_VISIBLE_DEVICES"] for g in got} == {"3", "5"}
    assert {g["OMP_NUM_THREADS"] for g in got} == {str(max(1, (os.cpu_count() or 1) // 2))}


def thread_pools(_: Any) -> dict[str, int]:
    """A job that reports the native thread pools it runs with (numpy's BLAS, and what a
    library loaded now would read from the environment)."""
    from threadpoolctl import threadpool_info

    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    return {"blas": min(blas), "env": int(os.environ["OMP_NUM_THREADS"])}


def test_a_lone_job_gets_every_core_and_busy_workers_share_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact kNN is one job: with 2 workers on 4 cores it must run with 4 threads, not
    its worker's 2; two jobs at once get 2 each, and a worker gets its share back after a
    lone job."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    ex = LocalExecutor(tmp_path, max_retries=0, workers=2, show_progress=False)
    try:
        pair = ex.run("two", _jobs(thread_pools, [None, None]), Resources())
        lone = ex.run("one", _jobs(thread_pools, [None]), Resources())
        after = ex.run("again", _jobs(thread_pools, [None] * 4), Resources())
    finally:
        ex.close()
    assert pair == [{"blas": 2, "env": 2}] * 2
    assert lone == [{"blas": 4, "env": 4}]
    assert after == [{"blas": 2, "env": 2}] * 4


def test_progress_of_workers_reaches_the_driver(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []

    class Bar:
        total: int | None = 0

        def __init__(self, **kwargs: Any) -> None:
            pass

        def update(self, n: int) -> None:
            seen.append((n, 0))

        def refresh(self) -> None:
            seen.append((0, int(self.total or 0)))

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *a: object) -> None:
            pass

    monkeypatch.setattr(progress, "bar", lambda **kw: Bar(**kw))
    ex = LocalExecutor(tmp_path, max_retries=0, workers=2, show_progress=True)
    try:
        assert ex.run("test", _jobs(counting, [500, 700]), Resources()) == [500, 700]
    finally:
        ex.close()
    assert sum(n for n, _ in seen) == 1200
    assert max(t for _, t in seen) == 1200  # both jobs' totals announced


def test_an_unpicklable_plugin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        corpus: Path) -> None:
    local_cls = type("Local", (ToyEncoder,), {"name": "test_local_only"})
    monkeypatch.setitem(encoders._registered, "test_local_only", local_cls)
    with pytest.raises(encoders.EncoderError, match="cannot import it.*launcher.cluster=debug"):
        run(load_config(_preset(tmp_path, corpus, tmp_path / "out", "test_local_only")))
    # in this process it runs
    res = run(load_config(_preset(tmp_path, corpus, tmp_path / "out2", "test_local_only"),
                          ["launcher.cluster=debug"]))
    assert res.counts["pairs"] > 0


def test_job_failed_is_an_expected_error() -> None:
    from speechmine.errors import user_message

    assert user_message(JobFailed("job x failed")) == "job x failed"


def test_plugins_travel_by_reference_with_the_driver_path(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A SLURM task is a fresh interpreter: the driver's sys.path comes along, an encoder that
    still cannot be imported there is named only when a job asks for it."""
    import sys

    from speechmine.executors.base import Plugins, plugin_encoders

    (tmp_path / "far_plugin.py").write_text(
        "from speechmine.encoders.toy import ToyEncoder\n"
        "class Far(ToyEncoder):\n"
        "    name = 'test_far'\n")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    monkeypatch.setattr(encoders, "_registered", {})
    monkeypatch.setattr(encoders, "_unavailable", {})
    Plugins({"test_far": "far_plugin:Far", "test_gone": "no_such_module_here:Gone"},
            (str(tmp_path),)).install()
    assert encoders.resolve("test_far").__module__ == "far_plugin"
    with pytest.raises(encoders.EncoderError, match="test_gone.*cannot be imported.*No module"):
        encoders.resolve("test_gone")
    sent = plugin_encoders()
    assert sent.refs == {"test_far": "far_plugin:Far"}  # built-ins are not sent
    assert str(tmp_path) in sent.sys_path
    monkeypatch.delitem(sys.modules, "far_plugin")
