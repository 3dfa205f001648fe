# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parse sweep targets: addresses, CIDRs, ranges and host names.

PRIVATE to the sysops.fleet collection. Pure standard library.

Everything is validated and counted before anything is expanded or
resolved, so a typo such as ``10.0.0.0/7`` is refused with its size instead
of eating memory, and nothing reaches a command line unchecked.

An address is written one way only: a dotted quad or IPv6. The other
forms ``inet_aton`` reads (``127.1``, ``0x7f.1``, ``0177.0.0.1``,
``2130706433``) mean different addresses to different tools (is ``0177``
octal?), so they are refused, never looked up as host names.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from . import _lookup

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

DEFAULT_MAX_HOSTS = 65536
_NO_NAME = "the name does not resolve (check DNS or /etc/hosts)"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$")
_SHELL_CHARS = set(";&|`$<>(){}[]!*?~'\"\\ \t\n\r#=,")
# Several last octets of one /24 in one entry, as nmap writes them: 192.0.2.1-5,9,20-30.
# No leading zeros (is 010 octal?); the first three octets are checked by ipaddress.
_OCTET = r"(?:0|[1-9][0-9]{0,2})"
_OCTET_LIST = re.compile(rf"^([0-9.]+)\.({_OCTET}(?:-{_OCTET})?(?:,{_OCTET}(?:-{_OCTET})?)+)$")
# An IPv4 entry that ends in last octets (192.0.2.1, 192.0.2.1-5, 192.0.2.1-5,9), and a piece of
# last octets alone (9, 20-30): what is left of such an entry after Ansible split it at its commas.
_ENDS_IN_OCTETS = re.compile(rf"^[0-9]{{1,3}}\.[0-9]{{1,3}}\.[0-9]{{1,3}}\.{_OCTET}(?:-{_OCTET})?(?:,{_OCTET}(?:-{_OCTET})?)*$")
_OCTET_PIECE = re.compile(r"^[0-9]{1,3}(?:-[0-9]{1,3})?$")


class TargetError(ValueError):
    """A target or exclude entry is malformed or too large."""


@dataclass(frozen=True)
class Span:
    """An inclusive run of addresses of one family, kept as integers."""

    version: int
    first: int
    last: int
    source: str

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def addresses(self) -> Iterator[IPAddress]:
        make = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        for value in range(self.first, self.last + 1):
            yield make(value)


@dataclass(frozen=True)
class Name:
    """A host name, resolved later."""

    name: str


Target = Union[Span, Name]


@dataclass
class Plan:
    """What a sweep will probe: unique addresses in order, and names that failed."""

    addresses: List[str] = field(default_factory=list)  # sorted, unique, as text
    names: Dict[str, str] = field(default_factory=dict)  # address -> name it was given as
    unresolved: Dict[str, str] = field(default_factory=dict)  # name -> why
    exclude_unresolved: Dict[str, str] = field(default_factory=dict)  # excluded name -> why (it excludes nothing)


def parse(entry: str, option: str = "targets") -> Target:
    """Parse one entry; TargetError says what is wrong with it."""
    if not isinstance(entry, str):
        raise TargetError(f"{option}: {entry!r} is not a string")
    text = entry.strip()
    if not text:
        raise TargetError(f"{option}: empty entry; give an address, CIDR, range or host name")
    bad = sorted(set(text) & _SHELL_CHARS)
    if bad:
        raise TargetError(f"{option}: {entry!r} contains {''.join(bad)!r}; an entry is one address, "
                          "CIDR (10.0.0.0/24), range (10.0.0.1-10.0.0.9, 10.0.0.1-9, or last octets as "
                          "10.0.0.1-5,9) or host name")
    if "/" in text:
        return _parse_cidr(text, option, hosts_only=option != "exclude")
    if "-" in text and _looks_like_range(text):
        return _parse_range(text, option)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        value = int(address)
        return Span(address.version, value, value, text)
    read_as = _inet_aton_form(text)
    if read_as:
        raise TargetError(f"{option}: {entry!r} is not a valid address here: inet_aton reads this shorthand, "
                          f"hexadecimal, octal or single-number form as {read_as} and other tools read it "
                          f"differently; write the dotted quad ({read_as}) if that is what you mean")
    if _looks_numeric(text) or not _HOSTNAME.match(text):
        raise TargetError(f"{option}: {entry!r} is not a valid address, CIDR, range or host name")
    return Name(text.rstrip(".").lower())


