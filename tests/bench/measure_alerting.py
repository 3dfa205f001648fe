# SPDX-License-Identifier: GPL-3.0-or-later
"""Measurement: how often a lossy host looks down in one watcher round, and what each alert rule makes of it.

    sudo .venv/bin/python tests/bench/measure_alerting.py [--rounds 50]

The numbers the watcher's defaults were chosen from (docs/watcher.md, "Alerts that do
not cry wolf"). In a lossy lab (tests/lab.py ``lossy``: 200 addresses losing
20 % of their echo requests, 200 losing 50 %), the real sweep runs round
after round for each probe setting (one probe and one retry, the watcher's
old default; one probe and two retries; 2 to 5 probes a round); a round in
which an address answered nothing is "down". For each setting it prints the
measured share of down rounds (against the independent-loss figure loss^n),
and for each alert rule (alert after K down rounds of the last N, clear
after M good ones in a row) the expected number of alert mails (problem and
recovery) in 1,000 rounds and the chance of at least one, computed exactly
(a Markov chain over the last rounds) with the measured share, and counted
by replaying the rule over the recorded rounds. Loopback only.
"""

import argparse
import os
import statistics
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))
import lab  # noqa: E402

SETTINGS = [("1 probe, 1 retry (old default)", 1, 1), ("1 probe, 2 retries", 1, 2), ("2 probes", 2, 0),
            ("3 probes", 3, 0), ("4 probes", 4, 0), ("5 probes", 5, 0)]
RULES = [(1, 1, 1), (2, 3, 2), (3, 3, 2), (3, 5, 2)]  # (K, N, M): the old rule is K=N=M=1
LOSSES = {20: range(1, 101), 50: range(101, 201)}  # loss in percent -> last octets
NETWORKS = ("127.40.0", "127.40.1")


def chain(p, k, n, m, rounds=1000):
    """Exactly: expected mails in *rounds* rounds, and the chance of at least one, for down-rounds at rate *p*."""
    width = max(n, m)
    mask, window, recent = (1 << width) - 1, (1 << n) - 1, (1 << m) - 1
    dist, clean, expected = {(0, False): 1.0}, {(0, False): 1.0}, 0.0
    for _round in range(rounds):
        new, new_clean = defaultdict(float), defaultdict(float)
        for source, target, counting in ((dist, new, True), (clean, new_clean, False)):
            for (bits, alerted), chance in source.items():
                for down, q in ((1, p), (0, 1 - p)):
                    seen = ((bits << 1) | down) & mask
                    now = (bin(seen & window).count("1") >= k) if not alerted else (seen & recent) != 0
                    if now != alerted:
                        if not counting:
                            continue  # absorbed: a mail went out
                        expected += chance * q
                    target[(seen, now)] += chance * q
        dist, clean = new, new_clean
    return expected, 1 - sum(clean.values())


def replay(sequence, k, n, m):
    """Mails the rule sends over one recorded sequence of rounds (True = down)."""
    alerted, mails = False, 0
    for i in range(len(sequence)):
        window, recent = sequence[max(0, i - n + 1):i + 1], sequence[max(0, i - m + 1):i + 1]
        if not alerted and sum(window) >= k:
            alerted, mails = True, mails + 1
        elif alerted and len(recent) == m and not any(recent):
            alerted, mails = False, mails + 1
    return mails


ROUND = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.sysops.fleet.plugins.module_utils import _sweep
count, retries, rounds = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
targets = sys.argv[5:]
out = []
for _ in range(rounds):
    result = _sweep.sweep(targets, count=count, retries=retries, spacing=0.01, timeout=0.2, rate=0, method="socket")
    out.append(sorted(result["dead"]))
print(json.dumps(out))
"""


def record(ns, count, retries, rounds):
    """The set of down addresses in each of *rounds* real sweeps, inside the lab."""
    import json
    import subprocess
    targets = [f"{net}.1-200" for net in NETWORKS]
    proc = subprocess.run(lab.netns_argv(ns, [sys.executable, "-c", ROUND, os.path.join(ROOT, ".build", "collections"),
                                              str(count), str(retries), str(rounds)] + targets),
                          capture_output=True, text=True, check=True)
    return [set(dead) for dead in json.loads(proc.stdout)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    addresses = {loss: [f"{net}.{o}" for net in NETWORKS for o in octets] for loss, octets in LOSSES.items()}
    rows = []
    with lab.lossy({loss: list(octets) for loss, octets in LOSSES.items()}, prefix="fleetalert") as ns:
        for name, count, retries in SETTINGS:
            rounds = record(ns, count, retries, args.rounds)
            for loss, members in addresses.items():
                sequences = [[a in dead for dead in rounds] for a in members]
                measured = statistics.mean(sum(s) / len(s) for s in sequences)
                probes = count if count > 1 else retries + 1
                cells = []
                for k, n, m in RULES:
                    expected, chance = chain(measured, k, n, m)
                    replayed = sum(replay(s, k, n, m) for s in sequences) * 1000 / (len(sequences) * args.rounds)
                    cells.append(f"{expected:.3g} ({chance:.2g}) [{replayed:.3g}]")
                rows.append((name, loss, len(members) * args.rounds, measured, (loss / 100) ** probes, cells))
    print(f"down = no answer at all in a round; {args.rounds} rounds x 200 addresses per loss class.")
    print("Per rule: expected alert mails in 1,000 rounds (chance of at least one) [mails per 1,000 rounds replayed "
          "over the recorded rounds].")
    print("| probes a round | loss | host-rounds | down, measured | loss^probes | "
          + " | ".join(f"K={k} of N={n}, clear M={m}" for k, n, m in RULES) + " |")
    print("| --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(RULES))
    for name, loss, samples, measured, theory, cells in rows:
        print(f"| {name} | {loss} % | {samples} | {measured:.4%} | {theory:.4%} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
