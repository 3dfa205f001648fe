# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Metrics for Prometheus: the watcher's findings as a file for node_exporter's textfile collector.

PRIVATE to the sysops.fleet collection. Pure standard library.

``render`` writes the Prometheus text exposition format: a ``# HELP`` and a
``# TYPE`` line per metric, its samples right below, label values and help
texts escaped. Names follow Prometheus' rules: the ``sysops_fleet_``
prefix, base units named at the end (``_bytes``, ``_seconds``,
``_ratio``), no sample timestamps (the textfile collector refuses them).
``watcher_metrics`` is what one watcher round found; ``write_textfile``
renames a complete file into place, so a scrape never reads half of one.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from . import _files, _history, _privilege, _report

PREFIX = "sysops_fleet_"
TEXTFILE_NAME = "sysops_fleet_watcher.prom"
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = ("gauge", "counter")

Labels = Dict[str, str]


class MetricsError(ValueError):
    """A metric that the exposition format cannot carry (a bad name, a repeated label set)."""


@dataclass
class Family:
    """One metric: its name, type, help text and samples (labels, value)."""

    name: str
    help: str
    kind: str = "gauge"
    samples: List[Tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: Optional[float], **labels: Any) -> None:
        """A sample, unless the value is unknown: a gap is better than a made-up number."""
        if value is not None:
            self.samples.append(({k: str(v) for k, v in labels.items()}, value))


