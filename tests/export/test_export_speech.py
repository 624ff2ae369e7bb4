"""Speech runs exported and read back with datasets (FLAC in the Audio layout) and lhotse
(recordings, supervisions, cuts whose audio is the mined segment)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from conftest import SENTENCES, SpeechRun, segment_samples
from speechmine.export import ExportError, export_run

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
sf = pytest.importorskip("soundfile")

PCM16 = 1 / 32768  # one step of 16-bit audio


def manifest_rows(run: SpeechRun, name: str) -> list[tuple[str, float, float]]:
    """(absolute path, start s, end s) of each manifest line, by line number."""
    rows = []
    for line in (run.root / name).read_text().splitlines():
        path, start, end, _ = line.split("\t")
        rows.append((str(run.root / path), int(start) / 16000, int(end) / 16000))
    return rows


def mono(samples: np.ndarray) -> np.ndarray:
    """speechmine's mono: the mean of the channels (float32)."""
    return samples.mean(axis=1, dtype=np.float32)


def test_parquet_paths_and_times_are_the_manifest_lines(speech_text: SpeechRun, tmp_path: Path):
    df = pd.read_parquet(export_run(speech_text.out, "parquet", tmp_path / "p.parquet"))
    al = speech_text.result.alignment
    assert list(df.columns) == ["score", "direction", "src_lang", "tgt_lang", "src_id", "tgt_id",
                                "src_audio_path", "src_start_s", "src_end_s", "src_meta",
                                "tgt_text", "tgt_meta"]
    assert len(df) == len(al) > 5
    np.testing.assert_array_equal(df["src_id"], al.src)
    lines = manifest_rows(speech_text, "speech.tsv")
    for row in df.to_dict("records"):
        assert (row["src_audio_path"], row["src_start_s"], row["src_end_s"]) == \
            lines[row["src_id"]]
        assert row["tgt_text"] == SENTENCES[row["tgt_id"]]
        assert (row["src_lang"], row["tgt_lang"]) == ("en", "fr")
    assert "stereo file.wav" in " ".join(df["src_audio_path"])  # a path with a space


def test_embedded_audio_decodes_to_the_segment(speech_speech: SpeechRun, tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    out = export_run(speech_speech.out, "parquet", tmp_path / "p.parquet", audio="embed")
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.features["src_audio"] == ds.features["tgt_audio"] == \
        datasets.Audio(sampling_rate=16000)
    raw = ds.cast_column("src_audio", datasets.Audio(decode=False)).cast_column(
        "tgt_audio", datasets.Audio(decode=False))
    files = set()
    for row in raw:
        for role in ("src", "tgt"):
            audio, sr = sf.read(io.BytesIO(row[f"{role}_audio"]["bytes"]), dtype="float32",
                                always_2d=True)
            assert sr == 16000 and audio.shape[1] == 1
            path = row[f"{role}_audio_path"]
            original = segment_samples(speech_speech.audio, path, row[f"{role}_start_s"],
                                       row[f"{role}_end_s"])
            files.add(path)
            if original.shape[1] == 1:  # a 16-bit mono 16 kHz file: sample for sample
                np.testing.assert_array_equal(audio[:, 0], original[:, 0])
            else:  # the mean of the channels, as mined, to 16 bits
                np.testing.assert_allclose(audio[:, 0], mono(original), atol=PCM16)
    assert files == set(speech_speech.audio)  # loud and stereo files among them


def test_datasets_decodes_the_audio_column(speech_text: SpeechRun, tmp_path: Path):
    """datasets' own decoder (torchcodec since datasets 4) on the embedded FLAC."""
    datasets = pytest.importorskip("datasets")
    try:
        from torchcodec.decoders import AudioDecoder  # noqa: F401
    except Exception as exc:  # ImportError, or FFmpeg / torch ABI missing (RuntimeError)
        pytest.skip(f"datasets decodes audio through torchcodec, unusable here: {exc!r}"[:200])
    out = export_run(speech_text.out, "parquet", tmp_path / "p.parquet", audio="embed")
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train",
                               cache_dir=str(tmp_path / "hf"))
    row = ds[0]
    samples = row["src_audio"].get_all_samples()
    original = segment_samples(speech_text.audio, row["src_audio_path"], row["src_start_s"],
                               row["src_end_s"])
    assert samples.sample_rate == 16000
    np.testing.assert_allclose(samples.data.numpy()[0], mono(original), atol=PCM16)


