# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: count mode, the whole command a user times, against ``fping -q -C N -p P``, in a lossy lab.

    sudo .venv/bin/python tests/bench/bench_count.py [--repeat 5] [--sizes 24,20] [--count 10] [--period-ms 100]

For each size, sweeps a 127.x network inside a network namespace whose
hosts lose echo requests at random by the last octet of their address
(tests/lab.py ``lossy``): octet % 6 == 0 silent, 1 none, 2 1 %, 3 5 %,
4 20 %, 5 50 %. The same loss classes for both tools, in the same run:

* ``ansible localhost -m ansible.builtin.command -a 'fping -q -C N -p P -i 0 -t T -g CIDR'``
  (the reference: fping's count mode, its per-host times on stderr);
* ``ansible localhost -m sysops.fleet.ping_sweep -a 'targets=CIDR count=N spacing=P/1000 timeout=T/1000 rate=0'``
  (method socket, the default result: ``loss_ranges``, and ``stats`` up to list_limit).

Prints the median wall time of each whole command and the ratio ours/fping
(goal: at most 1.2), and per loss class the mean loss each tool measured,
against what the lab configured. Loopback only (inside the namespace).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
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
GOAL = 1.2
LOSS_BY_REMAINDER = {0: 100, 1: 0, 2: 1, 3: 5, 4: 20, 5: 50}  # last octet % 6 -> loss in percent


def lab_losses():
    return {loss: [o for o in range(256) if o % 6 == remainder] for remainder, loss in LOSS_BY_REMAINDER.items()}


def configured(address):
    return LOSS_BY_REMAINDER[int(address.rsplit(".", 1)[1]) % 6]


def run(argv, ns):
    started = time.monotonic()
    proc = subprocess.run(lab.netns_argv(ns, argv), capture_output=True, text=True, env=ENV, cwd=ROOT, check=False)
    return time.monotonic() - started, proc


def adhoc(ns, module, args):
    seconds, proc = run(["ansible", "localhost", "-c", "local", "-i", "localhost,",
                         "-e", f"ansible_python_interpreter={sys.executable}", "-m", module, "-a", args, "-o"], ns)
    return seconds, proc.stdout


def _json_of(line_output):
    """The result of ``ansible ... -o`` ("localhost | SUCCESS => {...}", one line)."""
    return json.loads(line_output[line_output.index("{"):])


def fping(ns, cidr, count, period_ms, timeout_ms):
    argv = f"fping -q -C {count} -p {period_ms} -i 0 -t {timeout_ms} -g {cidr}"
    seconds, out = adhoc(ns, "ansible.builtin.command", argv)
    result = _json_of(out)
    losses = {}
    for line in result.get("stderr_lines", []):
        address, _colon, times = line.partition(" : ")
        values = times.split()
        if address.strip().startswith("127.") and values:
            losses[address.strip()] = 100.0 * sum(1 for v in values if v == "-") / len(values)
    return seconds, losses


def ours(ns, cidr, count, period_ms, timeout_ms):
    args = (f"targets={cidr} count={count} spacing={period_ms / 1000:g} timeout={timeout_ms / 1000:g} rate=0 "
            "method=socket")
    seconds, out = adhoc(ns, "sysops.fleet.ping_sweep", args)
    result = _json_of(out)
    if "stats" in result:
        return seconds, {a: s["loss_pct"] for a, s in result["stats"].items()}
    bounds = {"0": 0.0, "0-1": 0.5, "1-5": 3.0, "5-20": 12.5, "20-50": 35.0, "50-100": 75.0, "100": 100.0}
    losses = {}
    for name, ranges in result["loss_ranges"].items():  # above list_limit: the class, not the exact loss
        for address in _targets.expand(ranges, "loss_ranges", 1 << 20):
            losses[address] = bounds[name]
    return seconds, losses


def by_class(losses):
    """Mean measured loss per configured class."""
    classes = {}
    for address, loss in losses.items():
        classes.setdefault(configured(address), []).append(loss)
    return {c: statistics.mean(v) for c, v in sorted(classes.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="24,20")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--period-ms", type=int, default=100)
    parser.add_argument("--timeout-ms", type=int, default=500)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    rows, classes, over = [], [], []
    with lab.lossy(lab_losses(), prefix="fleetcount") as ns:
        for n, prefix in enumerate(int(s) for s in args.sizes.split(",")):
            cidr = f"127.{120 + n}.0.0/{prefix}"
            tools = {"fping -q -C via ansible.builtin.command": fping, "ansible -m sysops.fleet.ping_sweep count": ours}
            times = {name: [] for name in tools}
            seen = {}
            for _round in range(args.repeat):
                for name, tool in tools.items():
                    seconds, losses = tool(ns, cidr, args.count, args.period_ms, args.timeout_ms)
                    times[name].append(seconds)
                    seen[name] = losses
            base = statistics.median(times["fping -q -C via ansible.builtin.command"])
            for name, values in times.items():
                ratio = statistics.median(values) / base
                rows.append((f"/{prefix}", name, statistics.median(values), ratio, len(seen[name])))
                if name != "fping -q -C via ansible.builtin.command" and ratio > GOAL:
                    over.append(f"/{prefix}: {ratio:.2f}x fping")
            for name in tools:
                classes.append((f"/{prefix}", name, by_class(seen[name])))
    print(f"count {args.count}, period {args.period_ms} ms, timeout {args.timeout_ms} ms; median of {args.repeat} runs; "
          "x fping = whole command / fping through ansible.builtin.command, same run")
    print("| size | command | seconds | x fping | hosts |")
    print("| --- | --- | ---: | ---: | ---: |")
    for size, name, seconds, ratio, hosts in rows:
        print(f"| {size} | {name} | {seconds:.2f} | {ratio:.2f} | {hosts} |")
    print()
    print("mean loss measured per configured class, % (last run; above list_limit ours gives the class only)")
    print("| size | command | " + " | ".join(f"{c} %" for c in sorted(set(LOSS_BY_REMAINDER.values()))) + " |")
    print("| --- | --- |" + " ---: |" * len(LOSS_BY_REMAINDER))
    loss_classes = sorted(set(LOSS_BY_REMAINDER.values()))
    for size, name, means in classes:
        print(f"| {size} | {name} | " + " | ".join(f"{means.get(c, float('nan')):.1f}" for c in loss_classes) + " |")
    for line in over:
        print(f"OVER the goal of {GOAL}x: {line}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
