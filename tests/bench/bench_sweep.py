#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: ping_sweep (socket and ping methods) against fping, in the loopback lab.

    sudo .venv/bin/python tests/bench/bench_sweep.py [--repeat 3] [--sizes 24,20,16]

For each size, sweeps a fresh 127.x network inside a network namespace in
which a third of the hosts are silent (see tests/lab.py), with
``fping -a -q -r 0 -t 1000 -i 0 -g`` and with the collection's sweep at the
same timeout (1 s), no retries and no rate cap. Prints the median wall time
of each whole command, the ratio ours/fping, and whether the alive sets are
identical to fping's and to what the lab makes. Loopback only.
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


def timed(argv):
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode not in (0, 1):  # fping exits 1 when some hosts are unreachable
        raise RuntimeError(f"{argv[3:]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return elapsed, proc.stdout


def fping(ns, cidr):
    elapsed, out = timed(lab.netns_argv(ns, ["fping", "-a", "-q", "-r", "0", "-t", "1000", "-i", "0", "-g", cidr]))
    return elapsed, set(out.split())


def ours(ns, cidr, method):
    argv = lab.netns_argv(ns, [sys.executable, os.path.join(HERE, "sweep_once.py"), "--method", method, cidr])
    elapsed, out = timed(argv)
    return elapsed, set(json.loads(out)["alive"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="24,20,16")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    rows = []
    with lab.lab(prefix="fleetbench") as ns:
        for n, prefix in enumerate(int(s) for s in args.sizes.split(",")):
            cidr = f"127.{100 + n}.0.0/{prefix}"
            expected = lab.expected_alive(cidr)
            tools = [("fping", lambda c: fping(ns, c)), ("socket", lambda c: ours(ns, c, "socket"))]
            if prefix >= PING_METHOD_MAX_PREFIX:
                tools.append(("ping", lambda c: ours(ns, c, "ping")))
            times = {name: [] for name, _ in tools}
            sets = {}
            for _ in range(args.repeat):
                for name, run in tools:
                    elapsed, alive = run(cidr)
                    times[name].append(elapsed)
                    sets[name] = alive
            base = statistics.median(times["fping"])
            for name, _ in tools:
                median = statistics.median(times[name])
                rows.append({
                    "size": f"/{prefix}", "hosts": 2 ** (32 - prefix) - 2, "tool": name,
                    "median_s": round(median, 3), "ratio_vs_fping": round(median / base, 2),
                    "alive": len(sets[name]), "same_as_fping": sets[name] == sets["fping"],
                    "same_as_lab": sets[name] == expected,
                })
    print(f"{'size':>5} {'hosts':>6} {'tool':>7} {'median s':>9} {'x fping':>8} {'alive':>6} {'=fping':>7} {'=lab':>5}")
    for r in rows:
        print(f"{r['size']:>5} {r['hosts']:>6} {r['tool']:>7} {r['median_s']:>9.3f} {r['ratio_vs_fping']:>8.2f} "
              f"{r['alive']:>6} {str(r['same_as_fping']):>7} {str(r['same_as_lab']):>5}")
    print(json.dumps(rows), file=sys.stderr if os.environ.get("BENCH_JSON") is None else open(os.environ["BENCH_JSON"], "w"))
    wrong = [r for r in rows if not (r["same_as_fping"] and r["same_as_lab"])]
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
