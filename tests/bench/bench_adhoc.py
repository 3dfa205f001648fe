# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: what the user times. Whole ``ansible`` and ``ansible-playbook`` commands, in the loopback lab.

    sudo .venv/bin/python tests/bench/bench_adhoc.py [--repeat 5] [--sizes 20,16]

For each size, sweeps a fresh 127.x network inside a network namespace in
which a third of the hosts are silent (tests/lab.py), timing the whole
command a user would type (median of --repeat runs, all in this one run):

* ``ansible localhost -m sysops.fleet.ping_sweep -a 'targets=... timeout=1 retries=0 rate=0'``
  (the default result: above list_limit only the ranges; with ``list_limit=65536``, the alive and dead
  lists as well; and with ``details=true``);
* the peers a user would pick instead, through ``ansible.builtin.command``:
  ``fping -a -q -r 0 -t 1000 -i 0 -g CIDR`` and ``nmap -sn -PE -n --min-rate 100000 CIDR``;
* a playbook that sweeps, registers the result and merges it with
  ``sysops.fleet.fleet_report`` (the report written to a temp directory);
* the module process alone (its own wall time, run as Ansible runs it, and
  the size of the JSON it returns), so that the rest of the whole command is
  the controller's share.

Prints a table with the ratio of each whole command to fping-through-command
measured in the same run, and whether every alive set equals the lab's.
Loopback only (inside the namespace).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))
import lab  # noqa: E402
from ansible_collections.sysops.fleet.plugins.module_utils import _targets  # noqa: E402

VENV = os.path.join(ROOT, ".venv", "bin")
ENV = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"), ANSIBLE_FORCE_COLOR="0",
           ANSIBLE_NOCOLOR="1", PATH=VENV + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_LOCALHOST_WARNING="0",
           ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
PLAYBOOK = """
- name: Sweep and merge into the fleet report
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Sweep
      sysops.fleet.ping_sweep:
        targets: ["{cidr}"]
        timeout: 1
        retries: 0
        rate: 0
      register: sweep
    - name: Merge
      sysops.fleet.fleet_report:
        sweeps: {{localhost: "{{{{ sweep }}}}"}}
        hosts: [localhost]
        report_dir: "{report_dir}"
"""


def run(argv, ns):
    started = time.monotonic()
    proc = subprocess.run(lab.netns_argv(ns, argv), capture_output=True, text=True, env=ENV, cwd=ROOT, check=False)
    return time.monotonic() - started, proc


def alive_set(result):
    """The alive addresses of a ping_sweep result: its list, or its ranges above list_limit."""
    if "alive" in result:
        return set(result["alive"])
    return set(_targets.expand(result["alive_ranges"], "alive_ranges", 1 << 20))


def alive_from_json_output(text):
    """The alive set out of ``ansible localhost -m ...``'s default output ("localhost | SUCCESS => {...}")."""
    start = text.index("{")
    return alive_set(json.loads(text[start:]))


def adhoc_ours(ns, cidr, extra=""):
    args = f"targets={cidr} timeout=1 retries=0 rate=0 {extra}".strip()
    seconds, proc = run(["ansible", "localhost", "-c", "local", "-i", "localhost,",
                         "-e", f"ansible_python_interpreter={sys.executable}",
                         "-m", "sysops.fleet.ping_sweep", "-a", args], ns)
    return seconds, alive_from_json_output(proc.stdout)


def adhoc_command(ns, argv, parse):
    seconds, proc = run(["ansible", "localhost", "-c", "local", "-i", "localhost,",
                         "-e", f"ansible_python_interpreter={sys.executable}",
                         "-m", "ansible.builtin.command", "-a", " ".join(argv)], ns)
    return seconds, parse(proc.stdout)


def fping_lines(text):
    """fping's alive addresses out of the ad hoc output (rc 1 when some are silent: the last line gets
    Ansible's "The command exited with a non-zero return code." glued to it)."""
    found = set()
    for line in text.splitlines():
        word = line.strip().split("The command exited")[0].strip()
        if word.startswith("127."):
            found.add(word)
    return found


def nmap_lines(text):
    """nmap's "up" addresses. In the loopback lab nmap counts every local address as up ("localhost-
    response"), whatever the firewall drops, so its set is compared for information only."""
    return {line.split()[-1] for line in text.splitlines() if line.startswith("Nmap scan report for")}


