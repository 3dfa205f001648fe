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

import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, NamedTuple

from ._text import printable

MOUNTINFO = "/proc/self/mountinfo"
MOUNTS = "/proc/self/mounts"
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()  # as os.fsdecode


class MountTableError(ValueError):
    """No mount table can be read; nothing was probed."""


class Mount(NamedTuple):
    """One line of the mount table, each name as its exact bytes (``os.fsdecode``): for probing, never for showing.

    A NamedTuple: a container host's table has thousands of lines, read on every report.
    """

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
# show_mountinfo(): ID PARENT MAJOR:MINOR ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTIONS,
# one space between fields; the optional fields end at the first field that is "-" (proc(5)).
_MOUNTINFO_LINE = re.compile(r"[0-9]+ [0-9]+ ([0-9]+:[0-9]+) ([^ ]*) (/[^ ]*) [^ ]*(?: (?!-(?: |$))[^ ]*)*"
                             r" - ([^ ]+) ([^ ]*) .*", re.DOTALL)


class _NotAMount(ValueError):
    """A mount-table line the kernel would not have written; the message says what is wrong."""


def _byte(match: "re.Match[bytes]") -> bytes:
    """One ``\\ooo`` escape as the byte it stands for."""
    return bytes((int(match.group(1), 8),))


def _unescaped(field_text: str) -> str:
    r"""One field with the kernel's escapes undone on its bytes (``mangle()``: ``\040``, ``\011``, ``\012``, ``\134``).

    Every other byte is written as it is; a backslash without three octal
    digits after it is kept as it is. Undone on bytes, not characters: an
    escaped byte may be half of a UTF-8 character, or not UTF-8 at all.
    """
    if "\\" not in field_text:
        return field_text
    return _OCTAL.sub(_byte, field_text.encode(_FS_ENCODING, _FS_ERRORS)).decode(_FS_ENCODING, _FS_ERRORS)


def _lines(data: bytes) -> List[str]:
    """The lines of a mount table, decoded as ``os.fsdecode`` does (each byte kept: ``fsencode`` gives it back).

    Decoded once, then split at new lines only (never ``splitlines``): a
    UTF-8 character never holds a new line or a space byte, and the
    kernel writes neither inside a field, so the lines and fields are the
    kernel's.
    """
    lines = data.decode(_FS_ENCODING, _FS_ERRORS).split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _mount_point(field_text: str) -> str:
    """The mount point of a line: an absolute path without NUL (anything else could not be probed safely)."""
    path = _unescaped(field_text)
    if not path.startswith("/"):
        raise _NotAMount("the mount point is not an absolute path")
    if "\0" in path:
        raise _NotAMount("the mount point holds a NUL byte")
    return path


def _mountinfo_mount(line: str) -> Mount:
    """One line as ``show_mountinfo()`` writes it (proc(5)): one regular expression, then only the fields we use."""
    match = _MOUNTINFO_LINE.fullmatch(line)
    if match is None:
        raise _NotAMount(_mountinfo_flaw(line))
    dev, root, mount_point, fstype, source = match.groups()
    if "\\" in line:  # an escape somewhere (rare): undo it in each field
        root, fstype, source = _unescaped(root), _unescaped(fstype), _unescaped(source)
    return Mount(source, fstype, _mount_point(mount_point), root, dev)


def _mountinfo_flaw(line: str) -> str:
    """Why *line* is no mountinfo line: the first rule of the kernel's format it breaks, for the warning."""
    fields = line.split(" ")
    if "-" not in fields[6:]:
        return "no ' - ' after the mount options"
    sep = fields.index("-", 6)
    if len(fields) < sep + 4:
        return "fewer than three fields after ' - '"
    if not re.fullmatch(r"[0-9]+ [0-9]+ [0-9]+:[0-9]+", " ".join(fields[:3])):
        return "the mount IDs and MAJOR:MINOR are not numbers"
    if not fields[4].startswith("/"):
        return "the mount point is not an absolute path"
    if not fields[sep + 1]:
        return "no filesystem type"
    return "not in the kernel's mountinfo format"


def _mounts_mount(line: str) -> Mount:
    """One line as ``show_vfsmnt()`` writes it: ``SOURCE MOUNT-POINT FSTYPE OPTIONS 0 0``."""
    fields = line.split(" ")
    if len(fields) < 6:
        raise _NotAMount("fewer than six fields")
    if not fields[2]:
        raise _NotAMount("no filesystem type")
    return Mount(_unescaped(fields[0]), _unescaped(fields[2]), _mount_point(fields[1]))


def _parse(data: bytes, path: str, one: Callable[[str], Mount]) -> MountTable:
    """Every line a mount or an UnreadLine: nothing is dropped without a word."""
    table = MountTable(path)
    mounts, unread = table.mounts, table.unread
    for number, line in enumerate(_lines(data), 1):
        try:
            mounts.append(one(line))
        except _NotAMount as exc:
            unread.append(UnreadLine(number, str(exc), line.encode(_FS_ENCODING, _FS_ERRORS)))
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
