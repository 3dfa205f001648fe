# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_lookup.call_all: calls that may hang, each under a deadline, a heartbeat all along; and _targets.plan's lookups
through it, with the real resolver of a network namespace whose name server never answers (a tarpit on its loopback).
"""

import ipaddress
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _lookup, _targets

from test__watcher import COLLECTIONS  # noqa: E402  pylint: disable=wrong-import-position


def test_a_call_that_hangs_is_given_up_at_its_timeout_and_the_others_answer():
    never = threading.Event()
    beats = []

    def call(item):
        if item == "hangs":
            never.wait()
        if item == "raises":
            raise OSError("no such thing")
        return item.upper()
    started = time.monotonic()
    answers = _lookup.call_all(call, ["a", "hangs", "b", "raises", "a"], timeout=1.0, threads=2,
                               heartbeat=lambda: beats.append(time.monotonic()))
    took = time.monotonic() - started
    assert 1.0 <= took < 3.0, took
    assert answers["a"].value == "A" and answers["b"].value == "B"
    assert answers["hangs"].timed_out and answers["hangs"].value is None
    assert isinstance(answers["raises"].error, OSError)
    assert sorted(answers) == ["a", "b", "hangs", "raises"], "each item once"
    gaps = [b - a for a, b in zip([started] + beats, beats + [started + took])]
    assert max(gaps) < 0.5, f"the heartbeat fell silent for {max(gaps):.2f}s while a call hung"


def test_many_hung_calls_take_their_bound_and_no_longer():
    never = threading.Event()
    started = time.monotonic()
    answers = _lookup.call_all(lambda item: never.wait(), list(range(6)), timeout=0.5, threads=3)
    took = time.monotonic() - started
    assert all(a.timed_out for a in answers.values()) and len(answers) == 6
    assert _lookup.bound(6, 0.5, 3) == 1.0
    assert 1.0 <= took < 1.0 + 0.8, f"six hung calls, three at a time, 0.5 s each took {took:.2f}s"


def test_lookups_run_side_by_side():
    started = time.monotonic()
    answers = _lookup.call_all(lambda item: time.sleep(0.4) or item, list(range(8)), timeout=5.0, threads=8)
    assert [answers[i].value for i in range(8)] == list(range(8))
    assert time.monotonic() - started < 1.5, "eight 0.4 s lookups one after the other would take 3.2 s"


def test_plan_names_a_lookup_that_hung_and_raises_a_resolvers_error(monkeypatch):
    never = threading.Event()
    monkeypatch.setattr(_lookup, "TIMEOUT", 0.5)

    def resolver(name):
        if name == "stuck":
            never.wait()
        if name == "broken":
            raise RuntimeError("the resolver broke")
        return [ipaddress.ip_address("127.0.0.9")] if name == "lab" else []
    plan = _targets.plan(["lab", "stuck", "gone", "127.0.0.1"], exclude=["stuck"], resolver=resolver)
    assert plan.addresses == ["127.0.0.1", "127.0.0.9"]
    assert plan.unresolved["stuck"].startswith("the name lookup did not answer within 0.5s (check the resolver")
    assert plan.exclude_unresolved["stuck"].endswith("so it excludes nothing")
    assert plan.unresolved["gone"] == "the name does not resolve (check DNS or /etc/hosts)"
    with pytest.raises(RuntimeError, match="the resolver broke"):
        _targets.plan(["lab", "broken"], resolver=resolver)
    assert _targets.names_in(["lab", "127.0.0.1", "lab", "x.example"], ["stuck"]) == 3


# A name server on the namespace's loopback that reads every query and never answers; resolv.conf allows a
# query 30 s, five times: glibc's own lookup would hang for minutes.
TARPIT_DNS = """
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
print("listening", flush=True)
while True:
    sock.recv(4096)
"""

PLAN_IN_NAMESPACE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.sysops.fleet.plugins.module_utils import _lookup, _targets
_lookup.TIMEOUT = 2.0
beats = []
started = time.monotonic()
plan = _targets.plan(["watched.sysops-fleet.test", "127.0.0.1"], heartbeat=lambda: beats.append(time.monotonic()))
took = time.monotonic() - started
gaps = [b - a for a, b in zip([started] + beats, beats)]
print(repr((plan.addresses, plan.unresolved, round(took, 2), round(max(gaps), 2))))
"""


def with_a_tarpit_resolver(tmp_path, program, *args):
    """The command that runs *program* (Python) in a network, mount and PID namespace of its own, whose
    resolv.conf names a tarpit on its loopback; everything in it ends with *program*."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:30 attempts:5\n")
    (tmp_path / "tarpit.py").write_text(TARPIT_DNS)
    (tmp_path / "program.py").write_text(program)
    script = textwrap.dedent(f"""\
        set -e
        ip link set lo up
        mount --bind {resolv} /etc/resolv.conf
        {sys.executable} {tmp_path / 'tarpit.py'} > {tmp_path / 'tarpit.out'} &
        for _ in $(seq 100); do grep -q listening {tmp_path / 'tarpit.out'} && break; sleep 0.05; done
        exec {sys.executable} {tmp_path / 'program.py'} "$@"
        """)
    return ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "bash", "-c", script, "bash", *args]


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace and a bind mount need root")
def test_a_resolver_that_never_answers_holds_the_plan_its_timeout_not_minutes(tmp_path):
    done = subprocess.run(with_a_tarpit_resolver(tmp_path, PLAN_IN_NAMESPACE, COLLECTIONS),  # noqa: S603
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    addresses, unresolved, took, gap = eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 pylint: disable=eval-used
    assert addresses == ["127.0.0.1"]
    assert "did not answer within 2s" in unresolved["watched.sysops-fleet.test"], unresolved
    assert 2.0 <= took < 4.0, f"the plan took {took}s"
    assert gap < 0.5, f"no heartbeat for {gap}s during the lookup"


def test_a_call_that_never_returns_costs_one_thread_not_one_a_round():
    """An outside tester: a lookup that never returns (a broken NSS module) left a thread behind every round of
    the watcher (9, 17, 25 threads after three rounds). Its next rounds are timed out at once instead."""
    never = threading.Event()

    def resolver(name):
        if name == "stuck":
            never.wait()
        return [name]
    first = _lookup.call_all(resolver, ["stuck", "fine"], timeout=0.5)
    threads = threading.active_count()
    for _round in range(3):
        started = time.monotonic()
        again = _lookup.call_all(resolver, ["stuck", "fine"], timeout=0.5)
        assert again["stuck"].timed_out and again["fine"].value == ["fine"]
        assert time.monotonic() - started < 0.4, "the hung one is not waited for again"
    assert first["stuck"].timed_out and threading.active_count() == threads, "no thread more"
    assert _lookup.hung() >= 1
    never.set()
    deadline = time.monotonic() + 5
    while (resolver, "stuck") in _lookup._HUNG and time.monotonic() < deadline:  # pylint: disable=protected-access
        _lookup.hung()
        time.sleep(0.05)
    assert _lookup.call_all(resolver, ["stuck"], timeout=0.5)["stuck"].value == ["stuck"], "called again once it ended"
