# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mesh mode's filters for playbooks/site.yml: each host's address, its peers, its sweeps joined (docs in the .yml files)."""

from __future__ import annotations

from collections import Counter

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet_inputs, _mesh, _text


def mesh_addresses(hostvars, hosts):
    """host -> the address the others probe, for each of *hosts* that has one (``_mesh.address_of``), in the one
    spelling the fleet report reads (``_fleet_inputs.canonical``).

    Hosts that share an address (port-forwarded hosts behind one address) are left out: the
    others cannot tell them apart by probing it, and one shared address must not cost the
    whole fleet report. So is a host whose address is no IP address (a name in
    ``fleet_mesh_address``). Both with a warning. Compared as written, ``2001:DB8::5`` and
    ``2001:db8::5`` (or ``192.0.2.5`` and ``::ffff:192.0.2.5``) were two addresses here and one
    in the report, which then refused the whole of ``addresses``: no report at all.
    """
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError(f"sysops.fleet.mesh_addresses: expected a list of hosts, got {type(hosts).__name__}")
    found = {}
    for host in hosts:
        given = _mesh.address_of(hostvars[host])
        if not given:
            continue
        address = _fleet_inputs.canonical(given)
        if address is None:
            Display().warning(f"sysops.fleet.mesh_addresses: {_text.printable(str(host))}: "
                              f"'{_text.printable(given, 80)}' is no IP address (set fleet_mesh_address to the address "
                              "the others probe): left out of the mesh")
            continue
        found[host] = address
    times = Counter(found.values())
    for address in sorted(a for a, n in times.items() if n > 1):
        shared = sorted(_text.printable(str(h)) for h, a in found.items() if a == address)
        Display().warning(f"sysops.fleet.mesh_addresses: {', '.join(shared)} share the address {address}: "
                          "left out of the mesh (the others cannot tell them apart by probing it)")
    return {host: address for host, address in found.items() if times[address] == 1}


def mesh_peers(addresses, me, bound=64):
    """The addresses *me* probes: every other host's, or *bound* ring neighbours' (``_mesh.peers``)."""
    if not isinstance(addresses, dict):
        raise AnsibleFilterError(f"sysops.fleet.mesh_peers: expected a dict of host -> address, got "
                                 f"{type(addresses).__name__}")
    try:
        most = int(str(bound).strip())
    except ValueError:
        most = 0
    if most < 1:
        raise AnsibleFilterError(f"sysops.fleet.mesh_peers: fleet_mesh_peers must be a whole number of at least 1 "
                                 f"(the most hosts one host probes), got {bound!r}")
    return [addresses[host] for host in _mesh.peers(list(addresses), me, most)]


def mesh_joined(own, meshed):
    """Sweeper -> one result, a host's own sweep and its mesh sweep joined (``_mesh.joined``)."""
    if not isinstance(own, dict) or not isinstance(meshed, dict):
        raise AnsibleFilterError("sysops.fleet.mesh_joined: expected two dicts of sweeper -> ping_sweep result")
    return _mesh.joined(own, meshed)


class FilterModule:
    """Mesh mode's filters."""

    def filters(self):
        return {"mesh_addresses": mesh_addresses, "mesh_peers": mesh_peers, "mesh_joined": mesh_joined}
