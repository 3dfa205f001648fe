# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``sysops.fleet.disk_columns`` filter: disk_report results in columns, for fleet_report (docs in disk_columns.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet_columns


def disk_columns(reports):
    """host -> disk_report result, as fleet_report's disk_columns JSON text (``_fleet_columns.columns``)."""
    try:
        return _fleet_columns.dumps(_fleet_columns.columns(reports))
    except (_fleet_columns.FleetError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"sysops.fleet.disk_columns: {exc}") from None


class FilterModule:
    """fleet_report's compact input."""

    def filters(self):
        return {"disk_columns": disk_columns}
