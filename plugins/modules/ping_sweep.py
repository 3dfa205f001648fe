#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ping_sweep
short_description: Find which hosts answer ICMP echo, fast, with many probes in flight
version_added: "0.1.0"
description:
  - Sends one ICMP echo request to every address of O(targets) (minus O(exclude)) and reports
    which hosts answered.
  - Addresses are dealt out to O(workers) processes; each keeps up to O(concurrency) probes in
    flight, so a silent host costs its O(timeout) once, in parallel with all the others.
  - The timeout of each probe runs from the moment the probe was actually sent, never from when
    it was queued, so a busy machine does not turn alive hosts into dead ones.
  - Read-only; never reports C(changed). Safe in check mode.
  - Runs on the managed host. Use C(delegate_to) to choose the host that sweeps.
author:
  - sysops.fleet maintainers (@sysops)
requirements:
  - Python 3.9 or newer on the managed host (standard library only).
  - For O(method=ping), the iputils C(ping) binary (Debian/Ubuntu package C(iputils-ping)).
  - For O(method=socket), permission to open ICMP sockets (root, C(CAP_NET_RAW), or a group listed
    in C(net.ipv4.ping_group_range)).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module never changes anything, so check mode sweeps as usual.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  targets:
    description:
      - What to sweep. Each entry is an IPv4 or IPv6 address, a CIDR such as V(192.0.2.0/24),
        a range V(192.0.2.10-192.0.2.20) or V(192.0.2.10-20) (last octet), or a host name.
      - For IPv4 CIDRs shorter than /31 the network and broadcast addresses are skipped, like C(fping -g).
      - A host name is resolved on the managed host and its first address probed; a name that
        does not resolve is reported in RV(unresolved) and RV(hosts) and does not fail the task
        unless no target resolves at all.
      - Several last octets of one /24 in one entry, as nmap writes them, such as V(192.0.2.1-5,9,20-30). This is
        the form of RV(alive_ranges) and RV(dead_ranges), so a result can be swept again as it is. Given as one
        string (in a task, or as C(targets=192.0.2.1-5,9) in C(-a)), Ansible splits it at its commas; the
        pieces that are last octets alone are put back on the address before them. A last octet with no
        address of its /24 before it is refused.
      - Entries with shell metacharacters, malformed addresses and V(/0) are refused before
        anything is sent.
      - An IPv4 address is written as a dotted quad. The other numeric forms C(inet_aton) reads
        (shorthand V(127.1), hexadecimal V(0x7f.1) or V(0x7f000001), octal-looking V(0177.0.0.1), a
        plain number V(2130706433)) are refused, never looked up as host names, because tools disagree on what
        they mean.
    type: list
    elements: str
    required: true
  exclude:
    description:
      - Addresses not to probe, in the same syntax as O(targets) (and refused in the same ways).
        CIDRs here cover the whole network, including network and broadcast addresses.
      - A host name here excludes every address it resolves to. A name that does not resolve excludes
        nothing; it is listed in RV(exclude_unresolved) and the task warns.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds to wait for the reply to each probe, counted from when that probe was sent.
      - Fractions are allowed; at most 60.
    type: float
    default: 1.0
  retries:
    description:
      - Extra probes sent to hosts that stayed silent, each with its own O(timeout). Between 0 and 10.
    type: int
    default: 1
  method:
    description:
      - How to probe.
      - V(socket) sends ICMP echo requests from the worker processes over datagram or raw ICMP sockets.
      - V(ping) runs the system C(ping) binary once per address, many at a time.
      - V(auto) picks V(socket) when this process may open ICMP sockets, else V(ping).
    type: str
    choices: [auto, socket, ping]
    default: auto
  workers:
    description:
      - Number of worker processes. Defaults to the number of CPUs, at most 8.
      - Never more than the number of addresses. Between 1 and 256.
    type: int
  concurrency:
    description:
      - Probes in flight per worker at once.
      - Defaults to 65536 for O(method=socket) (bounded in practice by O(rate) and O(max_hosts)) and
        to 256 C(ping) processes per worker for O(method=ping).
    type: int
  rate:
    description:
      - Cap on probes sent per second by the whole sweep, shared by the workers. V(0) means no cap.
      - The default of 1000 per second keeps a /24 under a second of sending and does not flood
        a LAN, a firewall's state table or an IDS; raise it (or set V(0)) on networks you own.
      - Must be a finite number, V(0) or more (V(nan) and V(inf) are refused). A rate so low that sending
        one probe to every address would take more than an hour is refused with the estimated duration
        (for example V(rate=0.01) for a /24 would take about 7 hours).
    type: float
    default: 1000
  details:
    description:
      - Also return RV(hosts), one entry per address (alive, round-trip time, name, error).
      - Off by default, so that the result stays two lists of addresses and a summary however large the
        sweep (a /16 with details is about four times as much JSON for Ansible to carry and print).
    type: bool
    default: false
    version_added: "0.1.0"
  max_hosts:
    description:
      - Refuse a sweep with more addresses than this, before anything is expanded or sent.
    type: int
    default: 65536
  list_limit:
    description:
      - Return the RV(alive) and RV(dead) lists (one string per address) only when the sweep probed at
        most this many addresses. A larger sweep returns only RV(alive_ranges) and RV(dead_ranges),
        which hold the same addresses in a few hundred strings however large the sweep.
      - The default keeps the lists for anything up to a /22; set V(65536) to always get them, V(0) never.
        Ansible spends time on every string of a result, so a /16's two lists add about a second to the
        whole command; the P(sysops.fleet.addresses#filter) filter turns ranges into a list when needed.
      - RV(summary.listed) says whether the lists were returned.
    type: int
    default: 1024
    version_added: "0.1.0"
notes:
  - Only sweep networks you are responsible for.
  - Results are per address; a host name that resolves to several addresses is probed at its first
    (IPv4 preferred).
seealso:
  - name: fping
    description: The reference tool the benchmark in C(tests/bench) compares against.
    link: https://fping.org/
"""

EXAMPLES = r"""
- name: Sweep a /24 and a few names from the sweeper host
  sysops.fleet.ping_sweep:
    targets:
      - 192.0.2.0/24
      - db1.example.com
    exclude:
      - 192.0.2.1
  register: sweep

- name: Show the silent hosts
  ansible.builtin.debug:
    var: sweep.dead

- name: Sweep the loopback range with the system ping binary, no rate cap
  sysops.fleet.ping_sweep:
    targets: 127.0.0.1-10
    method: ping
    rate: 0

- name: Sweep a /16; large results come as ranges, one string per /24
  sysops.fleet.ping_sweep:
    targets: 10.20.0.0/16
  register: big

- name: Probe again exactly the hosts that answered
  sysops.fleet.ping_sweep:
    targets: "{{ big.alive_ranges }}"

- name: Every alive address of the /16 as a list
  ansible.builtin.debug:
    msg: "{{ big.alive_ranges | sysops.fleet.addresses | length }} addresses answered"

- name: Split a /16 across two sweeper hosts, each sweeping its own half (once, whatever the play's hosts)
  sysops.fleet.ping_sweep:
    targets: "{{ item.targets }}"
    timeout: 0.5
    retries: 2
  delegate_to: "{{ item.sweeper }}"
  run_once: true
  loop:
    - {sweeper: sweeper1.example.com, targets: [10.20.0.1-10.20.127.255]}
    - {sweeper: sweeper2.example.com, targets: [10.20.128.0-10.20.255.254]}
  register: halves

- name: Every address that answered, from both halves
  ansible.builtin.debug:
    msg: "{{ halves.results | map(attribute='alive_ranges') | flatten | sysops.fleet.addresses | length }} addresses answered"
  run_once: true
"""

RETURN = r"""
alive:
  description: Addresses that answered, sorted (IPv4 first, numerically).
  returned: when the sweep probed at most O(list_limit) addresses (RV(summary.listed))
  type: list
  elements: str
  sample: ["127.0.0.1", "127.0.0.2"]
dead:
  description: Addresses that stayed silent after all retries, sorted.
  returned: when the sweep probed at most O(list_limit) addresses (RV(summary.listed))
  type: list
  elements: str
  sample: ["127.0.0.3"]
alive_ranges:
  description:
    - The addresses of RV(alive), written as O(targets) entries, sorted. The IPv4 addresses of each /24 are
      one entry (V(192.0.2.1-5,9,20-30)), a lone address stays itself, IPv6 comes as runs
      (V(2001:db8::1-2001:db8::9)).
    - Returned for every sweep. Give it to O(targets) to probe exactly these hosts again, or turn it into a
      list with the P(sysops.fleet.addresses#filter) filter.
  returned: success
  type: list
  elements: str
  sample: ["127.0.0.1-2,4-5", "127.0.1.7"]
  version_added: "0.1.0"
dead_ranges:
  description: The addresses of RV(dead) in the form of RV(alive_ranges).
  returned: success
  type: list
  elements: str
  sample: ["127.0.0.3,6"]
  version_added: "0.1.0"
unresolved:
  description: Host names from O(targets) that did not resolve; they were not probed.
  returned: success
  type: list
  elements: str
  sample: ["no-such-host.example"]
exclude_unresolved:
  description: Host names from O(exclude) that did not resolve, so they excluded nothing; the task also warns.
  returned: success
  type: list
  elements: str
  sample: ["old-printer.example"]
names:
  description: The addresses of targets given as host names, and the name each was given as.
  returned: success
  type: dict
  sample: {127.0.0.1: localhost}
  version_added: "0.1.0"
errors:
  description:
    - Addresses (and unresolved names) whose probe could not be sent or whose name did not resolve, and why.
    - Empty when every probe went out (a silent host is no error).
  returned: success
  type: dict
  sample: {192.0.2.7: "Network is unreachable"}
  version_added: "0.1.0"
hosts:
  description:
    - Only with O(details=true). One entry per probed address (and per unresolved name).
    - C(alive) (bool), C(rtt_ms) (float, null when silent), C(name) when the target was given
      as a host name, C(error) when a probe could not be sent or a name did not resolve.
    - C(rtt_ms) is the measured round-trip time with both methods (for O(method=ping), from the
      summary line of C(ping)); null, with an C(error), in the rare case a C(ping) that got an answer
      printed no time.
  returned: when O(details=true)
  type: dict
  sample:
    127.0.0.1: {alive: true, rtt_ms: 0.041, name: localhost}
    127.0.0.3: {alive: false, rtt_ms: null}
summary:
  description: Counts and how the sweep ran.
  returned: success
  type: dict
  contains:
    total:
      description: Addresses probed.
      type: int
      sample: 254
    alive:
      description: Addresses that answered.
      type: int
      sample: 170
    dead:
      description: Addresses that did not answer.
      type: int
      sample: 84
    unresolved:
      description: Names that did not resolve.
      type: int
      sample: 0
    elapsed_s:
      description: Wall time of the sweep in seconds.
      type: float
      sample: 1.03
    method:
      description: The probe method used (V(socket) or V(ping)) after O(method=auto) was decided.
      type: str
      sample: socket
    worker_failures:
      description: Errors of worker processes that crashed; their addresses are reported dead with an C(error).
      type: list
      elements: str
      sample: []
    rtt_ms:
      description: Smallest, median and largest round-trip time of the hosts that answered; null when none did.
      type: dict
      sample: {min: 0.021, median: 0.045, max: 1.2}
      version_added: "0.1.0"
    listed:
      description: Whether RV(alive) and RV(dead) are in the result (the sweep probed at most O(list_limit) addresses).
      type: bool
      sample: true
      version_added: "0.1.0"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sysops.fleet.plugins.module_utils import _command, _fanout, _sweep


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type="list", elements="str", required=True),
            exclude=dict(type="list", elements="str", default=[]),
            timeout=dict(type="float", default=1.0),
            retries=dict(type="int", default=1),
            method=dict(type="str", default="auto", choices=list(_sweep.METHODS)),
            workers=dict(type="int"),
            concurrency=dict(type="int"),
            rate=dict(type="float", default=_sweep.DEFAULT_RATE),
            max_hosts=dict(type="int", default=65536),
            details=dict(type="bool", default=False),
            list_limit=dict(type="int", default=_sweep.DEFAULT_LIST_LIMIT),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        _sweep.check_list_limit(p["list_limit"])
        result = _sweep.sweep(
            p["targets"], exclude=p["exclude"], timeout=p["timeout"], retries=p["retries"],
            method=p["method"], workers=p["workers"], concurrency=p["concurrency"], rate=p["rate"],
            max_hosts=p["max_hosts"], details=p["details"],
        )
    except (ValueError, _command.CommandError, _fanout.FanOutError) as exc:
        module.fail_json(msg=str(exc))
    for name in result["exclude_unresolved"]:
        module.warn(f"exclude: {name!r} does not resolve, so it excludes nothing; check the name (DNS, /etc/hosts)")
    module.exit_json(changed=False, **_sweep.listed(result, p["list_limit"]))


if __name__ == "__main__":
    main()
