"""The real one-node SLURM cluster for the tests in this folder (``scripts/slurm/start.sh``).

``slurm_cluster`` (session scope) starts the cluster once per pytest session, or finds it
already up (``.ci/run`` starts it before pytest; so can a developer, with
``sudo scripts/slurm/start.sh``), points ``SLURM_CONF`` at it for this process and every job
it submits, and stops it at the end only if this session started it
(``SPEECHMINE_SLURM_KEEP=1`` keeps it up for the next session). A machine where it cannot
start (not root, no network to Debian for ``apt-get``) FAILS these tests with the reason;
``SPEECHMINE_SKIP_SLURM=1`` skips them instead. Start-up costs ~11 s from nothing, ~2.5 s
with the state dir kept, ~0.1 s when already up (docs/slurm.md).

Tests that need the cluster live in this folder (fixtures in a conftest are seen only below
it) and carry ``pytestmark = pytest.mark.slurm`` (``-m "not slurm"`` leaves them out).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "slurm"
#: start.sh may apt-get install the packages first (a minute or two on a new machine)
START_TIMEOUT_S = 900


@dataclass(frozen=True)
class SlurmCluster:
    """What a test needs to submit to the local cluster."""

    #: the default partition (``debug``)
    partition: str
    #: start.sh's state dir (configs, logs, pid files)
    state_dir: Path
    #: the slurm.conf clients read (exported as ``SLURM_CONF``)
    slurm_conf: Path
    #: array indices must be below this (submitit does not chunk: callers must)
    max_array_size: int
    #: CPUs of the one node (tasks run at most this many at once, one CPU each by default)
    cpus: int
    #: a folder for submitit's logs and pickles, shared by the session (tmp)
    log_root: Path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slurm: needs the local SLURM cluster (tests/slurm/conftest.py starts it, as root; "
        "SPEECHMINE_SKIP_SLURM=1 skips)",
    )


def _config_value(text: str, key: str) -> str:
    match = re.search(rf"^{key}\s*=\s*(\S+)", text, re.MULTILINE)
    if match is None:
        raise AssertionError(f"scontrol show config has no {key}:\n{text}")
    return match.group(1)


def _run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPTS / script), *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """The running cluster (started once per session; see the module doc)."""
    if os.environ.get("SPEECHMINE_SKIP_SLURM") == "1":
        pytest.skip("SPEECHMINE_SKIP_SLURM=1: the real SLURM cluster tests are skipped")
    state_dir = Path(os.environ.get("SPEECHMINE_SLURM_DIR", "/var/lib/speechmine-slurm"))
    was_up = _run("start.sh", "--check").returncode == 0
    if not was_up:
        if os.geteuid() != 0:
            pytest.fail("the SLURM tests need the local cluster and only root can start it: "
                        "run `sudo scripts/slurm/start.sh` first, run the tests as root, or "
                        "set SPEECHMINE_SKIP_SLURM=1 to skip them", pytrace=False)
        try:
            done = _run("start.sh", timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"scripts/slurm/start.sh took over {START_TIMEOUT_S} s "
                        f"(logs in {state_dir}/log); SPEECHMINE_SKIP_SLURM=1 skips these tests",
                        pytrace=False)
        if done.returncode != 0:
            pytest.fail(f"scripts/slurm/start.sh failed (exit {done.returncode}):\n"
                        f"{done.stdout[-2000:]}{done.stderr[-2000:]}\n"
                        "(SPEECHMINE_SKIP_SLURM=1 skips the SLURM tests)", pytrace=False)
    slurm_conf = state_dir / "etc" / "slurm.conf"
    old_conf = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(slurm_conf)  # sbatch, sacct, scancel, and the jobs
    try:
        config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                                check=True).stdout
        cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True,
                              check=True).stdout.split()[0]
        yield SlurmCluster(
            partition="debug", state_dir=state_dir, slurm_conf=slurm_conf,
            max_array_size=int(_config_value(config, "MaxArraySize")), cpus=int(cpus),
            log_root=tmp_path_factory.mktemp("submitit"))
    finally:
        if old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old_conf
        if not was_up and os.environ.get("SPEECHMINE_SLURM_KEEP") != "1":
            _run("stop.sh")


@pytest.fixture
def slurm_folder(slurm_cluster: SlurmCluster, request: pytest.FixtureRequest) -> Path:
    """A fresh submitit folder for one test, under the session's ``log_root``."""
    name = re.sub(r"\W+", "_", request.node.name)[:60]
    folder = slurm_cluster.log_root / name
    folder.mkdir()
    return folder
