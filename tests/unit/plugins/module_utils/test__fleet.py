# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report merge: tables of sweep and disk results in, one report out."""

import datetime
import json

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _files, _fleet

NOW = datetime.datetime(2026, 11, 27, 6, 0, tzinfo=datetime.timezone.utc)


def sweep(alive, dead, names=None):
    hosts = {a: {"alive": True} for a in alive}
    hosts.update({a: {"alive": False} for a in dead})
    for address, name in (names or {}).items():
        hosts[address]["name"] = name
    return {"alive": alive, "dead": dead, "hosts": hosts}


def fs(mount, use_pct, status="ok", days=None, avail=1 << 30):
    entry = {"mount": mount, "device": "/dev/x", "fstype": "ext4", "size_bytes": 10 << 30,
             "used_bytes": 1, "avail_bytes": avail, "use_pct": use_pct, "inode_pct": 1.0, "status": status}
    if days is not None:
        entry["forecast"] = {"days_to_full": days, "rate_per_day": float(1 << 20)}
    return entry


def test_an_address_alive_for_any_sweeper_is_alive_and_order_is_numeric():
    merged = _fleet.merge_sweeps({
        "sweeper-b": sweep(["10.0.0.10"], ["10.0.0.9", "10.0.0.2"]),
        "sweeper-a": sweep(["10.0.0.9", "fd00::1"], ["10.0.0.100"], names={"10.0.0.9": "db"}),
    })
    assert merged["alive"] == ["10.0.0.9", "10.0.0.10", "fd00::1"]
    assert merged["down"] == ["10.0.0.2", "10.0.0.100"]
    assert merged["names"] == {"10.0.0.9": "db"}
    assert merged["swept_by"]["10.0.0.2"] == "sweeper-b"


def test_first_run_is_the_baseline_then_new_and_vanished_are_reported():
    disks = {"web1": {"filesystems": [fs("/", 50.0)]}}
    first = _fleet.build({"s": sweep(["10.0.0.1", "10.0.0.2"], [])}, disks, ["web1"], now=NOW)
    assert first["report"]["first_run"] and first["report"]["new"] == [] and first["report"]["vanished"] == []
    previous = json.loads(json.dumps(first["state"]))
    second = _fleet.build({"s": sweep(["10.0.0.2", "10.0.0.3"], ["10.0.0.1"])}, disks, ["web1"],
                          previous=previous, now=NOW)
    assert second["report"]["new"] == ["10.0.0.3"]
    assert second["report"]["vanished"] == ["10.0.0.1"]
    assert second["report"]["down"] == ["10.0.0.1"]
    same = _fleet.build({"s": sweep(["10.0.0.2", "10.0.0.3"], ["10.0.0.1"])}, disks, ["web1"],
                        previous=second["state"], now=NOW)
    assert same["report"]["new"] == [] and same["report"]["vanished"] == []


def test_fullest_and_fastest_filling_across_the_fleet():
    disks = {
        "a": {"filesystems": [fs("/", 91.0, "crit", days=3.5), fs("/var", 10.0)]},
        "b": {"filesystems": [fs("/", 85.0, "warn"), fs("/data", 60.0, days=1.25)]},
    }
    report = _fleet.build({}, disks, ["a", "b", "c"], unreachable=["c"], top=3, now=NOW)["report"]
    assert [(f["host"], f["mount"]) for f in report["fullest"]] == [("a", "/"), ("b", "/"), ("b", "/data")]
    assert [(f["host"], f["mount"], f["days_to_full"]) for f in report["forecasts"]] == [
        ("b", "/data", 1.25), ("a", "/", 3.5)]
    assert [(a["host"], a["status"]) for a in report["alerts"]] == [("a", "crit"), ("b", "warn")]
    assert [(h["host"], h["reachable"], h["disk_status"]) for h in report["hosts"]] == [
        ("a", True, "crit"), ("b", True, "warn"), ("c", False, None)]
    assert report["summary"]["unreachable"] == 1 and report["summary"]["alerts"] == 2


def test_text_and_html_say_the_same_things():
    disks = {"a": {"filesystems": [fs("/", 91.0, "crit", days=3.5)]}}
    built = _fleet.build({"s": sweep(["10.0.0.1"], ["10.0.0.7"], names={"10.0.0.7": "<db>"})}, disks,
                         ["a", "b"], unreachable=["b"], now=NOW, previous={"alive": ["10.0.0.7"]})
    text = _fleet.render_text(built["report"])
    page = _fleet.render_html(built["report"])
    assert "10.0.0.7 (<db>)" in text and "UNREACHABLE" in text and "+1.0M/day, full in 3.5 days" in text
    assert "Vanished addresses:\n  10.0.0.7" in text and "New addresses:\n  10.0.0.1" in text
    assert "10.0.0.7 (&lt;db&gt;)" in page and "<db>" not in page
    assert "width:91%" in page and "#c62828" in page


def test_a_host_that_failed_a_task_is_failed_not_unreachable():
    disks = {"a": {"filesystems": [fs("/", 50.0)]}}
    report = _fleet.build({}, disks, ["a", "b", "c", "d"], unreachable=["c", "d"], failed=["b", "d"], now=NOW)["report"]
    rows = {h["host"]: h for h in report["hosts"]}
    assert [(h, rows[h]["reachable"], rows[h]["failed"]) for h in "abcd"] == [
        ("a", True, False), ("b", True, True), ("c", False, False), ("d", False, False)]
    assert report["failed"] == ["b"] and report["unreachable"] == ["c", "d"], "unreachable wins over failed"
    assert report["summary"]["failed"] == 1 and report["summary"]["unreachable"] == 2
    text = _fleet.render_text(report)
    assert "4 hosts (2 unreachable, 1 failed)" in text
    hosts = text.split("Hosts:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[:2] for line in hosts] == [["a", "reachable"], ["b", "FAILED"], ["c", "UNREACHABLE"],
                                                    ["d", "UNREACHABLE"]]
    page = _fleet.render_html(report)
    assert "<td>b</td><td><b>FAILED</b></td>" in page and "<td>a</td><td>reachable</td>" in page
    assert "4 hosts (2 unreachable, 1 failed)" in page


@pytest.mark.parametrize("sweeps,disks,message", [
    ({"s": {"nope": 1}}, {}, "is not a ping_sweep result"),
    ({}, {"h": {"filesystems": "x"}}, "is not a disk_report result"),
])
def test_wrong_inputs_are_named(sweeps, disks, message):
    with pytest.raises(_fleet.FleetError, match=message):
        _fleet.build(sweeps, disks, [])


def test_state_file_round_trip_and_corruption(tmp_path):
    path = tmp_path / "state.json"
    assert _fleet.load_state(str(path)) is None
    assert _files.write_if_changed(str(path), json.dumps({"alive": ["10.0.0.1"]}))
    assert not _files.write_if_changed(str(path), json.dumps({"alive": ["10.0.0.1"]}))
    assert _fleet.load_state(str(path)) == {"alive": ["10.0.0.1"]}
    path.write_text("{broken")
    with pytest.raises(_fleet.FleetError, match="cannot be read"):
        _fleet.load_state(str(path))
    path.write_text("[]")
    with pytest.raises(_fleet.FleetError, match="no 'alive' list"):
        _fleet.load_state(str(path))
