# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A pidfile held under a lock, and the verbs that use it: is it running, signal it, stop it.

PRIVATE to the sysops.fleet collection. Pure standard library; Linux /proc.

Whether a daemon runs is decided by the pidfile's ``flock`` lock, never by
the file's existence: a file left by a killed daemon is unlocked, so it is
taken over, and a reused pid cannot make a dead daemon look alive (the
gap python-daemon's lockfile leaves open).

The file itself is not trusted. It is opened only as a regular file of this
process's own user (``_files.open_regular``: no symlink followed, no FIFO
blocked on), and a pid read from it is signalled only after ``/proc`` shows
a process of this same user whose command line runs *program* (the
``fleet-watcher`` script). A forged pid, or a lock held by some other
process, gets a refusal that names it, never a signal. Root never calls
these: it hands the command to the daemon's user (``_handoff``), so the
kernel, too, refuses a signal to anyone else's process. ``PidFile.acquire``
can put aside whatever is not the daemon's pidfile, so that nothing the
user plants keeps the daemon from starting.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import stat
import time
from typing import List, Optional

from . import _files

_LOCKED = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


class PidFileError(Exception):
    """The pidfile cannot be used, or what it names is not ours to signal; the message says why."""


class AlreadyRunning(PidFileError):
    """Another process holds the pidfile's lock."""

    def __init__(self, pidfile: str, pid: Optional[int]):
        who = f"pid {pid}" if pid else "a process that has not written its pid yet"
        super().__init__(f"already running ({who}, pidfile {pidfile} is locked)")
        self.pidfile = pidfile
        self.pid = pid


def _open(path: str, flags: int = os.O_RDONLY) -> int:
    """The pidfile, a regular file of this process's user, or PidFileError saying what it is."""
    try:
        return _files.open_regular(path, flags, 0o644, owner=os.geteuid())
    except _files.UnsafeFile as exc:
        raise PidFileError(f"pidfile {exc.strerror}") from None


def _pid_in(fd: int) -> Optional[int]:
    text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 1 << 22 else None


def read_pid(path: str) -> Optional[int]:
    """The pid written in *path*; None if the file is missing, garbled or not a regular file of ours."""
    try:
        fd = _open(path)
    except (OSError, PidFileError):
        return None
    try:
        return _pid_in(fd)
    finally:
        os.close(fd)


