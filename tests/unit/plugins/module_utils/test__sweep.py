# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sweep end to end on loopback (every 127.x answers), plus its input checks."""

import ipaddress

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _command, _icmp, _sweep, _sweep_options

METHODS = ["ping"] + (["socket"] if _icmp.available((4,)) else [])


def test_small_sweeps_use_fewer_workers(monkeypatch):
    seen = []
    real = _sweep._fanout.fan_out

    def spy(func, tasks, workers, timeout=None, heartbeat=None):
        seen.append(len(tasks))
        return real(func, tasks, workers, timeout, heartbeat)
    monkeypatch.setattr(_sweep._fanout, "fan_out", spy)
    _sweep.sweep(["127.0.0.1-3"], method="ping", workers=8)
    _sweep.sweep(["127.0.1.1-200"], method="ping", workers=8, rate=0)
    assert seen == [1, 4]


def test_deal_spreads_neighbours_over_all_hands():
    assert _sweep.deal(list(range(7)), 3) == [[0, 3, 6], [1, 4], [2, 5]]
    assert _sweep.deal([1], 8) == [[1]]


@pytest.mark.parametrize("method", METHODS)
def test_loopback_sweep_finds_every_host_alive(method):
    result = _sweep.sweep(["127.0.0.1-20"], exclude=["127.0.0.5"], method=method, rate=0)
    expected = ["127.0.0.%d" % i for i in range(1, 21) if i != 5]
    assert result["alive"] == expected
    assert result["dead"] == []
    assert result["summary"]["total"] == 19 and result["summary"]["method"] == method
    assert all(result["hosts"][a]["alive"] and result["hosts"][a]["rtt_ms"] >= 0 for a in expected)


def test_names_are_resolved_and_reported_per_host():
    def dns(name):
        return [ipaddress.ip_address("127.0.0.9")] if name == "lab-host" else []
    result = _sweep.sweep(["lab-host", "no-such-host.invalid", "127.0.0.1"], method="ping", resolver=dns)
    assert result["alive"] == ["127.0.0.1", "127.0.0.9"]
    assert result["hosts"]["127.0.0.9"]["name"] == "lab-host"
    assert result["unresolved"] == ["no-such-host.invalid"]
    assert "does not resolve" in result["hosts"]["no-such-host.invalid"]["error"]


def test_only_unresolvable_names_fail_the_sweep():
    with pytest.raises(_sweep.SweepError, match="no target resolved"):
        _sweep.sweep(["no-such-host.invalid"], resolver=lambda name: [])


def test_everything_excluded_is_an_error():
    with pytest.raises(_sweep.SweepError, match="every target is excluded"):
        _sweep.sweep(["127.0.0.1-3"], exclude=["127.0.0.0/24"])


@pytest.mark.parametrize("kwargs,message", [
    ({"timeout": 0}, "timeout must be more than 0"),
    ({"timeout": 61}, "at most 60"),
    ({"retries": -1}, "retries must be between 0 and 10"),
    ({"rate": -5}, "rate must be 0"),
    ({"rate": float("nan")}, "rate must be 0 \\(no cap\\) or a finite positive number of probes per second, got nan"),
    ({"rate": float("inf")}, "rate must be 0 \\(no cap\\) or a finite positive number of probes per second, got inf"),
    ({"timeout": float("nan")}, "timeout must be more than 0"),
    ({"workers": 0}, "workers must be between 1 and 256"),
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"method": "carrier-pigeon"}, "method must be one of auto, socket, ping"),
])
def test_bad_numbers_are_refused_before_anything_is_sent(kwargs, message):
    looked_up = []
    with pytest.raises(_sweep.SweepError, match=message):
        _sweep.sweep(["127.0.0.1", "web1"], resolver=lambda name: looked_up.append(name) or [], **kwargs)
    if "method" not in kwargs and "concurrency" not in kwargs:
        assert looked_up == [], "bad numbers are refused before any name is looked up"


@pytest.mark.parametrize("targets,rate,message", [
    (["127.0.0.0/24"], 0.01, "rate=0.01 would take about 14.1 hours to send one probe and 1 retry to each of the 254 "
     "addresses"),
    (["127.0.0.1"], 0.0002, "rate=0.0002 would take about 2.8 hours"),
    (["127.0.0.0/22"], 0.2, "would take about 2.8 hours to send one probe and 1 retry to each of the 1022 addresses"),
])
def test_a_rate_that_would_take_hours_is_refused_with_the_estimate(monkeypatch, targets, rate, message):
    monkeypatch.setattr(_sweep._fanout, "fan_out", lambda *a, **k: pytest.fail("nothing may be probed"))
    with pytest.raises(_sweep.SweepError) as refused:
        _sweep.sweep(targets, rate=rate, method="ping")
    assert message in str(refused.value) and "longer than the 1 hour a sweep may take" in str(refused.value)


