# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Disk filling history: small samples of use over time, the fill rate, and when a disk is full.

PRIVATE to the sysops.fleet collection. Pure standard library.

The watcher records one sample per filesystem every ``sample_every``
seconds (not every check), keeps ``keep_days`` of them, and the daily
report turns them into "+1.2G/day, full in about 12 days (10-15 days)".
The rate is the Theil-Sen slope of used bytes over the last ``window``
seconds (``_trend``): nightly temporary files, log rotation, an upgrade's
one-off gigabytes or a tmpfs's bursts do not move it the way they move a
least-squares slope. A filesystem gets a date only when its growth is
steady, the 95 % interval of the rate above zero, and the date is counted
from the trend line's free space, not from the burst of the moment; the
interval is shown with it.

The history file belongs to the watcher's user, who can write anything in
it. So it is read as untrusted input, by its owner (``_privilege.as_owner``
when root asks), and bounded: at most ``MAX_BYTES`` are read, a sample
must be a time no later than now (``MAX_SKEW`` aside) and two byte counts
below 2**63, at most ``MAX_MOUNTS`` filesystems of at most
``MAX_SAMPLES`` samples each are kept (the newest); whatever else is
dropped, counted and warned about. What crosses back to root is only the
forecast of each filesystem (a few numbers each), checked again there.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import time
from dataclasses import dataclass
from typing import Any, ContextManager, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _files, _html, _privilege, _sizes, _text, _trend

DAY = 86400.0
DEFAULT_SAMPLE_EVERY = 900.0
DEFAULT_KEEP_DAYS = 14.0
DEFAULT_WINDOW = 3 * DAY
MIN_SPAN = 600.0  # a rate from samples closer together than this is noise
LOCK_WAIT = 10.0
MAX_BYTES = 4 << 20       # a history of 64 filesystems at the defaults is ~3.5 MiB; more is not ours
MAX_MOUNTS = 512
MAX_SAMPLES = 2048        # per filesystem: 21 days at the default 15 minutes; the newest are kept
MAX_SKEW = 300.0          # a sample may be this much in the future (clocks differ a little)
MAX_COUNT = 1 << 63       # bytes: anything larger is no filesystem's
MAX_NAME = 4096           # a mount point's length (PATH_MAX)
MAX_DAYS_TO_FULL = 36500.0  # "full in 100 years" and later is "not filling" in any report
OWNER_TIMEOUT = 60.0      # root waits this long for the history's owner to read and update it
_LONG_NUMBER = re.compile(rb"\d{40}")  # json.loads of a huge integer is slow before 3.11: refused unread

Sample = Tuple[float, int, int]  # (unix time, used bytes, available bytes)
History = Dict[str, List[Sample]]  # mount point -> samples, oldest first


def load(path: str, now: Optional[float] = None) -> History:
    """The history file's samples (``load_checked`` without the count of what was dropped)."""
    return load_checked(path, now)[0]


def load_checked(path: str, now: Optional[float] = None) -> Tuple[History, int]:
    """The valid samples of the history file, and how many entries were dropped as invalid.

    A missing, unreadable, oversized or unparsable file is an empty
    history (it is only a cache): 0 dropped when missing, 1 otherwise.
    """
    try:
        raw = _files.read_bytes(path, MAX_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return {}, 0
    except OSError:
        return {}, 1
    if _LONG_NUMBER.search(raw):
        return {}, 1
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError, MemoryError):
        return {}, 1
    filesystems = data.get("filesystems") if isinstance(data, dict) else None
    if not isinstance(filesystems, dict):
        return {}, 1
    return checked(filesystems, time.time() if now is None else now)


def checked(filesystems: Mapping[Any, Any], now: float) -> Tuple[History, int]:
    """Only what a history may hold (see the module docstring); the rest is counted as dropped."""
    history: History = {}
    dropped = 0
    for mount, samples in filesystems.items():
        if (not isinstance(mount, str) or not mount or len(mount) > MAX_NAME or len(history) >= MAX_MOUNTS
                or not isinstance(samples, list)):
            dropped += 1
            continue
        good = [sample for sample in (_sample(s, now) for s in samples[-4 * MAX_SAMPLES:]) if sample is not None]
        dropped += len(samples) - len(good)
        good.sort(key=lambda s: s[0])
        if good:
            history[mount] = good[-MAX_SAMPLES:]
    return history, dropped


