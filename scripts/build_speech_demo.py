#!/usr/bin/env python
"""Build the bundled English speech demo in ``src/speechmine/data/speech_demo/``.

Deterministic (fixed seed, pinned Debian packages): rerunning it on Debian 12 with the same
packages rewrites byte-identical files. It needs ``espeak-ng`` (``apt-get install -y
espeak-ng``), ``apt-get``/``dpkg`` to fetch the pocketsphinx-testdata recordings (or
``--testdata`` pointing at an unpacked copy), and speechmine's ``speech`` extra.

What it makes (see the PROVENANCE.md it writes for the details):

* ``real_en.ogg``: the read-speech recordings of Debian's pocketsphinx-testdata (LibriVox
  "Sense and Sensibility", card names, "go forward ten meters"), separated by silence;
* ``synth_en_01.ogg`` .. : English sentences of the demo text corpus that have a gold French
  translation, spoken by espeak-ng (one voice per file, varied speed), separated by silence;
* ``en_speech.tsv``: stopes manifest of every utterance (relative paths, 16 kHz sample
  offsets, batch_no = duration bucket); ``transcripts.txt`` / ``transcripts.meta.txt``: the
  text and source of each manifest line;
* ``fr.txt`` + ``gold_fr.tsv``: French side (gold translations of the synthesised sentences
  plus ~30 % distractors, shuffled) and ``speech line<TAB>fr line`` pairs;
* ``en_text.txt`` + ``gold_en.tsv``: English text side (all transcripts plus ~30 %
  distractors, shuffled) and ``speech line<TAB>text line`` pairs.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from speechmine.io.audio import load_audio
from speechmine.io.manifest import write_manifest
from speechmine.segment import duration_bucket
from speechmine.types import SAMPLE_RATE, AudioSegment, samples_to_seconds

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "src" / "speechmine" / "data" / "demo"
OUT = ROOT / "src" / "speechmine" / "data" / "speech_demo"

SEED = 20240611
N_SYNTH = 150
N_FILES = 5
DISTRACTOR_RATE = 0.30
#: (espeak-ng voice, pitch 0-99, base speed in words per minute): one per synthetic file.
VOICES = [("en-us", 50, 165), ("en-gb", 45, 155), ("en-us+f2", 60, 160),
          ("en-gb+f3", 55, 150), ("en-us+m3", 40, 170)]
SPEED_JITTER = 15  # +- words per minute, per sentence
GAP_SECONDS = (0.7, 2.0)  # silence between utterances, uniform
EDGE_SECONDS = 0.5  # silence at the start and end of each file
NOISE_STD = 1e-3  # faint background noise: real recordings are never digitally silent
PEAK = 0.6  # utterances are peak-normalised to this level

#: pocketsphinx-testdata utterances whose transcript the package ships, plus goforward.raw
#: (its transcript is the one pocketsphinx's own tests expect).
TESTDATA_EXTRA = {"goforward.raw": "go forward ten meters"}

_SPEAKABLE = re.compile(r"^[A-Z][A-Za-z ,'.;?!-]+$")
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b")


def speakable(sentence: str) -> bool:
    """Plain prose a TTS reads unambiguously: letters and light punctuation, no acronyms
    or digits, 6-18 words."""
    return (bool(_SPEAKABLE.match(sentence)) and not _ACRONYM.search(sentence)
            and 6 <= len(sentence.split()) <= 18)


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def fetch_testdata(dest: Path) -> tuple[Path, str]:
    """Download and unpack the pocketsphinx-testdata .deb (no install); returns the
    data directory and the package version."""
    # As root, apt fetches as the _apt user, which cannot write to a private temp dir.
    subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download",
                    "pocketsphinx-testdata"], cwd=dest, check=True, stdout=subprocess.DEVNULL)
    deb = next(dest.glob("pocketsphinx-testdata_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest / "root")], check=True)
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    return dest / "root" / "usr" / "share" / "pocketsphinx" / "test" / "data", version


def testdata_utterances(data: Path) -> list[tuple[str, str, np.ndarray]]:
    """``(source tag, transcript, waveform)`` of every transcribed recording."""
    out = []
    for trans in (data / "librivox" / "transcription", data / "cards" / "cards.transcription"):
        for line in trans.read_text().splitlines():
            m = re.match(r"<s>(.*)</s>\s*\((.*)\)", line.strip())
            if not m:
                continue
            wav = trans.parent / f"{m[2]}.wav"
            out.append((f"pocketsphinx-testdata:{wav.relative_to(data)}", " ".join(m[1].split()),
                        load_audio(wav)))
    for name, text in TESTDATA_EXTRA.items():
        pcm = np.fromfile(data / name, dtype="<i2").astype(np.float32) / 32768.0
        out.append((f"pocketsphinx-testdata:{name}", text, pcm))
    return out


def espeak(text: str, voice: str, pitch: int, speed: int, tmp: Path) -> np.ndarray:
    """Synthesise ``text``; ``(n,)`` float32 at 16 kHz."""
    wav = tmp / "utt.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(wav),
                    text], check=True)
    return load_audio(wav)


def trim(wave: np.ndarray, level: float = 1e-3) -> np.ndarray:
    """Drop the TTS's own leading/trailing silence, keeping 50 ms."""
    loud = np.flatnonzero(np.abs(wave) > level)
    if not len(loud):
        return wave
    keep = int(0.05 * SAMPLE_RATE)
    return wave[max(loud[0] - keep, 0) : loud[-1] + keep]


