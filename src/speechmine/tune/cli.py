"""``speechmine tune``: the threshold of a preset, measured on a dev set with gold pairs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ..eval import GOLD_FORMATS

#: override keys that set the threshold (tune chooses it: they make no sense here)
_THRESHOLD_OVERRIDES = ("mine_threshold", "mine.threshold")


def _curve_rows(result: Any, around: float, n: int = 5) -> list[tuple[float, Any]]:
    """A few points of the curve around the chosen threshold (for the printout)."""
    curve = result.curve
    i = int((curve.thresholds >= around).sum()) - 1
    lo, hi = max(0, i - n), min(curve.thresholds.size, i + n + 1)
    return [(float(curve.thresholds[j]), curve.at(j)) for j in range(lo, hi)]


@click.command("tune")
@click.argument("preset")
@click.argument("overrides", nargs=-1)
@click.option("--gold", required=True, type=click.Path(dir_okay=False),
              help="Gold pairs of the dev set: 'src_id<TAB>tgt_id' (0-based line numbers) or "
                   "'src text<TAB>tgt text' (BUCC style; speech sides: manifest lines).")
@click.option("--gold-format", type=click.Choice(GOLD_FORMATS), default="auto",
              show_default=True, help="How to read GOLD (auto: ids when the first pair is "
                                      "two numbers).")
@click.option("--precision", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Instead of the best F1: the lowest threshold whose precision reaches this "
                   "(most recall at that precision).")
@click.option("--decimals", type=click.IntRange(0, 6), default=None,
              help="Round the threshold to this many decimals (default: the shortest number "
                   "that keeps exactly the chosen pairs).")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the preset with the tuned threshold here.")
@click.option("--in-place", is_flag=True, help="Write the tuned threshold into PRESET itself.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-cd", "--config-dir", "config_dirs", multiple=True, metavar="DIR",
              help="Another folder of config groups (as for `speechmine mine`).")
def tune(preset: str, overrides: tuple[str, ...], gold: str, gold_format: str,
         precision: float | None, decimals: int | None, out: str | None, in_place: bool,
         as_json: bool, config_dirs: tuple[str, ...]) -> None:
    """Measure the threshold of PRESET on a dev set: mine it (its own data; OVERRIDES as for
    `speechmine mine`), score every threshold against GOLD from the scored candidates the run
    keeps, and pick the threshold of highest F1 (or, with --precision, the lowest one that
    reaches that precision). With -o or --in-place the preset is written with that threshold
    as mine_threshold (where the preset sets its threshold, else as a new line; the rest of
    the file, comments included, is kept; a preset whose threshold a text edit cannot reach
    is rewritten whole and loses its comments, which the output says).

    Mine a small dev set that is not your test data: the threshold is fitted to it.

    \b
    Examples:
      speechmine tune dev.yaml --gold dev_gold.tsv
      speechmine tune dev.yaml --gold dev_gold.tsv -o tuned.yaml
      speechmine tune dev.yaml embed_text.encoder._target_=e5 --gold gold.tsv --in-place
      speechmine tune dev.yaml --gold gold.tsv --precision 0.95 --decimals 2 --json
    """
    from ..cli import resolve_config
    from ..config import load_config
    from ..config.compose import BUNDLED
    from .core import tune as run_tune

    if out and in_place:
        raise click.UsageError("give -o/--output or --in-place, not both")
    for ov in overrides:
        key = ov.partition("=")[0].strip().lstrip("+~")
        if key in _THRESHOLD_OVERRIDES:
            raise click.UsageError(f"{ov}: tune chooses the threshold; leave {key} out")
    path = resolve_config(preset, config_dirs)
    if in_place and Path(path).resolve().is_relative_to(Path(BUNDLED).resolve()):
        raise click.UsageError(f"{path} is one of speechmine's bundled configs: write the "
                               "tuned preset elsewhere with -o")
    cfg = load_config(path, list(overrides), config_dirs=list(config_dirs))
    result = run_tune(cfg, gold, gold_format, precision, decimals)
    choice = result.choice
    target = out or (path if in_place else None)
    written = None
    if target is not None:
        written = _write(path, target, choice, gold, list(overrides), list(config_dirs))
    if as_json:
        click.echo(json.dumps(_as_dict(result, written), indent=1))
        return
    s = choice.scores
    click.echo(f"candidates: {result.candidates} ({result.curve.thresholds.size} distinct "
               f"scores, {result.curve.gold} gold pairs)")
    click.echo(f"at the run's threshold {result.run_threshold:g}: {result.at_run}")
    click.echo(f"tuned ({choice.target}): threshold {choice.threshold:g}: {s}")
    click.echo("around it (pairs with score ≥ t):")
    for t, sc in _curve_rows(result, choice.threshold):
        mark = " <" if sc == s else ""
        click.echo(f"  {t:10.6f}  P={sc.precision:.3f} R={sc.recall:.3f} F1={sc.f1:.3f} "
                   f"mined={sc.mined}{mark}")
    if written is None:
        click.echo("nothing written: -o TUNED.yaml or --in-place writes the preset")
        return
    how = "added" if written.added else "set " + ", ".join(written.keys)
    kept = "comments kept" if written.comments_kept else \
        "rewritten from its data: its comments are lost"
    click.echo(f"wrote {written.path}: mine_threshold {choice.threshold:g} ({how}; {kept})")


def _write(preset: str, target: str, choice: Any, gold: str, overrides: list[str],
           config_dirs: list[str]) -> Any:
    """Write the tuned preset to ``target`` once a copy of it, loaded from the preset's
    folder (so that its defaults and relative paths resolve the same), yields the threshold."""
    from ..config import load_config
    from .core import TuneError
    from .preset import Written, set_threshold_text, write_threshold

    s = choice.scores
    comment = (f"speechmine tune: {choice.target}, P={s.precision:.3f} R={s.recall:.3f} "
               f"F1={s.f1:.3f} against {Path(gold).name}")
    text, _ = set_threshold_text(Path(preset).read_text(encoding="utf-8"), choice.threshold,
                                 comment)
    probe = Path(preset).parent / f".{Path(preset).stem}.tune-check-{os.getpid()}.yaml"
    try:
        probe.write_text(text, encoding="utf-8")
        got = load_config(probe, overrides, config_dirs=config_dirs).mine.threshold
    finally:
        probe.unlink(missing_ok=True)
    if got != choice.threshold:
        raise TuneError(f"{preset}: with mine_threshold set to {choice.threshold:g} the preset "
                        f"still mines at {got:g}: a key this edit does not reach sets it (a "
                        "defaults group or the command line); set the threshold there")
    written: Written = write_threshold(preset, target, choice.threshold, comment)
    return written


def _as_dict(result: Any, written: Any) -> dict[str, Any]:
    c = result.choice

    def sc(s: Any) -> dict[str, Any]:
        return {"precision": s.precision, "recall": s.recall, "f1": s.f1, "mined": s.mined,
                "correct": s.correct, "gold": s.gold}

    return {"threshold": c.threshold, "target": c.target, "at_threshold": sc(c.scores),
            "interval": [c.interval[0] if c.interval[0] > float("-inf") else None,
                         c.interval[1]],
            "run_threshold": result.run_threshold, "at_run_threshold": sc(result.at_run),
            "candidates": result.candidates,
            "written": None if written is None else {
                "path": written.path, "keys": list(written.keys), "added": written.added,
                "comments_kept": written.comments_kept}}
