# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sweep end to end on loopback (every 127.x answers), plus its input checks."""

import ipaddress

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _command, _icmp, _sweep

METHODS = ["ping"] + (["socket"] if _icmp.available((4,)) else [])


def test_small_sweeps_use_fewer_workers(monkeypatch):
    seen = []
    real = _sweep._fanout.fan_out

    def spy(func, tasks, workers, timeout=None):
        seen.append(len(tasks))
        return real(func, tasks, workers, timeout)
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
    ({"workers": 0}, "workers must be between 1 and 256"),
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"method": "carrier-pigeon"}, "method must be one of auto, socket, ping"),
])
def test_bad_numbers_are_refused_before_anything_is_sent(kwargs, message):
    with pytest.raises(_sweep.SweepError, match=message):
        _sweep.sweep(["127.0.0.1"], **kwargs)


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
        return {a: (0.1, "") for a in addresses}
    monkeypatch.setitem(_sweep._PROBES, "ping", crash)
    monkeypatch.setitem(_sweep.MIN_SHARE, "ping", 1)
    result = _sweep.sweep(["127.0.0.1-4"], method="ping", workers=2)
    assert result["alive"] == ["127.0.0.1", "127.0.0.3"]
    assert result["dead"] == ["127.0.0.2", "127.0.0.4"]
    assert "exited with code 5" in result["hosts"]["127.0.0.2"]["error"]
    assert len(result["summary"]["worker_failures"]) == 1
