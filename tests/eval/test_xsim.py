"""xSIM on toy sets whose answers are known: the toy encoder finds every number sentence's
translation, so a permutation of the target lines decides every error; hard negatives
closer than the target (xSIM++); duplicates (by text: no error); the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import sentences, write_lines

from speechmine import encoders
from speechmine.cli import main
from speechmine.eval.xsim import MISALIGNED, xsim, xsim_both

N = 40
#: target lines moved in a cycle: 3 holds 7's translation, 7 holds 11's, …, 33 holds 3's
MOVED = [3, 7, 11, 20, 33]


def _permuted() -> tuple[list[str], list[str], list[int]]:
    """English sentences, French ones with MOVED rotated; ``where[i]``: the line holding
    source i's translation."""
    en, fr = sentences(N)
    perm = list(range(N))
    for a, b in zip(MOVED, MOVED[1:] + MOVED[:1]):
        perm[a] = b
    where = [perm.index(i) for i in range(N)]
    return en, [fr[perm[i]] for i in range(N)], where


def _embed(lines: list[str], lang: str) -> np.ndarray:
    return encoders.create("toy", lang=lang).encode(lines)


def test_permuted_targets_are_the_errors_both_ways() -> None:
    en, fr, where = _permuted()
    x, y = _embed(en, "en"), _embed(fr, "fr")
    fwd, bwd = xsim_both(x, y)
    assert fwd.direction == "src→tgt" and bwd.direction == "tgt→src"
    assert fwd.nearest.tolist() == where  # every answer is the translation, wherever it is
    assert bwd.nearest.tolist() == [where.index(j) for j in range(N)]
    assert np.flatnonzero(fwd.errors).tolist() == MOVED
    assert (fwd.n_errors, bwd.n_errors, fwd.n) == (5, 5, N)
    assert fwd.error_rate == pytest.approx(5 / N)
    assert fwd.to_dict()["xsim_percent"] == 12.5
    # the same answers one direction at a time
    assert xsim(x, y).nearest.tolist() == where
    assert xsim(y, x).nearest.tolist() == bwd.nearest.tolist()
    # the identity: no error; every margin (LASER's three)
    for margin in ("ratio", "distance", "absolute"):
        assert xsim(x, _embed(sentences(N)[1], "fr"), margin=margin).n_errors == 0


def test_hard_negatives_closer_than_the_target_are_errors() -> None:
    """xSIM++: negatives join the target pool. 'un deux' (no 'et') is closer to 'one and
    two' than 'un et deux' is, for the toy encoder; negatives of other numbers are not."""
    en, fr = sentences(N)
    x, y = _embed(en, "en"), _embed(fr, "fr")
    close = [fr[i].replace(" et ", " ") for i in range(6)]  # sources 0–5
    far = [f"{fr[i]} et vingt" for i in range(6, 10)]  # another number: never nearer
    neg = _embed(close + far, "fr")
    texts = close + far
    types = {t: {"src": fr[i], "errtype": "dropped word"} for i, t in enumerate(close[:4])}
    types[close[4]] = {"src": fr[9], "errtype": "dropped word"}  # made from another target
    r = xsim(x, y, negatives=neg, tgt_texts=fr, negative_texts=texts, negative_types=types)
    assert r.pool == N + 10
    assert r.nearest[:6].tolist() == [N + i for i in range(6)]
    assert np.flatnonzero(r.errors).tolist() == [0, 1, 2, 3, 4, 5]
    assert r.error_types == {"dropped word": 4, MISALIGNED: 2}
    fwd, bwd = xsim_both(x, y, negatives=neg)  # the reverse direction has no negatives
    assert (fwd.n_errors, bwd.n_errors, bwd.pool) == (6, 0, N)


def test_duplicates_are_errors_by_index_not_by_text() -> None:
    en, fr = sentences(N)
    en[30], fr[30] = en[10], fr[10]  # line 30 repeats line 10 on both sides
    x, y = _embed(en, "en"), _embed(fr, "fr")
    by_index = xsim(x, y)
    assert np.flatnonzero(by_index.errors).tolist() == [30]  # tie: the smaller index, 10
    assert by_index.nearest[30] == 10
    by_text = xsim(x, y, tgt_texts=fr, by_text=True)
    assert by_text.n_errors == 0 and by_text.by_text
    fwd, bwd = xsim_both(x, y, src_texts=en, tgt_texts=fr, by_text=True)
    assert fwd.n_errors == bwd.n_errors == 0


def test_bad_arrays() -> None:
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="aligned collections: 4 sources but 3 targets"):
        xsim(x, x[:3])
    with pytest.raises(ValueError, match="differ in dimension"):
        xsim(x, np.eye(4, 5, dtype=np.float32))
    with pytest.raises(ValueError, match="unknown margin"):
        xsim(x, x, margin="cosine")
    with pytest.raises(ValueError, match="need the targets' texts"):
        xsim(x, x, by_text=True)
    # k larger than a side is clamped (a warning), not an error
    assert xsim(x[:2], x[:2], k=4).n_errors == 0


# ------------------------------------------------------------------------------ CLI

def _run(*args: str) -> tuple[int, str]:
    """Exit code and stdout (with stderr when it failed: the error line)."""
    res = CliRunner().invoke(main, ["-q", "xsim", *args])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout if res.exit_code == 0 else res.output


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    en, fr, _ = _permuted()
    return {"en": write_lines(tmp_path / "en.txt", en),
            "fr": write_lines(tmp_path / "fr.txt.gz", fr), "dir": tmp_path}


