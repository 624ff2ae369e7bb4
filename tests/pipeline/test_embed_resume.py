"""An embed job that dies mid-shard starts again at its first unfinished chunk.

One shard a side, chunks of 50 rows (``embed.CHUNK_ROWS`` patched; the debug executor runs the
jobs in this process, so the patch reaches them). The encoder fails once, at the first row of
the English shard's third chunk, and writes down every row it encodes: the rerun must encode
only the rows the first run had not finished, and write what an uninterrupted run writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from helpers import comparable_outputs, sharded_preset, tiny_lines, write_sharded

from speechmine import encoders
from speechmine.config import load_config
from speechmine.encoders.toy import ToyEncoder
from speechmine.pipeline import embed, run

CHUNK = 50
LOG = "SPEECHMINE_TEST_ENCODED"


class FailsOnce(ToyEncoder):
    """The toy encoder; logs each row it encodes; fails once at :data:`FailsOnce.at`."""

    name = "test_fails_once_mid_shard"
    at = ""

    def encode_batch(self, items: Sequence[str]) -> np.ndarray:
        import os

        flag = Path(os.environ[LOG] + ".failed")
        if FailsOnce.at in items and not flag.exists():
            flag.write_text("1")
            raise RuntimeError("the GPU node went away")
        with open(os.environ[LOG], "a", encoding="utf-8") as fh:
            fh.writelines(f"{self.lang}\t{t}\n" for t in items)
        return super().encode_batch(items)


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setitem(encoders._registered, FailsOnce.name, FailsOnce)
    monkeypatch.setattr(embed, "CHUNK_ROWS", CHUNK)
    monkeypatch.setenv(LOG, str(tmp_path / "encoded.tsv"))
    data = tmp_path / "data"
    write_sharded(data, n_shards=1)
    return data


def _preset(tmp: Path, data: Path, name: str) -> Path:
    folder = tmp / f"{name}-config"
    folder.mkdir()
    return sharded_preset(folder, data, tmp / name, {"_target_": FailsOnce.name},
                          mine_threshold=1.05)


def _run(preset: Path) -> None:
    run(load_config(preset, ["launcher.cluster=debug", "launcher.max_retries=0"]))


def _encoded(tmp: Path, lang: str) -> list[str]:
    rows = (tmp / "encoded.tsv").read_text(encoding="utf-8").splitlines()
    return [t for ln, t in (r.split("\t", 1) for r in rows) if ln == lang]


def test_a_rerun_encodes_only_the_chunks_not_finished(setup: Path, tmp_path: Path) -> None:
    en = [t.strip() for t in tiny_lines("en")]
    assert len(set(en)) == len(en) > 3 * CHUNK and all(en)  # every row kept, once
    FailsOnce.at = en[2 * CHUNK]  # the first row of the third chunk
    preset = _preset(tmp_path, setup, "out")
    with pytest.raises(Exception, match="GPU node went away"):
        _run(preset)
    # (an encoder batches by length: the order within a chunk is its own)
    assert sorted(_encoded(tmp_path, "en")) == sorted(en[:2 * CHUNK])
    (chunks,) = (tmp_path / "out" / "work" / "embed").glob("*.chunks-50")
    assert sorted(p.name for p in chunks.iterdir()) == [
        "000000.json", "000000.npy", "000001.json", "000001.npy"]

    _run(preset)  # the same command again
    # every English row encoded exactly once over both runs
    assert sorted(_encoded(tmp_path, "en")) == sorted(en)
    assert not chunks.exists()  # gone once the shard's embedding is done

    _run(_preset(tmp_path, setup, "ref"))  # uninterrupted (the encoder fails only once)
    assert comparable_outputs(tmp_path / "out") == comparable_outputs(tmp_path / "ref")


def test_an_unreadable_chunk_is_embedded_again(setup: Path, tmp_path: Path) -> None:
    en = [t.strip() for t in tiny_lines("en")]
    FailsOnce.at = en[3 * CHUNK]
    preset = _preset(tmp_path, setup, "out")
    with pytest.raises(Exception, match="GPU node went away"):
        _run(preset)
    (chunks,) = (tmp_path / "out" / "work" / "embed").glob("*.chunks-50")
    (chunks / "000001.npy").write_bytes(b"torn")  # e.g. a disk that filled up
    _run(preset)
    assert sorted(_encoded(tmp_path, "en")) == sorted(en + en[CHUNK:2 * CHUNK])
    _run(_preset(tmp_path, setup, "ref"))
    assert comparable_outputs(tmp_path / "out") == comparable_outputs(tmp_path / "ref")


# ------------------------------------------------------------------------------ speech


def test_a_speech_rerun_decodes_and_encodes_only_the_chunks_not_finished(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sonar_dir: Path) -> None:
    """Speech keeps each chunk's kept rows and rejects with its vectors: the rerun neither
    decodes nor encodes the finished chunks, and rejects.tsv is what an uninterrupted run
    writes (the malformed line sits in a finished chunk)."""
    pytest.importorskip("torch")
    pytest.importorskip("soundfile")
    import os

    from helpers import make_audio, make_config, sentences, write_lines, write_manifest

    from speechmine.encoders.sonar.speech_encoder import SonarSpeechEncoder
    from speechmine.io import audio as audio_mod

    class SpeechFailsOnce(SonarSpeechEncoder):
        name = "test_speech_fails_once"

        def encode_batch(self, items: Sequence[object]) -> np.ndarray:
            log = Path(os.environ[LOG])
            done = sum(map(int, log.read_text().split())) if log.exists() else 0
            flag = Path(f"{log}.failed")
            if done >= 7 and not flag.exists():  # the first batch of the third chunk
                flag.write_text("1")
                raise RuntimeError("the GPU node went away")
            with open(log, "a") as fh:
                fh.write(f"{len(items)}\n")
            return super().encode_batch(items)  # type: ignore[arg-type]

    monkeypatch.setitem(encoders._registered, SpeechFailsOnce.name, SpeechFailsOnce)
    monkeypatch.setattr(embed, "CHUNK_ROWS", 4)
    monkeypatch.setenv(LOG, str(tmp_path / "encoded.txt"))
    loaded: list[str] = []
    real = audio_mod.load_audio
    monkeypatch.setattr(audio_mod, "load_audio", lambda p: loaded.append(p) or real(p))

    segs = make_audio(tmp_path / "audio", n_files=3)  # 12 segments
    manifest = write_manifest(tmp_path / "m.tsv", segs)
    lines = manifest.read_text().splitlines(keepends=True)
    # 13 rows in chunks of 4: row 5 (line 6), past its file's end, is rejected while the
    # second chunk is decoded
    manifest.write_text("".join(lines[:5]) + "audio/file0.wav\t0\t99999999\t0\n"
                        + "".join(lines[5:]))
    text = tmp_path / "t"
    text.mkdir()
    write_lines(text / "fr.txt", sentences(12)[0])
    enc = {"_target_": SpeechFailsOnce.name, "model": str(sonar_dir / "tiny_speech_encoder.pt")}

    def config(out: str) -> object:
        return make_config(tmp_path, text, out=tmp_path / out, name=out, meta=False, extra={
            "src_lang": "enA", "tgt_lang": "frA", "mine_threshold": 0.0,
            "launcher": {"cluster": "debug", "max_retries": 0},
            "lang_configs": {
                "enA": {"data": {"shard_type": "speech", "shard_glob": str(manifest)},
                        "embed_speech": {"encoder": enc}},
                # the same manifest: one embedding, shared by both sides
                "frA": {"data": {"shard_type": "speech", "shard_glob": str(manifest)},
                        "embed_speech": {"encoder": enc}}}})

    with pytest.raises(Exception, match="GPU node went away"):
        run(config("out"))
    (chunks,) = (tmp_path / "out" / "work" / "embed").glob("*.chunks-4")
    assert len(list(chunks.glob("*.json"))) == 2
    files_before = len(loaded)
    run(config("out"))
    assert sum(map(int, (tmp_path / "encoded.txt").read_text().split())) == 12  # each once
    # the rerun read no audio of the finished chunks (file0 holds rows 0-4)
    assert not any(p.endswith("file0.wav") for p in loaded[files_before:])
    assert not chunks.exists()
    run(config("ref"))
    assert comparable_outputs(tmp_path / "out") == comparable_outputs(tmp_path / "ref")
    rejects = (tmp_path / "out" / "rejects.tsv").read_text().splitlines()[1:]
    assert sorted(r.split("\t")[:3] for r in rejects) == [
        [side, str(manifest), "6"] for side in ("src", "tgt")]
