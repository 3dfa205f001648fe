# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Disk reports for the disk_columns tests: disk_report's rows, odd ones, and tests/bench/fleet_scale.py's fleet."""

import copy
import datetime
import json
import os
import sys

from ansible_collections.sysops.fleet.plugins.filter import disk_columns as plugin

ROOT_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT_DIR, "tests", "bench"))
import fleet_scale  # noqa: E402  pylint: disable=wrong-import-position

NOW = datetime.datetime(2026, 11, 27, 6, 0, tzinfo=datetime.timezone.utc)
disk_columns = plugin.FilterModule().filters()["disk_columns"]


def fs(mount, **changes):
    """A filesystem as disk_report returns it."""
    row = {"mount": mount, "device": "/dev/vda1", "fstype": "ext4", "size_bytes": 100 << 30, "used_bytes": 40 << 30,
           "avail_bytes": 60 << 30, "use_pct": 40, "inodes_total": 1000, "inodes_used": 10, "inode_pct": 1.0,
           "status": "ok", "reasons": [], "error": None,
           "forecast": {"rate_per_day": 1.5e9, "days_to_full": 40.0, "full_at": 1.8e9, "span_s": 259200.0}}
    row.update(changes)
    return row


def table(**changes):
    """A good table of two hosts and three filesystems, with *changes*."""
    value = json.loads(disk_columns({"web1": {"filesystems": [fs("/"), fs("/var")]}, "db1": {"filesystems": [fs("/")]}}))
    value.update(changes)
    return value


def column(name, index, value):
    """Column *name* of a good table with row *index* set to *value*."""
    good = table()
    good[name][index] = value
    return {name: good[name]}


# What the slow path reads as disk_report's rows do: numbers as text, whole days, reasons with line breaks and
# escapes, no status, no forecast, an error, an empty reasons string.
ODD_HOSTS = {
    "odd1": {"filesystems": [fs("/", use_pct="91", status="crit", reasons=["use 91%\n\x1b[31m is at or above crit"]),
                             fs("/var", forecast={"days_to_full": 3, "rate_per_day": 2}, status=None),
                             fs("/srv", forecast=None, use_pct=None, inode_pct=None, avail_bytes="1048576"),
                             fs("/mnt/\u202egnp.exe", status="warn", reasons="", error="df: /mnt: Stale file handle"),
                             fs("/tmp", status="warn", reasons=None, use_pct=85.5)]},
    "odd2\nFAKE LINE": {"filesystems": []},
}


def fleet(count, odd=True):
    """tests/bench/fleet_scale.py's fleet; with *odd*, ODD_HOSTS too (then no column passes the quick check)."""
    inputs = fleet_scale.fleet(count)
    if odd:
        inputs["disk_reports"].update(copy.deepcopy(ODD_HOSTS))
        inputs["hosts"] = inputs["hosts"] + list(ODD_HOSTS)
    return inputs
