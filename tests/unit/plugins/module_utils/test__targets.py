# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Target parsing and planning: table-driven cases, no network."""

import ipaddress
import os
import random
import re
import shutil
import subprocess
import sys

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _targets

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
import lab  # noqa: E402  pylint: disable=wrong-import-position

VALID = [
    # entry, version, first, last (as text), size
    ("192.0.2.7", 4, "192.0.2.7", "192.0.2.7", 1),
    (" 192.0.2.7 ", 4, "192.0.2.7", "192.0.2.7", 1),
    ("192.0.2.0/24", 4, "192.0.2.1", "192.0.2.254", 254),
    ("192.0.2.5/24", 4, "192.0.2.1", "192.0.2.254", 254),
    ("192.0.2.0/30", 4, "192.0.2.1", "192.0.2.2", 2),
    ("192.0.2.0/31", 4, "192.0.2.0", "192.0.2.1", 2),
    ("192.0.2.9/32", 4, "192.0.2.9", "192.0.2.9", 1),
    ("192.0.2.10-192.0.2.20", 4, "192.0.2.10", "192.0.2.20", 11),
    ("192.0.2.10-20", 4, "192.0.2.10", "192.0.2.20", 11),
    ("192.0.2.250-198.51.100.1", 4, "192.0.2.250", "198.51.100.1", None),
    ("2001:db8::1", 6, "2001:db8::1", "2001:db8::1", 1),
    ("2001:db8::/126", 6, "2001:db8::", "2001:db8::3", 4),
    ("2001:db8::1-2001:db8::a", 6, "2001:db8::1", "2001:db8::a", 10),
]


@pytest.mark.parametrize("entry,version,first,last,size", VALID)
def test_parse_valid_spans(entry, version, first, last, size):
    span = _targets.parse(entry)
    assert isinstance(span, _targets.Span)
    assert span.version == version
    assert span.first == int(ipaddress.ip_address(first))
    assert span.last == int(ipaddress.ip_address(last))
    if size is not None:
        assert span.size == size


@pytest.mark.parametrize("entry,name", [
    ("web-01.example.com", "web-01.example.com"),
    ("LOCALHOST", "localhost"),
    ("db1.example.com.", "db1.example.com"),
    ("host_with_underscore", "host_with_underscore"),
])
def test_parse_names(entry, name):
    assert _targets.parse(entry) == _targets.Name(name)


INVALID = [
    ("10.0.0.1;rm -rf /", "contains"),
    ("$(reboot)", "contains"),
    ("`id`", "contains"),
    ("a|b", "contains"),
    ("10.0.0.1 10.0.0.2", "contains"),
    ("10.0.0.0/0", "whole address space"),
    ("::/0", "whole address space"),
    ("10.0.0.0/33", "not a valid CIDR"),
    ("10.0.0.300", "not a valid address"),
    ("10.0.0", "not a valid address here"),
    ("10.0.0.9-10.0.0.1", "ends before it starts"),
    ("10.0.0.1-300", "larger than 255"),
    ("10.0.0.1-::1", "mixes IPv4 and IPv6"),
    ("10.0.0.1-foo", "not a valid range"),
    ("-leading-dash", "not a valid"),
    ("", "empty entry"),
    ("fe80::zz", "not a valid"),
]


