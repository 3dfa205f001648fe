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
import re
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

from . import _command, _fanout, _icmp, _sweep_stats, _targets
from ._sweep_options import DEFAULT_CONCURRENCY, DEFAULT_RATE, METHODS, SweepError, SweepOptions  # noqa: F401

# ``ping -q`` prints only its summary: iputils "rtt min/avg/max/mdev = 0.041/0.041/0.041/0.000 ms",
# BusyBox and inetutils "round-trip min/avg/max[/stddev] = ...". One probe: min is its time.
_SUMMARY_RTT = re.compile(r"(?:rtt|round-trip) min/avg/max(?:/[a-z]+)? = ([0-9.]+)/")
_REPLY_RTT = re.compile(r"time[=<]\s*([0-9.]+)\s*ms")
# Count mode reads ping's reply lines: "64 bytes from 127.0.0.1: icmp_seq=3 ttl=64 time=0.046 ms" (iputils,
# which times each reply from the probe whose sequence number it carries), and "3 packets transmitted".
_REPLY_LINE = re.compile(r"(?:icmp_)?seq=(\d+)\b.*?time[=<]\s*([0-9.]+)\s*ms")
_TRANSMITTED = re.compile(r"(\d+) packets transmitted")
_SEQ = re.compile(r"icmp_seq=(\d+)")


class Probe(NamedTuple):
    """What an address answered: probes sent, the RTT in ms of each that was answered, and an error if any."""

    sent: int
    rtts: List[float]
    error: str = ""
    replies: Optional[int] = None  # probes answered, where one came back without a time (ping said nothing); else len(rtts)

    @property
    def received(self) -> int:
        return len(self.rtts) if self.replies is None else self.replies

    @property
    def answered(self) -> bool:
        return self.received > 0


Probed = Dict[str, Probe]


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


def ping_argv(ping: str, address: str, timeout: float, count: int = 1, spacing: float = 1.0) -> List[str]:
    """iputils ``ping`` for one address; -W counts from ping's own send, not from our queue.

    One probe: ``-q`` (the summary has its time). Count mode: every reply
    line (``icmp_seq``, ``time``), *count* probes *spacing* seconds apart.
    No ``-w``: with a deadline iputils goes on sending past *count* until
    it has that many replies. Without one it stops listening
    max(2 x its slowest round trip, spacing) after its last probe, so a
    reply to that last probe that comes later (on a busy sweeper, even
    one that came in time) counts as lost: the ping method's one known
    difference from the socket method, which waits *timeout* for every probe.
    """
    family = "-6" if ":" in address else "-4"
    if count == 1:
        return [ping, family, "-n", "-q", "-c", "1", "-W", f"{timeout:g}", address]
    return [ping, family, "-n", "-c", str(count), "-i", f"{spacing:g}", "-W", f"{timeout:g}", address]


def probe_with_ping(addresses: Sequence[str], options: SweepOptions, rate: float, concurrency: int) -> Probed:
    """Probe with the system ping binary, many in flight; retries only the silent ones (one probe each)."""
    ping = _command.which("ping")
    if options.count > 1:
        return _ping_counted(ping, addresses, options, rate, concurrency)
    results: Probed = {}
    todo = list(addresses)
    sent = dict.fromkeys(addresses, 0)
    for _attempt in range(options.retries + 1):
        if not todo:
            break
        silent = []
        argvs = [ping_argv(ping, a, options.timeout) for a in todo]
        for index, res in _command.run_many(argvs, concurrency=concurrency, timeout=options.timeout + 5.0,
                                            rate=rate):
            address = todo[index]
            sent[address] += 1
            if res.ok:
                rtt = ping_rtt(res.stdout)
                results[address] = Probe(sent[address], [] if rtt is None else [rtt],
                                         "" if rtt is not None else "ping printed no round-trip time", 1)
            else:
                silent.append(address)
                results[address] = Probe(sent[address], [], _ping_error(res))
        todo = silent
    return results


def _ping_counted(ping: str, addresses: Sequence[str], options: SweepOptions, rate: float,
                  concurrency: int) -> Probed:
    """Count mode with ``ping -c COUNT -i SPACING``: one ping process per address, its reply lines read.

    A ping that had to be killed (a starved machine: it is given three
    times its sending time and 30 s more) printed no summary; its probes
    are counted as far as its reply lines go, and the error says so.
    """
    argvs = [ping_argv(ping, a, options.timeout, options.count, options.spacing) for a in addresses]
    deadline = 3 * (options.count - 1) * options.spacing + options.timeout + 30.0
    results: Probed = {}
    for index, res in _command.run_many(argvs, concurrency=concurrency, timeout=deadline,
                                        rate=rate / options.count if rate else 0.0):
        rtts = ping_replies(res.stdout, options.timeout * 1000.0)
        sent = _TRANSMITTED.search(res.stdout)
        error = "" if res.ok or res.rc == 1 and not res.timed_out else _ping_error(res)
        counted = int(sent.group(1)) if sent else max([options.count if not res.timed_out else 0]
                                                      + [int(n) for n in _SEQ.findall(res.stdout)])
        results[addresses[index]] = Probe(counted, rtts, error)
    return results


