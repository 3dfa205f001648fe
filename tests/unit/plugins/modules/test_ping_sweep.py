# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""ping_sweep as Ansible runs it: a separate Python process reading its args as JSON.

The lab tests (root) run it inside a network namespace of their own
(tests/lab.py): one that counts every echo request, to prove that refused
input sent nothing, and one whose hosts answer after known delays, to
prove that both probe methods report real round-trip times.
"""

import json
import os
import shutil
import sys

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _targets
from ansible_collections.sysops.fleet.plugins.modules import ping_sweep

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, TESTS)
import lab  # noqa: E402  pylint: disable=wrong-import-position
import module_runner  # noqa: E402  pylint: disable=wrong-import-position

needs_lab = pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("nft")),
                               reason="the loopback lab needs root, ip and nft")


def run_module(tmp_path, netns=None, **args):
    rc, out, unused_stdout = module_runner.run_module(ping_sweep, tmp_path, netns=netns, **args)
    return rc, out


def test_sweep_of_loopback_reports_alive_hosts_and_is_never_changed(tmp_path):
    rc, out = run_module(tmp_path, targets=["127.0.0.1-4"], method="ping", rate=0)
    assert rc == 0, out
    assert out["changed"] is False
    assert out["alive"] == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert out["summary"]["total"] == 4 and out["summary"]["method"] == "ping"


def test_the_default_result_is_compact_and_details_add_the_hosts(tmp_path):
    rc, out = run_module(tmp_path, targets=["localhost", "127.0.0.2-3"], method="socket", rate=0)
    assert rc == 0, out
    assert "hosts" not in out
    assert out["names"] == {"127.0.0.1": "localhost"} and out["errors"] == {}
    rtt = out["summary"]["rtt_ms"]
    assert 0 < rtt["min"] <= rtt["median"] <= rtt["max"] < 1000
    rc, detailed = run_module(tmp_path, targets=["localhost", "127.0.0.2-3"], method="socket", rate=0, details=True)
    assert rc == 0 and set(detailed["hosts"]) == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    assert detailed["hosts"]["127.0.0.1"]["name"] == "localhost"
    assert all(h["alive"] and h["rtt_ms"] > 0 for h in detailed["hosts"].values())
    compact_size, detailed_size = len(json.dumps(out)), len(json.dumps(detailed))
    assert compact_size < detailed_size


@needs_lab
def test_above_list_limit_only_the_ranges_come_back_and_they_sweep_again_as_they_are(tmp_path):
    cidr = "127.0.0.0/23"
    expected = sorted(lab.expected_alive(cidr), key=lambda a: tuple(int(o) for o in a.split(".")))
    with lab.lab() as ns:
        rc, ranged = run_module(tmp_path, netns=ns, targets=[cidr], rate=0, retries=0, list_limit=509)
        assert rc == 0, ranged
        assert "alive" not in ranged and "dead" not in ranged and ranged["summary"]["listed"] is False
        assert len(ranged["alive_ranges"]) == 2, "one entry per /24"
        assert _targets.expand(ranged["alive_ranges"], "alive_ranges", 1024) == expected
        assert ranged["summary"]["alive"] == len(expected) and ranged["summary"]["total"] == 510
        rc, listed = run_module(tmp_path, netns=ns, targets=[cidr], rate=0, retries=0, list_limit=510)
        assert rc == 0 and listed["summary"]["listed"] is True
        assert listed["alive"] == expected and listed["alive_ranges"] == ranged["alive_ranges"]
        assert _targets.expand(listed["dead_ranges"], "dead_ranges", 1024) == listed["dead"]
        before = lab.echo_requests(ns)
        rc, again = run_module(tmp_path, netns=ns, targets=ranged["alive_ranges"], rate=0, retries=0)
        assert rc == 0 and again["alive"] == expected and again["dead"] == [], again
        assert lab.echo_requests(ns) - before == len(expected), "exactly the alive hosts are probed again"


def test_check_mode_sweeps_as_usual(tmp_path):
    rc, out = run_module(tmp_path, targets=["127.0.0.1"], method="ping", _ansible_check_mode=True)
    assert rc == 0 and out["alive"] == ["127.0.0.1"] and out["changed"] is False


@pytest.mark.parametrize("args,message", [
    ({"targets": ["10.0.0.1;reboot"]}, "contains ';'"),
    ({"targets": ["10.0.0.0/7"]}, "has 33554430 addresses, more than max_hosts=65536"),
    ({"targets": ["0.0.0.0/0"]}, "whole address space"),
    ({"targets": ["127.0.0.1"], "timeout": 0}, "timeout must be more than 0"),
    ({"targets": ["127.0.0.1"], "method": "icmp"}, "value of method must be one of"),
    ({"targets": []}, "at least one"),
])
def test_bad_input_fails_with_a_clear_message(tmp_path, args, message):
    rc, out = run_module(tmp_path, **args)
    assert rc == 1 and out["failed"] is True
    assert message in out["msg"]


# Hostile input: each is refused with its message and not one echo request leaves the sweeper.
HOSTILE = [
    ({"targets": ["0x7f.1"]}, "targets: '0x7f.1' is not a valid address here: inet_aton reads"),
    ({"targets": ["0x7f000001"]}, "reads this shorthand, hexadecimal, octal or single-number form as 127.0.0.1"),
    ({"targets": ["0177.0.0.1"]}, "targets: '0177.0.0.1' is not a valid address here"),
    ({"targets": ["127.1"]}, "write the dotted quad (127.0.0.1) if that is what you mean"),
    ({"targets": ["2130706433"]}, "targets: '2130706433' is not a valid address here"),
    ({"targets": ["127.0.0.1"], "exclude": ["0x7f.0.0.2"]}, "exclude: '0x7f.0.0.2' is not a valid address here"),
    ({"targets": ["web.0x1f"]}, "targets: 'web.0x1f' is not a valid address, CIDR, range or host name"),
    ({"targets": ["127.0.0.1"], "rate": "nan"}, "rate must be 0 (no cap) or a finite positive number"),
    ({"targets": ["127.0.0.1"], "rate": "inf"}, "rate must be 0 (no cap) or a finite positive number"),
    ({"targets": ["127.0.0.1"], "rate": -1}, "rate must be 0 (no cap) or a finite positive number of probes per second, got -1"),
    ({"targets": ["127.0.0.0/24"], "rate": 0.001}, "rate=0.001 would take about 5.9 days to send one probe and 1 "
                                                   "retry to each of the 254 addresses"),
    ({"targets": ["127.0.0.1"], "timeout": "nan"}, "timeout must be more than 0"),
    ({"targets": ["127.0.0.1"], "retries": 11}, "retries must be between 0 and 10"),
    ({"targets": ["127.0.0.1"], "workers": 0}, "workers must be between 1 and 256"),
    ({"targets": ["127.0.0.1"], "concurrency": 0}, "concurrency must be at least 1"),
    ({"targets": ["127.0.0.1;reboot"]}, "contains ';'"),
    ({"targets": ["-f"]}, "targets: '-f' is not a valid address, CIDR, range or host name"),
    ({"targets": ["127.0.0.0/8"]}, "has 16777214 addresses, more than max_hosts=65536"),
    ({"targets": ["127.0.0.1"], "list_limit": -1}, "list_limit must be 0 or more"),
    ({"targets": ["127.0.0.1-3,300"]}, "targets: '127.0.0.1-3,300': the last octet 300 is larger than 255"),
    ({"targets": ["127.0.0.9-3,1"]}, "targets: '127.0.0.9-3,1': 9-3 ends before it starts"),
    ({"targets": ["127.0.0.01,2"]}, "contains ','"),
    ({"targets": ["127.0,1"]}, "'127' is not the first three octets of an IPv4 address"),
    ({"targets": ["127.0.0.1,2;reboot"]}, "contains ',;'"),
    ({"targets": ["localhost,127.0.0.1"]}, "contains ','"),
]


@needs_lab
def test_hostile_input_is_refused_and_sends_no_packet(tmp_path):
    with lab.lab() as ns:
        before = lab.echo_requests(ns)
        rc, out = run_module(tmp_path, netns=ns, targets=["127.0.0.1-4"], method="ping", rate=0, retries=0)
        assert rc == 0 and out["alive"] == ["127.0.0.1", "127.0.0.2", "127.0.0.4"], out
        assert lab.echo_requests(ns) - before == 4, "the counter must see a real sweep, or it proves nothing"
        for args, message in HOSTILE:
            for method in ("ping", "socket"):
                before = lab.echo_requests(ns)
                rc, out = run_module(tmp_path, netns=ns, method=method, **args)
                assert rc == 1 and out["failed"] is True, (args, out)
                assert message in out["msg"], (args, out["msg"])
                assert "alive" not in out and lab.echo_requests(ns) == before, (args, "packets were sent")


SLOW = [  # the hour bound counts what is in flight, and how (one estimate: _sweep_options.SweepOptions.estimate)
    ({"targets": ["127.0.0.0/16"], "method": "ping", "count": 61, "rate": 0, "workers": 2},
     "65534 addresses, 512 at a time (concurrency=256 x 2 worker(s), method=ping), each held 61 s by count=61 at "
     "spacing=1, would take about 2.4 hours, longer than the 1 hour a sweep may take"),  # an outside tester's
    ({"targets": ["127.0.0.0/24"], "method": "socket", "concurrency": 1, "workers": 1, "timeout": 10, "rate": 0},
     "254 addresses, 1 at a time (concurrency=1 x 1 worker(s), method=socket), each held 20 s by timeout=10 with "
     "retries=1, would take about 1.4 hours, longer than the 1 hour a sweep may take: raise concurrency"),
]


@needs_lab
@pytest.mark.parametrize("args,message", SLOW)
def test_a_sweep_that_would_take_hours_is_refused_and_sends_no_packet(tmp_path, args, message):
    with lab.lab() as ns:
        before = lab.echo_requests(ns)
        rc, out = run_module(tmp_path, netns=ns, **args)
        assert rc == 1 and message in out["msg"], out
        assert "alive" not in out and lab.echo_requests(ns) == before, "packets were sent"


def fastest_rtts(tmp_path, ns, targets, method, sweeps=3):
    """Each address's smallest RTT over a few sweeps: a busy machine only ever adds to a round trip."""
    best = {}
    for unused in range(sweeps):
        rc, out = run_module(tmp_path, netns=ns, targets=targets, method=method, rate=0, retries=0, details=True)
        assert rc == 0 and out["summary"]["method"] == method, out
        for address, host in out["hosts"].items():
            if host["rtt_ms"] is not None:
                best[address] = min(best.get(address, host["rtt_ms"]), host["rtt_ms"])
    return best


