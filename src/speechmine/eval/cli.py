"""``speechmine eval`` and ``speechmine xsim``: the click commands (registered in
:mod:`speechmine.cli`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from .gold import GOLD_FORMATS
from .xsim import LASER_K, LASER_MARGIN, MARGINS

if TYPE_CHECKING:
    from .run import EvalResult
    from .scoring import Scores
    from .xsim import XsimResult
    from .xsim_inputs import Collection

#: rows of the printed curve unless --points says otherwise
DEFAULT_POINTS = 20


def _scores(s: Scores) -> dict[str, Any]:
    return {"precision": s.precision, "recall": s.recall, "f1": s.f1, "mined": s.mined,
            "correct": s.correct, "gold": s.gold}


def curve_points(result: EvalResult, points: int) -> list[int]:
    """Indices of the curve points to show: ``points`` spread evenly over the curve (every
    point when 0), always with the first, the last, the best and the run's threshold."""
    n = result.curve.thresholds.size
    if n == 0:
        return []
    if points <= 0 or points >= n:
        return list(range(n))
    idx = {int(round(i)) for i in (k * (n - 1) / max(points - 1, 1) for k in range(points))}
    f1 = result.curve.f1
    idx.add(int(f1.argmax()))
    if result.threshold is not None:
        at = int((result.curve.thresholds >= result.threshold).sum()) - 1
        if at >= 0:
            idx.add(at)
    return sorted(idx)


def eval_json(result: EvalResult, points: int) -> dict[str, Any]:
    """The ``--json`` document of an evaluation."""
    c = result.curve
    best_t, best = result.best
    return {
        "source": result.source, "kind": result.kind,
        "gold": {"path": result.gold.path, "format": result.gold.format,
                 "pairs": int(c.gold)},
        "threshold": result.threshold, "at_threshold": _scores(result.at_threshold),
        "best": {"threshold": best_t if best_t != float("inf") else None, **_scores(best)},
        "curve": {"swept": result.swept, "points_total": int(c.thresholds.size),
                  "points": [{"threshold": float(c.thresholds[i]), **_scores(c.at(i))}
                             for i in curve_points(result, points)]},
        "rule": result.rule, "notes": list(result.notes),
    }


def _print_eval(result: EvalResult, points: int) -> None:
    g = result.gold
    click.echo(f"{result.kind}: {result.source}")
    click.echo(f"gold: {g.path} ({g.format}, {result.curve.gold} distinct pairs)")
    if result.threshold is not None:
        click.echo(f"at the run's threshold {result.threshold:g}: {result.at_threshold}")
    else:
        click.echo(f"all rows: {result.at_threshold}")
    t, best = result.best
    if t == float("inf"):
        click.echo("best threshold: none (no mined pair is in the gold)")
    else:
        click.echo(f"best threshold {t!r} (BUCC: midway between consecutive scores): {best}")
    rule = result.rule
    what = {"candidates": "every query's scored candidate, re-selected with retrieval "
                          f"{rule['retrieval'] if rule else '?'}",
            "mined pairs": "the mined pairs only", "bitext rows": "the bitext's rows"}
    click.echo(f"P/R curve over {what[result.swept]} ({result.curve.thresholds.size} points; "
               "pairs with score ≥ t):")
    click.echo(f"  {'threshold':>12} {'mined':>8} {'correct':>8} {'P':>6} {'R':>6} {'F1':>6}")
    c = result.curve
    for i in curve_points(result, points):
        s = c.at(i)
        click.echo(f"  {c.thresholds[i]:12.6f} {s.mined:8d} {s.correct:8d} "
                   f"{s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f}")
    for note in result.notes:
        click.echo(f"note: {note}")


@click.command("eval")
@click.argument("target", metavar="OUTPUT_DIR|BITEXT", type=click.Path())
@click.option("--gold", "gold", metavar="GOLD", required=True,
              help="Gold pairs: a TSV of 'src_id<TAB>tgt_id' (0-based line numbers of each "
                   "side, as align.npz's src_ids/tgt_ids) or of 'src_text<TAB>tgt_text' "
                   "sentence pairs (BUCC style; speech items as their manifest line, tabs "
                   "written as spaces).")