def ping_replies(output: str, within_ms: float = math.inf) -> List[float]:
    """The round-trip time (ms) of each probe ping printed a reply for within *within_ms*, once per sequence
    number (a DUP! is not a second answer)."""
    seen: Dict[int, float] = {}
    for match in _REPLY_LINE.finditer(output):
        seen.setdefault(int(match.group(1)), float(match.group(2)))
    return [rtt for rtt in seen.values() if rtt <= within_ms]


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


def probe_with_sockets(addresses: Sequence[str], options: SweepOptions, rate: float, concurrency: int) -> Probed:
    tallies, errors = _icmp.probe(addresses, options.timeout, options.retries, rate, concurrency,
                                  count=options.count, spacing=options.spacing)
    return {a: Probe(t.sent, t.rtts, errors.get(a, "")) for a, t in tallies.items()}


_PROBES: Dict[str, Callable[[Sequence[str], SweepOptions, float, int], Probed]] = {
    "socket": probe_with_sockets, "ping": probe_with_ping}


def deal(items: Sequence[Any], hands: int) -> List[List[Any]]:
    """Deal items round-robin, so silent stretches of a network spread over all workers."""
    hands = max(1, min(hands, len(items)))
    return [list(items[i::hands]) for i in range(hands)]


def check_duration(count: int, rate: float) -> None:
    """Refuse a rate so low that sending every probe (retries included) would take more than MAX_SEND_SECONDS."""
    SweepOptions(rate=float(rate)).check_size(count)


