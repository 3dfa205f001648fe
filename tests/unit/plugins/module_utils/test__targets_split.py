# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Last octets given as one string: ``targets: 127.0.0.1-5,9`` means six addresses.

A ``list`` option splits a string at its commas, so the core receives
``["127.0.0.1-5", "9"]``; ``_targets.rejoin`` puts the pieces that are last octets
alone back on the IPv4 entry before them. A piece with no such entry is refused with
where it belongs (it used to be taken for the inet_aton form of 0.0.0.9, with the advice
to "write the dotted quad (0.0.0.9)").
"""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _sweep, _targets


def no_lookup(name):
    raise AssertionError(f"{name!r} was looked up: no entry here is a host name")


@st.composite
def octet_lists(draw):
    """(head, runs) of an entry such as 10.20.30.1-5,9: a /24 and its runs of last octets."""
    head = ".".join(str(draw(st.integers(0, 255))) for octet in range(3))
    runs = []
    for run in range(draw(st.integers(1, 8))):
        first = draw(st.integers(0, 255))
        runs.append((first, draw(st.integers(first, 255)) if draw(st.booleans()) else first))
    return head, runs


def written(head, runs):
    return head + "." + ",".join(f"{a}-{b}" if b > a else str(a) for a, b in runs)


def addresses(head, runs):
    return sorted({f"{head}.{o}" for a, b in runs for o in range(a, b + 1)}, key=ipaddress.IPv4Address)


@settings(max_examples=300, deadline=None)
@given(octet_lists())
def test_an_octet_list_split_at_its_commas_means_what_it_meant_whole(entry):
    head, runs = entry
    whole = written(head, runs)
    split = whole.split(",")  # what Ansible hands a list option given the string
    assert _targets.rejoin(split) == [whole]
    assert _targets.plan(split, resolver=no_lookup).addresses == addresses(head, runs)
    assert _targets.plan([whole], resolver=no_lookup).addresses == addresses(head, runs)


@settings(max_examples=100, deadline=None)
@given(st.lists(octet_lists(), min_size=1, max_size=4))
def test_several_split_entries_each_keep_their_own_pieces(entries):
    split = [piece for head, runs in entries for piece in written(head, runs).split(",")]
    assert _targets.rejoin(split) == [written(head, runs) for head, runs in entries]


@pytest.mark.parametrize("entries,joined", [
    (["127.0.0.1-5", "9"], ["127.0.0.1-5,9"]),
    (["127.0.0.1", "3", "20-30"], ["127.0.0.1,3,20-30"]),
    ([" 127.0.0.1-5 ", " 9 "], ["127.0.0.1-5,9"]),
    (["db1.example.com", "127.0.0.1-5", "9", "192.0.2.0/24"], ["db1.example.com", "127.0.0.1-5,9", "192.0.2.0/24"]),
    (["127.0.0.1-5,9", "20"], ["127.0.0.1-5,9,20"]),
])
def test_rejoin_puts_the_pieces_back(entries, joined):
    assert _targets.rejoin(entries) == joined


LONE = "is a last octet without its network; write it after an address of its /24, as in 192.0.2.1-5,9"


# Hostile or mistaken values, and the message each gets (nothing is expanded, looked up or sent).
@pytest.mark.parametrize("targets,exclude,message", [
    (["9"], [], f"targets: '9' {LONE}"),
    (["9", "127.0.0.1"], [], f"targets: '9' {LONE}"),
    (["20-30"], [], f"targets: '20-30' {LONE}"),
    (["db1.example.com", "9"], [], f"targets: '9' {LONE}"),
    (["192.0.2.0/24", "9"], [], f"targets: '9' {LONE}"),
    (["192.0.2.1-192.0.2.5", "9"], [], f"targets: '9' {LONE}"),
    (["2001:db8::1", "9"], [], f"targets: '9' {LONE}"),
    (["127.0.0.1"], ["7"], f"exclude: '7' {LONE}"),
    (["127.0.0.1-5", "300"], [], "targets: '127.0.0.1-5,300': the last octet 300 is larger than 255"),
    (["127.0.0.1-5", "9-3"], [], "targets: '127.0.0.1-5,9-3': 9-3 ends before it starts"),
    (["127.0.0.1-5", "09"], [], "targets: '127.0.0.1-5,09' contains ','"),
    (["127.0.0.1-5", "9;reboot"], [], "targets: '9;reboot' contains ';'"),
])
def test_pieces_that_belong_nowhere_are_refused_saying_where_they_go(targets, exclude, message):
    with pytest.raises(_targets.TargetError) as refused:
        _targets.plan(targets, exclude, resolver=no_lookup)
    assert str(refused.value).startswith(message), str(refused.value)
    assert "dotted quad" not in str(refused.value)


def test_the_sweep_core_rejoins_too():
    result = _sweep.sweep(["127.0.0.1", "2"], method="ping", timeout=2, retries=0)
    assert result["alive"] == ["127.0.0.1", "127.0.0.2"]
