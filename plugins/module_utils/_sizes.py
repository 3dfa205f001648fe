# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sizes for people: the one formatter of byte and inode counts in the collection.

PRIVATE to the sysops.fleet collection. Pure standard library.

The disk report's table, its fill rates, the watcher's daily report and
the fleet report all print sizes through ``human``, so one number never
reads "1.2G" in one report and "1.3G" in another.
"""

from __future__ import annotations

import math
from typing import Optional, Union

UNITS = "KMGTPE"

Number = Union[int, float]


def human(value: Optional[Number], byte_unit: str = "") -> str:
    """*value* the way ``df -h`` prints it: powers of 1024, rounded up, one decimal below 10.

    Rounding up is df's choice and the safe one for space and for fill
    rates alike. Amounts below 1024 get *byte_unit* (``"B"`` for a rate,
    "100B/day"; df prints a bare "100"). Negative values keep their sign.
    """
    if value is None:
        return "-"
    if value < 0:
        return "-" + human(-value, byte_unit)
    if value < 1024:
        return f"{math.ceil(value)}{byte_unit}"
    amount, unit = float(value), -1
    while amount >= 1024 and unit < len(UNITS) - 1:
        amount, unit = amount / 1024, unit + 1
    if amount < 10:
        shown = -(-int(amount * 10 * 1000) // 1000) / 10  # ceil to one decimal, tolerant of float noise
        if shown < 10:
            return f"{shown:.1f}{UNITS[unit]}"
    whole = -(-int(amount * 1000) // 1000)
    if whole >= 1024 and unit < len(UNITS) - 1:
        return f"1.0{UNITS[unit + 1]}"
    return f"{whole}{UNITS[unit]}"
