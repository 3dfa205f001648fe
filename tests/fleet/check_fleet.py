# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The checks of one run of playbooks/site.yml over the fleet of tests/fleet/run.py.

``check_run`` reads what the run left: the record of every task result and the
play stats (tests/fleet/callback_plugins/fleet_record.py), the fleet report
(its result, fleet-report.txt) and the state file, and checks them against
what the test made: which hosts run, which is stopped, which was made to
fail and why, how much each live host's data filesystem grows a day (two seeded days of
history, tests/fleet/seed_history.py, then real growth). It prints one line per
check and returns the names of those that failed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Dict, List, Sequence

REPORT_TASK = "Merge everything into one fleet report on the controller"
FAIL_TASK = "Fail the hosts that failed (the fleet report lists them with the reason)"
RETRY_TASK = "Try the unreachable hosts once more (the fleet report lists them with the reason)"
RUN_ONCE = (REPORT_TASK, "Where to look")  # recorded on whichever host comes first in the report's play
SWEEPER = "fleettest-1"


@dataclasses.dataclass
class Expected:
    """One host of the fleet as the test made it.

    state: ``sound`` (runs the play through), ``down`` (stopped: unreachable),
    or ``failing`` (reached, then made to fail; *reason* is a regular
    expression the whole reason in the report must match).
    """

    name: str
    address: str
    state: str = "sound"
    grow: int = 0
    reason: str = ""


def changed_besides_report(results: Sequence[Dict]) -> List[Dict]:
    """The recorded results that changed something, the fleet report task's aside (it writes every run)."""
    return [r for r in results if r["changed"] and r["task"] != REPORT_TASK]


def _key(address: str):
    return tuple(int(p) for p in address.split("."))


