# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Count mode's numbers: per address sent, received, loss and round-trip statistics; loss classes as ranges.

PRIVATE to the sysops.fleet collection. Pure standard library.

With ``count`` probes per address a sweep says how healthy each path is,
as fping ``-C`` and SmokePing do: probes sent and answered, the loss in
percent, and the round-trip times' minimum, median, 90th percentile,
maximum and standard deviation. A large sweep's result carries the
addresses of each loss class as ranges (``_targets.compact``) instead of
one entry per address, and the spread of the hosts' loss and median RTT.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from . import _targets

# (name, above, up to): a loss in percent belongs to the first class with above < loss <= up to;
# "0" and "100" hold exactly 0 % and 100 % (never answered), "50-100" everything in between.
LOSS_CLASSES = (("0", -1.0, 0.0), ("0-1", 0.0, 1.0), ("1-5", 1.0, 5.0), ("5-20", 5.0, 20.0),
                ("20-50", 20.0, 50.0), ("50-100", 50.0, 99.999999), ("100", 99.999999, 100.0))


def median(ordered: Sequence[float]) -> float:
    """The median of sorted values (the mean of the middle two for an even count)."""
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def nearest_rank(ordered: Sequence[float], fraction: float) -> float:
    """The value at *fraction* of sorted values by the nearest rank: always a value that was measured."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def rtt_stats(rtts: Iterable[float]) -> Optional[Dict[str, float]]:
    """min, median, p90 (nearest rank), max and population standard deviation in ms; None without a reply."""
    ordered = sorted(rtts)
    if not ordered:
        return None
    mean = sum(ordered) / len(ordered)
    deviation = math.sqrt(sum((r - mean) ** 2 for r in ordered) / len(ordered))
    return {"min": round(ordered[0], 3), "median": round(median(ordered), 3),
            "p90": round(nearest_rank(ordered, 0.9), 3), "max": round(ordered[-1], 3),
            "stddev": round(deviation, 3)}


def host_stats(sent: int, rtts: Sequence[float], received: Optional[int] = None) -> Dict[str, Any]:
    """One address in count mode: ``sent``, ``received``, ``loss_pct`` and ``rtt_ms`` (``rtt_stats``)."""
    received = len(rtts) if received is None else received
    loss = 100.0 * (sent - received) / sent if sent else 100.0
    return {"sent": sent, "received": received, "loss_pct": round(loss, 3), "rtt_ms": rtt_stats(rtts)}


def loss_class(loss_pct: float) -> str:
    """The name of the class of ``LOSS_CLASSES`` that *loss_pct* falls in."""
    for name, above, up_to in LOSS_CLASSES:
        if above < loss_pct <= up_to:
            return name
    return LOSS_CLASSES[-1][0]


def loss_ranges(stats: Mapping[str, Mapping[str, Any]]) -> Dict[str, List[str]]:
    """Every loss class (all of them, empty or not) -> its addresses as ``targets`` entries (``_targets.compact``)."""
    members: Dict[str, List[str]] = {name: [] for name, _above, _up_to in LOSS_CLASSES}
    for address, entry in stats.items():
        members[loss_class(entry["loss_pct"])].append(address)
    return {name: _targets.compact(addresses) for name, addresses in members.items()}


def spread(values: Iterable[float]) -> Optional[Dict[str, float]]:
    """min, median, p90 (nearest rank) and max of a fleet's numbers; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return {"min": round(ordered[0], 3), "median": round(median(ordered), 3),
            "p90": round(nearest_rank(ordered, 0.9), 3), "max": round(ordered[-1], 3)}


def summary(stats: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """What count mode adds to a sweep's summary: probes sent and answered, overall loss, and the spread of
    the answering hosts' loss and median RTT."""
    sent = sum(s["sent"] for s in stats.values())
    received = sum(s["received"] for s in stats.values())
    answering = [s for s in stats.values() if s["received"]]
    return {"sent": sent, "received": received,
            "loss_pct": round(100.0 * (sent - received) / sent, 3) if sent else None,
            "host_loss_pct": spread(s["loss_pct"] for s in answering),
            "rtt_ms": spread(s["rtt_ms"]["median"] for s in answering)}