@click.option("--gold-format", type=click.Choice(GOLD_FORMATS), default="auto",
              show_default=True, help="auto: ids when the first line is two integers, else "
                                      "text.")
@click.option("--points", type=click.IntRange(min=0), default=DEFAULT_POINTS,
              show_default=True, help="Points of the P/R curve to print (and in --json); 0: "
                                      "every point.")
@click.option("--plot", "plot", metavar="FILE", default=None,
              help="Also draw the P/R curve into FILE (.png, .svg, .pdf; needs "
                   "pip install 'speechmine[report]').")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def eval_command(target: str, gold: str, gold_format: str, points: int, plot: str | None,
                 as_json: bool) -> None:
    """Precision, recall and F1 of mined pairs against GOLD pairs, at the run's threshold
    and at the best threshold.

    OUTPUT_DIR is a finished run: its pairs are scored as mined, and its candidates file
    (every query's scored candidate, both directions) is re-selected with the run's own
    retrieval rule at every threshold, so the P/R curve and the best threshold cover
    thresholds below the run's too, without mining again. The best threshold is BUCC's:
    the highest F1, placed midway between two consecutive scores; give it back as
    mine_threshold=T to mine with it. BITEXT is a bitext file (score<TAB>src<TAB>tgt):
    scored at its own rows.

    A pair counts once however often it was mined; a gold of sentence pairs matches texts
    with runs of whitespace collapsed. Speech sides: ids, or manifest lines as texts.

    \b
    Examples:
      speechmine eval /tmp/mined --gold gold.tsv
      speechmine eval /tmp/mined --gold bucc.fr-en.gold --gold-format text --json
      speechmine eval /tmp/mined --gold gold.tsv --points 0 --plot pr.png
      speechmine eval /tmp/mined/en-fr.TH-1.1.bitext.tsv.gz --gold pairs.tsv
    """
    from .run import evaluate

    result = evaluate(target, gold, gold_format)
    if plot:
        from .plot import plot_result

        plot_result(result, plot)
    if as_json:
        click.echo(json.dumps(eval_json(result, points), indent=1))
    else:
        _print_eval(result, points)
        if plot:
            click.echo(f"plot: {plot}")


# ------------------------------------------------------------------------------ xsim

