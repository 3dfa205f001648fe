# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ICMP echo over sockets: many probes in flight from one process.

PRIVATE to the sysops.fleet collection. Pure standard library.

An unprivileged user gets a datagram ICMP socket where the kernel allows it
(``net.ipv4.ping_group_range``); root gets a raw socket. Every probe carries
a random token, its address's index and its own number (the retry, or the
probe of count mode) in the payload, which the host echoes back, so each
reply is matched to the very probe it answers without relying on the
16-bit sequence number, and timed from that probe's send.

Two rules keep a busy machine from turning an alive host into a dead one:
the timeout of a probe runs from the moment ``sendto`` returned, and all
replies waiting in the socket are read before any probe is declared lost.
"""

from __future__ import annotations

import array
import ctypes
import errno
import os
import select
import socket
import struct
import time
from collections import deque
from typing import Deque, Dict, List, NamedTuple, Optional, Sequence, Tuple

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
_PROTO = {4: socket.IPPROTO_ICMP, 6: socket.IPPROTO_ICMPV6}
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
_ICMP_FILTER = 1  # linux/icmp.h, SOL_RAW option for raw IPv4 ICMP sockets
_SOL_RAW = 255
_ICMPV6_FILTER = 1  # linux/icmpv6.h, IPPROTO_ICMPV6 option
_PAYLOAD = struct.Struct("!IIH")  # token, address index, probe number (the retry, or the probe of count mode)
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, id, seq
_PACKET = struct.Struct("!BBHHHIIH")  # _HEADER then _PAYLOAD
_TAIL = b"sysops.fleet"  # even length, so it sums as whole 16-bit words
_TAIL_SUM = sum(struct.unpack("!6H", _TAIL))
_RCVBUF = 8 << 20
_BATCH = 64  # sends between two reads of the reply queue
_UNSENT, _IN_FLIGHT, _EXPIRED, _ANSWERED = 0, 1, 2, 3  # the states of a probe slot


class IcmpUnavailable(OSError):
    """This process may not open an ICMP socket."""


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def open_socket(version: int) -> Tuple[socket.socket, bool]:
    """An ICMP socket for IP *version* and whether it is raw (else datagram)."""
    errors = []
    for kind, raw in ((socket.SOCK_DGRAM, False), (socket.SOCK_RAW, True)):
        try:
            sock = socket.socket(_FAMILY[version], kind, _PROTO[version])
        except OSError as exc:
            errors.append(f"{'raw' if raw else 'datagram'}: {exc.strerror or exc}")
            continue
        _tune(sock, version, raw)
        return sock, raw
    raise IcmpUnavailable(
        errno.EPERM,
        f"cannot open an ICMPv{version} socket ({'; '.join(errors)}); "
        "run as root, grant CAP_NET_RAW, widen net.ipv4.ping_group_range, or use method=ping")


def available(versions: Sequence[int] = (4,)) -> bool:
    """True if ICMP sockets can be opened for every IP version given."""
    for version in versions:
        try:
            sock = open_socket(version)[0]
        except IcmpUnavailable:
            return False
        sock.close()
    return True


def _tune(sock: socket.socket, version: int, raw: bool) -> None:
    sock.setblocking(False)
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, _RCVBUF)
            break
        except OSError:
            continue
    if raw and version == 4:
        # Deliver only echo replies: a raw socket also sees every echo
        # request on loopback and every other ICMP message on the host.
        sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", ~(1 << ECHO_REPLY[4]) & 0xFFFFFFFF))
    elif raw and version == 6:
        blocked = [0xFFFFFFFF] * 8
        blocked[ECHO_REPLY[6] >> 5] &= ~(1 << (ECHO_REPLY[6] & 31)) & 0xFFFFFFFF
        sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMPV6_FILTER, struct.pack("8I", *blocked))


_SO_ATTACH_FILTER = 26  # asm-generic/socket.h


def _bpf_only_ident(version: int, ident: int) -> bytes:
    """A classic BPF program that keeps only ICMP packets with our echo identifier.

    A raw socket gets a copy of every echo reply on the host, including the
    other workers'; filtering in the kernel saves a wake-up and a read for
    each of them. IPv4 raw sockets see the IP header first (its length is
    in the low nibble of byte 0), IPv6 raw sockets start at the ICMPv6 header.
    """
    op = struct.Struct("HBBI")
    if version == 4:
        load = [op.pack(0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf)
                op.pack(0x48, 0, 0, 4)]  # ldh [x+4]
    else:
        load = [op.pack(0x28, 0, 0, 4)]  # ldh [4]
    return b"".join(load + [op.pack(0x15, 0, 1, ident),  # jeq #ident, accept, drop
                            op.pack(0x06, 0, 0, 0xFFFFFFFF),  # ret accept
                            op.pack(0x06, 0, 0, 0)])  # ret drop


def attach_ident_filter(sock: socket.socket, version: int, ident: int) -> bool:
    """Attach _bpf_only_ident to a raw socket (Linux); False where it cannot be done."""
    program = _bpf_only_ident(version, ident)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HP", len(program) // 8, ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


class Tally(NamedTuple):
    """What one address answered: probes sent, and the round-trip time (ms) of each that got its reply."""

    sent: int
    rtts: List[float]


class Prober:
    """Sends echo requests to a list of addresses and times every reply from the probe it answers.

    Each address gets *count* probes, *spacing* seconds apart (count mode),
    or one probe and up to *retries* more while it stays silent. A probe is
    a slot (address index x probe number); the number travels in the
    payload and comes back in the reply, so every reply is timed from the
    probe it answers. A reply counts if it comes within *timeout* of its
    probe, as ``ping -W`` has it: a late answer to a first probe, arriving
    after the retry went out, is neither counted nor timed from the retry.
    """

    def __init__(self, addresses: Sequence[str], timeout: float = 1.0, retries: int = 0,
                 rate: float = 0.0, concurrency: int = 65536, ident: Optional[int] = None,
                 count: int = 1, spacing: float = 1.0):
        self.addresses = list(addresses)
        self.versions = [6 if ":" in a else 4 for a in self.addresses]
        self.timeout = float(timeout)
        self.count = max(1, int(count))
        self.retries = 0 if self.count > 1 else int(retries)
        self.per = self.count if self.count > 1 else self.retries + 1  # probe slots per address
        self.spacing = float(spacing)
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self.concurrency = max(1, int(concurrency))
        self.ident = (os.getpid() if ident is None else ident) & 0xFFFF
        self.token = int.from_bytes(os.urandom(4), "big")
        self._fixed_sum = (ECHO_REQUEST[4] << 8) + self.ident + (self.token >> 16) + (self.token & 0xFFFF) + _TAIL_SUM
        size = len(self.addresses)
        self.rtts: List[List[float]] = [[] for index in range(size)]
        self.sent = [0] * size
        self.errors: Dict[int, str] = {}
        self._sockets: Dict[int, Tuple[socket.socket, bool]] = {}
        self._sent_at = array.array("d", bytes(8 * size * self.per))  # slot -> monotonic time of its send
        self._state = bytearray(size * self.per)  # slot -> UNSENT, IN_FLIGHT, EXPIRED or ANSWERED
        self._outstanding = 0
        self._expiry: Deque[Tuple[float, int]] = deque()  # (expires at, slot), in send order
        self._later: Deque[Tuple[float, int]] = deque()  # (due at, slot): count mode's next probes, in due order
        self._todo: Deque[int] = deque(i * self.per for i in range(size))  # slots to send now

    def run(self) -> Dict[str, Tally]:
        """Probe everything; address -> Tally (no RTT at all when it stayed silent)."""
        try:
            for version in sorted(set(self.versions)):
                sock, raw = open_socket(version)
                self._sockets[version] = (sock, raw)
                if raw:
                    attach_ident_filter(sock, version, self.ident)
            self._loop()
        finally:
            for sock, _raw in self._sockets.values():
                sock.close()
        return {a: Tally(self.sent[i], self.rtts[i]) for i, a in enumerate(self.addresses)}

    def _loop(self) -> None:
        next_send = time.monotonic()
        readers = [s for s, _raw in self._sockets.values()]
        while self._todo or self._later or self._outstanding:
            room = min(_BATCH, self.concurrency - self._outstanding)
            if self.interval:
                now = time.monotonic()
                room = min(room, 1 if now >= next_send else 0)
                if room:
                    next_send = max(next_send + self.interval, now - self.interval)
            sent = self._send_some(room) if room > 0 and (self._todo or self._later) else 0
            self._drain()
            self._expire()
            if not (self._todo or self._later or self._outstanding):
                break
            wait = self._wait(next_send, sent)
            if wait > 0:
                select.select(readers, [], [], wait)

    def _send_some(self, budget: int) -> int:
        """Send up to *budget* probes: count-mode probes that are due first, then first probes and retries;
        stop early when the kernel's queue is full.

        The hot loop of a large sweep, so attributes are bound to locals.
        The round trip is timed from just before ``sendto`` (a process
        descheduled after it would otherwise hide part of the wait and
        report less than the real RTT); the timeout runs from just after.
        """
        sent_at, state, expiry, timeout, per = self._sent_at, self._state, self._expiry, self.timeout, self.per
        versions, sockets, addresses, later, todo = self.versions, self._sockets, self.addresses, self._later, self._todo
        monotonic, packet, counted = time.monotonic, self._packet, self.sent
        spacing, half, last = self.spacing, self.spacing / 2, self.count - 1
        count = 0
        now = monotonic()
        while count < budget:
            if later and later[0][0] <= now:
                due, slot = later[0]
                queue = later
            elif todo:
                due, slot, queue = 0.0, todo[0], todo
            else:
                break
            index, number = divmod(slot, per)
            version = versions[index]
            data = packet(version, index, number)
            started = monotonic()
            try:
                sockets[version][0].sendto(data, (addresses[index], 0))
            except (BlockingIOError, InterruptedError):
                break  # read replies, then go on
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    break
                queue.popleft()  # no more probes to it: unreachable, or refused by a local firewall
                self.errors[index] = exc.strerror or str(exc)
                continue
            now = monotonic()
            queue.popleft()
            sent_at[slot] = started
            state[slot] = _IN_FLIGHT
            expiry.append((now + timeout, slot))
            counted[index] += 1
            if number < last:  # on the cadence of its due time, never closer than half the spacing to this one
                later.append((max(due + spacing, started + half) if due else started + spacing, slot + 1))
            count += 1
        self._outstanding += count
        return count

    def _wait(self, next_send: float, sent: int) -> float:
        now = time.monotonic()
        waits = []
        if self._expiry:
            waits.append(self._expiry[0][0] - now)
        if self._outstanding < self.concurrency:
            if self._todo:
                waits.append(0.0 if sent >= _BATCH else next_send - now)
            if self._later:
                waits.append(max(self._later[0][0], next_send if self.interval else 0.0) - now)
        return max(0.0, min(waits, default=0.0))

    def _packet(self, version: int, index: int, number: int) -> bytes:
        """An echo request; the IPv4 checksum is summed from its parts (the kernel does ICMPv6's)."""
        seq = (index + number) & 0xFFFF
        csum = 0
        if version == 4:
            total = self._fixed_sum + seq + (index >> 16) + (index & 0xFFFF) + number
            total = (total >> 16) + (total & 0xFFFF)
            csum = ~(total + (total >> 16)) & 0xFFFF
        return _PACKET.pack(ECHO_REQUEST[version], 0, csum, self.ident, seq, self.token, index, number) + _TAIL

    def _drain(self) -> None:
        """Read every reply the kernel holds for us (before anything may expire)."""
        match, monotonic = self._match, time.monotonic
        for version, (sock, raw) in self._sockets.items():
            recv = sock.recv
            while True:
                try:
                    data = recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                match(data, version, raw, monotonic())

    def _match(self, data: bytes, version: int, raw: bool, received: float) -> None:
        """Time a reply from the probe its payload names, if that probe still waits for it; once per probe."""
        start = (data[0] & 0x0F) * 4 if raw and version == 4 else 0  # a raw IPv4 socket sees the IP header first
        if len(data) < start + _HEADER.size + _PAYLOAD.size or data[start] != ECHO_REPLY[version]:
            return
        if raw and int.from_bytes(data[start + 4:start + 6], "big") != self.ident:
            return  # another process's ping
        token, index, number = _PAYLOAD.unpack_from(data, start + _HEADER.size)
        if token != self.token or index >= len(self.addresses) or number >= self.per:
            return
        slot = index * self.per + number
        if self._state[slot] != _IN_FLIGHT:
            return  # never sent (forged), too late (expired), or a duplicate
        self._state[slot] = _ANSWERED
        self._outstanding -= 1
        self.rtts[index].append((received - self._sent_at[slot]) * 1000.0)

    def _expire(self) -> None:
        """Probes whose timeout ran out are lost; a lost one gets its retry (one-probe mode) if any is left."""
        now = time.monotonic()
        expiry, state, per, retries = self._expiry, self._state, self.per, self.retries
        while expiry and expiry[0][0] <= now:
            slot = expiry.popleft()[1]
            if state[slot] != _IN_FLIGHT:
                continue  # answered in time
            state[slot] = _EXPIRED
            self._outstanding -= 1
            if slot % per < retries:
                self._todo.append(slot + 1)


def probe(addresses: Sequence[str], timeout: float = 1.0, retries: int = 0, rate: float = 0.0,
          concurrency: int = 65536, count: int = 1, spacing: float = 1.0) -> Tuple[Dict[str, Tally], Dict[str, str]]:
    """Probe *addresses* over ICMP sockets: (address -> Tally, address -> why its probes could not be sent)."""
    prober = Prober(addresses, timeout, retries, rate, concurrency, count=count, spacing=spacing)
    results = prober.run()
    errors = {prober.addresses[i]: e for i, e in prober.errors.items()}
    return results, errors
