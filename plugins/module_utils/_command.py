# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a command: argv lists only, never a shell, always a timeout.

PRIVATE to the sysops.fleet collection: no compatibility promise to other
collections. Pure standard library; the same file runs inside Ansible
modules and, copied by the watcher role, as a plain package on targets,
where ``AnsibleModule.run_command`` does not exist. That is why this core
uses ``subprocess`` directly.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

# Which Debian/Ubuntu package provides a program we may need, so that a
# missing binary can be reported with the fix.
PACKAGES = {
    "ping": "iputils-ping",
    "fping": "fping",
    "df": "coreutils",
    "nft": "nftables",
    "ip": "iproute2",
    "crontab": "cron",
}

# sbin directories are often missing from PATH under cron, sudo and Ansible.
EXTRA_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

# Output of programs we parse must not depend on the caller's locale.
C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}


class CommandError(Exception):
    """A command could not be run as asked."""


class MissingBinaryError(CommandError):
    """The program is not installed (or not executable) on this host."""

    def __init__(self, name: str):
        package = PACKAGES.get(os.path.basename(name))
        hint = f"install the package '{package}'" if package else "install it or give its full path"
        super().__init__(f"'{name}' was not found on PATH or in {', '.join(EXTRA_PATH)}: {hint}")
        self.name = name
        self.package = package


@dataclass
class Result:
    """What a finished (or killed) command did."""

    argv: List[str]
    rc: Optional[int]
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False
    started: float = field(default=0.0, repr=False)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


def which(name: str) -> str:
    """Absolute path of program *name*, or MissingBinaryError saying which package to install."""
    if os.sep in name:
        if os.access(name, os.X_OK) and os.path.isfile(name):
            return name
        raise MissingBinaryError(name)
    search = os.pathsep.join([os.environ.get("PATH", "")] + list(EXTRA_PATH))
    found = shutil.which(name, path=search)
    if not found:
        raise MissingBinaryError(name)
    return found


def check_argv(argv: Sequence[str]) -> List[str]:
    """Refuse anything but a non-empty list of strings: there is no shell to parse a string."""
    if isinstance(argv, (str, bytes)) or not argv:
        raise CommandError("a command must be a non-empty argv list, never a shell string")
    if not all(isinstance(a, str) for a in argv):
        raise CommandError(f"every argv item must be a string: {argv!r}")
    if any("\0" in a for a in argv):
        raise CommandError(f"argv items may not contain NUL bytes: {argv!r}")
    return list(argv)