def _sample(value: Any, now: float) -> Optional[Sample]:
    """(time, used, avail) if *value* is one: a finite time not after now (+MAX_SKEW), two counts in range."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        return None
    when, used, avail = value
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        return None
    when = float(when)
    if not (math.isfinite(when) and 0 <= when <= now + MAX_SKEW):
        return None
    counts = []
    for count in (used, avail):
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < MAX_COUNT:
            return None
        counts.append(count)
    return (when, counts[0], counts[1])


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
           window: float = DEFAULT_WINDOW, write: bool = True) -> Tuple[List["Forecast"], Optional[str]]:
    """Add this reading to the history file at *path* (under its lock); the forecast of every filesystem.

    With ``write=False`` (check mode) the sample is added in memory only.
    The history is a cache: when it cannot be saved the reading still
    counts for this run, and the second value says why it was not kept (or
    what was dropped from it as invalid). Run as root on a history in
    another user's directory (the watcher's, from ``disk_report`` with
    become), the work is done by that user (``_privilege.as_owner``, for at
    most ``OWNER_TIMEOUT`` seconds): root never writes, locks or reads
    through a path the daemon's user can change, and gets back only the
    forecasts, which it checks (``checked_forecasts``) before using them.
    """
    rows = [{k: fs.get(k) for k in ("mount", "used_bytes", "avail_bytes")} for fs in filesystems]
    directory = os.path.dirname(os.path.abspath(path))
    try:
        done = _privilege.as_owner(directory, _update_file, path, rows, now, sample_every, keep_days, window, write,
                                   timeout=OWNER_TIMEOUT, limit=1 << 20)
    except OSError as exc:
        warning = f"cannot {'keep' if write else 'read'} the disk history in {path}: {exc.strerror or exc}"
        history: History = {}
        record(history, rows, now, sample_every, keep_days)
        return forecast(history, now, window), warning
    forecasts, bad = checked_forecasts(done.get("forecasts") if isinstance(done, dict) else None)
    notes = []
    error = done.get("error") if isinstance(done, dict) else None
    if isinstance(error, str) and error:
        notes.append(f"cannot keep the disk history in {path}: {_text.words(error, 300)}")
    dropped = done.get("dropped") if isinstance(done, dict) else None
    if bad or not isinstance(dropped, int) or dropped < 0:
        notes.append(f"the history's owner sent back {bad or 'an'} invalid answer(s): ignored")
    elif dropped:
        notes.append(f"dropped {dropped} invalid entr{'y' if dropped == 1 else 'ies'} of the disk history in "
                     f"{path} (times in the future, numbers out of range, more than {MAX_BYTES} bytes, "
                     f"or not a history at all)")
    return forecasts, "; ".join(notes) or None


def _update_file(path: str, rows: Sequence[Mapping[str, Any]], now: float, sample_every: float,
                 keep_days: float, window: float, write: bool) -> Dict[str, Any]:
    """Lock, load, record, save (*write*) and forecast: the part of ``update`` its owner does."""
    error = ""
    if write:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with locked(path):
                history, dropped = load_checked(path, now)
                if record(history, rows, now, sample_every, keep_days) or dropped:
                    save(path, history)
        except OSError as exc:
            error = exc.strerror or str(exc)
            write = False
    if not write:
        history, dropped = load_checked(path, now)
        record(history, rows, now, sample_every, keep_days)
    return {"forecasts": [f.as_dict() for f in forecast(history, now, window)], "dropped": dropped, "error": error}


def checked_forecasts(value: Any) -> Tuple[List["Forecast"], int]:
    """The forecasts in an answer from the history's owner that are well formed; and how many were not."""
    if not isinstance(value, list):
        return [], 1
    good: List[Forecast] = []
    for item in value[:MAX_MOUNTS]:
        made = _forecast_from(item)
        if made is not None:
            good.append(made)
    return good, len(value) - len(good)


