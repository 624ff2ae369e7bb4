"""The report page: one HTML file, no server, no network, no data ever run as code.

Safety: every piece of data (mined text, metas, paths, run.json values) is written through
:func:`html.escape` into text or double-quoted attributes, never into script. The one
script is a fixed filter, allowed by a Content-Security-Policy that names its hash (so a
script that slipped in through data would still not run), reads the DOM and only sets
``hidden`` and ``textContent``. Figures are SVG documents inside ``<img>`` (data: URLs), which
browsers never run scripts in; audio comes from relative ``clips/`` files.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass

_FILTER_JS = """
(function () {
  "use strict";
  var lo = document.getElementById("f-min"), hi = document.getElementById("f-max");
  var q = document.getElementById("f-text"), count = document.getElementById("f-count");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.pair"));
  var hay = rows.map(function (r) {
    var t = "";
    r.querySelectorAll(".text, .meta").forEach(function (c) { t += " " + c.textContent; });
    return t.toLowerCase();
  });
  var bands = Array.prototype.slice.call(document.querySelectorAll("section.band"));
  function num(input) { var v = parseFloat(input.value); return isNaN(v) ? null : v; }
  function apply() {
    var a = num(lo), b = num(hi), s = q.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (r, i) {
      var score = parseFloat(r.getAttribute("data-score"));
      var ok = (a === null || score >= a) && (b === null || score <= b) &&
               (s === "" || hay[i].indexOf(s) !== -1);
      r.hidden = !ok;
      if (ok) { shown += 1; }
    });
    bands.forEach(function (band) {
      var all = band.querySelectorAll("tr.pair").length;
      var vis = band.querySelectorAll("tr.pair:not([hidden])").length;
      band.querySelector(".shown").textContent = vis + " of " + all + " shown";
    });
    count.textContent = shown + " of " + rows.length + " pairs shown";
  }
  [lo, hi, q].forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  apply();
})();
"""

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 76em;
       padding: 0 1em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { margin-top: 1.6em; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; }
table.kv td, table.kv th, table.sides td, table.sides th { padding: 2px 10px 2px 0;
  text-align: left; vertical-align: top; }
table.sides td.n { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots figure { margin: 0; } .plots img { width: 460px; max-width: 100%; height: auto;
  border: 1px solid #ddd; }
.plots figcaption { font-size: .85em; color: #555; max-width: 460px; }
#filter { position: sticky; top: 0; background: #f4f6f8; padding: .5em .8em; z-index: 1;
  border: 1px solid #dde; border-radius: 4px; }
#filter input[type=number] { width: 7em; } #filter input[type=search] { width: 18em; }
#f-count { margin-left: 1em; color: #333; }
table.pairs { width: 100%; table-layout: fixed; margin-bottom: .5em; }
table.pairs th { text-align: left; border-bottom: 2px solid #ccc; padding: 3px 6px; }
table.pairs td { border-bottom: 1px solid #e4e4e4; padding: 4px 6px; vertical-align: top;
  overflow-wrap: anywhere; }
table.pairs col.rank { width: 4.5em; } table.pairs col.score { width: 6em; }
table.pairs col.dir { width: 5em; } table.pairs col.gold { width: 3.5em; }
tr.below td { background: #fbf1e6; }
td.score, td.rank { font-variant-numeric: tabular-nums; }
.meta { font-size: .8em; color: #666; } .problem { font-size: .8em; color: #a33; }
audio { display: block; width: 100%; max-width: 22em; height: 2.2em; }
.yes { color: #1d7a38; } .no { color: #b3261e; }
.note { color: #555; margin: .2em 0 .4em; } .shown { font-weight: normal; color: #555;
  font-size: .8em; margin-left: .6em; }
pre { background: #f6f6f6; padding: .6em; overflow: auto; font-size: .85em; }
"""


@dataclass(frozen=True)
class Cell:
    """One side of a pair as shown: ``text`` (the sentence, or for speech the segment's
    label), ``meta`` (small print), and for speech an ``audio`` clip path or a ``problem``."""

    text: str
    meta: str = ""
    audio: str | None = None
    problem: str = ""


@dataclass(frozen=True)
class PairRow:
    rank: int
    score: float
    src: Cell
    tgt: Cell
    direction: str
    gold: bool | None = None
    below: bool = False


@dataclass(frozen=True)
class BandView:
    key: str
    title: str
    note: str
    rows: Sequence[PairRow]


@dataclass(frozen=True)
class Plot:
    title: str
    svg: str
    caption: str


