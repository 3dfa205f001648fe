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

import math
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
# A sweep that would take longer than this to send its probes at the rate asked is refused:
# at rate=0.01 a /24 takes seven hours, which is a typo, not a plan.
MAX_SEND_SECONDS = 3600.0
# ``ping -q`` prints only its summary: iputils "rtt min/avg/max/mdev = 0.041/0.041/0.041/0.000 ms",
# BusyBox and inetutils "round-trip min/avg/max[/stddev] = ...". One probe: min is its time.
_SUMMARY_RTT = re.compile(r"(?:rtt|round-trip) min/avg/max(?:/[a-z]+)? = ([0-9.]+)/")
_REPLY_RTT = re.compile(r"time[=<]\s*([0-9.]+)\s*ms")

Probed = Dict[str, Tuple[bool, Optional[float], str]]  # address -> (answered, RTT ms if known, error)


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
                rtt = ping_rtt(res.stdout)
                results[address] = (True, rtt, "" if rtt is not None else "ping printed no round-trip time")
            else:
                silent.append(address)
                results[address] = (False, None, _ping_error(res))
        todo = silent
    return results


def ping_rtt(output: str) -> Optional[float]:
    """The round-trip time in ms from ping's output (its summary line, or a reply line); None if absent."""
    match = _SUMMARY_RTT.search(output) or _REPLY_RTT.search(output)
    return float(match.group(1)) if match else None


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
    return {a: (rtt is not None, rtt, errors.get(a, "")) for a, rtt in rtts.items()}


_PROBES = {"socket": probe_with_sockets, "ping": probe_with_ping}


def deal(items: Sequence[Any], hands: int) -> List[List[Any]]:
    """Deal items round-robin, so silent stretches of a network spread over all workers."""
    hands = max(1, min(hands, len(items)))
    return [list(items[i::hands]) for i in range(hands)]


def check_numbers(timeout: float, retries: int, rate: float, workers: int, concurrency: Optional[int]) -> None:
    """Refuse impossible numbers before any name is looked up or any probe sent."""
    if not 0 < timeout <= MAX_TIMEOUT:  # False for nan too
        raise SweepError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, got {timeout}")
    if not 0 <= retries <= 10:
        raise SweepError(f"retries must be between 0 and 10, got {retries}")
    if not math.isfinite(rate) or rate < 0:
        raise SweepError(f"rate must be 0 (no cap) or a finite positive number of probes per second, got {rate}")
    if not 1 <= workers <= _fanout.MAX_WORKERS:
        raise SweepError(f"workers must be between 1 and {_fanout.MAX_WORKERS}, got {workers}")
    if concurrency is not None and concurrency < 1:
        raise SweepError(f"concurrency must be at least 1, got {concurrency}")


def check_duration(count: int, rate: float) -> None:
    """Refuse a rate so low that sending one probe per address would take more than MAX_SEND_SECONDS."""
    if not rate or count / rate <= MAX_SEND_SECONDS:
        return
    raise SweepError(f"rate={rate:g} would take about {_duration(count / rate)} to send one probe to each of the "
                     f"{count} addresses (more with retries), longer than the {_duration(MAX_SEND_SECONDS)} "
                     f"a sweep may take: raise rate (0 for no cap) or sweep fewer addresses")


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= size:
            amount = seconds / size
            return f"{amount:.1f} {unit}" if amount != 1 else f"1 {unit[:-1]}"
    return f"{seconds:.0f} seconds"


def sweep(targets: Sequence[str], exclude: Sequence[str] = (), timeout: float = 1.0, retries: int = 1,
          method: str = "auto", workers: Optional[int] = None, concurrency: Optional[int] = None,
          rate: float = DEFAULT_RATE, max_hosts: int = _targets.DEFAULT_MAX_HOSTS,
          resolver=_targets.resolve_name, details: bool = True) -> Dict[str, Any]:
    """Sweep *targets* and return the module's result (alive, dead, summary, names, errors, ...).

    With *details* the result also has ``hosts``, an entry per address
    (alive, RTT, name, error): what the watcher and ``details: true`` use.
    Without, it stays two lists of addresses and a summary however large
    the sweep, which is what keeps a /16 cheap to hand to Ansible.

    Raises SweepError (or its parent ValueError via TargetError) for bad
    input, _command.MissingBinaryError if ``ping`` is needed and absent,
    and _fanout.FanOutError if no worker process can be started; in all
    of these nothing was probed.
    """
    started = time.monotonic()
    workers = default_workers() if workers is None else int(workers)
    check_numbers(float(timeout), int(retries), float(rate), workers, None if concurrency is None else int(concurrency))
    plan = _targets.plan(targets, exclude, max_hosts, resolver)
    addresses = plan.addresses
    if not addresses and not plan.unresolved:
        raise SweepError("nothing to sweep: every target is excluded")
    if not addresses:
        raise SweepError("no target resolved: " + "; ".join(f"{n}: {why}" for n, why in plan.unresolved.items()))
    check_duration(len(addresses), float(rate))
    chosen = choose_method(method, sorted({6 if ":" in a else 4 for a in addresses}))
    concurrency = DEFAULT_CONCURRENCY[chosen] if concurrency is None else int(concurrency)
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
            probed.update({a: (False, None, f"not probed: {outcome.error.splitlines()[0]}")
                           for a in hands[outcome.index]})
    return _result(addresses, probed, plan, chosen, time.monotonic() - started, failures, details)


