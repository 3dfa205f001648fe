# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report: every sweeper's sweep and every host's disk report, merged.

PRIVATE to the sysops.fleet collection. Pure standard library.

Runs once, on the controller, after the fleet has been swept and reported
on. It answers what an operator asks first thing in the morning: what needs
attention (every filesystem that is not ok, and why; hosts that could not
be reached or failed, and why), which addresses are down, new or gone since
the last run, which filesystems are fullest and which will fill first. The
addresses seen alive are kept in a small JSON state file between runs.

Its inputs are checked field by field first (``_fleet_inputs``); the report
is rendered by ``_fleet_render``. Building it is one pass over the
filesystems, whatever the fleet's size: a 10,000-host fleet brings 100,000
of them, so nothing here compares every host with every filesystem.
"""

from __future__ import annotations

import dataclasses
import datetime
import heapq
import json
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from . import _files, _fleet_columns, _fleet_render, _mail_delivery, _mesh, _privilege, _report, _targets
from ._fleet_inputs import (FleetError, address_key, canonical, check_disk_reports, check_sweeps, decoded, filesystems,
                            mesh_addresses, names, reasons)

STATE_VERSION = 1
LIST_LIMIT = 1024  # the returned report has its down list up to this many addresses (down_ranges always)
MAILER = "sysops.fleet fleet_report"
_SEVERITY = {"crit": 0, "warn": 1, "ok": 2}
ALERT_KEYS = ("host", "mount", "device", "status", "reasons", "use_pct", "inode_pct", "avail_bytes")
_KEEP_EVERY = 4096  # candidates for a top list kept between two trims to its size

__all__ = ["FleetError", "build", "merge_sweeps", "load_state", "run", "subject"]


def merge_sweeps(sweeps: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """One view of several sweepers' checked results: an address answering any sweeper is alive."""
    alive: Dict[str, str] = {}
    dead: Dict[str, str] = {}
    found_names: Dict[str, str] = {}
    for sweeper, result in sorted(sweeps.items()):
        for address in result["alive"]:
            alive.setdefault(address, sweeper)
        for address in result["dead"]:
            dead.setdefault(address, sweeper)
        found_names.update(result["names"])
    down = {a: s for a, s in dead.items() if a not in alive}
    return {
        "alive": sorted(alive, key=address_key),
        "down": sorted(down, key=address_key),
        "swept_by": {**down, **alive},
        "names": found_names,
    }


def up_by_sweep(merged: Dict[str, Any], up: Set[str]) -> Dict[str, Any]:
    """*merged* (``merge_sweeps``) with the addresses *up* alive: mesh hosts that ran their sweep, whoever reached them.

    The mesh reads a host that swept as up (nobody reaching it, it is cut
    off or its way in is blocked: the findings say which), so the address
    lists say so too, and the state keeps it alive: it is no address down.
    """
    if not up:
        return merged
    alive = set(merged["alive"]) | up
    return dict(merged, alive=sorted(alive, key=address_key), down=[a for a in merged["down"] if a not in up])


@dataclasses.dataclass
class _Scan:
    """What one pass over every filesystem found: per host, per status, and the short lists."""

    worst: Dict[str, Optional[str]] = dataclasses.field(default_factory=dict)  # host -> worst status (None: none given)
    alerts: List[Dict[str, Any]] = dataclasses.field(default_factory=list)    # every filesystem that is not ok
    fullest: List[Dict[str, Any]] = dataclasses.field(default_factory=list)    # the *top* fullest
    forecasts: List[Dict[str, Any]] = dataclasses.field(default_factory=list)  # the *top* filling fastest
    filesystems: int = 0
    filling: int = 0
    no_fill_rate: int = 0