def _looks_like_range(text: str) -> bool:
    head = text.split("-", 1)[0]
    try:
        ipaddress.ip_address(head)
    except ValueError:
        return False
    return True


def _looks_numeric(text: str) -> bool:
    """'10.0.0.300', '1.2.3' or 'host.0x1f' is a broken address, not a host name to look up.

    A host name's last label is never all digits nor hexadecimal like
    ``0x1f`` (RFC 3696), so such a "name" is a number in disguise.
    """
    last = text.rstrip(".").rsplit(".", 1)[-1]
    return bool(re.fullmatch(r"[0-9.]+", text)) or (":" in text) or bool(
        re.fullmatch(r"[0-9]+|0[xX][0-9a-fA-F]*", last))


def _inet_aton_form(text: str) -> str:
    """The address inet_aton (and so getaddrinfo) reads *text* as, or ''; ``ipaddress`` took the dotted quads."""
    try:
        return socket.inet_ntoa(socket.inet_aton(text))
    except (OSError, ValueError):
        return ""


def _parse_cidr(text: str, option: str, hosts_only: bool = True) -> Span:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise TargetError(f"{option}: {text!r} is not a valid CIDR ({exc})") from None
    if network.prefixlen == 0:
        raise TargetError(f"{option}: {text!r} is the whole address space; give a real network such as 10.0.0.0/24")
    first, last = int(network.network_address), int(network.broadcast_address)
    if hosts_only and network.version == 4 and network.prefixlen < 31:
        first, last = first + 1, last - 1  # like fping -g: no network or broadcast address
    return Span(network.version, first, last, text)


def _parse_range(text: str, option: str) -> Span:
    head, tail = text.split("-", 1)
    start = ipaddress.ip_address(head)
    if start.version == 4 and re.fullmatch(r"[0-9]{1,3}", tail):
        octet = int(tail)
        if octet > 255:
            raise TargetError(f"{option}: {text!r}: the last octet {octet} is larger than 255")
        end: IPAddress = ipaddress.IPv4Address((int(start) & 0xFFFFFF00) | octet)
    else:
        try:
            end = ipaddress.ip_address(tail)
        except ValueError:
            raise TargetError(f"{option}: {text!r} is not a valid range; write 10.0.0.1-10.0.0.9 or 10.0.0.1-9") from None
    if end.version != start.version:
        raise TargetError(f"{option}: {text!r} mixes IPv4 and IPv6")
    if int(end) < int(start):
        raise TargetError(f"{option}: {text!r} ends before it starts")
    return Span(start.version, int(start), int(end), text)


def octet_list_runs(entry: str, option: str = "targets") -> Optional[List[Tuple[int, int]]]:
    """The runs (first, last) of an entry such as ``192.0.2.1-5,9,20-30`` (several last octets of one /24),
    or None if it is not one. Integers, not Spans: :func:`expand` reads a /16's ranges with it, quickly."""
    match = _OCTET_LIST.match(entry.strip()) if isinstance(entry, str) else None
    if not match:
        return None
    try:
        base = int(ipaddress.IPv4Address(match.group(1) + ".0"))
    except ValueError:
        raise TargetError(f"{option}: {entry!r}: {match.group(1)!r} is not the first three octets of an "
                          "IPv4 address; write an octet list as 192.0.2.1-5,9") from None
    runs = []
    for item in match.group(2).split(","):
        low, dash, high = item.partition("-")
        first, last = int(low), int(high if dash else low)
        if last > 255:
            raise TargetError(f"{option}: {entry!r}: the last octet {last} is larger than 255")
        if last < first:
            raise TargetError(f"{option}: {entry!r}: {item} ends before it starts")
        runs.append((base | first, base | last))
    return runs


