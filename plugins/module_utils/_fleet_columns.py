# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet's disk reports in columns: made on the controller (filter disk_columns), read by fleet_report.

PRIVATE to the sysops.fleet collection. Pure standard library.

At 10,000 hosts the disk reports are 100,000 filesystems. As disk_report
returns them they are 34 MB of JSON, every key repeated in every row, with
fields the fleet report never reads (inode counts, the forecast's span and
date); Ansible reads, copies and scans every byte of a module's arguments
before the module starts, and the module parses them again. In columns
(one list per field the report reads, the hosts and how many filesystems
each has) the same fleet is a third of that, parses without making
100,000 dicts, and is checked a column at a time: a column
whose every value has the type disk_report gives it passes at once, and
only when one does not are the rows checked one by one, with the same
rules and messages as the disk reports (``_fleet_inputs.filesystem``).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterator, List, Mapping, Sequence, Tuple

from ._fleet_inputs import FLOAT_MAX, STATUSES, FleetError, _Bad, _fs_reasons, decoded, filesystem, kind, shown

VERSION = 1
TEXT = ("mount", "device", "fstype", "status", "error")
NUMBERS = ("size_bytes", "used_bytes", "avail_bytes", "use_pct", "inode_pct", "days_to_full", "rate_per_day")
COLUMNS = TEXT + ("reasons",) + NUMBERS
_FORECAST = ("days_to_full", "rate_per_day")
OPTION = "disk_columns"


def columns(reports: Mapping[str, Any]) -> Dict[str, Any]:
    """host -> disk_report result, in columns: only the fields the fleet report reads, values as they are.

    The values are not checked here (fleet_report checks them, naming the
    host and field); only what columns cannot hold is refused: a result
    that has no list of filesystems, a filesystem or forecast that is no dict.
    """
    if not isinstance(reports, Mapping):
        raise FleetError(f"expected a dict of host -> disk_report result, got {kind(reports)}")
    table: Dict[str, Any] = {"version": VERSION, "hosts": [], "counts": []}
    cells: Dict[str, List[Any]] = {name: [] for name in COLUMNS}
    for host, report in reports.items():
        rows = report.get("filesystems") if isinstance(report, Mapping) else None
        if not isinstance(rows, list):
            raise FleetError(f"{shown(repr(host), 80)} is not a disk_report result (no 'filesystems' list)")
        for index, fs in enumerate(rows):
            _add(cells, fs, f"{shown(repr(host), 80)}.filesystems[{index}]")
        table["hosts"].append(host)
        table["counts"].append(len(rows))
    table.update(cells)
    return table


def _add(cells: Dict[str, List[Any]], fs: Any, where: str) -> None:
    if not isinstance(fs, Mapping):
        raise FleetError(f"{where}: expected a filesystem (a dict with mount, use_pct, ...), got {kind(fs)}")
    forecast = fs.get("forecast")
    if forecast is not None and not isinstance(forecast, Mapping):
        raise FleetError(f"{where}.forecast: expected a dict (disk_report's forecast) or null, got {kind(forecast)}")
    for name in COLUMNS:
        source = (forecast or {}) if name in _FORECAST else fs
        cells[name].append(source.get(name))


def dumps(table: Mapping[str, Any]) -> str:
    """The columns as compact JSON text (what fleet_report's disk_columns takes; a string costs Ansible nothing)."""
    return json.dumps(table, separators=(",", ":"))


_ROW = ("mount", "device", "fstype", "size_bytes", "used_bytes", "avail_bytes", "use_pct", "inode_pct", "status",
        "reasons", "error", "days_to_full", "rate_per_day")


def _row(values: Sequence[Any]) -> Dict[str, Any]:
    """One row of columns that passed the quick check (its values in the order of ``_ROW``): the same row
    ``_fleet_inputs._quick`` makes."""
    mount, device, fstype, size, used, avail, use, inode, status, reasons, error, days, rate = values
    return {"mount": mount, "device": device, "fstype": fstype, "size_bytes": size, "used_bytes": used,
            "avail_bytes": avail, "use_pct": None if use is None else float(use),
            "inode_pct": None if inode is None else float(inode), "status": status,
            "reasons": _fs_reasons(reasons) if reasons else [], "error": error, "days_to_full": days,
            "rate_per_day": rate}


class Table:
    """The columns, checked: the hosts with their span of rows, and ``rows(host, span)`` the checked rows."""

    def __init__(self, cells: Mapping[str, List[Any]], hosts: List[str], counts: List[int]):
        self.cells = cells
        self.hosts = hosts
        self.spans: Dict[str, Tuple[int, int]] = {}
        start = 0
        for host, count in zip(hosts, counts):
            self.spans[host] = (start, count)
            start += count
        self.quick = all(_QUICK[name](cells[name]) for name in COLUMNS)

    def rows(self, host: str, span: Tuple[int, int]) -> Iterator[Dict[str, Any]]:
        """The host's filesystems as ``_fleet_inputs.filesystem`` gives them (FleetError names host and field)."""
        start, count = span
        if self.quick:
            rows: Iterator[Any] = enumerate(zip(*[self.cells[name][start:start + count] for name in _ROW]))
        else:
            rows = ((index, start + index) for index in range(count))
        for index, values in rows:
            try:
                yield _row(values) if self.quick else self._checked(values)
            except _Bad as bad:  # from _row, only reasons that are no strings
                name = bad.field.lstrip(".").split(".")[-1].split("[")[0]
                raise FleetError(f"{OPTION}.{name}[{start + index}] ({shown(repr(host), 80)}, its filesystem "
                                 f"{index}): {bad.text}") from None

    def row(self, at: int) -> Dict[str, Any]:
        """Row *at* of columns that passed the quick check, whose reasons are strings (``plain``)."""
        return _row([self.cells[name][at] for name in _ROW])

    def plain(self) -> bool:
        """Whether the quick check passed and every reason is a string: a row is then made only to be shown
        (``_fleet.scan_columns``); else each row is made and checked, and the first bad one named."""
        return self.quick and all(isinstance(r, str) for rs in self.cells["reasons"] if rs for r in rs)

    def _checked(self, at: int) -> Dict[str, Any]:
        """One row, field by field as a disk report's filesystem is (``_Bad`` names the field)."""
        fs = {name: self.cells[name][at] for name in COLUMNS if name not in _FORECAST}
        days, rate = self.cells["days_to_full"][at], self.cells["rate_per_day"][at]
        fs["forecast"] = None if days is None and rate is None else {"days_to_full": days, "rate_per_day": rate}
        return filesystem(fs)