class _Top:
    """The *size* smallest of many keys, kept without sorting them all: a top 10 of 100,000 filesystems.

    Candidates are collected and, every few thousand, sorted and cut to
    *size*; after that only a key below the last one kept can get in.
    """

    def __init__(self, size: int):
        self.size = size
        self.items: List[Tuple[Any, ...]] = []
        self.cut: Optional[Tuple[Any, ...]] = None

    def offer(self, item: Tuple[Any, ...]) -> None:
        if self.cut is None or item < self.cut:
            self.items.append(item)
            if len(self.items) > self.size + _KEEP_EVERY:  # not > _KEEP_EVERY: with a top above it, a sort per offer
                self._trim()

    def _trim(self) -> None:
        self.items.sort()
        del self.items[self.size:]
        if len(self.items) == self.size:
            self.cut = self.items[-1]

    def rows(self) -> List[Dict[str, Any]]:
        self._trim()
        return [item[-1] for item in self.items]


def scan(disks: Mapping[str, Any], top: int, rows_of: Callable[[str, Any], Iterable[Dict[str, Any]]] = filesystems
         ) -> _Scan:
    """Check every host's filesystems once, keeping only what the report shows (FleetError names a bad field).

    *rows_of(host, disks[host])* gives a host's filesystems checked: from
    its disk report's rows (``filesystems``) or from the columns
    (``_fleet_columns.Table.rows``).
    """
    found = _Scan()
    fullest, forecasts = _Top(top), _Top(top)
    seq = 0
    for host in sorted(disks):
        worst = None
        for row in rows_of(host, disks[host]):
            seq += 1
            found.filesystems += 1
            row["host"] = host
            status = row["status"]
            if status is not None and (worst is None or _SEVERITY[status] < _SEVERITY[worst]):
                worst = status
            if status == "warn" or status == "crit":
                found.alerts.append(row)
            if row["use_pct"] is not None:
                fullest.offer((-row["use_pct"], host, row["mount"], seq, row))
            if row["days_to_full"] is not None:
                found.filling += 1
                forecasts.offer((row["days_to_full"], host, row["mount"], seq, row))
            found.no_fill_rate += row["rate_per_day"] is None
        found.worst[host] = worst
    found.fullest, found.forecasts = fullest.rows(), forecasts.rows()
    found.alerts.sort(key=lambda f: (_SEVERITY[f["status"]], f["host"], f["mount"]))
    return found


def scan_columns(table: _fleet_columns.Table, top: int) -> _Scan:
    """``scan`` of columns that passed the checks (``Table.plain``), a column at a time: the same findings, a row
    made only for a filesystem the report shows (at 10,000 hosts, 100,000 rows were made to show a few hundred)."""
    cells = table.cells
    names = ("status", "use_pct", "days_to_full", "rate_per_day", "mount")
    status, use, days, rate, mount = (cells[name] for name in names)
    found = _Scan()
    order: List[int] = []  # the rows in scan's order (hosts sorted, each host's rows in turn)
    host_at: Dict[int, str] = {}
    for host in sorted(table.spans):
        start, count = table.spans[host]
        rows = range(start, start + count)
        order.extend(rows)
        host_at.update(dict.fromkeys(rows, host))
        kinds = set(status[start:start + count])
        found.worst[host] = next((level for level in _SEVERITY if level in kinds), None)
    found.filesystems = len(order)
    made: Dict[int, Dict[str, Any]] = {}

    def row_at(at: int) -> Dict[str, Any]:
        if at not in made:
            made[at] = dict(table.row(at), host=host_at[at])
        return made[at]
    found.alerts = [row_at(at) for at in order if status[at] == "warn" or status[at] == "crit"]
    found.alerts.sort(key=lambda f: (_SEVERITY[f["status"]], f["host"], f["mount"]))
    fullest = heapq.nsmallest(top, ((-float(use[at]), host_at[at], mount[at], seq, at)
                                    for seq, at in enumerate(order) if use[at] is not None))
    found.fullest = [row_at(item[-1]) for item in fullest]
    filling = [(days[at], host_at[at], mount[at], seq, at) for seq, at in enumerate(order) if days[at] is not None]
    found.filling = len(filling)
    found.forecasts = [row_at(item[-1]) for item in heapq.nsmallest(top, filling)]
    found.no_fill_rate = sum(1 for at in order if rate[at] is None)
    return found


