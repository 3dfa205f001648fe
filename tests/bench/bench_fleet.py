# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: playbooks/site.yml over SSH at 1, 4 and 8 hosts, linear and mitogen.

    sudo .venv/bin/python tests/bench/bench_fleet.py [--hosts 1,4,8] [--strategy both] [--forks 8] [--repeat 1]

The fleet is the fleet test's (tests/fleet/podman_fleet.py): podman containers
running sshd on an internal network this benchmark creates and removes, logged
in to as an ordinary user with the test's own key, ``become: true``, pipelining.
For each host count, on fresh containers, whole ``ansible-playbook`` commands
are timed as an operator times them:

* the reference: a play of ten ``ansible.builtin.stat`` tasks over the same
  hosts (linear, with facts), what any playbook of ten tasks costs there;
* site.yml's first run (the watcher installed everywhere, disk reports, one
  sweep of exactly the containers' addresses, the fleet report);
* site.yml's rerun (converged: only the fleet report changes);

each with linear and with mitogen's ``mitogen_linear``. For each: wall time,
the controller's CPU (user + sys of ansible-playbook and all it started, ssh
and its ControlPersist masters included: tests/fleet/metered.py), both per
host, and the ratio of the wall time to the reference's; with --repeat N, the
medians of N rounds, each on fresh containers. Every run must end
with rc 0 and the rerun must change nothing but the report, or the benchmark
fails. All the containers share this machine's cores with the controller.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fleet"))

import check_fleet  # noqa: E402  pylint: disable=wrong-import-position
from podman_fleet import Fleet, FleetError, log  # noqa: E402  pylint: disable=wrong-import-position

TEN_STATS = "---\n- name: Ten stats\n  hosts: all\n  tasks:\n" + "".join(
    f"    - name: Stat {n}\n      ansible.builtin.stat:\n        path: /etc/hostname\n" for n in range(1, 11))
REFERENCE = "ten stat tasks (reference)"


def changed_besides_report(record_path: str) -> list:
    with open(record_path, encoding="utf-8") as handle:
        record = json.load(handle)
    return [f"{r['host']}: {r['task']}" for r in check_fleet.changed_besides_report(record["results"])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default="1,4,8", help="host counts, comma-separated (at most 12)")
    parser.add_argument("--strategy", choices=["linear", "mitogen", "both"], default="both")
    parser.add_argument("--forks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="rounds on fresh containers; the table shows medians")
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]
    if not counts or min(counts) < 1 or max(counts) > 12:
        parser.error("--hosts: counts from 1 to 12 (the test's /28 network)")
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    strategies = ["linear", "mitogen"] if args.strategy == "both" else [args.strategy]
    rows: Dict[Tuple[int, str, str], List] = {}  # (hosts, play, strategy) -> one PlayRun per repeat
    problems = []
    try:
        with Fleet(suite=os.environ.get("FLEET_SUITE", "bookworm"),
                   subnet=os.environ.get("FLEET_SUBNET", "10.89.77.0/28")) as fleet:
            stats = os.path.join(fleet.work, "ten-stats.yml")
            with open(stats, "w", encoding="utf-8") as handle:
                handle.write(TEN_STATS)
            for count in counts:
                for repeat in range(args.repeat):
                    for strategy in strategies:
                        log(f"--- {count} host(s), {strategy}, round {repeat + 1}: fresh containers")
                        fleet.start(count)
                        inventory = fleet.inventory(os.path.join(fleet.work, f"inv-{count}-{strategy}.yml"),
                                                    "fleettest-1")
                        if strategy == strategies[0]:
                            ran = fleet.run(f"stats-{count}-{repeat}", ["ansible-playbook", stats, "-i", inventory,
                                                                        "--forks", str(args.forks)], "linear")
                            if ran.rc != 0:
                                problems.append(f"ten stats on {count} host(s): rc {ran.rc}")
                            rows.setdefault((count, REFERENCE, "linear"), []).append(ran)
                        for run in ("first run", "rerun"):
                            played = fleet.play(f"{strategy}-{count}-{repeat}-{run.replace(' ', '-')}", inventory,
                                                strategy, args.forks)
                            log(f"{count} host(s), {strategy}, {run}: rc {played.rc}, {played.seconds:.1f} s, "
                                f"controller CPU {played.cpu:.1f} s")
                            if played.rc != 0:
                                problems.append(f"site.yml {run} on {count} host(s), {strategy}: rc {played.rc}\n"
                                                + played.output()[-2000:])
                            elif run == "rerun":
                                extra = changed_besides_report(played.record)
                                if extra:
                                    problems.append(f"rerun on {count} host(s), {strategy} changed: {extra}")
                            rows.setdefault((count, f"site.yml {run}", strategy), []).append(played)
                        fleet.remove_hosts()
    except FleetError as exc:
        log(f"ERROR: {exc}")
        return 1
    print(f"site.yml over SSH (become, pipelining), --forks {args.forks}, median of {args.repeat} round(s); "
          f"every host a container on this machine")
    print("| hosts | play | strategy | wall s | per host | controller CPU s | per host | x reference |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (count, what, strategy), runs in rows.items():
        wall = statistics.median(r.seconds for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        reference = statistics.median(r.seconds for r in rows[(count, REFERENCE, "linear")])
        print(f"| {count} | {what} | {strategy} | {wall:.1f} | {wall / count:.1f} | "
              f"{cpu:.1f} | {cpu / count:.2f} | {wall / reference:.2f} |")
    for problem in problems:
        print("WRONG:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
