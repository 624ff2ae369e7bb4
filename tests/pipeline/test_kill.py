"""kill -9 at every stage, rerun, and compare every output byte for byte with a run that was
never interrupted. The CLI kills itself at a named point (``SPEECHMINE_KILL_AT``), so the
moment is exact: inputs (after the first shard's scan), embed (after the first chunk of the
second shard), index training, index population, kNN (between the two directions' files),
selection (before align.npz) and output writing (after the first file is renamed in)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from helpers import cli, output_bytes, sharded_preset, write_sharded

POINTS = ["inputs", "embed:2", "index-train", "index-populate:2", "knn", "select", "outputs"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    write_sharded(data, n_shards=4)
    return data


def _preset(tmp: Path, data: Path, out: Path) -> Path:
    # the IVF path, so that index training and population happen (tiny corpus: IVF4)
    return sharded_preset(tmp, data, out, {"_target_": "toy", "batch_size": 16},
                          index={"exact_max_size": 0, "type": "IVF4,Flat", "nprobe": 4},
                          mine_threshold=1.05)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("ref")
    out = tmp / "out"
    cli("mine", str(_preset(tmp, corpus, out)), check=True)
    return output_bytes(out)


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_every_stage_then_rerun_gives_the_same_bytes(
        tmp_path: Path, corpus: Path, reference: dict[str, bytes], point: str) -> None:
    out = tmp_path / "out"
    preset = _preset(tmp_path, corpus, out)
    killed = cli("-q", "mine", str(preset), env={"SPEECHMINE_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, \
        f"not killed at {point}: exit {killed.returncode}\n{killed.stderr[-2000:]}"
    assert not (out / "run.json").exists()
    resumed = cli("-q", "mine", str(preset), check=True)
    got = output_bytes(out)
    # config.yaml names the output dir, which differs from the reference run's
    got.pop("config.yaml"), reference.get("config.yaml")
    want = {k: v for k, v in reference.items() if k != "config.yaml"}
    assert sorted(got) == sorted(want)
    for name in want:
        if name != "run.json":
            assert got[name] == want[name], f"{name} differs after a kill at {point}"
    a, b = json.loads(got["run.json"]), json.loads(want["run.json"])
    a.pop("config_file"), b.pop("config_file")
    a["keys"].pop("outputs"), b["keys"].pop("outputs")  # the outputs key names the shards
    assert a == b
    assert not [p for p in out.rglob("*") if ".smtmp." in p.name], resumed.stderr
