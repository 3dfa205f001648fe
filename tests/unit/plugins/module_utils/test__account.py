# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_account: every process of a uid frozen and killed, a forking one included; its crontab and leftovers gone."""

import os
import pwd
import subprocess
import sys
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _account

import throwaway_user  # noqa: E402  (tests/unit/plugins/conftest.py puts the helpers on sys.path)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="other users' processes need root")

# Keeps forking: each parent exits right after its fork, so its pid is never the same twice; each
# generation writes one byte to the stdout it inherited, so the test can count them.
FORKER = """
import os, time
while True:
    try:
        pid = os.fork()
    except OSError:
        time.sleep(0.001)
        continue
    if pid:
        os._exit(0)
    os.write(1, b".")
    time.sleep(0.001)
"""


@pytest.fixture
def user():
    entry = throwaway_user.make("sfacct")
    yield entry
    throwaway_user.remove(entry)


def alive(uid):
    return _account.processes_of(uid)


def generations(reaper, seconds):
    """Bytes the forker's generations wrote within *seconds*; None once every one of them is gone (EOF)."""
    deadline = time.monotonic() + seconds
    count = 0
    os.set_blocking(reaper.stdout.fileno(), False)
    while time.monotonic() < deadline:
        try:
            data = os.read(reaper.stdout.fileno(), 65536)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if not data:
            return None
        count += len(data)
    return count


def test_a_process_that_keeps_forking_to_new_pids_is_caught(user):
    reaper = throwaway_user.spawn_reaped(user, ["/usr/bin/python3", "-c", FORKER])
    throwaway_user.spawn_as(user, ["sleep", "1000"])
    assert generations(reaper, 0.5) > 50, "the forker runs under ever new pids"
    stopped = _account.stop_processes(user, timeout=20)
    assert not stopped.left, stopped
    assert any("sleep 1000" in k["command"] for k in stopped.killed)
    assert generations(reaper, 5.0) is None, "every generation of the forker is gone"
    reaper.wait(timeout=10)
    assert not alive(user.pw_uid), "nothing of the user runs any more"
    subprocess.run(["userdel", user.pw_name], check=True, capture_output=True)


# Stops every other process of its uid, over and over: the killer too, the moment it becomes the uid.
FREEZER = """
import os, signal
while True:
    try:
        os.kill(-1, signal.SIGSTOP)
    except OSError:
        pass
"""


def test_a_process_that_stops_every_process_of_its_uid_cannot_stop_the_kill(user):
    freezer = throwaway_user.spawn_as(user, ["/usr/bin/python3", "-c", FREEZER])
    sleeper = throwaway_user.spawn_as(user, ["sleep", "1000"])
    time.sleep(0.3)
    stopped = _account.stop_processes(user, timeout=30)
    assert not stopped.left, stopped
    assert freezer.wait(timeout=5) == -9 and sleeper.wait(timeout=5) == -9


def test_a_program_filter_stops_only_that_program(user):
    keep = throwaway_user.spawn_as(user, ["sleep", "1001"])
    target = throwaway_user.spawn_as(user, ["/usr/bin/python3", "-c", "import time; time.sleep(1000)",
                                            "/opt/some/fleet-watcher"])
    time.sleep(0.3)
    stopped = _account.stop_processes(user, program="/opt/some/fleet-watcher", timeout=10)
    assert [k["pid"] for k in stopped.killed] == [target.pid]
    assert keep.poll() is None, "the account's other processes are not the program's"


def test_root_is_refused():
    with pytest.raises(_account.AccountError, match="every process of root"):
        _account.stop_processes(pwd.getpwuid(0))
    sleeper = subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(1000)",  # noqa: S603
                                "/opt/not/fleet-watcher-test"])
    other = subprocess.Popen(["sleep", "1001"])  # noqa: S603
    try:
        time.sleep(0.2)
        stopped = _account.stop_processes(pwd.getpwuid(0), program="/opt/not/fleet-watcher-test", timeout=5)
        assert [k["pid"] for k in stopped.killed] == [sleeper.pid] and other.poll() is None
    finally:
        for proc in (sleeper, other):
            proc.kill()
            proc.wait()


def test_the_callers_own_uid_is_refused_without_a_program(user):
    code = ("import pwd, sys; sys.path.insert(0, sys.argv[1])\n"
            "from ansible_collections.sysops.fleet.plugins.module_utils import _account\n"
            "try:\n    _account.stop_processes(pwd.getpwuid(int(sys.argv[2])), timeout=1)\n"
            "except _account.AccountError as exc:\n    print(exc)\n")
    collections = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", ".build",
                               "collections")
    out = subprocess.run(["runuser", "-u", user.pw_name, "--", "/usr/bin/python3", "-c", code,
                          os.path.abspath(collections), str(user.pw_uid)], capture_output=True, text=True, check=False)
    assert "runs this very program" in out.stdout, out


def test_a_root_process_that_borrows_the_uid_is_not_the_users(user):
    """A root daemon that seteuid()s to the user for a moment (as cron does) is not stopped."""
    code = (f"import os, time\nos.setegid({user.pw_gid})\nos.seteuid({user.pw_uid})\ntime.sleep(1000)\n")
    borrower = subprocess.Popen([sys.executable, "-c", code])  # noqa: S603
    try:
        time.sleep(0.3)
        _account.stop_processes(user, timeout=5)
        assert borrower.poll() is None
    finally:
        borrower.kill()
        borrower.wait()


def test_the_crontab_at_jobs_temp_files_and_ipc_of_the_user_go(user, tmp_path):
    crontab = tmp_path / "crontab"
    crontab.write_text("* * * * * /bin/true\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(crontab, 0o644)
    subprocess.run(["crontab", "-u", user.pw_name, str(crontab)], check=True, capture_output=True)
    planted = f"/tmp/sfacct-left-{os.getpid()}"
    proc = throwaway_user.spawn_as(user, ["/usr/bin/python3", "-c", (
        f"import os\nos.makedirs({planted!r} + '/deep')\nos.symlink('/etc/passwd', {planted!r} + '/deep/link')\n"
        f"open('/dev/shm/sfacct-{os.getpid()}', 'w').close()\n")])
    proc.wait()
    ipc = throwaway_user.spawn_as(user, ["/usr/bin/ipcmk", "-M", "4096"])
    ipc.wait()
    assert _account.ipc_objects(user.pw_uid), "the user made a shared memory segment"
    preview = _account.remove_leftovers(user.pw_uid, user.pw_name, check_mode=True)
    assert planted in preview and os.path.exists(planted), "check mode removes nothing"
    schedules = _account.remove_schedules(user.pw_name)
    assert schedules["crontab"] is True
    assert subprocess.run(["crontab", "-u", user.pw_name, "-l"], capture_output=True, check=False).returncode != 0
    removed = _account.remove_leftovers(user.pw_uid, user.pw_name)
    assert planted in removed and f"/dev/shm/sfacct-{os.getpid()}" in removed
    assert not os.path.lexists(planted) and os.path.exists("/etc/passwd"), "the link was removed, not followed"
    assert not _account.ipc_objects(user.pw_uid)
