# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hand a command to a less privileged user: run fresh as that user, with a deadline, output relayed.

PRIVATE to the sysops.fleet collection. Pure standard library; Linux.

When root runs ``fleet-watcher`` (cron's ``@reboot``, the role, logrotate's
``postrotate``), everything the command does belongs to the daemon's user.
A process root hands to that user is that user's to stop, kill or inspect,
so it gets nothing root cannot afford to lose, and root never waits on it
without a deadline:

* ``hand_off`` forks a child that starts a new session, keeps only
  stdin (``/dev/null``), stdout and stderr (pipes that root reads), gets a
  clean environment (``_privilege.clean_environment``), becomes the user
  (``_privilege.become``: undumpable throughout) and **executes the program
  anew**, so nothing of root's memory (arguments, secrets) reaches the user
  and the user's own interpreter path is proven on the spot (a Python
  under ``/root`` fails here, loudly, not later in the daemon).
  Root relays what the child writes (escaped, ``_text.relayed``; at most
  ``OUTPUT_LIMIT`` bytes per stream) and returns its exit code. A child that
  has not ended by the deadline (its user stopped it with SIGSTOP, say) is
  killed, and root says so. Root stops reading once the child has exited
  (plus a short grace): a grandchild that keeps the pipes open (the daemon
  itself, or the user's own process that took them) cannot hold root.
* ``exec_as`` replaces this process with the program run as the user
  (``fleet-watcher run`` started by root in the foreground: nobody waits on
  it but whoever started it, as with any foreground program).
"""

from __future__ import annotations

import errno
import os
import pwd
import select
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Dict, List, Optional, Sequence

from . import _privilege, _text

OUTPUT_LIMIT = 1 << 20  # bytes relayed per stream; a status line or a report is far less
DRAIN_GRACE = 0.2       # seconds to read what is left once the child has exited
_EXEC_FAILED = 127


@dataclass
class HandOff:
    """How a handed-off command ended."""

    code: int                   # its exit code; a negative signal number if a signal ended it
    timed_out: bool = False     # killed at the deadline
    exec_error: str = ""        # it never ran: why (the program cannot be run as that user)
    cut: List[str] = field(default_factory=list)  # streams cut at OUTPUT_LIMIT


def _child(entry: pwd.struct_passwd, argv: Sequence[str], env: Dict[str, str], out_w: int, err_w: int,
           report_w: int) -> None:
    """The forked child: shed root's descriptors, terminal and environment, become *entry*, exec; never returns."""
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        _privilege.close_descriptors(keep=[report_w])
        os.chdir("/")
        for number in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        _privilege.become(entry)
        os.execve(argv[0], list(argv), env)
    except BaseException as exc:  # noqa: BLE001 - the parent is told why, in one line
        if isinstance(exc, OSError) and exc.strerror:
            text = f"{exc.strerror} ({exc.filename or argv[0]})" if exc.errno != errno.EPERM else exc.strerror
        else:
            text = f"{type(exc).__name__}: {exc}"
        try:
            os.write(report_w, text.encode("utf-8", "replace")[:4000])
        finally:
            os._exit(_EXEC_FAILED)


class _Relay:
    """One stream of the child: read as it comes, escaped, passed on line by line, cut at the limit."""

    def __init__(self, fd: int, sink: BinaryIO, name: str):
        self.fd, self.sink, self.name = fd, sink, name
        self.pending = b""
        self.size = 0
        self.cut = False

    def read(self) -> bool:
        """Read what is there; False once the stream is closed. Past the limit it is read and dropped,
        so that the child is never blocked writing."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            self.flush(final=True)
            return False
        if self.cut:
            return True
        if self.size + len(data) > OUTPUT_LIMIT:
            data = data[:max(0, OUTPUT_LIMIT - self.size)]
            self.cut = True
        self.size += len(data)
        self.pending += data
        self.flush(final=False)
        return True

    def flush(self, final: bool) -> None:
        if final:
            lines, self.pending = self.pending, b""
        else:
            head, newline, rest = self.pending.rpartition(b"\n")
            if not newline:
                if len(self.pending) < 4096:
                    return
                head, rest = self.pending, b""
            lines, self.pending = head + newline, rest
        if lines:
            self._write(_text.relayed(lines).encode("utf-8", "surrogateescape"))
        if final and self.cut:
            self._write(f"\n[output cut at {OUTPUT_LIMIT} bytes]\n".encode("ascii"))

    def _write(self, data: bytes) -> None:
        try:
            self.sink.write(data)
            self.sink.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass


def hand_off(entry: pwd.struct_passwd, argv: Sequence[str], timeout: float, keep_env: Sequence[str] = (),
             stdout: Optional[BinaryIO] = None, stderr: Optional[BinaryIO] = None) -> HandOff:
    """Run *argv* (``argv[0]`` an absolute path) as *entry*, executed anew; see the module docstring.

    Returns within about *timeout* seconds whatever the child does.
    """
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr.buffer
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    env = _privilege.clean_environment(entry, keep=keep_env)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    report_r, report_w = os.pipe()  # close-on-exec: EOF means the exec worked
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through report_w
        for fd in (out_r, err_r, report_r):
            os.close(fd)
        _child(entry, argv, env, out_w, err_w, report_w)
    for fd in (out_w, err_w, report_w):
        os.close(fd)
    try:
        return _watch(pid, [_Relay(out_r, stdout, "stdout"), _Relay(err_r, stderr, "stderr")], report_r, timeout)
    except BaseException:  # Ctrl-C or a signal turned exception: the child must not outlive its caller
        _privilege.kill_child(pid)
        _privilege.reap(pid, 5.0)
        raise


def _watch(pid: int, relays: List[_Relay], report_r: int, timeout: float) -> HandOff:
    """Relay the child's output until it exits (then a short grace) or the deadline; kill it at the deadline."""
    deadline = time.monotonic() + timeout
    streams = {r.fd: r for r in relays}
    for fd in list(streams) + [report_r]:
        os.set_blocking(fd, False)
    report = bytearray()
    report_open = True
    status: Optional[int] = None
    exited_at: Optional[float] = None
    exit_fd = _pidfd(pid)  # readable once the child has exited: no polling delay
    try:
        while True:
            now = time.monotonic()
            if status is None:
                status = _privilege.reap(pid, 0.0)
                exited_at = now if status is not None else None
            if exited_at is not None and (not streams or now - exited_at >= DRAIN_GRACE):
                break
            if now >= deadline:
                break
            wait = min(deadline - now, (1.0 if exit_fd is not None else 0.05) if exited_at is None else DRAIN_GRACE)
            watched = list(streams) + ([report_r] if report_open else [])
            watched += [exit_fd] if exit_fd is not None and exited_at is None else []
            readable, _w, _x = select.select(watched, [], [], max(0.0, wait))
            for fd in readable:
                if fd == exit_fd:
                    continue
                if fd != report_r:
                    if not streams[fd].read():
                        del streams[fd]
                    continue
                chunk = _read_some(report_r)
                if chunk is not None:
                    report += chunk[:max(0, 4096 - len(report))]
                    report_open = bool(chunk)
        if report_open:
            report += (_read_some(report_r) or b"")[:max(0, 4096 - len(report))]
    finally:
        for relay in relays:
            if relay.fd in streams:
                relay.flush(final=True)
            os.close(relay.fd)
        os.close(report_r)
        if exit_fd is not None:
            os.close(exit_fd)
    timed_out = status is None
    if timed_out:
        _privilege.kill_child(pid)
        status = _privilege.reap(pid, 5.0)
    code = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
    exec_error = bytes(report).decode("utf-8", "replace").strip() if code == _EXEC_FAILED else ""
    return HandOff(code=code, timed_out=timed_out, exec_error=_text.words(exec_error, 500),
                   cut=[r.name for r in relays if r.cut])


def _pidfd(pid: int) -> Optional[int]:
    """A pidfd of our child (Linux 5.3+), or None where there is none: then the child is polled for."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _read_some(fd: int) -> Optional[bytes]:
    """What *fd* holds now; b"" at its end (or on an error, which ends it too); None if nothing yet."""
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def exec_as(entry: pwd.struct_passwd, argv: Sequence[str], keep_env: Sequence[str] = ()) -> None:
    """Become *entry* and execute *argv* in this very process, with only stdio and a clean environment."""
    env = _privilege.clean_environment(entry, keep=keep_env)
    _privilege.close_descriptors()
    os.chdir("/")
    _privilege.become(entry)
    os.execve(argv[0], list(argv), env)
