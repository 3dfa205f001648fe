# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_account.stop_processes and containers of the same uid: nothing signalled unless told; the uid's own namespaces stopped.

Rootful containers share the kernel's uids: a container whose image runs as uid 999 runs as the
same uid as a system user made on the host. A "container" here is what one is to the kernel: a
PID namespace that root made (``unshare --pid``), with a process in it that became the uid.
"""

import os
import subprocess
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _account

from polling import wait_for  # noqa: E402  (the helpers' directory is on sys.path)
import throwaway_user  # noqa: E402  (tests/unit/plugins/conftest.py puts the helpers on sys.path)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="other users' processes and namespaces need root")

# Forks children that sleep, one after another, and never exits: many pids over time, one lineage.
SPAWNER = "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(1000)\n    time.sleep(0.01)\n"


@pytest.fixture
def user():
    entry = throwaway_user.make("sfns")
    yield entry
    throwaway_user.remove(entry)


def in_container(entry, argv):
    """Start *argv* as *entry* in a PID namespace root makes for it; killing the returned process ends both."""
    return subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "setpriv", f"--reuid={entry.pw_uid}",  # noqa: S603
                             f"--regid={entry.pw_gid}", "--clear-groups", "--"] + argv,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def contained(entry, marker):
    """The uid's processes in another PID namespace whose command line holds *marker*."""
    here = _account.Namespaces.here()
    return [p for p in _account.processes_of(entry.pw_uid) if marker in p.command and here.in_container(p.pid)]


def stop(container):
    container.kill()
    container.wait(timeout=10)


def test_while_a_container_runs_as_the_uid_nothing_is_signalled_and_the_error_names_it(user):
    container = in_container(user, ["sleep", "1017"])
    try:
        [inside] = wait_for(lambda: contained(user, "sleep 1017"), 10, "the container's sleep 1017")
        host = throwaway_user.spawn_as(user, ["sleep", "1018"])
        time.sleep(0.2)
        with pytest.raises(_account.ContainerError) as raised:
            _account.stop_processes(user, timeout=20)
        assert [p["pid"] for p in raised.value.processes] == [inside.pid]
        message = str(raised.value)
        assert f"pid {inside.pid} sleep 1017" in message and "Nothing was stopped" in message
        assert "containers=kill" in message, "it says what to do"
        time.sleep(0.2)
        assert host.poll() is None and container.poll() is None, "nothing was signalled"
        ours, theirs = _account.split_processes(user.pw_uid)
        assert [p.pid for p in ours] == [host.pid] and [p.pid for p in theirs] == [inside.pid]
    finally:
        stop(container)


def test_told_to_kill_containers_too_it_kills_the_uids_processes_everywhere(user):
    container = in_container(user, ["sleep", "1019"])
    try:
        [inside] = wait_for(lambda: contained(user, "sleep 1019"), 10, "the container's sleep 1019")
        spawner = throwaway_user.spawn_as(user, ["/usr/bin/python3", "-c", SPAWNER])
        wait_for(lambda: len(_account.split_processes(user.pw_uid)[0]) > 5, 10, "six of the spawner's processes")
        stopped = _account.stop_processes(user, timeout=20, containers="kill")
        assert not stopped.left, stopped
        assert spawner.wait(timeout=5) == -9
        assert inside.pid in [p["pid"] for p in stopped.killed] and len(stopped.killed) > 6
        assert not _account.processes_of(user.pw_uid)
    finally:
        stop(container)


# The main thread leaves with exit() (the thread's, not the process's): /proc shows the leader a zombie
# (State: Z, no command line) while the other thread runs on.
GHOST = """
import ctypes, threading, time
def work():
    while True:
        time.sleep(0.05)
threading.Thread(target=work).start()
time.sleep(0.2)
ctypes.CDLL(None).syscall(60, 0)  # SYS_exit (x86_64): this thread only
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the ghost's exit syscall number is x86_64's")
def test_a_process_whose_leader_thread_exited_is_seen_and_stopped(user):
    ghost = throwaway_user.spawn_as(user, ["/usr/bin/python3", "-c", GHOST])

    def leader_exited():
        """the ghost's leader thread shows Z while its other thread runs"""
        process = _account.read_process(ghost.pid)
        return process is not None and process.state == "Z" and process.threads == 2
    wait_for(leader_exited, 30, "the ghost's leader thread to exit")
    assert [p.pid for p in _account.processes_of(user.pw_uid)] == [ghost.pid], "a live thread keeps it"
    stopped = _account.stop_processes(user, timeout=20)
    assert not stopped.left and [p["pid"] for p in stopped.killed] == [ghost.pid], stopped
    assert ghost.wait(timeout=5) == -9


def test_a_namespace_the_uid_made_for_itself_is_the_uids_and_is_stopped(user):
    """``unshare --user --pid`` as the uid: its own PID namespace under its own user namespace, no container."""
    own = throwaway_user.spawn_as(user, ["unshare", "--user", "--map-root-user", "--pid", "--fork", "sleep", "1020"])
    try:
        found = wait_for(lambda: [p for p in _account.processes_of(user.pw_uid) if p.command == "sleep 1020"]
                         or own.poll() is not None, 10, "the uid's own sleep 1020")
        if found is True:
            pytest.skip("this kernel does not let an unprivileged user make a user namespace")
        stopped = _account.stop_processes(user, timeout=20)
        assert not stopped.left, stopped
        assert own.wait(timeout=5) == -9
        assert not _account.processes_of(user.pw_uid)
    finally:
        if own.poll() is None:
            own.kill()
