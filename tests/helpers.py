"""Helpers shared by the tests (pytest puts this folder on sys.path: ``import helpers``).

* a number-word corpus with known answers for the toy encoder (:class:`Corpus`);
* the tiny Debian corpus (``tests/data/tiny``) and its stopes-named shards;
* synthetic audio and stopes manifests; the tiny SONAR fixtures' encoder configs;
* running the CLI in a subprocess (kill tests) and reading outputs.
* a local HTTP file server for download tests (:class:`FileServer`).
"""

from __future__ import annotations

import gzip
import lzma
import os
import random
import subprocess
import sys
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import yaml

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
TINY = DATA / "tiny"
SONAR_DATA = DATA / "sonar"
TINY_LANGS = ["eng_Latn", "fra_Latn", "deu_Latn"]
SR = 16_000
#: the committed speech demo (English audio, French and English text, gold)
DEMO = TESTS.parent / "src" / "speechmine" / "data" / "speech_demo"


# ------------------------------------------------------------------------------ toy corpus

def _words(lang: str) -> list[str]:
    from speechmine.encoders.toy import _WORDS

    return _WORDS[lang].split()


_NUMS = [(a, b) for a in range(1, 21) for b in range(a + 1, 21)]


def sentences(n: int, start: int = 0) -> tuple[list[str], list[str]]:
    """n aligned (en, fr) sentences, each naming a different pair of numbers (≤ 190)."""
    en, fr = _words("en"), _words("fr")
    pairs = _NUMS[start: start + n]
    return ([f"{en[a]} and {en[b]}" for a, b in pairs],
            [f"{fr[a]} et {fr[b]}" for a, b in pairs])


def write_lines(path: Path, lines: list[str] | list[bytes] | list[str | bytes]) -> Path:
    """One line per item (bytes written as is); ``.gz`` names are gzip-compressed."""
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


class Corpus:
    """en.txt / fr.txt (+ metas) in ``d``; ``gold`` maps en line id → fr line id."""

    def __init__(self, d: Path, en: list[str], fr: list[str], seed: int = 0,
                 metas: bool = True) -> None:
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        perm = list(range(len(fr)))
        random.Random(seed).shuffle(perm)  # fr line j holds translation perm[j]
        self.en, self.fr = list(en), [fr[p] for p in perm]
        self.gold = {perm[j]: j for j in range(len(fr))}
        write_lines(d / "en.txt", self.en)
        write_lines(d / "fr.txt", self.fr)
        if metas:
            write_lines(d / "en.meta.txt", [f"en-meta-{i}" for i in range(len(self.en))])
            write_lines(d / "fr.meta.txt", [f"fr-meta-{j}" for j in range(len(self.fr))])


def toy_preset(tmp_path: Path, data_dir: Path, out: Path | None = None, name: str = "cfg",
               extra: dict[str, Any] | None = None, glob: str = "{lang}.txt",
               meta: bool = True) -> Path:
    """A stopes-shaped preset over a :class:`Corpus` folder with the toy encoder."""
    cfg: dict[str, Any] = {
        "src_lang": "en", "tgt_lang": "fr",
        "output_dir": str(out or tmp_path / "out"), "progress": False,
        "data": {"data_shard_dir": str(data_dir),
                 "shard_glob": "${.data_shard_dir}/" + glob},
        "embed_text": {"encoder": {"_target_": "toy"}},
        "lang_configs": {"en": {}, "fr": {}},
    }
    if meta:
        cfg["data"]["meta_glob"] = "${.data_shard_dir}/{lang}.meta.txt"
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return write_preset(tmp_path / f"{name}.yaml", cfg)


def make_config(tmp_path: Path, data_dir: Path, out: Path | None = None, name: str = "cfg",
                extra: dict[str, Any] | None = None, overrides: list[str] | None = None,
                glob: str = "{lang}.txt", meta: bool = True) -> Any:
    """:func:`toy_preset`, loaded."""
    from speechmine.config import load_config

    return load_config(toy_preset(tmp_path, data_dir, out, name, extra, glob, meta),
                       overrides or [])


