"""Raw submitit against the real local SLURM cluster (what speechmine's slurm executor
relies on): job arrays and their throttle, MaxArraySize and chunking by the caller, tasks
that die without a result, and a checkpointable job that is preempted, requeued and
resumes from its checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import cloudpickle  # submitit's own pickler
import pytest
import submitit  # the dev extra: missing is an error, not a skip
from submitit.core.utils import FailedJobError, UncompletedJobError

pytestmark = pytest.mark.slurm

# The jobs unpickle this module's functions in a fresh interpreter where this test folder
# is not importable: ship them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

T = TypeVar("T")


def _executor(cluster: Any, folder: Path, **params: Any) -> Any:
    ex = submitit.SlurmExecutor(folder=folder)
    ex.update_parameters(partition=cluster.partition, time=5, **params)
    return ex


def map_array_chunked(ex: Any, fn: Callable[[T], Any], items: Sequence[T],
                      max_array_size: int) -> list[Any]:
    """``ex.map_array`` in arrays of at most ``max_array_size`` tasks (submitit sends one
    ``--array=0-{n-1}`` whatever n is, and sbatch refuses an index >= MaxArraySize)."""
    jobs: list[Any] = []
    for start in range(0, len(items), max_array_size):
        jobs += ex.map_array(fn, items[start:start + max_array_size])
    return jobs


def _timed_square(x: int) -> tuple[int, float, float]:
    start = time.time()
    time.sleep(1.5)
    return x * x, start, time.time()


def _square(x: int) -> int:
    return x * x


def _final_states(jobs: list[Any], timeout_s: float = 20) -> list[str]:
    """The jobs' states in sacct once none is pending or running any more (a result file
    is written before the task exits, and slurmctld tells slurmdbd a little later)."""
    deadline = time.monotonic() + timeout_s
    while True:
        states = [j.get_info(mode="force").get("State", "UNKNOWN") for j in jobs]
        if not {"UNKNOWN", "PENDING", "RUNNING", "COMPLETING"} & set(states):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"still not over after {timeout_s} s: {states}")
        time.sleep(0.5)


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    """How many of the (start, end) intervals ran at the same time, at most."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_array_returns_results_in_parallel(slurm_cluster: Any, slurm_folder: Path) -> None:
    """One array, its tasks ordered like the inputs, running side by side (DefMemPerCPU:
    without it each task takes the whole node's memory and they run one at a time)."""
    jobs = _executor(slurm_cluster, slurm_folder).map_array(_timed_square, range(4))
    array_id = jobs[0].job_id.split("_")[0]
    assert [j.job_id for j in jobs] == [f"{array_id}_{i}" for i in range(4)]
    out = [j.result() for j in jobs]
    assert [r[0] for r in out] == [0, 1, 4, 9]
    assert _max_overlap([(s, e) for _, s, e in out]) == min(4, slurm_cluster.cpus)
    assert _final_states(jobs) == ["COMPLETED"] * 4


def test_array_parallelism_throttles(slurm_cluster: Any, slurm_folder: Path) -> None:
    """submitit's ``array_parallelism`` (``slurm_array_parallelism`` for AutoExecutor)
    becomes sbatch's ``--array=0-2%1``: one task at a time."""
    ex = _executor(slurm_cluster, slurm_folder, array_parallelism=1)
    jobs = ex.map_array(_timed_square, range(3))
    assert "#SBATCH --array=0-2%1" in jobs[0].paths.submission_file.read_text()
    out = [j.result() for j in jobs]
    assert [r[0] for r in out] == [0, 1, 4]
    assert _max_overlap([(s, e) for _, s, e in out]) == 1


def test_max_array_size_and_chunking(slurm_cluster: Any, slurm_folder: Path) -> None:
    """An array of MaxArraySize tasks is accepted, one more is refused by sbatch (submitit
    does not chunk), and the caller's chunks get every result back in order."""
    n = slurm_cluster.max_array_size
    ex = _executor(slurm_cluster, slurm_folder)
    with pytest.raises(FailedJobError, match="Invalid job array specification"):
        ex.map_array(_square, range(n + 1))
    items = list(range(n + 3))
    jobs = map_array_chunked(ex, _square, items, n)
    arrays = [j.job_id.split("_")[0] for j in jobs]
    assert len(set(arrays)) == 2 and arrays.count(arrays[0]) == n
    assert [j.result() for j in jobs] == [x * x for x in items]


