# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an account runs and leaves behind, stopped and removed by uid, so that the account can go.

PRIVATE to the sysops.fleet collection. Pure standard library; Linux /proc.

Removing the watcher's user must leave nothing of it: a process left
running keeps ``userdel`` from working, or outlives its name, and a uid
that survives nameless is handed to the next system user, with whatever
still runs or waits as it. So the watcher's uninstall works by uid, never
by anything that user wrote (a pidfile), and in this order:

1. ``stop_processes``: **one signal the kernel delivers to all of them at
   once.** A process that keeps forking to new pids outruns any pass over
   /proc (each of its generations lives a millisecond; a pass takes tens),
   so no pid list can catch it. Instead a child of root becomes the uid
   (undumpable, with nothing of root's) and calls ``kill(-1, SIGKILL)``:
   the kernel sends SIGKILL to every process that uid may signal, under
   the task list's lock, and a fork racing with it fails (the parent's
   pending SIGKILL aborts it). Root then checks /proc until none is left,
   and repeats the whole within a deadline (the uid can stop the killer
   in the microseconds before it acts; root kills that attempt and tries
   again).
2. ``remove_schedules``: its crontab and its ``at`` jobs, which would start
   it again.
3. ``remove_leftovers``: its entries at the top of ``/tmp``, ``/var/tmp``
   and ``/dev/shm``, its System V IPC objects and its mail spool: what a
   later owner of the same uid would otherwise inherit.

