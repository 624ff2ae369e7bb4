"""A small corpus mined by the real pipeline, for the evaluation tests (fixture ``mined``
in conftest.py).

Number sentences (the toy encoder pairs them by the numbers they name) with filler words on
each side (the noise spreads the scores over ~70 distinct values), 30 unmatched lines per
side (wrong pairs at low thresholds), and one duplicated line per side (tied scores, and two
ids with one text). Every run shares one work dir: re-mining at another threshold reruns
only the selection and the outputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import Corpus, sentences, toy_preset

#: the lines 0..N_GOLD-1 of en have their translation on the fr side
N_GOLD = 60


@dataclass(frozen=True)
class Mined:
    """The corpus folder, its gold (ids and sentence pairs) and a way to mine it."""

    root: Path
    corpus: Corpus
    gold_ids: Path
    gold_text: Path

    def mine(self, out: str, overrides: list[str] | None = None) -> Any:
        """Mine into ``root/out`` with ``overrides``; returns the pipeline's RunResult."""
        from speechmine.config import load_config
        from speechmine.pipeline import run

        extra = {"work_dir": str(self.root / "work"), "launcher": {"cluster": "debug"},
                 "embed_text": {"encoder": {"_target_": "toy", "noise": 0.5}}}
        preset = toy_preset(self.root, self.root / "data", self.root / out, name=out,
                            extra=extra)
        return run(load_config(preset, overrides or []))


def build_corpus(root: Path) -> Mined:
    rnd = random.Random(0)

    def fill(lines: list[str], tag: str) -> list[str]:
        return [line + "".join(f" {tag}{rnd.randrange(40)}" for _ in range(rnd.randrange(4)))
                for line in lines]

    en_gold, fr_gold = sentences(N_GOLD)
    en = fill(en_gold + sentences(30, start=100)[0], "w")
    fr = fill(fr_gold + sentences(30, start=130)[1], "m")
    corpus = Corpus(root / "data", en + [en[0]], fr + [fr[5]], seed=1)
    pairs = sorted((s, t) for s, t in corpus.gold.items() if s < N_GOLD)
    gold_ids = root / "gold_ids.tsv"
    gold_ids.write_text("".join(f"{s}\t{t}\n" for s, t in pairs))
    gold_text = root / "gold_text.tsv"
    gold_text.write_text("".join(f"{corpus.en[s]}\t{corpus.fr[t]}\n" for s, t in pairs))
    return Mined(root, corpus, gold_ids, gold_text)
