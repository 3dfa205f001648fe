# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: sweep
short_description: Inventory of the hosts that answer an ICMP ping sweep
version_added: "0.1.0"
description:
  - Sweeps O(targets) (minus O(exclude)) with ICMP echo on the controller and makes every address that
    answered an inventory host. Silent addresses are not in the inventory.
  - Runs the same sweep as the M(sysops.fleet.ping_sweep) module (the collection's core), with the same options
    and the same checks, so a typo such as V(10.0.0.0/7) is refused with its size before anything is sent.
  - Needs no extra binary and no root when this process may open ICMP sockets (root, C(CAP_NET_RAW), or a group
    in C(net.ipv4.ping_group_range)); otherwise O(method=auto) runs the system C(ping).
  - Every host gets C(ansible_host) (the address that answered), C(sweep_rtt_ms) (the round trip time in
    milliseconds) and, when its target was a host name, C(sweep_name).
  - In count mode (O(count) above 1) a host is every address that answered at least one probe, and also gets
    C(sweep_sent), C(sweep_received), C(sweep_loss_pct) (percent) and C(sweep_rtt) (C(min), C(median), C(p90),
    C(max) and C(stddev) in milliseconds); C(sweep_rtt_ms) is then the median. So C(groups) and C(keyed_groups)
    can sort hosts by loss or latency.
  - A host name in O(exclude) that does not resolve excludes nothing; the parse warns about it.
  - The configuration file must end in C(.sweep.yml) or C(.sweep.yaml) and hold O(plugin=sysops.fleet.sweep).
  - With O(cache=true) the sweep's result is kept by the inventory cache plugin (O(cache_plugin)), and the next
    parse within O(cache_timeout) seconds uses it without sending a packet; C(--flush-cache) sweeps again. A
    cached result made with other sweep options (another O(targets), say) is not used.
author:
  - sysops.fleet maintainers (@sysops)
requirements:
  - Permission to open ICMP sockets on the controller, or the iputils C(ping) binary (Debian/Ubuntu package
    C(iputils-ping), RPM package C(iputils)).
extends_documentation_fragment:
  - sysops.fleet.sweep
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: Marks the file as a source for this plugin.
    type: str
    required: true
    choices: [sysops.fleet.sweep]
  hostnames:
    description:
      - What names an inventory host.
      - V(address) is the address that answered.
      - V(name) is the target's host name when it was given as one (C(sweep_name)), else the address.
    type: str
    choices: [address, name]
    default: address
notes:
  - Only sweep networks you are responsible for.
  - The sweep runs on the controller every time the inventory is parsed (each C(ansible-playbook) run, each
    C(ansible.builtin.meta) V(refresh_inventory)) unless the cache serves it. Only a persistent cache plugin such
    as C(ansible.builtin.jsonfile) (with O(cache_connection)) keeps the result from one parse to the next; the
    default C(memory) plugin keeps nothing between parses.
  - A cached result holds addresses, round trip times and names only, and is checked when read; anything else in
    the cache makes the plugin sweep again.
seealso:
  - module: sysops.fleet.ping_sweep
  - name: community.general.nmap inventory
    description: The inventory that runs nmap for the same job (needs the nmap binary, often root).
    link: https://docs.ansible.com/ansible/latest/collections/community/general/nmap_inventory.html
"""

EXAMPLES = r"""
# lab.sweep.yml: every host of two networks that answers ping, grouped by network
plugin: sysops.fleet.sweep
targets:
  - 192.0.2.0/24
  - 198.51.100.10-40
  - db1.example.com
exclude:
  - 192.0.2.1
timeout: 0.5
keyed_groups:
  - key: ansible_host.split('.')[:3] | join('.')
    prefix: net
groups:
  slow: sweep_rtt_ms > 50

# Three more files, indented after "#" (EXAMPLES is one YAML document):
#
# health.sweep.yml: 10 probes per host, 200 ms apart; hosts grouped by how lossy their path is
#   plugin: sysops.fleet.sweep
#   targets: [192.0.2.0/24]
#   count: 10
#   spacing: 0.2
#   groups:
#     lossy: sweep_loss_pct > 5
#     jittery: sweep_rtt.stddev > 10
#
# cached.sweep.yml: sweep at most once an hour; --flush-cache sweeps now (ansible-inventory's from 2.19 on)
#   plugin: sysops.fleet.sweep
#   targets: [192.0.2.0/24]
#   cache: true
#   cache_plugin: ansible.builtin.jsonfile
#   cache_connection: ~/.cache/sysops-fleet-inventory
#   cache_timeout: 3600
#   compose:
#     octet: ansible_host.split('.')[-1] | int
#   keyed_groups:
#     - key: "'odd' if (octet | int) % 2 else 'even'"
#       prefix: parity
#
# names.sweep.yml: hosts named as given, without the system ping binary
#   plugin: sysops.fleet.sweep
#   targets: [web1.example.com, web2.example.com]
#   hostnames: name
#   method: socket
"""

import difflib
import ipaddress
import json
import math

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.sysops.fleet.plugins.module_utils import _command, _fanout, _sweep, _sweep_options, _targets

SUFFIXES = (".sweep.yml", ".sweep.yaml")
# The options that decide what the sweep finds: a cached result made with others is not reused.
SWEEP_OPTIONS = tuple(_sweep_options.SPEC)
CACHE_FORMAT = 2  # 2: count mode's numbers (sent, received, loss_pct, rtt) beside address, rtt_ms and name
COUNTED = ("sent", "received", "loss_pct", "rtt")  # what count mode adds to a host, as sweep_<name>
RTT_STATS = ("min", "median", "p90", "max", "stddev")


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Hosts that answer a ping sweep, run by the collection's core on the controller."""

    NAME = "sysops.fleet.sweep"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        self._config(path)
        wanted = json.loads(json.dumps({name: self.get_option(name) for name in SWEEP_OPTIONS}))
        use_cache = bool(self.get_option("cache"))
        key = self.get_cache_key(path)
        found = None
        if use_cache and cache:
            found = self._cached(key, wanted)
        if found is None:
            found = self._sweep(path, wanted)
            if use_cache:
                self._cache[key] = {"format": CACHE_FORMAT, "options": wanted, "hosts": found}
        self._populate(found)

    def _config(self, path):
        """Read and check the file: every key an option of ours, every value accepted, named when it is not."""
        try:
            config = self._read_config_data(path)
        except AnsibleParserError:
            raise
        except AnsibleError as exc:
            raise AnsibleParserError(f"{path}: {exc.message}") from None
        known = set(self._options)
        for name in sorted(set(config) - known):
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AnsibleParserError(f"{path}: unknown option {name!r}{hint}; the options are in "
                                     f"'ansible-doc -t inventory {self.NAME}'")
        return config

    def _cached(self, key, wanted):
        """The hosts of a cached sweep made with the same options, or None (sweep again).

        The cache is a file others may have touched: only plain addresses,
        numbers and names come out of it, or nothing.
        """
        try:
            entry = self._cache[key]
        except KeyError:
            return None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
            return None
        if json.loads(json.dumps(entry.get("options"))) != wanted:
            return None
        try:
            return [_plain_host(host) for host in entry.get("hosts")]
        except (TypeError, ValueError, KeyError, AttributeError):
            return None

    def _sweep(self, path, wanted):
        """Sweep now; the hosts that answered, in the sweep's order, as plain data (what the cache keeps)."""
        try:
            result = _sweep.run(_sweep_options.from_params(wanted))
        except (ValueError, _command.CommandError, _fanout.FanOutError) as exc:
            raise AnsibleParserError(f"{path}: {exc}") from None
        summary = result["summary"]
        for name in result["exclude_unresolved"]:
            self.display.warning(f"{path}: exclude: {name!r} does not resolve, so it excludes nothing; check the name "
                                 "(DNS, /etc/hosts)")
        self.display.vvv(f"{path}: {summary['alive']} of {summary['total']} addresses answered "
                         f"(method {summary['method']}, {summary['elapsed_s']}s)")
        for name in result["unresolved"]:
            self.display.warning(f"{path}: {name}: {result['hosts'][name]['error']}; it is not in the inventory")
        failed = [result["hosts"][a]["error"] for a in result["dead"] if result["hosts"][a].get("error")]
        if failed and len(failed) == summary["total"]:
            raise AnsibleParserError(f"{path}: no address could be probed ({summary['method']}): {failed[0]}")
        if failed:
            self.display.warning(f"{path}: {len(failed)} address(es) could not be probed and count as silent: "
                                 f"{failed[0]}")
        found = []
        for address in result["alive"]:
            entry = result["hosts"][address]
            host = {"address": address, "rtt_ms": entry.get("rtt_ms"), "name": entry.get("name")}
            host.update({key: entry[key] for key in COUNTED if key in entry})
            found.append(host)
        return found

    def _populate(self, found):
        """Add the hosts, their variables, and what compose, groups and keyed_groups make of them."""
        strict = self.get_option("strict")
        by_name = self.get_option("hostnames") == "name"
        for host in found:
            hostname = host["name"] if by_name and host.get("name") else host["address"]
            self.inventory.add_host(hostname)
            hostvars = {"ansible_host": host["address"], "sweep_rtt_ms": host.get("rtt_ms")}
            if host.get("name"):
                hostvars["sweep_name"] = host["name"]
            hostvars.update({f"sweep_{key}": host[key] for key in COUNTED if key in host})
            for var, value in hostvars.items():
                self.inventory.set_variable(hostname, var, value)
            # groups and keyed_groups see the composed variables too (Constructable adds the host's vars)
            self._set_composite_vars(self.get_option("compose"), hostvars, hostname, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, hostname, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, hostname, strict=strict)


def _plain_host(host):
    """One cached host as plain data: an address, a number of milliseconds or None, a name or None, and in
    count mode two counts, a percentage and the round-trip statistics (numbers, or None)."""
    address = str(ipaddress.ip_address(str(host["address"])))
    rtt = host.get("rtt_ms")
    name = host.get("name")
    if name is not None and not isinstance(_targets.parse(str(name)), _targets.Name):
        raise ValueError(f"not a host name: {name!r}")
    plain = {"address": address, "rtt_ms": None if rtt is None else _number(rtt),
             "name": None if name is None else str(name).encode("ascii").decode("ascii")}
    if "sent" in host:
        sent, received, loss = int(host["sent"]), int(host["received"]), _number(host["loss_pct"])
        if not 0 <= received <= sent <= _sweep_options.MAX_COUNT or not 0 <= loss <= 100:
            raise ValueError("counts out of range")
        stats = host["rtt"]
        plain.update(sent=sent, received=received, loss_pct=loss,
                     rtt=None if stats is None else {key: _number(stats[key]) for key in RTT_STATS})
    return plain


def _number(value):
    """A finite number from the cache; a bool, a string or nan is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"not a number: {value!r}")
    return float(value)