def check_run(run: str, record_path: str, report_dir: str, mount: str, hosts: Sequence[Expected]) -> List[str]:
    """Every check of one run (``first``, ``second`` or ``failing``); the failed checks' names."""
    by_name = {h.name: h for h in hosts}
    down = sorted(h.name for h in hosts if h.state == "down")
    failing = sorted(h.name for h in hosts if h.state == "failing")
    sound = sorted(h.name for h in hosts if h.state == "sound")
    live_ips = sorted((h.address for h in hosts if h.state != "down"), key=_key)  # running: they answer ping
    down_ips = sorted((by_name[h].address for h in down), key=_key)
    grown = {h.name: h.grow for h in hosts if h.state == "sound" and h.grow}
    with open(record_path, encoding="utf-8") as handle:
        record = json.load(handle)
    results, stats = record["results"], record["stats"]
    failures: List[str] = []

    def check(ok: bool, what: str, detail: str = "") -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}" + (f": {detail}" if detail and not ok else ""))
        if not ok:
            failures.append(what)

    # --- hosts: the sound ones ran, the failing ones were reached and failed, the stopped one unreachable ---
    for h in failing:
        s = stats.get(h, {})
        check(s.get("failures", 0) >= 1 and s.get("rescued", 0) >= 1 and s.get("unreachable", 1) == 0
              and s.get("ok", 0) >= 1, f"{h} was reached, failed (rescued, then failed after the report)", json.dumps(s))
        ends = [r for r in results if r["host"] == h and r["task"] == FAIL_TASK and r["status"] == "failed"]
        check(len(ends) == 1, f"{h}: the play's last task failed it", str(ends))
    for h in sound:
        s = stats.get(h, {})
        check(s.get("failures", 1) == 0 and s.get("unreachable", 1) == 0 and s.get("rescued", 1) == 0,
              f"{h} ran the play without failure", json.dumps(s))
    for h in down:
        s = stats.get(h, {})
        check(s.get("unreachable", 0) >= 1 and s.get("failures", 1) == 0 and s.get("rescued", 1) == 0,
              f"{h} (stopped) was unreachable, and failed nothing", json.dumps(s))
        ran = [(r["task"], r["status"]) for r in results
               if r["host"] == h and r["status"] != "skipped" and r["task"] not in RUN_ONCE]
        check(ran == [("Gather facts", "unreachable"), (RETRY_TASK, "unreachable")],
              f"{h}: unreachable at its first task (kept in the run) and once more at the end; nothing else ran",
              str(ran))
    bad = [r for r in results if r["status"] in ("failed", "unreachable") and r["host"] in sound]
    check(not bad, "no failed or unreachable result on a sound host",
          "; ".join(f"{r['host']}: {r['task']}: {r.get('msg', '')}" for r in bad))

    # --- the sweep -------------------------------------------------------------------------------
    sweeps = [r for r in results if r["action"].endswith("ping_sweep") and r["status"] == "ok"]
    check(len(sweeps) == 1 and sweeps[0]["host"] == SWEEPER, f"exactly one sweep, by {SWEEPER}",
          str([(r["host"], r["status"]) for r in sweeps]))
    if sweeps:
        sw = sweeps[0]
        check(sw.get("alive") == live_ips, "sweep: alive == the running containers' addresses",
              f"alive={sw.get('alive')} expected={live_ips}")
        check(sw.get("dead") == down_ips, "sweep: dead == the stopped container's address",
              f"dead={sw.get('dead')} expected={down_ips}")
        # the compact result (no details=true) has no per-address map: alive, dead and errors together
        probed = sorted(set(sw.get("alive", [])) | set(sw.get("dead", [])) | set(sw.get("errors", {})), key=_key)
        total = sw.get("summary", {}).get("total")
        check(probed == sorted((h.address for h in hosts), key=_key) and total == len(hosts),
              "sweep probed exactly the containers' addresses", f"probed={probed} summary.total={total}")

    # --- the merged report -----------------------------------------------------------------------
    reports = [r for r in results if r["task"] == REPORT_TASK and r["status"] == "ok"]
    check(len(reports) == 1, "the fleet report task ran once", str(len(reports)))
    if reports:
        rep = reports[0].get("report", {})
        rows = {row["host"]: row for row in rep.get("hosts", [])}
        check(sorted(rows) == sorted(by_name), "report lists every host", f"listed={sorted(rows)}")
        wrong = [h for h, row in rows.items() if row.get("reachable") != (h not in down)]
        check(not wrong, "report rows: reachable exactly for the running hosts", f"wrong={wrong}")
        wrong = [h for h, row in rows.items() if row.get("failed") != (h in failing)]
        check(not wrong, "report rows: failed exactly for the hosts made to fail", f"wrong={wrong}")
        check(rep.get("failed") == failing, "report: failed hosts", f"failed={rep.get('failed')}")
        check(sorted(rep.get("unreachable", [])) == down, "report: the stopped host is unreachable",
              f"unreachable={rep.get('unreachable')}")
        for h in failing:
            reason = rows.get(h, {}).get("reason") or ""
            check(re.fullmatch(by_name[h].reason, reason) is not None, f"report: why {h} failed",
                  f"reason={reason!r} expected to match {by_name[h].reason!r}")
        for h in down:  # what ssh (or mitogen) said when the connection failed
            reason = rows.get(h, {}).get("reason") or ""
            check(re.search(r"ssh|connect|stream|host", reason, re.IGNORECASE) is not None,
                  f"report: why {h} could not be reached", f"reason={reason!r}")
        wrong = [h for h in sound if rows.get(h, {}).get("reason") is not None]
        check(not wrong, "report: no reason for a host that neither failed nor was unreachable", f"wrong={wrong}")
        unreported = [h for h in sound if not rows.get(h, {}).get("reported") or not rows.get(h, {}).get("disk_status")]
        check(not unreported, "every sound host has a disk report with a status", f"missing={unreported}")
        check(not [h for h in failing + down if rows.get(h, {}).get("reported")],
              "no disk report from a failed or stopped host", str(rows))
        check("alive" not in rep and rep.get("summary", {}).get("addresses_alive") == len(live_ips),
              "report: as many addresses alive as running containers (the list itself is in the state file)",
              f"{rep.get('summary')}")
        check(rep.get("down") == down_ips, "report: down addresses", f"{rep.get('down')}")
        if run == "second":
            check(rep.get("new") == [] and rep.get("vanished") == [], "second run: no new or vanished address",
                  f"new={rep.get('new')} vanished={rep.get('vanished')}")
        check_forecasts(check, rep.get("forecasts", []), mount, grown)
    with open(os.path.join(report_dir, "fleet-report.txt"), encoding="utf-8") as handle:
        text = handle.read()
    missing = [h for h in by_name if h not in text]
    check(not missing, "fleet-report.txt names every host", f"missing={missing}")
    filling = text.split("Filling fastest", 1)[-1]
    missing = [h for h in grown if f"{h} " not in filling or "full in" not in filling]
    check(not missing, "fleet-report.txt: every growing host under 'Filling fastest' with 'full in'",
          f"missing={missing}")
    lines = text.splitlines()
    for h in failing:
        at = [i for i, line in enumerate(lines) if line.split()[:2] == [h, "FAILED"]]
        under = lines[at[0] + 1] if at and at[0] + 1 < len(lines) else ""
        check(len(at) == 1 and re.fullmatch(r"      reason: " + by_name[h].reason, under) is not None,
              f"fleet-report.txt: {h} FAILED, the reason on the line under it", f"line under it: {under!r}")
    for h in down:
        at = [i for i, line in enumerate(lines) if line.split()[:2] == [h, "UNREACHABLE"]]
        under = lines[at[0] + 1] if at and at[0] + 1 < len(lines) else ""
        check(len(at) == 1 and under.startswith("      reason: "),
              f"fleet-report.txt: {h} UNREACHABLE, what the connection said on the line under it", under)
    with open(os.path.join(report_dir, "fleet-state.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    check(state.get("alive") == live_ips, "state file keeps the running addresses", f"{state.get('alive')}")

    # --- idempotence ------------------------------------------------------------------------------
    if run == "second":
        changed = changed_besides_report(results)
        check(not changed, "second run: nothing changed except the fleet report task",
              "; ".join(f"{r['host']}: {r['task']} (stdout {str(r.get('stdout', ''))[:300]!r})" for r in changed))
        total = sum(s.get("changed", 0) for s in stats.values())
        check(total == 1, "second run: PLAY RECAP changed total is exactly 1 (the report)", f"changed={total}")
    return failures


def check_forecasts(check, forecasts: Sequence[Dict], mount: str, grown: Dict[str, int]) -> None:
    """Each sound host's MOUNT grew steadily by grown[host] bytes a day (two seeded days, today's real growth)."""
    rows = {f["host"]: f for f in forecasts if f.get("mount") == mount}
    check(sorted(rows) == sorted(grown), f"report forecasts: {mount} of every growing host", f"forecasts for {sorted(rows)}")
    for host, row in sorted(rows.items()):
        rate, days, avail = row.get("rate_per_day"), row.get("days_to_full"), row.get("avail_bytes")
        # the seeded samples lie on a line of grown[host] a day that ends at today's size when seeded;
        # today's sample comes the minutes of the play later: the rate is what was written a day, or a
        # little less, and the date counts from the line's free space (a few kB off today's, at most 2 %)
        check(rate is not None and 0.97 * grown[host] <= rate <= 1.001 * grown[host],
              f"{host}: fill rate of {mount} is ~{grown[host] >> 20} MiB/day", f"rate={rate}")
        check(days is not None and avail is not None and rate and abs(days - avail / rate) <= 0.02 * days,
              f"{host}: days to full = available / fill rate", f"days={days} avail={avail} rate={rate}")
    # the same size everywhere, so the fastest growth is the first to be full
    order = [f["host"] for f in forecasts if f.get("mount") == mount]
    expected = sorted(grown, key=lambda h: -grown[h])
    check(order == expected, "report forecasts: the fastest-growing filesystem first", f"order={order}")
