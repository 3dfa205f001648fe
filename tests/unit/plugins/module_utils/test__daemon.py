# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The daemonizer: real daemons started, inspected through /proc, signalled and stopped."""

import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _daemon, _pidfile

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(_daemon.__file__), "..", "..", "..", "..", ".."))

# A small program built on the daemonizer: it logs, obeys SIGTERM/SIGHUP, and
# writes what it sees of itself to the log. argv: pidfile log mode [umask] [workdir] [user]
PROGRAM = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {collections!r})
    from ansible_collections.sysops.fleet.plugins.module_utils import _daemon, _pidfile, _privilege
    pidfile, log, mode = sys.argv[1:4]
    umask = int(sys.argv[4], 8) if len(sys.argv) > 4 else 0o022
    workdir = sys.argv[5] if len(sys.argv) > 5 else "/"
    user = sys.argv[6] if len(sys.argv) > 6 else None
    if user:
        _privilege.drop_to(_privilege.user_entry(user))
    daemon = _daemon.Daemon(pidfile, log_file=log, detach=mode != "fg", umask=umask, workdir=workdir)
    try:
        pid = daemon.open()
    except (_daemon.DaemonError, _pidfile.PidFileError) as exc:
        print("fleet-test:", exc, file=sys.stderr)
        sys.exit(1)
    if pid:
        print("started", pid)
        sys.exit(0)
    if daemon.pidfile.stale_pid:
        print("took over a stale pidfile of pid", daemon.pidfile.stale_pid, flush=True)
    print("running", os.getpid(), "FOO=" + os.environ.get("FOO", "-"), flush=True)
    while not daemon.stop_requested:
        if mode == "stubborn":
            import signal
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        daemon.wait(30)
        if daemon.take_reload():
            print("reloaded", flush=True)
    print("stopping on signal", daemon.stop_signal, flush=True)
    daemon.close()
""")


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM.format(collections=COLLECTIONS))
    return str(path)


@pytest.fixture
def paths(tmp_path):
    return {"pidfile": str(tmp_path / "run" / "prog.pid"), "log": str(tmp_path / "prog.log")}


def start(program, paths, mode="bg", *extra, env=None, **kwargs):
    return subprocess.run([sys.executable, program, paths["pidfile"], paths["log"], mode, *extra],
                          capture_output=True, text=True, timeout=30, env=env, check=False, **kwargs)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def stat_fields(pid):
    """ppid, pgrp, session, tty_nr from /proc/PID/stat (proc(5) fields 4-7)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        rest = handle.read().rsplit(")", 1)[1].split()
    return {"ppid": int(rest[1]), "pgrp": int(rest[2]), "session": int(rest[3]), "tty_nr": int(rest[4])}


def log_text(paths):
    try:
        with open(paths["log"], encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


@pytest.fixture
def cleanup():
    pids = []
    yield pids
    for pid in pids:
        if callable(pid):
            pid()
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def started_pid(result):
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert words[0] == "started"
    return int(words[1])


def test_start_detaches_like_a_daemon_should(program, paths, cleanup):
    launcher = start(program, paths, pass_fds=(), env=dict(os.environ, FOO="bar"))
    pid = started_pid(launcher)
    cleanup.append(pid)
    assert wait_for(lambda: "running" in log_text(paths))
    fields = stat_fields(pid)
    assert fields["ppid"] != os.getpid(), "the daemon must be orphaned, not our child"
    assert fields["session"] != pid, "after the second fork the daemon is no session leader"
    assert fields["session"] != os.getsid(0), "it left our session"
    assert fields["tty_nr"] == 0, "no controlling terminal"
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        umask = [line.split()[1] for line in handle if line.startswith("Umask:")][0]
    assert umask == "0022"
    fds = {int(n): os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}
    assert fds[0] == "/dev/null"
    assert fds[1] == fds[2] == paths["log"]
    assert paths["pidfile"] in fds.values()
    assert f"running {pid} FOO=-" in log_text(paths), "the environment was sanitized"


def test_the_pidfile_holds_the_pid_under_a_lock(program, paths, cleanup):
    pid = started_pid(start(program, paths))
    cleanup.append(pid)
    assert _pidfile.read_pid(paths["pidfile"]) == pid
    assert _pidfile.running_pid(paths["pidfile"]) == pid
    with open(paths["pidfile"], encoding="ascii") as handle:
        with pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_second_start_is_refused_in_the_callers_terminal(program, paths, cleanup):
    pid = started_pid(start(program, paths))
    cleanup.append(pid)
    second = start(program, paths)
    assert second.returncode == 1
    assert f"already running (pid {pid}, pidfile {paths['pidfile']} is locked)" in second.stderr
    assert alive(pid) and _pidfile.running_pid(paths["pidfile"]) == pid


def test_sigterm_exits_cleanly_and_removes_the_pidfile(program, paths, cleanup):
    pid = started_pid(start(program, paths))
    cleanup.append(pid)
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not alive(pid))
    assert not os.path.exists(paths["pidfile"])
    assert f"stopping on signal {int(signal.SIGTERM)}" in log_text(paths)


def test_a_stale_pidfile_of_a_killed_daemon_is_taken_over(program, paths, cleanup):
    first = started_pid(start(program, paths))
    cleanup.append(first)
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: not alive(first))
    assert _pidfile.read_pid(paths["pidfile"]) == first, "SIGKILL leaves the file behind"
    assert _pidfile.running_pid(paths["pidfile"]) is None, "but nobody holds its lock"
    second = started_pid(start(program, paths))
    cleanup.append(second)
    assert second != first
    assert wait_for(lambda: f"took over a stale pidfile of pid {first}" in log_text(paths))
    assert _pidfile.running_pid(paths["pidfile"]) == second


