# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Outside text made safe to show: one printable line, nothing a terminal or a reader mistakes for more.

PRIVATE to the sysops.fleet collection. Pure standard library.

Reports print names and reasons that come from outside: mount points (any
bytes but NUL and ``/``), host names, a server's answer, a file name or a
subject found in a spool another user can write. Printed as they are, a
line break in one adds a line of its own to the report, and an escape
sequence repaints the reader's terminal. ``printable`` is the one place
that turns such text into a single line of printable characters:

* every character Python does not call printable (controls, line and
  paragraph separators, format characters, every blank but the ASCII
  space) is written as an escape, ``\\n``, ``\\r``, ``\\t``, ``\\x1b``,
  ``\\u2028``;
* a byte that was not UTF-8 (kept by ``os.fsdecode`` as a lone surrogate)
  is written as the byte, ``\\xff``, and an unprintable character above
  ASCII by its code point, ``\\u0085``, so the two never look alike;
* a backslash is doubled, so the escaped form names exactly one original;
* a space at either end (``data `` beside ``data``) is written ``\\x20``,
  and in text not in Unicode's composed form (NFC) every combining mark by
  its code point (``cafe\\u0301``, the decomposed ``café``), so two names
  that differ only there do not look alike (composed text, the usual form,
  keeps its marks: Hindi or Vietnamese names stay readable).

Two different names never print the same, and differences a reader cannot
see are escaped, with one exception no escape can cover short of hiding
every non-ASCII letter: letters of different scripts that look alike (a
Cyrillic ``а`` beside a Latin ``a``).

``printable`` is idempotent only on text that needs no escape; escape once,
where outside text enters a report.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Union

ELLIPSIS = "\u2026"
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:  # ASCII: the same whether it came as a byte or as a character
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unseen(char: str, index: int, last: int, composed: bool) -> bool:
    """A printable character a reader cannot tell is there: a space at either end, a mark of uncomposed text."""
    if char == " ":
        return index in (0, last)
    return not composed and unicodedata.combining(char) > 0


def printable(value: Union[str, bytes], limit: int = 0) -> str:
    """*value* as one line of printable text (see the module docstring); cut to *limit* characters if > 0.

    Bytes are decoded as the file system does (``os.fsdecode``), so a path
    read from the kernel shows every byte it holds.
    """
    text = os.fsdecode(value) if isinstance(value, bytes) else str(value)
    composed = text.isascii() or unicodedata.is_normalized("NFC", text)
    if not (text.isprintable() and "\\" not in text and composed and text[:1] != " " and text[-1:] != " "):
        last = len(text) - 1
        text = "".join(_escape(c) if not c.isprintable() or c == "\\" or _unseen(c, i, last, composed) else c
                       for i, c in enumerate(text))
    if limit > 0 and len(text) > limit:
        return text[:max(0, limit - 1)] + ELLIPSIS
    return text


def columns(text: str) -> int:
    """The terminal columns printable *text* takes: a wide or fullwidth character (CJK) two, a combining mark none.

    ``len`` counts characters, so a column padded by it drifts by one per
    CJK character (``東京-web1`` is 7 characters, 9 columns wide).
    """
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) or unicodedata.category(c) == "Me"
               else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def words(value: str, limit: int = 0) -> str:
    """A message from outside (a server's answer, an error text) as one line: blanks and breaks become one space.

    Unlike ``printable`` this is not meant to name something exactly: a
    multi-line answer reads best with its lines joined. Other unprintable
    characters are escaped as ``printable`` does.
    """
    return printable(" ".join(str(value).split()), limit)


def relayed(data: bytes) -> str:
    """Bytes another user's process wrote, for root to pass on to its own caller: lines kept, nothing else.

    Line breaks and tabs stay (it is that process's output: a status
    line, JSON); every other control character, every unprintable
    character and every byte that is not UTF-8 is escaped as ``printable``
    does, so nothing it writes can move the cursor, repaint a terminal or
    hide text. Backslashes are left alone, so JSON stays JSON.
    """
    text = data.decode("utf-8", "surrogateescape")
    if text.isprintable():
        return text
    return "".join(c if c in "\n\t" or (c.isprintable() or c == " ") else _escape(c) for c in text)