@needs_lab
@pytest.mark.alone  # times real round trips within 50 ms: beside CI's lanes (ansible-core 2.16's unit run) one took 159 ms
@pytest.mark.parametrize("method", ["ping", "socket"])
def test_both_methods_report_real_round_trip_times(tmp_path, method):
    """Hosts that answer after 10, 80 and 200 ms: a made-up RTT (a constant, 0.0) cannot fall in all three."""
    delays = {"127.0.0.2": 10, "127.0.0.3": 80, "127.0.0.4": 200}
    with lab.delayed(delays) as ns:
        rc, out = run_module(tmp_path, netns=ns, targets=["127.0.0.5"], method=method, timeout=0.5, retries=0)
        assert rc == 0 and out["dead"] == ["127.0.0.5"], "only the responder answers in this lab"
        best = fastest_rtts(tmp_path, ns, list(delays), method)
    for address, delay in delays.items():
        assert delay <= best[address] < delay + 50, (address, delay, best[address])


@pytest.mark.alone  # round-trip times compared
@needs_lab
def test_ping_and_socket_agree_on_the_round_trip_times(tmp_path):
    delays = {"127.0.0.2": 20, "127.0.0.3": 120}
    with lab.delayed(delays) as ns:
        found = {m: fastest_rtts(tmp_path, ns, list(delays), m) for m in ("ping", "socket")}
    for address in delays:
        assert abs(found["ping"][address] - found["socket"][address]) < 50, (address, found)