def _manifests(folder: Path, role: str) -> tuple:
    lhotse = pytest.importorskip("lhotse")
    return tuple(lhotse.load_manifest(folder / f"{role}_{kind}.jsonl.gz")
                 for kind in ("recordings", "supervisions", "cuts"))


def test_lhotse_speech_text(speech_text: SpeechRun, tmp_path: Path):
    lhotse = pytest.importorskip("lhotse")
    folder = export_run(speech_text.out, "lhotse", tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == [
        "src_cuts.jsonl.gz", "src_recordings.jsonl.gz", "src_supervisions.jsonl.gz"]
    recordings, supervisions, cuts = _manifests(folder, "src")
    assert isinstance(recordings, lhotse.RecordingSet)
    assert isinstance(supervisions, lhotse.SupervisionSet)
    assert isinstance(cuts, lhotse.CutSet)
    df = pd.read_parquet(export_run(speech_text.out, "parquet", tmp_path / "p.parquet"))
    assert len(cuts) == len(supervisions) == len(df)
    assert len(recordings) == df["src_audio_path"].nunique()
    for cut, row in zip(cuts, df.to_dict("records")):
        original = segment_samples(speech_text.audio, row["src_audio_path"], row["src_start_s"],
                                   row["src_end_s"])
        audio = cut.load_audio()  # (channels, n) at the file's rate
        np.testing.assert_array_equal(audio, original.T)
        rec = recordings[cut.recording.id]
        assert rec.sources[0].source == row["src_audio_path"]
        assert rec.num_samples == len(speech_text.audio[row["src_audio_path"]])
        sup = cut.supervisions[0]
        assert (sup.text, sup.language, sup.custom["text_language"]) == \
            (row["tgt_text"], "en", "fr")
        assert supervisions[sup.id].start == pytest.approx(row["src_start_s"])
        assert cut.custom["score"] == pytest.approx(row["score"])
        assert (cut.custom["src_id"], cut.custom["tgt_id"]) == (row["src_id"], row["tgt_id"])
        assert cut.custom["other"] == {"modality": "text", "lang": "fr",
                                       "text": row["tgt_text"]}
    kinds = {type(c).__name__ for c in cuts}
    assert kinds == {"MonoCut", "MultiCut"}


def test_lhotse_speech_speech_pairs_share_ids(speech_speech: SpeechRun, tmp_path: Path):
    pytest.importorskip("lhotse")
    folder = export_run(speech_speech.out, "lhotse", tmp_path / "m")
    _, _, src_cuts = _manifests(folder, "src")
    _, _, tgt_cuts = _manifests(folder, "tgt")
    al = speech_speech.result.alignment
    assert len(src_cuts) == len(tgt_cuts) == len(al) == 9
    a_lines = manifest_rows(speech_speech, "a.tsv")
    b_lines = manifest_rows(speech_speech, "b.tsv")
    for s_cut, t_cut, s_id, t_id in zip(src_cuts, tgt_cuts, al.src.tolist(), al.tgt.tolist()):
        assert s_cut.id == t_cut.id
        assert s_cut.supervisions[0].text is None
        for cut, (path, start, end) in ((s_cut, a_lines[s_id]), (t_cut, b_lines[t_id])):
            np.testing.assert_array_equal(
                cut.load_audio(), segment_samples(speech_speech.audio, path, start, end).T)
        # each segment was mined against itself: both halves hold the same audio
        np.testing.assert_array_equal(s_cut.load_audio(), t_cut.load_audio())
        other = s_cut.custom["other"]
        assert (other["modality"], other["audio_path"]) == ("speech", b_lines[t_id][0])
        assert other["start"] == pytest.approx(t_cut.start)
        assert other["duration"] == pytest.approx(t_cut.duration)


def test_missing_audio_stops_the_export_and_writes_nothing(speech_text: SpeechRun,
                                                         tmp_path: Path):
    victim = speech_text.root / "audio" / "file1.wav"
    kept = victim.read_bytes()
    victim.unlink()
    try:
        for fmt, audio in (("parquet", "embed"), ("lhotse", "path")):
            target = tmp_path / f"x.{fmt}"
            with pytest.raises(ExportError, match="file1.wav"):
                export_run(speech_text.out, fmt, target, audio=audio)
            assert not target.exists() or list(target.iterdir()) == []
        assert [p.name for p in tmp_path.rglob("*") if ".smtmp." in p.name] == []
    finally:
        victim.write_bytes(kept)
