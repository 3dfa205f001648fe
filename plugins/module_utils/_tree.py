# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Remove a directory tree another user wrote, however deep, without following a link or leaving its filesystem.

PRIVATE to the sysops.fleet collection. Pure standard library; Linux.

Root removes trees the daemon's user could write (its state, log and run
directories, its leftovers in /tmp). That user chooses their shape, so the
removal must not depend on it:

- **No recursion and one descriptor at a time.** ``shutil.rmtree`` recurses
  (a 2500-deep tree raises RecursionError) or, on Python 3.13, holds one
  descriptor per level (a 3000-deep tree fails with EMFILE under
  ``ulimit -n 1024``). Here the walk goes down by name (``dir_fd`` with
  ``O_NOFOLLOW|O_DIRECTORY``), closing the parent, and comes back up
  through ``..``, checking that it is the directory recorded on the way
  down (st_dev, st_ino): a tree moved meanwhile is an error, never a walk
  somewhere else. Only the names are kept, never the full path, which
  may be longer than PATH_MAX.
- **No link is followed**: a link is removed as a link; a directory is
  opened only with ``O_NOFOLLOW`` and must be the one ``lstat`` saw.
- **Never another filesystem**: a directory on another device (a mount
  point) is an error that names it; nothing under it is touched.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import List, Optional, Tuple

from . import _text

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_PASSES = 1000  # directories refilled while they are removed, over and over: give up naming one


class TreeError(Exception):
    """The tree could not be removed; the message names where and why."""


def _where(top: str, names: List[str], name: Optional[str] = None) -> str:
    """A printable name for an entry at depth len(names) under *top*, short however deep it is."""
    parts = names + ([name] if name is not None else [])
    if len(parts) <= 4:
        shown = "/".join([top.rstrip("/")] + parts)
    else:
        shown = "/".join([top.rstrip("/")] + parts[:2] + ["..."] + parts[-1:]) + f" (depth {len(parts)})"
    return _text.printable(shown, 400)


def _key(st: os.stat_result) -> Tuple[int, int]:
    return (st.st_dev, st.st_ino)


def remove_at(parent_fd: int, name: str, label: str, device: Optional[int] = None) -> bool:
    """Remove *name* in the directory *parent_fd* (a tree, a link, a file): False if it was not there.

    *label* names it in errors; *device* is the filesystem the removal may
    not leave (the parent's when None).
    """
    if device is None:
        device = os.fstat(parent_fd).st_dev
    try:
        st = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        _unlink(parent_fd, name, label)
        return True
    if st.st_dev != device:
        raise TreeError(f"{_text.printable(label, 400)}: on another filesystem (a mount point); not removed")
    _remove_dir(parent_fd, name, label, device)
    return True


def remove_tree(path: str) -> bool:
    """Remove *path* whatever it is (see the module docstring): False if it was not there.

    *path* itself may be a link (removed, not followed); the directories
    above it are trusted as root's.
    """
    parent, name = os.path.split(os.path.abspath(path))
    if not name:
        raise TreeError(f"{_text.printable(path)}: refusing to remove a file system root")
    try:
        parent_fd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise TreeError(f"{_text.printable(parent)}: {exc.strerror}") from None
    try:
        return remove_at(parent_fd, name, path)
    finally:
        os.close(parent_fd)


def _unlink(dir_fd: int, name: str, label: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise TreeError(f"{_text.printable(label, 400)}: cannot remove: {exc.strerror}") from None


def _open_dir(dir_fd: int, name: str, expected: Tuple[int, int], label: str) -> Optional[int]:
    """Open the directory *name* under *dir_fd*, no link followed, and check it is the one lstat saw (None: gone)."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TreeError(f"{_text.printable(label, 400)}: cannot open: {exc.strerror}") from None
    if _key(os.fstat(fd)) != expected:
        os.close(fd)
        raise TreeError(f"{_text.printable(label, 400)}: changed while it was being removed; not removed")
    return fd


def _scan(fd: int, device: int, top: str, names: List[str]) -> List[Tuple[str, Tuple[int, int]]]:
    """Unlink every non-directory in *fd*; return its subdirectories (name, key), still to go into.

    Each directory is listed once on the way down and once more before it
    is removed (for what appeared meanwhile), so a wide tree costs time in
    proportion to its size, never its square.
    """
    found = []
    for name in os.listdir(fd):
        try:
            st = os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            _unlink(fd, name, _where(top, names, name))
            continue
        if st.st_dev != device:
            raise TreeError(f"{_where(top, names, name)}: on another filesystem (a mount point); not removed")
        found.append((name, _key(st)))
    return found


def _remove_dir(parent_fd: int, name: str, top: str, device: int) -> None:
    """Empty and remove the directory *name* of *parent_fd*, one level open at a time (see the module docstring)."""
    fd = _open_dir(parent_fd, name, _key(os.lstat(name, dir_fd=parent_fd)), top)
    if fd is None:
        return
    names: List[str] = []                   # the way down from the top, by name
    keys: List[Tuple[int, int]] = []        # (st_dev, st_ino) of each directory above the current one
    pending = [_scan(fd, device, top, names)]  # per level: subdirectories still to remove
    passes = 0
    try:
        while True:
            if pending[-1]:
                sub, key = pending[-1].pop()
                child = _open_dir(fd, sub, key, _where(top, names, sub))
                if child is None:
                    continue
                keys.append(_key(os.fstat(fd)))
                names.append(sub)
                os.close(fd)
                fd = child
                pending.append(_scan(fd, device, top, names))
                continue
            again = _scan(fd, device, top, names)
            if again:  # refilled meanwhile (its writer should be dead): once more, within bounds
                passes += 1
                if passes > MAX_PASSES:
                    raise TreeError(f"{_where(top, names)}: refilled while it was being removed; not removed")
                pending[-1] = again
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            if _key(os.fstat(parent)) != keys[-1]:
                os.close(parent)
                raise TreeError(f"{_where(top, names)}: moved while it was being removed; not removed")
            os.close(fd)
            fd = parent
            keys.pop()
            pending.pop()
            gone = names.pop()
            _rmdir(fd, gone, _where(top, names, gone))
        os.close(fd)
        fd = -1
        _rmdir(parent_fd, name, _text.printable(top, 400), strict=True)
    finally:
        if fd >= 0:
            os.close(fd)


def _rmdir(dir_fd: int, name: str, label: str, strict: bool = False) -> None:
    """Remove the emptied directory *name*; one refilled meanwhile is found again by its parent's last listing.

    *strict* (the top, which has no such listing after it): refilled is an error.
    """
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if strict or exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise TreeError(f"{label}: cannot remove: {exc.strerror}") from None