# Numeric forms inet_aton reads (and so getaddrinfo): refused, never looked up as names.
NUMERIC_FORMS = [("0x7f.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
                 ("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f.0.0.0x1", "127.0.0.1"),
                 ("127.0.1", "127.0.0.1"), ("10.0.0", "10.0.0.0"), ("0300.0250.0.1", "192.168.0.1")]


@pytest.mark.parametrize("option", ["targets", "exclude"])
@pytest.mark.parametrize("entry,read_as", NUMERIC_FORMS)
def test_numeric_forms_inet_aton_reads_are_refused_and_never_resolved(entry, read_as, option):
    looked_up = []

    def resolver(name):
        looked_up.append(name)
        return [ipaddress.ip_address("127.0.0.1")]
    targets, exclude = ([entry], []) if option == "targets" else (["127.0.0.1"], [entry])
    with pytest.raises(_targets.TargetError) as refused:
        _targets.plan(targets, exclude, resolver=resolver)
    assert str(refused.value).startswith(f"{option}: {entry!r} is not a valid address here: inet_aton reads")
    assert f"as {read_as}" in str(refused.value)
    assert looked_up == []


@pytest.mark.parametrize("entry", ["web.0x1f", "host.123", "a.b.0X7F"])
def test_a_name_whose_last_label_is_a_number_is_no_name(entry):
    with pytest.raises(_targets.TargetError, match="is not a valid address, CIDR, range or host name"):
        _targets.parse(entry)


def test_an_exclude_name_that_does_not_resolve_is_recorded():
    plan = _targets.plan(["192.0.2.1-3"], exclude=["gone", "192.0.2.2"], resolver=fake_dns({}))
    assert plan.addresses == ["192.0.2.1", "192.0.2.3"]
    assert list(plan.exclude_unresolved) == ["gone"] and "excludes nothing" in plan.exclude_unresolved["gone"]


@pytest.mark.parametrize("entry,message", INVALID)
def test_parse_invalid_entries_say_why(entry, message):
    with pytest.raises(_targets.TargetError) as err:
        _targets.parse(entry)
    assert message in str(err.value)
    assert str(err.value).startswith("targets: ")


def test_max_hosts_refuses_one_large_entry_with_its_size():
    with pytest.raises(_targets.TargetError) as err:
        _targets.parse_all(["10.0.0.0/7"], "targets", max_hosts=65536)
    assert "'10.0.0.0/7' has 33554430 addresses, more than max_hosts=65536" in str(err.value)


def test_max_hosts_counts_all_entries_together():
    with pytest.raises(_targets.TargetError) as err:
        _targets.parse_all(["10.0.0.0/24", "10.0.1.0/24"], "targets", max_hosts=300)
    assert "508 addresses in all, more than max_hosts=300" in str(err.value)
    assert len(_targets.parse_all(["10.0.0.0/24"], "targets", max_hosts=254)) == 1


def fake_dns(table):
    def resolve(name):
        return [ipaddress.ip_address(a) for a in table.get(name, [])]
    return resolve


def test_plan_sorts_dedupes_excludes_and_names():
    dns = fake_dns({"db": ["192.0.2.77"], "gone": [], "web": ["2001:db8::5", "192.0.2.5"]})
    plan = _targets.plan(
        ["192.0.2.0/28", "192.0.2.3", "2001:db8::1", "db", "gone", "192.0.2.10-12"],
        exclude=["192.0.2.0/30", "192.0.2.11", "web"], resolver=dns)
    # /28 hosts are .1-.14; the /30 is excluded whole (.0-.3); .11 too; an excluded
    # name drops every address it resolves to (.5 and 2001:db8::5)
    expected = ["192.0.2.%d" % i for i in range(4, 15) if i not in (5, 11)] + ["192.0.2.77", "2001:db8::1"]
    assert plan.addresses == expected
    assert plan.names == {"192.0.2.77": "db"}
    assert list(plan.unresolved) == ["gone"]


def test_plan_excluding_everything_leaves_nothing():
    plan = _targets.plan(["192.0.2.1-9"], exclude=["192.0.2.0/24"])
    assert plan.addresses == []


def test_plan_overlapping_spans_are_listed_once():
    plan = _targets.plan(["192.0.2.1-5", "192.0.2.3-8", "192.0.2.4"])
    assert plan.addresses == ["192.0.2.%d" % i for i in range(1, 9)]


def test_plan_needs_targets_and_positive_max_hosts():
    with pytest.raises(_targets.TargetError, match="at least one"):
        _targets.plan([])
    with pytest.raises(_targets.TargetError, match="max_hosts must be at least 1"):
        _targets.plan(["192.0.2.1"], max_hosts=0)


def test_plan_of_a_slash_16_matches_ipaddress_hosts():
    plan = _targets.plan(["10.9.0.0/16"])
    hosts = [str(a) for a in ipaddress.ip_network("10.9.0.0/16").hosts()]
    assert plan.addresses == hosts


def test_excluded_runs_skip_whole_excluded_stretches():
    excluded = _targets._Excluded([(4, 10, 19), (4, 30, 39), (4, 35, 50)])
    assert list(excluded.runs(4, 0, 60)) == [(0, 9), (20, 29), (51, 60)]
    assert list(excluded.runs(4, 12, 33)) == [(20, 29)]
    assert list(excluded.runs(4, 40, 45)) == []
    assert list(excluded.runs(6, 1, 3)) == [(1, 3)]


def test_resolve_name_uses_the_real_resolver_for_localhost():
    found = _targets.resolve_name("localhost")  # /etc/hosts: no DNS query
    assert ipaddress.ip_address("127.0.0.1") in found or ipaddress.ip_address("::1") in found


@pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("nft")),
                    reason="the loopback lab needs root, ip and nft")
