# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mesh in the HTML fleet report, as headless Chromium lays it out: findings first, a cut as blocks.

The page is the fleet report ``_fleet.run`` writes for eight hosts split
in two (five and two) with one host down, one of them named with markup.
Chromium loads a copy with a small probe script that writes each matrix
cell's computed background and rule widths into the DOM it dumps; then it
takes a screenshot, whose pixels are counted.
"""

import os

import chromium
import html_check
import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _mesh, _mesh_render

pytestmark = pytest.mark.skipif(chromium.BINARY is None, reason=chromium.MISSING)

HOSTILE = "<b>app1</b>"
HOSTS = ["web1", "web2", "web3", "web4", HOSTILE, "db1", "db2", "mq1"]
ADDRESSES = {h: f"192.0.2.{i}" for i, h in enumerate(HOSTS, 1)}
SIDES = [sorted(["web1", "web2", "web3", "web4", HOSTILE]), ["db1", "db2"]]
DOWN = "mq1"
PROBE = """<script>(function () {
  var cells = document.querySelectorAll('table.mesh td');
  for (var i = 0; i < cells.length; i++) {
    var s = getComputedStyle(cells[i]);
    cells[i].setAttribute('data-computed', [s.backgroundColor, s.borderLeftWidth, s.borderTopWidth].join('|'));
  }
  document.currentScript.parentNode.removeChild(document.currentScript);
})();</script>"""


def rgb(colour):
    return "rgb({}, {}, {})".format(*(int(colour[i:i + 2], 16) for i in (1, 3, 5)))


def sweeps():
    side = {h: i for i, members in enumerate(SIDES) for h in members}
    found = {}
    for a in HOSTS:
        if a == DOWN:
            continue
        others = [b for b in HOSTS if b != a]
        found[a] = {"alive": [ADDRESSES[b] for b in others if b != DOWN and side[a] == side[b]],
                    "dead": [ADDRESSES[b] for b in others if b == DOWN or side[a] != side[b]]}
    return found


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    where = tmp_path_factory.mktemp("mesh")
    result = _fleet.run({"report_dir": str(where), "send": "never", "hosts": HOSTS, "unreachable": [DOWN], "addresses": ADDRESSES,
                         "sweeps": sweeps()})
    with open(result["files"]["html"], encoding="utf-8") as handle:
        source = handle.read()
    probe = os.path.join(str(where), "probe.html")
    with open(probe, "w", encoding="utf-8") as out:
        out.write(source.replace("</body>", PROBE + "</body>"))
    dom = html_check.parse(chromium.dump_dom(probe, 1024, 800))[0]
    png = os.path.join(str(where), "mesh.png")
    chromium.screenshot(result["files"]["html"], png, 1024, 1400)
    return result, dom, chromium.read_png(png)


def test_the_findings_come_first_then_the_matrix_then_the_rest_of_the_report(page):
    result, dom, unused = page
    headings = [" ".join(h.text.split()) for h in dom.find_all("h2")]
    assert headings[:3] == ["Mesh findings (2), 8 hosts, 7 probing, 49 pairs measured", "Mesh: who reaches whom",
                            "Filesystems not ok (0), worst first"]
    rows = html_check.rows(html_check.table_after(dom, "Mesh findings"))
    assert [(r.attrs["data-status"], r.kids("td")[0].text) for r in rows] == [("crit", "DOWN"), ("crit", "CUT")]
    assert rows[1].kids("td")[1].text == (f"split in 2: {', '.join(SIDES[0])} | db1, db2: no host reaches one on "
                                          f"another side, either way")
    assert [f["kind"] for f in result["findings"]] == ["down", "cut"]


def test_the_matrix_shows_the_cut_as_blocks_green_inside_red_across_ruled_between(page):
    result, dom, unused = page
    order = result["mesh"]["hosts"]
    assert order == SIDES[0] + SIDES[1] + [DOWN]
    side = {h: i for i, members in enumerate(SIDES) for h in members}
    table = next(t for t in dom.find_all("table") if t.attrs.get("class") == "mesh")
    trs = [tr for tr in table.find_all("tr") if tr.attrs.get("data-host") is not None]
    assert [tr.attrs["data-host"] for tr in trs] == order, "Chromium shows the hosts in the mesh's order"
    colour = {char: rgb(look[0]) for char, look in _mesh_render.CELLS.items()}
    starts = {len(SIDES[0]), len(SIDES[0]) + len(SIDES[1])}  # the first host of the second side, the down host
    for i, tr in enumerate(trs):
        cells = tr.kids("td")
        assert len(cells) == len(order)
        for j, td in enumerate(cells):
            background, left, top = td.attrs["data-computed"].split("|")
            a, b = order[i], order[j]
            if a == b:
                want = _mesh.SELF
            elif a == DOWN:
                want = _mesh.UNKNOWN
            elif b == DOWN or side[a] != side[b]:
                want = _mesh.SILENT_CELL
            else:
                want = _mesh.REACHED
            assert (td.text, background) == (want, colour[want]), (a, b)
            assert left == ("3px" if j in starts else "1px"), (a, b, "the rule between the sides")
            assert top == ("3px" if i in starts else "1px"), (a, b, "the rule between the sides")
            assert td.attrs["title"].startswith(f"{a} -> {b}: ")


def test_a_host_name_with_markup_is_text_in_the_matrix_and_the_findings(page):
    unused, dom, unused_png = page
    assert not dom.find_all("b"), "no element made from a host's name"
    names = [th.text for th in dom.find_all("th") if th.attrs.get("scope") == "row"]
    assert f"{SIDES[0].index(HOSTILE) + 1} {HOSTILE}" in names


def test_the_screenshot_shows_green_blocks_and_red_between_them(page):
    unused, unused_dom, image = page
    counts = image.colours()
    green = sum(n for pixel, n in counts.items() if chromium.near(pixel, "#c8e6c9", 2))
    red = sum(n for pixel, n in counts.items() if chromium.near(pixel, "#c62828", 2))
    # cells are about 16 px square: 22 reached cells (5x4 + 2x1) and 24 + 7 silent ones, plus the red badges
    assert 22 * 150 < green < 22 * 400, green
    assert 31 * 150 < red, red
