# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sweep's estimate is an upper bound of its real duration in the worst case (an outside tester's finding on
issue 20): every address silent, every retry spent through the rate cap. The estimate took the largest of its
bounds and left retries out of the rate's, so a round estimated at 6 s took 66 s and the watchdog (2 x the
estimate + 5 s) stopped at 17 s, in the very outage the daemon must report.

Real sweeps (both methods, one probe with retries and count mode, rate caps, one probe in flight) of loopback
addresses that a network namespace made by the test silences (tests/lab.py: nftables drops the echo requests
of last octets divisible by 3), run inside that namespace; the measured time of the whole ``sweep()`` call must
not exceed ``SweepOptions.estimate``.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _sweep_options

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "..")))
import lab  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(_sweep_options.__file__), "..", "..", "..", "..", ".."))

needs_lab = pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("nft")),
                               reason="the loopback lab needs root, ip and nft")

SILENT = [f"127.0.9.{octet}" for octet in (3, 6, 9, 12, 15, 18)]  # last octet % 3 == 0: dropped by the lab
ANSWERING = ["127.0.9.1", "127.0.9.2"]

# The child: one sweep, timed as a whole, and the estimate for the addresses it swept.
CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.sysops.fleet.plugins.module_utils import _sweep, _sweep_options
options = json.loads(sys.argv[2])
started = time.monotonic()
result = _sweep.sweep(**options)
elapsed = time.monotonic() - started
given = {k: v for k, v in options.items() if k not in ("targets", "exclude")}
estimate = _sweep_options.SweepOptions(**given).estimate(len(result["alive"]) + len(result["dead"]), options["method"])
json.dump({"elapsed": elapsed, "estimate": estimate.seconds, "alive": result["alive"], "dead": result["dead"]},
          sys.stdout)
"""

CASES = [  # options; targets are the silent addresses unless given
    {"method": "socket", "retries": 10, "timeout": 0.1, "rate": 10},       # the tester's shape: 66 probes at 10/s
    {"method": "socket", "retries": 3, "timeout": 0.2, "rate": 20},
    {"method": "ping", "retries": 2, "timeout": 0.5, "rate": 10},
    {"method": "ping", "retries": 1, "timeout": 0.3, "rate": 0, "workers": 1, "concurrency": 1},
    {"method": "socket", "retries": 1, "timeout": 0.3, "rate": 0, "workers": 1, "concurrency": 1},
    {"method": "socket", "count": 3, "spacing": 0.1, "timeout": 0.3, "rate": 5},
    {"method": "ping", "count": 3, "spacing": 0.2, "timeout": 0.5, "rate": 4},
    {"method": "socket", "retries": 2, "timeout": 0.2, "rate": 5, "targets": SILENT + ANSWERING},
    {"method": "socket", "retries": 4, "timeout": 0.2, "rate": 10, "targets": ["127.0.9.0/28"],
     "exclude": ["127.0.9.8-14"]},
    # rate=0: the machine's own pace is the bound (an outside tester: a /16 of 8 probes each estimated 0.52 s, 23 s)
    {"method": "socket", "count": 8, "spacing": 0.01, "timeout": 0.2, "rate": 0, "targets": ["127.0.64.0/18"]},
]


@needs_lab
@pytest.mark.parametrize("options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items() if k != "targets"))
def test_a_real_sweep_of_silent_addresses_never_outlasts_its_estimate(options):
    options = dict(options)
    options.setdefault("targets", SILENT)
    with lab.lab() as ns:
        proc = subprocess.run(lab.netns_argv(ns, [sys.executable, "-c", CHILD, COLLECTIONS, json.dumps(options)]),
                              capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert set(found["dead"]) >= set(options["targets"]) & set(SILENT), "the lab must silence them, or it proves nothing"
    assert found["elapsed"] <= found["estimate"], (options, found)
