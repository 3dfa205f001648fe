# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files that are safe to use: opened without following or blocking, written atomically, locked.

PRIVATE to the sysops.fleet collection. Pure standard library.

* ``open_regular`` opens a path only if it is a regular file: never through
  a symbolic link (``O_NOFOLLOW``), never blocking on a FIFO (``O_NONBLOCK``,
  then ``fstat``), optionally only if it belongs to a given user. Every file
  of the state, spool, history, pidfile and log is opened this way, so a
  link or a FIFO planted in their directories is refused with a message.
* ``write_atomic`` writes a temp file beside the target and renames it over
  the target: readers see the old file or the new one, never half of
  either. Mode and owner are set on the open descriptor, never by path.
* ``locked`` holds an ``flock`` on a lock file, so two processes that update
  one file take turns.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple, Union

_SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"),
          (stat.S_ISREG, "a regular file"))


class UnsafeFile(OSError):
    """A path is not a regular file of the expected owner; nothing was read or written through it."""


def kind_of(mode: int) -> str:
    """What a path is, from its (l)stat mode, as a phrase: "a FIFO", "a regular file", ..."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str, flags: int = os.O_RDONLY, mode: int = 0o600, owner: Optional[int] = None) -> int:
    """A descriptor on *path* if it is a regular file (of uid *owner*, when given); else UnsafeFile.

    Symbolic links are not followed and FIFOs never block the caller:
    both are refused, with what the path turned out to be.
    """
    try:
        fd = os.open(path, flags | _SAFE, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(errno.ELOOP, f"{path} is a symbolic link: refusing to follow it") from None
        if exc.errno == errno.ENXIO:
            raise UnsafeFile(errno.ENXIO, f"{path} is a FIFO or socket, not a regular file: refusing it") from None
        if exc.errno == errno.EISDIR:
            raise UnsafeFile(errno.EISDIR, f"{path} is a directory, not a regular file: refusing it") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(errno.EINVAL, f"{path} is {kind_of(st.st_mode)}, not a regular file: refusing it")
        if owner is not None and st.st_uid != owner:
            raise UnsafeFile(errno.EPERM, f"{path} belongs to uid {st.st_uid}, not to uid {owner}: refusing it")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str, limit: int = 64 << 20) -> bytes:
    """The content of a regular file (at most *limit* bytes), opened as ``open_regular`` does."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFile(errno.EFBIG, f"{path} is larger than {limit} bytes: refusing to read it")
    return data


def read_text(path: str, limit: int = 64 << 20) -> str:
    """The text of a regular file (at most *limit* bytes), opened as ``open_regular`` does."""
    return read_bytes(path, limit).decode("utf-8")


def write_atomic(path: str, text: Union[str, bytes], mode: Optional[int] = None, durable: bool = False,
                 owner: Optional[Tuple[int, int]] = None) -> None:
    """Write *text* (str as UTF-8, or bytes as they are) to a temp file beside *path*, then rename it over it.

    A crash or a concurrent reader (``fleet-watcher status --json``) sees
    the old file or the new one, never half of either. A regular file that
    exists keeps its mode (unless *mode* is given) and, when we are root,
    its owner; a new file gets *mode*, or 0600. Mode and owner are set on
    the temp file's descriptor, never by path, so nobody can swap the temp
    file for a link in between. With *durable* the data is fsynced before
    the rename and the directory after it, so the file survives a power cut
    once this returns (the mail spool: a message it holds may exist nowhere else).
    *owner* (uid, gid), given by root, is the new file's owner.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        old: Optional[os.stat_result] = os.lstat(path)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        old = None  # a link or a FIFO at the target is replaced, never followed
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-" + os.path.basename(path) + "-")
    try:
        handle = os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8")
        with handle:
            handle.write(text)
            handle.flush()
            if mode is None and old is not None:
                mode = stat.S_IMODE(old.st_mode)
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            elif old is not None and os.geteuid() == 0 and (old.st_uid, old.st_gid) != (0, 0):
                os.fchown(handle.fileno(), old.st_uid, old.st_gid)
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_directory(directory)


def fsync_directory(path: str) -> None:
    """Make a rename in *path* durable; where a directory cannot be synced, nothing is done."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_if_changed(path: str, text: str, mode: Optional[int] = 0o644) -> bool:
    """write_atomic unless the file already holds *text*; True if written."""
    try:
        if read_text(path) == text:
            return False
    except FileNotFoundError:
        pass
    except (UnsafeFile, UnicodeDecodeError):
        pass  # replaced below, never followed
    write_atomic(path, text, mode)
    return True


@contextmanager
def locked(path: str, wait: float, mode: int = 0o600) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file *path* (made with *mode* if missing).

    Waits up to *wait* seconds for another holder, then raises
    TimeoutError (an OSError). The file is opened read-only: a lock file
    made by root with mode 0644 still serves another user. A link, a FIFO
    or anything but a regular file at *path* is refused (UnsafeFile).
    """
    fd = open_regular(path, os.O_RDONLY | os.O_CREAT, mode)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process holds {path} for more than {wait:g}s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
