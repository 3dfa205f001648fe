# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The process fan-out: real forked workers, real crashes and signals."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _fanout


def double(x):
    return x * 2


def test_results_come_back_in_task_order():
    outcomes = _fanout.fan_out(double, list(range(50)), workers=4)
    assert [o.index for o in outcomes] == list(range(50))
    assert [o.value for o in outcomes] == [x * 2 for x in range(50)]
    assert all(o.ok for o in outcomes)


def test_work_runs_in_at_most_the_given_number_of_other_processes():
    def whoami(task):  # pylint: disable=unused-argument
        time.sleep(0.02)
        return os.getpid()
    pids = {o.value for o in _fanout.fan_out(whoami, list(range(30)), workers=3)}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 3


def flaky(x):
    if x == 1:
        raise ValueError("task one is bad")
    if x == 2:
        os._exit(9)
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    if x == 4:
        return threading.Lock()  # cannot be pickled
    if x == 5:
        class Local(Exception):
            pass
        raise Local("unpicklable exception type")
    return x


def test_failures_are_reported_and_the_rest_still_runs():
    outcomes = _fanout.fan_out(flaky, list(range(10)), workers=2)
    by = {o.index: o for o in outcomes}
    assert not by[1].ok and "ValueError: task one is bad" in by[1].error
    assert not by[2].ok and "exited with code 9" in by[2].error
    assert not by[3].ok and "killed by signal 9 (SIGKILL)" in by[3].error
    assert not by[4].ok and "cannot be sent back" in by[4].error
    assert not by[5].ok and "unpicklable exception type" in by[5].error
    assert [by[i].value for i in range(6, 10)] == [6, 7, 8, 9]
    assert by[0].ok and by[0].value == 0


def slow(x):
    if x == 0:
        time.sleep(30)
    return x


def test_a_task_over_its_timeout_is_killed_and_reported():
    started = time.monotonic()
    outcomes = _fanout.fan_out(slow, [0, 1, 2], workers=2, timeout=0.5)
    assert time.monotonic() - started < 5
    assert not outcomes[0].ok and "timed out after 0.5s" in outcomes[0].error
    assert [o.value for o in outcomes[1:]] == [1, 2]


def test_no_tasks_no_workers():
    assert _fanout.fan_out(double, [], workers=4) == []


@pytest.mark.parametrize("workers", [0, -1, 257])
def test_worker_count_is_bounded(workers):
    with pytest.raises(_fanout.FanOutError, match="workers must be between 1 and 256"):
        _fanout.fan_out(double, [1], workers=workers)


def test_works_from_a_non_main_thread_like_mitogen_runs_modules():
    box = {}

    def run():
        box["out"] = [o.value for o in _fanout.fan_out(double, [1, 2, 3], workers=2)]
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert box["out"] == [2, 4, 6]


PARENT = textwrap.dedent("""
    import os, signal, sys, threading, time
    sys.path.insert(0, {path!r})
    from ansible_collections.sysops.fleet.plugins.module_utils import _fanout
    # Ctrl-C raises KeyboardInterrupt here even when this test was started in the background,
    # where the shell has SIGINT ignored and Python then keeps it so
    signal.signal(signal.SIGINT, signal.default_int_handler)
    {prelude}
    def work(x):
        os.write(1, b"%d\\n" % os.getpid())
        time.sleep(60)
    try:
        _fanout.fan_out(work, [1, 2], workers=2)
    except _fanout.Interrupted as exc:
        print("INTERRUPTED", exc, flush=True)
        sys.exit(3)
    except KeyboardInterrupt:
        print("CTRL-C", flush=True)
        sys.exit(4)
""")


def _collections_root():
    import ansible_collections.sysops.fleet as pkg
    return os.path.dirname(os.path.dirname(os.path.dirname(list(pkg.__path__)[0])))


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"


@pytest.mark.parametrize("sig,code,word", [(signal.SIGTERM, 3, "INTERRUPTED"), (signal.SIGINT, 4, "CTRL-C")])
def test_sigterm_or_ctrl_c_in_the_parent_stops_every_worker(sig, code, word):
    proc = subprocess.Popen([sys.executable, "-c", PARENT.format(path=_collections_root(), prelude="")],
                            stdout=subprocess.PIPE, text=True)
    pids = [int(proc.stdout.readline()), int(proc.stdout.readline())]
    proc.send_signal(sig)
    out = proc.communicate(timeout=20)[0]
    assert proc.returncode == code and word in out
    deadline = time.monotonic() + 5
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(p) for p in pids), "workers must not outlive an interrupted parent"


# The signal lands while the parent waits in select() and does not interrupt it: delivered to
# another thread (the main thread blocks it), it only trips Python's handler, as a signal that
# arrives just before select() does. The parent must still notice it, and soon.
SIGNAL_ELSEWHERE = (
    "threading.Thread(target=time.sleep, args=(120,), daemon=True).start()  # SIGINT/SIGTERM go to it\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})")


@pytest.mark.parametrize("sig,code,word", [(signal.SIGTERM, 3, "INTERRUPTED"), (signal.SIGINT, 4, "CTRL-C")])
def test_a_signal_that_does_not_interrupt_select_still_stops_the_fan_out_soon(sig, code, word):
    proc = subprocess.Popen([sys.executable, "-c", PARENT.format(path=_collections_root(), prelude=SIGNAL_ELSEWHERE)],
                            stdout=subprocess.PIPE, text=True)
    pids = [int(proc.stdout.readline()), int(proc.stdout.readline())]
    time.sleep(0.3)  # the parent is in select() by now
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        out = proc.communicate(timeout=10)[0]
    finally:
        proc.kill()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    took = time.monotonic() - sent
    assert proc.returncode == code and word in out
    assert took < 3, f"the parent noticed the signal only after {took:.1f}s"


GRANDPARENT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {path!r})
    from ansible_collections.sysops.fleet.plugins.module_utils import _command, _fanout
    def work(x):
        for index, result in _command.run_many([["sh", "-c", "echo $$; exec sleep 61.7"]] * 2, concurrency=2, timeout=120):
            pass
    try:
        _fanout.fan_out(work, [1], workers=1)
    except _fanout.Interrupted:
        sys.exit(3)
""")


def test_sigterm_in_the_parent_also_stops_what_the_workers_started():
    proc = subprocess.Popen([sys.executable, "-c", GRANDPARENT.format(path=_collections_root())])
    deadline = time.monotonic() + 10
    sleepers = []
    while len(sleepers) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        out = subprocess.run(["pgrep", "-f", "^sleep 61.7$"], capture_output=True, text=True, check=False).stdout
        sleepers = [int(p) for p in out.split()]
    assert len(sleepers) >= 2, "the worker's children did not start"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 3
    deadline = time.monotonic() + 5
    while not all(_gone(p) for p in sleepers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(p) for p in sleepers), "grandchildren must not outlive an interrupted sweep"
