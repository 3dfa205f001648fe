# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report as plain text and as an HTML page for mail clients, in one order: what needs attention first.

PRIVATE to the sysops.fleet collection. Pure standard library.

Both say the same things in the same order:

1. the counts, and the worst status (``CRIT``, ``WARN``, ``OK``);
   with a mesh, its findings (``DOWN``, ``BLIND``, ``CUT``, ``ONE-WAY``,
   ``LOSSY``) and its matrix (``_mesh_render``);
2. every filesystem that is not ok, worst first, with its host and the
   reasons disk_report gave (``inode use 99% is at or above crit 90%``,
   ``2.0G free is below free_crit 5.0G``);
3. the hosts, worst first: unreachable, failed (each with why), crit,
   warn, without a disk report, ok;
4. the addresses down, new and vanished; the fullest filesystems; those
   filling fastest (or why none is listed).

Host names, mount points, address names and reasons come from outside:
the HTML escapes them (``_html``), and the text shows each as one
printable line (``_fleet_inputs.shown``, through ``_text``), so nothing a
host holds can add a line to it.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Sequence

from . import _fleet_inputs, _history, _html, _mesh_render, _report, _sizes, _targets

ADDRESSES_LISTED = 256  # more down, new or vanished addresses than this are listed as ranges, one line per /24
OK_LISTED = 10  # with more hosts that are fine than this, the HTML names them in one line under the table
_PLAY_STATE = {"unreachable": "UNREACHABLE", "failed": "FAILED"}
NONE_REACHED = "No host could be reached: each is listed under Hosts with what the connection said."


def host_status(row: Mapping[str, Any]) -> str:
    """One status for a host: unreachable, failed, else its worst disk (``unknown``: no disk report)."""
    if not row["reachable"]:
        return "unreachable"
    return "failed" if row.get("failed") else (row["disk_status"] or "unknown")


def worst_first(rows: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """Host rows worst first (unreachable, failed, crit, warn, no report, ok), in their own order within one."""
    return _html.worst_first(rows, host_status)


def summary(s: Mapping[str, Any]) -> str:
    """The counts in one line, the same in the text and the HTML."""
    return (f"{_report.plural(s['hosts'], 'host')} ({s['unreachable']} unreachable, {s['failed']} failed, "
            f"{s.get('hosts_crit', 0)} crit, {s.get('hosts_warn', 0)} warn, "
            f"{s.get('hosts_no_report', 0)} without a disk report, {s.get('hosts_ok', 0)} ok), "
            f"{_report.plural(s['addresses_alive'], 'address', 'addresses')} alive, {s['addresses_down']} down, "
            f"{s['new']} new, {s['vanished']} vanished, {_report.plural(s['alerts'], 'filesystem')} not ok")


def not_filling(s: Mapping[str, Any]) -> str:
    """Why "Filling fastest" is empty: no filesystem, none filling, or not enough history yet (and for how many)."""
    total, waiting = s.get("filesystems", 0), s.get("no_fill_rate", 0)
    if not total:
        return "No filesystem reported."
    if waiting == total:
        return f"No fill rate yet for any of the {_report.plural(total, 'filesystem')}: {_history.needs_history()}."
    steady = "No filesystem is filling: every fill rate is steady or shrinking"
    return steady + (f"; {waiting} of {total} have no fill rate yet ({_history.needs_history()})." if waiting else ".")


def listing(addresses: Sequence[str], names: Mapping[str, str]) -> List[str]:
    """What the reports list: every address, or above ADDRESSES_LISTED the named ones and ranges of the rest.

    Twenty thousand down addresses of a /16 are one line each nowhere a person
    reads them; one line per /24 (``10.1.2.3,6,9-40``) says the same.
    """
    if len(addresses) <= ADDRESSES_LISTED:
        return list(addresses)
    named = [a for a in addresses if a in names]
    return named + _targets.compact(a for a in addresses if a not in names)


def eta(f: Mapping[str, Any]) -> str:
    """``+1.2G/day, full in 3.4 days`` for a filling filesystem; empty otherwise."""
    days, rate = f.get("days_to_full"), f.get("rate_per_day")
    if days is None:
        return ""
    growth = "" if rate is None else f"+{_sizes.human(float(rate), 'B')}/day, "
    return f"{growth}full in {float(days):.1f} days"


def why(f: Mapping[str, Any]) -> str:
    """Why a filesystem is not ok: disk_report's reasons, or its numbers when none were passed."""
    if f.get("reasons"):
        return "; ".join(f["reasons"])
    if f.get("error"):
        return _fleet_inputs.shown(f["error"], _fleet_inputs.REASON_MAX, words=True)
    numbers = [f"use {_pct(f.get('use_pct'))}", f"inode use {_pct(f.get('inode_pct'))}",
               f"{_sizes.human(f.get('avail_bytes'))} free"]
    return ", ".join(numbers) + " (no reason given: pass disk_report's result)"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):g}%"


