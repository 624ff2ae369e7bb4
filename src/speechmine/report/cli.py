"""``speechmine report``: the click command (registered in :mod:`speechmine.cli`)."""

from __future__ import annotations

import click

from ..eval.gold import GOLD_FORMATS
from .build import DEFAULT_ROWS


@click.command("report")
@click.argument("output_dir", type=click.Path(file_okay=True, dir_okay=True))
@click.option("--gold", "gold", metavar="GOLD", default=None,
              help="Gold pairs for precision/recall: a TSV of 'src_id<TAB>tgt_id' (0-based "
                   "line numbers of each side, as align.npz's src_ids/tgt_ids) or of "
                   "'src_text<TAB>tgt_text' sentence pairs.")
@click.option("--gold-format", type=click.Choice(GOLD_FORMATS), default="auto",
              show_default=True,
              help="auto: ids when the first line is two integers, else text.")
@click.option("-o", "--out", "out", metavar="DIR", default=None,
              help="Where to write index.html and clips/ [default: OUTPUT_DIR/report].")
@click.option("--rows", default=DEFAULT_ROWS, show_default=True, type=click.IntRange(min=1),
              help="Pairs shown per score band (top, around the threshold, bottom, random).")
@click.option("--around", type=float, default=None, metavar="T",
              help="Centre of the 'around' band [default: the best-F1 threshold with --gold, "
                   "else the mining threshold].")
@click.option("--seed", default=0, show_default=True, help="Seed of the random band.")
@click.option("--audio-root", metavar="DIR", default=None,
              help="Folder to look up relative audio paths in (speech rows of stopes' layout, "
                   "or audio moved since the run).")
def report(output_dir: str, gold: str | None, gold_format: str, out: str | None, rows: int,
           around: float | None, seed: int, audio_root: str | None) -> None:
    """Write a static HTML report of the finished run in OUTPUT_DIR.

    One page, opened from disk (no server, no network): the run's summary, a histogram of
    the scores, precision/recall against GOLD, a sample of the mined pairs in score bands
    with a filter by score and text, and an audio player per speech segment (clips are cut
    into OUTPUT_DIR/report/clips/). At most --rows pairs per band are on the page; the
    bitext file holds them all.

    \b
    Examples:
      speechmine report /tmp/mined                       # -> /tmp/mined/report/index.html
      speechmine report /tmp/mined --gold gold.tsv       # with P/R/F1 and the best threshold
      speechmine report /tmp/mined --rows 200 --around 1.2 -o /tmp/page
      speechmine demo --speech -o /tmp/d && speechmine report /tmp/d/enA-fr \\
          --gold src/speechmine/data/speech_demo/gold_fr.tsv
    """
    from . import build_report

    result = build_report(output_dir, out_dir=out, gold_path=gold, gold_format=gold_format,
                          rows=rows, seed=seed, around=around, audio_root=audio_root)
    click.echo(f"report: {result.page}")
    click.echo(f"  {result.shown} of {result.pairs} pairs shown"
               + (f", {result.audio} audio clip(s) in {result.clips}" if result.audio else ""))
    if result.best is not None:
        t, scores = result.best
        click.echo(f"  best threshold {t:.6f}: {scores}")