@needs_lab
def test_an_exclude_name_that_does_not_resolve_is_reported(tmp_path):
    # In the lab namespace (loopback only) the DNS query for the name cannot leave the machine.
    with lab.lab() as ns:
        rc, out = run_module(tmp_path, netns=ns, targets=["127.0.0.1-2"],
                             exclude=["no-such-host.invalid", "127.0.0.2"], method="ping")
    assert rc == 0 and out["alive"] == ["127.0.0.1"], out
    assert out["exclude_unresolved"] == ["no-such-host.invalid"]
    assert "exclude: 'no-such-host.invalid' does not resolve, so it excludes nothing" in json.dumps(out["warnings"])


def test_documentation_lists_every_option_of_the_argument_spec():
    import yaml
    from ansible_collections.sysops.fleet.plugins.doc_fragments import sweep as fragment
    doc = yaml.safe_load(ping_sweep.DOCUMENTATION)
    shared = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(doc["options"]) | set(shared) == {"targets", "exclude", "timeout", "retries", "count", "spacing",
                                                 "method", "workers", "concurrency", "rate", "max_hosts", "details",
                                                 "list_limit"}
    returned = yaml.safe_load(ping_sweep.RETURN)
    assert {"alive", "dead", "alive_ranges", "dead_ranges", "hosts", "summary", "unresolved", "exclude_unresolved",
            "names", "errors", "stats", "loss_ranges"} <= set(returned)
    assert {"listed", "count", "sent", "received", "loss_pct", "host_loss_pct"} <= set(returned["summary"]["contains"])
