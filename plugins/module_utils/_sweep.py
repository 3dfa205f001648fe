# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ICMP ping sweep: targets in, alive and dead hosts out.

PRIVATE to the sysops.fleet collection. Pure standard library.

Addresses are dealt round-robin to worker processes (``_fanout``). Each
worker probes its share with many probes in flight at once, either over
ICMP sockets (``_icmp``) or by running the system ``ping`` binary for each
address (``_command.run_many``).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _command, _fanout, _icmp, _targets

METHODS = ("auto", "socket", "ping")
DEFAULT_RATE = 1000.0
DEFAULT_CONCURRENCY = {"socket": 65536, "ping": 256}
# Addresses one worker handles before another is worth forking: a socket
# worker sends a /22 in a few milliseconds, a ping worker is bound by fork().
MIN_SHARE = {"socket": 2048, "ping": 64}
MAX_TIMEOUT = 60.0
_RTT = re.compile(r"time[=<]\s*([0-9.]+)\s*ms")

Probed = Dict[str, Tuple[Optional[float], str]]  # address -> (RTT ms or None, error)


class SweepError(ValueError):
    """The sweep was asked for something it cannot do; nothing was probed."""


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def choose_method(method: str, versions: Sequence[int]) -> str:
    """The probe method to use; ``auto`` prefers ICMP sockets when this process may open them."""
    if method not in METHODS:
        raise SweepError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        return "socket" if _icmp.available(versions or (4,)) else "ping"
    if method == "socket" and not _icmp.available(versions or (4,)):
        try:
            for version in versions or (4,):
                _icmp.open_socket(version)[0].close()
        except _icmp.IcmpUnavailable as exc:
            raise SweepError(f"method=socket: {exc.strerror}") from None
    return method


def ping_argv(ping: str, address: str, timeout: float) -> List[str]:
    """One iputils ``ping`` probe; -W counts from ping's own send, not from our queue."""
    family = "-6" if ":" in address else "-4"
    return [ping, family, "-n", "-q", "-c", "1", "-W", f"{timeout:g}", address]


def probe_with_ping(addresses: Sequence[str], timeout: float, retries: int, rate: float,
                    concurrency: int) -> Probed:
    """Probe with the system ping binary, many in flight; retries only the silent ones."""
    ping = _command.which("ping")
    results: Probed = {}
    todo = list(addresses)
    for _attempt in range(retries + 1):
        if not todo:
            break
        silent = []
        argvs = [ping_argv(ping, a, timeout) for a in todo]
        for index, res in _command.run_many(argvs, concurrency=concurrency, timeout=timeout + 5.0, rate=rate):
            address = todo[index]
            if res.ok:
                match = _RTT.search(res.stdout)
                results[address] = (float(match.group(1)) if match else None, "")
                if match is None:
                    results[address] = (0.0, "")
            else:
                silent.append(address)
                results[address] = (None, _ping_error(res))
        todo = silent
    return results


def _ping_error(res: _command.Result) -> str:
    if res.timed_out:
        return "ping did not finish in time and was killed"
    if res.rc == 1:
        return ""  # no reply: an ordinary dead host
    last = res.stdout.strip().splitlines()[-1:] or [f"exit code {res.rc}"]
    return f"ping failed: {last[0]}"


def probe_with_sockets(addresses: Sequence[str], timeout: float, retries: int, rate: float,
                       concurrency: int) -> Probed:
    rtts, errors = _icmp.probe(addresses, timeout, retries, rate, concurrency)
    return {a: (rtt, errors.get(a, "")) for a, rtt in rtts.items()}


_PROBES = {"socket": probe_with_sockets, "ping": probe_with_ping}


def deal(items: Sequence[Any], hands: int) -> List[List[Any]]:
    """Deal items round-robin, so silent stretches of a network spread over all workers."""
    hands = max(1, min(hands, len(items)))
    return [list(items[i::hands]) for i in range(hands)]


