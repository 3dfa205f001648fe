# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_sd_notify against a real AF_UNIX datagram socket standing where systemd's would be, and fleet-watcher
run in the foreground telling that socket READY, WATCHDOG and STOPPING.

(The systemd molecule scenario proves the same with systemd itself: active only after READY, a frozen
daemon restarted by the watchdog.)
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _pidfile, _sd_notify

from test__watcher import COLLECTIONS, write_settings  # noqa: E402  pylint: disable=wrong-import-position


class FakeManager:
    """The receiving end of NOTIFY_SOCKET: a datagram socket bound to a path or an abstract name."""

    def __init__(self, path=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path is None:
            self.name = f"@sysops-fleet-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + self.name[1:])
        else:
            self.name = str(path)
            self.sock.bind(self.name)
        self.sock.settimeout(0.05)
        self.messages = []  # (monotonic time, {KEY: value})

    def receive(self, until, timeout=15.0):
        """Collect messages until *until(messages)* holds or *timeout* passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(self.messages):
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.messages.append((time.monotonic(), fields))
        return until(self.messages)

    def close(self):
        self.sock.close()


@pytest.fixture
def manager(tmp_path):
    made = []

    def make(abstract=False):
        made.append(FakeManager(None if abstract else tmp_path / "notify.sock"))
        return made[-1]

    yield make
    for each in made:
        each.close()


def run_in_foreground(path, env):
    """fleet-watcher run (what the systemd unit runs), logging to stderr, with *env* as its environment."""
    return subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from ansible_collections.sysops.fleet.plugins.module_utils import _watcher_cli; "
         "_watcher_cli.entry_point(sys.argv[2:])", COLLECTIONS, "--config", path, "run", "--log-file", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_messages_reach_the_socket_and_the_variables_leave_the_environment(manager, abstract):
    receiver = manager(abstract)
    environ = {"NOTIFY_SOCKET": receiver.name, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid()),
               "PATH": "/usr/bin"}
    notifier = _sd_notify.Notifier.from_environment(environ)
    assert environ == {"PATH": "/usr/bin"}, "children must not inherit them"
    assert notifier.enabled and notifier.watchdog == 3.0 and notifier.watchdog_every == 1.5
    assert notifier.ready("watching 2 host(s)\nand a forged\nREADY=1")
    assert notifier.ping("round 1")
    assert notifier.stopping()
    assert receiver.receive(lambda m: len(m) == 3)
    assert [fields for _t, fields in receiver.messages] == [
        {"READY": "1", "STATUS": "watching 2 host(s) and a forged READY=1"},
        {"WATCHDOG": "1", "STATUS": "round 1"}, {"STOPPING": "1"}]


@pytest.mark.parametrize("environ,enabled,watchdog", [
    ({}, False, None),
    ({"NOTIFY_SOCKET": ""}, False, None),
    ({"NOTIFY_SOCKET": "relative/notify"}, False, None),
    ({"NOTIFY_SOCKET": "@"}, False, None),
    ({"NOTIFY_SOCKET": "vsock:2:1234"}, False, None),
    ({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "soon"}, True, None),
    ({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "-5"}, True, None),
    ({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "0"}, True, None),
    ({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, True, None),
    ({"WATCHDOG_USEC": "10000000"}, False, None),
], ids=["unset", "empty", "relative", "bare @", "vsock", "usec not a number", "usec negative", "usec zero",
        "watchdog for another pid", "watchdog without socket"])
def test_what_the_environment_says_and_what_it_does_not(environ, enabled, watchdog):
    notifier = _sd_notify.Notifier.from_environment(dict(environ))
    assert notifier.enabled is enabled
    assert notifier.watchdog == watchdog
    if not enabled:
        assert notifier.ready() is False and notifier.ping() is False and notifier.error == ""


def test_a_socket_that_is_gone_is_an_error_to_log_not_an_exception(tmp_path):
    notifier = _sd_notify.Notifier(str(tmp_path / "gone.sock"), watchdog=2.0)
    assert notifier.ping() is False
    assert notifier.error == f"cannot notify systemd through {tmp_path / 'gone.sock'}: No such file or directory"


def test_fleet_watcher_run_says_ready_pets_the_watchdog_and_says_stopping(tmp_path, manager):
    receiver = manager()
    path = write_settings(tmp_path, "interval = 2\n")
    pidfile = str(tmp_path / "run" / "watcher.pid")
    env = dict(os.environ, NOTIFY_SOCKET=receiver.name, WATCHDOG_USEC="600000")  # a 0.6 s watchdog
    env.pop("WATCHDOG_PID", None)
    proc = run_in_foreground(path, env)
    try:
        assert receiver.receive(lambda m: any("READY" in f for _t, f in m)), proc.stderr.read1() if proc.poll() else ""
        # READY comes when the daemon holds its pidfile: what "systemctl start" waits for is really there
        assert _pidfile.running_pid(pidfile) == proc.pid
        assert receiver.receive(lambda m: sum("WATCHDOG" in f for _t, f in m) >= 8, timeout=10)
        pets = [t for t, f in receiver.messages if "WATCHDOG" in f]
        gaps = [b - a for a, b in zip(pets, pets[1:])]
        assert max(gaps) < 0.6, f"a gap as long as the watchdog itself: {gaps}"
        statuses = [f["STATUS"] for _t, f in receiver.messages if "STATUS" in f]
        assert any(s.startswith("last round at ") and "filesystem(s)" in s for s in statuses), statuses
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, out + err
        assert receiver.receive(lambda m: any("STOPPING" in f for _t, f in m), timeout=2)
        assert "told systemd it is ready (watchdog 0.6s)" in err
    finally:
        proc.kill()
        proc.wait()


def test_without_notify_socket_fleet_watcher_run_says_nothing_of_systemd(tmp_path):
    path = write_settings(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in _sd_notify.VARIABLES}
    proc = run_in_foreground(path, env)
    try:
        deadline = time.monotonic() + 15
        while _pidfile.running_pid(str(tmp_path / "run" / "watcher.pid")) != proc.pid and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0 and "started: pid" in err, out + err
        assert "systemd" not in err
    finally:
        proc.kill()
        proc.wait()


# ---- the watchdog during a long round (an outside tester's finding on issue 20) ---------------------------------

LONG_ROUND = ("interval = {interval}\n[disk]\ninclude_mounts = /nonexistent-sysops-fleet-test\n"
              "[hosts]\nwatch = 127.0.0.1\nmethod = socket\ncount = {count}\nspacing = 0.5\ntimeout = 0.5\n")


def children(pid):
    """The processes whose parent is *pid* (the sweep's workers, while a sweep runs)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def pets_and_gaps(receiver):
    """The times of READY and every WATCHDOG, and the gaps between them."""
    pets = [t for t, f in receiver.messages if "WATCHDOG" in f or "READY" in f]
    return pets, [b - a for a, b in zip(pets, pets[1:])]


@pytest.mark.alone
def test_a_round_longer_than_the_watchdog_is_petted_all_along(tmp_path, manager):
    """A sweep of 10 probes 0.5 s apart (5 s) under a 1.5 s watchdog: WATCHDOG=1 keeps coming while it runs,
    never a gap as long as WatchdogSec (before, none came until the round ended: systemd killed it every round)."""
    receiver = manager()
    path = write_settings(tmp_path, LONG_ROUND.format(interval=8, count=10))
    env = dict(os.environ, NOTIFY_SOCKET=receiver.name, WATCHDOG_USEC="1500000")
    env.pop("WATCHDOG_PID", None)
    proc = run_in_foreground(path, env)
    try:
        assert receiver.receive(lambda m: any("READY" in f for _t, f in m)), proc.stderr.read1() if proc.poll() else ""
        # the first round's sweep, then its status line, then a little of the wait
        assert receiver.receive(lambda m: any(f.get("STATUS", "").startswith("last round at") for _t, f in m),
                                timeout=20)
        receiver.receive(lambda m: False, timeout=1.0)
        pets, gaps = pets_and_gaps(receiver)
        assert pets[-1] - pets[0] > 5.0, "the round took the sweep's 5 s"
        assert max(gaps) < 1.5, f"a gap as long as WatchdogSec: {[round(g, 2) for g in gaps]}"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.alone
def test_a_hung_sweep_falls_silent_and_systemd_would_restart_it(tmp_path, manager):
    """The sweep's worker stopped (SIGSTOP) mid-sweep: WATCHDOG=1 goes on only as long as the sweep may take
    (twice its estimate of 2.5 s and 5 s more), then stops, so systemd's watchdog ends the daemon."""
    receiver = manager()
    path = write_settings(tmp_path, LONG_ROUND.format(interval=8, count=4))
    env = dict(os.environ, NOTIFY_SOCKET=receiver.name, WATCHDOG_USEC="1500000")
    env.pop("WATCHDOG_PID", None)
    proc = run_in_foreground(path, env)
    stopped = []
    try:
        assert receiver.receive(lambda m: any("READY" in f for _t, f in m)), proc.stderr.read1() if proc.poll() else ""
        deadline = time.monotonic() + 10
        while not stopped and time.monotonic() < deadline:
            for worker in children(proc.pid):
                os.kill(worker, signal.SIGSTOP)
                stopped.append(worker)
            time.sleep(0.01)
        assert stopped, "no sweep worker seen"
        hung = time.monotonic()
        # systemd's part: end the daemon once WatchdogSec passes without WATCHDOG=1
        killed = None
        while time.monotonic() < hung + 30 and killed is None:
            receiver.receive(lambda m: False, timeout=0.1)
            last = max(t for t, f in receiver.messages if "WATCHDOG" in f or "READY" in f)
            if time.monotonic() - last > 1.5:
                killed = time.monotonic()
                proc.send_signal(signal.SIGABRT)
        pets = [t for t, f in receiver.messages if "WATCHDOG" in f and t > hung]
        assert killed is not None, "the watchdog was petted for 30 s of a hung sweep"
        assert pets and pets[-1] - hung > 5.0, "petted while the sweep may still run (its 2.5 s estimate, twice, +5 s)"
        # the estimate: 3 spacings of 0.5 s, the 0.5 s timeout, 4 probes at rate 1000 and the 0.5 s start
        assert killed - hung < 2 * 2.504 + 5.0 + 1.5 + 1.0, f"killed {killed - hung:.1f} s after the sweep hung"
        assert not any(f.get("STATUS", "").startswith("last round at") for _t, f in receiver.messages)
    finally:
        for worker in stopped:
            for signum in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(worker, signum)
                except ProcessLookupError:
                    pass
        proc.kill()
        proc.wait()


# ---- the watchdog during name lookups and mail delivery (issue 20, the outside tester's third finding) ----------

def assert_petted_through(receiver, proc, what, seconds, watchdog=1.5):
    """The daemon says READY, then WATCHDOG=1 keeps coming for *seconds* of *what*: never a gap of WatchdogSec."""
    assert receiver.receive(lambda m: any("READY" in f for _t, f in m)), proc.stderr.read1() if proc.poll() else ""
    assert receiver.receive(lambda m: any(f.get("STATUS", "").startswith("last round at") for _t, f in m),
                            timeout=seconds + 20), f"the first round did not end ({what})"
    pets, gaps = pets_and_gaps(receiver)
    assert pets[-1] - pets[0] >= seconds, f"the round did not take the {seconds} s of {what}"
    assert max(gaps) < watchdog, f"{what}: a gap as long as WatchdogSec: {[round(g, 2) for g in gaps]}"


# fleet-watcher run with one name lookup allowed 4 s (the daemon's own 15 s would only make the test slower)
RUN_WITH_SHORT_LOOKUPS = """
import sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.sysops.fleet.plugins.module_utils import _lookup, _watcher_cli
_lookup.TIMEOUT = 4.0
_watcher_cli.entry_point(sys.argv[2:])
"""


@pytest.mark.alone
@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace and a bind mount need root")
def test_a_name_lookup_that_hangs_is_petted_through_and_given_up(tmp_path, manager):
    """A watched name whose name server never answers (a tarpit on the loopback of a namespace the test made):
    WATCHDOG=1 keeps coming through the lookup, which ends at its 4 s, the round with it. Before, the lookup
    held the daemon minutes in silence (resolv.conf: 30 s x 5 attempts) and systemd's watchdog killed it."""
    from test__lookup import with_a_tarpit_resolver  # pylint: disable=import-outside-toplevel
    receiver = manager()
    path = write_settings(tmp_path, "interval = 30\n[disk]\ninclude_mounts = /nonexistent-sysops-fleet-test\n"
                                    "[hosts]\nwatch = watched.sysops-fleet.test\n")
    env = dict(os.environ, NOTIFY_SOCKET=receiver.name, WATCHDOG_USEC="1500000")
    env.pop("WATCHDOG_PID", None)
    argv = with_a_tarpit_resolver(tmp_path, RUN_WITH_SHORT_LOOKUPS, COLLECTIONS, "--config", path, "run",
                                  "--log-file", "-")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert_petted_through(receiver, proc, "a name lookup that hangs", 4.0)
        proc.kill()  # unshare: the daemon, PID 1 of the namespace, and the tarpit end with it (--kill-child)
        _out, err = proc.communicate(timeout=15)
        assert "watched.sysops-fleet.test: the name lookup did not answer within 4s" in err, err
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.alone
def test_a_mail_server_that_stalls_is_petted_through_until_smtp_timeout(tmp_path, manager, slow_smtpd):
    """The alert's server reads the message and never answers it (smtp_timeout 6 s): WATCHDOG=1 keeps coming
    while the delivery waits, the alert stays queued at the timeout. Before, nothing came for the whole wait."""
    server = slow_smtpd("stall_after_data")
    receiver = manager()
    path = write_settings(tmp_path, "interval = 30\n[disk]\nwarn = 1\ncrit = 100\n" + textwrap.dedent(f"""
        [mail]
        to = ops@example.com
        from = watcher@example.com
        smtp_host = 127.0.0.1
        smtp_port = {server.port}
        smtp_timeout = 6
        spool_dir = {tmp_path}/spool
        """))
    env = dict(os.environ, NOTIFY_SOCKET=receiver.name, WATCHDOG_USEC="1500000")
    env.pop("WATCHDOG_PID", None)
    proc = run_in_foreground(path, env)
    try:
        assert_petted_through(receiver, proc, "a stalled SMTP server", 6.0)
        assert server.connections == 1
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
        assert "gave no final reply within smtp_timeout=6s" in err and "It stays queued" in err, err
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.alone
def test_a_df_that_hangs_is_petted_through_each_probe_timeout(tmp_path, manager):
    """df held by a hung mount (a df that never answers stands in for one: a hung NFS server cannot be had here)
    is killed at probe_timeout (4 s; a batch of several mounts is tried again one mount a call). WATCHDOG=1
    keeps coming through it; before, the disk check said nothing (an outside tester: 15.4 s of silence under a
    10 s watchdog, every round, so systemd would abort the daemon before it could alert)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "df").write_text("#!/bin/sh\nexec sleep 1000\n")
    (bin_dir / "df").chmod(0o755)
    receiver = manager()
    path = write_settings(tmp_path, "interval = 30\n[disk]\nprobe_timeout = 4\ninclude_mounts = /\n")
    env = dict(os.environ, NOTIFY_SOCKET=receiver.name, WATCHDOG_USEC="1500000",
               PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    env.pop("WATCHDOG_PID", None)
    proc = run_in_foreground(path, env)
    try:
        assert_petted_through(receiver, proc, "a df that hangs", 4.0)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
        assert "timed out" in err, err
    finally:
        proc.kill()
        proc.wait()
