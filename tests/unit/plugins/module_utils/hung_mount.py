# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a command with hung mounts: FUSE mounts whose server never answers.

    hung_mount.py [--count N] [--dir DIR] -- COMMAND [ARG...]

Like a stale NFS mount, any ``stat`` or ``statvfs`` of such a mount point
blocks in the kernel (``fuse_get_req``) until the process is killed. The
mounts live in a private mount namespace made for this program and its
child: nothing is visible outside, and when this process exits (however
it exits, even on SIGKILL) the namespace and its mounts disappear. The
child gets the mount points in ``HUNG_MOUNTS`` (colon-separated) and this
program exits with the child's exit code.

Needs root (or CAP_SYS_ADMIN) and /dev/fuse; nothing else (no FUSE
library, no fuse package: the kernel's FUSE protocol is never answered,
which is all a hang needs). Exit code 77 when these are missing.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
UNAVAILABLE = 77

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def private_namespace() -> None:
    """A mount namespace of our own whose mounts never propagate back to the host."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")


def hang(path: str) -> int:
    """Mount a FUSE filesystem on *path* and never answer it; returns the fd that keeps it alive."""
    fd = os.open("/dev/fuse", os.O_RDWR)
    options = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
    _check(_libc.mount(b"hung", path.encode(), b"fuse.hung", 0, options), f"mount fuse on {path}")
    return fd


def available() -> str:
    """Empty when hung mounts can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/fuse"):
        return "needs /dev/fuse"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--dir", help="make the mount points under this directory (default: a new temp dir)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    why = available()
    if why:
        print(f"hung_mount: {why}", file=sys.stderr)
        return UNAVAILABLE
    base = args.dir or tempfile.mkdtemp(prefix="hung-mounts-")
    try:
        private_namespace()
        paths, fds = [], []
        for n in range(args.count):
            path = os.path.join(base, f"hung{n}")
            os.makedirs(path, exist_ok=True)
            fds.append(hang(path))
            paths.append(path)
    except OSError as exc:
        print(f"hung_mount: {exc}", file=sys.stderr)
        return UNAVAILABLE
    env = dict(os.environ, HUNG_MOUNTS=":".join(paths))
    try:
        return subprocess.call(command, env=env)  # our fds are not inherited: only we keep the mounts hung
    finally:
        cleanup(paths, fds, base if not args.dir else None)


def cleanup(paths, fds, base) -> None:
    """Detach the mounts and remove the mount points (they are directories on the host's disk)."""
    for path in paths:
        _libc.umount2(path.encode(), MNT_DETACH)
    for fd in fds:
        os.close(fd)
    for path in paths:
        try:
            os.rmdir(path)
        except OSError:
            pass
    if base:
        try:
            os.rmdir(base)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
