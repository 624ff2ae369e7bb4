"""Outputs stage: peak memory and time of the streaming writer against the dict-based writer
it replaced, measured in the same run on one synthetic corpus.

    python benchmarks/outputs_memory.py                         # 1M lines a side, 300k pairs
    python benchmarks/outputs_memory.py --lines 200000 --pairs 60000
    python benchmarks/outputs_memory.py --repeat 3    # best time of 3 (a shared machine)

Baseline ("old"): the writer as it was before issue 11 (speechmine 0ed77a3), copied below
verbatim as :func:`old_write_pairs`: every paired line's text and meta read into dicts, text
dedup through a Python set of (src text, tgt text) tuples. "new": ``speechmine.pipeline.
outputs.write_pairs`` (columns in an on-disk store read by position, dedup by 128-bit text
hashes). Both write the same bytes; this script checks it on every case it measures.

The corpus: ``--lines`` lines a side in 4 plain-text shards with meta files, ~80 characters
a line (some non-ASCII, tabs and quotes), ``--pairs`` pairs in score order, a tenth of them
text duplicates of another pair (so dedup removes them). Each (case, writer) runs in its own
child process, so ``ru_maxrss`` is that writer's own peak; "extra" is the peak minus the RSS
before the writer starts (alignment and sides already loaded; the peak is reset then through
``/proc/self/clear_refs``). Cases: the speechmine layout
and stopes' layout, both with text dedup and meta files.

A second part measures ``mine.unify`` in the inputs stage the same way: the first
occurrences among ``--unify-rows`` 128-bit line hashes in 8 scan files (a third of them
repeats), through a Python set walked in order (the inputs stage before issue 11, copied as
:func:`old_unify`) against :func:`speechmine.io.ondisk.first_occurrences`; the two keep
masks are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from speechmine.config.model import DataConfig, EncoderConfig, SideConfig
from speechmine.io.atomic import atomic_open, write_npz
from speechmine.io.text import iter_raw_lines
from speechmine.pipeline.side import Side
from speechmine.pipeline.stage import Stage
from speechmine.types import BWD, DIRECTION_NAMES, Alignment, SideInputs

SHARDS = 4
CASES = {"speechmine": {"layout": "speechmine", "dedup_texts": True, "max_score": None},
         "stopes": {"layout": "stopes", "dedup_texts": True, "max_score": 1.45}}


# ------------------------------------------------------------------------------ sides


def make_side(role: str, shards: list[str], metas: list[str] | None,
              modality: str = "text", units: str = "samples") -> Side:
    """A :class:`Side` over existing files, every line kept (what the outputs stage reads:
    its shards, metas, sizes and modality)."""
    sizes = [sum(1 for _ in iter_raw_lines(s)) for s in shards]
    cfg = SideConfig(name=role, lang=role, encoder=EncoderConfig("toy"),
                     data=DataConfig(shard_type="speech" if modality == "speech" else "text",
                                     manifest_units=units))  # type: ignore[arg-type]
    inputs = SideInputs(shards=list(shards), sizes=sizes,
                        kept=np.arange(sum(sizes), dtype=np.int64), metas=metas)
    return Side(role=role, cfg=cfg, shards=list(shards), metas=metas, nl_file=None,
                segment=[], scan=[], inputs_stage=Stage("inputs", 0), embed=[],
                index=Stage("index", 0), inputs=inputs)


# ------------------------------------------------------------------------------ the old writer
# Verbatim from src/speechmine/pipeline/outputs.py and io/text.py at 0ed77a3 (renamed with
# an old_ prefix): the baseline, importable only from here.


def _clean(s: str) -> str:
    return s.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def old_read_lines_by_id(side: SideInputs, ids: np.ndarray, files: list[str] | None = None
                         ) -> dict[int, str]:
    files = side.shards if files is None else files
    wanted = np.unique(ids)
    offsets = side.offsets
    out: dict[int, str] = {}
    for s, path in enumerate(files):
        lo, hi = offsets[s], offsets[s + 1]
        in_shard = wanted[(wanted >= lo) & (wanted < hi)]
        if len(in_shard) == 0:
            continue
        targets = set((in_shard - lo).tolist())
        for i, raw in enumerate(iter_raw_lines(path)):
            if i in targets:
                out[int(lo + i)] = raw.decode("utf-8", errors="replace")
    return out


def old_side_columns(side: Side, ids: np.ndarray) -> tuple[dict[int, str], dict[int, str]]:
    texts = old_read_lines_by_id(side.inputs, ids)
    if side.cfg.modality == "speech":
        from speechmine.io.speech_inputs import speech_meta

        metas = {g: speech_meta(texts[g], side, g) for g in texts}
    elif side.inputs.metas:
        metas = old_read_lines_by_id(side.inputs, ids, files=side.inputs.metas)
    else:
        metas = {}
        for g in np.unique(ids).tolist():
            f, line = side.inputs.locate(g)
            metas[g] = f"{f}:{line}"
    return texts, metas


def old_dedup_texts(al: Alignment, s_text: dict[int, str], t_text: dict[int, str]
                    ) -> Alignment:
    seen: set[tuple[str, str]] = set()
    keep = []
    for i, (s, t) in enumerate(zip(al.src.tolist(), al.tgt.tolist())):
        texts = (s_text[s], t_text[t])
        if texts not in seen:
            seen.add(texts)
            keep.append(i)
    return al.take(np.asarray(keep, dtype=np.int64))


def old_write_pairs(folder: Path, prefix: str, al: Alignment, src: Side, tgt: Side,
                    pairs: dict[str, Any], layout: str) -> None:
    (folder / prefix).parent.mkdir(parents=True, exist_ok=True)
    s_text, s_meta = old_side_columns(src, al.src)
    t_text, t_meta = old_side_columns(tgt, al.tgt)
    if layout == "stopes" and pairs["max_score"] is not None:
        al = al.take(np.flatnonzero(al.scores <= pairs["max_score"]))
    if pairs["dedup_texts"]:
        al = old_dedup_texts(al, s_text, t_text)
    if layout == "stopes":
        _old_write_stopes_rows(folder / prefix, al, (s_text, s_meta, src),
                               (t_text, t_meta, tgt))
        return
    with atomic_open(folder / f"{prefix}.bitext.tsv.gz", gz=True) as bt, \
            atomic_open(folder / f"{prefix}.bimeta.tsv.gz", gz=True) as bm:
        for score, s, t, d in zip(al.scores.tolist(), al.src.tolist(), al.tgt.tolist(),
                                  al.direction.tolist()):
            sc = f"{score:.6f}"
            bt.write(f"{sc}\t{_clean(s_text[s])}\t{_clean(t_text[t])}\n")
            bm.write(f"{sc}\t{_clean(s_meta[s])}\t{_clean(t_meta[t])}\t{DIRECTION_NAMES[d]}\n")
    write_npz(folder / f"{prefix}.align.npz", scores=al.scores, src_ids=al.src, tgt_ids=al.tgt,
              direction=al.direction)


def _old_write_stopes_rows(prefix: Path, al: Alignment, src: tuple[dict[int, str], Any, Side],
                           tgt: tuple[dict[int, str], Any, Side]) -> None:
    import csv

    (s_text, s_meta, s_side), (t_text, t_meta, t_side) = src, tgt
    has_meta = bool(s_side.inputs.metas and t_side.inputs.metas)
    with atomic_open(f"{prefix}.bitext.tsv.gz", gz=True) as bt, \
            atomic_open(f"{prefix}.bimeta.tsv.gz", gz=True) as bm:
        texts, metas = csv.writer(bt, delimiter="\t"), csv.writer(bm, delimiter="\t")
        for score, s, t, d in zip(al.scores, al.src.tolist(), al.tgt.tolist(),
                                  al.direction.tolist()):
            texts.writerow([score, s_text[s], t_text[t]])
            metas.writerow([score, s_meta[s] if has_meta else "",
                            t_meta[t] if has_meta else "", "bwd" if d == BWD else "fwd"])


def old_unify(hash_files: list[Path]) -> np.ndarray:
    """The inputs stage's unify before issue 11: a set of every hash, walked in order."""
    seen: set[bytes] = set()
    keeps = []
    for path in hash_files:
        hashes = np.load(path)
        first = np.ones(len(hashes), dtype=bool)
        for i, h in enumerate(hashes.tolist()):
            if h in seen:
                first[i] = False
            else:
                seen.add(h)
        keeps.append(first)
    return np.concatenate(keeps)


