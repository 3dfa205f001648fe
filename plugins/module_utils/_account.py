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
3. ``remove_leftovers``: its entries in ``/tmp``, ``/var/tmp``,
   ``/dev/shm`` and ``/run/lock`` (at the top, and inside the world-writable
   directories below them that are not its own, such as /tmp/.X11-unix: a
   bounded walk, no link followed, same filesystem), its POSIX message
   queues, its System V IPC objects, its mail spool and its persistent
   keyring: what a later owner of the same uid would otherwise inherit (a
   set-uid copy of a shell left in /tmp/.X11-unix makes anyone that owner).
   Every tree goes through ``_tree`` (no recursion, one descriptor).

**Containers share the uid.** Rootful containers (docker, podman without
a user namespace) share this kernel's uids: a container whose image runs
as uid 999 (postgres) runs as the same uid as a system user made here
with ``useradd --system``. ``kill(-1)`` reaches every PID namespace below
ours, so it would kill them too; sparing them is no answer either, since
the uid may signal and ptrace its container twins and hide in them. A
process of the uid in another PID namespace but in our user namespace is a
container's (only a privileged process can make such a namespace; the uid
itself cannot): while one is there, nothing is signalled and
ContainerError names them, unless the caller says to kill them too. A
process the uid put in a user namespace of its own (``unshare -U``) is
still the uid's, and is stopped.