def _finite(value: Any, low: float, high: float, none: bool = False) -> bool:
    if value is None:
        return none
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and low <= value <= high)


def _forecast_from(item: Any) -> Optional["Forecast"]:
    """A Forecast from an answer of the history's owner, or None if any field is not what a forecast holds."""
    if not isinstance(item, dict):
        return None
    mount, rate, avail = item.get("mount"), item.get("rate_per_day"), item.get("avail_bytes")
    days, full_at, span = item.get("days_to_full"), item.get("full_at"), item.get("span_s")
    rates = (item.get("rate_low_per_day"), item.get("rate_high_per_day"))
    steady = item.get("steady", False)
    days_range = (item.get("days_to_full_low"), item.get("days_to_full_high"))
    if (not isinstance(mount, str) or not mount or len(mount) > MAX_NAME
            or not all(_finite(r, -MAX_COUNT * 1.0, MAX_COUNT * 1.0, none=True) for r in (rate,) + rates)
            or isinstance(avail, bool) or not isinstance(avail, int) or not 0 <= avail < MAX_COUNT
            or not all(_finite(d, 0.0, MAX_DAYS_TO_FULL, none=True) for d in (days,) + days_range)
            or not _finite(full_at, 0.0, 253402300799.0, none=True)  # up to the year 9999
            or not _finite(span, 0.0, 400 * DAY)
            or not _ordered(rates[0], rate, rates[1]) or not _ordered(days_range[0], days, days_range[1])
            or not isinstance(steady, bool) or (days is not None and not steady)):
        return None
    return Forecast(mount=mount, rate_per_day=_float(rate), avail_bytes=avail, days_to_full=_float(days),
                    full_at=_float(full_at), span_s=float(span), rate_low_per_day=_float(rates[0]),
                    rate_high_per_day=_float(rates[1]), days_to_full_low=_float(days_range[0]),
                    days_to_full_high=_float(days_range[1]), steady=steady)


