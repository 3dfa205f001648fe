# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report: every sweeper's sweep and every host's disk report, merged.

PRIVATE to the sysops.fleet collection. Pure standard library.

Runs once, on the controller, after the fleet has been swept and reported
on. It answers what an operator asks first thing in the morning: which
hosts are down, which addresses are new or gone since the last run, which
filesystems are fullest across the fleet, and which will fill first. The
addresses seen alive are kept in a small JSON state file between runs.

Its inputs come from a play (other modules' results, templated by hand
sometimes), so ``check_inputs`` reads every field it uses and refuses a
malformed one with the host and field named, before anything is written.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import socket
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from . import _files, _history, _html, _mail_delivery, _privilege, _sizes, _targets

STATE_VERSION = 1
STATUSES = ("ok", "warn", "crit")
_FS_KEYS = ("mount", "device", "fstype", "size_bytes", "used_bytes", "avail_bytes", "use_pct", "inode_pct", "status")
_BYTES = ("size_bytes", "used_bytes", "avail_bytes")
_PERCENT = ("use_pct", "inode_pct")
ADDRESSES_LISTED = 256  # more down, new or vanished addresses than this are listed as ranges, one line per /24
LIST_LIMIT = 1024  # the returned report has its down list up to this many addresses (down_ranges always)
REASON_MAX = 300  # characters of a failed host's reason kept in the report (error texts can be pages)
MAX_SWEPT = 1 << 20  # addresses one sweeper's alive_ranges or dead_ranges may stand for (a typo like 10.0.0.0/8 is refused)


class FleetError(ValueError):
    """The inputs to the fleet report are not what the play should pass."""


def _address_key(address: str):
    """Sort addresses numerically (IPv4 before IPv6), names last.

    ``inet_pton`` rather than a full parse: a merged /16 sorts 65,000 of them.
    """
    for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            return (version, int.from_bytes(socket.inet_pton(family, address), "big"), address)
        except (OSError, ValueError, TypeError):
            continue
    return (9, 0, str(address))


# ---- inputs --------------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"a string ({value!r})"
    return f"{type(value).__name__} {value!r}" if not isinstance(value, (list, dict)) else type(value).__name__