With a *program*, only processes whose command line runs that program are
stopped (an account the watcher shares with others: their processes are
not the watcher's to stop), each after a pidfd pinned it and /proc showed
it runs that program; nothing else is removed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from . import _command, _privilege

TEMP_DIRECTORIES = ("/tmp", "/var/tmp", "/dev/shm")
MAIL_DIRECTORIES = ("/var/mail", "/var/spool/mail")
DEFAULT_TIMEOUT = 30.0
_IPC = (("shm", "-m", 7, 9), ("sem", "-s", 4, 6), ("msg", "-q", 7, 9))  # /proc/sysvipc file, ipcrm flag, uid, cuid


class AccountError(Exception):
    """The account's processes could not all be stopped in time; the message names them."""


@dataclass
class Process:
    """One process as /proc shows it."""

    pid: int
    uids: Tuple[int, ...]   # real, effective, saved, file system
    state: str              # R, S, D, T, t, Z, ...
    argv: List[str]

    @property
    def command(self) -> str:
        return " ".join(self.argv)[:200] or f"[pid {self.pid}]"


@dataclass
class Stopped:
    """What ``stop_processes`` did."""

    killed: List[Dict[str, object]] = field(default_factory=list)  # pid and command of each
    passes: int = 0
    left: List[Dict[str, object]] = field(default_factory=list)    # still there at the deadline


def read_process(pid: int) -> Optional[Process]:
    """The process *pid* from /proc, or None if it is gone (or unreadable)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            status = handle.read(8192)
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read(65536)
    except OSError:
        return None
    uids: Tuple[int, ...] = ()
    state = "?"
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            uids = tuple(int(u) for u in line.split()[1:5])
        elif line.startswith(b"State:"):
            state = line.split()[1].decode("ascii", "replace")
    if not uids:
        return None
    return Process(pid, uids, state, [os.fsdecode(a) for a in cmdline.split(b"\0") if a])


def _pids() -> List[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def runs(process: Process, program: Optional[str]) -> bool:
    """Whether *process* runs *program*: one of its arguments is that path (compared as text, never stat'ed).

    A path in another user's command line is never looked up: it could
    lead into a hung mount or be a link made for the occasion.
    """
    if program is None:
        return True
    names = {program, os.path.realpath(program)}
    return any(arg in names for arg in process.argv)


def processes_of(uid: int, program: Optional[str] = None) -> List[Process]:
    """The live processes whose real uid is *uid* (and that run *program*, if given); zombies left out.

    The real uid: a set-uid program the user started is the user's too, but
    a root daemon that borrows the uid for a moment (seteuid) is not.
    """
    found = []
    me = os.getpid()
    for pid in _pids():
        if pid == me:
            continue
        process = read_process(pid)
        if process and process.uids[0] == uid and process.state != "Z" and runs(process, program):
            found.append(process)
    return found


def _signal(pid: int, signum: int, uid: int, program: Optional[str]) -> bool:
    """Send *signum* to *pid* if, once pinned by a pidfd, it is still a process of *uid* (running *program*)."""
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError:
            pidfd = None
    try:
        process = read_process(pid)
        if process is None or process.uids[0] != uid or not runs(process, program):
            return False
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signum)
        else:
            os.kill(pid, signum)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def stop_processes(entry: pwd.struct_passwd, program: Optional[str] = None,
                   timeout: float = DEFAULT_TIMEOUT) -> Stopped:
    """Kill every process of *entry* (running *program*, if given) within *timeout* seconds; see the module docstring.

    Raises AccountError for root or for this process's own uid, unless a
    *program* says which of their processes to stop.
    """
    uid = entry.pw_uid
    if program is None and uid == 0:
        raise AccountError("refusing to stop every process of root (give a program to stop only that one)")
    if program is None and uid in (os.getuid(), os.geteuid()):
        raise AccountError(f"refusing to stop every process of uid {uid}, which runs this very program")
    deadline = time.monotonic() + timeout
    done = Stopped()
    seen = {p.pid: p for p in processes_of(uid, program)}
    while True:
        done.passes += 1
        if program is None:
            _kill_as(entry, min(2.0, max(0.1, deadline - time.monotonic())))
        else:
            for process in processes_of(uid, program):
                seen.setdefault(process.pid, process)
                _signal(process.pid, signal.SIGKILL, uid, program)
        left = processes_of(uid, program)
        for process in left:
            seen.setdefault(process.pid, process)
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    done.killed = [{"pid": p.pid, "command": p.command} for pid, p in sorted(seen.items())
                   if pid not in {q.pid for q in left}]
    done.left = describe(left)
    return done


def _kill_as(entry: pwd.struct_passwd, wait: float) -> None:
    """``kill(-1, SIGKILL)`` from a child that became *entry*: every process of that uid, in one go."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only signals and exits
        code = 0
        try:
            _privilege.become(entry)
            for _attempt in range(3):
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break  # no process of the uid is left
        except BaseException:  # noqa: BLE001 - a child never returns into the caller's code
            code = 1
        os._exit(code)
    if _privilege.reap(pid, wait) is None:  # stopped by the uid before it acted: this attempt is lost
        _privilege.kill_child(pid)
        _privilege.reap(pid, 1.0)


def remove_schedules(name: str, check_mode: bool = False) -> Dict[str, object]:
    """Remove *name*'s crontab and ``at`` jobs: ``{"crontab": removed?, "at_jobs": [job numbers]}``."""
    crontab = False
    try:
        listed = _command.run(["crontab", "-u", name, "-l"], timeout=30)
        crontab = listed.ok
        if crontab and not check_mode:
            removed = _command.run(["crontab", "-u", name, "-r"], timeout=30)
            if not removed.ok:
                raise AccountError(f"cannot remove the crontab of {name}: {removed.stdout.strip() or removed.rc}")
    except _command.MissingBinaryError:
        pass
    jobs: List[str] = []
    try:
        queue = _command.run(["atq"], timeout=30)
        for line in queue.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[-1] == name and fields[0].isdigit():
                jobs.append(fields[0])
        if jobs and not check_mode:
            _command.run(["atrm"] + jobs, timeout=30)
    except _command.MissingBinaryError:
        pass
    return {"crontab": crontab, "at_jobs": jobs}


def _owned_entries(directory: str, uid: int) -> List[str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            if os.lstat(path).st_uid == uid:
                found.append(path)
        except OSError:
            continue
    return sorted(found)


def _remove(path: str) -> None:
    """Remove *path* without following links (shutil.rmtree walks by descriptor on Linux)."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def ipc_objects(uid: int) -> List[Tuple[str, str]]:
    """(ipcrm flag, id) of every System V IPC object that *uid* owns or created."""
    found = []
    for kind, flag, owner, creator in _IPC:
        try:
            with open(f"/proc/sysvipc/{kind}", "rb") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            try:
                if uid in (int(fields[owner]), int(fields[creator])):
                    found.append((flag, fields[1].decode("ascii")))
            except (IndexError, ValueError):
                continue
    return found


def remove_leftovers(uid: int, name: str, check_mode: bool = False) -> List[str]:
    """Remove what *uid* left in the temporary directories, its IPC objects and its mail; returns what (or would)."""
    removed: List[str] = []
    for directory in TEMP_DIRECTORIES:
        for path in _owned_entries(directory, uid):
            if not check_mode:
                _remove(path)
            removed.append(path)
    for flag, ident in ipc_objects(uid):
        if not check_mode:
            try:
                _command.run(["ipcrm", flag, ident], timeout=30)
            except _command.MissingBinaryError:
                continue
        removed.append(f"ipc {flag} {ident}")
    for directory in MAIL_DIRECTORIES:
        path = os.path.join(directory, name)
        try:
            if os.lstat(path).st_uid == uid:
                if not check_mode:
                    _remove(path)
                removed.append(path)
        except OSError:
            continue
    return removed


def describe(processes: Sequence[Process]) -> List[Dict[str, object]]:
    return [{"pid": p.pid, "command": p.command, "state": p.state} for p in processes]