def _options(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
        out[key.strip()] = value
    return out


def _show_errors(r: XsimResult, src: Collection, pool_texts: list[str] | None, n: int
                 ) -> None:
    for i in [int(i) for i in r.errors.nonzero()[0][:n]]:
        j = int(r.nearest[i])
        q = src.texts[i] if src.texts else f"#{i}"
        got = pool_texts[j] if pool_texts else f"#{j}"
        want = pool_texts[i] if pool_texts else f"#{i}"
        click.echo(f"    line {i + 1}: {q[:70]!r} → line {j + 1} {got[:70]!r}, "
                   f"aligned {want[:70]!r}")


@click.command("xsim")
@click.argument("src", metavar="SRC")
@click.argument("tgt", metavar="TGT")
@click.argument("overrides", nargs=-1)
@click.option("--src-encoder", default=None, metavar="NAME",
              help="Encoder of SRC (see `speechmine encoders`) [default: the preset's, else "
                   "usem3]. A speech encoder reads SRC as a manifest.")
@click.option("--tgt-encoder", default=None, metavar="NAME",
              help="Encoder of TGT [default: the preset's, else SRC's].")
@click.option("--src-option", "src_options", multiple=True, metavar="KEY=VALUE",
              help="An option of the SRC encoder (repeatable), as in a preset's encoder "
                   "block, e.g. model=/models/sonar.pt.")
@click.option("--tgt-option", "tgt_options", multiple=True, metavar="KEY=VALUE",
              help="An option of the TGT encoder (repeatable) [default: SRC's options when "
                   "TGT uses SRC's encoder].")
@click.option("--src-lang", default=None, help="Language given to the SRC encoder (SONAR, "
                                               "LASER3 need it).")
@click.option("--tgt-lang", default=None, help="Language given to the TGT encoder.")
@click.option("--preset", default=None, metavar="PRESET.yaml",
              help="Take each side's encoder, options, lang and manifest units from a "
                   "mining preset (its src and tgt sides); OVERRIDES (key=value) apply to it.")
@click.option("--units", type=click.Choice(["samples", "seconds"]), default=None,
              help="Offsets of speech manifests [default: the preset's, else samples].")
@click.option("--hard-negatives", "negatives", default=None, metavar="FILE",
              help="xSIM++: extra target items (same encoder and format as TGT) added to the "
                   "target pool; an answer among them is an error.")
@click.option("--hard-negative-types", "negative_types", default=None, metavar="FILE.json",
              help="LASER's xSIM++ error-type file ({negative: {src, errtype}}): errors "
                   "counted by kind.")
@click.option("--by-text", is_flag=True,
              help="An answer with the aligned item's text is right (duplicates are not "
                   "errors; LASER eval.py's default). Default: by index (LASER xSIM()'s).")
@click.option("-k", "k", type=click.IntRange(min=1), default=LASER_K, show_default=True,
              help="Neighbours in the margin's means (LASER: 4).")
@click.option("--margin", type=click.Choice(MARGINS), default=LASER_MARGIN, show_default=True,
              help="ratio (LASER), distance, or absolute (nearest by cosine).")
@click.option("--show-errors", type=click.IntRange(min=0), default=0, metavar="N",
              help="Print the first N errors of each direction.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def xsim_command(src: str, tgt: str, overrides: tuple[str, ...], src_encoder: str | None,
                 tgt_encoder: str | None, src_options: tuple[str, ...],
                 tgt_options: tuple[str, ...], src_lang: str | None, tgt_lang: str | None,
                 preset: str | None, units: str | None, negatives: str | None,
                 negative_types: str | None, by_text: bool, k: int, margin: str,
                 show_errors: int, no_progress: bool, as_json: bool) -> None:
    """xSIM error rate of two aligned collections (line i of SRC ↔ line i of TGT), both
    directions: for each item, the item of the other side with the best margin; an error
    when it is not the aligned one.

    The definition is LASER's (source/xsim.py): exact search, ratio margin over the k=4
    nearest neighbours both ways, the best-margin neighbour as the answer, errors by index;
    it gives LASER's answers on the same embeddings (tested against LASER's code). Each
    side is a text file (one sentence per line), a speech manifest (when its encoder is a
    speech encoder) or a .npy array of embeddings. Nothing may be skipped: a blank line or
    a segment that cannot be embedded is an error naming file and line.

    xSIM++: --hard-negatives adds near-translations of the targets to the target pool
    (SRC → TGT only; LASER's augmented files work as they are).

    \b
    Examples:
      speechmine xsim flores.eng flores.fra                      # usem3 on both sides
      speechmine xsim en.txt ca.txt --src-encoder e5 --json
      speechmine xsim speech.tsv fr.txt --preset preset.yaml demo_dir=/data
      speechmine xsim fra.devtest eng.devtest --src-encoder sonar_text --src-lang fra_Latn \\
          --tgt-lang eng_Latn --hard-negatives eng_Latn_augmented.devtest \\
          --hard-negative-types eng_Latn_errtype.devtest.json --by-text
      speechmine xsim x.npy y.npy                                # ready embeddings
    """
    from ..types import InputError
    from .xsim import xsim_both
    from .xsim_inputs import Embedder, SideSpec, spec_from_preset

    if overrides and not preset:
        raise click.UsageError(f"{overrides[0]!r}: KEY=VALUE overrides apply to --preset")
    specs: list[SideSpec] = []
    for role, enc, opts, lang, flag in (("src", src_encoder, src_options, src_lang,
                                         "--src-option"),
                                        ("tgt", tgt_encoder, tgt_options, tgt_lang,
                                         "--tgt-option")):
        base = spec_from_preset(preset, list(overrides), role) if preset else \
            (SideSpec() if role == "src" else specs[0])
        if role == "tgt" and not preset and enc is None:
            enc = base.encoder  # TGT uses SRC's encoder (and its options)
        options = {**(base.options if enc in (None, base.encoder) else {}),
                   **_options(opts, flag)}
        # without a preset, TGT's language is its own (SRC's is no default for it)
        inherited = base.lang if preset or role == "src" else None
        specs.append(SideSpec(encoder=enc or base.encoder, options=options,
                              lang=lang if lang is not None else inherited,
                              units=units or base.units))
    root = click.get_current_context().find_root()
    quiet = bool(root.obj and root.obj.get("quiet"))  # speechmine -q: no bars either
    embedder = Embedder(progress=not (no_progress or quiet))
    x = embedder.load(src, specs[0])
    y = embedder.load(tgt, specs[1])
    neg = embedder.load(negatives, specs[1]) if negatives else None
    if len(x.vectors) != len(y.vectors):
        raise InputError(f"{src} has {len(x.vectors)} items but {tgt} has {len(y.vectors)}: "
                         "xSIM needs aligned collections (line i ↔ line i)")
    if x.vectors.shape[1] != y.vectors.shape[1]:
        raise InputError(f"{src} is embedded in {x.vectors.shape[1]} dimensions but {tgt} in "
                         f"{y.vectors.shape[1]}: the sides need one embedding space")
    types = _read_types(negative_types) if negative_types else None
    for c in (x, y, *([neg] if neg else [])):
        if (by_text or (types is not None and c is not x)) and c.texts is None:
            raise InputError(f"{c.path}: embeddings have no texts, which --by-text and "
                             "--hard-negative-types compare")
    fwd, bwd = xsim_both(x.vectors, y.vectors, k=k, margin=margin, src_texts=x.texts,
                         tgt_texts=y.texts, by_text=by_text,
                         negatives=neg.vectors if neg else None,
                         negative_texts=neg.texts if neg else None, negative_types=types)
    if as_json:
        click.echo(json.dumps({"src": src, "tgt": tgt, "hard_negatives": negatives,
                               "encoders": [s.encoder if c.modality != "embeddings" else None
                                            for s, c in zip(specs, (x, y))],
                               "directions": [fwd.to_dict(), bwd.to_dict()]}, indent=1))
        return
    kind = "xSIM++" if neg else "xSIM"
    click.echo(f"{kind}: {margin} margin, k={k}, exact search (LASER's definition), errors "
               f"by {'text' if by_text else 'index'}")
    pools = {fwd.direction: (y.texts or []) + ((neg.texts or []) if neg else []),
             bwd.direction: x.texts or []}
    for r, q in ((fwd, x), (bwd, y)):
        extra = f", pool of {r.pool} with {r.pool - r.n} hard negatives" if r.pool > r.n else ""
        click.echo(f"  {r.direction:>12}  {100 * r.error_rate:6.2f} %  ({r.n_errors} errors "
                   f"of {r.n}{extra})")
        for kind_name, count in r.error_types.items():
            click.echo(f"  {'':>12}  {kind_name}: {count}")
        if show_errors:
            _show_errors(r, q, pools[r.direction] or None, show_errors)


def _read_types(path: str) -> dict[str, dict[str, str]]:
    """LASER's xSIM++ error-type JSON; anything else is an error naming the file."""
    from pathlib import Path

    from ..types import InputError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not all(
            isinstance(v, dict) and "src" in v and "errtype" in v for v in data.values()):
        raise InputError(f"{path}: expected LASER's error-type file: "
                         '{"negative text": {"src": "target text", "errtype": "kind"}, ...}')
    return {str(key): {"src": str(v["src"]), "errtype": str(v["errtype"])}
            for key, v in data.items()}
