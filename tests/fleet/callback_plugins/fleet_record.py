# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only callback for the fleet test (tests/fleet/run.py): records every task result and the play stats as JSON.

Enabled with ANSIBLE_CALLBACK_PLUGINS=tests/fleet/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=fleet_record; writes to the file named by FLEET_RECORD.
Keeps the fleet_report, ping_sweep and disk_report results in full (they are small).
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_record
type: aggregate
short_description: Record task results and stats as JSON (the fleet test only)
description:
  - Writes one JSON document to the file named by the FLEET_RECORD environment variable.
requirements:
  - enable in configuration
"""

import json
import os

from ansible.plugins.callback import CallbackBase

KEEP = ("report", "alive", "dead", "errors", "summary", "files", "msg", "rc", "stdout", "stderr", "unreachable",
        "findings", "mesh")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.results = []

    def _record(self, result, status):
        res = result._result
        item = {
            "task": result._task.get_name(),
            "action": result._task.action,
            "host": result._host.get_name(),
            "status": status,
            "changed": bool(res.get("changed", False)),
        }
        if "results" in res:  # loops: changed if any item changed
            item["changed"] = item["changed"] or any(r.get("changed", False) for r in res["results"])
        for key in KEEP:
            if key in res:
                item[key] = res[key]
        self.results.append(item)

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_playbook_on_stats(self, stats):
        summary = {h: stats.summarize(h) for h in sorted(stats.processed)}
        path = os.environ.get("FLEET_RECORD")
        if not path:
            return
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"results": self.results, "stats": summary}, handle, indent=1, default=str)