def rejoin(entries: Sequence[str], option: str = "targets") -> List[str]:
    """Entries with the pieces Ansible split off put back: ``targets: 192.0.2.1-5,9`` given as one string
    arrives as ``["192.0.2.1-5", "9"]`` (a ``list`` option splits a string at its commas).

    A piece of last octets alone (``9``, ``20-30``) belongs to the IPv4 entry before it; one with no such
    entry before it is refused here, saying where it goes (it is no address of its own).
    """
    joined: List[str] = []
    for entry in entries:
        piece = entry.strip() if isinstance(entry, str) else None
        if piece is not None and _OCTET_PIECE.match(piece):
            if not (joined and isinstance(joined[-1], str) and _ENDS_IN_OCTETS.match(joined[-1].strip())):
                raise TargetError(f"{option}: {entry!r} is a last octet without its network; write it after an "
                                  "address of its /24, as in 192.0.2.1-5,9 (Ansible splits a string given to "
                                  f"{option} at its commas; the pieces are put back on the address before them)")
            joined[-1] = f"{joined[-1].strip()},{piece}"
            continue
        joined.append(entry)
    return joined


def parse_all(entries: Sequence[str], option: str, max_hosts: Optional[int] = None) -> List[Target]:
    """Parse every entry; with *max_hosts*, refuse a sweep larger than that before expanding it."""
    if isinstance(entries, str):
        entries = [entries]
    parsed: List[Target] = []
    for entry in rejoin(entries, option):
        runs = octet_list_runs(entry, option)
        parsed.extend([Span(4, a, b, entry) for a, b in runs] if runs is not None else [parse(entry, option)])
    if max_hosts is not None:
        for target in parsed:
            if isinstance(target, Span) and target.size > max_hosts:
                raise TargetError(f"{option}: {target.source!r} has {target.size} addresses, "
                                  f"more than max_hosts={max_hosts}; split it or raise max_hosts")
        total = size_of(parsed)
        if total > max_hosts:
            raise TargetError(f"{option}: {total} addresses in all, more than max_hosts={max_hosts}; "
                              "split the sweep or raise max_hosts")
    return parsed


def size_of(parsed: Sequence[Target]) -> int:
    """The addresses of parsed targets, nothing resolved: a host name counts as one."""
    return sum(t.size if isinstance(t, Span) else 1 for t in parsed)


def size_after(targets: Sequence[str], exclude: Sequence[str], option: str = "targets") -> int:
    """The addresses of *targets* that *exclude* leaves, nothing resolved: a name counts as one and excludes
    nothing (what a sweep's duration is estimated for before any name is looked up: a /16 minus a /17 is half)."""
    wanted = parse_all(targets, option)
    excluded = _Excluded([(t.version, t.first, t.last) for t in parse_all(exclude or [], "exclude")
                          if isinstance(t, Span)])
    return sum(sum(b - a + 1 for a, b in excluded.runs(t.version, t.first, t.last)) if isinstance(t, Span) else 1
               for t in wanted)