_NONE = type(None)


def _types(values: List[Any]) -> set:
    return set(map(type, values))


def _is_text(values: List[Any]) -> bool:
    return _types(values) <= {str, _NONE}


def _is_mount(values: List[Any]) -> bool:
    return _types(values) <= {str} and "" not in values


def _is_status(values: List[Any]) -> bool:
    return _is_text(values) and set(values) <= {None, *STATUSES}


def _is_reasons(values: List[Any]) -> bool:
    return _types(values) <= {list, _NONE}


def _in_range(values: List[Any], types: set, low: float, high: float) -> bool:
    """Every value None or of *types* from *low* to *high*; a NaN (which every comparison passes over) fails."""
    if not _types(values) <= types | {_NONE}:
        return False
    numbers = [v for v in values if v is not None]
    if not numbers:
        return True
    nan = float in types and any(v != v for v in numbers)  # pylint: disable=comparison-with-itself
    # no sum() to find a NaN: an integer too large for a float beside a float raised OverflowError there
    return not nan and low <= min(numbers) and max(numbers) <= high


def _is_bytes(values: List[Any]) -> bool:
    return _in_range(values, {int}, 0, FLOAT_MAX)


def _is_pct(values: List[Any]) -> bool:
    return _in_range(values, {int, float}, 0, 100)


def _is_days(values: List[Any]) -> bool:
    return _in_range(values, {float}, 0, FLOAT_MAX)


def _is_rate(values: List[Any]) -> bool:
    return _in_range(values, {float}, -FLOAT_MAX, FLOAT_MAX)


# The quick check of each column: true when every value has the exact type and range disk_report gives it
# (the same test as _fleet_inputs._quick's, a column at a time).
_QUICK: Dict[str, Callable[[List[Any]], bool]] = {
    "mount": _is_mount, "device": _is_text, "fstype": _is_text, "status": _is_status, "error": _is_text,
    "reasons": _is_reasons, "size_bytes": _is_bytes, "used_bytes": _is_bytes, "avail_bytes": _is_bytes,
    "use_pct": _is_pct, "inode_pct": _is_pct, "days_to_full": _is_days, "rate_per_day": _is_rate,
}


def read(value: Any) -> Table:
    """fleet_report's disk_columns (a dict or JSON text), its shape checked; FleetError says what is wrong."""
    value = decoded(value, OPTION)
    if not isinstance(value, Mapping):
        raise FleetError(f"{OPTION}: expected the disk reports in columns (a dict, or JSON text, as the filter "
                         f"sysops.fleet.disk_columns makes), got {kind(value)}")
    version = value.get("version")
    if version != VERSION or type(version) is not int:  # pylint: disable=unidiomatic-typecheck
        raise FleetError(f"{OPTION}.version: expected {VERSION} (the form sysops.fleet.disk_columns makes), "
                         f"got {kind(version)}")
    unknown = sorted(str(key) for key in value if key not in COLUMNS + ("version", "hosts", "counts"))
    if unknown:
        raise FleetError(f"{OPTION}: unknown column {shown(repr(unknown[0]), 80)}; the columns are "
                         f"{', '.join(COLUMNS)}")
    hosts, counts = _hosts(value.get("hosts")), _counts(value.get("counts"))
    if len(counts) != len(hosts):
        raise FleetError(f"{OPTION}.counts: {len(counts)} counts for {len(hosts)} hosts; give each host the number "
                         f"of its filesystems")
    rows = sum(counts)
    for name in COLUMNS:
        cells = value.get(name)
        if not isinstance(cells, list):
            raise FleetError(f"{OPTION}.{name}: expected a list (one value per filesystem), got {kind(cells)}")
        if len(cells) != rows:
            raise FleetError(f"{OPTION}.{name}: {len(cells)} values for {rows} filesystems (the sum of counts)")
    return Table(value, hosts, counts)


def _hosts(value: Any) -> List[str]:
    if not isinstance(value, list):
        raise FleetError(f"{OPTION}.hosts: expected a list of host names, got {kind(value)}")
    seen = set()
    for index, host in enumerate(value):
        if not isinstance(host, str) or not host.strip():
            raise FleetError(f"{OPTION}.hosts[{index}]: expected a host name, got {kind(host)}")
        if host in seen:
            raise FleetError(f"{OPTION}.hosts[{index}]: {shown(repr(host), 80)} is listed twice; each host once")
        seen.add(host)
    return value


def _counts(value: Any) -> List[int]:
    if not isinstance(value, list):
        raise FleetError(f"{OPTION}.counts: expected a list of numbers of filesystems, got {kind(value)}")
    for index, count in enumerate(value):
        if type(count) is not int or count < 0:  # pylint: disable=unidiomatic-typecheck
            raise FleetError(f"{OPTION}.counts[{index}]: expected a whole number of at least 0, got {kind(count)}")
    return value
