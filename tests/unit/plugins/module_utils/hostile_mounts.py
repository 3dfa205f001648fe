# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile mount point names, and a program that mounts them where only its child sees them.

    hostile_mounts.py --dir DIR [--fuse] -- COMMAND [ARG...]

``NAMES`` is the table: a mount point name (bytes) that broke or could
break a mount-table reader, and the name a report must show for it
(``_text.printable``). ``plan(DIR)`` adds the names that depend on where
they are made: mount-table lines forged inside a name (one naming ``/``,
one naming another real mount of the table) and a path close to PATH_MAX.

The program makes a private mount namespace (nothing propagates back to
the host, and it vanishes with this process), mounts a small tmpfs at
every planned path, its source (the device a report shows) holding the
same hostile bytes, then runs COMMAND and exits with its exit code. With
``--fuse`` it adds a FUSE mount whose server never answers (a hung mount,
as ``hung_mount.py`` makes) with a hostile source and type
(``fuse.SUBTYPE``): the mount an ordinary user makes with ``fusermount -o
fsname=...,subtype=...``, the only way a type can hold odd bytes.
Needs root and ``/dev/fuse`` for ``--fuse``; exit code 77 when they are
missing. The mount points (directories under DIR) are removed on exit.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import List, Optional

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
UNAVAILABLE = 77
PATH_MAX = 4096

# name (a directory under DIR), what a report shows for it, and why it is here
NAMES = [
    (b"latin1-caf\xe9", "latin1-caf\\xe9", "not UTF-8: failed the whole report (a result Ansible refused)"),
    (b"bytes-\xff\xfe", "bytes-\\xff\\xfe", "not UTF-8 at all"),
    (b"cr-\rx", "cr-\\rx", "a line break for str.splitlines: the mount vanished"),
    (b"vt-\x0bx", "vt-\\x0bx", "a line break for str.splitlines: the mount vanished"),
    (b"ff-\x0cx", "ff-\\x0cx", "a line break for str.splitlines: the mount vanished"),
    (b"fs-\x1cx", "fs-\\x1cx", "a line break for str.splitlines: the mount vanished"),
    ("nel-\u0085x".encode(), "nel-\\u0085x", "U+0085, a line break for str.splitlines"),
    ("nbsp-\u00a0x".encode(), "nbsp-\\u00a0x", "U+00A0, a blank for str.split"),
    ("ls-\u2028x".encode(), "ls-\\u2028x", "U+2028, a line break for str.splitlines"),
    (b"tab-\tx", "tab-\\tx", "escaped by the kernel (\\011)"),
    (b"space x", "space x", "escaped by the kernel (\\040); printable, shown as it is"),
    (b"nl-\nx", "nl-\\nx", "escaped by the kernel (\\012)"),
    (b"bs-\\x", "bs-\\\\x", "escaped by the kernel (\\134); doubled when shown"),
    (b"esc-\\040x", "esc-\\\\040x", "the text of an escape: must not be read as a space"),
    (b"ansi-\x1b[31mred\x1b[0m", "ansi-\\x1b[31mred\\x1b[0m", "a terminal escape sequence"),
    (b"sep - ext4 /dev/forged rw", "sep - ext4 /dev/forged rw", "the separator of optional fields, escaped"),
    (b"plain", "plain", "a real mount that a forged line names"),
]
FORGED_DEVICE = b"/dev/forged"


@dataclass(frozen=True)
class Planned:
    """One mount to make: where (bytes), its source (the device shown), its type, and why."""

    label: str
    path: bytes
    source: bytes
    fstype: bytes = b"tmpfs"


def forged_line(target: bytes, sep: bytes, fstype: bytes = b"tmpfs") -> bytes:
    """A mountinfo line for *target*, fields separated by *sep* (a blank the kernel does not escape)."""
    return sep.join([b"9999", b"1", b"0:1", b"/", target, b"rw", b"-", fstype, FORGED_DEVICE, b"rw"])


