# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ICMP echo over sockets: many probes in flight from one process.

PRIVATE to the sysops.fleet collection. Pure standard library.

An unprivileged user gets a datagram ICMP socket where the kernel allows it
(``net.ipv4.ping_group_range``); root gets a raw socket. Every probe carries
a random token and its own index in the payload, which the host echoes back,
so replies are matched without relying on the 16-bit sequence number.

Two rules keep a busy machine from turning an alive host into a dead one:
the timeout of a probe runs from the moment ``sendto`` returned, and all
replies waiting in the socket are read before any probe is declared lost.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import struct
import time
from collections import deque
from typing import Deque, Dict, Optional, Sequence, Tuple

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
_PROTO = {4: socket.IPPROTO_ICMP, 6: socket.IPPROTO_ICMPV6}
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
_ICMP_FILTER = 1  # linux/icmp.h, SOL_RAW option for raw IPv4 ICMP sockets
_SOL_RAW = 255
_ICMPV6_FILTER = 1  # linux/icmpv6.h, IPPROTO_ICMPV6 option
_PAYLOAD = struct.Struct("!IIH")  # token, probe index, attempt
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, id, seq
_PACKET = struct.Struct("!BBHHHIIH")  # _HEADER then _PAYLOAD
_TAIL = b"sysops.fleet"  # even length, so it sums as whole 16-bit words
_TAIL_SUM = sum(struct.unpack("!6H", _TAIL))
_RCVBUF = 8 << 20
_BATCH = 64  # sends between two reads of the reply queue


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


class Prober:
    """Sends echo requests to a list of addresses and collects round-trip times."""

    def __init__(self, addresses: Sequence[str], timeout: float = 1.0, retries: int = 0,
                 rate: float = 0.0, concurrency: int = 65536, ident: Optional[int] = None):
        self.addresses = list(addresses)
        self.versions = [6 if ":" in a else 4 for a in self.addresses]
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self.concurrency = max(1, int(concurrency))
        self.ident = (os.getpid() if ident is None else ident) & 0xFFFF
        self.token = int.from_bytes(os.urandom(4), "big")
        self._fixed_sum = (ECHO_REQUEST[4] << 8) + self.ident + (self.token >> 16) + (self.token & 0xFFFF) + _TAIL_SUM
        self.rtt: Dict[int, float] = {}
        self.errors: Dict[int, str] = {}
        self._sockets: Dict[int, Tuple[socket.socket, bool]] = {}
        self._sent: Dict[int, Tuple[float, int]] = {}  # index -> (sent at, attempt)
        self._expiry: Deque[Tuple[float, int, int]] = deque()
        self._todo: Deque[Tuple[int, int]] = deque((i, 0) for i in range(len(self.addresses)))

    def run(self) -> Dict[str, Optional[float]]:
        """Probe everything; address -> RTT in ms, or None when silent."""
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
        return {a: (self.rtt.get(i)) for i, a in enumerate(self.addresses)}

    def _loop(self) -> None:
        next_send = time.monotonic()
        readers = [s for s, _raw in self._sockets.values()]
        while self._todo or self._sent:
            room = min(_BATCH, self.concurrency - len(self._sent))
            if self.interval:
                now = time.monotonic()
                room = min(room, 1 if now >= next_send else 0)
                if room:
                    next_send = max(next_send + self.interval, now - self.interval)
            sent = self._send_some(room) if self._todo and room > 0 else 0
            self._drain()
            self._expire()
            if not self._sent and not self._todo:
                break
            wait = self._wait(next_send, sent)
            if wait > 0:
                select.select(readers, [], [], wait)

    def _send_some(self, budget: int) -> int:
        """Send up to *budget* queued probes; stop early when the kernel's queue is full.

        The hot loop of a large sweep, so attributes are bound to locals.
        The round trip is timed from just before ``sendto`` (a process
        descheduled after it would otherwise hide part of the wait and
        report less than the real RTT); the timeout runs from just after.
        """
        todo, sent_at, expiry, timeout = self._todo, self._sent, self._expiry, self.timeout
        versions, sockets, addresses = self.versions, self._sockets, self.addresses
        monotonic, packet = time.monotonic, self._packet
        count = 0
        while todo and count < budget:
            index, attempt = todo[0]
            version = versions[index]
            data = packet(version, index, attempt)
            started = monotonic()
            try:
                sockets[version][0].sendto(data, (addresses[index], 0))
            except (BlockingIOError, InterruptedError):
                break  # read replies, then go on
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    break
                self.errors[index] = exc.strerror or str(exc)  # unreachable network, refused by a local firewall
                todo.popleft()
                continue
            now = monotonic()
            sent_at[index] = (started, attempt)
            expiry.append((now + timeout, index, attempt))
            todo.popleft()
            count += 1
        return count

    def _wait(self, next_send: float, sent: int) -> float:
        now = time.monotonic()
        waits = []
        if self._expiry:
            waits.append(self._expiry[0][0] - now)
        if self._todo and len(self._sent) < self.concurrency:
            waits.append(0.0 if sent >= _BATCH else next_send - now)
        return max(0.0, min(waits, default=0.0))

    def _packet(self, version: int, index: int, attempt: int) -> bytes:
        """An echo request; the IPv4 checksum is summed from its parts (the kernel does ICMPv6's)."""
        seq = (index + attempt) & 0xFFFF
        csum = 0
        if version == 4:
            total = self._fixed_sum + seq + (index >> 16) + (index & 0xFFFF) + attempt
            total = (total >> 16) + (total & 0xFFFF)
            csum = ~(total + (total >> 16)) & 0xFFFF
        return _PACKET.pack(ECHO_REQUEST[version], 0, csum, self.ident, seq, self.token, index, attempt) + _TAIL

    def _drain(self) -> None:
        """Read every reply the kernel holds for us (before anything may expire)."""
        for version, (sock, raw) in self._sockets.items():
            while True:
                try:
                    data = sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                self._match(data, version, raw, time.monotonic())

    def _match(self, data: bytes, version: int, raw: bool, received: float) -> None:
        if raw and version == 4:
            data = data[(data[0] & 0x0F) * 4:]
        if len(data) < _HEADER.size + _PAYLOAD.size or data[0] != ECHO_REPLY[version]:
            return
        if raw and int.from_bytes(data[4:6], "big") != self.ident:
            return  # another process's ping
        token, index, attempt = _PAYLOAD.unpack_from(data, _HEADER.size)
        if token != self.token or index >= len(self.addresses):
            return
        sent = self._sent.pop(index, None)
        if sent is not None and index not in self.rtt:
            self.rtt[index] = (received - sent[0]) * 1000.0

    def _expire(self) -> None:
        now = time.monotonic()
        while self._expiry and self._expiry[0][0] <= now:
            index, attempt = self._expiry.popleft()[1:]
            sent = self._sent.get(index)
            if sent is None or sent[1] != attempt:
                continue  # answered, or a newer attempt is out
            del self._sent[index]
            if attempt < self.retries:
                self._todo.append((index, attempt + 1))


def probe(addresses: Sequence[str], timeout: float = 1.0, retries: int = 0, rate: float = 0.0,
          concurrency: int = 65536) -> Tuple[Dict[str, Optional[float]], Dict[str, str]]:
    """Probe *addresses* over ICMP sockets: (address -> RTT ms or None, address -> send error)."""
    prober = Prober(addresses, timeout, retries, rate, concurrency)
    results = prober.run()
    errors = {prober.addresses[i]: e for i, e in prober.errors.items()}
    return results, errors
