# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""ICMP packets and the socket prober; real probes go to loopback only."""

import struct
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _icmp

needs_sockets = pytest.mark.skipif(not _icmp.available((4,)), reason="this user may not open ICMP sockets")


def test_checksum_matches_rfc1071_example():
    # RFC 1071 section 3 example words: 0001 f203 f4f5 f6f7 -> sum ddf2, checksum 220d
    assert _icmp.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert _icmp.checksum(b"\x01") == _icmp.checksum(b"\x01\x00")


@pytest.mark.parametrize("index,attempt", [(0, 0), (1, 2), (65535, 0), (65536, 1), (2 ** 32 - 1, 10)])
def test_echo_requests_carry_a_valid_checksum_and_our_payload(index, attempt):
    prober = _icmp.Prober(["127.0.0.1"], ident=0x1234)
    packet = prober._packet(4, index, attempt)
    assert _icmp.checksum(packet) == 0
    kind, code, ident = [struct.unpack_from("!BBHHH", packet)[i] for i in (0, 1, 3)]
    assert (kind, code, ident) == (8, 0, 0x1234)
    assert struct.unpack_from("!IIH", packet, 8) == (prober.token, index, attempt)


def _reply(prober, index, attempt=0, token=None, kind=0, ident=None):
    body = struct.pack("!BBHHH", kind, 0, 0, prober.ident if ident is None else ident, 0)
    return body + struct.pack("!IIH", prober.token if token is None else token, index, attempt) + b"x"


def _in_flight(prober, index, number, sent_at):
    """Mark probe *number* of address *index* as sent at *sent_at* (monotonic seconds), as _send_some does."""
    slot = index * prober.per + number
    prober._sent_at[slot] = sent_at
    prober._state[slot] = _icmp._IN_FLIGHT
    prober._outstanding += 1
    prober._expiry.append((sent_at + prober.timeout, slot))
    return slot


def test_replies_are_matched_by_token_and_index_and_raw_ident():
    prober = _icmp.Prober(["192.0.2.1", "192.0.2.2"], ident=7)
    _in_flight(prober, 0, 0, 10.0)
    _in_flight(prober, 1, 0, 10.0)
    prober._match(_reply(prober, 0, token=prober.token ^ 1), 4, False, 10.5)  # someone else's
    prober._match(_reply(prober, 0, kind=8), 4, False, 10.5)  # an echo request, not a reply
    prober._match(_reply(prober, 0, ident=8), 6, True, 10.5)  # raw socket: other process
    prober._match(_reply(prober, 5), 4, False, 10.5)  # index out of range
    prober._match(_reply(prober, 0, attempt=1), 4, False, 10.5)  # a probe number never sent
    assert prober.rtts == [[], []]
    ip_header = bytes([0x45]) + bytes(19)
    prober._match(ip_header + _reply(prober, 1), 4, True, 10.25)
    assert prober.rtts == [[], [250.0]]
    prober._match(ip_header + _reply(prober, 1), 4, True, 10.75)  # a duplicate (DUP!) counts once
    assert prober.rtts == [[], [250.0]] and prober._outstanding == 1


def test_expiry_retries_then_gives_up():
    prober = _icmp.Prober(["192.0.2.1"], retries=1, timeout=1.0)
    prober._todo.clear()
    _in_flight(prober, 0, 0, -5.0)
    prober._expire()
    assert list(prober._todo) == [1] and prober._outstanding == 0, "probe number 1 (the retry) is due"
    prober._todo.clear()
    _in_flight(prober, 0, 1, -5.0)
    prober._expire()
    assert not prober._todo and prober._outstanding == 0


def test_a_late_reply_to_the_first_probe_is_not_timed_from_the_retry():
    """The first probe went out at 10.0 s and expired at 10.3 s; the retry went out at 10.3 s. A reply to the
    first probe at 10.35 s is 350 ms after it: too late to count, and never the retry's 50 ms (which the
    sweep reported before each probe carried its own number)."""
    prober = _icmp.Prober(["192.0.2.1"], retries=1, timeout=0.3)
    prober._todo.clear()
    first = _in_flight(prober, 0, 0, 10.0)
    prober._state[first] = _icmp._EXPIRED
    prober._outstanding -= 1
    _in_flight(prober, 0, 1, 10.3)
    prober._match(_reply(prober, 0, attempt=0), 4, False, 10.35)
    assert prober.rtts == [[]], "a reply later than its probe's timeout is lost, not the retry's answer"
    prober._match(_reply(prober, 0, attempt=1), 4, False, 10.42)
    assert [round(r, 6) for r in prober.rtts[0]] == [120.0], "the retry's own reply, timed from the retry"