def long_path(base: bytes, total: int = PATH_MAX - 96) -> bytes:
    """A path of about *total* bytes under *base*: directories of 200 bytes each (NAME_MAX is 255)."""
    parts, length = [], len(base)
    while length < total:
        part = (b"long-%02d-" % len(parts)).ljust(min(200, total - length), b"\xe9" if len(parts) % 2 else b"x")
        parts.append(part)
        length += len(part) + 1
    return base + b"/" + b"/".join(parts)


def plan(base: str, fuse: bool = False) -> List[Planned]:
    """Every mount to make under *base*: the table, two forged lines, a long path, and the FUSE one."""
    root = os.fsencode(base)
    mounts = [Planned(f"table {n}", root + b"/" + row[0], b"src-" + row[0]) for n, row in enumerate(NAMES)]
    # str.splitlines splits at \r and U+2028, str.split at \x1f and U+00A0: each of these was a line of its own,
    # a later mount on / (typed tmpfs, so the default selection dropped the real /) or on another real mount
    mounts.append(Planned("forged /", root + b"/forged-root-\r" + forged_line(b"/", b"\x1f"), b"forged-root"))
    other = forged_line(root + b"/plain", "\u00a0".encode())
    mounts.append(Planned("forged other", root + "/forged-other-\u2028".encode() + other, b"forged-other"))
    mounts.append(Planned("long", long_path(root), b"long-\x85\xff"))
    if fuse:
        mounts.append(Planned("fuse", root + b"/fuse-\rx", b"/dev/vda\rfake \xff", b"fuse.evil\x0b\x1b[1m\xfe"))
    return mounts


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def private_namespace() -> None:
    """A mount namespace of our own whose mounts never propagate back to the host."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")


def make(mount: Planned) -> Optional[int]:
    """Mount *mount*; a FUSE one returns the /dev/fuse fd that keeps it (hung) alive."""
    os.makedirs(mount.path, exist_ok=True)
    if not mount.fstype.startswith(b"fuse."):
        _check(_libc.mount(mount.source, mount.path, mount.fstype, 0, b"size=1m"), f"mount tmpfs on {mount.path!r}")
        return None
    fd = os.open("/dev/fuse", os.O_RDWR)
    options = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
    _check(_libc.mount(mount.source, mount.path, mount.fstype, 0, options), f"mount fuse on {mount.path!r}")
    return fd


def available(fuse: bool) -> str:
    """Empty when the mounts can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if fuse and not os.path.exists("/dev/fuse"):
        return "needs /dev/fuse"
    return ""


def cleanup(mounts: List[Planned], fds: List[int], base: str) -> None:
    """Detach the mounts and remove the directories made for them (they are on the host's disk)."""
    for mount in reversed(mounts):
        _libc.umount2(mount.path, MNT_DETACH)
    for fd in fds:
        os.close(fd)
    for top, dirs, unused in os.walk(os.fsencode(base), topdown=False):
        for name in dirs:
            try:
                os.rmdir(os.path.join(top, name))
            except OSError:
                pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="make the mount points under this directory")
    parser.add_argument("--fuse", action="store_true", help="add a hung FUSE mount with a hostile source and type")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    why = available(args.fuse)
    if why:
        print(f"hostile_mounts: {why}", file=sys.stderr)
        return UNAVAILABLE
    mounts, fds = plan(args.dir, args.fuse), []
    try:
        private_namespace()
        for mount in mounts:
            fd = make(mount)
            if fd is not None:
                fds.append(fd)
    except OSError as exc:
        cleanup(mounts, fds, args.dir)
        print(f"hostile_mounts: {exc}", file=sys.stderr)
        return UNAVAILABLE
    try:
        return subprocess.call(command)  # our /dev/fuse fds are not inherited: only we keep the FUSE mount hung
    finally:
        cleanup(mounts, fds, args.dir)


if __name__ == "__main__":
    sys.exit(main())
