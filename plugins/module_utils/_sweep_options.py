# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sweep's options, declared once: names, types, defaults, bounds and the messages that refuse them.

PRIVATE to the sysops.fleet collection. Pure standard library.

``SPEC`` is the argument spec of the ping_sweep module, the options of
the sweep inventory (whose defaults Ansible takes from the doc fragment
``sysops.fleet.sweep``, which a unit test holds equal to ``SPEC``) and the
keys of the watcher's ``[hosts]`` section (``from_text`` reads them from
the settings file, ``watch`` standing for ``targets``). Every front turns
what it was given into one ``SweepOptions`` and calls ``check()``: the
same bounds, the same messages, before any name is looked up or any
probe sent.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Mapping, Optional

from . import _numbers

METHODS = ("auto", "socket", "ping")
DEFAULT_RATE = 1000.0
DEFAULT_MAX_HOSTS = 65536
MAX_WORKERS = 256  # as _fanout.MAX_WORKERS (checked equal by a unit test; _fanout is not imported here)
MAX_TIMEOUT = 60.0
MIN_TIMEOUT = 0.001  # a millisecond: no reply comes sooner, and 1e-320 s is a typo (an outside tester's)
MAX_CONCURRENCY = 65536  # probes in flight per worker: as DEFAULT_CONCURRENCY's socket, a /16 at once
MAX_HOSTS = 1 << 22  # as MAX_PROBES: a sweep larger than that is refused at count 1 anyway
MAX_RETRIES = 10
MAX_COUNT = 10000
MIN_SPACING = 0.002  # iputils ping refuses a shorter interval to anyone but root
MAX_SPACING = 60.0
# Probes one sweep may send (count x addresses): a /16 with count 64. Each costs its send time in memory.
MAX_PROBES = 1 << 22
# A sweep that would take longer than this is refused: at rate=0.01 a /24 takes seven hours, which is
# a typo, not a plan.
MAX_SEND_SECONDS = 3600.0
# Probes in flight per worker unless ``concurrency`` says otherwise: a socket worker's are bounded by rate
# and max_hosts in practice, a ping worker's are processes.
DEFAULT_CONCURRENCY = {"socket": 65536, "ping": 256}
# Addresses one worker handles before another is worth forking: a socket
# worker sends a /22 in a few milliseconds, a ping worker is bound by fork().
MIN_SHARE = {"socket": 2048, "ping": 64}
# A worker's own time per ping process besides waiting: method=ping forks and runs one per address and attempt
# (4-5 ms each measured on a quiet 2-core machine, 15-60 ms at a load of 25; the estimate is an upper bound, so
# 20 ms is counted).
PER_ADDRESS_COST = {"socket": 0.0, "ping": 0.02}
# The sweep's own time per probe sent by method=socket, whatever the rate: an outside tester's silent /16 took
# 23.1 s for 8 probes an address (44 us a probe) and 30.7 s for a probe and 10 retries (43 us) at rate=0, on
# 2 cores at a load of 15 to 20, where the estimate counted nothing for sending; 60 us is counted.
PER_PROBE_COST = {"socket": 60e-6, "ping": 0.0}
# Starting the workers and gathering their results, once per sweep: 0.1 s measured for one address on a quiet
# machine, at most 0.2 s beyond the other parts at a load of 21 on 2 cores (test__sweep_duration.py's sweeps).
START_COST = 0.5

# The one argument spec (AnsibleModule's format). Documentation: plugins/doc_fragments/sweep.py.
SPEC: Dict[str, Dict[str, Any]] = {
    "targets": {"type": "list", "elements": "str", "required": True},
    "exclude": {"type": "list", "elements": "str", "default": []},
    "timeout": {"type": "float", "default": 1.0},
    "retries": {"type": "int", "default": 1},
    "count": {"type": "int", "default": 1},
    "spacing": {"type": "float", "default": 1.0},
    "method": {"type": "str", "default": "auto", "choices": list(METHODS)},
    "workers": {"type": "int"},
    "concurrency": {"type": "int"},
    "rate": {"type": "float", "default": DEFAULT_RATE},
    "max_hosts": {"type": "int", "default": DEFAULT_MAX_HOSTS},
}


class SweepError(ValueError):
    """The sweep was asked for something it cannot do; nothing was probed."""


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class Estimate:
    """How long a sweep takes, what bounds it, and how to make it shorter (for a message that refuses it)."""

    seconds: float
    bound: str
    fix: str


def argument_spec() -> Dict[str, Dict[str, Any]]:
    """A fresh copy of ``SPEC`` for ``AnsibleModule`` (which may add to what it is given)."""
    return copy.deepcopy(SPEC)


