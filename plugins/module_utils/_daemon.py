# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Become a daemon: the PEP 3143 steps, with the standard library only.

PRIVATE to the sysops.fleet collection. Pure standard library; POSIX.

``Daemon.open()`` performs the steps in this order (names as in PEP 3143
and systemd's daemon(7)):

1. *Prepare, still attached*: make the pidfile's directory if missing,
   open the log files and **acquire the pidfile lock** (``_pidfile``). A
   daemon that is already running, or a log that cannot be written, is
   refused here, in the caller's terminal, before anything forks.
2. *Detach process context*: fork, ``setsid``, fork again, so the daemon
   is no session leader and can never reacquire a terminal. The calling
   process waits until the daemon reports that it is ready (or why it is
   not) and ``open()`` returns the daemon's pid there.
3. *Change working directory* to ``/`` and *set the umask* (022 unless
   told otherwise, never 0).
4. *Reset the signal mask*, ignore SIGTTIN, SIGTTOU and SIGTSTP, map
   SIGTERM/SIGINT to "stop" and SIGHUP to "reopen the logs and reload".
5. *Write the pid* into the pidfile, whose lock is kept until exit.
6. *Close all open files* but those still needed (pidfile, logs, ``keep_fds``).
7. *Redirect the standard streams*: stdin from /dev/null, stdout and
   stderr to the log files.
8. *Sanitize the environment* and report "ready" to the waiting caller.

With ``detach=False`` (systemd ``Type=simple``, containers) steps 2, 6
and 8 are skipped; the pidfile is still held, so ``status`` and a second
start behave the same whatever started the daemon.

*Change process owner* is not a step here: the daemon is started as its
user (root hands ``fleet-watcher`` to that user, ``_handoff``), so that every file of the daemon is
opened, created and locked by that user, never by root on its behalf. Log
files are opened as ``_files.open_regular`` does: a symbolic link or a FIFO
planted at their path is refused, not followed or blocked on.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import sys
import time
from typing import Dict, Iterable, List, Optional, Sequence

from . import _files, _pidfile

DEFAULT_UMASK = 0o022
READY_TIMEOUT = 30.0
# Kept when the environment is sanitized (plus LC_*).
KEEP_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR")
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class DaemonError(Exception):
    """The daemon could not be started or controlled; the message says why."""


def open_log(path: str) -> int:
    """An append-only descriptor on the regular file *path* of this user, created 0640 if missing."""
    try:
        return _files.open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640, owner=os.geteuid())
    except OSError as exc:
        raise DaemonError(f"cannot open log file {path}: {exc.strerror}") from exc


def open_fds() -> List[int]:
    """Descriptors open in this process (from /proc or /dev/fd, else every possible number)."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        found = []
        for name in names:
            if name.isdigit():
                try:
                    os.fstat(int(name))  # drop the descriptor listdir itself used
                except OSError:
                    continue
                found.append(int(name))
        return sorted(found)
    limit = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
    return list(range(0, max(limit, 256)))


def close_open_files(keep: Iterable[int]) -> None:
    """Close every inherited descriptor above stderr except those in *keep*."""
    kept = set(keep) | {0, 1, 2}
    for fd in open_fds():
        if fd not in kept:
            try:
                os.close(fd)
            except OSError:
                pass


def flush_std_streams() -> None:
    """Flush Python's stdout and stderr before their descriptors fork, move or close."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def sanitized_environment(environ: Dict[str, str], keep: Sequence[str] = ()) -> Dict[str, str]:
    """Only what a daemon needs (daemon(7)): PATH, HOME, user, locale, TZ, TMPDIR and *keep*."""
    clean = {k: v for k, v in environ.items() if k in KEEP_ENV or k.startswith("LC_") or k in keep}
    clean.setdefault("PATH", SAFE_PATH)
    return clean


