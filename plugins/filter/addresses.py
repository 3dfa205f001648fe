# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``sysops.fleet.addresses`` filter: ping_sweep's ranges back into a list of addresses (docs in addresses.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.sysops.fleet.plugins.module_utils import _targets


def addresses(entries, max_hosts=_targets.DEFAULT_MAX_HOSTS):
    """Every address that *entries* (ping_sweep's alive_ranges or dead_ranges, or targets-style entries) stand for."""
    if not isinstance(entries, (str, list, tuple)):
        raise AnsibleFilterError(f"sysops.fleet.addresses: expected a list of ranges (a ping_sweep result's "
                                 f"alive_ranges or dead_ranges), got {type(entries).__name__}")
    try:
        return _targets.expand(entries, "the filter's input", int(max_hosts))
    except (_targets.TargetError, ValueError) as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """Filters of the sysops.fleet collection."""

    def filters(self):
        return {"addresses": addresses}