With a *program*, only processes whose command line runs that program are
stopped (an account the watcher shares with others: their processes are
not the watcher's to stop), each after a pidfd pinned it and /proc showed
it runs that program; nothing else is removed.
"""

from __future__ import annotations

import ctypes
import os
import platform
import pwd
import signal
import stat
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from . import _command, _fanout, _privilege, _text, _tree

TEMP_DIRECTORIES = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
WALK_DEPTH = 8          # world-writable directories inside world-writable directories, this deep at most
WALK_ENTRIES = 200000   # entries looked at under each temporary directory, at most
MAIL_DIRECTORIES = ("/var/mail", "/var/spool/mail")
DEFAULT_TIMEOUT = 30.0
# How long one killer may take before it counts as stopped by the uid and another is sent: a killer left
# alone acts within milliseconds; a process of the uid that stops every process of its uid in a loop wins
# some attempts, so many short attempts within the deadline (2 s each let a 30 s deadline pass).
KILLER_WAIT = 0.2
MQUEUE_TIMEOUT = 30.0   # seconds for the worker that lists the queues in its own mount namespace
_IPC = (("shm", "-m", 7, 9), ("sem", "-s", 4, 6), ("msg", "-q", 7, 9))  # /proc/sysvipc file, ipcrm flag, uid, cuid


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "i386": 288, "i686": 288, "armv7l": 311,
           "ppc64le": 280, "ppc64": 280, "s390x": 280}  # the keyctl syscall's number per machine
KEYCTL_GET_PERSISTENT, KEYCTL_INVALIDATE, KEYCTL_READ = 22, 21, 11
KEY_SPEC_PROCESS_KEYRING = -2


class AccountError(Exception):
    """The account's processes could not all be stopped in time; the message names them."""


class BorrowerError(AccountError):
    """Processes of other users hold the uid as their saved uid (kill(-1) as the uid reaches them): nothing was
    signalled; ``processes`` lists them."""

    def __init__(self, message: str, processes: List[Dict[str, object]]):
        super().__init__(message)
        self.processes = processes


class ContainerError(AccountError):
    """Processes of the uid run in containers: nothing was signalled; ``processes`` lists them."""

    def __init__(self, message: str, processes: List[Dict[str, object]]):
        super().__init__(message)
        self.processes = processes


@dataclass
class Process:
    """One process as /proc shows it."""

    pid: int
    uids: Tuple[int, ...]   # real, effective, saved, file system
    state: str              # R, S, D, T, t, Z, ...
    argv: List[str]
    threads: int = 1        # a leader that exited shows Z while its other threads run on

    @property
    def gone(self) -> bool:
        """A zombie with no thread left (a thread-group leader that called exit() alone is not gone)."""
        return self.state == "Z" and self.threads <= 1

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
    threads = 1
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            uids = tuple(int(u) for u in line.split()[1:5])
        elif line.startswith(b"State:"):
            state = line.split()[1].decode("ascii", "replace")
        elif line.startswith(b"Threads:"):
            threads = int(line.split()[1])
    if not uids:
        return None
    return Process(pid, uids, state, [os.fsdecode(a) for a in cmdline.split(b"\0") if a], threads)


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
    """The live processes whose real uid is *uid* (and that run *program*, if given); zombies with no thread left out.

    The real uid: a set-uid program the user started is the user's too, but
    a root daemon that borrows the uid for a moment (seteuid) is not.
    """
    return _live(lambda process: process.uids[0] == uid and runs(process, program))


def _live(wanted: Callable[[Process], bool]) -> List[Process]:
    """The live processes (zombies with no thread left out) *wanted* says yes to, this one never."""
    found = []
    me = os.getpid()
    for pid in _pids():
        if pid == me:
            continue
        process = read_process(pid)
        if process and not process.gone and wanted(process):
            found.append(process)
    return found


def _namespace(pid: object, kind: str) -> Optional[str]:
    """The *kind* namespace of *pid* (a number or "self") as its /proc link reads ("pid:[4026531836]"), or None."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


@dataclass(frozen=True)
class Namespaces:
    """This process's PID and user namespaces: what a container's process differs from in one, not the other."""

    pid: Optional[str]
    user: Optional[str]

    @classmethod
    def here(cls) -> "Namespaces":
        return cls(_namespace("self", "pid"), _namespace("self", "user"))

    def in_container(self, pid: int) -> bool:
        """Whether *pid* runs in another PID namespace that a privileged process made (a container's).

        Another PID namespace in our user namespace: only a process with CAP_SYS_ADMIN here can make
        one, never the uid. One the uid made for itself hangs below a user namespace of its own, and is
        the uid's. A link that cannot be read (no CAP_SYS_PTRACE, as inside a container) counts as ours.
        """
        theirs = _namespace(pid, "pid")
        if self.pid is None or theirs is None or theirs == self.pid:
            return False
        return _namespace(pid, "user") == self.user


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


def split_processes(uid: int, program: Optional[str] = None) -> Tuple[List[Process], List[Process]]:
    """The live processes of *uid* (running *program*): those of this host, and those in containers."""
    here = Namespaces.here()
    ours: List[Process] = []
    theirs: List[Process] = []
    for process in processes_of(uid, program):
        (theirs if here.in_container(process.pid) else ours).append(process)
    return ours, theirs


def processes_to_stop(entry: pwd.struct_passwd, program: Optional[str] = None,
                      containers: str = "fail") -> List[Process]:
    """What stopping *entry* (running *program*) would kill; ContainerError while some run in containers,
    unless *containers* is "kill" (then they are among them). The one check of check mode and of a real stop."""
    ours, theirs = split_processes(entry.pw_uid, program)
    if theirs and containers != "kill":
        raise ContainerError(_containers_message(entry, theirs), describe(theirs))
    lent = borrowers(entry.pw_uid) if program is None else []
    if lent:
        raise BorrowerError(_borrowers_message(entry, lent), describe(lent))
    return ours + theirs


def stop_processes(entry: pwd.struct_passwd, program: Optional[str] = None,
                   timeout: float = DEFAULT_TIMEOUT, containers: str = "fail") -> Stopped:
    """Kill every process of *entry* (running *program*, if given) within *timeout* seconds; see the module docstring.

    While processes of the uid run in containers, signals nothing and raises ContainerError, unless
    *containers* is "kill" (then they are killed too). Raises AccountError for root or for this
    process's own uid, unless a *program* says which of their processes to stop.
    """
    uid = entry.pw_uid
    if program is None and uid == 0:
        raise AccountError("refusing to stop every process of root (give a program to stop only that one)")
    if program is None and uid in (os.getuid(), os.geteuid()):
        raise AccountError(f"refusing to stop every process of uid {uid}, which runs this very program")
    deadline = time.monotonic() + timeout
    done = Stopped()
    seen = {p.pid: p for p in processes_to_stop(entry, program, containers)}
    while True:
        done.passes += 1
        if program is None:
            _kill_as(entry, min(KILLER_WAIT, max(0.1, deadline - time.monotonic())))
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


def borrowers(uid: int) -> List[Process]:
    """Processes of other users whose saved uid is *uid*: kill(-1) as *uid* reaches them too (the kernel lets a
    sender signal a process whose real or saved uid is its own). A root process that switched to the uid with
    setreuid()/setresuid() and may switch back; the uid itself cannot make one (seteuid() alone keeps the saved
    uid, as cron does)."""
    return _live(lambda process: process.uids[0] != uid and process.uids[2] == uid)


def _borrowers_message(entry: pwd.struct_passwd, lent: Sequence[Process]) -> str:
    """Why nothing was stopped: processes of other users that kill(-1) as the uid would reach, named."""
    shown = "; ".join(f"pid {p.pid} (uid {p.uids[0]}) {_text.printable(p.command)}" for p in lent[:5])
    more = f" and {len(lent) - 5} more" if len(lent) > 5 else ""
    return (f"{len(lent)} process(es) of other users hold uid {entry.pw_uid} ({entry.pw_name}) as their saved uid "
            f"(switched to it with setreuid or setresuid): {shown}{more}. Stopping {entry.pw_name} signals every "
            "process the uid may signal, so they would be killed too. Nothing was stopped: stop them (or let them "
            "switch back), then run this again")


def _containers_message(entry: pwd.struct_passwd, theirs: Sequence[Process]) -> str:
    """Why nothing was stopped: the uid's processes in containers, named, and what to do."""
    shown = "; ".join(f"pid {p.pid} {_text.printable(p.command)}" for p in theirs[:5])
    more = f" and {len(theirs) - 5} more" if len(theirs) > 5 else ""
    return (f"{len(theirs)} process(es) of uid {entry.pw_uid} ({entry.pw_name}) run in containers (another PID "
            f"namespace made by root): {shown}{more}. Rootful containers share this host's uids, so stopping "
            f"{entry.pw_name} would kill them too, and sparing them would leave {entry.pw_name} a place to hide "
            "(it may signal and ptrace them). Nothing was stopped: stop those containers (or give their image "
            "another uid), or set containers=kill to kill them as well")


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


def _remove(path: str) -> None:
    """Remove *path* without following links, however deep (``_tree``); errors name the path."""
    try:
        _tree.remove_tree(path)
    except _tree.TreeError as exc:
        raise AccountError(str(exc)) from None


def remove_paths(paths: Sequence[str], check_mode: bool = False) -> List[str]:
    """Remove each of *paths* (trees another user could write) with ``_tree``; returns those that were there."""
    removed = []
    for path in paths:
        if not os.path.isabs(path) or os.path.normpath(path) == "/":
            raise AccountError(f"paths: {_text.printable(path)!r} is not an absolute path below /")
        if not os.path.lexists(path):
            continue
        if not check_mode:
            _remove(path)
        removed.append(path)
    return removed


def _world_writable_dir(st: os.stat_result, uid: int, device: int) -> bool:
    """A directory anyone may write in (sticky or not), not the uid's own, on the walk's filesystem."""
    return (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH != 0 and st.st_uid != uid
            and st.st_dev == device)


def _owned_in(directory: str, uid: int, check_mode: bool) -> List[str]:
    """Remove what *uid* owns in *directory* and in the world-writable directories below it (bounded walk)."""
    try:
        top = os.open(directory, _DIR_FLAGS)
    except OSError:
        return []
    device = os.fstat(top).st_dev
    found: List[str] = []
    stack = [(top, directory, 0)]
    seen = 0
    try:
        while stack and seen < WALK_ENTRIES:
            fd, label, depth = stack.pop()
            try:
                for name in sorted(os.listdir(fd)):
                    seen += 1
                    where = f"{label.rstrip('/')}/{name}"
                    try:
                        st = os.lstat(name, dir_fd=fd)
                    except FileNotFoundError:
                        continue
                    if st.st_uid == uid:
                        if not check_mode:
                            try:
                                _tree.remove_at(fd, name, where, device)
                            except _tree.TreeError as exc:
                                raise AccountError(str(exc)) from None
                        found.append(where)
                    elif depth < WALK_DEPTH and _world_writable_dir(st, uid, device):
                        try:
                            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                        except OSError:
                            continue
                        stack.append((child, where, depth + 1))
            finally:
                os.close(fd)
    finally:
        for fd, _label, _depth in stack:
            os.close(fd)
    return sorted(found)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mqueue_names(task: Tuple[int, bool]) -> List[str]:  # pragma: no cover - runs in a fan_out worker
    """In a mount namespace of its own, mount the message-queue filesystem and remove *uid*'s queues: their names."""
    uid, check_mode = task
    libc = _libc()
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
        raise OSError(ctypes.get_errno(), "unshare")
    if libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) != 0:  # MS_REC | MS_PRIVATE
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    if libc.mount(b"mqueue", b"/tmp", b"mqueue", 0, None) != 0:  # over /tmp, seen by this namespace alone
        raise OSError(ctypes.get_errno(), "mount -t mqueue")
    return _owned_queues("/tmp", uid, check_mode)


def remove_message_queues(uid: int, check_mode: bool = False) -> List[str]:
    """Remove the POSIX message queues *uid* owns (whether or not /dev/mqueue is mounted): ``mqueue /NAME`` each.

    The private mount is made in a worker of the core's fan-out, which ends with it (and within
    MQUEUE_TIMEOUT seconds); where no mount may be made, the host's /dev/mqueue is read instead.
    """
    [outcome] = _fanout.fan_out(_mqueue_names, [(uid, check_mode)], workers=1, timeout=MQUEUE_TIMEOUT)
    if outcome.ok:
        names = outcome.value
    elif os.path.isdir("/dev/mqueue"):  # no mount allowed here (a container without CAP_SYS_ADMIN): the host's
        names = _owned_queues("/dev/mqueue", uid, check_mode)
    else:
        raise AccountError("cannot list the POSIX message queues: mounting the mqueue filesystem in a private "
                           "mount namespace failed and /dev/mqueue is not there (is this root?)")
    return [f"mqueue /{_text.printable(name)}" for name in names]


def _owned_queues(directory: str, uid: int, check_mode: bool) -> List[str]:
    """The queues *uid* owns in a mounted mqueue filesystem, removed unless *check_mode*."""
    names = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        try:
            if os.lstat(path).st_uid == uid:
                if not check_mode:
                    os.unlink(path)
                names.append(name)
        except FileNotFoundError:
            continue
    return names


def invalidate_persistent_keyring(uid: int, check_mode: bool = False) -> str:
    """Invalidate *uid*'s persistent keyring (persistent-keyring(7)), which outlives its processes; says what happened.

    Asking for it creates it if there was none, so check mode does not ask.
    A kernel that refuses (no keyrings, another user namespace) is reported,
    not a failure: there is then nothing of the uid's there to inherit.
    """
    if check_mode:
        return "not looked at in check mode"
    number = _KEYCTL.get(platform.machine())
    if number is None:
        return f"not supported on {platform.machine()}"
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    keyring = libc.syscall(ctypes.c_long(number), ctypes.c_long(KEYCTL_GET_PERSISTENT), ctypes.c_long(uid),
                           ctypes.c_long(KEY_SPEC_PROCESS_KEYRING))
    if keyring < 0:
        return f"refused by the kernel: {os.strerror(ctypes.get_errno())}"
    size = libc.syscall(ctypes.c_long(number), ctypes.c_long(KEYCTL_READ), ctypes.c_long(keyring), None,
                        ctypes.c_long(0))
    if libc.syscall(ctypes.c_long(number), ctypes.c_long(KEYCTL_INVALIDATE), ctypes.c_long(keyring)) < 0:
        return f"refused by the kernel: {os.strerror(ctypes.get_errno())}"
    return f"invalidated ({max(size, 0) // 4} key(s) in it)"


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
    """Remove what *uid* left in the temporary directories, its queues, IPC objects and mail; returns what (or would).

    The persistent keyring is ``invalidate_persistent_keyring``'s.
    """
    removed: List[str] = []
    for directory in TEMP_DIRECTORIES:
        removed.extend(_owned_in(directory, uid, check_mode))
    removed.extend(remove_message_queues(uid, check_mode))
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
