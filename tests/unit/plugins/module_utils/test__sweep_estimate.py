# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sweep's one estimate of its duration (``SweepOptions.estimate``): rate, count x spacing, timeout and retries,
the probes in flight (concurrency x workers) and method=ping's process per address, summed (an upper bound: the
real sweeps are test__sweep_duration.py's). The module's and the inventory's hour bound and the watcher's round
against its interval all use it; a table of settings accepted and refused, with the message each gets (an outside
tester's /16 by method=ping at count 61 passed the hour bound and would have taken hours; another's 6 silent
addresses with 10 retries at rate 1 were estimated at 6 s and took 66 s; ``exclude`` was not counted)."""

import textwrap

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _sweep, _sweep_options, _watcher

S = _sweep_options.SweepOptions
HOUR = "longer than the 1 hour a sweep may take"

TABLE = [  # options, addresses, method, None (accepted) or the message
    (S(), 254, "socket", None),
    (S(), 65534, "socket", None),                  # a /16 at the default rate, all silent and retried: 2.2 min
    (S(count=4), 254, "ping", None),
    (S(method="ping", rate=0, workers=2), 65534, "ping", None),          # one probe: 128 turns of 2 s, 4.3 min
    (S(count=61, rate=0, workers=2), 65534, "socket", None),              # all in flight at once: a minute
    (S(count=61, rate=0, workers=2), 65534, "ping",
     "65534 addresses, 512 at a time (concurrency=256 x 2 worker(s), method=ping), each held 61 s by count=61 at "
     "spacing=1, would take about 2.4 hours, " + HOUR + ": raise concurrency (or workers), lower count or spacing, "
     "or sweep fewer addresses"),
    (S(count=61, rate=0, workers=2, concurrency=2048), 65534, "ping", None),   # 16 turns of 61 s
    (S(rate=0, workers=1, concurrency=1, timeout=5), 1000, "socket",
     "1000 addresses, 1 at a time (concurrency=1 x 1 worker(s), method=socket), each held 10 s by timeout=5 with "
     "retries=1, would take about 2.8 hours, " + HOUR + ": raise concurrency (or workers), lower timeout or retries, or sweep fewer addresses"),
    (S(rate=0, workers=1, concurrency=65536, count=2, spacing=0.002, timeout=0.01), 4000, "ping", None),
    (S(rate=0, workers=1, concurrency=10 ** 6), 10 ** 6 * 2, "ping",
     "method=ping starts a ping process for each of the 2000000 addresses and retry, on 1 worker(s): that would "
     "take about 22.2 hours, " + HOUR + ": use method=socket (or auto where ICMP sockets may be opened) or sweep fewer addresses"),
    (S(rate=0.01), 254, "socket", "rate=0.01 would take about 14.1 hours to send one probe and 1 retry to each "
     "of the 254 addresses, " + HOUR + ": raise rate (0 for no cap) or sweep fewer addresses"),
    (S(count=100, spacing=60), 1, "socket", "count=100 at spacing=60 would take about 1.7 hours (the last timeout "
     "included), " + HOUR + ": lower count or spacing"),
]


@pytest.mark.parametrize("options,addresses,method,message", TABLE)
def test_the_hour_bound_counts_what_is_in_flight_and_how(options, addresses, method, message):
    if message is None:
        options.check_size(addresses, method)
        assert options.estimate(addresses, method).seconds <= _sweep_options.MAX_SEND_SECONDS
        return
    with pytest.raises(_sweep_options.SweepError) as refused:
        options.check_size(addresses, method)
    assert str(refused.value) == message


def test_the_testers_sweep_is_refused_before_anything_is_probed(monkeypatch):
    """Through the sweep itself (what ping_sweep and the inventory call): nothing reaches the workers."""
    monkeypatch.setattr(_sweep._fanout, "fan_out", lambda *a, **k: pytest.fail("nothing may be probed"))
    with pytest.raises(_sweep.SweepError, match="method=ping.*would take about 2.4 hours, " + HOUR):
        _sweep.sweep(["127.0.0.0/16"], method="ping", count=61, rate=0, workers=2)


def load(tmp_path, body, interval="60"):
    path = tmp_path / "watcher.ini"
    path.write_text(textwrap.dedent(f"""
        [watcher]
        interval = {interval}
        pidfile = {tmp_path}/w.pid
        log_file = {tmp_path}/w.log
        state_dir = {tmp_path}/lib
        [hosts]
        """) + textwrap.dedent(body))
    return _watcher.load_settings(str(path))


ROUNDS = [  # [hosts] body, interval, None (accepted) or the message
    ("watch = 127.0.0.1\n", "60", None),                                   # the defaults: 5 s of 60
    ("watch = 127.0.0.1\ncount = 20\nspacing = 2\n", "60", None),           # 39 s
    ("watch = 127.0.0.1\ncount = 20\nspacing = 10\n", "60",
     "[hosts] count=20 at spacing=10 would take about 3.2 minutes (the last timeout included): not less than "
     "[watcher] interval = 60 s, so every round would run into the next (and outlast a systemd watchdog). Lower "
     "count or spacing, or raise interval"),
    ("watch = 127.0.0.1\n", "4",
     "[hosts] count=4 at spacing=1 would take about 5 seconds (the last timeout included): not less than [watcher] "
     "interval = 4 s"),
    ("watch = 127.0.0.1\ncount = 1\ntimeout = 10\nretries = 2\n", "30",
     "[hosts] timeout=10 with retries=2 would take about 31 seconds (the last timeout included): not less than "
     "[watcher] interval = 30 s, so every round would run into the next (and outlast a systemd watchdog). Lower "
     "timeout or retries, or raise interval"),
    ("watch = 127.0.0.0/22\nmethod = ping\nconcurrency = 1\nworkers = 1\ncount = 2\nspacing = 0.1\ntimeout = 0.5\n",
     "120", "[hosts] 1022 addresses, 1 at a time (concurrency=1 x 1 worker(s), method=ping), each held 0.6 s by "
     "count=2 at spacing=0.1, would take about 10.6 minutes: not less than [watcher] interval = 120 s"),
    ("watch = 127.0.0.0/16\nmethod = ping\ncount = 61\nrate = 0\nworkers = 2\n", "86400",
     "[hosts] 65534 addresses, 512 at a time (concurrency=256 x 2 worker(s), method=ping), each held 61 s by "
     "count=61 at spacing=1, would take about 2.4 hours, " + HOUR),
    ("watch = 127.0.0.0/16\ncount = 61\nrate = 0\nworkers = 2\n", "600", None),      # auto counts as socket
    ("watch = db1.example db2.example\ncount = 10\nspacing = 1\n", "10",
     "[hosts] count=10 at spacing=1 would take about 11 seconds"),                 # names count as addresses
    # an outside tester's: 6 silent addresses, 10 retries each through rate = 1 took 66 s, estimated at 6 s
    ("watch = 127.0.0.2-7\ncount = 1\nretries = 10\ntimeout = 0.5\nrate = 1\n", "10",
     "[hosts] rate=1 would take about 1.2 minutes to send one probe and 10 retries to each of the 6 addresses: not "
     "less than [watcher] interval = 10 s, so every round would run into the next (and outlast a systemd watchdog). "
     "Raise rate (0 for no cap) or sweep fewer addresses, or raise interval"),
    ("watch = 127.0.0.0/16\ncount = 1\nretries = 0\n", "60",
     "[hosts] rate=1000 would take about 1.1 minutes to send one probe to each of the 65534 addresses"),
    ("watch = 127.0.0.0/16\nexclude = 127.0.0.0/17\ncount = 1\nretries = 0\n", "60", None),  # half of it: 35 s
]


@pytest.mark.parametrize("body,interval,message", ROUNDS)
def test_a_round_that_would_not_end_before_the_next_is_refused(tmp_path, body, interval, message):
    if message is None:
        found = load(tmp_path, body, interval)
        assert found.sweep_seconds() < found.interval
        return
    with pytest.raises(_watcher.WatcherConfigError) as refused:
        load(tmp_path, body, interval)
    assert str(refused.value).startswith(message), str(refused.value)
