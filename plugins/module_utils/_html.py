# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTML for reports read in mail clients: the page, tables, status colours, escaping.

PRIVATE to the sysops.fleet collection. Pure standard library.

The disk report, the fleet report and their sections (fill rates,
undelivered mail) are read in mail clients, which drop ``<style>``
blocks, external style sheets, scripts and web fonts, and some of which
lay a page out with a word processor's engine. What they all keep is an
inline ``style`` on each element and tables. So every element made here
carries its whole style, nothing is loaded from anywhere, and a status
is always a word as well as a colour (for a colour-blind reader, a client
that drops colours, a printout).

Host names, mount points, devices and error texts come from the hosts, so
they are data, never markup: callers pass plain values and every one is
escaped here. Markup made here is a ``Safe`` string, the one kind of
value that is not escaped again.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Sequence, TypeVar

from . import _text

T = TypeVar("T")

FONT = "font-family:Arial,Helvetica,sans-serif"
MONO = "font-family:Consolas,Menlo,'DejaVu Sans Mono',monospace"
INK = "#1f2328"
MUTED = "#57606a"
LINE = "#d0d7de"
HEAD = "#eaeef2"
ZEBRA = "#f6f8fa"


@dataclass(frozen=True)
class Status:
    """How one status looks: its word, its badge (colour and ink on it) and the tint of its rows."""

    label: str
    colour: str
    ink: str
    tint: str  # row background; "" for the quiet statuses, whose rows alternate white and grey


# Worst first: the order in which rows are sorted and statuses counted.
STATUSES = {
    "unreachable": Status("UNREACHABLE", "#455a64", "#ffffff", "#eceff1"),
    "failed": Status("FAILED", "#6a1b9a", "#ffffff", "#f3e5f5"),
    "crit": Status("CRIT", "#c62828", "#ffffff", "#ffebee"),
    "warn": Status("WARN", "#f9a825", INK, "#fff8e1"),
    "unknown": Status("NO REPORT", "#757575", "#ffffff", ""),
    "ok": Status("OK", "#2e7d32", "#ffffff", ""),
}
SEVERITY = tuple(STATUSES)


class Safe(str):
    """Markup made (and escaped) here: ``esc`` leaves it as it is."""


def esc(value: Any) -> Safe:
    """*value* as text in HTML, quotes included (it may end up in an attribute); ``Safe`` markup as is.

    Control characters (an escape sequence in a mount point, a NUL) are no
    text HTML may hold: text that holds one is shown as ``_text.printable``
    shows it, ``\\x1b``. Names the hosts escaped already (disk_report's
    mount points) are printable and kept as they are: escaped once.
    """
    if isinstance(value, Safe):
        return value
    text = "" if value is None else str(value)
    if not text.isprintable():
        text = _text.printable(text)
    return Safe(html.escape(text, quote=True))


def status_of(name: Optional[str]) -> Status:
    return STATUSES.get(name or "unknown", STATUSES["unknown"])


def worst_first(items: Iterable[T], status: Callable[[T], Optional[str]]) -> List[T]:
    """*items* sorted by the severity of their status, worst first, in their own order within one status."""
    return sorted(items, key=lambda item: SEVERITY.index(status(item) if status(item) in STATUSES else "unknown"))


def badge(status: Optional[str], text: Optional[str] = None) -> Safe:
    """The status as a word on its colour: ``CRIT`` in white on red."""
    look = status_of(status)
    return Safe(f'<span style="display:inline-block;padding:1px 6px;border-radius:3px;background:{look.colour};'
                f'color:{look.ink};font-weight:bold;font-size:11px;line-height:16px;white-space:nowrap">'
                f'{esc(look.label if text is None else text)}</span>')


def tally(statuses: Iterable[Optional[str]]) -> Safe:
    """One badge per status that occurs, worst first, with its count: ``2 CRIT`` ``1 WARN`` ``12 OK``."""
    found = [status if status in STATUSES else "unknown" for status in statuses]
    return Safe(" ".join(badge(name, f"{found.count(name)} {STATUSES[name].label}")
                         for name in SEVERITY if name in found))


def counted(noun: str, statuses: Iterable[Optional[str]], note: str = "") -> Safe:
    """The line at the top of a report: ``10 filesystems, worst first: 3 CRIT 1 WARN 6 OK`` (as badges)."""
    found = list(statuses)
    return paragraph(Safe(esc(f"{len(found)} {noun}{'' if len(found) == 1 else 's'}{note}: ") + tally(found)))