def running_pid(path: str) -> Optional[int]:
    """The pid written by the live process holding *path*'s lock; None if nobody holds it.

    0 when the lock is held but no pid is written yet (a daemon in the
    middle of starting). Probing takes a shared lock for an instant, which
    ``PidFile.acquire`` tolerates by retrying.
    """
    try:
        fd = _open(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PidFileError(f"cannot open pidfile {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _LOCKED:
                return _pid_in(fd) or 0
            raise PidFileError(f"cannot probe the lock of pidfile {path}: {exc.strerror}") from exc
        return None
    finally:
        os.close(fd)


def _proc_uids(pid: int) -> Optional[set]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    return {int(u) for u in line.split()[1:]}
    except (OSError, ValueError):
        return None
    return None


def _proc_argv(pid: int) -> list:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [a.decode("utf-8", "replace") for a in handle.read(65536).split(b"\0") if a]
    except OSError:
        return []


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def verify(pid: int, program: Optional[str], uid: Optional[int] = None) -> Optional[str]:
    """Why *pid* is not the daemon to signal, or None when it is.

    It must be a live process whose real, effective and saved uid are all
    *uid* (default: ours) and, with *program*, one of whose arguments is
    that very file (the daemon's command line runs the same script).
    """
    uid = os.geteuid() if uid is None else uid
    uids = _proc_uids(pid)
    if uids is None:
        return f"pid {pid} is not a running process"
    if uids != {uid}:
        return f"pid {pid} runs as uid {', '.join(str(u) for u in sorted(uids))}, not as uid {uid}"
    if program:
        argv = _proc_argv(pid)
        if not any(_same_file(arg, program) for arg in argv if arg.startswith("/") or os.sep in arg):
            shown = " ".join(" ".join(argv).split())[:120] or "?"
            return f"pid {pid} runs '{shown}', not {program}"
    return None


def holder(path: str, program: Optional[str] = None) -> Optional[int]:
    """The verified daemon holding *path*'s lock; None if nobody holds it; PidFileError if not ours."""
    pid = running_pid(path)
    if not pid:
        return None if pid is None else 0
    why = verify(pid, program)
    if why:
        raise PidFileError(f"pidfile {path} is locked, but {why}: refusing to signal it")
    return pid


class PidFile:
    """A pidfile whose ``flock`` lock, not its existence, says "running".

    The lock belongs to the open file description, so it survives the
    daemon's forks and dies with the last process holding the descriptor:
    a crashed daemon leaves an unlocked file that the next start takes over.
    """

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.fd: Optional[int] = None
        self.stale_pid: Optional[int] = None  # pid found in a file taken over from a dead process
        self.pid: Optional[int] = None
        self.replaced: List[str] = []  # what acquire() put aside: not this daemon's pidfile

    def acquire(self, wait: float = 1.0, take_over_from: Optional[str] = None) -> None:
        """Take the lock, or raise AlreadyRunning naming the holder.

        A failed lock is retried for up to *wait* seconds while the holder
        is not a live process (``status`` probing, or a daemon that is just
        removing its file).

        With *take_over_from* (the daemon's program), whatever is not this
        daemon's pidfile is put aside instead of stopping the start: an
        entry that is no regular file of ours (a link, a FIFO, a directory)
        is removed, and a file locked by a process that is not *that*
        program run by this user loses its name (the lock stays on a file
        nobody looks at) for a new one. ``replaced`` says what was there.
        Only the daemon's user can have planted either in its own run
        directory, and removing a name follows nothing.
        """
        deadline = time.monotonic() + wait
        while True:
            try:
                fd = self._open_and_lock()
            except PidFileError as exc:
                if take_over_from is None or not self._put_aside(str(exc)):
                    raise
                continue
            if fd is None:
                holder_pid = read_pid(self.path)
                alive = _alive(holder_pid)
                if alive and (take_over_from is None or verify(holder_pid, take_over_from) is None):
                    raise AlreadyRunning(self.path, holder_pid)
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                if take_over_from is None or not self._put_aside(
                        f"pidfile {self.path} was locked by "
                        + (f"pid {holder_pid}, which is not {take_over_from} run by this user" if holder_pid
                           else "a process that wrote no pid")):
                    raise AlreadyRunning(self.path, holder_pid)
                continue
            if self._still_ours(fd):
                self.fd = fd
                self.stale_pid = _pid_in(fd)
                return
            os.close(fd)  # the file was unlinked by a stopping daemon after we opened it: again

    def _put_aside(self, why: str) -> bool:
        """Remove whatever is at the pidfile's path (never following it); False if nothing could be removed."""
        try:
            st = os.lstat(self.path)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(self.path)
            else:
                os.unlink(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        self.replaced.append(why)
        return len(self.replaced) <= 3

    def _open_and_lock(self) -> Optional[int]:
        try:
            fd = _open(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise PidFileError(f"cannot open pidfile {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in _LOCKED:
                return None
            raise PidFileError(f"cannot lock pidfile {self.path}: {exc.strerror}") from exc
        return fd

    def _still_ours(self, fd: int) -> bool:
        try:
            here = os.lstat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)

    def write(self, pid: int) -> None:
        if self.fd is None:
            raise PidFileError("write() before acquire()")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{pid}\n".encode("ascii"), 0)
        self.pid = pid

    def release(self) -> None:
        """Remove the file (if it is still ours and still names us) and drop the lock."""
        if self.fd is None:
            return
        try:
            if self._still_ours(self.fd) and _pid_in(self.fd) in (self.pid, None):
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None


def _alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_daemon(pidfile: str, signum: int, program: Optional[str] = None) -> Optional[int]:
    """Send *signum* to the verified daemon holding *pidfile*; its pid, or None if none runs."""
    pid = holder(pidfile, program)
    if not pid:
        return None
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return None
    except PermissionError as exc:
        raise PidFileError(f"not allowed to signal pid {pid} (run as its user)") from exc
    return pid


def stop(pidfile: str, timeout: float = 10.0, kill: bool = True, program: Optional[str] = None) -> Optional[int]:
    """SIGTERM the daemon and wait until its lock is gone; SIGKILL after *timeout* if *kill*.

    Returns the pid that was stopped, None if nothing was running. Before
    the SIGKILL the holder is verified again. A pidfile left behind by a
    SIGKILLed daemon is removed.
    """
    pid = signal_daemon(pidfile, signal.SIGTERM, program)
    if pid is None:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running_pid(pidfile) is None:
            return pid
        time.sleep(0.05)
    if not kill:
        raise PidFileError(f"pid {pid} did not stop within {timeout:g}s of SIGTERM")
    signal_daemon(pidfile, signal.SIGKILL, program)
    deadline = time.monotonic() + 5.0
    while running_pid(pidfile) is not None:
        if time.monotonic() > deadline:
            raise PidFileError(f"pid {pid} survived SIGKILL (stuck in the kernel?); pidfile {pidfile} is still locked")
        time.sleep(0.05)
    leftover = PidFile(pidfile)
    try:
        leftover.acquire(wait=0)
        leftover.pid = read_pid(pidfile)
        leftover.release()
    except PidFileError:
        pass
    return pid
