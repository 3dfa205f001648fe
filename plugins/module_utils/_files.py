# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write files atomically: state, history and reports are never seen half written.

And lock files, so two processes that update one file take turns.

PRIVATE to the sysops.fleet collection. Pure standard library.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator, Optional, Union


def write_atomic(path: str, text: Union[str, bytes], mode: Optional[int] = None, durable: bool = False) -> None:
    """Write *text* (str as UTF-8, or bytes as they are) to a temp file beside *path*, then rename it over *path*.

    A crash or a concurrent reader (``fleet-watcher status --json``) sees
    the old file or the new one, never half of either. A file that exists
    keeps its mode (unless *mode* is given) and, when we are root, its
    owner: a root Ansible run that updates the watcher's history must not
    take the file away from the watcher's own user. A new file gets *mode*,
    or 0600.

    With *durable* the data is fsynced before the rename and the directory
    after it, so the file survives a power cut once this returns (the mail
    spool: a message it holds may exist nowhere else).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        old: Optional[os.stat_result] = os.stat(path)
    except OSError:
        old = None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-" + os.path.basename(path) + "-")
    try:
        if isinstance(text, bytes):
            handle = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8")
        with handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is None and old is not None:
            mode = stat.S_IMODE(old.st_mode)
        if mode is not None:
            os.chmod(tmp, mode)
        if old is not None and os.geteuid() == 0 and (old.st_uid, old.st_gid) != (0, 0):
            os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        _fsync_directory(directory)


def _fsync_directory(path: str) -> None:
    """Make a rename in *path* durable; a filesystem that cannot fsync a directory is let be."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
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
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except FileNotFoundError:
        pass
    write_atomic(path, text, mode)
    return True


@contextmanager
def locked(path: str, wait: float, mode: int = 0o600) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file *path* (made with *mode* if missing).

    Waits up to *wait* seconds for another holder, then raises
    TimeoutError (an OSError). The file is opened read-only: a lock file
    made by root with mode 0644 still serves another user.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, mode)
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