def test_count_mode_times_each_reply_from_its_own_probe():
    prober = _icmp.Prober(["192.0.2.1"], count=3, spacing=0.1, timeout=1.0)
    prober._todo.clear()
    for number, sent_at in enumerate((10.0, 10.1, 10.2)):
        _in_flight(prober, 0, number, sent_at)
    for number, received in ((2, 10.25), (0, 10.3), (1, 10.5)):  # out of order
        prober._match(_reply(prober, 0, attempt=number), 4, False, received)
    assert [round(r, 6) for r in prober.rtts[0]] == [50.0, 300.0, 400.0]
    assert prober._outstanding == 0


@needs_sockets
def test_loopback_answers_with_a_round_trip_time():
    tallies, errors = _icmp.probe(["127.0.0.1", "127.0.0.2", "127.0.0.3"], timeout=1.0)
    assert errors == {}
    assert set(tallies) == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    assert all(t.sent == 1 and len(t.rtts) == 1 and 0 <= t.rtts[0] < 1000 for t in tallies.values())


@needs_sockets
def test_count_mode_sends_count_probes_spaced_per_address():
    started = time.monotonic()
    tallies, errors = _icmp.probe(["127.0.0.1", "127.0.0.2"], timeout=1.0, count=5, spacing=0.05)
    took = time.monotonic() - started
    assert errors == {}
    assert all(t.sent == 5 and len(t.rtts) == 5 for t in tallies.values()), tallies
    assert 0.2 <= took < 1.0, f"5 probes 50 ms apart take at least 0.2 s, and not the timeout: {took}"


@needs_sockets
def test_rate_cap_spaces_the_probes():
    import time
    started = time.monotonic()
    tallies = _icmp.probe(["127.0.0.%d" % i for i in range(1, 12)], timeout=1.0, rate=20)[0]
    assert time.monotonic() - started >= 0.45, "11 probes at 20/s take at least 0.5 s"
    assert all(t.rtts for t in tallies.values())


def test_open_socket_failure_says_what_to_do(monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(_icmp.socket, "socket", refuse)
    with pytest.raises(_icmp.IcmpUnavailable) as err:
        _icmp.open_socket(4)
    assert "run as root" in err.value.strerror and "method=ping" in err.value.strerror
    assert "cannot open an ICMPv4 socket" in err.value.strerror
    assert not _icmp.available((4,))


class _SlowAfterSend:
    """An ICMP socket whose sendto returns late, as when the process is descheduled right after the syscall."""

    def __init__(self, sock, stall):
        self._sock, self._stall = sock, stall

    def sendto(self, *args):
        sent = self._sock.sendto(*args)
        time.sleep(self._stall)
        return sent

    def __getattr__(self, name):
        return getattr(self._sock, name)


@needs_sockets
def test_a_probe_never_reports_less_than_its_round_trip(monkeypatch):
    """The reply to 127.0.0.1 is back within microseconds, during the stall: it was waited for from before
    the send, so the RTT includes the stall (timed from after sendto, it would read about 0)."""
    real = _icmp.open_socket

    def slow_socket(version):
        sock, raw = real(version)
        return _SlowAfterSend(sock, 0.03), raw
    monkeypatch.setattr(_icmp, "open_socket", slow_socket)
    prober = _icmp.Prober(["127.0.0.1"], timeout=2)
    [rtt] = prober.run()["127.0.0.1"].rtts
    assert rtt >= 30.0, rtt


def _raw_socket_or_skip():
    try:
        sock, raw = _icmp.open_socket(4)
    except _icmp.IcmpUnavailable:
        pytest.skip("no ICMP socket")
    if not raw:
        sock.close()
        pytest.skip("datagram ICMP socket: the kernel already demultiplexes by identifier")
    return sock


def test_the_kernel_filter_passes_only_replies_with_our_identifier():
    import select
    sockets = []
    try:
        for ident in (0x1111, 0x2222):
            sock = _raw_socket_or_skip()
            sockets.append(sock)
            assert _icmp.attach_ident_filter(sock, 4, ident)
        prober = _icmp.Prober(["127.0.0.1"], ident=0x1111)
        sockets[0].sendto(prober._packet(4, 0, 0), ("127.0.0.1", 0))
        readable = select.select([sockets[0]], [], [], 1.0)[0]
        assert readable, "the socket filtering for 0x1111 must get its reply"
        data = sockets[0].recv(2048)
        assert data[(data[0] & 0x0F) * 4 + 4:][:2] == b"\x11\x11"
        readable = select.select([sockets[1]], [], [], 0.3)[0]
        assert not readable, "the socket filtering for 0x2222 must not see 0x1111's reply"
    finally:
        for sock in sockets:
            sock.close()