def escape_label(value: str) -> str:
    """A label value inside double quotes: backslash, double quote and line feed escaped.

    A mount point that is not UTF-8 (read with ``surrogateescape``) keeps
    its odd bytes as visible ``\\udcXX`` text instead of breaking the file.
    """
    value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """A help text: backslash and line feed escaped (quotes are fine there)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as Prometheus parses it: integers exactly, +Inf, -Inf and NaN by name."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(families: Iterable[Family]) -> str:
    """The text exposition format; MetricsError for what Prometheus would refuse."""
    lines: List[str] = []
    seen = set()
    for family in families:
        if not family.samples:
            continue  # nothing known (no fill rate yet): no HELP either, the metric is simply absent
        if not _NAME.match(family.name) or family.name in seen:
            raise MetricsError(f"bad or repeated metric name {family.name!r}")
        if family.kind not in TYPES:
            raise MetricsError(f"{family.name}: type {family.kind!r} is not one of {', '.join(TYPES)}")
        seen.add(family.name)
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        label_sets = set()
        for labels, value in sorted(family.samples, key=lambda s: sorted(s[0].items())):
            key = tuple(sorted(labels.items()))
            if key in label_sets:
                raise MetricsError(f"{family.name}: two samples with the labels {dict(key)}")
            label_sets.add(key)
            for name in labels:
                if not _LABEL.match(name) or name.startswith("__"):
                    raise MetricsError(f"{family.name}: bad label name {name!r}")
            text = ",".join(f'{k}="{escape_label(v)}"' for k, v in key)
            lines.append(f"{family.name}{{{text}}} {format_value(value)}" if text
                         else f"{family.name} {format_value(value)}")
    return "\n".join(lines) + "\n"


def _ratio(part: Optional[int], whole: Optional[int]) -> Optional[float]:
    return part / whole if part is not None and whole else None


def filesystem_metrics(rows: Sequence[Mapping[str, Any]], forecasts: Mapping[str, _history.Forecast]) -> List[Family]:
    """Per filesystem (report rows of ``_report.assessed``): sizes, ratios, status, fill rate, time to full."""
    size = Family(PREFIX + "filesystem_size_bytes", "Size of the filesystem in bytes (df).")
    avail = Family(PREFIX + "filesystem_avail_bytes", "Bytes available to unprivileged users (df).")
    used = Family(PREFIX + "filesystem_used_bytes", "Bytes used (df).")
    use = Family(PREFIX + "filesystem_use_ratio",
                 "Used share of the space users can have, used / (used + available), as df's Use% (0-1).")
    inodes = Family(PREFIX + "filesystem_inode_use_ratio", "Used share of the inodes (0-1).")
    status = Family(PREFIX + "filesystem_status",
                    "1 for the filesystem's status against the watcher's thresholds (ok, warn, crit), 0 for the others.")
    rate = Family(PREFIX + "filesystem_fill_rate_bytes_per_second",
                  "How fast used bytes grow (negative: shrink), least-squares over the history window; "
                  "absent until there is enough history.")
    full = Family(PREFIX + "filesystem_full_in_seconds",
                  "Seconds until the available bytes are used up at the fill rate; absent when not filling.")
    for row in rows:
        labels = {"mount": row["mount"], "device": row.get("device", ""), "fstype": row.get("fstype", "")}
        size.add(row.get("size_bytes"), **labels)
        avail.add(row.get("avail_bytes"), **labels)
        used.add(row.get("used_bytes"), **labels)
        space = None
        if row.get("used_bytes") is not None and row.get("avail_bytes") is not None:
            space = row["used_bytes"] + row["avail_bytes"]
        use.add(_ratio(row.get("used_bytes"), space), **labels)
        inodes.add(_ratio(row.get("inodes_used"), row.get("inodes_total")), **labels)
        for name in _report.STATUSES:
            status.add(1 if row.get("status") == name else 0, status=name, **labels)
        forecast = forecasts.get(row["mount"])
        if forecast is None or forecast.rate_per_day is None:
            continue
        per_second = forecast.rate_per_day / _history.DAY
        rate.add(per_second, **labels)
        if per_second > 0 and row.get("avail_bytes") is not None:
            full.add(row["avail_bytes"] / per_second, **labels)
    return [size, avail, used, use, inodes, status, rate, full]


def host_metrics(hosts: Mapping[str, Mapping[str, Any]]) -> List[Family]:
    """Per watched host (the watcher's state: name or address -> status, address, rtt_ms): up and RTT."""
    up = Family(PREFIX + "host_up", "1 if the watched host answered ping in the last round, else 0.")
    rtt = Family(PREFIX + "host_rtt_seconds", "Round trip time of the last answer; absent while the host is down.")
    for key, host in hosts.items():
        labels = {"host": key, "address": host.get("address") or key}
        up.add(1 if host.get("status") == "up" else 0, **labels)
        ms = host.get("rtt_ms")
        rtt.add(None if ms is None or host.get("status") != "up" else ms / 1000.0, **labels)
    return [up, rtt]


def watcher_metrics(rows: Sequence[Mapping[str, Any]], forecasts: Sequence[_history.Forecast],
                    hosts: Mapping[str, Mapping[str, Any]], last_round: float, spooled: int,
                    checks: Mapping[str, bool]) -> List[Family]:
    """Everything one watcher round found, as metric families, with the fill rate of each filesystem."""
    by_mount = {f.mount: f for f in forecasts}
    last = Family(PREFIX + "watcher_last_round_timestamp_seconds", "When the watcher's last round ran (unix time).")
    last.add(last_round)
    ok = Family(PREFIX + "watcher_check_success", "1 if the check ran in the last round, 0 if it failed (see the log): "
                "disk, host, mail (an alert neither mailed nor spooled), metrics (the last write of this file).")
    for name, success in checks.items():
        ok.add(1 if success else 0, check=name)
    spool = Family(PREFIX + "mail_spooled_messages", "Mails waiting in the spool for the mail server to answer.")
    spool.add(spooled)
    return filesystem_metrics(rows, by_mount) + host_metrics(hosts) + [last, ok, spool]


def _write(path: str, text: str) -> None:
    """Into an existing directory only: a missing one is a mistake (a typo, an unmounted disk) to report."""
    directory = os.path.dirname(path)
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"the textfile directory {directory} does not exist (make it, "
                                "writable by the watcher's user, where node_exporter's "
                                "--collector.textfile.directory points)", directory) from None
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, f"the textfile directory {directory} is not a directory", directory)
    _files.write_atomic(path, text, 0o644)


def write_textfile(directory: str, families: Iterable[Family], name: str = TEXTFILE_NAME) -> str:
    """Render and rename into DIRECTORY/NAME (mode 0644, for node_exporter's user); the path written.

    The temp file beside it does not end in ``.prom``, so the collector
    never reads it. As root in a directory another user controls, the
    file is written by that user (``_privilege.as_owner``).
    """
    if not name.endswith(".prom") or "/" in name:
        raise MetricsError(f"the textfile collector reads only NAME.prom files, got {name!r}")
    path = os.path.join(directory, name)
    _privilege.as_owner(directory, _write, path, render(families))
    return path