def assemble(clips: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray,
                                                                           list[tuple[int, int]]]:
    """Clips separated by random silences (plus faint noise); returns the file and the
    ``(start, end)`` sample span of every clip."""
    edge = int(EDGE_SECONDS * SAMPLE_RATE)
    parts, spans, pos = [np.zeros(edge, np.float32)], [], edge
    for i, clip in enumerate(clips):
        clip = clip * (PEAK / max(float(np.abs(clip).max()), 1e-6))
        parts.append(clip.astype(np.float32))
        spans.append((pos, pos + len(clip)))
        pos += len(clip)
        gap = edge if i == len(clips) - 1 else int(rng.uniform(*GAP_SECONDS) * SAMPLE_RATE)
        parts.append(np.zeros(gap, np.float32))
        pos += gap
    wave = np.concatenate(parts)
    wave += rng.normal(0.0, NOISE_STD, len(wave)).astype(np.float32)
    return np.clip(wave, -1.0, 1.0), spans


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def _ogg_crc(data: bytes) -> int:
    """Ogg page checksum: CRC-32, polynomial 0x04C11DB7, no reflection, initial value 0."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def fix_ogg_serial(path: Path, serial: int) -> None:
    """libsndfile gives each Ogg stream a random serial number: set a fixed one (and fix
    every page's checksum) so that reruns write byte-identical files."""
    data = bytearray(path.read_bytes())
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            raise ValueError(f"{path}: not an Ogg page at byte {pos}")
        n_segs = data[pos + 26]
        size = 27 + n_segs + sum(data[pos + 27 : pos + 27 + n_segs])
        data[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        data[pos + 22 : pos + 26] = b"\0\0\0\0"
        data[pos + 22 : pos + 26] = _ogg_crc(bytes(data[pos : pos + size])).to_bytes(4, "little")
        pos += size
    path.write_bytes(bytes(data))


def write_opus(path: Path, wave: np.ndarray, serial: int) -> None:
    # libsndfile's Ogg/Opus at its default bitrate (~20 kb/s for speech at 16 kHz): small
    # and transparent enough for VAD and ASR; the decoder restores exact sample alignment.
    sf.write(path, wave, SAMPLE_RATE, format="OGG", subtype="OPUS")
    fix_ogg_serial(path, serial)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def tool_version(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--testdata", type=Path, help="unpacked pocketsphinx test/data directory "
                    "(default: apt-get download pocketsphinx-testdata into a temp dir)")
    ap.add_argument("--testdata-version", default="", help="its Debian version (with --testdata)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(SEED)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("*.ogg")):
        old.unlink()

    en = read_lines(CORPUS / "en.txt.gz")
    fr = read_lines(CORPUS / "fr.txt.gz")
    en_meta = read_lines(CORPUS / "en.meta.txt")
    gold = [tuple(int(x) for x in line.split("\t")) for line in read_lines(CORPUS / "gold.tsv")]
    candidates = [(e, f) for e, f in gold if speakable(en[e])]
    chosen = [candidates[i] for i in sorted(rng.choice(len(candidates), N_SYNTH, replace=False))]
    rng.shuffle(chosen)
    # distractors: halves of other gold pairs, the English and French ones from different pairs
    rest = [p for p in gold if p not in set(chosen)]
    picks = rng.choice(len(rest), 2 * round(DISTRACTOR_RATE * N_SYNTH) + 20, replace=False)
    n_fr_d = round(DISTRACTOR_RATE * N_SYNTH)
    fr_distractors = [fr[rest[i][1]] for i in picks[:n_fr_d]]
    en_pool = [en[rest[i][0]] for i in picks[n_fr_d:]]

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.testdata:
            data, ps_version = args.testdata, args.testdata_version or "unknown"
        else:
            data, ps_version = fetch_testdata(tmp)
        # utterance records: (file name, transcript, source tag, french line or None)
        files: list[tuple[str, list[np.ndarray], list[tuple[str, str, str | None]]]] = []
        real = testdata_utterances(data)
        files.append(("real_en.ogg", [w for _, _, w in real], [(t, s, None) for s, t, _ in real]))
        per_file = -(-N_SYNTH // N_FILES)
        for k in range(N_FILES):
            voice, pitch, speed = VOICES[k % len(VOICES)]
            clips, meta = [], []
            for e, f in chosen[k * per_file : (k + 1) * per_file]:
                jitter = int(rng.integers(-SPEED_JITTER, SPEED_JITTER + 1))
                clips.append(trim(espeak(en[e], voice, pitch, speed + jitter, tmp)))
                meta.append((en[e], f"{en_meta[e]} (espeak-ng {voice})", fr[f]))
            files.append((f"synth_en_{k + 1:02d}.ogg", clips, meta))

    segments: list[AudioSegment] = []
    records: list[tuple[str, str, str | None]] = []
    durations = {}
    for k, (name, clips, meta) in enumerate(files):
        wave, spans = assemble(clips, rng)
        write_opus(out / name, wave, serial=SEED + k)
        durations[name] = samples_to_seconds(len(wave))
        segments += [AudioSegment(str(out / name), a, b) for a, b in spans]
        records += meta
    write_manifest(out / "en_speech.tsv", segments,
                   batch_no=[duration_bucket(s.duration) for s in segments], relative=True)
    write_lines(out / "transcripts.txt", [t for t, _, _ in records])
    write_lines(out / "transcripts.meta.txt", [s for _, s, _ in records])

    # French side: gold translations + distractors, shuffled
    fr_items = [(f, i) for i, (_, _, f) in enumerate(records) if f is not None]
    fr_items += [(d, None) for d in fr_distractors]
    order = rng.permutation(len(fr_items))
    write_lines(out / "fr.txt", [fr_items[j][0] for j in order])
    write_lines(out / "gold_fr.tsv", sorted(
        (f"{fr_items[j][1]}\t{pos}" for pos, j in enumerate(order) if fr_items[j][1] is not None),
        key=lambda s: int(s.split("\t")[0])))
    # English text side: every transcript + distractors, shuffled
    transcripts = {t.lower() for t, _, _ in records}
    en_distractors = [s for s in en_pool if s.lower() not in transcripts]
    en_distractors = en_distractors[: round(DISTRACTOR_RATE * len(records))]
    en_items = [(t, i) for i, (t, _, _) in enumerate(records)] + [(d, None) for d in en_distractors]
    order = rng.permutation(len(en_items))
    write_lines(out / "en_text.txt", [en_items[j][0] for j in order])
    write_lines(out / "gold_en.tsv", sorted(
        (f"{en_items[j][1]}\t{pos}" for pos, j in enumerate(order) if en_items[j][1] is not None),
        key=lambda s: int(s.split("\t")[0])))

    write_provenance(out, durations, len(real), len(records) - len(real), len(fr_items),
                     len(fr_distractors), len(en_items), len(en_distractors), ps_version)
    return 0


def write_provenance(out: Path, durations: dict[str, float], n_real: int, n_synth: int,
                     n_fr: int, n_fr_d: int, n_en: int, n_en_d: int, ps_version: str) -> None:
    espeak_version = tool_version(["espeak-ng", "--version"])
    corpus_hashes = "\n".join(f"| `demo/{p}` | `{sha256(CORPUS / p)[:16]}` |"
                              for p in ("en.txt.gz", "fr.txt.gz", "en.meta.txt", "gold.tsv"))
    audio_rows = "\n".join(
        f"| `{name}` | {secs:.1f} | {(out / name).stat().st_size / 1e3:.0f} kB |"
        for name, secs in durations.items())
    voices = ", ".join(f"`{v}` (pitch {p}, {s}±{SPEED_JITTER} wpm)" for v, p, s in VOICES)
    text = f"""# Provenance of the English speech demo

Generated by `scripts/build_speech_demo.py` (seed {SEED}); do not edit by hand. Rerun it
(`python scripts/build_speech_demo.py`) on Debian 12 with the package versions below to
get the same files.

## Files

| file | what |
| --- | --- |
| `real_en.ogg`, `synth_en_*.ogg` | 16 kHz mono Ogg/Opus (libsndfile {sf.__libsndfile_version__}, default bitrate) |
| `en_speech.tsv` | stopes manifest `audio_file<TAB>start<TAB>end<TAB>batch_no`: paths relative to this folder, offsets in samples at 16 kHz (end exclusive), batch_no = duration bucket (`speechmine.segment.duration_bucket`) |
| `transcripts.txt` | the English text of each manifest line (same order) |
| `transcripts.meta.txt` | the source of each manifest line |
| `fr.txt` | French side: {n_fr - n_fr_d} gold translations of the synthesised sentences + {n_fr_d} French distractors (sentences whose English is not spoken anywhere), shuffled |
| `gold_fr.tsv` | `speech line<TAB>fr.txt line` (0-based) |
| `en_text.txt` | English text side: the {n_real + n_synth} transcripts + {n_en_d} English distractors (not spoken anywhere), shuffled |
| `gold_en.tsv` | `speech line<TAB>en_text.txt line` (0-based) |

| audio | seconds | size |
| --- | ---: | ---: |
{audio_rows}

Utterances are separated by {GAP_SECONDS[0]}–{GAP_SECONDS[1]} s of silence (uniform, seeded),
with {EDGE_SECONDS} s at each end, faint Gaussian noise (std {NOISE_STD}) over the whole file,
and each utterance peak-normalised to {PEAK}; so VAD segmentation has real work to do and can
be checked against the manifest.

## Real recordings: {n_real} utterances in `real_en.ogg`

From Debian's `pocketsphinx-testdata` {ps_version} (`apt-get download pocketsphinx-testdata`,
unpacked with `dpkg-deb -x`, nothing installed): `librivox/*.wav` (LibriVox reading of
"Sense and Sensibility", transcripts from `librivox/transcription`; note the reader's
"a more a amiable"), `cards/*.wav` (`cards/cards.transcription`) and `goforward.raw` (16-bit
16 kHz PCM; transcript "go forward ten meters", as in pocketsphinx's own tests). Recordings
whose transcript the package does not ship (`numbers.raw`, `something.raw`, `tidigits/`) are
not used. Licence (`/usr/share/doc/pocketsphinx-testdata/copyright`, `Files: *`): BSD-2-clause,
Copyright 1995-2014 Carnegie Mellon University, 2014-2015 Alpha Cephei Inc.:

> Redistribution and use in source and binary forms, with or without modification, are
> permitted provided that the following conditions are met: 1. Redistributions of source
> code must retain the above copyright notice, this list of conditions and the following
> disclaimer. 2. Redistributions in binary form must reproduce the above copyright notice,
> this list of conditions and the following disclaimer in the documentation and/or other
> materials provided with the distribution. THIS SOFTWARE IS PROVIDED BY CARNEGIE MELLON
> UNIVERSITY ``AS IS'' AND ANY EXPRESSED OR IMPLIED WARRANTIES [...] ARE DISCLAIMED.

These utterances have no French translation: in the speech–French demo they are speech
distractors; in the speech–English-text demo they are gold pairs like the rest.

## Synthetic speech: {n_synth} utterances in `synth_en_*.ogg`

Sentences: English sides of gold pairs of the demo text corpus (`../demo/`, built by
`scripts/build_demo_corpus.py`, see `../PROVENANCE.md` for sources and licences: human
translations shipped in Debian packages, GPL-2+/GPL-3+/BSD-2; the source of each spoken
sentence is in `transcripts.meta.txt`). Kept only "speakable" sentences (letters and light
punctuation, no digits or acronyms, 6–18 words), then drew {n_synth} at random. Spoken by
{espeak_version} (Debian `espeak-ng`), one voice per file: {voices}; per-sentence speed
jitter; the TTS's own leading/trailing silence trimmed to 50 ms. The audio carries the
licence of the sentence it speaks.

Input files used (sha256, first 16 hex digits):

| corpus file | sha256 |
| --- | --- |
{corpus_hashes}
"""
    (out / "PROVENANCE.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
