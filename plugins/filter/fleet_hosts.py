# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``sysops.fleet.fleet_hosts`` filter: the play's hosts sorted for fleet_report in one pass (docs in fleet_hosts.yml)."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

GROUPS = ("unreachable", "ended", "failed", "sound", "sweepers", "meshers", "reporters")


def fleet_hosts(hostvars, play_hosts_all, play_hosts, sweepers=()):
    """Each host of *play_hosts_all* once: lost (not in *play_hosts*), ended (unreachable at the first task), failed
    (``fleet_failure``) or sound, and of the sound ones who swept, meshed and reported its disks."""
    for name, value in (("play_hosts_all", play_hosts_all), ("play_hosts", play_hosts), ("sweepers", sweepers)):
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise AnsibleFilterError(f"sysops.fleet.fleet_hosts: {name} must be a list of host names, "
                                     f"got {type(value).__name__}")
    active, sweeping = set(play_hosts), set(sweepers)
    found = {group: [] for group in GROUPS}
    for host in play_hosts_all:
        if host not in active:  # lost later in the play: Ansible dropped it
            found["unreachable"].append(host)
            continue
        facts = hostvars[host]
        reach = facts.get("fleet_reach")
        if isinstance(reach, Mapping) and reach.get("unreachable"):
            found["ended"].append(host)
            found["unreachable"].append(host)
        elif "fleet_failure" in facts:
            found["failed"].append(host)
        else:
            _sound(host, facts, host in sweeping, found)
    return found


def _sound(host, facts, sweeping, found):
    """A host that went through the block: which of its results fleet_report reads."""
    found["sound"].append(host)
    if sweeping:
        found["sweepers"].append(host)
    mesh = facts.get("fleet_mesh_sweep")
    if isinstance(mesh, Mapping) and "skipped" not in mesh:
        found["meshers"].append(host)
    if "fleet_disk" in facts:
        found["reporters"].append(host)


class FilterModule:
    """site.yml's host lists, in one pass over hostvars."""

    def filters(self):
        return {"fleet_hosts": fleet_hosts}
