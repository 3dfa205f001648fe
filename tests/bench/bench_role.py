# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: the watcher role on one host, against a play of ten ``ansible.builtin.stat`` tasks.

    sudo .venv/bin/python tests/bench/bench_role.py [--repeat 5] [--connection podman|local]

The host is a podman container of the test image (scripts/build_image.sh host
bookworm: python3, cron, ping), reached with the containers.podman connection,
linear strategy, pipelining on (what docs/fleet.md recommends). Timed, whole
``ansible-playbook`` commands, median of --repeat runs, all in this one run:

* the reference: a play that gathers facts and runs ten ``stat`` tasks;
* the role's first install on a fresh container (as root: system layout, cron);
* an idempotent rerun of the role (asserted: changed=0);
* the rerun in check mode.

Prints a table with each median and its ratio to the reference. Removes its
containers. The network: none (the containers have no network interfaces
but loopback).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(ROOT, ".venv", "bin")
IMAGE = "localhost/sysops-fleet-host:bookworm"
NAME = "sysops-fleet-bench-role"
TEN_STATS = """
- name: Ten stats
  hosts: all
  tasks:
""" + "".join(f"""    - name: Stat {n}
      ansible.builtin.stat:
        path: /etc/hostname
""" for n in range(1, 11))
ROLE = """
- name: The watcher role
  hosts: all
  roles:
    - role: sysops.fleet.watcher
      vars:
        watcher_service_manager: cron
        watcher_watch_hosts: [127.0.0.1]
"""


def env():
    conf = os.path.join(ROOT, ".build", "podman", "containers.conf")
    return dict(os.environ, PATH=VENV + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_FORCE_COLOR="0",
                ANSIBLE_NOCOLOR="1", ANSIBLE_PIPELINING="true", ANSIBLE_HOST_KEY_CHECKING="false",
                CONTAINERS_CONF=conf,
                ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([os.path.join(ROOT, ".build", "collections"),
                                                         os.path.join(ROOT, ".build", "ansible", "collections")]))


def podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env(), check=check)


def fresh_host():
    podman("rm", "-f", "-t", "0", NAME, check=False)
    podman("run", "-d", "--name", NAME, "--network", "none", "--init", IMAGE, "sleep", "infinity")


def play(work, text, connection, *extra):
    path = os.path.join(work, "play.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    inventory = os.path.join(work, "inventory.ini")
    with open(inventory, "w", encoding="utf-8") as handle:
        if connection == "podman":
            handle.write(f"{NAME} ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3\n")
        else:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
    started = time.monotonic()
    proc = subprocess.run([os.path.join(VENV, "ansible-playbook"), "-i", inventory, path, *extra], cwd=work,
                          capture_output=True, text=True, env=env(), check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"play failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    recap = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=\d+\s+skipped=(\d+)", proc.stdout)
    return seconds, {"ok": int(recap.group(1)), "changed": int(recap.group(2)), "skipped": int(recap.group(3))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--connection", choices=["podman", "local"], default="podman")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (rootful podman; the role installs as root)", file=sys.stderr)
        return 2
    if args.connection == "podman":
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "build_image.sh"), "host", "bookworm"], check=True,
                       env=env())
    times = {"ten stat tasks (reference)": [], "role: first install": [], "role: rerun (idempotent)": [],
             "role: rerun in check mode": []}
    recaps = {}
    problems = []
    with tempfile.TemporaryDirectory() as work:
        try:
            for _round in range(args.repeat):
                if args.connection == "podman":
                    fresh_host()
                seconds, recap = play(work, TEN_STATS, args.connection)
                times["ten stat tasks (reference)"].append(seconds)
                if args.connection == "local":
                    play(work, ROLE, args.connection, "-e", "watcher_state=absent")
                seconds, recap = play(work, ROLE, args.connection)
                times["role: first install"].append(seconds)
                recaps["role: first install"] = recap
                seconds, recap = play(work, ROLE, args.connection)
                times["role: rerun (idempotent)"].append(seconds)
                recaps["role: rerun (idempotent)"] = recap
                if recap["changed"]:
                    problems.append(f"the rerun changed {recap['changed']} thing(s)")
                seconds, recap = play(work, ROLE, args.connection, "--check")
                times["role: rerun in check mode"].append(seconds)
                recaps["role: rerun in check mode"] = recap
                if recap["changed"]:
                    problems.append(f"the check-mode rerun reports {recap['changed']} change(s)")
        finally:
            if args.connection == "podman":
                podman("rm", "-f", "-t", "0", NAME, check=False)
            else:
                play(work, ROLE, args.connection, "-e", "watcher_state=absent")
    base = statistics.median(times["ten stat tasks (reference)"])
    print(f"one host ({args.connection} connection, linear, pipelining), median of {args.repeat} runs")
    print("| play | seconds | x ten stats | ok | changed | skipped |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, values in times.items():
        recap = recaps.get(name, {})
        print(f"| {name} | {statistics.median(values):.2f} | {statistics.median(values) / base:.2f} | "
              f"{recap.get('ok', '')} | {recap.get('changed', '')} | {recap.get('skipped', '')} |")
    for problem in sorted(set(problems)):
        print("WRONG:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
