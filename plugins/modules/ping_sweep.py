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
    which hosts answered; or, with O(count), several per address, and how many were lost and how long
    their round trips took (count mode, as C(fping -C)).
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
  - sysops.fleet.sweep
attributes:
  check_mode:
    support: full
    details: The module never changes anything, so check mode sweeps as usual.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  details:
    description:
      - Also return RV(hosts), one entry per address (alive, round-trip time, name, error, and in count mode
        the probes sent and answered, the loss and the round-trip statistics).
      - Off by default, so that the result stays two lists of addresses and a summary however large the
        sweep (a /16 with details is about four times as much JSON for Ansible to carry and print).
    type: bool
    default: false
    version_added: "0.1.0"
  list_limit:
    description:
      - Return the RV(alive) and RV(dead) lists (one string per address) only when the sweep probed at
        most this many addresses. A larger sweep returns only RV(alive_ranges) and RV(dead_ranges),
        which hold the same addresses in a few hundred strings however large the sweep.
      - The default keeps the lists for anything up to a /22; set V(65536) to always get them, V(0) never.
        Ansible spends time on every string of a result, so a /16's two lists add about a second to the
        whole command; the P(sysops.fleet.addresses#filter) filter turns ranges into a list when needed.
      - RV(summary.listed) says whether the lists were returned.
      - In count mode the same limit keeps RV(stats) (one entry per address); RV(loss_ranges) and the spread of
        the hosts' loss and round-trip time in RV(summary) come back for every sweep.
    type: int
    default: 1024
    version_added: "0.1.0"
notes:
  - Only sweep networks you are responsible for.
  - Results are per address; a host name that resolves to several addresses is probed at its first
    (IPv4 preferred).
  - Host names are looked up on the target eight at a time, each within 15 seconds (a name lookup has no
    timeout of its own); a name whose lookup takes longer is in RV(unresolved), with that reason in
    RV(errors).
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

- name: How healthy is each path? 20 probes per address, 200 ms apart (fping -C 20 -p 200)
  sysops.fleet.ping_sweep:
    targets: 192.0.2.0/24
    count: 20
    spacing: 0.2
  register: health

- name: The hosts that lost more than 5 % of their probes
  ansible.builtin.debug:
    msg: "{{ (health.loss_ranges['5-20'] + health.loss_ranges['20-50'] + health.loss_ranges['50-100'])
             | sysops.fleet.addresses }}"

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
  description: Host names from O(targets) that did not resolve (or whose lookup took longer than 15 seconds); they
    were not probed.
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
      printed no time. In count mode it is the median of the address's round trips.
    - In count mode (O(count) above 1) also C(sent), C(received), C(loss_pct) and C(rtt), as in RV(stats).
  returned: when O(details=true)
  type: dict
  sample:
    127.0.0.1: {alive: true, rtt_ms: 0.041, name: localhost}
    127.0.0.3: {alive: false, rtt_ms: null}
stats:
  description:
    - Count mode (O(count) above 1) only. One entry per probed address, every address of the sweep.
    - C(sent) (probes sent), C(received) (probes answered within O(timeout)), C(loss_pct) (the share lost, in
      percent, 0 to 100), and C(rtt_ms) - the round-trip times of the answered probes in milliseconds
      (C(min), C(median), C(p90) the 90th percentile by nearest rank, C(max), C(stddev) the population standard
      deviation) - or null when none was answered.
    - Every round trip is timed from the probe it answers (its number is in the payload; C(ping) does the same).
  returned: in count mode, when the sweep probed at most O(list_limit) addresses (RV(summary.listed))
  type: dict
  sample:
    192.0.2.7: {sent: 20, received: 19, loss_pct: 5.0,
                rtt_ms: {min: 0.412, median: 0.468, p90: 0.533, max: 1.207, stddev: 0.171}}
    192.0.2.9: {sent: 20, received: 0, loss_pct: 100.0, rtt_ms: null}
  version_added: "0.1.0"
loss_ranges:
  description:
    - Count mode (O(count) above 1) only, for every sweep however large. The probed addresses by their loss,
      each class written as RV(alive_ranges) writes addresses (give it to O(targets), or to the
      P(sysops.fleet.addresses#filter) filter).
    - Always the seven classes, empty or not. V(0) - no probe lost; V(0-1), V(1-5), V(5-20), V(20-50) - more than
      the first number and at most the second, in percent; V(50-100) - more than 50 % but not all; V(100) - silent.
  returned: in count mode
  type: dict
  sample: {"0": ["192.0.2.1-6,8"], "0-1": [], "1-5": [], "5-20": ["192.0.2.7"], "20-50": [], "50-100": [],
           "100": ["192.0.2.9-254"]}
  version_added: "0.1.0"
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
      description:
        - Smallest, median and largest round-trip time of the hosts that answered; null when none did.
        - In count mode the smallest, median, 90th percentile (C(p90)) and largest of the answering hosts'
          median round-trip times.
      type: dict
      sample: {min: 0.021, median: 0.045, max: 1.2}
      version_added: "0.1.0"
    count:
      description: Probes per address (O(count)). Count mode only.
      type: int
      sample: 20
      version_added: "0.1.0"
    sent:
      description: Probes sent in all. Count mode only.
      type: int
      sample: 5080
      version_added: "0.1.0"
    received:
      description: Probes answered within O(timeout), in all. Count mode only.
      type: int
      sample: 3391
      version_added: "0.1.0"
    loss_pct:
      description: The share of all probes that was lost, in percent (silent hosts included); null if none was sent.
        Count mode only.
      type: float
      sample: 33.248
      version_added: "0.1.0"
    host_loss_pct:
      description:
        - The answering hosts' loss in percent (hosts that answered no probe are left out), as C(min), C(median),
          C(p90) and C(max); null when no host answered. Count mode only.
      type: dict
      sample: {min: 0.0, median: 0.0, p90: 5.0, max: 15.0}
      version_added: "0.1.0"
    listed:
      description: Whether RV(alive) and RV(dead) are in the result (the sweep probed at most O(list_limit) addresses).
      type: bool
      sample: true
      version_added: "0.1.0"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sysops.fleet.plugins.module_utils import _command, _fanout, _sweep, _sweep_options


def main():
    module = AnsibleModule(
        argument_spec=dict(
            _sweep_options.argument_spec(),
            details=dict(type="bool", default=False),
            list_limit=dict(type="int", default=_sweep.DEFAULT_LIST_LIMIT),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        _sweep.check_list_limit(p["list_limit"])
        result = _sweep.run(_sweep_options.from_params(p), details=p["details"])
    except (ValueError, _command.CommandError, _fanout.FanOutError) as exc:
        module.fail_json(msg=str(exc))
    for name in result["exclude_unresolved"]:
        module.warn(f"exclude: {name!r} does not resolve, so it excludes nothing; check the name (DNS, /etc/hosts)")
    module.exit_json(changed=False, **_sweep.listed(result, p["list_limit"]))


if __name__ == "__main__":
    main()
