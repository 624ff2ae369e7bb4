"""The report in a real headless Chromium: it loads cleanly, shows plots and plays audio,
renders (non-blank screenshot), shows hostile text as text, and its filter works."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browser import Browser, chromium_path, dump_dom
from runs import EN_XSS, FR_XSS, META_XSS

from speechmine.report import build_report


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium_path()  # fails (or skips) with the reason before anything else
    with Browser(tmp_path_factory.mktemp("chromium") / "profile") as b:
        yield b


@pytest.fixture(scope="module")
def text_page(text_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("text_report")
    return build_report(text_run.out, out, gold_path=text_run.gold_ids, rows=100).page


@pytest.fixture(scope="module")
def speech_page(speech_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("speech_report")
    return build_report(speech_run.out, out, gold_path=speech_run.gold).page


def _open(browser: Browser, page: Path) -> None:
    browser.open(page.as_uri())
    assert browser.problems() == []


@pytest.mark.slow  # mines the speech run (tiny SONAR): ~10 s once per session
def test_speech_report_loads_plots_and_plays_audio(browser, speech_page, speech_run):
    _open(browser, speech_page)
    images = browser.evaluate("Array.from(document.images).map(i => [i.complete, "
                              "i.naturalWidth, i.naturalHeight])")
    assert len(images) == 3 and all(c and w > 300 and h > 150 for c, w, h in images)
    assert browser.evaluate("document.querySelectorAll('audio').length") == 16
    # every player loads its clip from clips/ (file://, under the page's CSP): the
    # durations are the segments' (an error or a blocked load would give NaN or -1)
    durations = browser.evaluate("""Promise.all(Array.from(document.querySelectorAll('audio'))
      .map(a => new Promise(done => {
        a.addEventListener('loadedmetadata', () => done(a.duration), {once: true});
        a.addEventListener('error', () => done(-1), {once: true});
        a.preload = 'metadata'; a.load();
      })))""")
    want = sorted([(e - s) / 16000 for _, s, e in speech_run.segments[:8]] * 2)
    np.testing.assert_allclose(sorted(durations), want, atol=1e-3)
    assert browser.problems() == []
    assert browser.evaluate("document.querySelectorAll('td.gold.yes').length") == 8


@pytest.mark.slow  # mines the speech run (tiny SONAR): ~10 s once per session
def test_screenshot_is_not_blank(browser, speech_page, tmp_path):
    from PIL import Image

    _open(browser, speech_page)
    png = browser.screenshot()
    (tmp_path / "shot.png").write_bytes(png)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert pixels.shape[0] > 1000 and pixels.shape[1] >= 1000
    assert pixels.std() > 20  # text, plots and tables on white
    assert (pixels < 128).mean() > 0.01  # a real share of dark (ink) pixels


def test_hostile_text_is_text(browser, text_page):
    _open(browser, text_page)
    texts = browser.evaluate("Array.from(document.querySelectorAll('.text'))"
                             ".map(e => e.textContent)")
    metas = browser.evaluate("Array.from(document.querySelectorAll('.meta'))"
                             ".map(e => e.textContent)")
    assert EN_XSS in texts and FR_XSS in texts and META_XSS in metas
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert browser.evaluate("document.scripts.length") == 1  # the filter, nothing else
    assert browser.evaluate("document.querySelectorAll('img[src=x], b, td td').length") == 0
    assert browser.problems() == []  # no alert dialog, no error


def test_dump_dom_holds_the_text_escaped(text_page, tmp_path):
    dom = dump_dom(text_page.as_uri(), tmp_path / "profile")
    escaped = EN_XSS.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in dom
    assert "<script>alert(1)" not in dom and "<img src=x" not in dom  # never markup
    assert 'id="f-count">41 of 41 pairs shown' in dom  # the filter script ran


def _bitext(run_dir: Path) -> list[tuple[float, str]]:
    """(score, searchable text) of every mined pair, from the output files."""
    [bitext] = run_dir.glob("*.bitext.tsv.gz")
    [bimeta] = run_dir.glob("*.bimeta.tsv.gz")
    with gzip.open(bitext, "rt") as bt, gzip.open(bimeta, "rt") as bm:
        return [(float(t.split("\t")[0]),
                 " ".join(t.rstrip("\n").split("\t")[1:] + m.rstrip("\n").split("\t")[1:3]))
                for t, m in zip(bt, bm)]


def _visible(browser: Browser, lo: str = "", hi: str = "", text: str = "") -> int:
    browser.evaluate(f"""(() => {{
      for (const [id, v] of [['f-min', {lo!r}], ['f-max', {hi!r}], ['f-text', {text!r}]]) {{
        const el = document.getElementById(id);
        el.value = v;
        el.dispatchEvent(new Event('input', {{bubbles: true}}));
      }}
    }})()""")
    shown = browser.evaluate("document.querySelectorAll('tr.pair:not([hidden])').length")
    assert browser.evaluate("document.getElementById('f-count').textContent") == \
        f"{shown} of 41 pairs shown"
    return int(shown)


def test_filter_by_score_and_text(browser, text_page, text_run):
    _open(browser, text_page)
    rows = _bitext(text_run.out)  # every pair is on this page (41 < rows=100)
    assert _visible(browser) == len(rows) == 41
    for lo, hi, text in [("1.5", "", ""), ("", "1.5", ""), ("", "", "nineteen"),
                         ("", "", "DIX-NEUF"), ("1.35", "1.5", ""), ("1.5", "", "twenty"),
                         ("", "", "<script>"), ("", "", "en-meta-3"), ("", "", "zzz")]:
        want = sum((not lo or s >= float(lo)) and (not hi or s <= float(hi))
                   and text.lower() in hay.lower() for s, hay in rows)
        assert _visible(browser, lo, hi, text) == want, (lo, hi, text)
    assert _visible(browser, "", "", "zzz") == 0
    assert _visible(browser) == 41  # cleared: everything back
    band = browser.evaluate("document.querySelector('#band-top .shown').textContent")
    assert band == "41 of 41 shown"


def test_csp_stops_a_script_that_got_into_the_page(browser, text_page, tmp_path):
    """Defence in depth: were escaping ever broken, the page's policy would still refuse
    to run an inline script it does not know."""
    page = tmp_path / "index.html"
    page.write_text(text_page.read_text().replace(
        "</body>", "<script>window.__pwned = true;</script></body>"))
    browser.open(page.as_uri())
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert any("Content Security Policy" in p for p in browser.problems()), browser.problems()
    # the page's own script still ran
    assert browser.evaluate("document.getElementById('f-count').textContent") == \
        "41 of 41 pairs shown"