def playbook(ns, cidr, work):
    path = os.path.join(work, "sweep-and-merge.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(PLAYBOOK.format(cidr=cidr, report_dir=os.path.join(work, "reports")))
    seconds, proc = run(["ansible-playbook", "-c", "local", "-i", "localhost,",
                         "-e", f"ansible_python_interpreter={sys.executable}", path], ns)
    if proc.returncode != 0:
        raise RuntimeError(f"the playbook failed: {proc.stdout[-2000:]}")
    with open(os.path.join(work, "reports", "fleet-state.json"), encoding="utf-8") as handle:
        alive = set(json.load(handle)["alive"])
    return seconds, alive


def module_alone(ns, cidr, work, details=False):
    """The module as Ansible runs it (python MODULE ARGS_FILE through the collection path), alone."""
    args = os.path.join(work, "args.json")
    with open(args, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": {"targets": [cidr], "timeout": 1, "retries": 0, "rate": 0,
                                           **({"details": True} if details else {})}}, handle)
    code = ("import runpy, sys; sys.path.insert(0, %r); sys.argv = ['ping_sweep', %r]; "
            "runpy.run_module('ansible_collections.sysops.fleet.plugins.modules.ping_sweep', run_name='__main__')"
            % (os.path.join(ROOT, ".build", "collections"), args))
    seconds, proc = run([sys.executable, "-c", code], ns)
    return seconds, len(proc.stdout), alive_set(json.loads(proc.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="20,16")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    rows, wrong, notes = [], [], set()
    with lab.lab(prefix="fleetadhoc") as ns, tempfile.TemporaryDirectory() as work:
        for n, prefix in enumerate(int(s) for s in args.sizes.split(",")):
            cidr = f"127.{110 + n}.0.0/{prefix}"
            expected = lab.expected_alive(cidr)
            tools = {
                "fping via ansible.builtin.command": lambda c: adhoc_command(
                    ns, ["fping", "-a", "-q", "-r", "0", "-t", "1000", "-i", "0", "-g", c], fping_lines),
                "nmap -sn via ansible.builtin.command": lambda c: adhoc_command(
                    ns, ["nmap", "-sn", "-PE", "-n", "--min-rate", "100000", "--max-retries", "0", c], nmap_lines),
                "ansible -m sysops.fleet.ping_sweep": lambda c: adhoc_ours(ns, c),
                "ansible -m sysops.fleet.ping_sweep list_limit=65536 (lists)": lambda c: adhoc_ours(
                    ns, c, "list_limit=65536"),
                "ansible -m sysops.fleet.ping_sweep details=true": lambda c: adhoc_ours(ns, c, "details=true"),
                "playbook: ping_sweep + fleet_report": lambda c: playbook(ns, c, work),
            }
            times = {name: [] for name in tools}
            alone, sizes = [], []
            for _round in range(args.repeat):
                for name, tool in tools.items():
                    seconds, alive = tool(cidr)
                    times[name].append(seconds)
                    if alive != expected and "nmap" not in name:
                        wrong.append(f"/{prefix} {name}: {len(alive)} alive, the lab has {len(expected)}")
                    elif alive != expected:
                        notes.add(f"/{prefix} {name}: {len(alive)} up (nmap takes every loopback address "
                                  f"for a local one, so none is silent to it), the lab has {len(expected)}")
                seconds, size, alive = module_alone(ns, cidr, work)
                alone.append(seconds)
                sizes.append(size)
            base = statistics.median(times["fping via ansible.builtin.command"])
            ours = statistics.median(times["ansible -m sysops.fleet.ping_sweep"])
            for name, values in times.items():
                rows.append((f"/{prefix}", name, statistics.median(values), statistics.median(values) / base,
                             statistics.median(values) / ours))
            rows.append((f"/{prefix}", f"(the module process alone, {statistics.median(sizes) / 1e6:.2f} MB of JSON)",
                         statistics.median(alone), statistics.median(alone) / base, statistics.median(alone) / ours))
    print(f"median of {args.repeat} runs; x fping = whole command / fping through ansible.builtin.command")
    print("| size | command | seconds | x fping | x ad hoc ping_sweep |")
    print("| --- | --- | ---: | ---: | ---: |")
    for size, name, seconds, x_fping, x_ours in rows:
        print(f"| {size} | {name} | {seconds:.2f} | {x_fping:.2f} | {x_ours:.2f} |")
    for line in sorted(notes):
        print("note:", line)
    for line in wrong:
        print("WRONG:", line)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
