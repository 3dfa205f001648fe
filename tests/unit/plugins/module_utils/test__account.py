# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_account: every process of a uid frozen and killed, a forking one included; its crontab and leftovers gone."""

import json
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


@pytest.mark.alone  # the forker must outpace any list of pids, which needs a core of its own
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


def test_a_root_process_that_switched_to_the_uid_for_good_is_named_and_nothing_is_stopped(user):
    """setreuid(-1, uid) as root leaves the real uid root's but makes the saved uid the user's: kill(-1) as the
    user reaches it. Before, it was killed without a word (the listing went by the real uid)."""
    code = (f"import os, time\nos.setregid(-1, {user.pw_gid})\nos.setreuid(-1, {user.pw_uid})\n"
            "print(open('/proc/self/status').read().split('Uid:')[1].split()[:3], flush=True)\ntime.sleep(1000)\n")
    borrower = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)  # noqa: S603
    keep = throwaway_user.spawn_as(user, ["sleep", "1022"])
    try:
        assert borrower.stdout.readline().strip() == f"['0', '{user.pw_uid}', '{user.pw_uid}']"
        with pytest.raises(_account.BorrowerError) as refused:
            _account.stop_processes(user, timeout=5)
        assert [p["pid"] for p in refused.value.processes] == [borrower.pid]
        message = str(refused.value)
        assert f"pid {borrower.pid} (uid 0)" in message and "Nothing was stopped" in message, message
        with pytest.raises(_account.BorrowerError):
            _account.processes_to_stop(user)  # check mode says the same
        time.sleep(0.2)
        assert borrower.poll() is None and keep.poll() is None, "nothing was signalled"
        stopped = _account.stop_processes(user, program="/nonexistent/fleet-watcher", timeout=2)
        assert not stopped.killed, "with a program, only processes running it are signalled one by one: no kill(-1)"
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


# As the user: a file in /run/lock, a directory with a set-uid copy of id inside a root-owned sticky
# world-writable directory of /tmp, a POSIX message queue, a key in the uid's persistent keyring.
PLANT = r"""
import ctypes, os, shutil, sys
run_lock, sticky, queue = sys.argv[1:4]
open(run_lock, "w").close()
os.mkdir(sticky + "/x")
shutil.copy("/usr/bin/id", sticky + "/x/id")
os.chmod(sticky + "/x/id", 0o4755)
libc = ctypes.CDLL(None, use_errno=True)
libc.mq_open.restype = ctypes.c_int
if libc.mq_open(queue.encode(), os.O_CREAT | os.O_RDWR, 0o600, None) < 0:
    sys.exit("mq_open: " + os.strerror(ctypes.get_errno()))
libc.syscall.restype = ctypes.c_long
keyring = libc.syscall(250, 22, -1, -2)  # KEYCTL_GET_PERSISTENT, own uid, into the process keyring
if keyring < 0:
    sys.exit("get_persistent: " + os.strerror(ctypes.get_errno()))
if libc.syscall(248, b"user", b"sfkey", b"secret", 6, keyring) < 0:  # add_key
    sys.exit("add_key: " + os.strerror(ctypes.get_errno()))
"""

# As the uid's next owner: what of the old owner's is still there.
FIND = r"""
import ctypes, json, os, sys
run_lock, sticky, queue = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
keyring = libc.syscall(250, 22, -1, -2)
found = {
    "run_lock": os.path.lexists(run_lock),
    "sticky": os.path.lexists(sticky + "/x"),
    "queue": libc.mq_open(queue.encode(), os.O_RDWR, 0, None) >= 0,
    "key_bytes": libc.syscall(250, 11, keyring, None, 0) if keyring >= 0 else -1,
}
print(json.dumps(found))
"""


def run_as(entry, argv):
    """Run *argv* as *entry* to its end (in a session of its own, from /): its output as text."""
    def demote():
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    return subprocess.run(argv, preexec_fn=demote, start_new_session=True, cwd="/", capture_output=True,  # noqa: S603 pylint: disable=subprocess-popen-preexec-fn
                          text=True, timeout=60, check=False)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the test's keyctl/add_key syscall numbers are x86_64's")
def test_nothing_the_user_left_passes_to_the_next_owner_of_its_uid(user):
    tag = f"sfacct-{os.getpid()}"
    run_lock, sticky, queue = f"/run/lock/{tag}", f"/tmp/.{tag}-unix", f"/{tag}"
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    newcomer = None
    try:
        planted = run_as(user, ["/usr/bin/python3", "-c", PLANT, run_lock, sticky, queue])
        assert planted.returncode == 0, planted.stderr
        assert os.stat(f"{sticky}/x/id").st_mode & 0o4000 and os.path.exists(run_lock)
        preview = _account.remove_leftovers(user.pw_uid, user.pw_name, check_mode=True)
        assert {run_lock, f"{sticky}/x", f"mqueue {queue}"} <= set(preview), preview
        assert os.path.exists(f"{sticky}/x/id"), "check mode removes nothing"
        removed = _account.remove_leftovers(user.pw_uid, user.pw_name)
        assert {run_lock, f"{sticky}/x", f"mqueue {queue}"} <= set(removed), removed
        assert _account.invalidate_persistent_keyring(user.pw_uid).startswith("invalidated (1 key(s)")
        assert os.path.isdir(sticky), "the root-owned directory itself stays"
        subprocess.run(["userdel", user.pw_name], check=True, capture_output=True)
        name = f"sfnext-{os.getpid()}"
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                        "/usr/sbin/nologin", "--uid", str(user.pw_uid), "--user-group", name], check=True,
                       capture_output=True)
        newcomer = pwd.getpwnam(name)
        assert newcomer.pw_uid == user.pw_uid
        probe = run_as(newcomer, ["/usr/bin/python3", "-c", FIND, run_lock, sticky, queue])
        assert json.loads(probe.stdout) == {"run_lock": False, "sticky": False, "queue": False, "key_bytes": 0}
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", sticky, run_lock], check=False)
        subprocess.run(["python3", "-c", f"import ctypes; ctypes.CDLL(None).mq_unlink(b'{queue}')"], check=False)
        if newcomer is not None:
            throwaway_user.remove(newcomer)
