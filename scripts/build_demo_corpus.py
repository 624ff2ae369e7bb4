#!/usr/bin/env python3
"""Build speechmine's bundled English-French demo corpus and test data.

The pairs come from human translations shipped in Debian packages:

* the Debian Reference (``debian-reference-en`` / ``debian-reference-fr``):
  both HTML renderings are generated from one DocBook source by po4a, so
  their block structure (headings, paragraphs, list items, table cells)
  is identical; blocks are aligned one-to-one;
* gettext message catalogs (French ``.mo`` files under
  ``usr/share/locale/fr/LC_MESSAGES/``) of a few Debian packages,
  decompiled with ``msgunfmt``: msgid (English) -> msgstr (French).

Deliberately NOT used (reserved for independent evaluation):
gnome-user-docs, debian-handbook, the UDHR and Bible texts.

Outputs (paths relative to the repository root)::

    src/speechmine/data/demo/   ~2,400 gold pairs + distractors
    src/speechmine/data/dev/    ~600 gold pairs + distractors (tuning)
    tests/data/tiny/            ~150 gold pairs + distractors (fast tests)
    src/speechmine/data/PROVENANCE.md

Each set directory holds ``en.txt.gz``, ``fr.txt.gz`` (one sentence per
line, shuffled independently, gzip mtime=0), ``en.meta.txt``,
``fr.meta.txt`` (one provenance tag per line) and ``gold.tsv``
(``en_line<TAB>fr_line``, 0-based, sorted).

Only the standard library is used, plus the ``apt-get``, ``dpkg-deb`` and
``msgunfmt`` (package ``gettext``) commands.  The packages are fetched with
``apt-get download`` into a scratch directory and unpacked with
``dpkg-deb -x``: nothing is installed.  Package versions are pinned (the
ones the bundled data was built from, Debian 12 "bookworm"); pass
``--unpinned`` to take whatever version apt offers (the output will then
differ if a package changed).  Given the same package versions and seed
the output is byte-for-byte identical.

Usage::

    python3 scripts/build_demo_corpus.py [--workdir /tmp/speechmine-demo-build]
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import html.parser
import os
import random
import re
import subprocess
import sys
import unicodedata

SEED = 20240611

# package -> (pinned version, licence of the translated text as stated in the
# package's debian/copyright, short upstream description)
DEBREF_PACKAGES = {
    "debian-reference-en": ("2.100", "GPL-2+", "Debian Reference (Osamu Aoki et al.)"),
    "debian-reference-fr": ("2.100", "GPL-2+", "Debian Reference, French translation"),
}

# gettext catalogs.  Chosen for catalogs with many full-sentence messages
# (help texts, dialog texts, error explanations) and a complete French
# translation.
PO_PACKAGES = {
    "apt": ("2.6.2", "GPL-2+", "APT package manager"),
    "aptitude-common": ("0.8.13-5", "GPL-2+", "aptitude package manager (source: aptitude)"),
    "dpkg": ("1.21.23", "GPL-2+", "Debian package manager"),
    "debconf-i18n": ("1.5.82", "BSD-2-clause", "debconf configuration system (source: debconf)"),
    "adduser": ("3.134", "GPL-2+", "adduser / deluser"),
    "apt-listchanges": ("3.24", "GPL-2+", "apt-listchanges"),
    "synaptic": ("0.91.3", "GPL-2+", "Synaptic package manager"),
    "gnome-software-common": ("43.5-1~deb12u2", "GPL-2+", "GNOME Software (source: gnome-software)"),
    "nautilus-data": ("43.2-1", "GPL-3+", "GNOME Files (source: nautilus)"),
    "evince-common": ("43.1-2+deb12u1", "GPL-2+", "Evince document viewer (source: evince)"),
    "system-config-printer-common": ("1.5.18-1", "GPL-2+", "system-config-printer"),
    "gnupg-l10n": ("2.2.40-1.1+deb12u2", "GPL-3+", "GnuPG (source: gnupg2)"),
    "mutt": ("2.2.12-0.1~deb12u2", "GPL-2+", "Mutt mail reader"),
    "nano": ("7.2-1+deb12u1", "GPL-3+", "GNU nano editor"),
    "tar": ("1.34+dfsg-1.2+deb12u1", "GPL-3+", "GNU tar"),
    "coreutils": ("9.1-1", "GPL-3+", "GNU coreutils"),
    "gettext": ("0.21-12", "GPL-3+", "GNU gettext tools"),
    "util-linux-locales": ("2.38.1-5+deb12u3", "GPL-2+", "util-linux (source: util-linux)"),
}

SETS = {
    # name: (output dir relative to repo root, number of gold pairs)
    "tiny": ("tests/data/tiny", 150),
    "dev": ("src/speechmine/data/dev", 600),
    "demo": ("src/speechmine/data/demo", 2400),
}
DISTRACTOR_RATIO = 0.30  # unpaired sentences added per side, relative to gold
# share of debian-reference pairs in each set (the rest: gettext catalogs)
DEBREF_SHARE = 0.5

MIN_WORDS, MAX_WORDS = 4, 40

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, **kw).stdout


def fetch_packages(workdir, packages, unpinned):
    """apt-get download + dpkg-deb -x; returns {pkg: (version, root dir, .deb)}."""
    debdir = os.path.join(workdir, "debs")
    os.makedirs(debdir, exist_ok=True)
    out = {}
    for pkg, (version, _lic, _desc) in packages.items():
        pattern = os.path.join(debdir, f"{pkg}_*.deb")
        have = sorted(glob.glob(pattern))
        if not unpinned:
            have = [d for d in have
                    if run(["dpkg-deb", "-f", d, "Version"]).decode().strip() == version]
        if not have:
            spec = pkg if unpinned else f"{pkg}={version}"
            log(f"apt-get download {spec}")
            try:
                subprocess.run(["apt-get", "download", "-q", spec], cwd=debdir, check=True,
                               stdout=subprocess.DEVNULL)
            except subprocess.CalledProcessError:
                sys.exit(f"cannot download {spec}: run 'apt-get update', or use --unpinned")
            have = sorted(glob.glob(pattern))
        deb = have[-1]
        got = run(["dpkg-deb", "-f", deb, "Version"]).decode().strip()
        root = os.path.join(workdir, "x", f"{pkg}_{got}")
        if not os.path.isdir(root):
            os.makedirs(root)
            run(["dpkg-deb", "-x", deb, root])
        out[pkg] = (got, root, deb)
    return out


# ---------------------------------------------------------------------------
# text normalisation, sentence splitting, filters
# ---------------------------------------------------------------------------

_WS = re.compile(r"\s+")


def clean(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u00a0", " ").replace("\u202f", " ").replace("\u2009", " ")
    text = text.replace("\u200b", "").replace("\u00ad", "")
    return _WS.sub(" ", text).strip()


_ABBREV = {
    "e.g.", "i.e.", "etc.", "vs.", "cf.", "ex.", "fig.", "no.", "nr.", "mr.", "mrs.", "dr.",
    "st.", "resp.", "approx.", "c.-à-d.", "c-à-d.", "p.", "env.", "sect.", "vol.", "chap.",
    "ed.", "incl.", "min.", "max.", "e.", "i.", "n°.",
}
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"»”’)]*\s+(?=[«\"“(]?\s?[A-ZÀ-ÖØ-Þ0-9])")


def split_sentences(text: str) -> list[str]:
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        piece = text[start:m.start()].rstrip()
        # boundary must not follow a known abbreviation / initial
        last = piece.split(" ")[-1].lower().lstrip("(«\"")
        trimmed = last.rstrip("\"»”’)")
        if trimmed in _ABBREV or re.fullmatch(r"\w\.", trimmed) or re.fullmatch(r"(\w\.){2,}", trimmed):
            continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


_EN_SW = set("""the of and to is in for this that with you are be it as by can not or from an
which your if was will should have has these those use used when there their they we
would could does do been into only also than then its such what how all any may must
other more most some see following about one each but our us he she his her my""".split())
_FR_SW = set("""le la les de des du et est un une pour dans que qui sur par pas vous votre vos ce
cette ces avec au aux sont il ils elle elles peut ne être été sera seront nous notre nos
leur leurs son sa ses mais ou où si comme tout tous toutes plus moins aussi lorsque quand
donc dont ceci cela ici très fichier fichiers paquet paquets utiliser utilisé""".split())
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)


def words(s: str) -> list[str]:
    return _WORD.findall(s)


def lang_scores(s: str) -> tuple[int, int]:
    toks = [w.lower() for w in re.split(r"[\s'’,;:.!?()«»\"]+", s) if w]
    en = sum(t in _EN_SW for t in toks)
    fr = sum(t in _FR_SW for t in toks)
    fr += sum(t.startswith(("l'", "d'", "l’", "d’", "qu'", "qu’", "n'", "n’", "s'", "s’"))
              for t in s.lower().split())
    return en, fr


def looks_english(s):
    en, fr = lang_scores(s)
    return en >= 1 and en > fr


def looks_french(s):
    en, fr = lang_scores(s)
    return fr >= 1 and fr > en


_FMT = re.compile(
    r"%(\d+\$)?[-+ #0']*(\d+|\*)?(\.(\d+|\*))?(hh|h|ll|l|L|q|j|z|t|I64)?[diouxXeEfFgGcCrsSpnmb]"
    r"|%\(\w+\)|%[0-9]|\{[\w.]*\}|\$\{|\$[A-Za-z_]")
_NUM = re.compile(r"\d+(?:[.,]\d+)*")


def norm_key(s: str) -> str:
    """Key for deduplication: case, accents, punctuation and digits folded."""
    s = unicodedata.normalize("NFKD", s.lower())
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = re.sub(r"\d+", "0", s)
    return re.sub(r"[^\w]+", " ", s).strip()


def fuzzy_key(s: str) -> tuple:
    """Coarser key catching near duplicates ("update"/"updates", word order)."""
    toks = {t.rstrip("s") for t in norm_key(s).split() if len(t) > 2 and not t.isdigit()}
    return tuple(sorted(toks))


def good_sentence(s: str, lang: str) -> bool:
    w = words(s)
    lo, hi = (MIN_WORDS, MAX_WORDS) if lang == "en" else (MIN_WORDS - 1, int(MAX_WORDS * 1.3))
    if not lo <= len(s.split()) <= hi:
        return False
    if len(w) < 3:
        return False
    letters = sum(c.isalpha() for c in s)
    if letters < 0.65 * len(s.replace(" ", "")):
        return False  # mostly code, paths, numbers
    if _FMT.search(s) or "http" in s or "\t" in s or "://" in s:
        return False
    if re.search(r"[<>\\|]|__|\[\[|\$ ", s):
        return False
    if re.search(r"\(\w\)\w", s):  # "(e)ncrypt, (s)ign" key prompts
        return False
    if re.match(r"^\s*[-*•]", s):
        return False
    if not (s[0].isalpha() or s[0] in "«\"“‘'("):
        return False
    return looks_english(s) if lang == "en" else looks_french(s)


def good_pair(en: str, fr: str) -> bool:
    if norm_key(en) == norm_key(fr):
        return False
    if not (good_sentence(en, "en") and good_sentence(fr, "fr")):
        return False
    r = len(fr) / max(1, len(en))
    if not 0.75 <= r <= 2.0:
        return False
    # numbers must agree (cheap misalignment check)
    if sorted(_NUM.findall(en)) != sorted(_NUM.findall(fr)):
        return False
    # an untranslated tail/head in French: long English word runs
    en_tokens = set(w.lower() for w in words(en) if len(w) > 3)
    fr_tokens = [w.lower() for w in words(fr) if len(w) > 3]
    if fr_tokens and sum(t in en_tokens for t in fr_tokens) / len(fr_tokens) > 0.6:
        return False
    return True


def segment_pair(en: str, fr: str) -> list[tuple[str, str]]:
    """Sentence-split an aligned unit; keep it whole if the splits disagree."""
    se, sf = split_sentences(en), split_sentences(fr)
    if len(se) == len(sf):
        return list(zip(se, sf))
    if len(en.split()) <= MAX_WORDS:
        return [(en, fr)]
    return []


# ---------------------------------------------------------------------------
# Debian Reference (HTML)
# ---------------------------------------------------------------------------

_BLOCK = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "dt", "caption"}
_SKIP = {"pre", "script", "style", "head"}


class _Blocks(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self.cur = None
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
            return
        if tag in _BLOCK:
            if self.cur is not None:
                self._flush()
            self.cur = [tag, []]
        elif tag == "br" and self.cur is not None:
            self.cur[1].append(" ")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.cur is not None and tag == self.cur[0]:
            self._flush()

    def handle_data(self, data):
        if self.cur is not None and not self.skip:
            self.cur[1].append(data)

    def _flush(self):
        self.blocks.append((self.cur[0], clean("".join(self.cur[1]))))
        self.cur = None


DEBREF_STATS: dict[str, str] = {}  # chapter -> what was used (for PROVENANCE.md)
_LABEL = re.compile(r"^(?:(?:Table|Tableau|Figure|Example|Exemple|Section|Chapter|Chapitre|"
                    r"Appendix|Annexe)\s+)?(?:[A-Z]\.)?\d+(?:\.\d+)*\.\s+")


def html_blocks(path):
    p = _Blocks()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    p.close()
    return p.blocks


def debref_pairs(root_en, root_fr):
    """Yield (tag, en, fr) from structurally identical chapter files."""
    d_en = os.path.join(root_en, "usr/share/debian-reference")
    d_fr = os.path.join(root_fr, "usr/share/debian-reference")
    stats = DEBREF_STATS
    for f_en in sorted(glob.glob(os.path.join(d_en, "*.en.html"))):
        name = os.path.basename(f_en)[: -len(".en.html")]
        if name == "index":  # table of contents: repeats the headings
            continue
        f_fr = os.path.join(d_fr, f"{name}.fr.html")
        if not os.path.exists(f_fr):
            continue
        b_en, b_fr = html_blocks(f_en), html_blocks(f_fr)
        if [t for t, _ in b_en] != [t for t, _ in b_fr]:
            log(f"debian-reference {name}: block structure differs, skipped")
            stats[name] = "skipped (structure differs)"
            continue
        n = 0
        for (_t, en), (_t2, fr) in zip(b_en, b_fr):
            # drop "Table 2.3. " / "3.1.2. " labels: numbering is not text
            en, fr = _LABEL.sub("", en), _LABEL.sub("", fr)
            if not en or not fr or en == fr:
                continue
            for s_en, s_fr in segment_pair(en, fr):
                n += 1
                yield f"debian-reference:{name}.html", s_en, s_fr
        stats[name] = f"{len(b_en)} blocks, {n} segments"
    log("debian-reference:", stats)


# ---------------------------------------------------------------------------
# gettext catalogs
# ---------------------------------------------------------------------------


_ESC = {"n": "\n", "t": "\t", "r": "", '"': '"', "\\": "\\", "a": "", "b": "", "f": "", "v": ""}


def _unquote(parts):
    return re.sub(r"\\(.)", lambda m: _ESC.get(m.group(1), m.group(1)), "".join(parts))


def parse_po(text):
    """Minimal parser for msgunfmt output: yields (msgctxt, msgid, msgstr)."""
    entries = []
    cur = {}
    key = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            if cur:
                entries.append(cur)
                cur, key = {}, None
            continue
        m = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+"(.*)"$', line)
        if m:
            key = m.group(1)
            if key == "msgctxt" and cur:
                entries.append(cur)
                cur = {}
            if key == "msgid" and "msgid" in cur:
                entries.append(cur)
                cur = {}
            cur[key] = [m.group(2)]
        elif line.startswith('"') and key:
            cur[key].append(line[1:-1])
    if cur:
        entries.append(cur)
    for e in entries:
        msgid = _unquote(e.get("msgid", [""]))
        msgstr = _unquote(e.get("msgstr", e.get("msgstr[0]", [""])))
        if msgid and msgstr:
            yield _unquote(e.get("msgctxt", [""])), msgid, msgstr


_TAGS = re.compile(r"</?(b|i|u|tt|big|small|span|a|em|strong|sub|sup|code|br|p|q|emphasis|"
                   r"literal|command|filename|markup|app|gui|key|cmd|sys|link)\b[^>]*>")


def clean_message(s):
    if re.search(r"(^|\s)--?[A-Za-z]", s) and ("\n" in s or "  " in s):
        return ""  # option tables of --help texts
    s = _TAGS.sub("", s)
    s = s.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    s = s.replace("&apos;", "'").replace("&#39;", "'")
    s = re.sub(r"(?<![\w_])_(?=\w)", "", s)  # GTK mnemonics
    s = re.sub(r"&(?=\w)", "", s)  # Qt/KDE accelerators
    s = re.sub(r"\s*\(_\w\)", "", s)  # "(_O)" style mnemonics
    return clean(s.replace("\n", " "))


def po_pairs(pkg, root):
    mos = sorted(glob.glob(os.path.join(root, "usr/share/locale/fr/LC_MESSAGES/*.mo")))
    for mo in mos:
        domain = os.path.basename(mo)[:-3]
        if domain.endswith("-gnulib"):
            continue
        text = run(["msgunfmt", "--no-wrap", mo]).decode("utf-8")
        for _ctx, msgid, msgstr in parse_po(text):
            en, fr = clean_message(msgid), clean_message(msgstr)
            if not en or not fr:
                continue
            tag = pkg.removesuffix("-common").removesuffix("-data").removesuffix("-l10n")
            tag = tag.removesuffix("-locales").removesuffix("-i18n")
            for s_en, s_fr in segment_pair(en, fr):
                yield f"po:{tag}", s_en, s_fr


# ---------------------------------------------------------------------------
# assembly
# ---------------------------------------------------------------------------


def collect(fetched):
    """All filtered, deduplicated candidate pairs, in a deterministic order."""
    raw = list(debref_pairs(fetched["debian-reference-en"][1], fetched["debian-reference-fr"][1]))
    for pkg in PO_PACKAGES:
        raw.extend(po_pairs(pkg, fetched[pkg][1]))
    seen = set()
    pairs = []
    per_src = collections.Counter()
    kept_src = collections.Counter()
    for tag, en, fr in raw:
        per_src[tag.split(":")[0] if tag.startswith("debian") else tag] += 1
        if not good_pair(en, fr):
            continue
        keys = (norm_key(en), norm_key(fr), fuzzy_key(en), fuzzy_key(fr))
        if any(k in seen for k in keys):
            continue
        seen.update(keys)
        pairs.append((tag, en, fr))
        kept_src[tag.split(":")[0] if tag.startswith("debian") else tag] += 1
    log("candidates (raw -> kept):")
    for k in sorted(per_src):
        log(f"  {k:32s} {per_src[k]:6d} -> {kept_src[k]:5d}")
    return pairs, per_src, kept_src


def _balanced(items, n, rng):
    """n items drawn round-robin over source tags (no tag dominates)."""
    by_tag = collections.defaultdict(list)
    for it in items:
        by_tag[it[0]].append(it)
    queues = []
    for tag in sorted(by_tag):
        q = by_tag[tag]
        rng.shuffle(q)
        queues.append(q)
    out = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop())
    return out


def _deal(items, quotas):
    """Deal items (sorted by tag) to sets in proportion to their quotas, so
    that every set gets about the same mix of sources."""
    total = sum(quotas.values())
    got = {k: [] for k in quotas}
    for i, it in enumerate(items):
        k = max(quotas, key=lambda k: (quotas[k] * (i + 1) / total - len(got[k]), -list(quotas).index(k)))
        got[k].append(it)
    return got


def split_sets(pairs, seed):
    """Disjoint random samples per set, stratified by source.

    Half of the pairs come from debian-reference, half from the catalogs,
    drawn round-robin over chapters / packages; each chapter / package is
    then spread over the sets in proportion to the set sizes."""
    rng = random.Random(seed)
    fam = collections.defaultdict(list)
    for p in pairs:
        fam["debref" if p[0].startswith("debian") else "po"].append(p)
    quotas = {"debref": {}, "po": {}}
    for name, (_dir, n_gold) in SETS.items():
        need = n_gold + 2 * round(n_gold * DISTRACTOR_RATIO)
        quotas["debref"][name] = round(need * DEBREF_SHARE)
        quotas["po"][name] = need - quotas["debref"][name]
    chosen = {name: [] for name in SETS}
    for k in ("debref", "po"):
        n = sum(quotas[k].values())
        sample = _balanced(fam[k], n, rng)
        if len(sample) < n:
            sys.exit(f"not enough {k} pairs: {len(sample)} < {n}")
        sample.sort(key=lambda p: p[0])  # stable: keeps the random order within a tag
        for name, part in _deal(sample, quotas[k]).items():
            chosen[name].extend(part)
    sets = {}
    for name, (_dir, n_gold) in SETS.items():
        n_dis = round(n_gold * DISTRACTOR_RATIO)
        c = chosen[name]
        rng.shuffle(c)
        sets[name] = (c[:n_gold], c[n_gold:n_gold + n_dis], c[n_gold + n_dis:])
    return sets


def write_gz(path, lines):
    data = "".join(l + "\n" for l in lines).encode("utf-8")
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as g:
            g.write(data)


def write_set(outdir, gold, en_only, fr_only, seed):
    rng = random.Random(seed)
    os.makedirs(outdir, exist_ok=True)
    en_items = [(p[1], p[0], i) for i, p in enumerate(gold)] + [(p[1], p[0], None) for p in en_only]
    fr_items = [(p[2], p[0], i) for i, p in enumerate(gold)] + [(p[2], p[0], None) for p in fr_only]
    rng.shuffle(en_items)
    rng.shuffle(fr_items)
    en_pos = {g: n for n, (_, _, g) in enumerate(en_items) if g is not None}
    fr_pos = {g: n for n, (_, _, g) in enumerate(fr_items) if g is not None}
    write_gz(os.path.join(outdir, "en.txt.gz"), [t for t, _, _ in en_items])
    write_gz(os.path.join(outdir, "fr.txt.gz"), [t for t, _, _ in fr_items])
    for lang, items in (("en", en_items), ("fr", fr_items)):
        with open(os.path.join(outdir, f"{lang}.meta.txt"), "w", encoding="utf-8") as f:
            f.writelines(tag + "\n" for _, tag, _ in items)
    gold_lines = sorted((en_pos[i], fr_pos[i]) for i in range(len(gold)))
    with open(os.path.join(outdir, "gold.tsv"), "w", encoding="utf-8") as f:
        f.writelines(f"{a}\t{b}\n" for a, b in gold_lines)
    return len(en_items), len(fr_items)


def package_info(deb, pkg):
    homepage = run(["dpkg-deb", "-f", deb, "Homepage"]).decode().strip()
    source = run(["dpkg-deb", "-f", deb, "Source"]).decode().strip().split(" ")[0]
    return homepage, source or pkg


def provenance(path, fetched, per_src, kept_src, sets, counts, seed):
    lines = []
    w = lines.append
    w("# Provenance of the bundled English–French data")
    w("")
    w("Generated by `scripts/build_demo_corpus.py` (seed %d); do not edit by hand." % seed)
    w("")
    w("All sentences are **human translations shipped in Debian 12 (bookworm) packages**.")
    w("Packages were fetched with `apt-get download` and unpacked with `dpkg-deb -x`")
    w("(nothing installed). The texts keep the licence of the package they come from.")
    w("")
    w("**Deliberately not used** (reserved for independent evaluation): gnome-user-docs,")
    w("debian-handbook, the Universal Declaration of Human Rights (UDHR) and Bible texts.")
    w("")
    w("## Sets")
    w("")
    w("| set | directory | gold pairs | en lines | fr lines | en distractors | fr distractors |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (d, _n) in SETS.items():
        gold, en_only, fr_only = sets[name]
        ne, nf = counts[name]
        w(f"| {name} | `{d}/` | {len(gold)} | {ne} | {nf} | {len(en_only)} | {len(fr_only)} |")
    w("")
    w("The three sets are disjoint (no English or French sentence, after folding case,")
    w("accents, punctuation and digits, occurs twice anywhere). `dev` is for tuning")
    w("defaults, `demo` for the bundled demo, `tiny` for fast end-to-end tests.")
    w("")
    w("Files per set: `en.txt.gz`, `fr.txt.gz` (one sentence per line, UTF-8, each side")
    w("shuffled independently, gzip with mtime 0), `en.meta.txt`, `fr.meta.txt` (source tag")
    w("of each line: `debian-reference:<chapter>.html` or `po:<package>`), `gold.tsv`")
    w("(`en_line<TAB>fr_line`, 0-based, sorted). Each side gets distractors amounting to")
    w(f"{round(DISTRACTOR_RATIO * 100)} % of the gold count: sentences of other pairs from the same pool whose")
    w("counterpart was removed (the English distractors and the French distractors come")
    w("from different pairs), so every set has sentences without a translation on both")
    w("sides and precision matters. Gold pairs always share their source tag.")
    w("")
    w("## Sources")
    w("")
    w("| package | version | source package | upstream | licence | used as |")
    w("| --- | --- | --- | --- | --- | --- |")
    for table, role in ((DEBREF_PACKAGES, "Debian Reference HTML"), (PO_PACKAGES, "fr `.mo` catalog")):
        for pkg, (_v, lic, desc) in table.items():
            ver, _root, deb = fetched[pkg]
            home, src = package_info(deb, pkg)
            up = f"{desc}" + (f", <{home}>" if home else "")
            w(f"| {pkg} | {ver} | {src} | {up} | {lic} | {role} |")
    w("")
    w("Licences are as stated in each package's `/usr/share/doc/<package>/copyright`")
    w("(debian-reference: GPL-2+, \"Translation licenses: ... the same copyright as I did")
    w("(GPL)\"). A message catalog is part of its program and takes its package's licence")
    w("(debconf-i18n's copyright file is the one of its source package debconf).")
    w("")
    w("## Processing")
    w("")
    w("* **debian-reference**: each `<file>.en.html` / `<file>.fr.html` pair in")
    w("  `/usr/share/debian-reference/` (`index` skipped: it only repeats headings) is parsed")
    w("  into block elements (`p`, `h1`–`h6`, `td`, `th`, `dt`, `caption`; `pre` skipped,")
    w("  markup stripped, \"Table 2.3.\"/\"3.1.2.\" numbering labels removed). Both files are")
    w("  generated from one source by po4a, so a file is used only if its block-tag")
    w("  sequences are identical, and blocks are paired one-to-one. Blocks left")
    w("  untranslated (identical, or French side not French) are dropped. Per file:")
    for name, what in sorted(DEBREF_STATS.items()):
        w(f"  `{name}`: {what};")
    w("* **gettext catalogs**: `usr/share/locale/fr/LC_MESSAGES/*.mo` decompiled with")
    w("  `msgunfmt`; msgid → msgstr (singular form). Mnemonics (`_`, `&`) and simple markup")
    w("  removed; option tables of `--help` texts and `*-gnulib` domains skipped.")
    w("* **Sentences**: an aligned unit is split into sentences by a rule-based splitter;")
    w("  if both sides split into the same number of sentences they are paired in order,")
    w(f"  otherwise the unit is kept whole if it has at most {MAX_WORDS} words, else dropped.")
    w(f"* **Filters**: English side {MIN_WORDS}–{MAX_WORDS} words; both sides mostly letters; no printf/brace")
    w("  placeholders (`%s`, `{name}`, `$VAR`), URLs, `<>|\\`; stop-word test that the English")
    w("  side is English and the French side French; French/English character-length ratio")
    w("  0.75–2.0; identical multiset of numbers on both sides; French side not mostly")
    w("  copied English words; source ≠ target; deduplicated on folded text on both sides.")
    w("")
    w("## Counts per source")
    w("")
    w("Aligned segments before filtering → pairs kept after filtering and dedup, and the")
    w("pairs (gold + distractor halves) that ended up in each set:")
    w("")
    used = {name: collections.Counter() for name in SETS}
    for name in SETS:
        for part in sets[name]:
            for tag, _e, _f in part:
                used[name][tag.split(":")[0] if tag.startswith("debian") else tag] += 1
    w("| source | segments | kept | " + " | ".join(SETS) + " |")
    w("| --- | ---: | ---: | " + " | ".join("---:" for _ in SETS) + " |")
    for k in sorted(per_src):
        w(f"| {k} | {per_src[k]} | {kept_src[k]} | " + " | ".join(str(used[n][k]) for n in SETS) + " |")
    w("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default="/tmp/speechmine-demo-build")
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--unpinned", action="store_true", help="accept any package version")
    ap.add_argument("--dump", help="also write all candidate pairs as TSV here (debugging)")
    args = ap.parse_args(argv)

    fetched = fetch_packages(args.workdir, {**DEBREF_PACKAGES, **PO_PACKAGES}, args.unpinned)
    pairs, per_src, kept_src = collect(fetched)
    log(f"{len(pairs)} candidate pairs")
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as f:
            f.writelines(f"{t}\t{e}\t{fr}\n" for t, e, fr in pairs)
    sets = split_sets(pairs, args.seed)
    counts = {}
    for i, (name, (d, _n)) in enumerate(SETS.items()):
        gold, en_only, fr_only = sets[name]
        counts[name] = write_set(os.path.join(args.repo, d), gold, en_only, fr_only, args.seed + 1 + i)
        log(f"{name}: {len(gold)} gold, en {counts[name][0]} lines, fr {counts[name][1]} lines")
    provenance(os.path.join(args.repo, "src/speechmine/data/PROVENANCE.md"),
               fetched, per_src, kept_src, sets, counts, args.seed)


if __name__ == "__main__":
    main()
