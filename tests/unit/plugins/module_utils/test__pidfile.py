# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pidfile: the lock says who runs, and nothing the file says is signalled unchecked."""

import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _pidfile

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(_pidfile.__file__), "..", "..", "..", "..", ".."))
HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {collections!r})
    from ansible_collections.sysops.fleet.plugins.module_utils import _pidfile
    pidfile = _pidfile.PidFile(sys.argv[1])
    pidfile.acquire()
    pidfile.write(int(sys.argv[2]) if len(sys.argv) > 2 else __import__("os").getpid())
    print("locked", flush=True)
    time.sleep(60)
""")
# A bystander that records every catchable signal it gets.
RECORDER = textwrap.dedent("""
    import signal, sys, time
    def note(signum, frame):
        with open(sys.argv[1], "a") as handle:
            handle.write(f"{signum}\\n")
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGUSR1):
        signal.signal(s, note)
    print("ready", flush=True)
    while True:
        time.sleep(1)
""")


@pytest.fixture
def spawn():
    started = []

    def start(code, *args):
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)  # pylint: disable=consider-using-with
        started.append(proc)
        assert proc.stdout.readline().strip() in ("locked", "ready")
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "fleet-watcher"
    path.write_text(HOLDER.format(collections=COLLECTIONS))
    return str(path)


def test_the_holder_running_the_program_is_the_daemon(tmp_path, program):
    pidfile = str(tmp_path / "w.pid")
    proc = subprocess.Popen([sys.executable, program, pidfile], stdout=subprocess.PIPE, text=True)  # pylint: disable=consider-using-with
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert _pidfile.holder(pidfile, program) == proc.pid
        assert _pidfile.stop(pidfile, timeout=5, program=program) == proc.pid
        assert proc.wait(timeout=5) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()


def test_a_forged_pid_under_a_real_lock_is_refused_and_not_signalled(tmp_path, program, spawn):
    pidfile = str(tmp_path / "w.pid")
    signals = tmp_path / "signals"
    bystander = spawn(RECORDER, str(signals))
    spawn(HOLDER.format(collections=COLLECTIONS), pidfile, str(bystander.pid))  # locked, naming the bystander
    with pytest.raises(_pidfile.PidFileError, match=f"is locked, but pid {bystander.pid} runs .*not {program}"):
        _pidfile.holder(pidfile, program)
    for verb in (lambda: _pidfile.signal_daemon(pidfile, signal.SIGHUP, program),
                 lambda: _pidfile.stop(pidfile, timeout=1, program=program)):
        with pytest.raises(_pidfile.PidFileError):
            verb()
    time.sleep(0.3)
    assert not signals.exists(), "the bystander got a signal"
    assert bystander.poll() is None


def test_a_pid_of_another_user_is_refused():
    init = 1  # runs as root; checked as if we were nobody
    why = _pidfile.verify(init, None, uid=pwd.getpwnam("nobody").pw_uid)
    assert why and "runs as uid 0" in why
    assert _pidfile.verify(2 ** 22 - 1, None) == f"pid {2 ** 22 - 1} is not a running process"


def test_an_unlocked_forged_pidfile_means_not_running(tmp_path, spawn):
    signals = tmp_path / "signals"
    bystander = spawn(RECORDER, str(signals))
    pidfile = tmp_path / "w.pid"
    pidfile.write_text(f"{bystander.pid}\n")
    assert _pidfile.stop(str(pidfile), timeout=1) is None
    assert _pidfile.signal_daemon(str(pidfile), signal.SIGHUP) is None
    time.sleep(0.3)
    assert not signals.exists()


@pytest.mark.parametrize("kind, message", [("symlink", "symbolic link"), ("fifo", "FIFO"), ("dir", "directory")])
def test_a_pidfile_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind, message):
    pidfile = tmp_path / "w.pid"
    target = tmp_path / "precious"
    target.write_text("root's\n")
    if kind == "symlink":
        pidfile.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(pidfile)
    else:
        pidfile.mkdir()
    started = time.monotonic()
    for verb in (lambda: _pidfile.running_pid(str(pidfile)), lambda: _pidfile.PidFile(str(pidfile)).acquire(wait=0)):
        with pytest.raises(_pidfile.PidFileError, match=message):
            verb()
    assert _pidfile.read_pid(str(pidfile)) is None
    assert time.monotonic() - started < 3, "nothing blocked"
    assert target.read_text() == "root's\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="a file of another owner needs root to make")
def test_a_pidfile_of_another_user_is_refused(tmp_path):
    pidfile = tmp_path / "w.pid"
    pidfile.write_text("1\n")
    nobody = pwd.getpwnam("nobody")
    os.chown(pidfile, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(_pidfile.PidFileError, match="belongs to uid"):
        _pidfile.running_pid(str(pidfile))


def test_acquire_release_and_already_running(tmp_path):
    path = str(tmp_path / "x.pid")
    first = _pidfile.PidFile(path)
    first.acquire()
    first.write(os.getpid())
    with pytest.raises(_pidfile.AlreadyRunning) as err:
        _pidfile.PidFile(path).acquire(wait=0)
    assert err.value.pid == os.getpid()
    first.release()
    assert not os.path.exists(path)
    assert _pidfile.running_pid(path) is None
