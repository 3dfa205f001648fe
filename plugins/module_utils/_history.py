# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Disk filling history: small samples of use over time, the fill rate, and when a disk is full.

PRIVATE to the sysops.fleet collection. Pure standard library.

The watcher records one sample per filesystem every ``sample_every``
seconds (not every check), keeps ``keep_days`` of them, and the daily
report turns them into "+1.2G/day, full in about 12 days". The rate is the
least-squares slope of used bytes over the last ``window`` seconds, so one
big temporary file does not dominate it the way a first-to-last difference
would.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from typing import Any, ContextManager, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _files, _html, _privilege, _sizes, _text

DAY = 86400.0
DEFAULT_SAMPLE_EVERY = 900.0
DEFAULT_KEEP_DAYS = 14.0
DEFAULT_WINDOW = 3 * DAY
MIN_SPAN = 600.0  # a rate from samples closer together than this is noise
LOCK_WAIT = 10.0

Sample = Tuple[float, int, int]  # (unix time, used bytes, available bytes)
History = Dict[str, List[Sample]]  # mount point -> samples, oldest first


def load(path: str) -> History:
    """The history file's samples; an empty history if it is missing or unreadable (it is only a cache)."""
    try:
        data = json.loads(_files.read_text(path))
    except (OSError, ValueError):
        return {}
    history: History = {}
    if not isinstance(data, dict):
        return history
    for mount, samples in data.get("filesystems", {}).items():
        try:
            history[mount] = [(float(s[0]), int(s[1]), int(s[2])) for s in samples]
        except (TypeError, ValueError, IndexError):
            continue
    return history


def save(path: str, history: History) -> None:
    """Write atomically, so a crash never leaves half a file.

    Mode 0644 (disk use is no secret), so a history first written by root
    (disk_report with become) can be read by the watcher's own user.
    """
    _files.write_atomic(path, json.dumps({"version": 1, "filesystems": history}, separators=(",", ":")), 0o644)


def locked(path: str, wait: float = LOCK_WAIT) -> ContextManager[None]:
    """Hold ``PATH.lock`` while reading, adding to and saving the history at *path*.

    The watcher daemon and the disk_report module may update one history
    file at the same moment; without the lock one of the two samples would
    be lost. Readers need no lock (saves are atomic renames). Mode 0644, so
    a lock file made by root still serves the watcher's own user.
    """
    return _files.locked(path + ".lock", wait, 0o644)


def update(path: str, filesystems: Sequence[Mapping[str, Any]], now: float,
           sample_every: float = DEFAULT_SAMPLE_EVERY, keep_days: float = DEFAULT_KEEP_DAYS,
           write: bool = True) -> Tuple[History, Optional[str]]:
    """Add this reading to the history file at *path* (under its lock) and return the history.

    With ``write=False`` (check mode) the sample is added in memory only.
    The history is a cache: when it cannot be saved the reading still
    counts for this run, and the second value says why it was not kept.
    Run as root on a history in another user's directory (the watcher's,
    from ``disk_report`` with become), the update is done by that user
    (``_privilege.as_owner``): root never writes, locks or reads through
    a path the daemon's user can change.
    """
    warning = None
    rows = [{k: fs.get(k) for k in ("mount", "used_bytes", "avail_bytes")} for fs in filesystems]
    if write:
        try:
            history = _privilege.as_owner(os.path.dirname(os.path.abspath(path)), _update_file, path, rows, now,
                                          sample_every, keep_days)
            return {mount: [tuple(s) for s in samples] for mount, samples in history.items()}, None
        except OSError as exc:
            warning = f"cannot keep the disk history in {path}: {exc.strerror or exc}"
    try:
        history = _privilege.as_owner(os.path.dirname(os.path.abspath(path)), load, path)
    except OSError as exc:
        history, warning = {}, warning or f"cannot read the disk history in {path}: {exc.strerror or exc}"
    history = {mount: [tuple(s) for s in samples] for mount, samples in history.items()}
    record(history, rows, now, sample_every, keep_days)
    return history, warning


