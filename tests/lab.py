# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The loopback lab: a network namespace in which some 127.x hosts are silent.

Every 127.x address answers ping on Linux. Inside a namespace of its own,
nftables drops echo requests in the *input* hook for addresses whose last
octet is in a chosen set, so those hosts look dead (silence, not an error),
and nothing ever leaves the namespace. Needs root, ``ip`` and ``nft``.

The same input chain counts every echo request that arrives (the named
counter ``echo_requests``), so a test can prove that a refused input sent
nothing at all: ``echo_requests(NAME)`` before and after.

``lossy(LOSSES)`` is a lab where each chosen host loses a share of the echo
requests sent to it, at random (nftables ``numgen random``), and counts per
address what it let in and what it dropped (``seen`` and ``dropped``): a
sweep's loss can be checked against the exact number of probes the lab
dropped, not only against the configured share.

``delayed(DELAYS)`` is a lab whose kernel answers no ping at all
(``icmp_echo_ignore_all``); ``respond`` answers instead, for each address
after its own delay, so round-trip times are known in advance (this
kernel has no ``sch_netem`` for ``tc ... delay``).

    python3 tests/lab.py up NAME [--silent-mod 3]   # last octet % 3 == 0 is silent
    python3 tests/lab.py down NAME
    python3 tests/lab.py expect NAME CIDR           # prints the alive set as JSON
    python3 tests/lab.py count NAME                 # echo requests seen so far
    python3 tests/lab.py respond ADDR=MS ...        # (inside a lab) answer pings after MS milliseconds
    python3 tests/lab.py lossy NAME 20=4,10 100=6   # a lossy lab: last octets 4 and 10 lose 20 %, 6 all
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import ipaddress
import itertools
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from typing import Dict, Iterable, Iterator, List, Set

DEFAULT_SILENT_MOD = 3


def silent_octets(mod: int = DEFAULT_SILENT_MOD) -> List[int]:
    return [o for o in range(256) if o % mod == 0]


def _run(argv: List[str], stdin: str = "") -> None:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")


def ruleset(octets: List[int]) -> str:
    listed = ", ".join(str(o) for o in octets)
    return f"""
table inet lab {{
  counter echo_requests {{ }}
  chain input {{
    type filter hook input priority filter; policy accept;
    icmp type echo-request counter name "echo_requests"
    icmpv6 type echo-request counter name "echo_requests"
    ip protocol icmp icmp type echo-request ip daddr 127.0.0.0/8 @nh,152,8 {{ {listed} }} drop
  }}
}}
"""


def up(name: str, mod: int = DEFAULT_SILENT_MOD) -> None:
    _run(["ip", "netns", "add", name])
    try:
        _run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"])
        _run(["ip", "netns", "exec", name, "nft", "-f", "-"], ruleset(silent_octets(mod)))
    except Exception:
        down(name)
        raise


