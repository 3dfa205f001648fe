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
TYPES = ("gauge", "counter", "histogram")
# Upper bounds (seconds) of the watched hosts' round-trip histogram: a LAN's tenths of a millisecond to a
# satellite link's seconds (a reply later than the sweep's timeout, at most 60 s, is a lost probe).
RTT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
               10.0, 60.0)
_SUFFIX_ORDER = {"": 0, "_bucket": 0, "_sum": 1, "_count": 2}

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
    suffixed: List[Tuple[str, Labels, float]] = field(default_factory=list)  # a histogram's _bucket, _sum, _count

    def add(self, value: Optional[float], **labels: Any) -> None:
        """A sample, unless the value is unknown: a gap is better than a made-up number."""
        if value is not None:
            self.samples.append(({k: str(v) for k, v in labels.items()}, value))

    def add_histogram(self, buckets: Sequence[float], counts: Sequence[float], total: float, **labels: Any) -> None:
        """One histogram: cumulative *counts* of observations at most each of *buckets* (then +Inf), their sum."""
        text = {k: str(v) for k, v in labels.items()}
        for bound, count in zip(list(buckets) + [math.inf], counts):  # le as Prometheus' clients write it: 1, 0.25
            self.suffixed.append(("_bucket", dict(text, le="+Inf" if math.isinf(bound) else format(bound, "g")), count))
        self.suffixed.append(("_sum", text, total))
        self.suffixed.append(("_count", text, counts[-1] if counts else 0))

    def rows(self) -> List[Tuple[str, Labels, float]]:
        """Every sample as (name suffix, labels, value), a histogram's grouped by label set, buckets in order."""
        found = [("", labels, value) for labels, value in self.samples] + list(self.suffixed)

        def order(row: Tuple[str, Labels, float]):
            suffix, labels, _value = row
            bound = float(labels["le"].replace("+Inf", "inf")) if "le" in labels else 0.0
            return (sorted((k, v) for k, v in labels.items() if k != "le"), _SUFFIX_ORDER.get(suffix, 3), bound)
        return sorted(found, key=order)


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
        if not family.samples and not family.suffixed:
            continue  # nothing known (no fill rate yet): no HELP either, the metric is simply absent
        if not _NAME.match(family.name) or family.name in seen:
            raise MetricsError(f"bad or repeated metric name {family.name!r}")
        if family.kind not in TYPES:
            raise MetricsError(f"{family.name}: type {family.kind!r} is not one of {', '.join(TYPES)}")
        seen.add(family.name)
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        label_sets = set()
        for suffix, labels, value in family.rows():
            key = tuple(sorted(labels.items()))
            if (suffix, key) in label_sets:
                raise MetricsError(f"{family.name}: two samples with the labels {dict(key)}")
            label_sets.add((suffix, key))
            for name in labels:
                if not _LABEL.match(name) or name.startswith("__"):
                    raise MetricsError(f"{family.name}: bad label name {name!r}")
            text = ",".join(f'{k}="{escape_label(v)}"' for k, v in key)
            lines.append(f"{family.name}{suffix}{{{text}}} {format_value(value)}" if text
                         else f"{family.name}{suffix} {format_value(value)}")
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
                  "How fast used bytes grow (negative: shrink), the Theil-Sen slope over the history window; "
                  "absent until there is enough history.")
    full = Family(PREFIX + "filesystem_full_in_seconds",
                  "Seconds until the filesystem is full at its fill rate (from the trend line's free space); absent "
                  "unless it fills steadily (the rate's 95 % interval above zero).")
    soonest = Family(PREFIX + "filesystem_full_in_low_seconds",
                     "The soonest it may be full: full_in_seconds at the high end of the rate's 95 % interval.")
    latest = Family(PREFIX + "filesystem_full_in_high_seconds",
                    "The latest it may be full: full_in_seconds at the low end of the rate's 95 % interval.")
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
        rate.add(forecast.rate_per_day / _history.DAY, **labels)
        for family, days in ((full, forecast.days_to_full), (soonest, forecast.days_to_full_low),
                             (latest, forecast.days_to_full_high)):
            family.add(None if days is None else days * _history.DAY, **labels)
    return [size, avail, used, use, inodes, status, rate, full, soonest, latest]