def _use(f: Mapping[str, Any]) -> str:
    """Use % with one decimal, ``-`` when unknown (a filesystem may come with a forecast and no use %)."""
    return "-" if f.get("use_pct") is None else f"{float(f['use_pct']):.1f}%"


# ---- text ----------------------------------------------------------------------------------------

def _name(value: Any, width: int = 0) -> str:
    """A name from outside as one printable line, padded to *width* (``_fleet_inputs.shown``)."""
    return _fleet_inputs.shown(str(value)).ljust(width)


def _width(values: Iterable[Any], least: int, most: int = 48) -> int:
    """A column as wide as its longest name (at least *least*, at most *most*: a long one only shifts its line)."""
    return max([least] + [min(most, len(_fleet_inputs.shown(str(v)))) for v in values])


def _label(address: str, names: Mapping[str, str]) -> str:
    return f"{address} ({_name(names[address])})" if address in names else address


def _fs_lines(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """The fullest or filling-fastest filesystems: host, mount point, use %, free, status, fill rate."""
    host, mount = _width((f["host"] for f in rows), 20), _width((f["mount"] for f in rows), 24)

    def line(f: Mapping[str, Any]) -> str:
        later = eta(f)
        later = f"  {later}" if later else ""
        return (f"  {_name(f['host'], host)} {_name(f['mount'], mount)} {_use(f):>6}  "
                f"{_sizes.human(f.get('avail_bytes')):>8} free  {f.get('status') or '-'}{later}")
    return [line(f) for f in rows]


def _alert_lines(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """Every filesystem not ok: status, host, mount point and why."""
    host, mount = _width((f["host"] for f in rows), 20), _width((f["mount"] for f in rows), 24)
    return [f"  {f['status'].upper():4}  {_name(f['host'], host)} {_name(f['mount'], mount)} {why(f)}" for f in rows]


def _host_lines(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """A line per host; why it failed or was unreachable on a line of its own under it."""
    width = _width((h["host"] for h in rows), 24)
    lines = []
    for h in rows:
        state = _PLAY_STATE.get(host_status(h), "reachable")
        lines.append(f"  {_name(h['host'], width)} {state:<12} disks {h['disk_status'] or 'not reported'}")
        if h.get("reason"):
            lines.append(f"      reason: {h['reason']}")
    return lines


def _none_ok(s: Mapping[str, Any]) -> str:
    return "none: every reported filesystem is ok" if s.get("filesystems") else "none (no filesystem reported)"


def text(report: Mapping[str, Any]) -> str:
    """The plain-text fleet report (see the module docstring for its order)."""
    s, names = report["summary"], report["names"]
    lines = [f"Fleet report {report['generated']}", f"{report['status'].upper()}: {summary(s)}"]
    lines += [NONE_REACHED, ""] if s["hosts"] and s["unreachable"] == s["hosts"] else [""]
    lines += _mesh_render.text_lines(report.get("mesh"), report.get("findings") or [])

    def section(title: str, items: Iterable[str], empty: str = "none") -> None:
        items = list(items)
        lines.append(f"{title}:")
        lines.extend(items or [f"  {empty}"])
        lines.append("")

    section(f"Filesystems not ok ({len(report['alerts'])}), worst first", _alert_lines(report["alerts"]),
            _none_ok(s))
    section("Hosts, worst first", _host_lines(worst_first(report["hosts"])))
    section("Addresses down", (f"  {_label(a, names)}" for a in listing(report["down"], names)))
    if report["first_run"]:
        lines.extend(["New / vanished addresses:", "  first run: every alive address is the baseline", ""])
    else:
        section("New addresses", (f"  {_label(a, names)}" for a in listing(report["new"], names)))
        section("Vanished addresses", (f"  {_label(a, names)}" for a in listing(report["vanished"], names)))
    section("Fullest filesystems", _fs_lines(report["fullest"]), "no filesystem reported")
    section("Filling fastest (days until full at the current rate)", _fs_lines(report["forecasts"]),
            not_filling(s))
    return "\n".join(lines)


# ---- HTML ----------------------------------------------------------------------------------------

HOST_COLUMNS = (_html.Column("Status"), _html.Column("Host"), _html.Column("Play", min_width=200),
                _html.Column("Disks"))
ADDRESS_COLUMNS = (_html.Column("Address", mono=True), _html.Column("Name"))
ALERT_COLUMNS = (_html.Column("Status"), _html.Column("Host"), _html.Column("Mounted on", mono=True),
                 _html.Column("Use%", numeric=True), _html.Column("IUse%", numeric=True),
                 _html.Column("Free", numeric=True), _html.Column("Why", min_width=260))
FS_COLUMNS = (_html.Column("Status"), _html.Column("Host"), _html.Column("Mounted on", mono=True),
              _html.Column("Use%", numeric=True), _html.Column("Usage"), _html.Column("Free", numeric=True),
              _html.Column("Fill rate", numeric=True))


def _fill_rate_cell(f: Mapping[str, Any]) -> Any:
    if f.get("days_to_full") is not None:
        return eta(f)
    return _html.muted("no fill rate yet" if f.get("rate_per_day") is None else "not filling")


def _fs_table(rows: Sequence[Mapping[str, Any]], empty: str) -> str:
    table = _html.table(FS_COLUMNS, [
        _html.Row([_html.badge(f.get("status")), f["host"], f["mount"], _use(f),
                   _html.usage_bar(f["use_pct"], f.get("status")), _sizes.human(f.get("avail_bytes")),
                   _fill_rate_cell(f)], status=f.get("status") or "unknown") for f in rows], empty=empty)
    if any(f.get("rate_per_day") is None for f in rows):
        table += _html.paragraph(f"No fill rate yet: {_history.needs_history()}.", muted=True)
    return table


def _alerts_table(alerts: Sequence[Mapping[str, Any]], s: Mapping[str, Any]) -> str:
    def row(f: Mapping[str, Any]) -> _html.Row:
        return _html.Row([_html.badge(f["status"]), f["host"], f["mount"], _pct(f.get("use_pct")),
                          _pct(f.get("inode_pct")), _sizes.human(f.get("avail_bytes")), why(f)], status=f["status"])
    empty = _none_ok(s)
    return _html.table(ALERT_COLUMNS, [row(f) for f in alerts], empty=empty[0].upper() + empty[1:] + ".")


def _addresses_table(addresses: Sequence[str], names: Mapping[str, str]) -> str:
    return _html.table(ADDRESS_COLUMNS, [_html.Row([a, names.get(a, "")]) for a in listing(addresses, names)])


def _play_cell(h: Mapping[str, Any]) -> Any:
    """How the play went on the host, and for a failed or unreachable one why, in small print under it."""
    state = _PLAY_STATE.get(host_status(h), "reachable")
    if not h.get("reason"):
        return state
    return _html.Safe(_html.esc(state) + "<br>" + _html.muted(h["reason"]))


def _hosts_section(hosts: Sequence[Mapping[str, Any]]) -> str:
    """A row per host, worst first; when many hosts are fine, they are named in one line under the table."""
    fine = [h["host"] for h in hosts if host_status(h) == "ok"]
    grouped = len(fine) > OK_LISTED
    rows = [_html.Row([_html.badge(host_status(h)), h["host"], _play_cell(h), h["disk_status"] or "not reported"],
                      status=host_status(h)) for h in hosts if not (grouped and host_status(h) == "ok")]
    section = _html.table(HOST_COLUMNS, rows, empty=f"none but the {len(fine)} below" if grouped else "none")
    if grouped:
        section += _html.paragraph(_html.Safe(_html.badge("ok", f"{len(fine)} OK") + " "
                                              + _html.esc("reachable, disks ok: " + ", ".join(fine))))
    return section


def _section(title: str, body: str) -> List[str]:
    return [_html.heading(title), body]


def html(report: Mapping[str, Any]) -> str:
    """The same report as one self-contained HTML page for mail clients: worst first, counts at the top."""
    hosts = worst_first(report["hosts"])
    names, s = report["names"], report["summary"]
    parts = [_html.heading("Fleet report", 1), _html.paragraph(f"Generated {report['generated']}", muted=True),
             _html.counted("host", [host_status(h) for h in hosts]), _html.paragraph(summary(s))]
    if s["hosts"] and s["unreachable"] == s["hosts"]:
        parts.append(_html.paragraph(NONE_REACHED))
    parts += _mesh_render.html_parts(report.get("mesh"), report.get("findings") or [])
    parts += _section(f"Filesystems not ok ({len(report['alerts'])}), worst first", _alerts_table(report["alerts"], s))
    parts += _section("Hosts, worst first", _hosts_section(hosts))
    parts += _section(f"Addresses down ({len(report['down'])})", _addresses_table(report["down"], names))
    if report["first_run"]:
        parts.append(_html.paragraph("First run: every alive address is the baseline."))
    else:
        parts += _section(f"New addresses ({len(report['new'])})", _addresses_table(report["new"], names))
        parts += _section(f"Vanished addresses ({len(report['vanished'])})",
                          _addresses_table(report["vanished"], names))
    parts += _section("Fullest filesystems", _fs_table(report["fullest"], "No filesystem reported."))
    parts += _section("Filling fastest (days until full at the current rate)",
                      _fs_table(report["forecasts"], not_filling(s)))
    return _html.page("Fleet report", parts)