def down(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def echo_requests(name: str) -> int:
    """Echo requests (ICMP and ICMPv6) that reached the lab's input hook so far."""
    out = subprocess.run(["ip", "netns", "exec", name, "nft", "-j", "list", "ruleset"], capture_output=True,
                         text=True, check=True).stdout
    for item in json.loads(out)["nftables"]:
        counter = item.get("counter")
        if counter and counter.get("table") == "lab" and counter.get("name") == "echo_requests":
            return int(counter["packets"])
    raise RuntimeError(f"no echo_requests counter in lab {name}")


def expected_alive(cidr: str, mod: int = DEFAULT_SILENT_MOD) -> Set[str]:
    """Addresses of *cidr* (fping -g semantics) that the lab lets answer."""
    net = ipaddress.ip_network(cidr, strict=False)
    return {str(a) for a in net.hosts() if int(a) % 256 % mod != 0}


def netns_argv(name: str, argv: List[str]) -> List[str]:
    return ["ip", "netns", "exec", name] + argv


@contextlib.contextmanager
def lab(mod: int = DEFAULT_SILENT_MOD, prefix: str = "fleetlab") -> Iterator[str]:
    """A fresh namespace for the duration of a with-block; always removed."""
    name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    up(name, mod)
    try:
        yield name
    finally:
        down(name)


def lossy_ruleset(losses: Dict[float, Iterable[int]]) -> str:
    """nftables rules: echo requests to each last octet of *losses*' values dropped at random with its share
    (percent, to 0.01); every request counted per address in ``seen``, every drop in ``dropped``."""
    rules = []
    for loss, octets in sorted(losses.items()):
        listed = ", ".join(str(o) for o in sorted(set(octets)))
        if not listed:
            continue
        match = f"ip protocol icmp icmp type echo-request ip daddr 127.0.0.0/8 @nh,152,8 {{ {listed} }}"
        chance = "" if loss >= 100 else f"numgen random mod 10000 < {int(round(loss * 100))} "
        if loss > 0:
            rules.append(f"    {match} {chance}update @dropped {{ ip daddr }} drop")
    body = "\n".join(rules)
    return f"""
table inet lab {{
  counter echo_requests {{ }}
  set seen {{ type ipv4_addr; size 1048576; flags dynamic; counter; }}
  set dropped {{ type ipv4_addr; size 1048576; flags dynamic; counter; }}
  chain input {{
    type filter hook input priority filter; policy accept;
    icmp type echo-request counter name "echo_requests"
    ip protocol icmp icmp type echo-request update @seen {{ ip daddr }}
{body}
  }}
}}
"""


@contextlib.contextmanager
def lossy(losses: Dict[float, Iterable[int]], prefix: str = "fleetloss") -> Iterator[str]:
    """A fresh namespace whose hosts (by last octet, any 127.x network) lose *losses*' share of echo requests."""
    name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    _run(["ip", "netns", "add", name])
    try:
        _run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"])
        _run(["ip", "netns", "exec", name, "nft", "-f", "-"], lossy_ruleset(losses))
        yield name
    finally:
        down(name)


def _set_counters(name: str, which: str) -> Dict[str, int]:
    out = subprocess.run(["ip", "netns", "exec", name, "nft", "-j", "list", "set", "inet", "lab", which],
                         capture_output=True, text=True, check=True).stdout
    counts: Dict[str, int] = {}
    for item in json.loads(out)["nftables"]:
        for element in item.get("set", {}).get("elem", []):
            entry = element.get("elem", {})
            counts[entry["val"]] = int(entry["counter"]["packets"])
    return counts


def seen(name: str) -> Dict[str, int]:
    """Echo requests that reached the lossy lab's input hook, per address."""
    return _set_counters(name, "seen")


def dropped(name: str) -> Dict[str, int]:
    """Echo requests the lossy lab dropped, per address (addresses it never dropped from are absent)."""
    return _set_counters(name, "dropped")


def silence(name: str, address: str) -> None:
    """From now on *address* answers nothing in the lab (a host that stopped); ``speak`` undoes it."""
    _run(netns_argv(name, ["nft", "insert", "rule", "inet", "lab", "input", "ip", "daddr", address,
                           "icmp", "type", "echo-request", "drop", "comment", f'"silence {address}"']))


def speak(name: str, address: str) -> None:
    """Undo ``silence``: *address* answers again (its loss rule, if any, applies as before)."""
    out = subprocess.run(netns_argv(name, ["nft", "-a", "list", "chain", "inet", "lab", "input"]),
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if f'comment "silence {address}"' in line and "# handle " in line:
            handle = line.rsplit("# handle ", 1)[1].strip()
            _run(netns_argv(name, ["nft", "delete", "rule", "inet", "lab", "input", "handle", handle]))


def _realtime_prefix() -> List[str]:
    """``chrt -f 20`` where this machine lets root use real-time scheduling, else nothing.

    With it the responder's delays stay exact on a busy machine. A container or VM without
    a real-time budget (cgroup v2 gives none by default) refuses it: the responder then
    runs at normal priority, as precise as the machine's load allows.
    """
    if not shutil.which("chrt"):
        return []
    probe = subprocess.run(["chrt", "-f", "20", "true"], capture_output=True, check=False)
    return ["chrt", "-f", "20"] if probe.returncode == 0 else []


@contextlib.contextmanager
def delayed(delays: Dict[str, float], prefix: str = "fleetrtt") -> Iterator[str]:
    """A lab where only *delays*' addresses answer ping, each after its delay in ms (``respond``)."""
    with lab(mod=256, prefix=prefix) as name:  # the drop rule then silences only x.x.x.0
        _run(netns_argv(name, ["sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"]))
        realtime = _realtime_prefix()
        argv = netns_argv(name, realtime + [sys.executable, os.path.abspath(__file__), "respond"]
                          + [f"{a}={ms:g}" for a, ms in delays.items()])
        responder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        try:
            if responder.stdout.readline().strip() != "ready":
                raise RuntimeError("the echo responder did not start")
            yield name
        finally:
            responder.kill()
            responder.wait()


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data + b"\0" * (len(data) % 2)))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def respond(delays: Dict[str, float]) -> None:
    """Answer every echo request to each address after its delay: one raw socket bound to each.

    A raw socket bound to an address sees only packets for it and sends
    from it, so the reply comes from the address that was pinged.
    """
    sockets = {}
    for address, ms in delays.items():
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        sock.bind((address, 0))
        sockets[sock] = ms / 1000.0
    due: list = []
    order = itertools.count()
    print("ready", flush=True)
    while True:
        wait = max(0.0, due[0][0] - time.monotonic()) if due else None
        ready = select.select(list(sockets), [], [], wait)[0]
        for sock in ready:
            data, (source, _port) = sock.recvfrom(4096)
            icmp = data[(data[0] & 0x0F) * 4:]
            if len(icmp) < 8 or icmp[0] != 8:  # echo requests only
                continue
            reply = b"\0\0\0\0" + icmp[4:]
            reply = reply[:2] + struct.pack("!H", _checksum(reply)) + reply[4:]
            heapq.heappush(due, (time.monotonic() + sockets[sock], next(order), sock, source, reply))
        while due and due[0][0] <= time.monotonic():
            unused_when, unused_n, sock, source, reply = heapq.heappop(due)
            sock.sendto(reply, (source, 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "expect", "count", "respond", "lossy"])
    parser.add_argument("name", help="the lab (for respond: the first ADDR=MS)")
    parser.add_argument("cidr", nargs="*", help="expect: the CIDR; respond: more ADDR=MS; lossy: LOSS=OCTET,...")
    parser.add_argument("--silent-mod", type=int, default=DEFAULT_SILENT_MOD)
    args = parser.parse_args()
    if args.action == "up":
        up(args.name, args.silent_mod)
    elif args.action == "down":
        down(args.name)
    elif args.action == "lossy":
        _run(["ip", "netns", "add", args.name])
        _run(["ip", "netns", "exec", args.name, "ip", "link", "set", "lo", "up"])
        losses = {float(k): [int(o) for o in v.split(",")] for k, v in (item.split("=", 1) for item in args.cidr)}
        _run(["ip", "netns", "exec", args.name, "nft", "-f", "-"], lossy_ruleset(losses))
    elif args.action == "count":
        print(echo_requests(args.name))
    elif args.action == "respond":
        respond({a: float(ms) for a, ms in (item.split("=", 1) for item in [args.name] + args.cidr)})
    else:
        print(json.dumps(sorted(expected_alive(args.cidr[0], args.silent_mod), key=ipaddress.ip_address)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
