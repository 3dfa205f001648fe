# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Numbers as a settings file writes them: ASCII digits, at most one decimal point, nothing else.

PRIVATE to the sysops.fleet collection. Pure standard library.

``int()`` and ``float()`` read more than an operator means: ``+5``,
``1_0``, Arabic-Indic digits, ``1e3``, ``inf``, ``nan``, and raise (or
take seconds) on thousands of digits. The watcher's settings, the sweep
inventory and the mail options read their numbers here instead.
"""

from __future__ import annotations

import re

from . import _text


def shown(raw: str) -> str:
    """A value from a settings file as a message quotes it: one printable line, a long one cut."""
    return repr(_text.printable(raw.strip(), 40))


def whole_number(raw: str, label: str, error: type = ValueError, digits: int = 18) -> int:
    """A whole number written in ASCII digits (``int()`` also takes ``+5``, ``1_0`` and Arabic-Indic digits, and
    raises on 4,300 of them); more than *digits* digits is refused as out of range before it is converted."""
    text = raw.strip()
    if not re.fullmatch(r"[0-9]+", text):
        raise error(f"{label} must be a whole number, got {shown(raw)} (the digits 0-9 only)")
    if len(text.lstrip("0")) > digits:
        raise error(f"{label} is out of range: {len(text)} digits, got {shown(raw)}")
    return int(text)


def decimal_number(raw: str, label: str, error: type = ValueError, digits: int = 18) -> float:
    """A number written as ASCII digits with at most one decimal point (``float()`` also takes ``+5``, ``1_0``,
    ``1e3``, ``inf``, ``nan`` and Arabic-Indic digits); more than *digits* digits before the point is refused as
    out of range. What a settings file's seconds, percentages and milliseconds are read with."""
    text = raw.strip()
    if not re.fullmatch(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", text):
        raise error(f"{label} must be a number, got {shown(raw)} (the digits 0-9 and one decimal point only)")
    if len(text.split(".")[0].lstrip("0")) > digits or len(text) > 2 * digits + 1:
        raise error(f"{label} is out of range: {len(text)} characters, got {shown(raw)}")
    return float(text)
