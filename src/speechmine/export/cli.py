"""``speechmine export``: a finished run as Parquet, JSON Lines or lhotse manifests."""

from __future__ import annotations

import click

from . import FORMATS


@click.command("export")
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="parquet",
              show_default=True, help="parquet (pandas, Hugging Face datasets), jsonl (one "
              "object per pair) or lhotse (recordings, supervisions, cuts of speech sides).")
@click.option("-o", "--output", "out", type=click.Path(), default=None,
              help="File to write (lhotse: a folder). Default: beside the run's bitext, "
                   "<src>-<tgt>.TH-<t>.parquet / .jsonl / .lhotse/ (a .gz name compresses "
                   "JSON Lines).")
@click.option("--audio", type=click.Choice(["path", "embed"]), default="path",
              show_default=True, help="Speech sides: 'path' writes audio file + start/end "
                   "seconds; 'embed' (parquet only) also stores each segment as 16 kHz FLAC "
                   "in the datasets Audio layout.")
def export(output_dir: str, fmt: str, out: str | None, audio: str) -> None:
    """Export the pairs of the finished run in OUTPUT_DIR for training.

    One record per pair, best first: score, direction, languages, global ids, then per side
    its text (speech: audio path, start and end in seconds) and its bimeta column. Files are
    written complete or not at all.

    \b
    Examples:
      speechmine export /data/mined/en-fr                     # en-fr.TH-1.06.parquet
      speechmine export out/ --format jsonl -o pairs.jsonl.gz
      speechmine export out/ --audio embed -o train.parquet   # FLAC inside, for datasets
      speechmine export out/ --format lhotse -o manifests/    # src_cuts.jsonl.gz ...

    \b
    Reading them back:
      datasets.load_dataset("parquet", data_files="train.parquet")["train"]
      pandas.read_parquet("en-fr.TH-1.06.parquet")
      lhotse.load_manifest("manifests/src_cuts.jsonl.gz")

    Exit code 2 when OUTPUT_DIR holds no finished run (no run.json), its files do not
    match, the inputs changed since the run, or lhotse is asked of a text–text run.
    """
    from tqdm.auto import tqdm

    from . import MinedRun, export_run

    root = click.get_current_context().find_root().obj or {}
    if audio == "embed" and fmt != "parquet":
        raise click.UsageError("--audio embed needs --format parquet (jsonl and lhotse refer "
                               "to the audio files by path, start and end)")
    run = MinedRun(output_dir)
    with tqdm(total=run.n_pairs, unit="pair", desc=f"export {fmt}",
              disable=bool(root.get("quiet"))) as bar:
        target = export_run(run, fmt, out, audio=audio, progress=bar.update)
    click.echo(f"{run.n_pairs} pairs → {target}")