def resolve_name(name: str) -> List[IPAddress]:
    """Addresses of *name*, IPv4 first; an empty list if it does not resolve."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    found = []
    for info in infos:
        sockaddr = info[4]
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if address not in found:
            found.append(address)
    return sorted(found, key=lambda a: a.version)


class _Excluded:
    """Fast membership test against exclude spans without expanding them."""

    def __init__(self, spans: Iterable[Tuple[int, int, int]]):
        self._by_version: Dict[int, Tuple[List[int], List[int]]] = {}
        for version in (4, 6):
            merged: List[Tuple[int, int]] = []
            for first, last in sorted(s[1:] for s in spans if s[0] == version):
                if merged and first <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], last))
                else:
                    merged.append((first, last))
            self._by_version[version] = ([m[0] for m in merged], [m[1] for m in merged])

    def has(self, version: int, value: int) -> bool:
        firsts, lasts = self._by_version[version]
        i = bisect.bisect_right(firsts, value) - 1
        return i >= 0 and value <= lasts[i]

    def runs(self, version: int, first: int, last: int) -> Iterator[Tuple[int, int]]:
        """The inclusive runs of first..last that are not excluded."""
        firsts, lasts = self._by_version[version]
        value = first
        i = max(0, bisect.bisect_right(firsts, value) - 1)
        while value <= last:
            if i < len(firsts) and firsts[i] <= value <= lasts[i]:
                value = lasts[i] + 1
                i += 1
                continue
            if i < len(firsts) and firsts[i] < value:
                i += 1
                continue
            stop = last if i >= len(firsts) else min(last, firsts[i] - 1)
            yield value, stop
            value = stop + 1


def address_text(version: int, value: int) -> str:
    """Text form of an address held as an integer (fast path for large sweeps)."""
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def names_in(targets: Sequence[str], exclude: Sequence[str] = ()) -> int:
    """How many host names *targets* and *exclude* hold (each is looked up), for ``_lookup.bound``."""
    parsed = parse_all(targets, "targets") + parse_all(exclude or [], "exclude")
    return len({t.name for t in parsed if isinstance(t, Name)})


def _look_up(targets: Sequence[Target], resolver: Callable[[str], List[IPAddress]],
             heartbeat: Optional[Callable[[], None]]) -> Dict[str, Union[List[IPAddress], str]]:
    """Each name's addresses, looked up a few at a time, each within ``_lookup.TIMEOUT``; why not, for a lookup that hung.

    A resolver's exception is raised here, as if the lookups had been made one after the other.
    """
    names = [t.name for t in targets if isinstance(t, Name)]
    answers = _lookup.call_all(resolver, names, timeout=_lookup.TIMEOUT, heartbeat=heartbeat)
    found: Dict[str, Union[List[IPAddress], str]] = {}
    for name in dict.fromkeys(names):
        answer = answers[name]
        if answer.error is not None:
            raise answer.error
        found[name] = (f"the name lookup did not answer within {_lookup.TIMEOUT:g}s (check the resolver, "
                       "/etc/resolv.conf and /etc/nsswitch.conf)") if answer.timed_out else answer.value
    return found


def plan(targets: Sequence[str], exclude: Sequence[str] = (), max_hosts: int = DEFAULT_MAX_HOSTS,
         resolver: Callable[[str], List[IPAddress]] = resolve_name,
         heartbeat: Optional[Callable[[], None]] = None) -> Plan:
    """Validate, count, resolve and expand targets minus exclude into a Plan.

    Every name is looked up under a deadline (``_lookup``), *heartbeat* called meanwhile.
    """
    if not targets:
        raise TargetError("targets: give at least one address, CIDR, range or host name")
    if max_hosts < 1:
        raise TargetError(f"max_hosts must be at least 1, got {max_hosts}")
    wanted = parse_all(targets, "targets", max_hosts)
    unwanted = parse_all(exclude or [], "exclude")
    looked_up = _look_up(list(unwanted) + list(wanted), resolver, heartbeat)
    result = Plan()
    spans = [(t.version, t.first, t.last) for t in unwanted if isinstance(t, Span)]
    for target in unwanted:
        if isinstance(target, Name):
            found = looked_up[target.name]
            if isinstance(found, str) or not found:
                result.exclude_unresolved[target.name] = (found or _NO_NAME) + ", so it excludes nothing"
                continue
            spans.extend((a.version, int(a), int(a)) for a in found)
    excluded = _Excluded(spans)
    runs: List[Tuple[int, int, int]] = []
    for target in wanted:
        if isinstance(target, Span):
            runs.extend((target.version, a, b) for a, b in excluded.runs(target.version, target.first, target.last))
            continue
        found = looked_up[target.name]
        if isinstance(found, str) or not found:
            result.unresolved[target.name] = found or _NO_NAME
            continue
        value = int(found[0])
        if not excluded.has(found[0].version, value):
            runs.append((found[0].version, value, value))
            result.names.setdefault(address_text(found[0].version, value), target.name)
    result.addresses = _expand(runs)
    return result


def expand(entries: Sequence[str], option: str, max_hosts: int) -> List[str]:
    """The addresses that address, range, octet-list and CIDR entries stand for, sorted; host names refused.

    What reads ``alive_ranges`` back into addresses; *max_hosts* bounds
    what a hostile or mistaken entry (``10.0.0.0/8``) can make us expand.
    """
    runs: List[Tuple[int, int, int]] = []
    total = 0
    for entry in [entries] if isinstance(entries, str) else entries:
        octets = octet_list_runs(entry, option)
        if octets is None:
            target = parse(entry, option)
            if isinstance(target, Name):
                raise TargetError(f"{option}: {target.name!r} is a host name; only addresses, ranges and CIDRs "
                                  "are read here (as ping_sweep returns them)")
            octets = [(target.first, target.last)]
            version = target.version
        else:
            version = 4
        for first, last in octets:
            total += last - first + 1
            runs.append((version, first, last))
        if total > max_hosts:
            raise TargetError(f"{option}: {entry!r} brings the total to {total} addresses, more than max_hosts={max_hosts}")
    return _expand(runs)


def compact(addresses: Iterable[str]) -> List[str]:
    """Addresses written as few ``targets`` entries as they take: one per /24 for IPv4, one per run for IPv6.

    ``["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.9"]`` becomes
    ``["192.0.2.1-3,9"]``; a lone address stays itself. The entries are
    sorted and read back by ping_sweep's ``targets`` and by :func:`expand`.
    Cheap for a /16 (a few hundred strings instead of 65,534), which is
    what keeps a large sweep's result quick for Ansible to carry.
    """
    octets: Dict[str, List[int]] = {}
    six: List[int] = []
    for address in addresses:
        if ":" in address:
            six.append(int(ipaddress.IPv6Address(address)))
            continue
        head, last = address.rsplit(".", 1)
        octets.setdefault(head, []).append(int(last))
    out = []
    for head in sorted(octets, key=lambda h: tuple(int(o) for o in h.split("."))):
        runs = _runs(octets[head])
        if len(runs) == 1 and runs[0][0] == runs[0][1]:
            out.append(f"{head}.{runs[0][0]}")
        else:
            out.append(head + "." + ",".join(f"{a}-{b}" if b > a else str(a) for a, b in runs))
    for first, last in _runs(six):
        text = address_text(6, first)
        out.append(text if first == last else f"{text}-{address_text(6, last)}")
    return out


def _runs(values: List[int]) -> List[Tuple[int, int]]:
    """Inclusive runs of consecutive values, sorted and de-duplicated."""
    runs: List[Tuple[int, int]] = []
    for value in sorted(set(values)):
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _expand(runs: List[Tuple[int, int, int]]) -> List[str]:
    """Sorted, de-duplicated text addresses of possibly overlapping runs."""
    out: List[str] = []
    edge: Dict[int, int] = {4: -1, 6: -1}  # last value emitted per version
    for version, first, last in sorted(runs):
        first = max(first, edge[version] + 1)
        if first > last:
            continue
        family, width = (socket.AF_INET, 4) if version == 4 else (socket.AF_INET6, 16)
        ntop = socket.inet_ntop
        out.extend(ntop(family, v.to_bytes(width, "big")) for v in range(first, last + 1))
        edge[version] = last
    return out