def write_preset(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def pairs_of(result: Any) -> dict[int, int]:
    al = result.alignment
    return dict(zip(al.src.tolist(), al.tgt.tolist()))


def read_gz_rows(path: str | Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [line.rstrip("\n").split("\t") for line in fh]


# ------------------------------------------------------------------------------ tiny corpus

def tiny_lines(lang: str) -> list[str]:
    with gzip.open(TINY / f"{lang}.txt.gz", "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def write_sharded(dst: Path, n_shards: int = 4) -> None:
    """The tiny corpus as stopes-named shards (gz, xz and plain mixed) with .nl files."""
    dst.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "fr"):
        lines = tiny_lines(lang)
        parts = np.array_split(np.arange(len(lines)), n_shards)
        counts = []
        for s, idx in enumerate(parts):
            body = "".join(lines[i] + "\n" for i in idx).encode()
            name = dst / f"tiny.text.{lang}.{s:03d}"
            if s % 2 == 0:
                Path(f"{name}.gz").write_bytes(gzip.compress(body, mtime=0))
            else:
                Path(f"{name}.xz").write_bytes(lzma.compress(body))
            counts.append(str(len(idx)))
        (dst / f"{lang}.nl").write_text("\n".join(counts) + "\n")


def sharded_preset(tmp: Path, data_dir: Path, out: Path, encoder: dict[str, Any],
                   **extra: Any) -> Path:
    """A preset over :func:`write_sharded` shards (stopes name pattern, .nl files)."""
    cfg = {
        "src_lang": "en", "tgt_lang": "fr", "output_dir": str(out),
        "data": {"data_version": "t", "iteration": 1, "data_shard_dir": str(data_dir),
                 "shard_type": "text", "bname": "tiny", "nl_file_template": "{lang}.nl"},
        "embed_text": {"encoder": encoder}, "progress": False,
        "lang_configs": {"en": None, "fr": None}, **extra,
    }
    return write_preset(tmp / "preset.yaml", cfg)


# ------------------------------------------------------------------------------ speech

def make_audio(folder: Path, n_files: int = 3, seed: int = 0) -> list[tuple[str, int, int]]:
    """Files of chirps and noise bursts in ``folder``; returns segments (path relative to the
    folder's parent, start, end)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    segs = []
    for f in range(n_files):
        pieces, pos = [], 0
        for _ in range(4):
            n = int(SR * rng.uniform(0.4, 1.2))
            t = np.arange(n) / SR
            f0 = rng.uniform(150, 900)
            sig = 0.3 * np.sin(2 * np.pi * (f0 + 200 * t) * t) + 0.05 * rng.standard_normal(n)
            gap = np.zeros(int(SR * 0.3))
            pieces += [sig, gap]
            segs.append((f"{folder.name}/file{f}.wav", pos, pos + n))
            pos += n + len(gap)
        sf.write(folder / f"file{f}.wav", np.concatenate(pieces).astype(np.float32), SR)
    return segs


def write_manifest(path: Path, segs: list[tuple[str, int, int]], order: Any = None) -> Path:
    order = range(len(segs)) if order is None else order
    path.write_text("".join(f"{segs[i][0]}\t{segs[i][1]}\t{segs[i][2]}\t0\n" for i in order))
    return path


def sonar_text_cfg(folder: Path) -> dict[str, Any]:
    """stopes' SONAR text encoder block, pointing at the tiny fixture in ``folder``."""
    return {"_target_": "stopes.modules.preprocess.sonar_sentence_encoder.SonarTextEncoder",
            "_name": str(folder / "tiny_text_encoder.pt"),
            "tokenizer": str(folder / "tiny_spm.model"), "lang_table": TINY_LANGS,
            "max_seq_len": 64, "spm_vocab": None}


def sonar_speech_cfg(folder: Path) -> dict[str, Any]:
    """stopes' SONAR speech encoder block, pointing at the tiny fixture in ``folder``."""
    return {"_target_":
            "stopes.modules.preprocess.mining_speech_encoder.Sonar2MiningSpeechEncoder",
            "encoder_model": str(folder / "tiny_speech_encoder.pt"),
            "_name": "sonar2_speech_encoder", "spm_model": None, "fp16": False,
            "num_processes": 4}


def sonar_options(folder: Path, **extra: Any) -> dict[str, Any]:
    """Options that build the tiny SONAR text encoder from ``folder``."""
    return {"model": str(folder / "tiny_text_encoder.pt"),
            "tokenizer": str(folder / "tiny_spm.model"), "lang_table": TINY_LANGS,
            "max_seq_len": 64, "device": "cpu", **extra}


def read_wav(path: Path) -> np.ndarray:
    """16-bit PCM mono wav → float32 in [-1, 1] (what SONAR's audio decoder yields)."""
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == 16_000
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    """``(round(seconds * sr),)`` float32 sine."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(x: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the largest FFT bin."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


def words(text: str) -> list[str]:
    """Lower-case words for WER ("Mr." and "mister" count as the same word)."""
    import re

    text = text.lower().replace("mr.", "mister").replace("-", " ")
    return re.sub(r"[^a-z' ]", " ", text).split()


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between word lists (substitutions + insertions + deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        new = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            new[j] = min(row[j] + 1, new[j - 1] + 1, row[j - 1] + (r != h))
        row = new
    return row[-1]


# ------------------------------------------------------------------------------ CLI

def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
        check: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m speechmine.cli ARGS`` in a subprocess (real process: can be killed)."""
    proc = subprocess.run([sys.executable, "-m", "speechmine.cli", *args], text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"speechmine {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def output_bytes(out: Path) -> dict[str, bytes]:
    """Every file of a finished output dir (work/ and the lock aside) by name; run.json
    without its timings and the per-run 'embedded now' counts."""
    import json

    files = {}
    for p in sorted(out.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            files[p.name] = p.read_bytes()
    if "run.json" in files:
        info = json.loads(files["run.json"])
        info.pop("timings_s", None)
        for role in ("src", "tgt"):
            info["counts"][role].pop("shards_embedded_this_run", None)
        info["outputs"] = {k: Path(v).name for k, v in info["outputs"].items()}
        files["run.json"] = json.dumps(info, sort_keys=True).encode()
    return files


def comparable_outputs(out: Path, drop: tuple[str, ...] = ("config_file",)) -> dict[str, Any]:
    """:func:`output_bytes` of two runs made to compare: without config.yaml (it names the
    folder and the launcher), run.json parsed and without the keys ``drop`` (by default the
    config file's name)."""
    import json

    files: dict[str, Any] = output_bytes(out)
    files.pop("config.yaml")
    info = json.loads(files.pop("run.json"))
    for key in drop:
        info.pop(key)
    return {**files, "run.json": info}


def ledger_entries(out: Path, stage: str) -> list[dict[str, Any]]:
    """The job ledger entries of ``stage`` in ``out``'s work dir (``work/jobs/<stage>/``)."""
    import json

    return [json.loads(p.read_text())
            for p in sorted((out / "work" / "jobs" / stage).glob("*.json"))]


# ------------------------------------------------------------------------------ HTTP server

class FileServer:
    """Serves ``files`` (name → bytes) over HTTP on 127.0.0.1 (a free port) for download tests.

    Any GET whose last path component is a key of ``files`` gets that file; others get 404.
    ``Range: bytes=N-`` is answered with 206 and the tail from byte N (416 past the end)
    unless ``honour_range`` is False, then with 200 and the whole file, as servers that
    ignore ranges do. While ``cut_next`` > 0, each response sends half its body, closes the
    connection and decrements it: an interrupted transfer. ``requests`` records every GET
    as (file name, Range header or None). ``url`` is the base URL, ending in ``path``
    (e.g. ``/SONAR``), under which the files are served. Call :meth:`close` when done.
    """

    def __init__(self, files: dict[str, bytes], path: str = "") -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (name, Range header)
        self.cut_next = 0  # number of responses still to cut mid-body
        self.honour_range = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and server.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                chunk = body[start:]
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if server.cut_next:
                    server.cut_next -= 1
                    self.wfile.write(chunk[: len(chunk) // 2])  # then drop the connection
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"
        # a short poll interval so that close() returns at once
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def names(self) -> list[str]:
        """The file names requested so far, sorted (repeats kept)."""
        return sorted(name for name, _ in self.requests)

    def close(self) -> None:
        """Stop serving and free the port."""
        self.httpd.shutdown()
        self.httpd.server_close()