def _result(addresses: List[str], probed: Probed, plan: _targets.Plan, method: str,
            elapsed: float, failures: List[str], details: bool = True) -> Dict[str, Any]:
    alive: List[str] = []
    dead: List[str] = []
    rtts: List[float] = []
    errors: Dict[str, str] = {}
    missing = (False, None, "not probed")
    for address in addresses:
        answered, rtt, error = probed.get(address, missing)
        if answered:
            alive.append(address)
            if rtt is not None:
                rtts.append(rtt)
        else:
            dead.append(address)
        if error:
            errors[address] = error
    errors.update(plan.unresolved)
    result: Dict[str, Any] = {
        "alive": alive,
        "dead": dead,
        "unresolved": sorted(plan.unresolved),
        "exclude_unresolved": sorted(plan.exclude_unresolved),
        "names": dict(plan.names),
        "errors": errors,
        "summary": {"total": len(addresses), "alive": len(alive), "dead": len(dead),
                    "unresolved": len(plan.unresolved), "elapsed_s": round(elapsed, 3),
                    "method": method, "worker_failures": failures, "rtt_ms": _rtt_summary(rtts)},
    }
    if details:
        result["hosts"] = _hosts(addresses, probed, plan, missing)
    return result


DEFAULT_LIST_LIMIT = 1024


def check_list_limit(list_limit: int) -> None:
    """Refuse a list_limit that cannot be, before anything is sent."""
    if list_limit < 0:
        raise SweepError(f"list_limit must be 0 or more (the largest sweep that still returns the alive and "
                         f"dead lists), got {list_limit}")


def listed(result: Dict[str, Any], list_limit: int = DEFAULT_LIST_LIMIT) -> Dict[str, Any]:
    """The module's form of a sweep result: ``alive_ranges`` and ``dead_ranges`` always, the ``alive`` and
    ``dead`` lists only for a sweep of at most *list_limit* addresses (``summary.listed`` says which).

    Ansible spends about 13 microseconds on each string of a result (the
    module's no_log scrub, the callback's templating pass), so a /16's two
    lists cost a second of a four-second command; its ranges are a few hundred
    strings.
    """
    result["alive_ranges"] = _targets.compact(result["alive"])
    result["dead_ranges"] = _targets.compact(result["dead"])
    result["summary"]["listed"] = result["summary"]["total"] <= list_limit
    if not result["summary"]["listed"]:
        del result["alive"], result["dead"]
    return result


def _rtt_summary(rtts: List[float]) -> Optional[Dict[str, float]]:
    """Minimum, median and maximum round-trip time of the hosts that answered; None if none did."""
    if not rtts:
        return None
    ordered = sorted(rtts)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"min": round(ordered[0], 3), "median": round(median, 3), "max": round(ordered[-1], 3)}


def _hosts(addresses: List[str], probed: Probed, plan: _targets.Plan, missing) -> Dict[str, Dict[str, Any]]:
    """The per-address detail: alive, rtt_ms, and name and error where there is one."""
    hosts: Dict[str, Dict[str, Any]] = {}
    for address in addresses:
        answered, rtt, error = probed.get(address, missing)
        entry: Dict[str, Any] = {"alive": bool(answered),
                                 "rtt_ms": None if not answered or rtt is None else round(rtt, 3)}
        if error:
            entry["error"] = error
        hosts[address] = entry
    for address, name in plan.names.items():
        hosts[address]["name"] = name
    for name, why in plan.unresolved.items():
        hosts[name] = {"alive": False, "rtt_ms": None, "name": name, "error": why}
    return hosts
