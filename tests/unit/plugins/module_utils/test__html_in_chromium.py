# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The reports as a browser shows them: headless Chromium renders them, we read its DOM and its screenshots.

Pages (``report_samples``): the disk report (every status, fill rates,
undelivered mail), fleet reports of one host and of fifty (unreachable and
failed hosts, filesystems with and without forecasts), the same with
hostile names, and the fifty-host report at a phone's width.

For each page Chromium loads a copy with a small probe script (the
reports themselves carry none) that writes every cell's *computed* style
into the DOM it dumps, and the page's size: so these tests see what the
browser applied, not only what the markup says. Then it takes a
screenshot of the whole page, which stays in tests/output/screenshots/
(ignored by git) for a person to look at; the tests read its pixels.
"""

import concurrent.futures
import json
import os
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Optional

import chromium
import html_check
import pytest
import report_samples as samples

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _html

ROOT_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT_DIR, "tests", "bench"))
import fleet_scale  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(chromium.BINARY is None, reason=chromium.MISSING)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
SHOTS = os.path.join(ROOT, "tests", "output", "screenshots")
WIDE, NARROW = 1024, 500  # 500: the narrowest window headless Chromium lays out
MARGIN = 48  # blank rows below the page in its screenshot: the proof that nothing was cut off

PROBE = """<script>(function () {
  var cells = document.querySelectorAll('td, th, span');
  for (var i = 0; i < cells.length; i++) {
    var s = getComputedStyle(cells[i]);
    cells[i].setAttribute('data-computed', [s.textAlign, s.backgroundColor, s.color, s.borderTopWidth,
      s.borderTopStyle, s.borderLeftWidth, s.fontWeight, s.paddingLeft].join('|'));
  }
  document.body.setAttribute('data-size', document.documentElement.scrollWidth + 'x' +
    document.documentElement.scrollHeight);
  document.currentScript.parentNode.removeChild(document.currentScript);
})();</script>"""
COMPUTED = ("align", "background", "colour", "border_top", "border_style", "border_left", "weight", "padding")


@dataclass
class Rendered:
    """One page: what we wrote, what Chromium built, its size in the browser and its screenshot."""

    source: str
    dom: html_check.Node
    width: int
    height: int
    png: Optional[chromium.Image]


def computed(node):
    return dict(zip(COMPUTED, node.attrs["data-computed"].split("|")))


def rgb(colour: str) -> str:
    return "rgb({}, {}, {})".format(*(int(colour[i:i + 2], 16) for i in (1, 3, 5)))


def render(name: str, page: str, width: int, screenshot: bool) -> Rendered:
    os.makedirs(SHOTS, exist_ok=True)
    path = os.path.join(SHOTS, name + ".html")
    with open(path, "w", encoding="utf-8") as out:
        out.write(page)
    probe = os.path.join(SHOTS, name + ".probe.html")
    with open(probe, "w", encoding="utf-8") as out:
        out.write(page.replace("</body>", PROBE + "</body>"))
    try:
        dom = html_check.parse(chromium.dump_dom(probe, width, 800))[0]
    finally:
        os.unlink(probe)
    size = dom.find_all("body")[0].attrs["data-size"]
    page_width, page_height = (int(n) for n in size.split("x"))
    image = None
    if screenshot:
        png = os.path.join(SHOTS, name + ".png")
        chromium.screenshot(path, png, width, page_height + MARGIN)
        image = chromium.read_png(png)
    return Rendered(page, dom, page_width, page_height, image)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    shutil.rmtree(SHOTS, ignore_errors=True)
    spool = samples.spool_with_undelivered(str(tmp_path_factory.mktemp("spool")))

    def fleet(count, hostile=False):
        path = samples.fleet_report(count, str(tmp_path_factory.mktemp("fleet")), spool, hostile=hostile)
        with open(path, encoding="utf-8") as page:
            return page.read()

    fifty = fleet(50)
    wanted = {  # name: page, window width, screenshot
        "disk-report": (samples.disk_report(spool).html, WIDE, True),
        "fleet-1-host": (fleet(1), WIDE, True),
        "fleet-50-hosts": (fifty, WIDE, True),
        "fleet-50-hosts-narrow": (fifty, NARROW, True),
        "disk-report-hostile": (samples.disk_report(spool, hostile=True).html, WIDE, False),
        "fleet-50-hosts-hostile": (fleet(50, hostile=True), WIDE, False),
    }
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # two browsers at a time: one per core
        futures = {name: pool.submit(render, name, *how) for name, how in wanted.items()}
        return {name: future.result() for name, future in futures.items()}


def body(page):
    return page.dom.find_all("body")[0].text


def tags(root):
    return Counter(node.tag for node in root.elements())


# ---- the DOM Chromium built ----------------------------------------------------------------------

def test_the_browser_builds_exactly_the_document_we_wrote(pages):
    for name, page in pages.items():
        source = html_check.parse(page.source)[0]
        assert tags(page.dom) == tags(source), f"{name}: Chromium had to repair the markup"
        assert " ".join(page.dom.text.split()) == " ".join(source.text.split()), name
        assert not page.dom.find_all("script") and not page.dom.find_all("img"), name


def test_header_cells_are_bold_on_grey_with_borders_and_cells_are_padded_and_bordered(pages):
    for name, page in pages.items():
        heads = page.dom.find_all("th")
        assert len(heads) == len(html_check.parse(page.source)[0].find_all("th")) >= 4, name
        for th in heads:
            look = computed(th)
            assert look["weight"] == "700" and look["background"] == rgb(_html.HEAD), (name, th.text, look)
            assert look["border_top"] == "1px" and look["border_style"] == "solid", (name, th.text, look)
        for td in page.dom.find_all("td"):
            if html_check.header_of(td) is not None:
                look = computed(td)
                assert look["border_top"] == "1px" and look["padding"] == "10px", (name, td.text, look)


def test_numbers_are_right_aligned_where_their_header_is_and_text_left(pages):
    numeric = {"Size", "Used", "Avail", "Use%", "Inodes", "IUse%", "Free", "Fill rate", "Growth per day", "Full in",
               "Full on", "History", "When"}
    for name, page in pages.items():
        checked = 0
        for td in page.dom.find_all("td"):
            th = html_check.header_of(td)
            if th is None or td.attrs.get("colspan"):
                continue
            assert computed(td)["align"] == ("right" if th.text in numeric else "left"), (name, th.text, td.text)
            checked += 1
        assert checked > 20, name


def test_each_row_shows_its_status_as_a_word_and_in_colour(pages):
    seen = set()
    for name, page in pages.items():
        for tr in page.dom.find_all("tr"):
            status = tr.attrs.get("data-status")
            if not status:
                continue
            look = _html.STATUSES[status]
            cells = tr.kids("td")
            badge = cells[0].find_all("span")
            if badge:  # rows of the reports' main tables start with the status badge
                assert badge[0].text.endswith(look.label), (name, tr.text)
                assert computed(badge[0])["background"] == rgb(look.colour), (name, tr.text)
                assert computed(badge[0])["colour"] == rgb(look.ink), (name, tr.text)
                seen.add(status)
            if look.tint:
                assert {computed(td)["background"] for td in cells} == {rgb(look.tint)}, (name, tr.text)
                assert computed(cells[0])["border_left"] == "4px", (name, tr.text)
    assert seen == set(_html.STATUSES), seen


def test_the_counts_the_explanations_and_the_undelivered_mail_are_on_the_page(pages):
    need = "a rate needs disk-use history spanning at least 10 minutes"
    disk = " ".join(body(pages["disk-report"]).split())
    assert f"No fill rate yet for 2 of 7: {need}" in disk and "no fill rate yet" in disk
    one = " ".join(body(pages["fleet-1-host"]).split())
    assert f"No fill rate yet: {need}" in one
    fifty = " ".join(body(pages["fleet-50-hosts"]).split())
    assert fifty.startswith("Fleet report Generated ") and \
        "50 hosts: 3 UNREACHABLE 2 FAILED 14 CRIT 6 WARN 2 NO REPORT 23 OK 50 hosts (3 unreachable" in fifty
    assert "23 OK reachable, disks ok: app03, app04, " in fifty, "the fine hosts share one line"
    assert "10 filesystems, worst first: 3 CRIT 1 WARN 6 OK" in disk
    for text in (disk, one, fifty):
        assert "Undelivered mail (2)" in text and "gone@example.com: 550 5.1.1 mailbox <unavailable>" in text


def test_hostile_names_reach_the_browser_as_text(pages):
    for name in ("disk-report-hostile", "fleet-50-hosts-hostile"):
        dom = pages[name].dom
        assert not [n for n in dom.elements() if n.tag in ("script", "img", "svg", "b")], name
        assert not [a for n in dom.elements() for a in n.attrs if a.startswith("on")], name
        cells = [td.text for td in dom.find_all("td")]
        assert samples.HOSTILE_MOUNT in cells, name
    assert samples.HOSTILE_DEVICE in [td.text for td in pages["disk-report-hostile"].dom.find_all("td")]
    fleet_cells = [td.text for td in pages["fleet-50-hosts-hostile"].dom.find_all("td")]
    assert samples.HOSTILE_HOST in fleet_cells and samples.HOSTILE_NAME in fleet_cells


def test_the_pages_fit_a_mail_window_and_a_phone_scrolls_tables_not_the_page(pages):
    for name in ("disk-report", "fleet-1-host", "fleet-50-hosts"):
        assert pages[name].width <= WIDE, f"{name} is {pages[name].width}px wide: columns do not fit {WIDE}px"
    assert pages["fleet-50-hosts-narrow"].width <= NARROW
    assert pages["fleet-1-host"].height < pages["fleet-50-hosts"].height < 6 * pages["fleet-1-host"].height, \
        "fifty hosts make a longer page, but the fine ones share a line"


# ---- the screenshots ------------------------------------------------------------------------------

def count_near(counts, colour):
    return sum(n for pixel, n in counts.items() if chromium.near(pixel, colour, 2))


@pytest.mark.parametrize("name,width,statuses", [
    ("disk-report", WIDE, ("crit", "warn", "ok")),
    ("fleet-1-host", WIDE, ("crit", "ok")),
    ("fleet-50-hosts", WIDE, ("unreachable", "failed", "crit", "warn", "unknown", "ok")),
    ("fleet-50-hosts-narrow", NARROW, ("unreachable", "failed", "crit", "warn", "unknown", "ok")),
])
def test_screenshots_show_the_whole_page_with_every_status_colour(pages, name, width, statuses):
    page = pages[name]
    image = page.png
    assert (image.width, image.height) == (width, page.height + MARGIN), "the PNG has the window's size"
    counts = image.colours()
    white = counts.get((255, 255, 255), 0)
    total = image.width * image.height
    assert len(counts) > 200, f"{name}: {len(counts)} colours: a blank or flat picture"
    # (the fifty-host sample is mostly hosts and filesystems that are not ok: tinted rows, a third of it white)
    assert 0.02 < 1 - white / total < 0.75, f"{name}: {1 - white / total:.1%} of the picture is not white"
    for status in statuses:
        look = _html.STATUSES[status]
        assert count_near(counts, look.colour) > 150, f"{name}: no {status} badge ({look.colour}) in the picture"
        if look.tint:
            assert count_near(counts, look.tint) > 2000, f"{name}: no {status} rows ({look.tint}) in the picture"
    for status in set(_html.STATUSES) - set(statuses):
        assert count_near(counts, _html.STATUSES[status].colour) < 20, f"{name}: {status} shows but should not"
    assert all(set(row) == {255} for row in image.rows[-MARGIN + 8:]), f"{name}: the page runs off the picture"
    assert any(set(row) != {255} for row in image.rows[-MARGIN - 80:-MARGIN + 8]), \
        f"{name}: the page ends well above where the browser said it does"
    assert all(image.pixel(x, y) == (255, 255, 255) for x in range(12) for y in range(12)), "the page's margin"


def test_the_png_reader_undoes_every_filter():
    """The reader above is what the screenshot tests stand on: check it against rows we filter ourselves."""
    width, bpp = 7, 3
    raw_rows = [bytes((x * 37 + y * 91 + c * 13) % 256 for x in range(width) for c in range(bpp)) for y in range(6)]
    prior = bytes(width * bpp)
    for kind, row in zip((0, 1, 2, 3, 4, 4), raw_rows):
        filtered = bytearray(row)
        for i in range(len(row)):
            left = row[i - bpp] if i >= bpp else 0
            up, corner = prior[i], (prior[i - bpp] if i >= bpp else 0)
            p = left + up - corner
            paeth = left if abs(p - left) <= abs(p - up) and abs(p - left) <= abs(p - corner) else \
                up if abs(p - up) <= abs(p - corner) else corner
            filtered[i] = (row[i] - (0, left, up, (left + up) >> 1, paeth)[kind]) & 255
        assert chromium._unfilter(kind, bytes(filtered), prior, bpp) == row, kind  # pylint: disable=protected-access
        prior = row


# ---- ten thousand hosts ---------------------------------------------------------------------------

def test_ten_thousand_hosts_open_in_the_browser_with_what_is_not_ok_first(tmp_path):
    """The fleet report of tests/bench/fleet_scale.py's 10,000 hosts, as the module writes it, in Chromium.

    Chromium must build the whole page (every row written), and what it shows
    first is what needs attention: the filesystems that are not ok (crit, then
    warn), then the hosts worst first; the thousands that are fine share one
    line. The first screen holds crit badges and rows; OK only in the count.
    """
    inputs = fleet_scale.fleet(10000)
    result = _fleet.run(dict(inputs, sweeps=json.dumps(inputs["sweeps"]), report_dir=str(tmp_path),
                             disk_reports=json.dumps(inputs["disk_reports"]), send="never"))
    summary = result["report"]["summary"]
    page = result["files"]["html"]
    with open(page, encoding="utf-8") as handle:
        source = handle.read()
    dom = html_check.parse(chromium.dump_dom(page, WIDE, 800))[0]
    assert tags(dom) == tags(html_check.parse(source)[0]), "Chromium built every element written"
    headings = [" ".join(h.text.split()) for h in dom.find_all("h2")]
    assert headings[:2] == [f"Filesystems not ok ({summary['alerts']}), worst first", "Hosts, worst first"]
    severity = list(_html.STATUSES)
    alerts = [r.attrs["data-status"] for r in html_check.rows(html_check.table_after(dom, "Filesystems not ok"))]
    assert len(alerts) == summary["alerts"] > 1000 and alerts == sorted(alerts, key=severity.index)
    hosts = [r.attrs["data-status"] for r in html_check.rows(html_check.table_after(dom, "Hosts, worst first"))]
    assert hosts == sorted(hosts, key=severity.index) and hosts[0] == "unreachable" and "ok" not in hosts
    assert len(hosts) == summary["hosts"] - summary["hosts_ok"], "every host not ok has a row; the fine ones do not"
    fine = [p.text for p in dom.find_all("p") if "reachable, disks ok:" in p.text]
    assert len(fine) == 1 and len(fine[0].split("disks ok: ", 1)[1].split(", ")) == summary["hosts_ok"]
    png = str(tmp_path / "first-screen.png")
    chromium.screenshot(page, png, WIDE, 800)
    counts = chromium.read_png(png).colours()
    assert count_near(counts, _html.STATUSES["crit"].colour) > 1000, "crit badges on the first screen"
    assert count_near(counts, _html.STATUSES["crit"].tint) > 20000, "crit rows on the first screen"
    ok = count_near(counts, _html.STATUSES["ok"].colour)
    assert 0 < ok < count_near(counts, _html.STATUSES["crit"].colour) / 5, "OK only in the count at the top"