@dataclass(frozen=True)
class SweepOptions:
    """What to sweep and how: every option of ``SPEC``, with its default."""

    targets: List[str] = field(default_factory=list)
    exclude: List[str] = field(default_factory=list)
    timeout: float = 1.0
    retries: int = 1
    count: int = 1
    spacing: float = 1.0
    method: str = "auto"
    workers: Optional[int] = None
    concurrency: Optional[int] = None
    rate: float = DEFAULT_RATE
    max_hosts: int = DEFAULT_MAX_HOSTS

    def check(self) -> "SweepOptions":
        """Refuse impossible numbers (SweepError names the option and the bound); self when all is well."""
        if not 0 < self.timeout <= MAX_TIMEOUT:  # False for nan too
            raise SweepError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, got {self.timeout}")
        if self.timeout < MIN_TIMEOUT:
            raise SweepError(f"timeout must be at least {MIN_TIMEOUT:g} seconds (no reply comes sooner), "
                             f"got {self.timeout}")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise SweepError(f"retries must be between 0 and {MAX_RETRIES}, got {self.retries}")
        if not 1 <= self.count <= MAX_COUNT:
            raise SweepError(f"count must be between 1 and {MAX_COUNT} probes per address, got {self.count}")
        if not MIN_SPACING <= self.spacing <= MAX_SPACING:
            raise SweepError(f"spacing must be between {MIN_SPACING:g} and {MAX_SPACING:g} seconds (between two "
                             f"probes to the same address), got {self.spacing}")
        if self.method not in METHODS:
            raise SweepError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not math.isfinite(self.rate) or self.rate < 0:
            raise SweepError(f"rate must be 0 (no cap) or a finite positive number of probes per second, "
                             f"got {self.rate}")
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            raise SweepError(f"workers must be between 1 and {MAX_WORKERS}, got {self.workers}")
        for name, top in (("concurrency", MAX_CONCURRENCY), ("max_hosts", MAX_HOSTS)):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SweepError(f"{name} must be at least 1, got {value}")
            if value is not None and value > top:
                raise SweepError(f"{name} must be at most {top}, got {value}")
        return self

    def hands(self, addresses: int, method: str) -> int:
        """The worker processes a sweep of *addresses* by *method* (socket or ping) runs on."""
        workers = default_workers() if self.workers is None else self.workers
        return max(1, min(workers, -(-addresses // MIN_SHARE[method]), addresses))

    def in_flight(self, addresses: int, method: str) -> int:
        """Probes (method=ping: ping processes) in flight at once over all the workers."""
        per_worker = DEFAULT_CONCURRENCY[method] if self.concurrency is None else self.concurrency
        return per_worker * self.hands(addresses, method)

    def per_address(self) -> float:
        """How long one address holds its place in flight: count x spacing, or every retry's timeout (silent)."""
        if self.count > 1:
            return (self.count - 1) * self.spacing + self.timeout
        return (self.retries + 1) * self.timeout

    def probes(self) -> int:
        """Probes one address gets at most: ``count``, or one and every retry (silent, every retry spent)."""
        return self.count if self.count > 1 else self.retries + 1

    def estimate(self, addresses: int, method: str = "socket") -> Estimate:
        """How long sweeping *addresses* by *method* takes at most: the sum of its parts, which names the largest.

        The one estimate of the sweep's duration: the module's, the
        inventory's and the watcher's hour bound, the watcher's round against
        its interval and its watchdog during the sweep. An upper bound for the
        worst case, every address silent and every retry spent: sending every
        probe (retries included) at ``rate``; the waits, addresses in turns of
        ``in_flight`` each held ``per_address`` (the sender is idle only while
        some address waits); method=ping's process per address and attempt on
        each worker; and ``START_COST``. Not the largest of them: a sweep
        estimated at 6 s by the largest took 66 s (an outside tester's).
        """
        parts = [self._sending(addresses, method), self._waiting(addresses, method),
                 self._starting(addresses, method)]
        total = sum(part.seconds for part in parts) + START_COST
        worst = max(parts, key=lambda part: part.seconds)
        return Estimate(total, worst.bound.format(took=duration(total)), worst.fix)

    def _sending(self, addresses: int, method: str) -> Estimate:
        """The bound of the rate: each worker sends its share of the addresses' probes at its share of ``rate``."""
        hands = self.hands(addresses, method)
        probes = self.probes()
        capped = -(-addresses // hands) * hands * probes / self.rate if self.rate else 0.0
        sending = addresses * probes * PER_PROBE_COST[method]  # the machine's own pace, with or without a cap
        what = ("one probe" if probes == 1 else f"{probes} probes" if self.count > 1
                else f"one probe and {probes - 1} {'retry' if probes == 2 else 'retries'}")
        if sending > capped:
            return Estimate(sending, f"sending {what} to each of the {addresses} addresses would take about {{took}} "
                                     "(method=socket's own pace, whatever the rate)",
                            "lower count or retries, or sweep fewer addresses")
        return Estimate(capped, f"rate={self.rate:g} would take about {{took}} to send {what} to each of the "
                                f"{addresses} addresses", "raise rate (0 for no cap) or sweep fewer addresses")

    def _starting(self, addresses: int, method: str) -> Estimate:
        """The bound of method=ping's processes: one per address and attempt, started in turn on each worker."""
        hands = self.hands(addresses, method)
        processes = 1 if self.count > 1 else self.retries + 1
        return Estimate(-(-addresses // hands) * processes * PER_ADDRESS_COST[method],
                        f"method={method} starts a ping process for each of the {addresses} addresses"
                        + (" and retry" if processes > 1 else "") + f", on {hands} worker(s): that would take about "
                        "{took}", "use method=socket (or auto where ICMP sockets may be opened) or sweep fewer "
                        "addresses")

    def _waiting(self, addresses: int, method: str) -> Estimate:
        """The bound of the waits: addresses in turns of ``in_flight``, each held ``per_address``."""
        in_flight = self.in_flight(addresses, method)
        turns = -(-addresses // in_flight)
        counted = self.count > 1
        held = (f"count={self.count} at spacing={self.spacing:g}" if counted
                else f"timeout={self.timeout:g} with retries={self.retries}")
        lower = "lower count or spacing" if counted else "lower timeout or retries"
        if turns == 1:
            return Estimate(self.per_address(), held + " would take about {took} (the last timeout included)", lower)
        hands = self.hands(addresses, method)
        return Estimate(turns * self.per_address(),
                        f"{addresses} addresses, {in_flight} at a time (concurrency={in_flight // hands} x {hands} "
                        f"worker(s), method={method}), each held {self.per_address():g} s by {held}, would take "
                        "about {took}", f"raise concurrency (or workers), {lower}, or sweep fewer addresses")

    def check_size(self, addresses: int, method: str = "socket") -> None:
        """Refuse a sweep of *addresses* by *method* that would send too many probes or take too long."""
        probes = addresses * self.count
        if probes > MAX_PROBES:
            raise SweepError(f"count={self.count} for {addresses} addresses is {probes} probes, more than the "
                             f"{MAX_PROBES} one sweep may send: lower count or sweep fewer addresses")
        found = self.estimate(addresses, method)
        if found.seconds > MAX_SEND_SECONDS:
            raise SweepError(f"{found.bound}, longer than the {duration(MAX_SEND_SECONDS)} a sweep may take: "
                             f"{found.fix}")


def duration(seconds: float) -> str:
    """A duration in words: ``7.1 hours``, ``1 day``, ``45 seconds``."""
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= size:
            amount = seconds / size
            return f"{amount:.1f} {unit}" if amount != 1 else f"1 {unit[:-1]}"
    return f"{seconds:.0f} seconds"


def from_params(params: Mapping[str, Any]) -> SweepOptions:
    """The options out of a mapping already converted to the spec's types (module params, inventory options).

    Names the mapping does not hold keep their defaults; what it holds as
    None does too (an option left unset). Not checked yet: call ``check()``.
    """
    given = {f.name: params[f.name] for f in fields(SweepOptions) if params.get(f.name) is not None}
    for name in ("targets", "exclude"):
        if name in given and isinstance(given[name], str):
            given[name] = [given[name]]
    for name in ("timeout", "spacing", "rate"):
        if name in given:
            given[name] = float(given[name])
    return SweepOptions(**given)


_LIST_SPLIT = re.compile(r"[\s,]+")


def _from_word(raw: str, name: str, label: str) -> Any:
    """One option's value out of the text of a settings file, by the spec's type; SweepError names *label*."""
    kind = SPEC[name]["type"]
    if kind == "list":
        return [w for w in _LIST_SPLIT.split(raw.strip()) if w]
    if kind == "str":
        return raw.strip()
    if kind == "int":
        return _numbers.whole_number(raw, label, SweepError)
    return _numbers.decimal_number(raw, label, SweepError)


def from_text(section: Mapping[str, str], where: str = "", names: Optional[Mapping[str, str]] = None,
              defaults: Optional[Mapping[str, Any]] = None) -> SweepOptions:
    """The options out of a settings file's section (strings), checked; SweepError names the key as written.

    *names* maps an option to the key it has there (the watcher's ``watch``
    is ``targets``); *defaults* are that front's own defaults, where they
    differ from the spec's. *where* (``[hosts]``) starts every message.
    """
    names = dict(names or {})
    given: Dict[str, Any] = dict(defaults or {})
    for name in SPEC:
        key = names.get(name, name)
        raw = section.get(key)
        if raw is None or not str(raw).strip():
            continue
        given[name] = _from_word(str(raw), name, f"{where} {key}".strip())
    options = from_params(given)
    try:
        return options.check()
    except SweepError as exc:
        text = str(exc)
        for name in SPEC:
            if text.startswith(name + " "):
                text = f"{names.get(name, name)} {text[len(name) + 1:]}"
                break
        raise SweepError(f"{where} {text}".strip()) from None


def keys(names: Optional[Mapping[str, str]] = None) -> List[str]:
    """Every key of the options as a settings file names them."""
    names = dict(names or {})
    return [names.get(name, name) for name in SPEC]


def with_defaults(options: SweepOptions, **changes: Any) -> SweepOptions:
    """A copy with some options changed (and checked again)."""
    return replace(options, **changes).check()