def _update_file(path: str, rows: Sequence[Mapping[str, Any]], now: float, sample_every: float,
                 keep_days: float) -> History:
    """Lock, load, record and save: the part of ``update`` that touches the file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with locked(path):
        history = load(path)
        if record(history, rows, now, sample_every, keep_days):
            save(path, history)
    return history


def record(history: History, filesystems: Sequence[Mapping[str, Any]], now: float,
           sample_every: float = DEFAULT_SAMPLE_EVERY, keep_days: float = DEFAULT_KEEP_DAYS) -> bool:
    """Add a sample per filesystem if its last one is older than *sample_every*; drop old ones.

    *filesystems* are report rows (``mount``, ``used_bytes``, ``avail_bytes``).
    Returns whether the history changed (so the caller knows to save it).
    """
    changed = False
    horizon = now - keep_days * DAY
    for fs in filesystems:
        used, avail = fs.get("used_bytes"), fs.get("avail_bytes")
        mount = fs.get("mount")
        if mount is None or used is None or avail is None:
            continue
        samples = history.setdefault(mount, [])
        if not samples or now - samples[-1][0] >= sample_every or now < samples[-1][0]:
            samples.append((now, int(used), int(avail)))
            changed = True
    for mount in list(history):
        kept = [s for s in history[mount] if s[0] >= horizon]
        if len(kept) != len(history[mount]):
            changed = True
        if kept:
            history[mount] = kept
        else:
            del history[mount]
    return changed


def slope(samples: Sequence[Sample]) -> Optional[float]:
    """Least-squares slope of used bytes over time, in bytes per second; None if undefined."""
    if len(samples) < 2:
        return None
    count = float(len(samples))
    mean_t = sum(s[0] for s in samples) / count
    mean_u = sum(s[1] for s in samples) / count
    var = sum((s[0] - mean_t) ** 2 for s in samples)
    if var == 0:
        return None
    return sum((s[0] - mean_t) * (s[1] - mean_u) for s in samples) / var


@dataclass
class Forecast:
    """How fast one filesystem fills, and when it would be full at that rate."""

    mount: str
    rate_per_day: Optional[float]         # bytes/day; negative when it shrinks; None without enough history
    avail_bytes: int
    days_to_full: Optional[float] = None  # None when not filling (or unknown)
    full_at: Optional[float] = None       # unix time
    span_s: float = 0.0                   # how much history the rate is based on

    def as_dict(self) -> Dict[str, Any]:
        return {"mount": self.mount, "rate_per_day": self.rate_per_day, "avail_bytes": self.avail_bytes,
                "days_to_full": self.days_to_full, "full_at": self.full_at, "span_s": self.span_s}


def forecast(history: History, now: float, window: float = DEFAULT_WINDOW) -> List[Forecast]:
    """A forecast per filesystem in *history*, from the samples of the last *window* seconds."""
    result = []
    for mount in sorted(history):
        samples = [s for s in history[mount] if s[0] >= now - window] or history[mount][-1:]
        last = samples[-1]
        span = samples[-1][0] - samples[0][0]
        rate = slope(samples) if span >= MIN_SPAN else None
        item = Forecast(mount=mount, rate_per_day=None if rate is None else rate * DAY,
                        avail_bytes=last[2], span_s=span)
        if rate is not None and rate > 0:
            item.days_to_full = last[2] / rate / DAY
            item.full_at = last[0] + last[2] / rate
        result.append(item)
    return result


def _full_in(item: Forecast) -> Tuple[str, str]:
    """When a filling filesystem is full at its rate: ``("12 days", "2025-06-01")`` (hours under two days)."""
    days = item.days_to_full or 0.0
    soon = f"{days * 24:.0f} hours" if days < 2 else f"{days:.0f} days"
    return soon, datetime.datetime.fromtimestamp(item.full_at or 0).strftime("%Y-%m-%d")


def describe(item: Forecast) -> str:
    """One line of the report: ``/var: +1.2G/day, full in about 12 days (2025-06-01)``."""
    mount = _text.printable(item.mount)  # a mount point may hold a line break: one line in the report
    if item.rate_per_day is None:
        return f"{mount}: not enough history yet for a fill rate"
    if item.days_to_full is None:
        if item.rate_per_day == 0:
            return f"{mount}: steady"
        return f"{mount}: shrinking by {_sizes.human(-item.rate_per_day, 'B')}/day"
    soon, when = _full_in(item)
    return f"{mount}: +{_sizes.human(item.rate_per_day, 'B')}/day, full in about {soon} ({when}) at this rate"


def render_text(items: Sequence[Forecast]) -> str:
    if not items:
        return ""
    hours = max((i.span_s for i in items), default=0.0) / 3600
    lines = [f"Fill rate (from {hours:.1f} hours of history):"]
    lines += [f"  {describe(i)}" for i in items]
    return "\n".join(lines) + "\n"


def needs_history() -> str:
    """Why a filesystem has no fill rate yet, in words for the reports' readers."""
    return (f"a rate needs disk-use history spanning at least {MIN_SPAN / 60:.0f} minutes (history_file; "
            f"the watcher adds a sample every {DEFAULT_SAMPLE_EVERY / 60:.0f} minutes by default)")


HTML_COLUMNS = (_html.Column("Mounted on", mono=True), _html.Column("Growth per day", numeric=True),
                _html.Column("Full in", numeric=True), _html.Column("Full on", numeric=True),
                _html.Column("History", numeric=True))


def _span(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _html_row(item: Forecast) -> _html.Row:
    if item.rate_per_day is None:
        return _html.Row([item.mount, _html.muted("no fill rate yet"), "-", "-", _span(item.span_s)])
    growth = ("steady" if item.rate_per_day == 0 else
              ("+" if item.rate_per_day > 0 else "") + f"{_sizes.human(item.rate_per_day, 'B')}/day")
    if item.days_to_full is None:
        return _html.Row([item.mount, growth, _html.muted("not filling"), "-", _span(item.span_s)])
    soon, when = _full_in(item)
    return _html.Row([item.mount, growth, soon, when, _span(item.span_s)])


def render_html(items: Sequence[Forecast]) -> str:
    """The same section for the HTML part of the mail: a table, the soonest full first, and why a rate is missing."""
    if not items:
        return ""
    hours = max((i.span_s for i in items), default=0.0) / 3600
    ordered = sorted(items, key=lambda i: (i.days_to_full is None, i.rate_per_day is None, i.days_to_full or 0.0))
    parts = [_html.heading(f"Fill rate (from {hours:.1f} hours of history)"),
             _html.table(HTML_COLUMNS, [_html_row(i) for i in ordered])]
    waiting = sum(1 for i in items if i.rate_per_day is None)
    if waiting:
        parts.append(_html.paragraph(f"No fill rate yet for {waiting} of {len(items)}: {needs_history()}.", muted=True))
    if not any(i.days_to_full is not None for i in items) and waiting < len(items):
        parts.append(_html.paragraph("No filesystem is filling: every fill rate is steady or shrinking.", muted=True))
    return "".join(parts)
