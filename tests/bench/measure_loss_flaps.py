# SPDX-License-Identifier: GPL-3.0-or-later
"""Measurement: how often a watched host's loss level changes, with the real judging code, before and after.

    .venv/bin/python tests/bench/measure_loss_flaps.py [--collections DIR] [--rounds 20000]

The real ``Watcher`` of the collection found under DIR (default: this checkout's ``.build/collections``;
give an older checkout's to measure it) is fed simulated rounds of one host whose probes are each lost
with probability p (Bernoulli): the sweep is the only part replaced. It prints, for each setting and loss,
the level changes (each one an alert mail) per 1,000 rounds and per day at interval 60 s. Settings the
watcher refuses are printed with its message. Sends nothing anywhere.
"""

import argparse
import os
import random
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
HOST = "127.0.0.2"
# (count, window, loss_warn, loss_crit): the watcher's defaults (count 4, window 5) with the tester's thresholds,
# and the smallest windows the loss judge accepts at count 4.
SETTINGS = [(4, 5, 20, None), (4, 5, 25, None), (4, 5, 5, None), (4, 38, 20, None), (4, 30, 25, None),
            (10, 60, 5, None), (4, 38, 20, 50)]
LOSSES = (0.01, 0.05, 0.10, 0.20, 0.40)


def measure(watcher_module, count, window, warn, crit, p, rounds, seed):
    """Level changes over *rounds* rounds, or the watcher's refusal."""
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, "lib"))
        path = os.path.join(tmp, "watcher.ini")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(textwrap.dedent(f"""\
                [watcher]
                pidfile = {tmp}/w.pid
                log_file = {tmp}/w.log
                state_dir = {tmp}/lib
                [hosts]
                watch = {HOST}
                count = {count}
                window = {window}
                loss_warn = {warn}
                """) + (f"loss_crit = {crit}\n" if crit else ""))
        try:
            settings = watcher_module.load_settings(path)
        except watcher_module.WatcherConfigError as exc:
            return str(exc)
        rng = random.Random(seed)
        queue = []

        def sweeper(targets, **options):
            received = queue.pop()
            return {"hosts": {HOST: {"alive": received > 0, "sent": count, "received": received,
                                     "rtt_ms": 0.05 if received else None, "rtts_ms": [0.05] * received}}}

        watcher = watcher_module.Watcher(settings, sweeper=sweeper)
        changes = 0
        for number in range(rounds):
            queue.append(sum(rng.random() >= p for _probe in range(count)))
            changes += len(watcher.check_hosts(1000.0 + number))
        return changes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", default=os.path.join(ROOT, ".build", "collections"))
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    sys.path.insert(0, args.collections)
    from ansible_collections.sysops.fleet.plugins.module_utils import _watcher  # pylint: disable=import-outside-toplevel
    print(f"collection: {os.path.realpath(os.path.join(args.collections, 'ansible_collections', 'sysops', 'fleet'))}")
    print(f"{args.rounds} rounds each; changes per 1,000 rounds [per day at interval 60 s]")
    print("| count | window | loss_warn | loss_crit | " + " | ".join(f"loss {p:.0%}" for p in LOSSES) + " |")
    print("| ---: | ---: | ---: | ---: | " + " | ".join("---:" for _loss in LOSSES) + " |")
    for count, window, warn, crit in SETTINGS:
        cells = []
        for index, p in enumerate(LOSSES):
            found = measure(_watcher, count, window, warn, crit, p, args.rounds, 1000 + index)
            if isinstance(found, str):
                cells = [f"refused: {found}"]
                break
            cells.append(f"{1000.0 * found / args.rounds:.2f} [{1440.0 * found / args.rounds:.1f}]")
        print(f"| {count} | {window} | {warn} | {crit or '-'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
