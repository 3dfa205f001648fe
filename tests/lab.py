# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The loopback lab: a network namespace in which some 127.x hosts are silent.

Every 127.x address answers ping on Linux. Inside a namespace of its own,
nftables drops echo requests in the *input* hook for addresses whose last
octet is in a chosen set, so those hosts look dead (silence, not an error),
and nothing ever leaves the namespace. Needs root, ``ip`` and ``nft``.

    python3 tests/lab.py up NAME [--silent-mod 3]   # last octet % 3 == 0 is silent
    python3 tests/lab.py down NAME
    python3 tests/lab.py expect NAME CIDR           # prints the alive set as JSON
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import subprocess
import sys
import uuid
from typing import Iterator, List, Set

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
  chain input {{
    type filter hook input priority filter; policy accept;
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down", "expect"])
    parser.add_argument("name")
    parser.add_argument("cidr", nargs="?")
    parser.add_argument("--silent-mod", type=int, default=DEFAULT_SILENT_MOD)
    args = parser.parse_args()
    if args.action == "up":
        up(args.name, args.silent_mod)
    elif args.action == "down":
        down(args.name)
    else:
        print(json.dumps(sorted(expected_alive(args.cidr, args.silent_mod), key=ipaddress.ip_address)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