def command_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for children: ours, C locale, sbin on PATH."""
    env = dict(os.environ)
    env.update(C_LOCALE)
    env["PATH"] = os.pathsep.join([env.get("PATH", "")] + list(EXTRA_PATH)).strip(os.pathsep)
    if extra:
        env.update(extra)
    return env


def resolve(argv: Sequence[str]) -> List[str]:
    """Validated argv with the program resolved to an absolute path."""
    argv = check_argv(argv)
    return [which(argv[0])] + argv[1:]


def run(argv: Sequence[str], timeout: float = 30.0, input_text: Optional[str] = None,
        env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None) -> Result:
    """Run one command to completion (or until *timeout*, then kill it).

    Never raises for a non-zero exit: the caller decides what a failure
    means. Raises MissingBinaryError before running anything if the program
    is absent.
    """
    argv = resolve(argv)
    started = time.monotonic()
    try:
        # The core runs outside Ansible too (watcher, cron) where
        # AnsibleModule.run_command does not exist; argv list, no shell.
        proc = subprocess.run(  # noqa: S603  pylint: disable=ansible-bad-function
            argv, input=input_text, capture_output=True, text=True, errors="replace",
            timeout=timeout, env=command_env(env), cwd=cwd, check=False,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        return Result(argv, None, _text(exc.stdout), _text(exc.stderr),
                      time.monotonic() - started, True, started)
    return Result(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started, False, started)


def _text(data) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


class _Running:
    """One child of run_many: its pid, the read end of its output pipe, what it wrote."""

    __slots__ = ("index", "argv", "pid", "fd", "started", "chunks", "status")

    def __init__(self, index: int, argv: List[str], pid: int, fd: int):
        self.index, self.argv, self.pid, self.fd = index, argv, pid, fd
        self.started = time.monotonic()
        self.chunks: List[bytes] = []
        self.status: Optional[int] = None  # wait status once reaped

    def reaped(self, grace: float = 0.0) -> bool:
        """Collect the exit status if the child exits within *grace* seconds.

        A child's pipe closes a moment before it becomes reapable, so right
        after EOF a short grace saves a trip round the event loop.
        """
        deadline = time.monotonic() + grace
        pause = 0.0001
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
            elif time.monotonic() >= deadline:
                break
            else:
                time.sleep(pause)
                pause = min(pause * 2, 0.005)
        return self.status is not None


def _spawn(index: int, argv: List[str], env: Dict[str, str]) -> _Running:
    """Start argv with stdin from /dev/null and stdout+stderr into a new pipe, in a process group of its own.

    ``os.posix_spawn`` (vfork and exec in one call, no Python in between) is
    used where it exists: at a few thousand starts per sweep it is a third
    cheaper than ``subprocess.Popen``. Our other descriptors are not
    inherited (PEP 446: Python opens them close-on-exec). The own process
    group (``setpgroup=0``) lets a timeout kill whatever the command
    started too (``_kill``), not only the command.
    """
    read_end, write_end = os.pipe()
    try:
        if hasattr(os, "posix_spawn"):
            pid = os.posix_spawn(argv[0], argv, env, file_actions=[  # pylint: disable=ansible-bad-function
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 1),
                (os.POSIX_SPAWN_DUP2, write_end, 2),
            ], setpgroup=0)
        else:  # pragma: no cover - every Linux and BSD Python has posix_spawn
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=write_end,  # noqa: S603  pylint: disable=ansible-bad-function
                                    stderr=write_end, env=env, close_fds=True, start_new_session=True)
            pid = proc.pid
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    os.set_blocking(read_end, False)
    return _Running(index, argv, pid, read_end)


def run_many(argvs: Iterable[Sequence[str]], concurrency: int = 64, timeout: float = 30.0,
             rate: float = 0.0, env: Optional[Dict[str, str]] = None,
             heartbeat: Optional[Callable[[], None]] = None) -> Iterator[Tuple[int, Result]]:
    """Run many commands with up to *concurrency* of them in flight at once.

    Children are started without waiting for each other and reaped as their
    output pipe closes, so one process keeps many slow commands (a ``ping``
    waiting for its timeout) busy at the same time. Yields ``(index,
    Result)`` in completion order; stdout and stderr are merged into
    ``stdout`` (one pipe per child keeps the fd count low). *rate* caps
    starts per second (0 = no cap). *timeout* runs from each command's own
    start, never from when it was queued. Children still running when the
    caller stops iterating are killed. *heartbeat* is called at least every
    quarter second while they run (the watcher's systemd watchdog).
    """
    if concurrency < 1:
        raise CommandError(f"concurrency must be at least 1, got {concurrency}")
    queue: Deque[Tuple[int, List[str]]] = deque((i, resolve(a)) for i, a in enumerate(argvs))
    environ = command_env(env)
    running: Dict[int, _Running] = {}  # by fd, in start order
    closed: List[_Running] = []  # output closed, process not yet exited
    interval = 1.0 / rate if rate and rate > 0 else 0.0
    next_start = time.monotonic()
    sel = selectors.DefaultSelector()
    try:
        while queue or running or closed:
            now = time.monotonic()
            while queue and len(running) < concurrency and now >= next_start:
                job = _spawn(*queue.popleft(), environ)
                running[job.fd] = job
                sel.register(job.fd, selectors.EVENT_READ, job)
                if interval:
                    next_start = max(next_start + interval, now - interval)
                    now = time.monotonic()
            wait = _next_wait(running.values(), timeout, now) if not closed else 0.01
            if queue and len(running) < concurrency:
                wait = min(wait, max(0.0, next_start - now))
            if heartbeat is not None:
                heartbeat()
                wait = min(wait, 0.25)
            for key, _events in sel.select(wait):
                job = key.data
                if _read_some(job):
                    sel.unregister(job.fd)
                    del running[job.fd]
                    if job.reaped(grace=0.02):
                        yield job.index, _finish(job, timed_out=False)
                    else:
                        closed.append(job)
            now = time.monotonic()
            for job in list(closed):
                timed_out = not job.reaped() and now - job.started > timeout
                if job.status is not None or timed_out:
                    closed.remove(job)
                    if timed_out:
                        _kill(job.pid)
                    yield job.index, _finish(job, timed_out=timed_out)
            while running:
                job = next(iter(running.values()), None)
                if job is None:
                    break
                if now - job.started <= timeout:
                    break
                _kill(job.pid)
                sel.unregister(job.fd)
                del running[job.fd]
                yield job.index, _finish(job, timed_out=True)
    finally:
        for job in list(running.values()) + closed:
            _kill(job.pid)
            _finish(job, timed_out=True)
        sel.close()


def _kill(pid: int) -> None:
    """SIGKILL the process group *pid* leads: the command and anything it started.

    Only called for a child not yet reaped, so the group is still ours.
    """
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _next_wait(jobs: Iterable[_Running], timeout: float, now: float) -> float:
    oldest = next(iter(jobs), None)  # dicts keep start order
    if oldest is None:
        return 0.05
    return max(0.0, min(1.0, oldest.started + timeout - now))


def _read_some(job: _Running) -> bool:
    """Read what the child wrote; True once its pipe is closed (it exited)."""
    try:
        while True:
            data = os.read(job.fd, 65536)
            if not data:
                return True
            job.chunks.append(data)
    except BlockingIOError:
        return False


def _finish(job: _Running, timed_out: bool) -> Result:
    """Reap the child (already exited, or just killed) and close its pipe.

    A killed child stuck in uninterruptible sleep (a hung mount) is given a
    second, then left to init: waiting for it would hang us with it.
    """
    if job.status is None:
        job.reaped(grace=1.0 if timed_out else 3600.0)
    try:
        os.close(job.fd)
    except OSError:
        pass
    rc = None if timed_out or job.status is None else os.waitstatus_to_exitcode(job.status)
    return Result(job.argv, rc, b"".join(job.chunks).decode("utf-8", "replace"), "",
                  time.monotonic() - job.started, timed_out, job.started)
