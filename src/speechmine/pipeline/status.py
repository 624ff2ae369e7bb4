"""What a run has done so far, for ``speechmine status OUTPUT_DIR``.

The driver writes ``OUTPUT_DIR/.speechmine-plan.json`` when it starts, and again as the graph grows
(parts, index and kNN jobs are known once the sides are embedded): the work folder, the
executor, and every stage as (label, stage, key). :func:`read_status` then tells each one's
state from what is on disk — ``done`` (its completion marker is valid), else what the job
ledger says (``queued``, ``running``, ``failed`` with its log and error), else ``pending`` —
so it works whichever executor ran the jobs, and while a run is going on.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ..io.atomic import write_json
from .stage import DONE

PLAN_FILE = ".speechmine-plan.json"


def _entries(p: Any, kps: Any = None) -> list[dict[str, str]]:
    # the logical index stage is never a job: its train/populate/merge children are
    out = [{"label": label, "stage": st.name, "key": st.key}
           for label, st in p.stages().items() if st.name != "index"]
    for side in p.embedded_sides():
        if len(side.parts) > len(side.embed):  # a split side: its parts are the jobs
            kind = side.embed[0].name
            out = [e for e in out if not e["label"].startswith(side.label(kind) + ".")]
            out += [{"label": side.label(kind, i), "stage": st.name, "key": st.key}
                    for i, st in enumerate(side.parts)]
    for (src, tgt, _), kp in zip(p.spaces(), kps or ()):
        if kp.exact:
            continue
        out = [e for e in out if e["label"] != src.prefix + "knn"]
        for side, parts in ((src, kp.fwd), (tgt, kp.bwd)):
            out += [{"label": side.label("knn", i), "stage": j.stage.name, "key": j.stage.key}
                    for i, j in enumerate(parts)]
            ip = parts[0].target.index if parts else None
            if ip is not None:
                into = tgt if side is src else src
                out += [{"label": into.label("index_train"), "stage": ip.train.name,
                         "key": ip.train.key},
                        {"label": into.label("index_merge"), "stage": ip.merged.name,
                         "key": ip.merged.key}]
                out += [{"label": into.label("index_populate", i), "stage": "index_populate",
                         "key": ip.populate(i).key} for i in range(len(ip.parts))]
    return out


def write_status_plan(out_dir: Path, p: Any, kps: Any = None) -> None:
    """Record the run's stages for :func:`read_status` (see module doc); ``kps``: the kNN
    plan of each of the plan's spaces, once known."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / PLAN_FILE, {"work_dir": str(p.work),
                                     "executor": p.cfg.launcher.cluster,
                                     "stages": _entries(p, kps)})


def marker_ok(work: Path, stage: str, key: str) -> bool:
    """Is ``work/<stage>/<key>`` complete (marker with this key, files of its sizes)?"""
    folder = work / stage / key
    try:
        marker = json.loads((folder / DONE).read_text())
        return bool(marker.get("key") == key and all(
            (folder / rel).stat().st_size == size for rel, size in marker["files"].items()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def read_status(out_dir: Path) -> dict[str, Any]:
    """Every stage of the last run started in ``out_dir`` with its state (see module doc).

    Returns ``{"work_dir", "executor", "finished": bool, "stages": [{label, stage, key,
    state, log?, error?, attempt?}], "counts": {stage: {state: n}}}``; raises
    ``FileNotFoundError`` when no run was started there."""
    info = json.loads((out_dir / PLAN_FILE).read_text())
    work = Path(info["work_dir"])
    rows = []
    for e in info["stages"]:
        row = dict(e)
        if marker_ok(work, e["stage"], e["key"]):
            row["state"] = "done"
        else:
            ledger = _ledger(work, e["stage"], e["key"])
            row["state"] = ledger.get("state", "pending") if ledger else "pending"
            if row["state"] == "done":  # the job ended but its output is gone or partial
                row["state"] = "pending"
            for k in ("log", "error", "attempt", "job_id", "host"):
                if ledger and ledger.get(k) is not None:
                    row[k] = ledger[k]
        rows.append(row)
    counts: dict[str, Counter[str]] = {}
    for r in rows:
        counts.setdefault(r["stage"], Counter())[r["state"]] += 1
    return {"work_dir": str(work), "executor": info.get("executor"),
            "finished": (out_dir / "run.json").exists(), "stages": rows,
            "counts": {k: dict(v) for k, v in counts.items()}}


def _ledger(work: Path, stage: str, key: str) -> dict[str, Any] | None:
    try:
        out = json.loads((work / "jobs" / stage / f"{key}.json").read_text())
        return out if isinstance(out, dict) else None
    except (OSError, ValueError):
        return None