def _float(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _ordered(low: Any, middle: Any, high: Any) -> bool:
    """An interval's bounds around its value, where all are given (None: that bound is not known)."""
    known = [v for v in (low, middle, high) if v is not None]
    return all(a <= b for a, b in zip(known, known[1:]))


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
        if len(samples) > MAX_SAMPLES:
            del samples[:len(samples) - MAX_SAMPLES]
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
    days_to_full: Optional[float] = None  # None when not steadily filling (or unknown)
    full_at: Optional[float] = None       # unix time
    span_s: float = 0.0                   # how much history the rate is based on
    rate_low_per_day: Optional[float] = None   # the rate's 95 % interval; None where there are too few samples
    rate_high_per_day: Optional[float] = None
    days_to_full_low: Optional[float] = None   # the soonest and latest full, from that interval
    days_to_full_high: Optional[float] = None
    steady: bool = False                       # grows for sure, and on every day: only then a date

    def as_dict(self) -> Dict[str, Any]:
        return {"mount": self.mount, "rate_per_day": self.rate_per_day, "avail_bytes": self.avail_bytes,
                "days_to_full": self.days_to_full, "full_at": self.full_at, "span_s": self.span_s,
                "rate_low_per_day": self.rate_low_per_day, "rate_high_per_day": self.rate_high_per_day,
                "days_to_full_low": self.days_to_full_low, "days_to_full_high": self.days_to_full_high,
                "steady": self.steady}


def forecast(history: History, now: float, window: float = DEFAULT_WINDOW) -> List[Forecast]:
    """A forecast per filesystem in *history*, from the samples of the last *window* seconds (``_trend``).

    The rate is the day-over-day Theil-Sen slope once some time of day was
    seen on two days, the plain one before (a rate, never a date: within
    one day a log growing until its rotation looks like growth).
    """
    result = []
    for mount in sorted(history):
        samples = [s for s in history[mount] if s[0] >= now - window] or history[mount][-1:]
        last = samples[-1]
        span = samples[-1][0] - samples[0][0]
        item = Forecast(mount=mount, rate_per_day=None, avail_bytes=last[2], span_s=span)
        points = [(s[0], float(s[1])) for s in samples]
        trend = (_trend.daily(points, last[0]) or _trend.theil_sen(points)) if span >= MIN_SPAN else None
        if trend is not None:
            item.rate_per_day = trend.slope * DAY
            item.rate_low_per_day = trend.low * DAY if math.isfinite(trend.low) else None
            item.rate_high_per_day = trend.high * DAY if math.isfinite(trend.high) else None
            item.steady = bool(trend.agree and trend.slope > 0 and trend.low > 0 and math.isfinite(trend.high))
            _date(item, trend, last)
        result.append(item)
    return result


def _date(item: Forecast, trend: _trend.Trend, last: Sample) -> None:
    """When a steadily filling filesystem is full: the trend line's free space over the rate (and its interval).

    Only a day-over-day trend (``_trend.daily``) whose 95 % interval is
    above zero and whose one-day and two-day rates agree gets a date; and
    from the trend line's free space, not this sample's: a temporary file
    that fills the disk for an hour moves no date.
    """
    if not item.steady:
        return
    capacity = float(last[1] + last[2])
    avail = min(capacity, max(0.0, capacity - trend.level))
    days = avail / trend.slope / DAY
    if days > MAX_DAYS_TO_FULL:
        return
    item.days_to_full = days
    item.full_at = last[0] + days * DAY
    item.days_to_full_low = avail / trend.high / DAY
    item.days_to_full_high = min(MAX_DAYS_TO_FULL, avail / trend.low / DAY)


def _full_in(item: Forecast) -> Tuple[str, str]:
    """When a filling filesystem is full at its rate: ``("12 days (10-15)", "2025-06-01")`` (hours under two days)."""
    days = item.days_to_full or 0.0
    low, high = item.days_to_full_low, item.days_to_full_high
    if days < 2:
        soon = f"{days * 24:.0f} hours"
        spread = f" ({low * 24:.0f}-{high * 24:.0f} hours)" if low is not None and high is not None and high < 2 else ""
    else:
        soon = f"{days:.0f} days"
        spread = f" ({low:.0f}-{high:.0f} days)" if low is not None and high is not None else ""
    return soon + spread, datetime.datetime.fromtimestamp(item.full_at or 0).strftime("%Y-%m-%d")


def _rate_range(item: Forecast) -> str:
    """The rate's 95 % interval, ``1.0G-1.4G/day``; '' when a bound is unknown (too few samples)."""
    if item.rate_low_per_day is None or item.rate_high_per_day is None:
        return ""
    return f"{_sizes.human(item.rate_low_per_day, 'B')} to {_sizes.human(item.rate_high_per_day, 'B')}/day"


def _no_date(item: Forecast) -> str:
    """Why a growing filesystem gets no date, in words."""
    if item.span_s < DAY or item.rate_low_per_day is None:
        return "no date before the same times of day were seen on two days"
    return "not steadily (bursts, or growth on some days only): no date"


def describe(item: Forecast) -> str:
    """One line of the report: ``/var: +1.2G/day (1.0G to 1.4G/day), full in about 12 days (10-15 days) (...)``."""
    if item.rate_per_day is None:
        return f"{item.mount}: not enough history yet for a fill rate"
    spread = _rate_range(item)
    growth = f"+{_sizes.human(item.rate_per_day, 'B')}/day" + (f" ({spread})" if spread else "")
    if item.days_to_full is None:
        if item.rate_per_day == 0:
            return f"{item.mount}: steady"
        if item.rate_per_day > 0 and item.steady:
            return f"{item.mount}: {growth}, not full within 100 years at this rate"
        if item.rate_per_day > 0:
            return f"{item.mount}: {growth}, {_no_date(item)}"
        return f"{item.mount}: shrinking by {_sizes.human(-item.rate_per_day, 'B')}/day"
    soon, when = _full_in(item)
    return f"{item.mount}: {growth}, full in about {soon} ({when}) at this rate"


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
    if _rate_range(item):
        growth += f" ({_rate_range(item)})"
    if item.days_to_full is None:
        idle = ("not within 100 years" if item.steady else _no_date(item)) if item.rate_per_day > 0 \
            else "not filling"
        return _html.Row([item.mount, growth, _html.muted(idle), "-", _span(item.span_s)])
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