def _names(value: Any, where: str, what: str = "host names", one: str = "a host name") -> List[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise FleetError(f"{where}: expected a list of {what}, got {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise FleetError(f"{where}[{index}]: expected {one}, got {_kind(item)}")
    return list(value)


def _reasons(value: Any) -> Dict[str, str]:
    """host -> why it failed, each made one line of printable text of at most REASON_MAX characters.

    A reason is an error text from the host (a module's message, sudo's complaint), so it may hold
    line breaks, terminal escapes or a whole traceback: the report keeps one readable line of it.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FleetError(f"failure_reasons: expected a dict of host -> reason, got {_kind(value)}")
    reasons = {}
    for host, reason in value.items():
        if not isinstance(host, str) or not host.strip():
            raise FleetError(f"failure_reasons: expected host names as keys, got {_kind(host)}")
        if not isinstance(reason, str):
            raise FleetError(f"failure_reasons[{host!r}]: expected a string (why the host failed), got {_kind(reason)}")
        line = " ".join("".join(c if c.isprintable() else " " for c in reason).split())
        reasons[host] = line if len(line) <= REASON_MAX else line[:REASON_MAX - 1].rstrip() + "\u2026"
    return reasons


def _addresses(value: Any, where: str) -> List[str]:
    found = _names(value, where, "addresses", "an address")
    for index, item in enumerate(found):
        if _address_key(item)[0] == 9:
            raise FleetError(f"{where}[{index}]: {item!r} is not an IP address (ping_sweep lists addresses "
                             f"in alive and dead)")
    return found


def _swept(result: Mapping[str, Any], key: str, where: str) -> List[str]:
    """A sweep's alive or dead addresses: its list when it has one, else its ranges (a large sweep's only form)."""
    if key in result or f"{key}_ranges" not in result:
        return _addresses(result.get(key), f"{where}.{key}")
    ranges = _names(result[f"{key}_ranges"], f"{where}.{key}_ranges", "ranges", "a range")
    try:
        return _targets.expand(ranges, f"{where}.{key}_ranges", MAX_SWEPT)
    except _targets.TargetError as exc:
        raise FleetError(f"{exc} (ping_sweep writes {key}_ranges as 192.0.2.1-5,9)") from None


def _number(value: Any, where: str, low: float = 0.0, high: Optional[float] = None,
            integer: bool = False) -> Optional[float]:
    """A finite number in range (numeric strings too: templating makes them), or None."""
    if value is None:
        return None
    expected = "a whole number" if integer else "a number"
    span = f" from {low:g} to {high:g}" if high is not None else (f" of at least {low:g}" if low > -math.inf else "")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FleetError(f"{where}: expected {expected}{span} or null, got {_kind(value)}")
    try:
        number = float(value)
    except ValueError:
        raise FleetError(f"{where}: expected {expected}{span} or null, got {_kind(value)}") from None
    if not math.isfinite(number) or number < low or (high is not None and number > high) or (
            integer and number != int(number)):
        raise FleetError(f"{where}: expected {expected}{span} or null, got {value!r}")
    return int(number) if integer else number


def _filesystem(fs: Any, where: str) -> Dict[str, Any]:
    if not isinstance(fs, Mapping):
        raise FleetError(f"{where}: expected a filesystem (a dict with mount, use_pct, ...), got {_kind(fs)}")
    row: Dict[str, Any] = {k: fs.get(k) for k in _FS_KEYS}
    if not isinstance(row["mount"], str) or not row["mount"]:
        raise FleetError(f"{where}.mount: expected a mount point, got {_kind(row['mount'])}")
    for key in ("device", "fstype"):
        if row[key] is not None and not isinstance(row[key], str):
            raise FleetError(f"{where}.{key}: expected a string or null, got {_kind(row[key])}")
    for key in _BYTES:
        row[key] = _number(row[key], f"{where}.{key}", integer=True)
    for key in _PERCENT:
        row[key] = _number(row[key], f"{where}.{key}", high=100.0)
    if row["status"] is not None and row["status"] not in STATUSES:
        raise FleetError(f"{where}.status: expected one of {', '.join(STATUSES)} (or null), got {_kind(row['status'])}")
    forecast = fs.get("forecast")
    if forecast is not None and not isinstance(forecast, Mapping):
        raise FleetError(f"{where}.forecast: expected a dict (disk_report's forecast) or null, got {_kind(forecast)}")
    forecast = forecast or {}
    row["days_to_full"] = _number(forecast.get("days_to_full"), f"{where}.forecast.days_to_full")
    row["rate_per_day"] = _number(forecast.get("rate_per_day"), f"{where}.forecast.rate_per_day", low=-math.inf)
    return row


def check_inputs(sweeps: Any, disks: Any) -> Dict[str, Any]:
    """Every field the report uses, checked and normalised; FleetError names the sweeper or host and field."""
    if not isinstance(sweeps, Mapping):
        raise FleetError(f"sweeps: expected a dict of sweeper -> ping_sweep result, got {_kind(sweeps)}")
    if not isinstance(disks, Mapping):
        raise FleetError(f"disk_reports: expected a dict of host -> disk_report result, got {_kind(disks)}")
    clean_sweeps: Dict[str, Dict[str, Any]] = {}
    for sweeper, result in sweeps.items():
        where = f"sweeps[{sweeper!r}]"
        if not isinstance(result, Mapping) or ("alive" not in result and "alive_ranges" not in result):
            raise FleetError(f"{where} is not a ping_sweep result (no 'alive' or 'alive_ranges' list)")
        names = _sweep_names(result, where)
        clean_sweeps[str(sweeper)] = {"alive": _swept(result, "alive", where), "dead": _swept(result, "dead", where),
                                      "names": names}
    clean_disks: Dict[str, List[Dict[str, Any]]] = {}
    for host, report in disks.items():
        where = f"disk_reports[{host!r}]"
        if not isinstance(report, Mapping) or not isinstance(report.get("filesystems"), list):
            raise FleetError(f"{where} is not a disk_report result (no 'filesystems' list)")
        clean_disks[str(host)] = [_filesystem(fs, f"{where}.filesystems[{i}]")
                                  for i, fs in enumerate(report["filesystems"])]
    return {"sweeps": clean_sweeps, "disks": clean_disks}


def _sweep_names(result: Mapping[str, Any], where: str) -> Dict[str, str]:
    """address -> the name it was swept as: ``names`` of the compact result, else from ``hosts`` (details)."""
    found: Dict[str, Any] = {}
    if result.get("names") is not None:
        if not isinstance(result["names"], Mapping):
            raise FleetError(f"{where}.names: expected a dict of address -> name, got {_kind(result['names'])}")
        found = {address: (name, f"{where}.names[{address!r}]") for address, name in result["names"].items()}
    else:
        hosts = result.get("hosts") or {}
        if not isinstance(hosts, Mapping):
            raise FleetError(f"{where}.hosts: expected a dict of address -> entry, got {_kind(hosts)}")
        found = {address: (entry.get("name") if isinstance(entry, Mapping) else None,
                           f"{where}.hosts[{address!r}].name") for address, entry in hosts.items()}
    names = {}
    for address, (name, field_name) in found.items():
        if name is not None and not isinstance(name, str):
            raise FleetError(f"{field_name}: expected a string, got {_kind(name)}")
        if name:
            names[str(address)] = name
    return names


def merge_sweeps(sweeps: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """One view of several sweepers' checked results: an address answering any sweeper is alive."""
    alive: Dict[str, str] = {}
    dead: Dict[str, str] = {}
    names: Dict[str, str] = {}
    for sweeper, result in sorted(sweeps.items()):
        for address in result["alive"]:
            alive.setdefault(address, sweeper)
        for address in result["dead"]:
            dead.setdefault(address, sweeper)
        names.update(result["names"])
    down = {a: s for a, s in dead.items() if a not in alive}
    return {
        "alive": sorted(alive, key=_address_key),
        "down": sorted(down, key=_address_key),
        "swept_by": {**down, **alive},
        "names": names,
    }


def flatten_filesystems(disks: Mapping[str, List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """Every host's checked filesystems as one list, each tagged with its host."""
    return [dict(fs, host=host) for host, rows in sorted(disks.items()) for fs in rows]


def build(sweeps: Mapping[str, Mapping[str, Any]], disks: Mapping[str, Mapping[str, Any]],
          hosts: Sequence[str], unreachable: Sequence[str] = (), previous: Optional[Mapping[str, Any]] = None,
          top: int = 10, now: Optional[datetime.datetime] = None, failed: Sequence[str] = (),
          failure_reasons: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The merged fleet report, and the state to keep for the next run.

    *unreachable* hosts could not be reached at all; *failed* ones were
    reached but a task failed on them (a host in both is unreachable).
    *failure_reasons* says why a host failed (host -> text); a host with a
    reason is failed too. Unreachable hosts keep no reason.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise FleetError(f"top must be a whole number of at least 1, got {top!r}")
    checked = check_inputs(sweeps, disks)
    hosts, unreachable = _names(hosts, "hosts"), _names(unreachable, "unreachable")
    failed = _names(failed, "failed")
    reasons = _reasons(failure_reasons)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    swept = merge_sweeps(checked["sweeps"])
    filesystems = flatten_filesystems(checked["disks"])
    previously_alive = set((previous or {}).get("alive", []))
    first_run = previous is None
    alive = set(swept["alive"])
    unreachable_set = set(unreachable)
    failed_set = (set(failed) | set(reasons)) - unreachable_set
    host_rows = []
    for host in sorted(set(hosts) | set(checked["disks"]) | unreachable_set | failed_set):
        statuses = [f["status"] for f in filesystems if f["host"] == host and f.get("status")]
        worst = max(statuses, key=("ok", "warn", "crit").index, default=None)
        host_rows.append({"host": host, "reachable": host not in unreachable_set, "failed": host in failed_set,
                          "reason": reasons.get(host) if host in failed_set else None,
                          "disk_status": worst, "reported": host in checked["disks"]})
    fullest = sorted((f for f in filesystems if f.get("use_pct") is not None),
                     key=lambda f: (-float(f["use_pct"]), f["host"], f["mount"] or ""))[:top]
    forecasts = sorted((f for f in filesystems if f.get("days_to_full") is not None),
                       key=lambda f: (float(f["days_to_full"]), f["host"], f["mount"] or ""))[:top]
    report = {
        "generated": now.isoformat(timespec="seconds"),
        "hosts": host_rows,
        "unreachable": sorted(unreachable_set),
        "failed": sorted(failed_set),
        "alive": swept["alive"],
        "down": swept["down"],
        "names": swept["names"],
        "new": [] if first_run else sorted(alive - previously_alive, key=_address_key),
        "vanished": [] if first_run else sorted(previously_alive - alive, key=_address_key),
        "first_run": first_run,
        "alerts": [f for f in filesystems if f.get("status") not in (None, "ok")],
        "fullest": fullest,
        "forecasts": forecasts,
    }
    report["summary"] = {
        "hosts": len(host_rows), "unreachable": len(unreachable_set), "failed": len(failed_set),
        "addresses_alive": len(swept["alive"]),
        "addresses_down": len(swept["down"]), "new": len(report["new"]), "vanished": len(report["vanished"]),
        "alerts": len(report["alerts"]),
        "filesystems": len(filesystems),
        "filling": sum(1 for f in filesystems if f.get("days_to_full") is not None),
        "no_fill_rate": sum(1 for f in filesystems if f.get("rate_per_day") is None),
    }
    state = {"version": STATE_VERSION, "generated": report["generated"], "alive": swept["alive"]}
    return {"report": report, "state": state}


def _label(address: str, names: Mapping[str, str]) -> str:
    return f"{address} ({names[address]})" if address in names else address


def _listing(addresses: Sequence[str], names: Mapping[str, str]) -> List[str]:
    """What the reports list: every address, or above ADDRESSES_LISTED the named ones and ranges of the rest.

    Twenty thousand down addresses of a /16 are one line each nowhere a person
    reads them; one line per /24 (``10.1.2.3,6,9-40``) says the same.
    """
    if len(addresses) <= ADDRESSES_LISTED:
        return list(addresses)
    named = [a for a in addresses if a in names]
    return named + _targets.compact(a for a in addresses if a not in names)


def _eta(f: Mapping[str, Any]) -> str:
    """``+1.2G/day, full in 3.4 days`` for a filling filesystem; empty otherwise."""
    days, rate = f.get("days_to_full"), f.get("rate_per_day")
    if days is None:
        return ""
    growth = "" if rate is None else f"+{_sizes.human(float(rate), 'B')}/day, "
    return f"{growth}full in {float(days):.1f} days"


def _fs_line(f: Mapping[str, Any]) -> str:
    eta = _eta(f)
    eta = f"  {eta}" if eta else ""
    return (f"  {f['host']:<20} {str(f['mount']):<24} {float(f['use_pct']):5.1f}%  "
            f"{_sizes.human(f.get('avail_bytes')):>8} free  {f.get('status') or '-'}{eta}")


def _summary(s: Mapping[str, Any]) -> str:
    return (f"{s['hosts']} hosts ({s['unreachable']} unreachable, {s['failed']} failed), "
            f"{s['addresses_alive']} addresses alive, {s['addresses_down']} down, {s['new']} new, "
            f"{s['vanished']} vanished, {s['alerts']} disk alerts")


def _host_state(h: Mapping[str, Any]) -> str:
    """How the play went on a host: reached, UNREACHABLE, or reached but FAILED (a task failed)."""
    if not h["reachable"]:
        return "UNREACHABLE"
    return "FAILED" if h.get("failed") else "reachable"


def _host_line(h: Mapping[str, Any]) -> str:
    """A host's line in the text report; a failed host's reason on a line of its own under it."""
    line = f"  {h['host']:<24} {_host_state(h):<12} disks {h['disk_status'] or 'not reported'}"
    return line + (f"\n      reason: {h['reason']}" if h.get("reason") else "")


def render_text(report: Mapping[str, Any]) -> str:
    """The plain-text fleet report."""
    lines = [f"Fleet report {report['generated']}", _summary(report["summary"]), ""]

    def section(title: str, items: Iterable[str], empty: str = "none") -> None:
        items = list(items)
        lines.append(f"{title}:")
        lines.extend(items or [f"  {empty}"])
        lines.append("")

    section("Hosts", (_host_line(h) for h in report["hosts"]))
    section("Addresses down", (f"  {_label(a, report['names'])}" for a in _listing(report["down"], report["names"])))
    if report["first_run"]:
        lines.extend(["New / vanished addresses:", "  first run: every alive address is the baseline", ""])
    else:
        section("New addresses", (f"  {_label(a, report['names'])}" for a in _listing(report["new"], report["names"])))
        section("Vanished addresses",
                (f"  {_label(a, report['names'])}" for a in _listing(report["vanished"], report["names"])))
    section("Fullest filesystems", (_fs_line(f) for f in report["fullest"]))
    section("Filling fastest (days until full at the current rate)", (_fs_line(f) for f in report["forecasts"]),
            empty="no filesystem is filling (or not enough history yet)")
    return "\n".join(lines)


def _row_status(h: Mapping[str, Any]) -> str:
    """One status for a host's row: unreachable, failed, else its worst disk (``unknown``: no disk report)."""
    if not h["reachable"]:
        return "unreachable"
    return "failed" if h.get("failed") else (h["disk_status"] or "unknown")


OK_LISTED = 10  # with more hosts that are fine than this, they are named in one line under the table
HOST_COLUMNS = (_html.Column("Status"), _html.Column("Host"), _html.Column("Play"), _html.Column("Disks"))
ADDRESS_COLUMNS = (_html.Column("Address", mono=True), _html.Column("Name"))
FS_COLUMNS = (_html.Column("Status"), _html.Column("Host"), _html.Column("Mounted on", mono=True),
              _html.Column("Use%", numeric=True), _html.Column("Usage"), _html.Column("Free", numeric=True),
              _html.Column("Fill rate", numeric=True))


def _fill_rate_cell(f: Mapping[str, Any]) -> Any:
    if f.get("days_to_full") is not None:
        return _eta(f)
    return _html.muted("no fill rate yet" if f.get("rate_per_day") is None else "not filling")


def _fs_table(rows: Sequence[Mapping[str, Any]], empty: str) -> str:
    table = _html.table(FS_COLUMNS, [
        _html.Row([_html.badge(f.get("status")), f["host"], f["mount"], f"{float(f['use_pct']):.1f}%",
                   _html.usage_bar(f["use_pct"], f.get("status")), _sizes.human(f.get("avail_bytes")), _fill_rate_cell(f)],
                  status=f.get("status") or "unknown") for f in rows], empty=empty)
    if any(f.get("rate_per_day") is None for f in rows):
        table += _html.paragraph(f"No fill rate yet: {_history.needs_history()}.", muted=True)
    return table


def _not_filling(s: Mapping[str, Any]) -> str:
    """Why "Filling fastest" is empty: no filesystem, none filling, or not enough history yet."""
    total, waiting = s.get("filesystems", 0), s.get("no_fill_rate", 0)
    if not total:
        return "No filesystem reported."
    if waiting == total:
        return f"No fill rate yet for any of the {total} filesystems: {_history.needs_history()}."
    steady = "No filesystem is filling: every fill rate is steady or shrinking"
    return steady + (f"; {waiting} of {total} have no fill rate yet ({_history.needs_history()})." if waiting else ".")


def _addresses_table(addresses: Sequence[str], names: Mapping[str, str]) -> str:
    return _html.table(ADDRESS_COLUMNS, [_html.Row([a, names.get(a, "")]) for a in _listing(addresses, names)])


def _play_cell(h: Mapping[str, Any]) -> Any:
    """How the play went on the host, and for a failed one why, in small print under it."""
    if not h.get("reason"):
        return _host_state(h)
    return _html.Safe(_html.esc(_host_state(h)) + "<br>" + _html.muted(h["reason"]))


def _hosts_section(hosts: Sequence[Mapping[str, Any]]) -> str:
    """A row per host, worst first; when many hosts are fine, they are named in one line under the table."""
    fine = [h["host"] for h in hosts if _row_status(h) == "ok"]
    grouped = len(fine) > OK_LISTED
    rows = [_html.Row([_html.badge(_row_status(h)), h["host"], _play_cell(h), h["disk_status"] or "not reported"],
                      status=_row_status(h)) for h in hosts if not (grouped and _row_status(h) == "ok")]
    section = _html.table(HOST_COLUMNS, rows, empty=f"none but the {len(fine)} below" if grouped else "none")
    if grouped:
        section += _html.paragraph(_html.Safe(_html.badge("ok", f"{len(fine)} OK") + " "
                                              + _html.esc("reachable, disks ok: " + ", ".join(fine))))
    return section


def render_html(report: Mapping[str, Any]) -> str:
    """The same report as one self-contained HTML page for mail clients: worst first, counts at the top."""
    hosts = _html.worst_first(report["hosts"], _row_status)
    names = report["names"]
    parts = [_html.heading("Fleet report", 1), _html.paragraph(f"Generated {report['generated']}", muted=True),
             _html.counted("host", [_row_status(h) for h in hosts]),
             _html.paragraph(_summary(report["summary"])),
             _html.heading("Hosts, worst first"),
             _hosts_section(hosts),
             _html.heading(f"Addresses down ({len(report['down'])})"), _addresses_table(report["down"], names)]
    if report["first_run"]:
        parts.append(_html.paragraph("First run: every alive address is the baseline."))
    else:
        parts += [_html.heading(f"New addresses ({len(report['new'])})"), _addresses_table(report["new"], names),
                  _html.heading(f"Vanished addresses ({len(report['vanished'])})"),
                  _addresses_table(report["vanished"], names)]
    parts += [_html.heading("Fullest filesystems"), _fs_table(report["fullest"], "No filesystem reported."),
              _html.heading("Filling fastest (days until full at the current rate)"),
              _fs_table(report["forecasts"], _not_filling(report["summary"]))]
    return _html.page("Fleet report", parts)


def load_state(path: str) -> Optional[Dict[str, Any]]:
    """The previous run's state, or None on the first run; a corrupt file is an error, not a reset."""
    try:
        state = json.loads(_files.read_text(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FleetError(f"state_file {path!r} cannot be read ({exc}); fix or remove it") from None
    if not isinstance(state, dict) or not isinstance(state.get("alive"), list):
        raise FleetError(f"state_file {path!r} is not a fleet report state (no 'alive' list); fix or remove it")
    if not all(isinstance(a, str) for a in state["alive"]):
        raise FleetError(f"state_file {path!r}: 'alive' holds something that is no address; fix or remove it")
    return state


def run(options: Mapping[str, Any], check_mode: bool = False) -> Dict[str, Any]:
    """One fleet report run with the module's options: build, write, keep state, mail.

    Returns the module result plus ``mailing`` (a ``_mail_delivery.Mailing``)
    and ``error`` (why the files could not be written, else empty; the
    report is still mailed). Bad input raises FleetError before anything is
    written. Nothing is written or sent in check mode.
    """
    report_dir = options["report_dir"]
    state_file = options.get("state_file") or os.path.join(report_dir, "fleet-state.json")
    config = _mail_delivery.config_from_options(options, default_subject="Fleet report")
    # Run as root, the report directory and the state are read and written by whoever controls
    # them (_privilege.as_owner): root never writes into another user's directory.
    previous = _privilege.as_owner(os.path.dirname(os.path.abspath(state_file)), load_state, state_file)
    built = build(options.get("sweeps") or {}, options.get("disk_reports") or {}, options.get("hosts") or [],
                  options.get("unreachable") or [], previous, _top(options.get("top")),
                  failed=options.get("failed") or [], failure_reasons=options.get("failure_reasons"))
    report = built["report"]
    undelivered = _mail_delivery.undelivered_section(config.spool_dir)
    text = render_text(report) + (undelivered[0] and "\n" + undelivered[0])
    page = render_html(report).replace("</body>", undelivered[1] + "</body>")
    files = {"text": os.path.join(report_dir, "fleet-report.txt"),
             "html": os.path.join(report_dir, "fleet-report.html"), "state": state_file}
    changed, error = False, ""
    if not check_mode:
        try:
            changed = _privilege.as_owner(report_dir, _write_files, files, text, page, built["state"])
        except OSError as exc:
            error = (f"cannot write the fleet report in {report_dir} ({getattr(exc, 'filename', '') or ''}: "
                     f"{exc.strerror or exc}); the report is in this result and was mailed as configured")
    s = report["summary"]
    alerting = bool(s["addresses_down"] or s["unreachable"] or s["failed"] or s["alerts"])
    mailing = _mail_delivery.mail_document(config, text, page, alerting=alerting, check_mode=check_mode,
                                           what="the fleet report")
    # The alive addresses stay in the state file and the count in the summary: returned, a /16's
    # 40,000 addresses would be carried through Ansible for nothing (the sweeps have them).
    # So does the down list above LIST_LIMIT (down_ranges has the same addresses in a few strings).
    returned = {key: value for key, value in report.items() if key != "alive"}
    returned["down_ranges"] = _targets.compact(report["down"])
    if len(report["down"]) > LIST_LIMIT:
        del returned["down"]
    return {"changed": changed or mailing.changed, "report": returned, "text": text, "files": files,
            "mailing": mailing, "error": error}


def _write_files(files: Mapping[str, str], text: str, page: str, state: Mapping[str, Any]) -> bool:
    """Write the report and the state (only what changed); True if anything was written."""
    changed = _files.write_if_changed(files["text"], text + "\n")
    changed = _files.write_if_changed(files["html"], page + "\n") or changed
    return _files.write_if_changed(files["state"], json.dumps(state, indent=1) + "\n", 0o600) or changed


def _top(value: Any) -> int:
    if value is None:
        return 10
    if isinstance(value, bool) or not isinstance(value, int):
        raise FleetError(f"top must be a whole number of at least 1, got {value!r}")
    return value