def check_numbers(timeout: float, retries: int, rate: float, workers: int, concurrency: int) -> None:
    if not 0 < timeout <= MAX_TIMEOUT:
        raise SweepError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, got {timeout}")
    if not 0 <= retries <= 10:
        raise SweepError(f"retries must be between 0 and 10, got {retries}")
    if rate < 0:
        raise SweepError(f"rate must be 0 (no cap) or a positive number of probes per second, got {rate}")
    if not 1 <= workers <= _fanout.MAX_WORKERS:
        raise SweepError(f"workers must be between 1 and {_fanout.MAX_WORKERS}, got {workers}")
    if concurrency < 1:
        raise SweepError(f"concurrency must be at least 1, got {concurrency}")


def sweep(targets: Sequence[str], exclude: Sequence[str] = (), timeout: float = 1.0, retries: int = 1,
          method: str = "auto", workers: Optional[int] = None, concurrency: Optional[int] = None,
          rate: float = DEFAULT_RATE, max_hosts: int = _targets.DEFAULT_MAX_HOSTS,
          resolver=_targets.resolve_name) -> Dict[str, Any]:
    """Sweep *targets* and return the module's result (alive, dead, hosts, summary, unresolved).

    Raises SweepError (or its parent ValueError via TargetError) for bad
    input, _command.MissingBinaryError if ``ping`` is needed and absent,
    and _fanout.FanOutError if no worker process can be started; in all
    of these nothing was probed.
    """
    started = time.monotonic()
    workers = default_workers() if workers is None else int(workers)
    plan = _targets.plan(targets, exclude, max_hosts, resolver)
    addresses = plan.addresses
    if not addresses and not plan.unresolved:
        raise SweepError("nothing to sweep: every target is excluded")
    if not addresses:
        raise SweepError("no target resolved: " + "; ".join(f"{n}: {why}" for n, why in plan.unresolved.items()))
    chosen = choose_method(method, sorted({6 if ":" in a else 4 for a in addresses}))
    concurrency = DEFAULT_CONCURRENCY[chosen] if concurrency is None else int(concurrency)
    check_numbers(float(timeout), int(retries), float(rate), workers, concurrency)
    if chosen == "ping":
        _command.which("ping")
    hands = deal(addresses, min(workers, -(-len(addresses) // MIN_SHARE[chosen])))
    share = float(rate) / len(hands) if rate else 0.0
    probe = _PROBES[chosen]

    def work(hand: List[str]) -> Probed:
        return probe(hand, float(timeout), int(retries), share, concurrency)

    probed: Probed = {}
    failures = []
    for outcome in _fanout.fan_out(work, hands, len(hands)):
        if outcome.ok:
            probed.update(outcome.value)
        else:
            failures.append(outcome.error.splitlines()[0])
            probed.update({a: (None, f"not probed: {outcome.error.splitlines()[0]}") for a in hands[outcome.index]})
    return _result(addresses, probed, plan, chosen, time.monotonic() - started, failures)


def _result(addresses: List[str], probed: Probed, plan: _targets.Plan, method: str,
            elapsed: float, failures: List[str]) -> Dict[str, Any]:
    hosts: Dict[str, Dict[str, Any]] = {}
    alive, dead = [], []
    missing = (None, "not probed")
    for address in addresses:
        rtt, error = probed.get(address, missing)
        if rtt is None:
            dead.append(address)
            entry: Dict[str, Any] = {"alive": False, "rtt_ms": None}
        else:
            alive.append(address)
            entry = {"alive": True, "rtt_ms": round(rtt, 3)}
        if error:
            entry["error"] = error
        hosts[address] = entry
    for address, name in plan.names.items():
        hosts[address]["name"] = name
    for name, why in plan.unresolved.items():
        hosts[name] = {"alive": False, "rtt_ms": None, "name": name, "error": why}
    return {
        "alive": alive,
        "dead": dead,
        "unresolved": sorted(plan.unresolved),
        "hosts": hosts,
        "summary": {"total": len(addresses), "alive": len(alive), "dead": len(dead),
                    "unresolved": len(plan.unresolved), "elapsed_s": round(elapsed, 3),
                    "method": method, "worker_failures": failures},
    }
