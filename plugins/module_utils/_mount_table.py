# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mount table, read exactly as the kernel writes it: any name, its exact bytes, no line dropped in silence.

PRIVATE to the sysops.fleet collection. Pure standard library; Linux.

A mount point may hold any byte but NUL, and an ordinary user chooses
both the name and the source of the FUSE mounts they make (``fusermount
-o fsname=...``). The kernel (``show_mountinfo()`` and ``show_vfsmnt()``
in fs/proc_namespace.c) ends each line with a new line, separates the
fields by one space, and escapes only space, tab, new line and backslash
(``mangle()``: ``\\040``, ``\\011``, ``\\012``, ``\\134``); every other byte
is written as it is: a carriage return, a form feed, U+2028, bytes that
are not UTF-8, text that looks like a mount-table line of its own. So the
table is read as bytes and split only where the kernel splits: a name can
neither add a line nor hide one. Each field keeps its exact bytes (an
``os.fsdecode`` str, which gives the same bytes back to ``df`` and
``statvfs``); ``Mount.shown`` gives the escaped names a report shows. A
line that is no mount as the kernel writes one is kept as an UnreadLine
and reported (``MountTable.warnings``), never dropped in silence.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List

from ._text import printable

MOUNTINFO = "/proc/self/mountinfo"
MOUNTS = "/proc/self/mounts"


class MountTableError(ValueError):
    """No mount table can be read; nothing was probed."""


@dataclass(frozen=True)
class Mount:
    """One line of the mount table, each name as its exact bytes (``os.fsdecode``): for probing, never for showing."""

    device: str          # the source: /dev/sda1, server:/export, tmpfs
    fstype: str
    mount: str           # where it is mounted
    root: str = "/"      # the directory of the filesystem seen there ("/" unless a bind mount)
    dev: str = ""        # major:minor, the identity of the filesystem

    def shown(self) -> Dict[str, str]:
        """The names a report shows and keys by: escaped by ``_text.printable``, one line, collision-free."""
        return {"device": printable(self.device), "fstype": printable(self.fstype), "mount": printable(self.mount)}


@dataclass(frozen=True)
class UnreadLine:
    """A line of the mount table that is no mount as the kernel writes one: its number, why, and its bytes."""

    number: int
    why: str
    line: bytes


@dataclass
class MountTable:
    """A mount table as read: the mounts in mount order, and every line that could not be read as one."""

    path: str
    mounts: List[Mount] = field(default_factory=list)
    unread: List[UnreadLine] = field(default_factory=list)

    def warnings(self, named: int = 5) -> List[str]:
        """One warning per unread line (the first *named*, escaped and cut), then how many more there were."""
        out = [f"{self.path} line {u.number} is not a mount as the kernel writes one ({u.why}), so a filesystem "
               f"may be missing from the report: {printable(u.line, 300)}" for u in self.unread[:named]]
        if len(self.unread) > named:
            out.append(f"{self.path}: {len(self.unread) - named} more line(s) could not be read "
                       f"({len(self.unread)} in all), so filesystems may be missing from the report")
        return out


_OCTAL = re.compile(rb"\\([0-3][0-7][0-7])")


class _NotAMount(ValueError):
    """A mount-table line the kernel would not have written; the message says what is wrong."""


def unescape(field_bytes: bytes) -> bytes:
    r"""Undo the kernel's escapes in one mount-table field: ``\ooo`` (three octal digits) is one byte.

    ``mangle()`` writes space, tab, new line and backslash so (``\040``,
    ``\011``, ``\012``, ``\134``) and every other byte as it is. A
    backslash without three octal digits after it is kept as it is.
    """
    if b"\\" not in field_bytes:
        return field_bytes
    return _OCTAL.sub(lambda m: bytes((int(m.group(1), 8),)), field_bytes)


def _lines(data: bytes) -> List[bytes]:
    """The lines of a mount table: each ends at a new line, which the kernel never writes inside a field."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _mount_point(field_bytes: bytes) -> bytes:
    """The mount point of a line: an absolute path without NUL (anything else could not be probed safely)."""
    path = unescape(field_bytes)
    if not path.startswith(b"/"):
        raise _NotAMount("the mount point is not an absolute path")
    if b"\0" in path:
        raise _NotAMount("the mount point holds a NUL byte")
    return path


def _mountinfo_mount(line: bytes) -> Mount:
    """One line as ``show_mountinfo()`` writes it (proc(5)), fields separated by one space.

    ``ID PARENT MAJOR:MINOR ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTIONS``
    """
    fields = line.split(b" ")
    try:
        sep = fields.index(b"-", 6)
    except ValueError:
        raise _NotAMount("no ' - ' after the mount options") from None
    if len(fields) < sep + 4:
        raise _NotAMount("fewer than three fields after ' - '")
    major, colon, minor = fields[2].partition(b":")
    if not (fields[0].isdigit() and fields[1].isdigit() and major.isdigit() and colon and minor.isdigit()):
        raise _NotAMount("the mount IDs and MAJOR:MINOR are not numbers")
    fstype = unescape(fields[sep + 1])
    if not fstype:
        raise _NotAMount("no filesystem type")
    return Mount(device=os.fsdecode(unescape(fields[sep + 2])), fstype=os.fsdecode(fstype),
                 mount=os.fsdecode(_mount_point(fields[4])), root=os.fsdecode(unescape(fields[3])),
                 dev=fields[2].decode("ascii"))


def _mounts_mount(line: bytes) -> Mount:
    """One line as ``show_vfsmnt()`` writes it: ``SOURCE MOUNT-POINT FSTYPE OPTIONS 0 0``."""
    fields = line.split(b" ")
    if len(fields) < 6:
        raise _NotAMount("fewer than six fields")
    fstype = unescape(fields[2])
    if not fstype:
        raise _NotAMount("no filesystem type")
    return Mount(device=os.fsdecode(unescape(fields[0])), fstype=os.fsdecode(fstype),
                 mount=os.fsdecode(_mount_point(fields[1])))


def _parse(data: bytes, path: str, one: Callable[[bytes], Mount]) -> MountTable:
    """Every line a mount or an UnreadLine: nothing is dropped without a word."""
    table = MountTable(path)
    for number, line in enumerate(_lines(data), 1):
        try:
            table.mounts.append(one(line))
        except _NotAMount as exc:
            table.unread.append(UnreadLine(number, str(exc), line))
    return table


def parse_mountinfo(data: bytes, path: str = MOUNTINFO) -> MountTable:
    """The mounts of ``/proc/self/mountinfo`` bytes, in mount order (see proc(5))."""
    return _parse(data, path, _mountinfo_mount)


def parse_mounts(data: bytes, path: str = MOUNTS) -> MountTable:
    """The mounts of ``/proc/self/mounts`` bytes: the fallback, without device numbers."""
    return _parse(data, path, _mounts_mount)


def read_mounts(mountinfo: str = MOUNTINFO, mounts: str = MOUNTS) -> MountTable:
    """The mount table of this process, as bytes; reading it never touches a mounted filesystem."""
    for path, parse in ((mountinfo, parse_mountinfo), (mounts, parse_mounts)):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise MountTableError(f"cannot read the mount table {path}: {exc.strerror}") from exc
        return parse(data, path)
    raise MountTableError(f"cannot read the mount table: neither {mountinfo} nor {mounts} exists "
                    "(disk_report reads the Linux mount table)")
