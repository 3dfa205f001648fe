# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: ping_sweep (socket and ping methods) against fping, in the loopback lab.

    sudo .venv/bin/python tests/bench/bench_sweep.py [--repeat 3] [--sizes 24,20,16]

For each size, sweeps a fresh 127.x network inside a network namespace in
which a third of the hosts are silent (see tests/lab.py), with
``fping -a -q -r 0 -t 1000 -i 0 -g`` and with the collection's sweep at the
same timeout (1 s), no retries and no rate cap. Prints the median wall time
of each whole command, the ratio ours/fping, and whether the alive sets are
identical to fping's and to what the lab makes. For method=ping it also
measures the process-spawn floor (sweep_once.py --floor) and prints ping/floor
against the goal of 1.2. Loopback only.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import lab  # noqa: E402

PING_METHOD_MAX_PREFIX = 20  # 65534 ping processes per run would only measure fork()
FLOOR = "ping floor"  # method=ping with true/sleep spawned in place of ping (sweep_once.py --floor)
PING_FLOOR_GOAL = 1.2
CHILD_CPU = {}  # (cidr, method, floor) -> CPU seconds of the workers and their children, per run


def timed(argv):
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode not in (0, 1):  # fping exits 1 when some hosts are unreachable
        raise RuntimeError(f"{argv[3:]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return elapsed, proc.stdout


def fping(ns, cidr):
    elapsed, out = timed(lab.netns_argv(ns, ["fping", "-a", "-q", "-r", "0", "-t", "1000", "-i", "0", "-g", cidr]))
    return elapsed, elapsed, set(out.split())


def ours(ns, cidr, method, floor=False):
    """(sweep seconds as the module reports them, whole command seconds, alive set)."""
    argv = [sys.executable, os.path.join(HERE, "sweep_once.py"), "--method", method] + (["--floor"] if floor else [])
    elapsed, out = timed(lab.netns_argv(ns, argv + [cidr]))
    data = json.loads(out)
    CHILD_CPU.setdefault((cidr, method, floor), []).append(data["children_cpu_s"])
    return data["elapsed_s"], elapsed, set(data["alive"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="24,20,16")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    rows, floors = [], []
    with lab.lab(prefix="fleetbench") as ns:
        for n, prefix in enumerate(int(s) for s in args.sizes.split(",")):
            cidr = f"127.{100 + n}.0.0/{prefix}"
            expected = lab.expected_alive(cidr)
            tools = [("fping", lambda c: fping(ns, c)), ("socket", lambda c: ours(ns, c, "socket"))]
            if prefix >= PING_METHOD_MAX_PREFIX:
                tools.append(("ping", lambda c: ours(ns, c, "ping")))
                tools.append((FLOOR, lambda c: ours(ns, c, "ping", floor=True)))
            sweeps = {name: [] for name, _run in tools}
            commands = {name: [] for name, _run in tools}
            sets = {}
            for _round in range(args.repeat):
                for name, run in tools:
                    sweep_s, command_s, alive = run(cidr)
                    sweeps[name].append(sweep_s)
                    commands[name].append(command_s)
                    sets[name] = alive
            base = statistics.median(commands["fping"])
            for name, _run in tools:
                sweep_s, command_s = statistics.median(sweeps[name]), statistics.median(commands[name])
                rows.append({
                    "size": f"/{prefix}", "hosts": 2 ** (32 - prefix) - 2, "tool": name,
                    "sweep_s": round(sweep_s, 3), "command_s": round(command_s, 3),
                    "sweep_x_fping": round(sweep_s / base, 2), "command_x_fping": round(command_s / base, 2),
                    "alive": len(sets[name]), "same_as_fping": sets[name] == sets["fping"],
                    "same_as_lab": sets[name] == expected or name == FLOOR,  # the floor's stand-ins all exit 0
                })
            if FLOOR in commands:
                cpu = [statistics.median(CHILD_CPU[(cidr, "ping", floor)]) for floor in (False, True)]
                floors.append((prefix, statistics.median(commands["ping"]), statistics.median(commands[FLOOR]),
                               (cpu[0] - cpu[1]) / (2 ** (32 - prefix) - 2) * 1000))
    print("| size | hosts | tool | sweep s | x fping | command s | x fping | alive | = fping | = lab |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        print(f"| {r['size']} | {r['hosts']} | {r['tool']} | {r['sweep_s']:.3f} | {r['sweep_x_fping']:.2f} | "
              f"{r['command_s']:.3f} | {r['command_x_fping']:.2f} | {r['alive']} | {r['same_as_fping']} | {r['same_as_lab']} |")
    for prefix, ping_s, floor_s, extra_ms in floors:
        ratio = ping_s / floor_s
        print(f"method=ping /{prefix}: {ping_s:.2f} s, its process-spawn floor {floor_s:.2f} s: {ratio:.2f}x "
              f"(goal <= {PING_FLOOR_GOAL}) {'ok' if ratio <= PING_FLOOR_GOAL else 'OVER'}; "
              f"ping's own CPU beyond true's: {extra_ms:.2f} ms per address "
              f"({extra_ms * 2 ** (32 - prefix) / 1000 / (os.cpu_count() or 1):.2f} s over {os.cpu_count()} cores)")
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as out:
            json.dump(rows, out, indent=1)
    wrong = [r for r in rows if r["tool"] != FLOOR and not (r["same_as_fping"] and r["same_as_lab"])]
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