def _die(how: str) -> str:
    print(f"task {how}: about to die", file=sys.stderr, flush=True)
    if how == "exit":
        os._exit(3)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    return "alive"


def test_dead_task_is_failed_with_its_stderr(slurm_cluster: Any, slurm_folder: Path) -> None:
    """A task that dies without writing its result (os._exit, SIGKILL) is FAILED in sacct,
    its neighbours are unaffected, and its stderr log is where ``job.paths.stderr`` says."""
    jobs = _executor(slurm_cluster, slurm_folder).map_array(_die, ["ok", "exit", "sigkill"])
    ok, exited, killed = jobs
    assert ok.result() == "alive"
    for job, how in ((exited, "exit"), (killed, "sigkill")):
        job.wait()  # returns once sacct says the task is over
        assert job.state == "FAILED", (how, job.get_info())
        assert not job.paths.result_pickle.exists()
        assert f"task {how}: about to die" in job.paths.stderr.read_text()
        assert f"task {how}: about to die" in (job.stderr() or "")
    # submitit waits _results_timeout_s (15 s) for a result file that will never come before
    # it gives up; the test does not need to pay that for each task
    exited._results_timeout_s = 1
    error = exited.exception()
    assert isinstance(error, UncompletedJobError) and not isinstance(error, FailedJobError)
    assert "has not produced any output (state: FAILED)" in str(error)
    assert "task exit: about to die" in str(error)
    with pytest.raises(UncompletedJobError):
        exited.result()


class Steps(submitit.helpers.Checkpointable):
    """Counts to ``n`` slowly; ``self.done`` is the state a checkpoint carries."""

    def __init__(self) -> None:
        self.done = 0
        self.starts: list[int] = []

    def __call__(self, progress: str, n: int) -> dict[str, Any]:
        self.starts.append(self.done)
        while self.done < n:
            time.sleep(0.05)
            self.done += 1
            Path(progress).write_text(str(self.done))
        return {"done": self.done, "starts": self.starts,
                "restarts": os.environ.get("SLURM_RESTART_COUNT", "0")}


def test_preempted_checkpointable_job_resumes(slurm_cluster: Any, slurm_folder: Path) -> None:
    """``job._interrupt()`` sends SIGTERM then USR2 as preemption does; submitit calls
    ``Steps.checkpoint``, dumps its state, runs ``scontrol requeue`` and exits; SLURM starts
    the job again (cred_expire=10 keeps that wait ~11 s) and it resumes mid-way."""
    progress = slurm_folder / "progress"
    job = _executor(slurm_cluster, slurm_folder).submit(Steps(), str(progress), 100)
    deadline = time.monotonic() + 30
    while not (progress.exists() and int(progress.read_text() or 0) >= 8):
        assert time.monotonic() < deadline, f"job never made progress: {job.stderr()}"
        time.sleep(0.2)
    job._interrupt()
    t0 = time.monotonic()
    out = job.result()
    requeue_s = time.monotonic() - t0
    assert out["done"] == 100 and out["restarts"] == "1"
    first, resumed = out["starts"]
    assert first == 0 and 8 <= resumed < 100
    assert requeue_s < 60, f"requeue took {requeue_s:.0f} s (AuthInfo cred_expire=10?)"
    # both runs are in the accounting records (-D: duplicates, i.e. every run of the job)
    command = ["sacct", "-j", job.job_id, "-D", "-n", "-X", "-o", "State", "--parsable2"]
    deadline = time.monotonic() + 20
    while (states := subprocess.run(command, capture_output=True, text=True,
                                    check=True).stdout.split())[-1:] != ["COMPLETED"]:
        assert time.monotonic() < deadline, states
        time.sleep(0.5)
    assert states == ["REQUEUED", "COMPLETED"]