def sweep(targets: Sequence[str], exclude: Sequence[str] = (), timeout: float = 1.0, retries: int = 1,
          method: str = "auto", workers: Optional[int] = None, concurrency: Optional[int] = None,
          rate: float = DEFAULT_RATE, max_hosts: int = _targets.DEFAULT_MAX_HOSTS,
          resolver=_targets.resolve_name, details: bool = True, count: int = 1, spacing: float = 1.0,
          keep_rtts: bool = False, heartbeat: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
    """``run`` with the options given one by one (the watcher, its sweep command, tests, benchmarks)."""
    options = SweepOptions(targets=list(targets) if not isinstance(targets, str) else [targets],
                           exclude=list(exclude or ()), timeout=float(timeout), retries=int(retries),
                           count=int(count), spacing=float(spacing), method=method,
                           workers=None if workers is None else int(workers),
                           concurrency=None if concurrency is None else int(concurrency), rate=float(rate),
                           max_hosts=int(max_hosts))
    return run(options, resolver=resolver, details=details, keep_rtts=keep_rtts, heartbeat=heartbeat)


def run(options: SweepOptions, resolver=_targets.resolve_name, details: bool = True,
        keep_rtts: bool = False, heartbeat: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
    """Sweep what *options* say and return the module's result (alive, dead, summary, names, errors, ...).

    With *details* the result also has ``hosts``, an entry per address
    (alive, RTT, name, error, and count mode's numbers): what the watcher
    and ``details: true`` use. Without, it stays two lists of addresses and
    a summary however large the sweep, which is what keeps a /16 cheap to
    hand to Ansible. With ``count`` > 1 it also has ``stats`` (per address:
    sent, received, loss_pct, rtt_ms) and ``loss_ranges``. With *keep_rtts*
    each entry of ``hosts`` also has ``rtts_ms``, every round trip measured
    (the watcher's histogram). *heartbeat* is called at least every quarter
    second while names are looked up (``_lookup``) and while the workers
    probe (``_fanout.fan_out``).

    Raises SweepError (or its parent ValueError via TargetError) for bad
    input, _command.MissingBinaryError if ``ping`` is needed and absent,
    and _fanout.FanOutError if no worker process can be started; in all
    of these nothing was probed.
    """
    started = time.monotonic()
    options.check()
    plan = _targets.plan(options.targets, options.exclude, options.max_hosts, resolver, heartbeat)
    addresses = plan.addresses
    if not addresses and not plan.unresolved:
        raise SweepError("nothing to sweep: every target is excluded")
    if not addresses:
        raise SweepError("no target resolved: " + "; ".join(f"{n}: {why}" for n, why in plan.unresolved.items()))
    chosen = choose_method(options.method, sorted({6 if ":" in a else 4 for a in addresses}))
    options.check_size(len(addresses), chosen)
    concurrency = DEFAULT_CONCURRENCY[chosen] if options.concurrency is None else options.concurrency
    if chosen == "ping":
        _command.which("ping")
    hands = deal(addresses, options.hands(len(addresses), chosen))
    share = options.rate / len(hands) if options.rate else 0.0
    probe = _PROBES[chosen]

    def work(hand: List[str]) -> Probed:
        return probe(hand, options, share, concurrency)

    probed: Probed = {}
    failures = []
    for outcome in _fanout.fan_out(work, hands, len(hands), heartbeat=heartbeat):
        if outcome.ok:
            probed.update(outcome.value)
        else:
            failures.append(outcome.error.splitlines()[0])
            probed.update({a: Probe(0, [], f"not probed: {outcome.error.splitlines()[0]}")
                           for a in hands[outcome.index]})
    result = _result(addresses, probed, plan, chosen, time.monotonic() - started, failures, details, options.count)
    if details and keep_rtts:
        for address in addresses:
            result["hosts"][address]["rtts_ms"] = [round(r, 3) for r in probed.get(address, _MISSING).rtts]
    return result


_MISSING = Probe(0, [], "not probed")


def _result(addresses: List[str], probed: Probed, plan: _targets.Plan, method: str,
            elapsed: float, failures: List[str], details: bool = True, count: int = 1) -> Dict[str, Any]:
    alive: List[str] = []
    dead: List[str] = []
    rtts: List[float] = []
    errors: Dict[str, str] = {}
    for address in addresses:
        found = probed.get(address, _MISSING)
        if found.answered:
            alive.append(address)
            rtts.extend(found.rtts[:1])
        else:
            dead.append(address)
        if found.error:
            errors[address] = found.error
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
    stats = None
    if count > 1:
        stats = {}
        for address in addresses:
            found = probed.get(address, _MISSING)
            stats[address] = _sweep_stats.host_stats(found.sent, found.rtts, found.received)
        result["stats"] = stats
        result["summary"].update(_sweep_stats.summary(stats), count=count)
    if details:
        result["hosts"] = _hosts(addresses, probed, plan, stats)
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
    In count mode likewise: ``loss_ranges`` always, ``stats`` (one entry per address) only up to *list_limit*.

    Ansible spends about 13 microseconds on each string of a result (the
    module's no_log scrub, the callback's templating pass), so a /16's two
    lists cost a second of a four-second command; its ranges are a few hundred
    strings.
    """
    result["alive_ranges"] = _targets.compact(result["alive"])
    result["dead_ranges"] = _targets.compact(result["dead"])
    result["summary"]["listed"] = result["summary"]["total"] <= list_limit
    if "stats" in result:
        result["loss_ranges"] = _sweep_stats.loss_ranges(result["stats"])
    if not result["summary"]["listed"]:
        del result["alive"], result["dead"]
        result.pop("stats", None)
    return result


def _rtt_summary(rtts: List[float]) -> Optional[Dict[str, float]]:
    """Minimum, median and maximum round-trip time of the hosts that answered; None if none did."""
    if not rtts:
        return None
    ordered = sorted(rtts)
    return {"min": round(ordered[0], 3), "median": round(_sweep_stats.median(ordered), 3),
            "max": round(ordered[-1], 3)}


def _hosts(addresses: List[str], probed: Probed, plan: _targets.Plan,
           stats: Optional[Dict[str, Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """The per-address detail: alive, rtt_ms, name and error where there is one, count mode's numbers.

    In count mode ``rtt_ms`` is the median of the address's round trips
    and ``sent``, ``received``, ``loss_pct`` and ``rtt`` (the statistics)
    are added.
    """
    hosts: Dict[str, Dict[str, Any]] = {}
    for address in addresses:
        found = probed.get(address, _MISSING)
        entry: Dict[str, Any] = {"alive": found.answered,
                                 "rtt_ms": round(found.rtts[0], 3) if found.rtts else None}
        if stats is not None:
            numbers = stats[address]
            entry.update(sent=numbers["sent"], received=numbers["received"], loss_pct=numbers["loss_pct"],
                         rtt=numbers["rtt_ms"])
            entry["rtt_ms"] = numbers["rtt_ms"]["median"] if numbers["rtt_ms"] else None
        if found.error:
            entry["error"] = found.error
        hosts[address] = entry
    for address, name in plan.names.items():
        hosts[address]["name"] = name
    for name, why in plan.unresolved.items():
        hosts[name] = {"alive": False, "rtt_ms": None, "name": name, "error": why}
    return hosts