def build(sweeps: Any, disks: Any, hosts: Sequence[str], unreachable: Sequence[str] = (),
          previous: Optional[Mapping[str, Any]] = None, top: int = 10, now: Optional[datetime.datetime] = None,
          failed: Sequence[str] = (), failure_reasons: Optional[Mapping[str, str]] = None,
          addresses: Any = None, disk_columns: Any = None) -> Dict[str, Any]:
    """The merged fleet report, and the state to keep for the next run.

    *unreachable* hosts could not be reached at all; *failed* ones were
    reached but a task failed on them (a host in both is unreachable).
    *failure_reasons* says why (host -> text) a host failed or could not be
    reached; a host with a reason that is not unreachable is failed.
    With *addresses* (host -> the address the others probe) the sweeps of
    those hosts are read as a mesh (``_mesh``): ``mesh`` and ``findings``.
    *disk_columns* is the disk reports in columns (``_fleet_columns``), given
    instead of *disks*.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise FleetError(f"top must be a whole number of at least 1, got {top!r}")
    checked_sweeps = check_sweeps(sweeps)
    checked_disks, rows_of, table = _disks(disks, disk_columns)
    hosts, unreachable = names(hosts, "hosts"), names(unreachable, "unreachable")
    failed = names(failed, "failed")
    why = reasons(failure_reasons)
    meshed = mesh_addresses(addresses)
    found = scan_columns(table, top) if table is not None and table.plain() else scan(checked_disks, top, rows_of)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    unreachable_set = set(unreachable)
    reached = {h for h in hosts if h not in unreachable_set}  # Ansible reached them: up, whoever pings them
    swept = up_by_sweep(merge_sweeps(checked_sweeps),
                        {meshed[h] for h in _mesh.swept(checked_sweeps, meshed) | (reached & set(meshed))})
    previously_alive = set((previous or {}).get("alive", []))
    first_run = previous is None
    alive = set(swept["alive"])
    failed_set = (set(failed) | set(why)) - unreachable_set
    host_rows = [{"host": host, "reachable": host not in unreachable_set, "failed": host in failed_set,
                  "reason": why.get(host) if host in failed_set or host in unreachable_set else None,
                  "disk_status": found.worst.get(host), "reported": host in checked_disks}
                 for host in sorted(set(hosts) | set(checked_disks) | unreachable_set | failed_set)]
    report = {
        "generated": now.isoformat(timespec="seconds"),
        "hosts": host_rows,
        "unreachable": sorted(unreachable_set),
        "failed": sorted(failed_set),
        "alive": swept["alive"],
        "down": swept["down"],
        "names": swept["names"],
        "new": [] if first_run else sorted(alive - previously_alive, key=address_key),
        "vanished": [] if first_run else sorted(previously_alive - alive, key=address_key),
        "first_run": first_run,
        "alerts": found.alerts,
        "fullest": found.fullest,
        "forecasts": found.forecasts,
        "mesh": None,
        "findings": [],
    }
    if meshed:
        report.update(_mesh.mesh(checked_sweeps, meshed, reached=reached))
    report["summary"] = _summary(report, found)
    report["status"] = overall_status(report["summary"])
    state = {"version": STATE_VERSION, "generated": report["generated"], "alive": swept["alive"]}
    return {"report": report, "state": state}


def _disks(disks: Any, disk_columns: Any) -> Tuple[Mapping[str, Any], Callable[[str, Any], Iterable[Dict[str, Any]]],
                                                   Optional[_fleet_columns.Table]]:
    """host -> its rows, how to check them, and the columns if given: from the disk reports or the columns (one)."""
    if disk_columns is None or disk_columns == {} or disk_columns == "":
        return check_disk_reports(disks), filesystems, None
    if disks and decoded(disks, "disk_reports"):
        raise FleetError("disk_reports and disk_columns: give the disk reports one way, not both")
    table = _fleet_columns.read(disk_columns)
    return table.spans, table.rows, table


def _summary(report: Mapping[str, Any], found: _Scan) -> Dict[str, int]:
    """The counts at the top of the report, in the subject and in the result."""
    by_status = {"unreachable": 0, "failed": 0, "crit": 0, "warn": 0, "unknown": 0, "ok": 0}
    for row in report["hosts"]:
        by_status[_fleet_render.host_status(row)] += 1
    return {
        "hosts": len(report["hosts"]), "unreachable": len(report["unreachable"]), "failed": len(report["failed"]),
        "hosts_crit": by_status["crit"], "hosts_warn": by_status["warn"], "hosts_ok": by_status["ok"],
        "hosts_no_report": by_status["unknown"],
        "addresses_alive": len(report["alive"]), "addresses_down": len(report["down"]),
        "new": len(report["new"]), "vanished": len(report["vanished"]),
        "alerts": len(report["alerts"]), "filesystems": found.filesystems, "filling": found.filling,
        "no_fill_rate": found.no_fill_rate, "findings": len(report["findings"]),
    }


def overall_status(s: Mapping[str, int]) -> str:
    """crit when a host is unreachable, failed or has a crit filesystem; warn for warn, an address down or a
    mesh finding."""
    if s["unreachable"] or s["failed"] or s["hosts_crit"]:
        return "crit"
    return "warn" if s["hosts_warn"] or s["addresses_down"] or s.get("findings") else "ok"


def subject(base: str, report: Mapping[str, Any]) -> str:
    """``[CRIT] Fleet report: 2 hosts unreachable, 3 addresses down``: the worst status first, then the counts.

    Operators sort and filter mail by subject, as they do monit's and
    Nagios': the status and what is wrong belong there, not only inside.
    """
    s = report["summary"]
    if s["hosts"] and s["unreachable"] == s["hosts"]:
        counts = [f"all {_report.counted(s['hosts'], 'host', 'unreachable')}"]
    else:
        counts = [_report.counted(s["unreachable"], "host", "unreachable"),
                  _report.counted(s["failed"], "host", "failed"), _report.counted(s["hosts_crit"], "host", "crit"),
                  _report.counted(s["hosts_warn"], "host", "warn"),
                  _report.counted(s["addresses_down"], "address", "down", "addresses"),
                  _report.plural(s["findings"], "mesh finding") if s.get("findings") else ""]
    counts = [c for c in counts if c] or [_report.counted(s["hosts"], "host", "ok") or "no hosts"]
    return _report.tagged_subject(report["status"], base, counts)


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
    state["alive"] = [canonical(a) or a for a in state["alive"]]  # one spelling, as the sweeps are read
    return state


def run(options: Mapping[str, Any], check_mode: bool = False) -> Dict[str, Any]:
    """One fleet report run with the module's options: build, write, keep state, mail.

    Returns the module result plus ``mailing`` (a ``_mail_delivery.Mailing``)
    and ``error`` (why the files could not be written, else empty; the
    report is still mailed). Bad input raises FleetError before anything is
    written. Nothing is written or sent in check mode, and ``changed`` says
    whether a real run would write the report or send it.
    """
    report_dir = options["report_dir"]
    state_file = options.get("state_file") or os.path.join(report_dir, "fleet-state.json")
    config = _mail_delivery.config_from_options(options, default_subject="Fleet report")
    # Run as root, the report directory and the state are read and written by whoever controls
    # them (_privilege.as_owner): root never writes into another user's directory.
    previous = _privilege.as_owner(os.path.dirname(os.path.abspath(state_file)), load_state, state_file)
    built = build(options.get("sweeps") or {}, options.get("disk_reports") or {}, options.get("hosts") or [],
                  options.get("unreachable") or [], previous, _top(options.get("top")),
                  failed=options.get("failed") or [], failure_reasons=options.get("failure_reasons"),
                  addresses=options.get("addresses"), disk_columns=options.get("disk_columns"))
    report = built["report"]
    undelivered = _mail_delivery.undelivered_section(config.spool_dir)
    text = _fleet_render.text(report) + (undelivered[0] and "\n" + undelivered[0])
    page = _fleet_render.html(report).replace("</body>", undelivered[1] + "</body>")
    files = {"text": os.path.join(report_dir, "fleet-report.txt"),
             "html": os.path.join(report_dir, "fleet-report.html"), "state": state_file}
    contents = {"text": text.rstrip("\n") + "\n", "html": page.rstrip("\n") + "\n",
                "state": json.dumps(built["state"], indent=1) + "\n"}
    changed, error = False, ""
    try:
        if check_mode:
            changed = _privilege.as_owner(report_dir, _differ, files, contents)
        else:
            changed = _privilege.as_owner(report_dir, _write_files, files, contents)
    except OSError as exc:
        error = (f"cannot write the fleet report in {report_dir} ({getattr(exc, 'filename', '') or ''}: "
                 f"{exc.strerror or exc}); the report is in this result and was mailed as configured")
        if check_mode:
            changed, error = True, ""
    s = report["summary"]
    alerting = bool(s["addresses_down"] or s["unreachable"] or s["failed"] or s["alerts"] or s["findings"])
    config = dataclasses.replace(config, subject=subject(config.subject, report))
    mailing = _mail_delivery.mail_document(config, text, page, alerting=alerting, check_mode=check_mode,
                                           what="the fleet report", mailer=MAILER)
    would_mail = check_mode and _mail_delivery.decide(config.send, config.mail_to, alerting)[0]
    return {"changed": changed or mailing.changed or would_mail, "report": _returned(report), "text": text,
            "files": files, "mesh": report["mesh"], "findings": report["findings"], "mailing": mailing,
            "error": error}


def _returned(report: Mapping[str, Any]) -> Dict[str, Any]:
    """The report as the module returns it.

    Each alert (a filesystem that is not ok) keeps what the report shows of
    it (ALERT_KEYS), and ``names`` the names of the addresses listed (down,
    new, vanished): at 10,000 hosts the whole rows and every name would
    double what Ansible carries back and sanitizes. The alive addresses stay
    in the state file and the count in the summary:
    returned, a /16's 40,000 addresses would be carried through Ansible for
    nothing (the sweeps have them). So does the down list above LIST_LIMIT
    (down_ranges has the same addresses in a few strings).
    """
    returned = {key: value for key, value in report.items() if key not in ("alive", "mesh", "findings")}
    returned["alerts"] = [{key: f[key] for key in ALERT_KEYS} for f in report["alerts"]]
    listed = set(report["down"]) | set(report["new"]) | set(report["vanished"])
    returned["names"] = {a: name for a, name in report["names"].items() if a in listed}
    returned["down_ranges"] = _targets.compact(report["down"])
    if len(report["down"]) > LIST_LIMIT:
        del returned["down"]
    return returned


def _differ(files: Mapping[str, str], contents: Mapping[str, str]) -> bool:
    """Whether writing *contents* would change any of *files* (check mode: read, never write)."""
    for key, path in files.items():
        try:
            if _files.read_text(path) != contents[key]:
                return True
        except FileNotFoundError:
            return True
        except (_files.UnsafeFile, UnicodeDecodeError):
            return True
    return False


def _write_files(files: Mapping[str, str], contents: Mapping[str, str]) -> bool:
    """Write the report and the state (only what changed); True if anything was written."""
    changed = _files.write_if_changed(files["text"], contents["text"])
    changed = _files.write_if_changed(files["html"], contents["html"]) or changed
    return _files.write_if_changed(files["state"], contents["state"], 0o600) or changed


def _top(value: Any) -> int:
    if value is None:
        return 10
    if isinstance(value, bool) or not isinstance(value, int):
        raise FleetError(f"top must be a whole number of at least 1, got {value!r}")
    return value
