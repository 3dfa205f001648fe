# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check what ansible-inventory printed for lab.sweep.yml against the hosts the lab lets answer.

    check_inventory.py list  OUTPUT.json --lab LAB.py --cidr CIDR [--exclude ADDR...] [--silent]
    check_inventory.py graph OUTPUT.txt  --lab LAB.py --cidr CIDR [--exclude ADDR...] [--silent]

``--silent``: every host was silenced, so the inventory must have none.
Exits 1 with what is wrong (hosts missing, hosts too many, a wrong group
or variable); prints a one-line summary otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import re
import sys
from typing import Any, Dict, List, Set


def unwrap(value: Any) -> Any:
    """ansible-inventory marks values from an inventory plugin as unsafe: ``{"__ansible_unsafe": "..."}``."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def expected_hosts(args: argparse.Namespace) -> Set[str]:
    if args.silent:
        return set()
    spec = importlib.util.spec_from_file_location("lab", args.lab)
    lab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab)
    excluded = set()
    for entry in args.exclude:
        first, _dash, last = entry.partition("-")
        start = ipaddress.ip_address(first)
        end = start if not last else ipaddress.ip_address(last) if "." in last else \
            ipaddress.ip_address(int(start) & ~0xFF | int(last))
        excluded |= {str(ipaddress.ip_address(v)) for v in range(int(start), int(end) + 1)}
    return lab.expected_alive(args.cidr) - excluded


def octet(address: str) -> int:
    return int(address.rsplit(".", 1)[1])


def difference(what: str, got: Set[str], want: Set[str]) -> List[str]:
    problems = []
    if got - want:
        problems.append(f"{what}: not expected: {sorted(got - want, key=ipaddress.ip_address)}")
    if want - got:
        problems.append(f"{what}: missing: {sorted(want - got, key=ipaddress.ip_address)}")
    return problems


def check_list(data: Dict[str, Any], want: Set[str]) -> List[str]:
    data = unwrap(data)
    hostvars = data["_meta"]["hostvars"]
    problems = difference("hosts", set(hostvars), want)
    rtts = []
    for host, hv in hostvars.items():
        if hv.get("ansible_host") != host:
            problems.append(f"{host}: ansible_host is {hv.get('ansible_host')!r}")
        rtt = hv.get("sweep_rtt_ms")
        if not isinstance(rtt, float) or not 0 <= rtt < 500:
            problems.append(f"{host}: sweep_rtt_ms is {rtt!r}, not a number of milliseconds below the timeout")
        else:
            rtts.append(rtt)
        # (ansible-core before 2.19 templates a composed value to text: '7', where 2.19 keeps 7)
        if hv.get("octet") not in (octet(host), str(octet(host))):
            problems.append(f"{host}: the composed octet is {hv.get('octet')!r}")
        if "sweep_name" in hv:
            problems.append(f"{host}: sweep_name {hv['sweep_name']!r} for a target given as an address")
    if rtts and max(rtts) <= 0:
        problems.append(f"every sweep_rtt_ms is {max(rtts)}: no round trip was measured")

    def members(group: str) -> Set[str]:
        return set(data.get(group, {}).get("hosts", []))

    problems += difference("parity_odd", members("parity_odd"), {h for h in want if octet(h) % 2})
    problems += difference("parity_even", members("parity_even"), {h for h in want if not octet(h) % 2})
    problems += difference("low", members("low"), {h for h in want if octet(h) < 100})
    problems += difference("ungrouped", members("ungrouped"), set())
    return problems


def check_graph(text: str, want: Set[str]) -> List[str]:
    hosts, groups = set(), set()
    for line in text.splitlines():
        match = re.match(r"^[ |]*\|--(@?)([^:]+):?$", line)
        if match:
            (groups if match.group(1) else hosts).add(match.group(2))
    problems = difference("hosts in the graph", hosts, want)
    for group in ("parity_odd", "parity_even", "low"):
        if want and group not in groups:
            problems.append(f"the graph has no group @{group}: {sorted(groups)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["list", "graph"])
    parser.add_argument("output")
    parser.add_argument("--lab", required=True)
    parser.add_argument("--cidr", required=True)
    parser.add_argument("--exclude", nargs="*", default=[])
    parser.add_argument("--silent", action="store_true")
    args = parser.parse_args()
    want = expected_hosts(args)
    with open(args.output, encoding="utf-8") as handle:
        problems = check_list(json.load(handle), want) if args.kind == "list" else check_graph(handle.read(), want)
    if problems:
        print(f"{args.output}: " + "\n  ".join(problems))
        return 1
    print(f"{args.kind}: exactly the {len(want)} hosts the lab lets answer, with their groups and variables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
