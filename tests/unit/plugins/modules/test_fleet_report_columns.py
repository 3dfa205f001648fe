# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleet_report's disk_columns through the module process: the same files as disk_reports, hostile columns refused."""

import json

import module_runner
import pytest
from disk_columns_samples import column, disk_columns, fleet, table

from ansible_collections.sysops.fleet.plugins.modules import fleet_report


def test_the_module_writes_the_same_report_from_either_form(tmp_path):
    """Through the module process: the files written from disk_columns are those written from disk_reports."""
    inputs = fleet(200)
    common = {key: inputs[key] for key in ("sweeps", "hosts", "unreachable", "failed", "failure_reasons")}
    written = []
    for name, args in (("reports", {"disk_reports": json.dumps(inputs["disk_reports"])}),
                       ("columns", {"disk_columns": disk_columns(inputs["disk_reports"])})):
        report_dir = tmp_path / name
        rc, out, unused = module_runner.run_module(fleet_report, tmp_path, report_dir=str(report_dir), send="never",
                                                   **common, **args)
        assert rc == 0, out
        files = [(report_dir / f).read_bytes() for f in ("fleet-report.txt", "fleet-report.html")]
        written.append([f.replace(out["report"]["generated"].encode(), b"GENERATED") for f in files])
    assert written[0] == written[1]


HOSTILE = [
    ("[1, 2]", "disk_columns: expected the disk reports in columns (a dict, or JSON text"),
    ('{"version": 1, "hosts": [', "disk_columns: JSON text that does not parse"),
    (table(version=2), "disk_columns.version: expected 1 (the form sysops.fleet.disk_columns makes), got int 2"),
    (table(version=True), "disk_columns.version: expected 1"),
    (table(inodes_total=[1000] * 3), "disk_columns: unknown column 'inodes_total'; the columns are mount, device"),
    (table(hosts="web1"), "disk_columns.hosts: expected a list of host names, got a string ('web1')"),
    (table(hosts=["web1", ""]), "disk_columns.hosts[1]: expected a host name, got a string ('')"),
    (table(hosts=["web1", "web1"]), "disk_columns.hosts[1]: 'web1' is listed twice; each host once"),
    (table(counts=[2]), "disk_columns.counts: 1 counts for 2 hosts"),
    (table(counts=[2, -1]), "disk_columns.counts[1]: expected a whole number of at least 0, got int -1"),
    (table(counts=[2, True]), "disk_columns.counts[1]: expected a whole number of at least 0, got bool True"),
    (table(counts=[2, 2]), "disk_columns.mount: 3 values for 4 filesystems (the sum of counts)"),
    (table(use_pct=None), "disk_columns.use_pct: expected a list (one value per filesystem), got NoneType None"),
    (table(**column("use_pct", 2, "lots")),
     "disk_columns.use_pct[2] ('db1', its filesystem 0): expected a number from 0 to 100 or null, got a string ('lots')"),
    (table(**column("use_pct", 1, 101)), "disk_columns.use_pct[1] ('web1', its filesystem 1): expected a number from 0"),
    (table(**column("inode_pct", 0, float("nan"))), "disk_columns.inode_pct[0] ('web1', its filesystem 0)"),
    (table(**column("avail_bytes", 1, 10 ** 400)),
     "disk_columns.avail_bytes[1] ('web1', its filesystem 1): expected a whole number of at least 0 or null, "
     "got an integer of 401 digits (too large for a float)"),
    (table(**column("avail_bytes", 0, "10G")), "disk_columns.avail_bytes[0] ('web1', its filesystem 0): expected a whole"),
    (table(**column("mount", 2, "")), "disk_columns.mount[2] ('db1', its filesystem 0): expected a mount point"),
    (table(**column("mount", 0, ["/"])), "disk_columns.mount[0] ('web1', its filesystem 0): expected a mount point"),
    (table(**column("status", 0, "purple")),
     "disk_columns.status[0] ('web1', its filesystem 0): expected one of ok, warn, crit (or null), got a string"),
    (table(**column("reasons", 1, [7])), "disk_columns.reasons[1] ('web1', its filesystem 1): expected a string, got int 7"),
    (table(**column("reasons", 1, "full")), "disk_columns.reasons[1] ('web1', its filesystem 1): expected a list of"),
    (table(**column("device", 0, {"x": 1})), "disk_columns.device[0] ('web1', its filesystem 0): expected a string or null"),
    (table(**column("days_to_full", 0, "soon")), "disk_columns.days_to_full[0] ('web1', its filesystem 0): expected a number"),
    (table(**column("rate_per_day", 2, -1e400)), "disk_columns.rate_per_day[2] ('db1', its filesystem 0): expected a number"),
    (table(hosts=["db1\x1b[2J", "db1\x1b[2J"]), "disk_columns.hosts[1]: 'db1\\x1b[2J' is listed twice"),
]


@pytest.mark.parametrize("value,message", HOSTILE, ids=[m[:60] for unused, m in HOSTILE])
def test_hostile_columns_fail_the_module_naming_host_and_field_and_write_nothing(tmp_path, value, message):
    """Before: the module had no disk_columns option ('Unsupported parameters')."""
    report_dir = tmp_path / "reports"
    rc, out, unused = module_runner.run_module(fleet_report, tmp_path, report_dir=str(report_dir), send="never",
                                               hosts=["web1", "db1"], disk_columns=value)
    assert rc == 1 and out["failed"] and message in out["msg"], out
    assert "\n" not in out["msg"] and "\x1b" not in out["msg"]
    assert not report_dir.exists(), "nothing written"
