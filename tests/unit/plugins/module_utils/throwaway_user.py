# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A system user made for one test and removed after it (root only): the daemon's user, for real."""

import os
import pwd
import subprocess
import uuid


def make(prefix: str = "sftest") -> pwd.struct_passwd:
    """A new system user with no home and no login shell; its name is unique to this call."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    return pwd.getpwnam(name)


def remove(entry: pwd.struct_passwd) -> None:
    """Kill whatever still runs as the user, remove its crontab, then the user and its group."""
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/status", "rb") as handle:
                uids = [line.split()[1:] for line in handle.read().splitlines() if line.startswith(b"Uid:")][0]
            if str(entry.pw_uid).encode() in uids:
                os.kill(int(pid), 9)
        except (OSError, IndexError):
            continue
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
