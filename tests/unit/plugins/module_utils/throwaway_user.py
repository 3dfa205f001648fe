# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A system user made for one test and removed after it (root only): the daemon's user, for real."""

import grp
import os
import pwd
import random
import subprocess
import uuid

from ansible_collections.sysops.fleet.plugins.module_utils import _account


# The uids of throwaway users: far above the system range (below 1000), where the containers of
# CI's other lane (molecule, the fleet test) give the daemon's user its uid. Rootful containers share
# this kernel's uids, so a kill(-1) as a throwaway uid that is also a container user's would kill
# that container's daemon too.
UID_RANGE = range(59000, 60000)


def _free_id() -> int:
    """A uid in UID_RANGE that is neither a user's nor a group's id yet (tried in random order)."""
    ids = list(UID_RANGE)
    random.shuffle(ids)
    for uid in ids:
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(uid)
            continue
        except KeyError:
            return uid
    raise RuntimeError(f"no free uid in {UID_RANGE}")


def make(prefix: str = "sftest") -> pwd.struct_passwd:
    """A new system user with no home and no login shell; its name is unique to this call."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    for _attempt in range(5):  # another test may take the same free id at the same moment: try another
        uid = _free_id()
        done = subprocess.run(["useradd", "--system", "--uid", str(uid), "--user-group", "--no-create-home",
                               "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                              capture_output=True, check=False)
        if done.returncode == 0:
            return pwd.getpwnam(name)
    raise RuntimeError(f"useradd {name}: {done.stderr.decode(errors='replace')}")


def remove(entry: pwd.struct_passwd) -> None:
    """Kill whatever still runs as the user, remove its crontab, then the user and its group.

    The kill is the core's (``_account.stop_processes``: kill(-1) as the uid, again until none is
    left): one pass over /proc would miss a forker that a failed test left running, a fork storm
    that slows every later test.
    """
    _account.stop_processes(entry, timeout=30, containers="kill")  # a test's "container" of the uid too
    subprocess.run(["crontab", "-u", entry.pw_name, "-r"], capture_output=True, check=False)
    subprocess.run(["userdel", entry.pw_name], capture_output=True, check=False)
    subprocess.run(["groupdel", entry.pw_name], capture_output=True, check=False)


def spawn_as(entry: pwd.struct_passwd, argv, **kwargs) -> subprocess.Popen:
    """Start *argv* as the user, in a session of its own (as a daemon would be)."""
    def demote():
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    return subprocess.Popen(argv, preexec_fn=demote, start_new_session=True, cwd="/",  # noqa: S603 pylint: disable=subprocess-popen-preexec-fn
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)


# Starts argv as a user under a reaper of its own: a child subreaper that reaps every orphan its
# descendants leave (a process that keeps forking leaves one per fork, and this machine's PID 1 may
# not reap them), and exits once none is left.
REAPER = r"""
import ctypes, os, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
uid, gid = int(sys.argv[1]), int(sys.argv[2])
pid = os.fork()
if pid == 0:
    os.setsid()
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.execv(sys.argv[3], sys.argv[3:])
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
"""


def spawn_reaped(entry: pwd.struct_passwd, argv) -> subprocess.Popen:
    """Start *argv* as the user under a reaper (see REAPER); the Popen is the reaper's, which ends with them.

    Its stdout is a pipe that every process of *argv* inherits: it ends (EOF) once the last one is gone.
    """
    return subprocess.Popen(["/usr/bin/python3", "-c", REAPER, str(entry.pw_uid), str(entry.pw_gid), *argv],  # noqa: S603
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
