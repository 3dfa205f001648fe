# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A robust trend: the Theil-Sen slope of a series and its 95 % interval, plain or day over day.

PRIVATE to the sysops.fleet collection. Pure standard library.

A disk's use is not a line: temporary files come and go every night, logs
grow all day and shrink at rotation, an upgrade adds gigabytes once. The
least-squares slope follows every such burst (netdata removed its fill-rate
alarms in 2021 because bursts made them cry wolf).

``theil_sen`` is the median of the slopes between every two samples:
bursts that cover less than about a third of the samples do not move it.
Within one day a log that grows until its nightly rotation still looks
like growth, so ``daily`` (Hirsch and Slack's seasonal Kendall slope)
compares only the same time of day on different days: the log at 18:00
today against the log at 18:00 yesterday. Its 95 % interval comes from the
ranks of Kendall's S (Sen, 1968), and it says whether the growth happened
on every day of the window (each day against the day before, the rates
within a factor of two): steady growth does, a one-off jump (an upgrade)
happened on one day only.
"""

from __future__ import annotations

import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

MAX_POINTS = 96  # 4,560 slopes: a few milliseconds; more points would not change the median
Z95 = 1.959964  # two-sided 95 % of the normal law
DAY = 86400.0
SLOT = 900.0  # the watcher's default sample_every: one value per 15 minutes of the day, per day
AGREE = 2.0  # the growth of each day (against the day before) may differ by this factor at most

Point = Tuple[float, float]  # (time, value)


class Trend(NamedTuple):
    """Slope (value per second), its 95 % interval, the line's value at the last time, and whether every day
    grew at about that rate (``daily`` only: ``theil_sen`` cannot tell, and says False)."""

    slope: float
    low: float
    high: float
    level: float
    points: int
    agree: bool = False


def thin(points: Sequence[Point], limit: int = MAX_POINTS) -> List[Point]:
    """At most *limit* points, evenly spread over the series, the first and the last always kept."""
    if len(points) <= limit:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _interval(slopes: List[float], variance: float) -> Tuple[float, float]:
    """The 95 % bounds among sorted *slopes*: ranks (N -/+ z sqrt(Var S)) / 2; infinite where too few."""
    spread = Z95 * math.sqrt(variance)
    below, above = (len(slopes) - spread) / 2.0, (len(slopes) + spread) / 2.0
    low = slopes[int(math.floor(below)) - 1] if below >= 1 else -math.inf
    high = slopes[min(len(slopes) - 1, int(math.ceil(above)))] if above < len(slopes) else math.inf
    return low, high


def theil_sen(points: Sequence[Point], limit: int = MAX_POINTS) -> Optional[Trend]:
    """The robust trend of *points* (sorted by time); None with fewer than two distinct times."""
    used = thin(points, limit)
    last = used[-1][0] if used else 0.0
    shifted = [(t - last, v) for t, v in used]  # times near zero: no precision lost on 1.7e9 seconds
    slopes = sorted((v2 - v1) / (t2 - t1) for i, (t1, v1) in enumerate(shifted)
                    for t2, v2 in shifted[i + 1:] if t2 != t1)
    if not slopes:
        return None
    n = len(shifted)
    slope = median(slopes)
    low, high = _interval(slopes, n * (n - 1) * (2 * n + 5) / 18.0)
    return Trend(slope, low, high, median([v - slope * t for t, v in shifted]), n)


def daily(points: Sequence[Point], now: float, slot: float = SLOT) -> Optional[Trend]:
    """The day-over-day trend of *points*: slopes between the same *slot* of the day on different days only.

    Slots count back from *now*, so samples that drift a little each day
    stay in step. None until some slot was seen on two days.
    """
    cells: Dict[Tuple[int, int], List[Point]] = {}
    for t, v in points:
        back = now - t
        cells.setdefault((int(back % DAY // slot), int(back // DAY)), []).append((t - now, v))
    slots: Dict[int, List[Tuple[int, float, float]]] = {}
    for (where, day), found in sorted(cells.items()):
        slots.setdefault(where, []).append((day, median([p[0] for p in found]), median([p[1] for p in found])))
    slopes: List[float] = []
    days: Dict[int, List[float]] = {}  # day k (back from now) -> slopes against day k + 1, slot by slot
    variance = 0.0
    for series in slots.values():
        n = len(series)
        variance += n * (n - 1) * (2 * n + 5) / 18.0
        for i, (day1, t1, v1) in enumerate(series):
            for day2, t2, v2 in series[i + 1:]:
                slope = (v2 - v1) / (t2 - t1) if t2 != t1 else 0.0
                slopes.append(slope)
                if day2 == day1 + 1:
                    days.setdefault(day1, []).append(slope)
    if not slopes:
        return None
    slopes.sort()
    slope = median(slopes)
    low, high = _interval(slopes, variance)
    grew = [sorted(s)[(len(s) - 1) // 2] for s in days.values()]  # the lower median: half and half is no growth
    agree = bool(grew) and min(grew) > 0 and max(grew) <= AGREE * min(grew)
    level = median([v - slope * (t - now) for t, v in points])
    return Trend(slope, low, high, level, len(points), agree)
