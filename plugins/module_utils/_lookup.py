# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Calls that may hang with no timeout of their own (name lookups), made under a deadline each.

PRIVATE to the sysops.fleet collection. Pure standard library.

``getaddrinfo`` has no timeout: an unreachable resolver holds it for
``timeout x attempts`` of resolv.conf per query, and a broken NSS module
forever. ``call_all`` makes the calls in helper threads, a few at a time,
gives each ``timeout`` seconds, and leaves one that outlives it behind
(daemonic, its answer dropped) with a thread in its place. While it waits
it calls *heartbeat* at least every quarter second: the watcher's systemd
watchdog hears from it during the lookups, and hears nothing once they are
past their bound (``bound``).

Threads, not processes: the caller's resolver (a test's, or one that
records what it was asked) runs in the caller's process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

TIMEOUT = 15.0  # seconds one lookup may take: glibc's default resolver gives a query 5 s, twice, per family
THREADS = 8  # lookups at once
_BEAT = 0.25


@dataclass
class Answer:
    """What one call gave: ``value``, or the exception it raised, or ``timed_out``."""

    value: Any = None
    error: Optional[BaseException] = None
    timed_out: bool = False


def bound(calls: int, timeout: float = TIMEOUT, threads: int = THREADS) -> float:
    """The longest ``call_all`` takes for *calls* calls: every one of them running out its timeout."""
    return -(-calls // threads) * timeout if calls > 0 else 0.0


# The calls given up on that still run, by (func, item): a daemon looks the same names up every round, and a
# lookup that never returns (a broken NSS module) would otherwise leave one more thread behind each round.
_HUNG: Dict[Tuple[Any, Any], threading.Thread] = {}


def hung() -> int:
    """How many calls given up on still run (their threads left behind)."""
    for key in [k for k, thread in _HUNG.items() if not thread.is_alive()]:
        del _HUNG[key]
    return len(_HUNG)


def call_all(func: Callable[[Any], Any], items: Sequence[Any], timeout: float = TIMEOUT, threads: int = THREADS,
             heartbeat: Optional[Callable[[], None]] = None) -> Dict[Any, Answer]:
    """``func(item)`` for every distinct item, at most *threads* at once, each within *timeout* seconds.

    An item whose earlier call was given up on and still runs is not called again: it is timed out at once
    (its thread is the one left behind), so a call that never returns costs one thread, not one a round.
    """
    hung()
    answers: Dict[Any, Answer] = {item: Answer(timed_out=True) for item in dict.fromkeys(items)
                                  if (func, item) in _HUNG}
    todo = [item for item in dict.fromkeys(items) if item not in answers]
    running: Dict[Any, Tuple[float, threading.Thread]] = {}  # item -> when its call started, and by which thread
    given_up: List[threading.Thread] = []
    hired: List[threading.Thread] = []
    turn = [0]
    lock = threading.Condition()

    def work() -> None:
        while True:
            with lock:
                if turn[0] >= len(todo):
                    return
                item = todo[turn[0]]
                turn[0] += 1
                running[item] = (time.monotonic(), threading.current_thread())
            try:
                answer = Answer(value=func(item))
            except Exception as exc:  # noqa: BLE001 - handed to the caller with the item it belongs to
                answer = Answer(error=exc)
            with lock:
                if running.pop(item, None) is None:
                    return  # given up on while it ran: a thread took this one's place
                answers[item] = answer
                lock.notify()

    def hire() -> None:
        hired.append(threading.Thread(target=work, name="sysops-fleet-lookup", daemon=True))
        hired[-1].start()

    for _slot in range(min(threads, len(todo))):
        hire()
    while True:
        with lock:
            now = time.monotonic()
            for item in [i for i, (since, _t) in running.items() if now - since >= timeout]:
                given_up.append(running.pop(item)[1])
                _HUNG[(func, item)] = given_up[-1]
                answers[item] = Answer(timed_out=True)
                hire()
            if all(item in answers for item in todo):
                break
            waits = [since + timeout - now for since, _t in running.values()]
            lock.wait(max(0.01, min([_BEAT] + waits)))
        if heartbeat is not None:
            heartbeat()
    for thread in hired:  # each is past its last call: joined, so a fork that follows sees no thread but a hung one
        if thread not in given_up:
            thread.join(1.0)
    return answers
