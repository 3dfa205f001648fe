# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the synthetic 30-day disk-use traces the fill-forecast tests read (seeded: the same files every time).

    python make_traces.py [DIRECTORY]

One sample every 15 minutes (the watcher's default), as ``seconds,used_bytes,avail_bytes`` with seconds from
the start. What each trace is, and the truth the tests hold the forecast to:

* ``steady.csv``: 100 GiB, 40 GiB used, +1 GiB a day, 20 MiB of noise: full on day 60 (the forecast must be
  within 10 % of the days left once it has 24 hours of history).
* ``nightly_tmp.csv``: 100 GiB, 50 GiB used, +0.1 GiB a day; every night from 02:00 to 03:30 a batch job
  writes 25-35 GiB of temporary files and deletes them: full in about 500 days, never within one.
* ``logrotate.csv``: 40 GiB, 28 GiB used and +0.05 GiB a day; logs grow 8 GiB a day and are rotated away at
  06:00: the peaks fill it in about 80 days.
* ``upgrade.csv``: 80 GiB, 60 GiB used and flat; a package upgrade adds 10 GiB on day 12 at 14:00 (within 20
  minutes) and 2 GiB on day 20: never full.
* ``tmpfs.csv``: a 4 GiB tmpfs at 150 MiB; about six times a day something puts 0.5-3 GiB in it for 15 to 120
  minutes (never more than 3.9 GiB in all): never full.
"""

import csv
import os
import random
import sys

GIB = 1 << 30
MIB = 1 << 20
DAY = 86400
STEP = 900
DAYS = 30


def steady(rng, t):
    return 100 * GIB, 40 * GIB + GIB * t / DAY + rng.gauss(0, 20 * MIB)


NIGHTS = {}  # day -> the size of that night's temporary files, drawn once
TMPFS_BURSTS = []  # (start, end, size), drawn once


def nightly_tmp(rng, t, nights=None):
    day, clock = divmod(t, DAY)
    extra = 0.0
    if 2 * 3600 <= clock < 3.5 * 3600:
        extra = (NIGHTS if nights is None else nights).setdefault(day, rng.uniform(25, 35) * GIB)
    return 100 * GIB, 50 * GIB + 0.1 * GIB * t / DAY + extra + rng.gauss(0, 10 * MIB)


def logrotate(rng, t):
    since_rotation = (t - 6 * 3600) % DAY
    return 40 * GIB, 28 * GIB + 0.05 * GIB * t / DAY + 8 * GIB * since_rotation / DAY + rng.gauss(0, 5 * MIB)


def upgrade(rng, t):
    used = 60 * GIB
    first, second = 12 * DAY + 14 * 3600, 20 * DAY + 9 * 3600
    used += 10 * GIB * min(1.0, max(0.0, (t - first) / 1200))
    used += 2 * GIB * min(1.0, max(0.0, (t - second) / 600))
    return 80 * GIB, used + rng.gauss(0, 5 * MIB)


def tmpfs_bursts(rng):
    bursts, t = [], 0.0
    while t < DAYS * DAY:
        t += rng.expovariate(6 / DAY)
        bursts.append((t, t + rng.uniform(15, 120) * 60, rng.uniform(0.5, 3.0) * GIB))
    return bursts


def tmpfs(rng, t, bursts=None):
    bursts = TMPFS_BURSTS if bursts is None else bursts
    if not bursts:
        bursts.extend(tmpfs_bursts(random.Random(2020)))
    used = 150 * MIB + sum(size for start, end, size in bursts if start <= t < end)
    return 4 * GIB, min(3.9 * GIB, used) + abs(rng.gauss(0, 1 * MIB))


TRACES = {"steady": steady, "nightly_tmp": nightly_tmp, "logrotate": logrotate, "upgrade": upgrade, "tmpfs": tmpfs}


def main() -> int:
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for seed, (name, shape) in enumerate(sorted(TRACES.items())):
        rng = random.Random(seed)
        with open(os.path.join(directory, f"{name}.csv"), "w", newline="", encoding="ascii") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(["seconds", "used_bytes", "avail_bytes"])
            for t in range(0, DAYS * DAY, STEP):
                size, used = shape(rng, t)
                used = int(min(size, max(0, used)))
                out.writerow([t, used, size - used])
    return 0


if __name__ == "__main__":
    sys.exit(main())