def test_an_unlocked_pidfile_naming_a_live_process_is_still_stale(program, paths, cleanup):
    os.makedirs(os.path.dirname(paths["pidfile"]))
    with open(paths["pidfile"], "w", encoding="ascii") as handle:
        handle.write(f"{os.getpid()}\n")  # a live pid, but no lock: e.g. a reused pid
    pid = started_pid(start(program, paths))
    cleanup.append(pid)
    assert _pidfile.running_pid(paths["pidfile"]) == pid


def test_sighup_reopens_the_log_after_logrotate_moved_it(program, paths, cleanup):
    pid = started_pid(start(program, paths))
    cleanup.append(pid)
    assert wait_for(lambda: "running" in log_text(paths))
    os.rename(paths["log"], paths["log"] + ".1")
    os.kill(pid, signal.SIGHUP)
    assert wait_for(lambda: "reloaded" in log_text(paths)), "the daemon writes to the new file"
    with open(paths["log"] + ".1", encoding="utf-8") as handle:
        assert "reloaded" not in handle.read()
    assert alive(pid)
    assert os.readlink(f"/proc/{pid}/fd/2") == paths["log"]


def test_foreground_mode_keeps_the_process_and_still_holds_the_pidfile(program, paths):
    proc = subprocess.Popen([sys.executable, program, paths["pidfile"], paths["log"], "fg"],  # pylint: disable=consider-using-with
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: _pidfile.running_pid(paths["pidfile"]) == proc.pid)
        assert stat_fields(proc.pid)["ppid"] == os.getpid(), "no fork in the foreground"
        refused = start(program, paths)
        assert refused.returncode == 1 and "already running" in refused.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not os.path.exists(paths["pidfile"])
    finally:
        proc.kill()
        proc.wait()


def test_a_custom_umask_is_applied(program, paths, cleanup):
    pid = started_pid(start(program, paths, "bg", "027"))
    cleanup.append(pid)
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        assert "Umask:\t0027\n" in handle.read()


def test_an_unwritable_log_is_refused_before_detaching(program, paths, tmp_path):
    paths["log"] = str(tmp_path / "no-such-dir" / "prog.log")
    result = start(program, paths)
    assert result.returncode == 1
    assert "cannot open log file" in result.stderr and "No such file" in result.stderr
    assert _pidfile.running_pid(paths["pidfile"]) is None


def test_a_failure_inside_the_daemon_reaches_the_caller(program, paths, tmp_path):
    result = start(program, paths, "bg", "022", str(tmp_path / "missing-workdir"))
    assert result.returncode == 1
    assert "No such file or directory" in result.stderr
    assert wait_for(lambda: _pidfile.running_pid(paths["pidfile"]) is None)


def test_stop_waits_for_the_lock_and_kills_a_stubborn_daemon(program, paths, cleanup):
    pid = started_pid(start(program, paths, "stubborn"))
    cleanup.append(pid)
    assert wait_for(lambda: "running" in log_text(paths))
    started = time.monotonic()
    assert _pidfile.stop(paths["pidfile"], timeout=0.5) == pid
    assert time.monotonic() - started < 8
    assert not alive(pid)
    assert not os.path.exists(paths["pidfile"]), "the SIGKILLed daemon's file is cleaned up"
    assert _pidfile.stop(paths["pidfile"]) is None, "stopping a stopped daemon is a no-op"


def test_stop_of_a_cooperative_daemon(program, paths, cleanup):
    pid = started_pid(start(program, paths))
    cleanup.append(pid)
    assert _pidfile.stop(paths["pidfile"], timeout=5) == pid
    assert "stopping on signal" in log_text(paths)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing the process owner needs root")
def test_root_drops_to_the_given_user(program, cleanup):
    top = tempfile.mkdtemp(prefix="fleet-daemon-")  # pytest's own tmp dirs are 0700: nobody could not reach them
    os.chmod(top, 0o755)
    paths = {"pidfile": os.path.join(top, "run", "prog.pid"), "log": os.path.join(top, "prog.log")}
    cleanup.append(lambda: shutil.rmtree(top, ignore_errors=True))
    nobody = pwd.getpwnam("nobody")
    os.chown(top, nobody.pw_uid, nobody.pw_gid)  # the daemon's user makes and owns its own files
    pid = started_pid(start(program, paths, "bg", "022", "/", "nobody"))
    cleanup.append(pid)
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        uids = [line.split()[1:] for line in handle if line.startswith("Uid:")][0]
    assert set(uids) == {str(nobody.pw_uid)}, "real, effective, saved and fs uid all dropped"
    assert os.stat(paths["log"]).st_uid == nobody.pw_uid
    assert os.stat(os.path.dirname(paths["pidfile"])).st_uid == nobody.pw_uid
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not alive(pid))
    assert not os.path.exists(paths["pidfile"]), "the unprivileged daemon can remove its own pidfile"


def test_pidfile_api_directly(tmp_path):
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
    second = _pidfile.PidFile(path)
    second.acquire()
    second.release()


def test_sanitized_environment_keeps_only_what_a_daemon_needs():
    env = _daemon.sanitized_environment({"PATH": "/bin", "LC_TIME": "C", "LD_PRELOAD": "x", "FOO": "1"}, keep=["FOO"])
    assert env == {"PATH": "/bin", "LC_TIME": "C", "FOO": "1"}
    assert _daemon.sanitized_environment({})["PATH"] == _daemon.SAFE_PATH


def test_a_bad_umask_is_refused():
    with pytest.raises(_daemon.DaemonError, match="umask"):
        _daemon.Daemon("/tmp/x.pid", umask=0o1777)
