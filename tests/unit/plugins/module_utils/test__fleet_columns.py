# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleet_report's disk reports in columns: the same report as the disk reports give, and hostile columns refused."""

import json

import pytest
from disk_columns_samples import NOW, disk_columns, fleet, table
from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _fleet_columns, _fleet_render


def rendered(inputs, **disks):
    built = _fleet.build(inputs["sweeps"], hosts=inputs["hosts"], unreachable=inputs["unreachable"],
                         failed=inputs["failed"], failure_reasons=inputs["failure_reasons"], now=NOW, **disks)
    return _fleet_render.text(built["report"]), _fleet_render.html(built["report"]), built["report"]


@pytest.mark.parametrize("odd", [False, True], ids=["quick", "odd-values-checked-one-by-one"])
def test_the_same_fleet_in_columns_gives_byte_identical_text_and_html_reports(odd):
    """Before: there was no disk_columns (build() took no such argument)."""
    inputs = fleet(600, odd)
    as_text = json.dumps(inputs["disk_reports"], separators=(",", ":"))
    text, page, report = rendered(inputs, disks=as_text)
    columns = disk_columns(inputs["disk_reports"])
    assert isinstance(columns, str) and len(columns) < len(as_text) / 3
    assert _fleet_columns.read(columns).quick is not odd
    for form in (columns, json.loads(columns)):
        other_text, other_page, other_report = rendered(inputs, disks={}, disk_columns=form)
        assert other_text.encode() == text.encode() and other_page.encode() == page.encode()
        assert _fleet._returned(other_report) == _fleet._returned(report)
    assert not odd or "odd1" in text and "FAKE LINE" not in text.replace("odd2\\nFAKE LINE", "")
    assert report["summary"]["alerts"] > 10 and report["summary"]["filling"] > 100


def test_both_forms_at_once_are_refused_and_an_empty_form_is_none():
    with pytest.raises(_fleet.FleetError, match="disk_reports and disk_columns: give the disk reports one way"):
        _fleet.build({}, {"web1": {"filesystems": []}}, [], disk_columns=table())
    with pytest.raises(_fleet.FleetError, match="give the disk reports one way"):
        _fleet.build({}, '{"web1": {"filesystems": []}}', [], disk_columns=json.dumps(table()))
    assert _fleet.build({}, "{}", ["web1"], disk_columns=table())["report"]["summary"]["filesystems"] == 3
    assert _fleet.build({}, {"web1": {"filesystems": []}}, ["web1"], disk_columns="")["report"]["hosts"][0]["reported"]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


def _only_fleet_errors(value):
    try:
        _fleet.build({}, {}, ["web1"], disk_columns=value, now=NOW)
    except _fleet.FleetError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_as_disk_columns_is_a_report_or_a_fleet_error_never_a_traceback(value):
    _only_fleet_errors(value)
    _only_fleet_errors(json.dumps(value, allow_nan=True) if isinstance(value, dict) else value)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_json_in_a_well_shaped_table_is_a_report_or_a_fleet_error(data):
    """A table of the right shape with arbitrary JSON cells (the quick check fails, the slow one names the cell)."""
    value = table()
    for name in data.draw(st.lists(st.sampled_from(_fleet_columns.COLUMNS + ("counts",)), max_size=3)):
        value[name][data.draw(st.integers(0, len(value[name]) - 1))] = data.draw(JSON)
    _only_fleet_errors(value)
    built = None
    try:
        built = _fleet.build({}, {}, ["web1", "db1"], disk_columns=value, now=NOW)
    except _fleet.FleetError:
        return
    assert _fleet_render.text(built["report"]) and _fleet_render.html(built["report"])


ROW = st.fixed_dictionaries({
    "mount": st.sampled_from(["/", "/var", "/home"]), "device": st.just("/dev/sda1"), "fstype": st.just("ext4"),
    "size_bytes": st.just(100), "used_bytes": st.just(50), "avail_bytes": st.just(50),
    "use_pct": st.one_of(st.none(), st.sampled_from([10, 50.0, 90, 90.0, 99])),
    "inode_pct": st.one_of(st.none(), st.sampled_from([1, 95])),
    "status": st.one_of(st.none(), st.sampled_from(["ok", "warn", "crit"])),
    "reasons": st.one_of(st.none(), st.just([]), st.just(["use 90% is at or above warn 80%"])),
    "error": st.none(), "days_to_full": st.one_of(st.none(), st.sampled_from([0.5, 2.0, 2.0, 30.0])),
    "rate_per_day": st.one_of(st.none(), st.sampled_from([0.0, 1.5]))})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["b", "a", "c", "d", "e"]), st.lists(ROW, max_size=5), max_size=5),
       st.integers(1, 4))
def test_the_column_scan_finds_what_the_row_scan_finds_ties_and_all(hosts, top):
    """scan_columns (a row made only to be shown) against scan over every row, on tables full of ties."""
    cells = {name: [] for name in _fleet_columns.COLUMNS}
    for rows in hosts.values():
        for row in rows:
            for name in _fleet_columns.COLUMNS:
                cells[name].append(row[name])
    value = {"version": 1, "hosts": list(hosts), "counts": [len(rows) for rows in hosts.values()], **cells}
    columns = _fleet_columns.read(json.dumps(value))
    assert columns.plain()
    fast, slow = _fleet.scan_columns(columns, top), _fleet.scan(columns.spans, top, columns.rows)
    assert fast == slow


@pytest.mark.parametrize("field", ["use_pct", "inode_pct"])
def test_a_number_too_big_for_a_float_beside_a_float_is_named_not_a_crash(field):
    """An outside tester: in columns, _in_range's sum() of a 401-digit integer and a float raised OverflowError
    (the module failed, no report written); from the disk reports it was named. Now the same message either way."""
    reports = {"web1": {"filesystems": [{"mount": "/", field: 50.0, "status": "ok"},
                                        {"mount": "/var", field: 10 ** 400, "status": "ok"}]}}
    with pytest.raises(_fleet.FleetError) as rows:
        _fleet.build({}, reports, ["web1"])
    with pytest.raises(_fleet.FleetError) as columns:
        _fleet.build({}, {}, ["web1"], disk_columns=_fleet_columns.dumps(_fleet_columns.columns(reports)))
    assert "too large for a float" in str(rows.value) and "too large for a float" in str(columns.value)
    assert "web1" in str(columns.value) and field in str(columns.value)


def test_a_top_larger_than_the_trim_step_sorts_once_a_step_not_once_an_offer(monkeypatch):
    """An outside tester: with top above 4,096, every offer to a top list sorted it again (2,000 hosts and top
    10**6: 25.9 s from the disk reports). Now a list is sorted once every _KEEP_EVERY offers at most."""
    reports = {f"h{i:05d}": {"filesystems": [{"mount": f"/m{j}", "use_pct": float((i * 7 + j) % 100),
                                              "status": "ok", "forecast": {"days_to_full": float(i + j)}}
                                             for j in range(10)]} for i in range(1000)}
    sorts = []
    trim = _fleet._Top._trim  # pylint: disable=protected-access

    def counted(self):
        sorts.append(len(self.items))
        trim(self)
    monkeypatch.setattr(_fleet._Top, "_trim", counted)  # pylint: disable=protected-access
    built = _fleet.build({}, reports, list(reports), top=10 ** 6)
    assert len(built["report"]["fullest"]) == 10000 and len(built["report"]["forecasts"]) == 10000
    assert len(sorts) <= 2 * (10000 // _fleet._KEEP_EVERY + 1), len(sorts)  # pylint: disable=protected-access