def test_a_name_that_does_not_resolve_gives_no_address():
    # Looked up inside the lab namespace (loopback only), so the DNS query for it cannot leave the machine.
    code = ("import sys; sys.path[:0] = sys.argv[1:]; "
            "from ansible_collections.sysops.fleet.plugins.module_utils import _targets; "
            "print(_targets.resolve_name('no-such-host.invalid'))")
    with lab.lab() as ns:
        root = os.path.abspath(os.path.join(os.path.dirname(_targets.__file__), *[".."] * 5))  # above ansible_collections
        proc = subprocess.run(lab.netns_argv(ns, [sys.executable, "-c", code, root]),
                              capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc


OCTET_LISTS = [
    ("192.0.2.1-5,9", ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.9"]),
    ("192.0.2.9,1-2,2", ["192.0.2.1", "192.0.2.2", "192.0.2.9"]),
    ("10.0.0.0,255", ["10.0.0.0", "10.0.0.255"]),
]


@pytest.mark.parametrize("entry,addresses", OCTET_LISTS)
def test_octet_lists_stand_for_their_addresses(entry, addresses):
    assert _targets.plan([entry]).addresses == addresses
    assert _targets.expand([entry], "x", 300) == addresses


HOSTILE_OCTET_LISTS = [
    ("192.0.2.1-3,256", "'192.0.2.1-3,256': the last octet 256 is larger than 255"),
    ("192.0.2.9-3,1", "'192.0.2.9-3,1': 9-3 ends before it starts"),
    ("192.0.2.010,1", "contains ','"),  # no leading zeros: octal to some tools
    ("192.0.2.1,", "contains ','"),
    ("192.0.2,1", "'192.0' is not the first three octets of an IPv4 address"),
    ("999.0.2.1,2", "'999.0.2' is not the first three octets of an IPv4 address"),
    ("0x7f.0.0.1,2", "contains ','"),
    ("2001:db8::1,2", "contains ','"),
    ("192.0.2.1,2;reboot", "contains ',;'"),
]


@pytest.mark.parametrize("entry,message", HOSTILE_OCTET_LISTS)
def test_hostile_octet_lists_are_refused(entry, message):
    with pytest.raises(_targets.TargetError, match=re.escape(message)):
        _targets.plan([entry], resolver=_no_lookup)


def _no_lookup(name):
    raise AssertionError(f"{name!r} must be refused, never looked up")


def test_compact_writes_one_entry_per_slash24_and_reads_back_exactly():
    rng = random.Random(12)
    for _round in range(50):
        values = rng.sample(range(int(ipaddress.ip_address("10.1.0.0")), int(ipaddress.ip_address("10.1.4.0"))),
                            rng.randint(1, 900))
        six = [str(ipaddress.ip_address("2001:db8::") + rng.randint(0, 40)) for _n in range(rng.randint(0, 5))]
        addresses = [str(ipaddress.ip_address(v)) for v in values] + six
        entries = _targets.compact(addresses)
        want = sorted(set(addresses), key=lambda a: (":" in a, int(ipaddress.ip_address(a))))
        assert _targets.expand(entries, "x", 10000) == want
        assert _targets.compact(want) == entries, "compact is independent of order and duplicates"
        assert len([e for e in entries if ":" not in e]) == len({v >> 8 for v in values})


def test_compact_forms():
    assert _targets.compact(["192.0.2.7"]) == ["192.0.2.7"]
    assert _targets.compact(["192.0.2.7", "192.0.2.8"]) == ["192.0.2.7-8"]
    assert _targets.compact(["192.0.2.9", "192.0.2.7", "192.0.2.8", "192.0.2.1"]) == ["192.0.2.1,7-9"]
    assert _targets.compact(["10.0.0.255", "9.0.0.1"]) == ["9.0.0.1", "10.0.0.255"]
    assert _targets.compact(["2001:db8::2", "2001:db8::1", "2001:db8::9"]) == ["2001:db8::1-2001:db8::2", "2001:db8::9"]
    assert _targets.compact([]) == []


def test_expand_refuses_names_and_too_much():
    with pytest.raises(_targets.TargetError, match="'web1' is a host name"):
        _targets.expand(["web1"], "alive_ranges", 10)
    with pytest.raises(_targets.TargetError, match="more than max_hosts=10"):
        _targets.expand(["10.0.0.1-5,7-20"], "alive_ranges", 10)
