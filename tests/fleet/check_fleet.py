# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks one run of playbooks/site.yml over the podman fleet of scripts/fleet.sh.

Usage: check_fleet.py first|second|failing RECORD_JSON REPORT_DIR STATE_FILE MOUNT HOST=IP[,down|,fail|,grow=N] ...
  RECORD_JSON  written by tests/fleet/callback_plugins/fleet_record.py
  MOUNT        the filesystem seeded with a day-old sample in every live container
               (tests/fleet/seed_history.py)
  HOST=IP      every container and its address; ",down" marks the stopped one(s), ",fail" a running
               one made to fail a task, ",grow=N" the bytes written to MOUNT of a live one since its
               day-old sample
Prints one line per check; exits 1 when any check fails.
"""
import json
import sys

REPORT_TASK = "Merge everything into one fleet report on the controller"


def main(argv):
    run, record_path, report_dir, state_file = argv[1:5]
    data_mount = argv[5]
    hosts, down_hosts, failing, grown = {}, set(), set(), {}
    for spec in argv[6:]:
        name, rest = spec.split("=", 1)
        ip, flag = (rest.split(",", 1) + [""])[:2]
        hosts[name] = ip
        if flag == "down":
            down_hosts.add(name)
        elif flag == "fail":
            failing.add(name)
        elif flag.startswith("grow="):
            grown[name] = int(flag[5:])
    live = sorted(h for h in hosts if h not in down_hosts)  # running containers: they answer ping
    sound = [h for h in live if h not in failing]  # ... and run the play through

    def key(address):
        return tuple(int(p) for p in address.split("."))

    live_ips = sorted((hosts[h] for h in live), key=key)
    down_ips = sorted((hosts[h] for h in down_hosts), key=key)

    with open(record_path, encoding="utf-8") as handle:
        record = json.load(handle)
    results, stats = record["results"], record["stats"]
    failures = []

    def check(ok, what, detail=""):
        print(f"  [{'ok' if ok else 'FAIL'}] {what}" + (f": {detail}" if detail and not ok else ""))
        if not ok:
            failures.append(what)

    # --- hosts: the live ones ran, the stopped ones are unreachable ---------------
    for h in sorted(failing):
        s = stats.get(h, {})
        check(s.get("failures", 0) >= 1 and s.get("unreachable", 1) == 0 and s.get("ok", 0) >= 1,
              f"{h} was reached and failed a task", json.dumps(s))
    for h in sound:
        s = stats.get(h, {})
        check(s.get("failures", 1) == 0 and s.get("unreachable", 1) == 0,
              f"{h} ran the play without failure", json.dumps(s))
    for h in sorted(down_hosts):
        s = stats.get(h, {})
        check(s.get("unreachable", 0) + s.get("failures", 0) >= 1 and s.get("ok", 0) == 0,
              f"{h} (stopped) was unreachable", json.dumps(s))
    bad = [r for r in results if r["status"] in ("failed", "unreachable") and r["host"] in sound]
    check(not bad, "no failed or unreachable result on a sound host",
          "; ".join(f"{r['host']}: {r['task']}: {r.get('msg', '')}" for r in bad))

    # --- the sweep ----------------------------------------------------------------
    sweeps = [r for r in results if r["action"].endswith("ping_sweep") and r["status"] == "ok"]
    check(len(sweeps) == 1 and sweeps[0]["host"] == "fleettest-1", "exactly one sweep, by fleettest-1",
          str([(r["host"], r["status"]) for r in sweeps]))
    if sweeps:
        sw = sweeps[0]
        check(sw.get("alive") == live_ips, "sweep: alive == the live containers' addresses",
              f"alive={sw.get('alive')} expected={live_ips}")
        check(sw.get("dead") == down_ips, "sweep: dead == the stopped container's address",
              f"dead={sw.get('dead')} expected={down_ips}")
        probed = sorted(set(sw.get("alive", [])) | set(sw.get("dead", [])) | set(sw.get("errors", {})), key=key)
        total = sw.get("summary", {}).get("total")
        check(probed == sorted(hosts.values(), key=key) and total == len(hosts),
              "sweep probed exactly the containers' addresses", f"probed={probed} summary.total={total}")

    # --- the merged report ----------------------------------------------------------
    reports = [r for r in results if r["task"] == REPORT_TASK and r["status"] == "ok"]
    check(len(reports) == 1, "the fleet report task ran once", str(len(reports)))
    if reports:
        rep = reports[0].get("report", {})
        rows = {row["host"]: row for row in rep.get("hosts", [])}
        check(sorted(rows) == sorted(hosts), "report lists every host", f"listed={sorted(rows)}")
        wrong = [h for h, row in rows.items() if row.get("reachable") != (h not in down_hosts)]
        check(not wrong, "report rows: reachable exactly for the live hosts", f"wrong={wrong}")
        wrong = [h for h, row in rows.items() if row.get("failed") != (h in failing)]
        check(not wrong, "report rows: failed exactly for the host made to fail", f"wrong={wrong}")
        check(rep.get("failed") == sorted(failing), "report: failed hosts", f"failed={rep.get('failed')}")
        unreported = [h for h in sound if not rows.get(h, {}).get("reported") or not rows.get(h, {}).get("disk_status")]
        check(not unreported, "every sound host has a disk report with a status", f"missing={unreported}")
        check(sorted(rep.get("unreachable", [])) == sorted(down_hosts), "report marks the stopped host unreachable",
              f"unreachable={rep.get('unreachable')}")
        check("alive" not in rep and rep.get("summary", {}).get("addresses_alive") == len(live_ips),
              "report: as many addresses alive as live containers (the list itself is in the state file)",
              f"{rep.get('summary')}")
        check(rep.get("down") == down_ips, "report: down addresses", f"{rep.get('down')}")
        if run == "second":
            check(rep.get("new") == [] and rep.get("vanished") == [], "second run: no new or vanished address",
                  f"new={rep.get('new')} vanished={rep.get('vanished')}")
        check_forecasts(check, rep.get("forecasts", []), data_mount, grown)
    with open(f"{report_dir}/fleet-report.txt", encoding="utf-8") as handle:
        text = handle.read()
    missing = [h for h in hosts if h not in text]
    check(not missing, "fleet-report.txt names every host", f"missing={missing}")
    filling = text.split("Filling fastest", 1)[-1]
    missing = [h for h in grown if f"{h} " not in filling or "full in" not in filling]
    check(not missing, "fleet-report.txt: every growing host under 'Filling fastest' with 'full in'",
          f"missing={missing}")
    marked = [h for h in failing if not any(line.split()[:2] == [h, "FAILED"] for line in text.splitlines())]
    check(not marked, "fleet-report.txt marks the failed host FAILED", f"not marked={marked}")
    with open(state_file, encoding="utf-8") as handle:
        state = json.load(handle)
    check(state.get("alive") == live_ips, "state file keeps the live addresses", f"{state.get('alive')}")

    # --- idempotence ------------------------------------------------------------------
    if run == "second":
        changed = [r for r in results if r["changed"] and r["task"] != REPORT_TASK]
        check(not changed, "second run: nothing changed except the fleet report task",
              "; ".join(f"{r['host']}: {r['task']}" for r in changed))
        total = sum(s.get("changed", 0) for s in stats.values())
        check(total == 1, "second run: PLAY RECAP changed total is exactly 1 (the report)", f"changed={total}")

    if failures:
        print(f"{len(failures)} check(s) failed ({run} run)")
        return 1
    print(f"all checks passed ({run} run)")
    return 0


def check_forecasts(check, forecasts, mount, grown):
    """Each live host's MOUNT grew by grown[host] bytes since a sample dated a day ago."""
    rows = {f["host"]: f for f in forecasts if f.get("mount") == mount}
    check(sorted(rows) == sorted(grown), f"report forecasts: {mount} of every growing host", f"forecasts for {sorted(rows)}")
    for host, row in sorted(rows.items()):
        rate, days, avail = row.get("rate_per_day"), row.get("days_to_full"), row.get("avail_bytes")
        # the day-old sample and today's are a day plus the minutes of the play apart (and a run later
        # than 15 minutes adds a third sample): the rate is what was written, a day, or a little less
        check(rate is not None and 0.97 * grown[host] <= rate <= 1.001 * grown[host],
              f"{host}: fill rate of {mount} is ~{grown[host] >> 20} MiB/day", f"rate={rate}")
        check(days is not None and avail is not None and rate and abs(days - avail / rate) <= 1e-6 * days,
              f"{host}: days to full = available / fill rate", f"days={days} avail={avail} rate={rate}")
    # the same size everywhere, so the fastest growth is the first to be full
    order = [f["host"] for f in forecasts if f.get("mount") == mount]
    expected = sorted(grown, key=lambda h: -grown[h])
    check(order == expected, "report forecasts: the fastest-growing filesystem first", f"order={order}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
