# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fan work out over worker processes and collect the results.

PRIVATE to the sysops.fleet collection. Pure standard library.

The classic pattern (a queue, workers that exit when it is empty, a join),
done so that it cannot hang:

* Workers are forked directly (``os.fork``), never spawned: a spawned
  child would re-import ``__main__``, which under Ansible is the AnsiballZ
  wrapper, and ``multiprocessing``'s exit hooks would join workers stuck in
  uninterruptible sleep (a stale NFS mount) forever.
* The parent hands out task *indices* over a socket pair, one at a time;
  the tasks themselves are inherited through the fork and never pickled.
  So the parent always knows which task a worker holds.
* Results travel back pickled by the worker. A result or error that cannot
  be pickled becomes an error string in the worker, so the parent never
  waits for a message that will not come (the ``multiprocessing.Pool``
  hang).
* A worker that dies (signal, ``os._exit``, out of memory) is seen as EOF
  on its socket; its task is reported as crashed and a replacement worker
  takes the rest. A task that overruns *timeout* gets its worker killed
  and is reported as timed out.
* Ctrl-C or SIGTERM in the parent kills the workers before it re-raises,
  within a quarter of a second even when the signal lands just before the
  parent blocks in ``select()`` (which then is not interrupted).
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import socket
import struct
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

MAX_WORKERS = 256
_HEADER = struct.Struct("!I")
# The longest the parent blocks in select(). A signal that lands just before the call (or on
# another thread) trips Python's handler but does not interrupt the wait; Python runs the
# handler (Ctrl-C, SIGTERM) only once select() returns, so it must return often.
_SIGNAL_POLL = 0.25


class FanOutError(Exception):
    """Workers could not be started or the fan-out was interrupted."""


class Interrupted(FanOutError):
    """SIGTERM arrived while workers were running."""


@dataclass
class Outcome:
    """The result of one task: ``value`` when ``ok``, else ``error`` says why."""

    index: int
    ok: bool
    value: Any = None
    error: str = ""
    duration: float = 0.0


@dataclass
class _Worker:
    pid: int
    sock: socket.socket
    task: Optional[int] = None
    since: float = 0.0


