"""The run keeps every query's scored candidate (``<src>-<tgt>.candidates.npz``), so that a
lower threshold can be evaluated without mining again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from helpers import sharded_preset, write_sharded

from speechmine.config import load_config
from speechmine.pipeline import run
from speechmine.select import select_pairs


def test_candidates_reproduce_the_pairs_at_any_threshold(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_sharded(data, n_shards=2)

    def mine(out: str, threshold: float) -> Any:
        preset = sharded_preset(tmp_path, data, tmp_path / out, {"_target_": "toy"})
        return run(load_config(preset, [f"mine_threshold={threshold}"]))

    high, low = mine("high", 1.3), mine("low", 1.0)
    assert len(low.alignment) > len(high.alignment) > 0
    path = Path(high.outputs["candidates"])
    assert path.name == "en-fr.candidates.npz" and path.parent == tmp_path / "high"
    with np.load(path) as z:
        c = {k: z[k] for k in z.files}
    assert len(c["fwd_src"]) == high.counts["src"]["embedded"] > 100
    assert len(c["bwd_tgt"]) == high.counts["tgt"]["embedded"]
    # the high run's candidates, cut at 1.0, are the low run's pairs (max retrieval, global
    # ids are line ids here)
    al = select_pairs(c["fwd_score"], c["fwd_tgt"], c["bwd_score"], c["bwd_src"], "max",
                      threshold=1.0)
    want = low.alignment
    assert al.src.tolist() == want.src.tolist() and al.tgt.tolist() == want.tgt.tolist()
    np.testing.assert_array_equal(al.scores, want.scores)