@dataclass
class Page:
    """Everything the page shows, already decided (rendering makes no choice)."""

    title: str
    subtitle: str
    summary: list[tuple[str, str]]
    sides: list[tuple[str, list[str]]]  # (row label, [src value, tgt value])
    side_names: tuple[str, str]
    gold: list[tuple[str, str]]
    figures: list[Plot]
    bands: list[BandView]
    notes: list[str]
    files: list[tuple[str, str]]  # (label, relative href)
    config_yaml: str = ""
    run_json: str = ""
    has_gold_column: bool = False


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def script_hash(script: str) -> str:
    """CSP source of an inline script: ``'sha256-<base64>'`` of its exact text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _cell(cell: Cell, cls: str) -> str:
    parts = [f'<div class="text">{_e(cell.text)}</div>']
    if cell.audio is not None:
        parts.append(f'<audio controls preload="none" src="{_e(cell.audio)}"></audio>')
    if cell.problem:
        parts.append(f'<div class="problem">{_e(cell.problem)}</div>')
    if cell.meta:
        parts.append(f'<div class="meta">{_e(cell.meta)}</div>')
    return f'<td class="{cls}">{"".join(parts)}</td>'


def _row(row: PairRow, gold_column: bool) -> str:
    cls = "pair below" if row.below else "pair"
    gold = ""
    if gold_column:
        mark = ("", "") if row.gold is None else (
            ("yes", "✓") if row.gold else ("no", "✗"))
        gold = f'<td class="gold {mark[0]}">{mark[1]}</td>'
    return (f'<tr class="{cls}" data-score="{row.score!r}"><td class="rank">{row.rank}</td>'
            f'<td class="score">{row.score:.6f}</td>{_cell(row.src, "src")}'
            f'{_cell(row.tgt, "tgt")}<td class="dir">{_e(row.direction)}</td>{gold}</tr>')


def _band(band: BandView, names: tuple[str, str], gold_column: bool) -> str:
    cols = '<col class="rank"><col class="score"><col><col><col class="dir">' + \
        ('<col class="gold">' if gold_column else "")
    head = (f"<tr><th>#</th><th>score</th><th>{_e(names[0])}</th><th>{_e(names[1])}</th>"
            f"<th>dir.</th>{'<th>gold</th>' if gold_column else ''}</tr>")
    body = "".join(_row(r, gold_column) for r in band.rows)
    note = f'<p class="note">{_e(band.note)}</p>' if band.note else ""
    return (f'<section class="band" id="band-{_e(band.key)}"><h3>{_e(band.title)}'
            f'<span class="shown"></span></h3>{note}<table class="pairs">'
            f"<colgroup>{cols}</colgroup><thead>{head}</thead><tbody>{body}</tbody></table>"
            "</section>")


def render(page: Page) -> str:
    """The whole HTML document."""
    csp = ("default-src 'none'; img-src data:; media-src 'self'; style-src 'unsafe-inline'; "
           f"script-src {script_hash(_FILTER_JS)}; base-uri 'none'; form-action 'none'")
    sides = "".join(f"<tr><th>{_e(label)}</th>" + "".join(
        f'<td class="n">{_e(v)}</td>' for v in values) + "</tr>" for label, values in page.sides)
    figures = "".join(
        f'<figure><img alt="{_e(f.title)}" src="data:image/svg+xml;base64,'
        f'{base64.b64encode(f.svg.encode()).decode()}"><figcaption>{_e(f.caption)}'
        "</figcaption></figure>" for f in page.figures)
    gold = f"<h2>Against the gold</h2>{_kv(page.gold)}" if page.gold else ""
    bands = "".join(_band(b, page.side_names, page.has_gold_column) for b in page.bands)
    notes = "".join(f"<li>{_e(n)}</li>" for n in page.notes)
    files = ", ".join(f'<a href="{_e(href)}">{_e(label)}</a>' for label, href in page.files)
    details = "".join(
        f"<details><summary>{_e(name)}</summary><pre>{_e(text)}</pre></details>"
        for name, text in (("config.yaml", page.config_yaml), ("run.json", page.run_json))
        if text)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="speechmine report">
<title>{_e(page.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{_e(page.title)}</h1><p class="sub">{_e(page.subtitle)}</p></header>
<section id="summary"><h2>Run</h2>{_kv(page.summary)}
<table class="sides"><thead><tr><th></th><th>{_e(page.side_names[0])}</th>
<th>{_e(page.side_names[1])}</th></tr></thead><tbody>{sides}</tbody></table>
<p>Files: {files}</p></section>
{gold}
<section id="plots"><h2>Scores</h2><div class="plots">{figures}</div></section>
<section id="pairs"><h2>Mined pairs</h2>
<div id="filter"><label>score ≥ <input id="f-min" type="number" step="any"></label>
<label>≤ <input id="f-max" type="number" step="any"></label>
<label>text <input id="f-text" type="search" placeholder="words in either side"></label>
<span id="f-count"></span></div>
{bands}
</section>
<section id="notes"><h2>About this page</h2><ul>{notes}</ul>{details}</section>
<script>{_FILTER_JS}</script>
</body>
</html>
"""