# ------------------------------------------------------------------------------ corpus

_WORDS = ("the of and to in is was for on that with as by at from it this be are an or "
          "which have has not one all their more were been also its but new other two "
          "café naïve Straße élève garçon ünïcödé 東京 Москва «quoted» \"quote\" it's "
          "a\tb x\"y déjà-vu").split(" ")


def build_corpus(d: Path, lines: int, pairs: int, seed: int = 0) -> None:
    """Shards, metas and ``al.npz`` in ``d`` (see module doc)."""
    rng = np.random.default_rng(seed)
    twins = pairs // 10
    base = rng.choice(lines, size=(2, pairs - twins), replace=True)
    pick = rng.choice(pairs - twins, size=twins, replace=False)
    # twin lines: copies of the picked pairs' lines at other positions
    slots = [rng.choice(np.setdiff1d(np.arange(lines), base[k]), size=twins, replace=False)
             for k in range(2)]
    for k, lang in enumerate(("src", "tgt")):
        n_words = rng.integers(6, 20, size=lines)
        words = rng.integers(0, len(_WORDS), size=int(n_words.sum()))
        ends = np.cumsum(n_words)
        text = [" ".join(_WORDS[w] for w in words[e - n:e])
                for e, n in zip(ends.tolist(), n_words.tolist())]
        for slot, orig in zip(slots[k].tolist(), base[k][pick].tolist()):
            text[slot] = text[orig]
        per = -(-lines // SHARDS)
        for s in range(SHARDS):
            part = range(s * per, min(lines, (s + 1) * per))
            (d / f"{lang}.{s:03d}.txt").write_text("".join(text[i] + "\n" for i in part),
                                                   encoding="utf-8")
            (d / f"{lang}.{s:03d}.meta").write_text(
                "".join(f"doc-{i // 50}\tpara {i % 50}\n" for i in part), encoding="utf-8")
    src = np.concatenate([base[0], slots[0]])
    tgt = np.concatenate([base[1], slots[1]])
    scores = np.round(rng.uniform(1.0, 1.5, size=pairs), 3).astype(np.float32)
    scores[pairs - twins:] = scores[pick]  # a twin scores as its original: dedup by order
    order = np.lexsort((tgt, src, -scores))
    np.savez(d / "al.npz", scores=scores[order], src=src[order], tgt=tgt[order],
             direction=rng.integers(0, 3, size=pairs).astype(np.int8))


def build_hashes(d: Path, rows: int, files: int = 8, seed: int = 0) -> list[Path]:
    """``files`` scan-like ``hashes.npy`` files, ``rows`` hashes in all, a third repeats."""
    rng = np.random.default_rng(seed)
    distinct = rows - rows // 3
    values = np.frombuffer(rng.bytes(16 * distinct), dtype="S16")
    rows_of = np.concatenate([np.arange(distinct), rng.integers(0, distinct, rows // 3)])
    rng.shuffle(rows_of)
    paths = []
    for k, part in enumerate(np.array_split(rows_of, files)):
        paths.append(d / f"hashes.{k}.npy")
        np.save(paths[-1], values[part])
    return paths


def load_corpus(d: Path) -> tuple[Alignment, Side, Side]:
    with np.load(d / "al.npz") as z:
        al = Alignment(z["scores"], z["src"], z["tgt"], z["direction"])
    sides = [make_side(lang, [str(d / f"{lang}.{s:03d}.txt") for s in range(SHARDS)],
                       [str(d / f"{lang}.{s:03d}.meta") for s in range(SHARDS)])
             for lang in ("src", "tgt")]
    return al, sides[0], sides[1]


# ------------------------------------------------------------------------------ measuring


def _status_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, MiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    """Start ``VmHWM`` again from the current RSS (Linux ≥ 4.0), so the peak measured is the
    writer's and not the set-up's."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def child(corpus: Path, case: str, which: str, out: Path) -> None:
    """Run one writer (or unify) once; print a JSON line of its figures."""
    from speechmine.io.ondisk import first_occurrences
    from speechmine.pipeline.outputs import write_pairs

    if case == "unify":
        files = sorted(corpus.glob("hashes.*.npy"))
    else:
        al, src, tgt = load_corpus(corpus)
    before = _status_mib("VmRSS")
    reset = _reset_peak()
    t = time.perf_counter()
    if case == "unify" and which == "old":
        np.save(out / "keep.npy", old_unify(files))
    elif case == "unify":
        keep, _ = first_occurrences(files, out / "scratch")
        np.save(out / "keep.npy", keep)
        del keep
        for p in (out / "scratch").iterdir():
            p.unlink()
        (out / "scratch").rmdir()
    else:
        write = old_write_pairs if which == "old" else write_pairs
        cfg = CASES[case]
        write(out, "src-tgt", al, src, tgt,
              {"dedup_texts": cfg["dedup_texts"], "max_score": cfg["max_score"]},
              str(cfg["layout"]))
    seconds = time.perf_counter() - t
    # without a reset, ru_maxrss may be the set-up's peak: extra is then a lower bound
    peak = (_status_mib("VmHWM") if reset
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "extra_mib": peak - before}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines a side")
    ap.add_argument("--pairs", type=int, default=300_000, help="pairs in the alignment")
    ap.add_argument("--unify-rows", type=int, default=6_000_000,
                    help="line hashes for the unify part (0: skip it)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each writer: the fastest time, the largest memory")
    ap.add_argument("--child", nargs=4, metavar=("CORPUS", "CASE", "WHICH", "OUT"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        corpus, case, which, out = args.child
        child(Path(corpus), case, which, Path(out))
        return
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        t = time.perf_counter()
        build_corpus(corpus, args.lines, args.pairs)
        size = sum(p.stat().st_size for p in corpus.glob("*.txt")) / 2**20
        print(f"corpus: {args.lines:,} lines a side ({size / 2:.0f} MiB of text a side), "
              f"{args.pairs:,} pairs; built in {time.perf_counter() - t:.0f} s")
        cases = list(CASES)
        if args.unify_rows:
            build_hashes(corpus, args.unify_rows)
            cases.append("unify")
            print(f"unify: {args.unify_rows:,} hashes in 8 files")
        print("| case | old s | new s | new/old time | old extra MiB | new extra MiB "
              "| new/old memory | old peak | new peak |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for case in cases:
            got: dict[str, dict[str, float]] = {}
            for _ in range(args.repeat):  # old and new alternate: load changes hit both
                for which in ("old", "new"):
                    out = Path(tmp) / f"{case}-{which}"
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir()
                    proc = subprocess.run([sys.executable, __file__, "--child", str(corpus),
                                           case, which, str(out)], capture_output=True,
                                          text=True, check=True)
                    run = json.loads(proc.stdout.strip().splitlines()[-1])
                    best = got.setdefault(which, run)  # fastest time, largest memory
                    best["seconds"] = min(best["seconds"], run["seconds"])
                    for k in ("peak_mib", "extra_mib"):
                        best[k] = max(best[k], run[k])
            files = sorted(p.relative_to(Path(tmp) / f"{case}-old")
                           for p in (Path(tmp) / f"{case}-old").rglob("*") if p.is_file())
            for rel in files:
                a = (Path(tmp) / f"{case}-old" / rel).read_bytes()
                b = (Path(tmp) / f"{case}-new" / rel).read_bytes()
                if a != b:
                    raise SystemExit(f"{case}: {rel} differs between old and new")
            o, n = got["old"], got["new"]
            print(f"| {case} | {o['seconds']:.1f} | {n['seconds']:.1f} "
                  f"| {n['seconds'] / o['seconds']:.2f} | {o['extra_mib']:.0f} "
                  f"| {n['extra_mib']:.0f} | {n['extra_mib'] / o['extra_mib']:.3f} "
                  f"| {o['peak_mib']:.0f} | {n['peak_mib']:.0f} |")
        print(f"(files identical old vs new: {', '.join(cases)})")


if __name__ == "__main__":
    main()