def fan_out(func: Callable[[Any], Any], tasks: Sequence[Any], workers: int,
            timeout: Optional[float] = None, heartbeat: Optional[Callable[[], None]] = None) -> List[Outcome]:
    """Run ``func(task)`` for every task on at most *workers* processes.

    Returns one Outcome per task, in task order. Never raises for a task's
    failure; raises FanOutError if no worker can be started and
    Interrupted on SIGTERM (KeyboardInterrupt on Ctrl-C), after the
    workers are gone. *heartbeat* is called every time the wait for the
    workers wakes (at least every quarter second): the caller's sign of
    life while the work lasts (the watcher's systemd watchdog).
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise FanOutError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    if not hasattr(os, "fork"):
        raise FanOutError("this platform cannot fork(); process fan-out needs a POSIX host")
    outcomes: Dict[int, Outcome] = {}
    pending = list(range(len(tasks)))[::-1]
    pool: Dict[int, _Worker] = {}
    retired: List[int] = []
    sel = selectors.DefaultSelector()
    restore = _trap_sigterm()
    try:
        for _slot in range(min(workers, len(tasks))):
            _hire(func, tasks, pool, sel, pending)
        while pool:
            wait = _time_left(pool.values(), timeout)
            for key, _events in sel.select(_SIGNAL_POLL if wait is None else min(wait, _SIGNAL_POLL)):
                _collect(key.data, pool, sel, outcomes, pending, retired)
            _expire(pool, sel, outcomes, timeout)
            while pending and len(pool) < workers:
                _hire(func, tasks, pool, sel, pending)
            if heartbeat is not None:
                heartbeat()
    finally:
        for worker in list(pool.values()):
            _fire(worker, pool, sel, kill=True)
        for pid in retired:  # told to stop and exiting: a blocking wait returns at once
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        sel.close()
        restore()
    return [outcomes[i] for i in range(len(tasks))]


def _trap_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into an exception while workers run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_term(signum, frame):
        if callable(previous):  # a daemon's own handler records the stop request first
            previous(signum, frame)
        raise Interrupted("terminated by SIGTERM; worker processes were stopped")

    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, on_term)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _hire(func, tasks, pool, sel, pending) -> None:
    parent, child = socket.socketpair()
    try:
        with warnings.catch_warnings():
            # Mitogen runs modules in a threaded interpreter. The worker only
            # runs our own code (sockets, pickle, subprocess), which takes no
            # lock another thread could hold across the fork.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError as exc:
        parent.close()
        child.close()
        if pool:
            return
        raise FanOutError(f"cannot start a worker process: {exc}; lower 'workers' or raise the process limit") from exc
    if pid == 0:  # worker: keep only its own end, so EOF tells it the parent is gone
        parent.close()
        for other in pool.values():
            other.sock.close()
        sel.close()
        _worker_main(child, func, tasks)  # never returns
    child.close()
    worker = _Worker(pid, parent)
    pool[pid] = worker
    sel.register(parent, selectors.EVENT_READ, worker)
    _assign(worker, pending)


def _assign(worker: _Worker, pending: List[int]) -> None:
    worker.task = pending.pop() if pending else None
    worker.since = time.monotonic()
    index = -1 if worker.task is None else worker.task
    try:
        worker.sock.sendall(_HEADER.pack(index & 0xFFFFFFFF))
    except OSError:
        pass  # it died; EOF on its socket reports it


def _collect(worker: _Worker, pool, sel, outcomes, pending, retired) -> None:
    message = _recv(worker.sock)
    if message is None:
        if worker.task is not None:
            code = _reap(worker.pid)
            outcomes[worker.task] = Outcome(worker.task, False, error=f"worker process {code} while running this task",
                                            duration=time.monotonic() - worker.since)
            worker.task = None
        _fire(worker, pool, sel, kill=False)
        return
    index, ok, value, error = pickle.loads(message)  # noqa: S301 - our own child, over a private socketpair
    outcomes[index] = Outcome(index, ok, value, error, time.monotonic() - worker.since)
    _assign(worker, pending)
    if worker.task is None:  # told to stop; reaped at the end, without delaying the others
        _fire(worker, pool, sel, kill=False, reap=False)
        retired.append(worker.pid)


def _expire(pool, sel, outcomes, timeout) -> None:
    if timeout is None:
        return
    now = time.monotonic()
    for worker in list(pool.values()):
        if worker.task is not None and now - worker.since > timeout:
            outcomes[worker.task] = Outcome(worker.task, False, error=f"timed out after {timeout:g}s",
                                            duration=now - worker.since)
            worker.task = None
            _fire(worker, pool, sel, kill=True)


def _time_left(workers, timeout) -> Optional[float]:
    if timeout is None:
        return None
    started = [w.since for w in workers if w.task is not None]
    if not started:
        return 0.0
    return max(0.0, min(started) + timeout - time.monotonic())


def _fire(worker: _Worker, pool, sel, kill: bool, reap: bool = True) -> None:
    """Forget a worker; kill it first if it may still be busy.

    A killed worker is reaped without blocking: one stuck in uninterruptible
    sleep (hung NFS) must not hang us, and the kernel reaps it later.
    """
    pool.pop(worker.pid, None)
    try:
        sel.unregister(worker.sock)
    except (KeyError, ValueError):
        pass
    worker.sock.close()
    if kill:
        # SIGTERM first: the worker's handler raises SystemExit, so its own
        # children (run_many's pings) are killed on the way out. SIGKILL if
        # it has not gone in a moment (stuck in a hung mount, say).
        _signal(worker.pid, signal.SIGTERM)
        if _reap(worker.pid, block_for=0.3) == "did not exit":
            _signal(worker.pid, signal.SIGKILL)
            _reap(worker.pid, block_for=0.5)
    elif reap:
        _reap(worker.pid, block_for=5.0)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _reap(pid: int, block_for: float = 1.0) -> str:
    """Collect a child's exit status, waiting at most *block_for* seconds."""
    deadline = time.monotonic() + block_for
    pause = 0.0005
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "exited"
        if done:
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                return f"was killed by signal {sig} ({signal.Signals(sig).name})"
            return f"exited with code {os.WEXITSTATUS(status)}"
        if time.monotonic() >= deadline:
            return "did not exit"
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _recv(sock: socket.socket) -> Optional[bytes]:
    header = _recv_exact(sock, _HEADER.size)
    if header is None:
        return None
    return _recv_exact(sock, _HEADER.unpack(header)[0])


def _recv_exact(sock: socket.socket, size: int) -> Optional[bytes]:
    chunks, left = [], size
    while left:
        try:
            data = sock.recv(min(left, 1 << 20))
        except ConnectionResetError:
            return None
        if not data:
            return None
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def _worker_main(sock: socket.socket, func, tasks) -> None:
    """The worker's whole life; always ends in os._exit, never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
        signal.signal(signal.SIGTERM, _exit_on_term)
        while True:
            header = _recv_exact(sock, _HEADER.size)
            if header is None:
                break
            index = _HEADER.unpack(header)[0]
            if index == 0xFFFFFFFF:
                break
            sock.sendall(_run_one(func, tasks, index))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: B036 - nothing may escape a forked child
        code = 70
    finally:
        os._exit(code)


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)


def _run_one(func, tasks, index: int) -> bytes:
    try:
        record = (index, True, func(tasks[index]), "")
    except Exception as exc:  # noqa: BLE001 - reported to the parent as text
        detail = traceback.format_exc(limit=8)
        record = (index, False, None, f"{type(exc).__name__}: {exc}\n{detail}")
    try:
        payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result must not hang the parent
        payload = pickle.dumps((index, False, None,
                                f"the result of this task cannot be sent back to the parent process "
                                f"({type(exc).__name__}: {exc})"))
    return _HEADER.pack(len(payload)) + payload
