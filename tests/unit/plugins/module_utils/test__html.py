# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_html and the reports' HTML, read back with html.parser: mail-safe, escaped, worst first, explained.

The pages are the real renderers' (``report_samples``): the disk report
with its fill-rate and undelivered-mail sections, and fleet reports of
one and fifty hosts written by ``_fleet.run``.
"""

import datetime

import html_check
import pytest
import report_samples as samples

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _fleet_render, _history, _html, _report
from ansible_collections.sysops.fleet.plugins.module_utils._report import Thresholds


@pytest.fixture
def spool(tmp_path):
    return samples.spool_with_undelivered(str(tmp_path / "spool"))


def fleet_page(tmp_path, spool, count, hostile=False):
    path = samples.fleet_report(count, str(tmp_path / f"fleet-{count}-{hostile}"), spool, hostile=hostile)
    with open(path, encoding="utf-8") as page:
        return page.read()


def fleet_html(disks, hosts, **kwargs):
    return _fleet_render.html(_fleet.build({}, disks, hosts, now=samples.NOW, **kwargs)["report"])


def filesystem(mount="/", use=50.0, status="ok", days=None, rate=None):
    return samples.fleet_filesystem(mount, use, status, days=days, rate=rate)


# ---- the helper ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value,escaped", [
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("/mnt/\"a\" & 'b'", "/mnt/&quot;a&quot; &amp; &#x27;b&#x27;"),
    (None, ""), (42, "42"),
])
def test_esc_escapes_text_and_quotes_and_leaves_safe_markup_alone(value, escaped):
    assert _html.esc(value) == escaped
    assert _html.esc(_html.esc(value)) == escaped, "escaped once, not twice"


def test_a_table_has_a_header_row_aligned_cells_and_a_line_when_empty():
    columns = (_html.Column("Host"), _html.Column("Free", numeric=True))
    root, unused_doctype, errors = html_check.parse(str(_html.table(columns, [_html.Row(["web1", "4.0G"], "crit")])))
    assert errors == []
    [table] = root.find_all("table")
    assert html_check.headers(table) == ["Host", "Free"]
    [row] = html_check.rows(table)
    host, free = row.kids("td")
    assert row.attrs["data-status"] == "crit"
    assert free.style["text-align"] == "right" and host.style["text-align"] == "left"
    assert host.style["background"] == free.style["background"] == _html.STATUSES["crit"].tint
    assert host.style["border-left"] == f"4px solid {_html.STATUSES['crit'].colour}"
    root, unused_doctype, errors = html_check.parse(str(_html.table(columns, [], empty="nothing to show")))
    [cell] = root.find_all("td")
    assert cell.attrs["colspan"] == "2" and cell.text == "nothing to show"


def test_statuses_are_words_as_well_as_colours_and_sort_worst_first():
    labels = {name: look.label for name, look in _html.STATUSES.items()}
    assert labels == {"unreachable": "UNREACHABLE", "failed": "FAILED", "crit": "CRIT", "warn": "WARN",
                      "unknown": "NO REPORT", "ok": "OK"}
    assert len({look.colour for look in _html.STATUSES.values()}) == len(_html.STATUSES)
    assert _html.worst_first(["ok", "warn", None, "crit", "failed", "ok", "unreachable"], lambda s: s) == [
        "unreachable", "failed", "crit", "warn", None, "ok", "ok"]
    root, unused_doctype, unused_errors = html_check.parse(str(_html.tally(["ok", "crit", "ok", None])))
    badges = root.find_all("span")
    assert [b.text for b in badges] == ["1 CRIT", "1 NO REPORT", "2 OK"]
    assert badges[0].style["background"] == "#c62828" and badges[0].style["color"] == "#ffffff"


@pytest.mark.parametrize("pct,status,cells", [
    (93, "crit", [("93%", "#c62828"), ("7%", "#e0e0e0")]),
    (0, "ok", [("100%", "#e0e0e0")]),
    (100, "warn", [("100%", "#f9a825")]),
    (None, "crit", [("100%", "#c62828")]),  # usage unknown (a probe that failed): a full red bar
    (130, "crit", [("100%", "#c62828")]),
])
def test_usage_bar_is_a_layout_table_filled_to_the_use(pct, status, cells):
    root, unused_doctype, errors = html_check.parse(str(_html.usage_bar(pct, status)))
    [table] = root.find_all("table")
    assert errors == [] and table.attrs["role"] == "presentation"
    assert [(td.style["width"], td.style["background"]) for td in table.find_all("td")] == cells


# ---- every page: mail-safe HTML5 -----------------------------------------------------------------

def pages(tmp_path, spool):
    empty = _report.build([], Thresholds(), "web1", now=samples.NOW)
    return {
        "disk report": samples.disk_report(spool).html,
        "disk report, hostile names": samples.disk_report(spool, hostile=True).html,
        "disk report, no filesystem": empty.html,
        "fleet, one host": fleet_page(tmp_path, spool, 1),
        "fleet, fifty hosts": fleet_page(tmp_path, spool, 50),
        "fleet, hostile names": fleet_page(tmp_path, spool, 50, hostile=True),
        "fleet, nothing at all": _fleet_render.html(_fleet.build({}, {}, [], now=samples.NOW)["report"]),
    }


def test_every_page_is_mail_safe_html5_with_a_header_row_on_every_table(tmp_path, spool):
    for name, page in pages(tmp_path, spool).items():
        assert html_check.mail_problems(page) == [], name
        root, unused_doctype, unused_errors = html_check.parse(page)
        tables = [t for t in root.find_all("table") if t.attrs.get("role") != "presentation"]
        assert tables, name
        assert page.count("</body>") == 1, "sections are added before the one </body>"


@pytest.mark.parametrize("broken,problem", [
    ("<script>x()</script>", "<script> runs or loads"),
    ('<img src="http://example.com/t.png">', "has src="),
    ('<p onclick="x()">p</p>', "has onclick="),
    ('<style>td{color:red}</style>', "<style> runs or loads"),
    ('<p style="background:url(http://example.com/x)">p</p>', "loads or runs something"),
    ('<table><thead><tr><th style="a:b">h</th></tr></thead><tbody><tr><td>c</td></tr></tbody></table>',
     "<td> without an inline style"),
    ('<table><tbody><tr><td style="a:b">c</td></tr></tbody></table>', "a data table without one header row"),
    ('<table><thead><tr><th style="text-align:right">n</th></tr></thead>'
     '<tbody><tr><td style="text-align:left">1</td></tr></tbody></table>', "is aligned left, its column 'n' right"),
    ('<table cellpadding="4"><thead><tr><th style="x:y">h</th></tr></thead></table>', "presentational attribute"),
    ("<div><p>unclosed</div>", "</div> closes <p>"),
])
def test_the_rule_book_catches_what_breaks_a_mail(tmp_path, spool, broken, problem):
    page = samples.disk_report(spool).html.replace("</body>", broken + "</body>")
    assert any(problem in found for found in html_check.mail_problems(page)), html_check.mail_problems(page)


# ---- hostile names from hosts are text, never markup ---------------------------------------------

def test_hostile_names_are_shown_as_text_in_both_reports(tmp_path, spool):
    disk = samples.disk_report(spool, hostile=True).html
    fleet = fleet_page(tmp_path, spool, 50, hostile=True)
    for page in (disk, fleet):
        root, unused_doctype, errors = html_check.parse(page)
        assert errors == [] and html_check.mail_problems(page) == []
        assert not [n for n in root.elements() if n.tag in ("script", "img", "svg", "b")]
        assert not [a for n in root.elements() for a in n.attrs if a.startswith("on")]
        assert "<script" not in page and "<img" not in page and "<svg" not in page
    root = html_check.parse(disk)[0]
    cells = [td.text for td in root.find_all("td")]
    assert samples.HOSTILE_MOUNT in cells and samples.HOSTILE_DEVICE in cells
    assert root.find_all("h1")[0].text == f"Nightly Disk Usage Report for {samples.HOSTILE_HOST}"
    assert root.find_all("title")[0].text == root.find_all("h1")[0].text
    assert 'probe timed out after 5s: "<script>alert(1)</script>"' in cells
    assert [tr.attrs.get("title") for tr in root.find_all("tr") if "/mnt/nfs" in tr.text][0] == \
        'probe timed out after 5s: "<script>alert(1)</script>"', "the tooltip is an attribute: quotes escaped too"
    root = html_check.parse(fleet)[0]
    cells = [td.text for td in root.find_all("td")]
    assert samples.HOSTILE_NAME in cells and samples.HOSTILE_MOUNT in cells
    assert samples.HOSTILE_HOST in cells and "FAILED" + samples.HOSTILE_REASON in cells
    assert not [n for n in root.elements() if n.tag == "i"], "a failed host's reason is text, never markup"


# ---- the disk report ------------------------------------------------------------------------------

def test_disk_report_rows_are_worst_first_with_status_word_colour_and_aligned_numbers(spool):
    report = samples.disk_report(spool)
    root = html_check.parse(report.html)[0]
    table = html_check.table_after(root, "Nightly Disk Usage Report")
    assert html_check.headers(table) == ["Status", "Mounted on", "Filesystem", "Type", "Size", "Used", "Avail",
                                         "Use%", "Usage", "Inodes", "IUse%"]
    rows = html_check.rows(table)
    assert [r.attrs["data-status"] for r in rows] == ["crit"] * 3 + ["warn"] + ["ok"] * 6
    assert [r.kids("td")[1].text for r in rows[:4]] == ["/var", "/srv/data", "/mnt/nfs", "/var/log"], \
        "worst first, in the order df gave within one status"
    for row in rows:
        look = _html.STATUSES[row.attrs["data-status"]]
        badge = row.kids("td")[0].find_all("span")[0]
        assert badge.text == look.label and badge.style["background"] == look.colour
        cells = row.kids("td")
        assert [c.style["text-align"] for c in cells] == ["left"] * 4 + ["right"] * 4 + ["left"] + ["right"] * 2
        if look.tint:
            assert {c.style["background"] for c in cells} == {look.tint}
    var = rows[0].kids("td")
    assert [c.text for c in var[4:8]] + [c.text for c in var[9:]] == ["100G", "93G", "7.0G", "93%", "6.3M", "12%"]
    assert rows[0].attrs["title"] == "use 93% is at or above crit 90%"
    root_text = root.text
    assert "10 filesystems, worst first: 3 CRIT 1 WARN 6 OK" in " ".join(root_text.split())
    alerts = html_check.table_after(root, "Alerts (4)")
    assert [(r.kids("td")[0].text, r.kids("td")[1].text) for r in html_check.rows(alerts)] == [
        ("CRIT", "/var"), ("CRIT", "/srv/data"), ("CRIT", "/mnt/nfs"), ("WARN", "/var/log")]


def test_disk_report_without_filesystems_or_alerts_says_so():
    empty = html_check.parse(_report.build([], Thresholds(), "h", now=samples.NOW).html)[0]
    assert [td.text for td in empty.find_all("td")] == ["No filesystem matched the selection."]
    quiet = _report.build([samples.disk_filesystem("/", 10)], Thresholds(), "h", now=samples.NOW)
    assert "No alerts: every filesystem is below its thresholds." in html_check.parse(quiet.html)[0].text


def test_fill_rates_soonest_full_first_and_a_line_for_the_missing_ones(spool):
    root = html_check.parse(samples.disk_report(spool).html)[0]
    table = html_check.table_after(root, "Fill rate (from 72.0 hours of history)")
    assert html_check.headers(table) == ["Mounted on", "Growth per day", "Full in", "Full on", "History"]
    assert [[td.text for td in r.kids("td")] for r in html_check.rows(table)] == [
        ["/var/log", "+9.0G/day", "9 hours", "2026-11-27", "72.0 h"],
        ["/var", "+2.5G/day", "3 days", "2026-11-30", "72.0 h"],
        ["/", "+1.2G/day", "44 days", "2027-01-10", "72.0 h"],
        ["/home", "steady", "not filling", "-", "72.0 h"],
        ["/srv/data", "-40G/day", "not filling", "-", "72.0 h"],
        ["/mnt/backup", "no fill rate yet", "-", "-", "5 min"],
        ["/opt", "no fill rate yet", "-", "-", "0 min"],
    ]
    assert ("No fill rate yet for 2 of 7: a rate needs disk-use history spanning at least 10 minutes "
            "(history_file; the watcher adds a sample every 15 minutes by default).") in root.text


def test_fill_rates_when_nothing_fills():
    now = samples.NOW.timestamp()
    steady = [_history.Forecast("/", 0.0, 1, span_s=_history.DAY), _history.Forecast("/var", -5.0, 1, span_s=_history.DAY)]
    text = html_check.parse(_history.render_html(steady))[0].text
    assert "No filesystem is filling: every fill rate is steady or shrinking." in text and "No fill rate yet" not in text
    waiting = [_history.Forecast("/", None, 1, span_s=60.0)]
    text = html_check.parse(_history.render_html(waiting))[0].text
    assert "No fill rate yet for 1 of 1: a rate needs disk-use history spanning at least 10 minutes" in text
    assert "No filesystem is filling" not in text
    filling = [_history.Forecast("/", 10.0, 100, 10.0, now + 10 * _history.DAY, _history.DAY)]
    text = html_check.parse(_history.render_html(filling))[0].text
    assert "No filesystem is filling" not in text and "No fill rate yet" not in text
    assert _history.render_html([]) == ""


def test_undelivered_mail_is_a_table_with_the_servers_answer(spool):
    root = html_check.parse(samples.disk_report(spool).html)[0]
    table = html_check.table_after(root, "Undelivered mail (2)")
    assert html_check.headers(table) == ["When", "Kind", "Message", "Why"]
    cells = [[td.text for td in r.kids("td")] for r in html_check.rows(table)]
    assert [c[1:] for c in cells][0] == ["dead letter", '"Nightly Disk Usage Report for web1"',
                                         "gone@example.com: 550 5.1.1 mailbox <unavailable>"]
    assert cells[1][1] == "quarantined" and cells[1][3] == "is empty"
    assert "Move a dead letter back into" in root.text


# ---- the fleet report -----------------------------------------------------------------------------

def test_fifty_hosts_worst_first_with_the_counts_at_the_top_and_the_fine_ones_in_one_line(tmp_path, spool):
    sweeps, disks, hosts, unreachable, failed, reasons, unused_previous = samples.fleet_inputs(50)
    root = html_check.parse(fleet_page(tmp_path, spool, 50))[0]
    paragraphs = [" ".join(p.text.split()) for p in root.find_all("p")]
    assert "50 hosts: 3 UNREACHABLE 2 FAILED 14 CRIT 6 WARN 2 NO REPORT 23 OK" in paragraphs
    assert paragraphs.index("50 hosts: 3 UNREACHABLE 2 FAILED 14 CRIT 6 WARN 2 NO REPORT 23 OK") <= 2, "at the top"
    table = html_check.table_after(root, "Hosts, worst first")
    assert html_check.headers(table) == ["Status", "Host", "Play", "Disks"]
    rows = [[td.text for td in r.kids("td")] + [r.attrs["data-status"]] for r in html_check.rows(table)]
    assert [r[0] for r in rows] == ["UNREACHABLE"] * 3 + ["FAILED"] * 2 + ["CRIT"] * 14 + ["WARN"] * 6 + \
        ["NO REPORT"] * 2
    assert [r[-1] for r in rows] == ["unreachable"] * 3 + ["failed"] * 2 + ["crit"] * 14 + ["warn"] * 6 + ["unknown"] * 2
    assert sorted(r[1] for r in rows[:3]) == sorted(unreachable) and sorted(r[1] for r in rows[3:5]) == sorted(failed)
    assert rows[0][2:4] == ["UNREACHABLE", "not reported"]
    assert [r[2:4] for r in rows[3:5]] == [["FAILED" + reasons[r[1]], "not reported"] for r in rows[3:5]], \
        "a failed host says why under FAILED"
    assert sorted(reasons.values()) == sorted(samples.REASONS)
    assert rows[5][2:4] == ["reachable", "crit"] and rows[-1][2:4] == ["reachable", "not reported"]
    fine = sorted(h for h in hosts if h not in {r[1] for r in rows})
    assert len(fine) == 23 and f"23 OK reachable, disks ok: {', '.join(fine)}" in paragraphs
    assert all(h in disks and all(f["status"] == "ok" for f in disks[h]["filesystems"]) for h in fine)


def test_a_few_fine_hosts_keep_their_own_rows():
    disks = {h: {"filesystems": [filesystem()]} for h in ("a", "b")}
    root = html_check.parse(fleet_html(disks, ["a", "b", "c"], unreachable=["c"]))[0]
    rows = html_check.rows(html_check.table_after(root, "Hosts"))
    assert [[td.text for td in r.kids("td")] for r in rows] == [
        ["UNREACHABLE", "c", "UNREACHABLE", "not reported"], ["OK", "a", "reachable", "ok"],
        ["OK", "b", "reachable", "ok"]]


def test_fleet_filesystem_tables_number_cells_right_and_an_explained_empty_fill_rate(tmp_path, spool):
    root = html_check.parse(fleet_page(tmp_path, spool, 1))[0]
    fullest = html_check.table_after(root, "Fullest filesystems")
    assert html_check.headers(fullest) == ["Status", "Host", "Mounted on", "Use%", "Usage", "Free", "Fill rate"]
    rows = html_check.rows(fullest)
    assert [[td.text for td in r.kids("td")][:4] + [r.kids("td")[5].text, r.kids("td")[6].text] for r in rows] == [
        ["CRIT", "web01", "/var", "91.0%", "4.5G", "+1.0G/day, full in 0.4 days"],
        ["OK", "web01", "/", "20.0%", "40G", "no fill rate yet"]]
    for row in rows:
        assert [td.style["text-align"] for td in row.kids("td")] == ["left"] * 3 + ["right", "left", "right", "right"]
    assert ("No fill rate yet: a rate needs disk-use history spanning at least 10 minutes (history_file; the "
            "watcher adds a sample every 15 minutes by default).") in root.text


@pytest.mark.parametrize("filesystems,line", [
    ([filesystem(), filesystem("/var")], "No fill rate yet for any of the 2 filesystems: a rate needs disk-use history"),
    ([filesystem(rate=0.0), filesystem("/var", rate=-1.0)], "No filesystem is filling: every fill rate is steady or "
                                                            "shrinking."),
    ([filesystem(rate=-1.0), filesystem("/var")], "No filesystem is filling: every fill rate is steady or shrinking; "
                                                  "1 of 2 have no fill rate yet (a rate needs"),
    ([], "No filesystem reported."),
])
def test_an_empty_filling_fastest_table_says_why(filesystems, line):
    disks = {"web1": {"filesystems": filesystems}} if filesystems else {}
    root = html_check.parse(fleet_html(disks, ["web1"]))[0]
    [cell] = html_check.rows(html_check.table_after(root, "Filling fastest"))[0].kids("td")
    assert line in cell.text and cell.attrs["colspan"] == "7"


def test_summary_counts_filesystems_filling_and_without_a_rate():
    disks = {"a": {"filesystems": [filesystem(days=2.0, rate=5.0), filesystem("/v", rate=-1.0), filesystem("/w")]}}
    summary = _fleet.build({}, disks, ["a"], now=samples.NOW)["report"]["summary"]
    assert (summary["filesystems"], summary["filling"], summary["no_fill_rate"]) == (3, 1, 1)


def test_the_text_reports_are_what_they_were(spool):
    """The plain parts keep their layout: only the HTML changed (the text tests of each report hold the rest)."""
    text = samples.disk_report(spool).text
    assert text.splitlines()[3].split()[:3] == ["Filesystem", "Type", "Size"]
    assert "  /var/log: +9.0G/day, full in about 9 hours (2026-11-27) at this rate" in text
    report = _fleet.build({}, {"a": {"filesystems": [filesystem(days=2.0, rate=float(1 << 30))]}}, ["a"],
                          now=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))["report"]
    assert "  a                        reachable    disks ok" in _fleet_render.text(report)
