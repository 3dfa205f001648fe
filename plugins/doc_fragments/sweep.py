# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The sweep's options, documented once: the ping_sweep module and the sweep inventory extend this.

    Their names, types and defaults are the core's argument spec
    (plugins/module_utils/_sweep_options.py SPEC), which a unit test holds
    equal to this text; the watcher's [hosts] section takes the same keys.
    """

    DOCUMENTATION = r"""
options:
  targets:
    description:
      - What to sweep. Each entry is an IPv4 or IPv6 address, a CIDR such as V(192.0.2.0/24),
        a range V(192.0.2.10-192.0.2.20) or V(192.0.2.10-20) (last octet), or a host name.
      - For IPv4 CIDRs shorter than /31 the network and broadcast addresses are skipped, like C(fping -g).
      - A host name is resolved where the sweep runs (the managed host for M(sysops.fleet.ping_sweep), the
        controller for the sweep inventory) and its first address probed. A name that does not resolve is
        reported (and left out) and fails only when no target resolves at all.
      - Several last octets of one /24 in one entry, as nmap writes them, such as V(192.0.2.1-5,9,20-30). This is
        the form of the module's C(alive_ranges) and C(dead_ranges), so a result can be swept again as it is.
        Given as one string (in a task, or as C(targets=192.0.2.1-5,9) in C(-a)), Ansible splits it at its
        commas; the pieces that are last octets alone are put back on the address before them. A last octet
        with no address of its /24 before it is refused.
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
        nothing, and a warning says so.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds to wait for the reply to each probe, counted from when that probe was sent. A reply that
        comes later counts as lost (as with C(ping -W)); with O(retries) it is never mistaken for the
        reply to the retry, because every probe carries its own number.
      - Fractions are allowed; at least 0.001 and at most 60.
    type: float
    default: 1.0
  retries:
    description:
      - Extra probes sent to hosts that stayed silent, each with its own O(timeout). Between 0 and 10.
      - Only with O(count=1). With more probes per address every probe counts, and a silent one is a lost one.
    type: int
    default: 1
  count:
    description:
      - Probes per address (count mode, as C(fping -C)). With more than 1 the sweep says how healthy each
        path is, not only whether it answered once - per address the probes sent and answered, the loss in
        percent and the round-trip times' minimum, median, 90th percentile, maximum and standard deviation.
      - An address that answered at least one probe is alive; its round-trip time is the median.
      - V(1) (the default) keeps the one-probe sweep and its result exactly as before.
      - Between 1 and 10000, and at most 4194304 probes in all (count times addresses).
    type: int
    default: 1
    version_added: "0.1.0"
  spacing:
    description:
      - Seconds between two probes to the same address in count mode (C(fping -p) in seconds, C(ping -i)).
        Probes to different addresses are not held back by it; O(rate) caps the whole sweep.
      - Between 0.002 and 60. A sweep that would take more than an hour is refused (see O(concurrency)).
    type: float
    default: 1.0
    version_added: "0.1.0"
  method:
    description:
      - How to probe.
      - V(socket) sends ICMP echo requests from the worker processes over datagram or raw ICMP sockets.
      - V(ping) runs the system C(ping) binary once per address (with C(-c COUNT -i SPACING) in count
        mode), many at a time.
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
      - Probes in flight per worker at once, between 1 and 65536.
      - Defaults to 65536 for O(method=socket) (bounded in practice by O(rate) and O(max_hosts)) and
        to 256 C(ping) processes per worker for O(method=ping).
      - A sweep that would take more than an hour is refused before anything is sent, with the estimate and
        what bounds it most. The estimate is an upper bound for the worst case (every address silent, every
        retry spent), the sum of the probes at O(rate) (retries included), the addresses in turns of
        O(concurrency) times the workers each held for O(count) times O(spacing) (or every retry's
        O(timeout)), and for O(method=ping) one process started per address and attempt.
    type: int
  rate:
    description:
      - Cap on probes sent per second by the whole sweep, shared by the workers. V(0) means no cap.
      - The default of 1000 per second keeps a /24 under a second of sending and does not flood
        a LAN, a firewall's state table or an IDS; raise it (or set V(0)) on networks you own.
      - Must be a finite number, V(0) or more (V(nan) and V(inf) are refused). A rate so low that sending
        every probe would take more than an hour is refused with the estimated duration
        (for example V(rate=0.01) for a /24 with one retry would take about 14 hours).
    type: float
    default: 1000
  max_hosts:
    description:
      - Refuse a sweep with more addresses than this, before anything is expanded or sent. At most 4194304.
    type: int
    default: 65536
"""
