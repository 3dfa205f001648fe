# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_handoff and _privilege.become: what root hands to another user holds nothing of root's, and never holds root.

Root's side is this test process; the user's is a real throw-away system user.
"""

import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _handoff, _privilege, _text


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="handing work to another user needs root")
PYTHON = "/usr/bin/python3"  # readable by any user, unlike a Python under /root


@pytest.fixture(scope="module")
def user(system_user):
    return system_user


def hand(user, code, timeout=20.0, **kwargs):
    out, err = io.BytesIO(), io.BytesIO()
    started = time.monotonic()
    done = _handoff.hand_off(user, [PYTHON, "-c", code], timeout, stdout=out, stderr=err, **kwargs)
    return done, out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8"), time.monotonic() - started


REPORT = """
import json, os
print(json.dumps({"uid": os.getresuid(), "gid": os.getresgid(), "groups": os.getgroups(), "env": dict(os.environ),
                  "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")), "sid": os.getsid(0) == os.getpid(),
                  "cwd": os.getcwd()}))
"""


@needs_root
def test_the_user_gets_a_fresh_program_a_clean_environment_and_only_stdio(user, monkeypatch):
    monkeypatch.setenv("SYSOPS_FLEET_ROOT_TOKEN", "root-secret")
    monkeypatch.setenv("LANG", "C.UTF-8")
    secret = os.open("/etc/shadow", os.O_RDONLY)
    os.set_inheritable(secret, True)
    try:
        done, out, err, _seconds = hand(user, REPORT)
    finally:
        os.close(secret)
    assert done.code == 0 and not err, (done, err)
    seen = json.loads(out)
    assert seen["uid"] == [user.pw_uid] * 3 and seen["gid"] == [user.pw_gid] * 3 and seen["groups"] == [user.pw_gid]
    assert set(seen["env"]) == {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG"}, seen["env"]
    assert seen["env"]["PATH"] == _privilege.SAFE_PATH and seen["env"]["USER"] == user.pw_name
    assert seen["fds"] == [0, 1, 2, 3], "stdin, stdout, stderr (and the listing's own)"
    assert seen["sid"] and seen["cwd"] == "/"


@needs_root
def test_a_user_who_stops_the_handed_command_delays_root_only_until_the_deadline(user):
    done, _out, _err, seconds = hand(user, "import os, signal; print('up', flush=True); "
                                           "os.kill(os.getpid(), signal.SIGSTOP)", timeout=1.5)
    assert done.timed_out and done.code == -signal.SIGKILL
    assert 1.4 < seconds < 4, seconds


@needs_root
def test_a_process_that_keeps_the_pipes_open_does_not_hold_root(user):
    code = "import os, time\nif os.fork() == 0:\n    time.sleep(60)\nprint('parent done')\n"
    done, out, _err, seconds = hand(user, code, timeout=30)
    assert done.code == 0 and not done.timed_out and "parent done" in out
    assert seconds < 3, f"root waited {seconds:.1f}s for a grandchild"


@needs_root
def test_what_the_user_prints_is_escaped_and_cut(user):
    code = ("import sys\n"
            "sys.stdout.buffer.write(bytes([111, 107, 27, 91, 50, 74, 7, 255, 13, 10]) + b'{\"a\": \"b\\\\\\\\c\"}' + b'\\n')\n"
            "sys.stderr.buffer.write(b'x' * (3 << 20))\n")
    done, out, err, _seconds = hand(user, code)
    assert out == 'ok\\x1b[2J\\x07\\xff\\r\n{"a": "b\\\\c"}\n', repr(out)
    assert done.cut == ["stderr"] and len(err) < _handoff.OUTPUT_LIMIT + 100 and "output cut at" in err


@needs_root
def test_a_program_the_user_cannot_run_is_said_plainly(user):
    hidden = tempfile.mkdtemp(prefix="fleet-handoff-")
    try:
        os.chmod(hidden, 0o700)  # as /root is: the user cannot reach what is inside
        shutil.copy(PYTHON, os.path.join(hidden, "python3"))
        done = _handoff.hand_off(user, [os.path.join(hidden, "python3"), "-c", "pass"], 10,
                                 stdout=io.BytesIO(), stderr=io.BytesIO())
    finally:
        shutil.rmtree(hidden)
    assert done.code == 127 and "Permission denied" in done.exec_error, done


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=256))
def test_relayed_output_keeps_its_lines_and_nothing_else_unprintable(data):
    text = _text.relayed(data)
    assert all(c in "\n\t" or c.isprintable() for c in text)
    assert text.count("\n") == data.count(b"\n")


# ---- become: undumpable throughout, whatever fs.suid_dumpable says --------------------------------

@pytest.fixture
def suid_dumpable_1():
    with open("/proc/sys/fs/suid_dumpable", encoding="ascii") as handle:
        before = handle.read().strip()
    subprocess.run(["sysctl", "-q", "-w", "fs.suid_dumpable=1"], check=True)
    yield
    subprocess.run(["sysctl", "-q", "-w", f"fs.suid_dumpable={before}"], check=True)


def _switched(user, switch):
    """Whether a child that switched to *user* with *switch* is dumpable, as /proc shows it to that user."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            switch(user)
            owner = os.stat(f"/proc/{os.getpid()}/environ").st_uid
            os.write(write_end, b"dumpable" if owner == user.pw_uid else b"undumpable")
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    return answer


def _naive(user):
    os.setgroups([user.pw_gid])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


@needs_root
def test_become_is_undumpable_even_with_suid_dumpable_1(user, suid_dumpable_1):
    assert _switched(user, _naive) == "dumpable", "the control: a plain setuid leaves it open to the user"
    assert _switched(user, _privilege.become) == "undumpable"


def processes_of(uid):
    found = []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid:
                found.append(int(name))
        except OSError:
            pass
    return found


@needs_root
def test_an_interrupted_root_kills_what_it_handed_off_and_says_so_by_raising(user):
    """Ctrl-C in root's caller while the user's command runs: the child does not outlive root's wait."""
    def interrupt(_signum, _frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGALRM, interrupt)
    out = io.BytesIO()
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            _handoff.hand_off(user, [PYTHON, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(60)"],
                              30, stdout=out, stderr=io.BytesIO())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    child = int(out.getvalue().split()[0])  # the handed-off command, by its own word
    deadline = time.monotonic() + 5
    while child in processes_of(user.pw_uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child not in processes_of(user.pw_uid), "the handed-off command survived root's interruption"