def usage_bar(pct: Optional[float], status: Optional[str], width: int = 120) -> Safe:
    """A usage bar as a one-row table (what every mail client draws); unknown usage is a full bar."""
    filled = 100.0 if pct is None else max(0.0, min(100.0, float(pct)))
    cell = "height:10px;padding:0;border:0;font-size:1px;line-height:1px"
    parts = []
    if filled > 0:
        parts.append(f'<td class="bar bar-{esc(status)}" style="width:{filled:.0f}%;{cell};'
                     f'background:{status_of(status).colour}"></td>')
    if filled < 100:
        parts.append(f'<td style="width:{100 - filled:.0f}%;{cell};background:#e0e0e0"></td>')
    return Safe(f'<table role="presentation" style="border-collapse:collapse;width:{width}px;'
                f'border:1px solid #9e9e9e"><tbody><tr>{"".join(parts)}</tr></tbody></table>')


@dataclass(frozen=True)
class Column:
    """A column of a report table: numbers are right-aligned, paths and devices in a fixed-width font.

    *min_width* (pixels) keeps a column of sentences (why a filesystem is
    crit) readable in a narrow window: the table scrolls sideways instead of
    squeezing it to a word per line.
    """

    title: str
    numeric: bool = False
    mono: bool = False
    min_width: int = 0


@dataclass(frozen=True)
class Row:
    """A row: its cells (plain values, or ``Safe`` markup), its status (the tint) and a tooltip.

    A row with fewer cells than the table has columns: its last cell spans the rest.
    """

    cells: Sequence[Any]
    status: Optional[str] = None
    title: str = ""


def _cell_style(column: Column, background: str, extra: str = "") -> str:
    """The whole style of one cell: padding, border, font, alignment, background (and *extra*)."""
    font = MONO if column.mono else FONT
    align = "text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums" if column.numeric \
        else "text-align:left"
    width = f";min-width:{column.min_width}px" if column.min_width else ""
    return (f"padding:4px 10px;border:1px solid {LINE};color:{INK};vertical-align:middle;{font};"
            f"font-size:{12 if column.mono else 13}px;"
            f"{align};background:{background}{width}{extra}")


def _row(columns: Sequence[Column], row: Row, index: int) -> str:
    """One ``tr``: tinted by its status (or white and grey by turns), a stripe in the status colour on the left."""
    look = STATUSES.get(row.status or "")
    background = (look.tint if look else "") or (ZEBRA if index % 2 else "#ffffff")
    stripe = f";border-left:4px solid {look.colour}" if look and look.tint else ""
    cells = []
    for i, (column, value) in enumerate(zip(columns, row.cells)):
        span = len(columns) - len(row.cells) + 1 if i == len(row.cells) - 1 else 1
        colspan = f' colspan="{span}"' if span > 1 else ""
        cells.append(f'<td{colspan} style="{_cell_style(column, background, "" if i else stripe)}">{esc(value)}</td>')
    status = f' data-status="{esc(row.status)}"' if row.status else ""
    title = f' title="{esc(row.title)}"' if row.title else ""
    return f"<tr{status}{title}>{''.join(cells)}</tr>"


def table(columns: Sequence[Column], rows: Sequence[Row], empty: str = "none") -> Safe:
    """A data table with a header row; a table without rows says *empty* in one plain cell across it."""
    head = "".join(f'<th scope="col" style="{_cell_style(Column("", c.numeric), HEAD, ";font-weight:bold")}">'
                   f'{esc(c.title)}</th>' for c in columns)
    if rows:
        body = [_row(columns, row, index) for index, row in enumerate(rows)]
    else:
        body = [_row([Column("")] * len(columns), Row([muted(empty)]), 0)]
    return Safe(f'<div style="overflow-x:auto"><table style="border-collapse:collapse;border:1px solid {LINE};'
                f'margin:0 0 6px 0"><thead><tr>{head}</tr></thead>\n<tbody>' + "\n".join(body)
                + "</tbody></table></div>\n")


def heading(text: Any, level: int = 2) -> Safe:
    size = {1: 20, 2: 16}.get(level, 14)
    rule = f";border-bottom:1px solid {LINE};padding-bottom:3px" if level == 2 else ""
    return Safe(f'<h{level} style="{FONT};font-size:{size}px;color:{INK};margin:20px 0 8px 0{rule}">'
                f'{esc(text)}</h{level}>\n')


def paragraph(text: Any, muted: bool = False) -> Safe:
    """A line of text (or ``Safe`` markup); *muted* for explanations and small print."""
    look = f"color:{MUTED};font-size:12px" if muted else f"color:{INK};font-size:13px"
    return Safe(f'<p style="{FONT};{look};margin:4px 0 8px 0;line-height:1.5">{esc(text)}</p>\n')


def muted(text: Any) -> Safe:
    """Text in a cell that says why there is no value (``no fill rate yet``), greyed and in italics."""
    return Safe(f'<span style="color:{MUTED};font-style:italic">{esc(text)}</span>')


def page(title: str, parts: Iterable[str]) -> str:
    """A whole HTML5 document; sections added later go in before ``</body>``."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title></head>\n"
            f"<body style=\"margin:0;padding:16px;background:#ffffff;color:{INK};{FONT};font-size:13px\">\n"
            + "".join(parts) + "</body></html>\n")