def test_a_slow_rate_within_the_hour_is_allowed():
    _sweep.check_duration(1700, 1.0)  # one probe and one retry each: 57 minutes
    _sweep.check_duration(10 ** 6, 0.0)  # no cap


PING_OUTPUTS = [
    ("PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n\n--- 127.0.0.1 ping statistics ---\n"
     "1 packets transmitted, 1 received, 0% packet loss, time 0ms\nrtt min/avg/max/mdev = 0.041/0.041/0.041/0.000 ms\n",
     0.041),  # iputils, -q
    ("PING ::1 (::1) 56 data bytes\n\n--- ::1 ping statistics ---\n1 packets transmitted, 1 received, 0% packet loss"
     ", time 0ms\nrtt min/avg/max/mdev = 120.468/120.468/120.468/0.000 ms\n", 120.468),
    ("PING 127.0.0.1 (127.0.0.1): 56 data bytes\n\n--- 127.0.0.1 ping statistics ---\n1 packets transmitted, "
     "1 packets received, 0% packet loss\nround-trip min/avg/max = 0.084/0.084/0.084 ms\n", 0.084),  # BusyBox
    ("round-trip min/avg/max/stddev = 1.250/1.250/1.250/0.000 ms\n", 1.25),  # inetutils
    ("64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.051 ms\n", 0.051),  # without -q
    ("1 packets transmitted, 0 received, 100% packet loss, time 0ms\n", None),
]


@pytest.mark.parametrize("output,rtt", PING_OUTPUTS)
def test_the_round_trip_time_is_read_from_pings_summary(output, rtt):
    assert _sweep.ping_rtt(output) == rtt


def test_method_ping_reports_a_measured_rtt_not_a_constant():
    result = _sweep.sweep(["127.0.0.1-3"], method="ping", rate=0)
    rtts = [result["hosts"][a]["rtt_ms"] for a in result["alive"]]
    assert len(rtts) == 3 and all(isinstance(r, float) and r > 0 for r in rtts), rtts
    # the lab test in tests/unit/plugins/modules/test_ping_sweep.py checks them against known delays


def test_an_excluded_name_that_does_not_resolve_is_in_the_result():
    result = _sweep.sweep(["127.0.0.1"], exclude=["gone.invalid"], method="ping", resolver=lambda name: [])
    assert result["exclude_unresolved"] == ["gone.invalid"] and result["alive"] == ["127.0.0.1"]


def test_missing_ping_binary_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_command, "EXTRA_PATH", ())
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(_command.MissingBinaryError, match="iputils-ping"):
        _sweep.sweep(["127.0.0.1"], method="ping")


def test_auto_falls_back_to_ping_without_socket_permission(monkeypatch):
    monkeypatch.setattr(_icmp, "available", lambda versions=(4,): False)
    assert _sweep.choose_method("auto", [4]) == "ping"
    result = _sweep.sweep(["127.0.0.1"], method="auto")
    assert result["summary"]["method"] == "ping" and result["alive"] == ["127.0.0.1"]


def test_ping_argv_is_a_plain_list_with_the_family_and_timeout():
    assert _sweep.ping_argv("/bin/ping", "::1", 0.5) == ["/bin/ping", "-6", "-n", "-q", "-c", "1", "-W", "0.5", "::1"]
    assert _sweep.ping_argv("/bin/ping", "127.0.0.1", 2.0)[-3:] == ["-W", "2", "127.0.0.1"]


def test_a_crashed_worker_marks_its_addresses_dead_with_the_reason(monkeypatch):
    import os

    def crash(addresses, *args):
        if "127.0.0.2" in addresses:
            os._exit(5)
        return {a: _sweep.Probe(1, [0.1]) for a in addresses}
    monkeypatch.setitem(_sweep._PROBES, "ping", crash)
    monkeypatch.setitem(_sweep_options.MIN_SHARE, "ping", 1)
    result = _sweep.sweep(["127.0.0.1-4"], method="ping", workers=2)
    assert result["alive"] == ["127.0.0.1", "127.0.0.3"]
    assert result["dead"] == ["127.0.0.2", "127.0.0.4"]
    assert "exited with code 5" in result["hosts"]["127.0.0.2"]["error"]
    assert len(result["summary"]["worker_failures"]) == 1