class Daemon:
    """One daemon: the PEP 3143 steps, a held pidfile, and stop/reload requests from signals.

    Open every file the daemon needs through this object (``log_file``) or
    after ``open()``: descriptors opened before it are closed in step 7, and
    a Python object still holding one would write into whatever file later
    gets that number.
    """

    def __init__(self, pidfile: str, log_file: Optional[str] = None, error_log: Optional[str] = None,
                 umask: int = DEFAULT_UMASK, workdir: str = "/", detach: bool = True, keep_fds: Sequence[int] = (),
                 keep_env: Sequence[str] = (), ready_timeout: float = READY_TIMEOUT, program: Optional[str] = None):
        if not 0 <= umask <= 0o777:
            raise DaemonError(f"umask must be between 000 and 777 (octal), got {umask:o}")
        self.pidfile = _pidfile.PidFile(pidfile)
        self.log_file = os.path.abspath(log_file) if log_file else None
        self.error_log = os.path.abspath(error_log) if error_log else self.log_file
        self.umask = umask
        self.workdir = workdir
        self.detach = detach
        self.keep_fds = tuple(keep_fds)
        self.keep_env = tuple(keep_env)
        self.program = program  # this daemon's program: a pidfile held by anything else is taken over
        self.ready_timeout = ready_timeout
        self.stop_requested = False
        self.reload_requested = False
        self.stop_signal: Optional[int] = None
        self._wake_r: Optional[int] = None
        self._wake_w: Optional[int] = None
        self._logs: Dict[str, int] = {}
        self._ready_fd: Optional[int] = None
        self._opened = False

    # ---- step 1: prepare, still attached --------------------------------------------------

    def _prepare(self) -> None:
        directory = os.path.dirname(self.pidfile.path)
        if not os.path.isdir(directory):
            try:
                os.mkdir(directory, 0o755)
            except FileExistsError:
                pass
            except OSError as exc:
                raise DaemonError(f"cannot create the pidfile's directory {directory}: {exc.strerror}") from exc
        for path in {p for p in (self.log_file, self.error_log) if p}:
            self._logs[path] = open_log(path)
        self.pidfile.acquire(take_over_from=self.program)

    # ---- the whole sequence ---------------------------------------------------------------

    def open(self) -> int:
        """Become the daemon.

        Detached: returns the daemon's pid in the calling process, once the
        daemon is ready (the caller should then exit), and 0 in the daemon.
        Raises ``_pidfile.AlreadyRunning``, ``_pidfile.PidFileError`` or
        DaemonError in the calling process when the daemon cannot start. In
        the foreground, returns 0.
        """
        if self._opened:
            raise DaemonError("the daemon is already open")
        try:
            self._prepare()
        except BaseException:
            self._close_logs()
            self._drop_lock()
            raise
        if self.detach:
            pid = self._detach_process_context()
            if pid:
                return pid
        try:
            self._become_daemon()
        except BaseException as exc:
            if self.detach:
                self._report(f"ERR {exc}")
                os._exit(1)
            raise
        if self.detach:
            self._report(f"OK {os.getpid()}")
        return 0

    def _drop_lock(self) -> None:
        if self.pidfile.fd is not None:
            os.close(self.pidfile.fd)
            self.pidfile.fd = None

    def _detach_process_context(self) -> int:
        """fork, setsid, fork. Returns the daemon's pid in the caller, 0 in the daemon."""
        flush_std_streams()
        ready_r, ready_w = os.pipe()
        first = os.fork()
        if first:
            os.close(ready_w)
            self._drop_lock()  # the daemon holds it now; closing ours does not release it
            self._close_logs()
            try:
                return self._wait_ready(ready_r, first)
            finally:
                os.close(ready_r)
        os.close(ready_r)
        self._ready_fd = ready_w
        try:
            os.setsid()
            if os.fork():
                os._exit(0)  # the session leader goes; its child can never get a terminal
        except BaseException as exc:  # noqa: B036 - nothing may escape a forked child
            self._report(f"ERR cannot detach: {exc}")
            os._exit(1)
        return 0

    def _wait_ready(self, ready_r: int, first: int) -> int:
        deadline = time.monotonic() + self.ready_timeout
        chunks: List[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DaemonError(f"the daemon did not report ready within {self.ready_timeout:g}s; "
                                  f"see {self.error_log or 'its log'}")
            readable, _w, _x = select.select([ready_r], [], [], left)
            if not readable:
                continue
            data = os.read(ready_r, 4096)
            if not data:
                break
            chunks.append(data)
        try:
            os.waitpid(first, 0)
        except ChildProcessError:
            pass
        message = b"".join(chunks).decode("utf-8", "replace").strip()
        if message.startswith("OK "):
            return int(message[3:])
        if message.startswith("ERR "):
            raise DaemonError(message[4:])
        raise DaemonError(f"the daemon exited while starting; see {self.error_log or 'its log'}")

    def _report(self, message: str) -> None:
        fd = self._ready_fd
        if fd is None:
            return
        try:
            os.write(fd, message.encode("utf-8", "replace"))
            os.close(fd)
        except OSError:
            pass
        self._ready_fd = None

    def _become_daemon(self) -> None:
        os.chdir(self.workdir)
        os.umask(self.umask)
        self._set_signal_handlers()
        self.pidfile.write(os.getpid())
        keep = set(self.keep_fds) | set(self._logs.values()) | {self.pidfile.fd}
        keep |= {fd for fd in (self._wake_r, self._wake_w, self._ready_fd) if fd is not None}
        if self.detach:
            close_open_files(keep)
        self._redirect_streams()
        if self.detach:
            clean = sanitized_environment(dict(os.environ), self.keep_env)
            os.environ.clear()
            os.environ.update(clean)
        self._opened = True
        atexit.register(self.close)

    # ---- step 5: signals ------------------------------------------------------------------

    def _set_signal_handlers(self) -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
        for name in ("SIGTTIN", "SIGTTOU", "SIGTSTP"):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _wake(self) -> None:
        if self._wake_w is not None:
            try:
                os.write(self._wake_w, b"!")
            except OSError:
                pass  # the pipe is full: a wake-up is pending anyway

    def _on_stop(self, signum, frame):
        if self.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop_requested = True
        self.stop_signal = signum
        self._wake()

    def _on_reload(self, signum, frame):
        self.reload_requested = True
        self.reopen_logs()
        self._wake()

    def wait(self, seconds: float) -> bool:
        """Sleep up to *seconds*; return early (True) when a stop or reload was requested."""
        if self.stop_requested or self.reload_requested:
            return True
        if self._wake_r is None:
            time.sleep(max(0.0, seconds))
            return False
        deadline = time.monotonic() + max(0.0, seconds)
        while not (self.stop_requested or self.reload_requested):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                select.select([self._wake_r], [], [], left)
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for safety
                pass
            try:
                while os.read(self._wake_r, 512):
                    pass
            except OSError:
                pass
        return True

    def take_reload(self) -> bool:
        """True once per SIGHUP: the caller reloads its configuration."""
        asked, self.reload_requested = self.reload_requested, False
        return asked

    # ---- step 8: standard streams, and their reopening after logrotate --------------------

    def _redirect_streams(self) -> None:
        flush_std_streams()
        if self.detach:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            if not self.log_file:
                os.dup2(null, 1)
            if not self.error_log:
                os.dup2(null, 2)
            os.close(null)
        if self.log_file:
            os.dup2(self._logs[self.log_file], 1)
        if self.error_log:
            os.dup2(self._logs[self.error_log], 2)
        self._close_logs()

    def _close_logs(self) -> None:
        for fd in self._logs.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._logs = {}

    def reopen_logs(self) -> None:
        """Point stdout/stderr at the log files' current paths (after logrotate moved them)."""
        targets = [(self.log_file, 1), (self.error_log, 2)]
        flush_std_streams()
        for path, std in targets:
            if not path:
                continue
            try:
                fd = open_log(path)
            except DaemonError as exc:
                try:
                    os.write(2, f"{exc}; still writing to the old file\n".encode("utf-8", "replace"))
                except OSError:
                    pass
                continue
            os.dup2(fd, std)
            os.close(fd)

    # ---- the end --------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the pidfile and release its lock; safe to call more than once."""
        if self.pidfile.fd is not None and self.pidfile.pid == os.getpid():
            self.pidfile.release()
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wake_r = self._wake_w = None

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