def host_metrics(hosts: Mapping[str, Mapping[str, Any]]) -> List[Family]:
    """Per watched host (the watcher's state: name or address -> status, address, round numbers, totals):
    up, alerted status, RTT, loss over the alert window, probes sent and answered, and a round-trip histogram."""
    up = Family(PREFIX + "host_up", "1 if the watched host answered ping in the last round, else 0.")
    status = Family(PREFIX + "host_status", "1 for the watched host's alerted status (up, warn, crit, down: after the "
                    "watcher's K of N rounds and clear after M), 0 for the others.")
    rtt = Family(PREFIX + "host_rtt_seconds", "Round trip time of the last answer (with count > 1, the median of the "
                 "last round's); absent while the host is down.")
    loss = Family(PREFIX + "host_loss_ratio", "Share of the probes lost over the watcher's alert window (the last "
                  "window rounds), 0-1.")
    sent = Family(PREFIX + "host_probes_sent_total", "Echo requests sent to the watched host.", "counter")
    received = Family(PREFIX + "host_probes_received_total",
                      "Echo requests the watched host answered within the timeout.", "counter")
    histogram = Family(PREFIX + "host_probe_rtt_seconds", "Round trip times of the answered probes.", "histogram")
    for key, host in hosts.items():
        labels = {"host": key, "address": host.get("address") or key}
        answered = host.get("level", host.get("status")) != "down"  # level: this round; status: what was alerted
        up.add(1 if answered else 0, **labels)
        for name in ("up", "warn", "crit", "down"):
            status.add(1 if host.get("status") == name else 0, status=name, **labels)
        ms = host.get("rtt_ms")
        rtt.add(None if ms is None or not answered else ms / 1000.0, **labels)
        loss.add(None if host.get("loss_pct") is None else host["loss_pct"] / 100.0, **labels)
        totals = host.get("probes")
        if isinstance(totals, Mapping):
            sent.add(totals["sent"], **labels)
            received.add(totals["received"], **labels)
            histogram.add_histogram(RTT_BUCKETS, totals["rtt_buckets"], totals["rtt_sum_s"], **labels)
    return [up, status, rtt, loss, sent, received, histogram]


def _totals(old: Mapping[str, Any]) -> Dict[str, Any]:
    """A host's running totals from the last state, or zeros: counts that are whole, finite, and cumulative."""
    zero = {"sent": 0, "received": 0, "rtt_buckets": [0] * (len(RTT_BUCKETS) + 1), "rtt_sum_s": 0.0}
    found = old.get("probes")
    if not isinstance(found, Mapping):
        return zero
    numbers = [found.get("sent"), found.get("received"), found.get("rtt_sum_s")]
    buckets = found.get("rtt_buckets")
    if not isinstance(buckets, list) or len(buckets) != len(RTT_BUCKETS) + 1:
        return zero
    for value in numbers + buckets:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2 ** 53:
            return zero
    if any(a > b for a, b in zip(buckets, buckets[1:])) or found["received"] > found["sent"] \
            or buckets[-1] > found["received"]:
        return zero
    return {"sent": int(found["sent"]), "received": int(found["received"]), "rtt_buckets": [int(b) for b in buckets],
            "rtt_sum_s": float(found["rtt_sum_s"])}


def count_round(state: Dict[str, Any], old: Mapping[str, Any], entry: Mapping[str, Any]) -> None:
    """Add one round's probes and round trips (a sweep's host entry, with ``rtts_ms``) to the host's running totals
    in *state* (``probes``), for the counters and the histogram. With one probe a round, a round counts one."""
    totals = _totals(old)
    rtts = [r / 1000.0 for r in entry.get("rtts_ms", [])]
    if not rtts and entry.get("rtt_ms") is not None and "sent" not in entry:
        rtts = [entry["rtt_ms"] / 1000.0]
    totals["sent"] += int(entry.get("sent", 1))
    totals["received"] += int(entry.get("received", 1 if entry.get("alive") else 0))
    for index, bound in enumerate(list(RTT_BUCKETS) + [math.inf]):
        totals["rtt_buckets"][index] += sum(1 for r in rtts if r <= bound)
    totals["rtt_sum_s"] = round(totals["rtt_sum_s"] + sum(rtts), 9)
    state["probes"] = totals


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