def test_cli_text_files(files: dict[str, Path]) -> None:
    code, out = _run(str(files["en"]), str(files["fr"]), "--src-encoder", "toy",
                     "--show-errors", "2")
    assert code == 0, out
    assert "xSIM: ratio margin, k=4, exact search (LASER's definition), errors by index" in out
    assert "src→tgt   12.50 %  (5 errors of 40)" in out
    assert "tgt→src   12.50 %  (5 errors of 40)" in out
    assert "line 4: 'one and five' → line 34" in out  # the first error, 1-based lines
    code, out = _run(str(files["en"]), str(files["fr"]), "--src-encoder", "toy", "--json",
                     "-k", "2", "--margin", "distance")
    doc = json.loads(out)
    assert [d["errors"] for d in doc["directions"]] == [5, 5]
    assert doc["directions"][0] | {"xsim": 0} == {
        "direction": "src→tgt", "errors": 5, "n": 40, "xsim": 0, "xsim_percent": 12.5,
        "pool": 40, "hard_negatives": 0, "k": 2, "margin": "distance", "compare": "index"}
    assert doc["encoders"] == ["toy", "toy"]


def test_cli_hard_negatives_and_types(files: dict[str, Path]) -> None:
    en, fr = sentences(N)
    d = files["dir"]
    write_lines(d / "fr_ok.txt", fr)
    neg = [fr[i].replace(" et ", " ") for i in range(3)]
    write_lines(d / "neg.txt", neg)
    (d / "types.json").write_text(json.dumps(
        {t: {"src": fr[i], "errtype": "dropped word"} for i, t in enumerate(neg)}))
    code, out = _run(str(files["en"]), str(d / "fr_ok.txt"), "--src-encoder", "toy",
                     "--hard-negatives", str(d / "neg.txt"), "--hard-negative-types",
                     str(d / "types.json"), "--by-text")
    assert code == 0, out
    assert out.startswith("xSIM++")
    assert "src→tgt    7.50 %  (3 errors of 40, pool of 43 with 3 hard negatives)" in out
    assert "dropped word: 3" in out
    assert "tgt→src    0.00 %" in out


def test_cli_embeddings_and_preset(files: dict[str, Path]) -> None:
    en, fr, _ = _permuted()
    d = files["dir"]
    np.save(d / "x.npy", _embed(en, "en"))
    np.save(d / "y.npy", _embed(fr, "fr"))
    code, out = _run(str(d / "x.npy"), str(d / "y.npy"))
    assert code == 0 and "(5 errors of 40)" in out
    # a preset's encoders (toy, dim 32): overrides fill its ???
    (d / "preset.yaml").write_text(
        "src_lang: en\ntgt_lang: fr\noutput_dir: ???\n"
        "data: {data_shard_dir: /nowhere, shard_glob: '/nowhere/{lang}.txt'}\n"
        "embed_text:\n  encoder:\n    _target_: toy\n    dim: ???\n"
        "lang_configs: {en: {}, fr: {}}\n")
    code, out = _run(str(files["en"]), str(files["fr"]), "--preset", str(d / "preset.yaml"),
                     "output_dir=/tmp/x", "embed_text.encoder.dim=32", "--json")
    assert code == 0, out
    assert json.loads(out)["directions"][0]["errors"] == 5


@pytest.mark.parametrize("args, needle", [
    (["{en}", "{d}/nope.txt", "--src-encoder", "toy"], "nope.txt: no such file"),
    (["{en}", "{d}/short.txt", "--src-encoder", "toy"], "has 40 items but {d}/short.txt has 2"),
    (["{en}", "{d}/blank.txt", "--src-encoder", "toy"], "blank.txt:2: blank line"),
    (["{en}", "{d}/bad.txt", "--src-encoder", "toy"], "bad.txt:1: invalid UTF-8"),
    (["{en}", "{d}/x.npy", "--src-encoder", "toy", "--by-text"],
     "x.npy: embeddings have no texts"),
    (["{en}", "{fr}", "--src-encoder", "nope"], "unknown encoder 'nope'"),
    (["{en}", "{fr}", "--src-encoder", "toy", "--src-option", "dim=3"], "dim"),
    (["{en}", "{fr}", "--src-encoder", "toy", "--tgt-encoder", "toy", "--tgt-option", "dim=30"],
     "one embedding space"),
    (["{en}", "{fr}", "--src-encoder", "toy", "--hard-negative-types", "{d}/short.txt"],
     "short.txt: not JSON"),
    (["{en}", "{fr}", "--preset", "{d}/none.yaml"], "config file {d}/none.yaml does not exist"),
])
def test_cli_errors_name_the_file(files: dict[str, Path], args: list[str], needle: str) -> None:
    d = files["dir"]
    write_lines(d / "short.txt", ["un", "deux"])
    write_lines(d / "blank.txt", ["un", "  ", "trois"])
    write_lines(d / "bad.txt", [b"\xff\xfe"])
    np.save(d / "x.npy", np.eye(40, 64, dtype=np.float32))
    fmt = {"en": files["en"], "fr": files["fr"], "d": d}
    code, out = _run(*[a.format(**fmt) for a in args])
    assert code == 2, out
    assert "error: " in out and needle.format(**fmt) in out


def test_cli_usage_errors(files: dict[str, Path]) -> None:
    code, out = _run(str(files["en"]), str(files["fr"]), "k=v")
    assert code == 2 and "overrides apply to --preset" in out
    code, out = _run(str(files["en"]), str(files["fr"]), "--src-option", "novalue")
    assert code == 2 and "expected KEY=VALUE" in out
    code, out = _run("--help")
    text = " ".join(out.split())
    assert code == 0 and "ratio margin over the k=4 nearest neighbours" in text
    assert "LASER's (source/xsim.py)" in text
