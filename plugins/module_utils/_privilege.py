# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who does the work: look a user up, drop root for good, act as a directory's owner.

PRIVATE to the sysops.fleet collection. Pure standard library; POSIX.

The collection's trust rule: **root never opens, creates, chowns, locks or
signals anything through a path that a less privileged user can change.**
Such a path belongs to that user, so root hands the work to that user:

* ``drop_to`` for the rest of a process: ``fleet-watcher`` started by root
  (cron's ``@reboot``, the role, logrotate) becomes the daemon's user before
  it touches the daemon's files or signals anything;
* ``as_owner`` for one call, in a forked worker: a module run with become
  that updates the watcher's disk history or spool does so as the owner of
  that directory, so the files stay the owner's and nothing the owner
  planted there (a symlink, a FIFO) can reach root.

``trust_boundary`` finds that owner: the first component of a path that
root does not control.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import select
import signal
import stat
import time
import warnings
from typing import Any, Callable, Dict, Optional, Tuple, Union

AS_OWNER_TIMEOUT = 300.0
_MAX_RESULT = 64 << 20
_MAX_LINKS = 40


class PrivilegeError(OSError):
    """The work cannot be done safely as this user; the message says why."""


def user_entry(user: Union[str, int]) -> pwd.struct_passwd:
    """The passwd entry of a user name or uid; PrivilegeError when there is none."""
    try:
        return pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(errno.ENOENT, f"user {user!r} does not exist") from None


def _switch(uid: int, gid: int, name: Optional[str]) -> None:
    """Groups, then group, then user; then prove root cannot be regained."""
    if name is not None:
        os.initgroups(name, gid)
    else:
        os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:  # pragma: no cover - a kernel that lets this happen is not one to run on
            raise PrivilegeError(errno.EPERM, f"dropped to uid {uid} but could become root again")


def drop_to(entry: pwd.struct_passwd) -> None:
    """Become *entry* for good: supplementary groups, group, user; HOME, USER, LOGNAME follow.

    Nothing to do when this process already runs as that user.
    """
    if os.getuid() == os.geteuid() == entry.pw_uid and os.getgid() == entry.pw_gid:
        return
    try:
        _switch(entry.pw_uid, entry.pw_gid, entry.pw_name)
    except PrivilegeError:
        raise
    except OSError as exc:
        raise PrivilegeError(exc.errno, f"cannot switch to user {entry.pw_name}: {exc.strerror}") from exc
    os.environ.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)


def _owner(st: os.stat_result) -> Tuple[int, int]:
    """The user and group to act as for an object owned by ``st.st_uid``: the user's own group."""
    try:
        return st.st_uid, pwd.getpwuid(st.st_uid).pw_gid
    except KeyError:
        return st.st_uid, st.st_gid


def trust_boundary(path: str) -> Optional[Tuple[int, int]]:
    """Who controls *path*: None when root alone does, else (uid, gid) to act as.

    Walks the path from ``/`` without following anything a user controls:
    the first existing component owned by another user (a directory, a
    file or a symlink) is the boundary, since that user can replace
    whatever lies below it. A symlink owned by root in a directory only
    root can write is followed. A directory that others may write without
    the sticky bit has no single owner: PrivilegeError.
    """
    parts = [p for p in os.path.abspath(path).split("/") if p]
    current = "/"
    links = 0
    while parts:
        name = parts.pop(0)
        candidate = os.path.join(current, name)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            return None  # whoever controls `current` (root, so far) makes the rest, or nobody can
        if st.st_uid != 0:
            return _owner(st)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise PrivilegeError(errno.ELOOP, f"too many symbolic links in {path}")
            target = os.readlink(candidate)
            parts = [p for p in target.split("/") if p] + parts
            current = "/" if target.startswith("/") else current
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            raise PrivilegeError(errno.EPERM, f"{candidate} is writable by users other than root "
                                 f"(mode {stat.S_IMODE(st.st_mode):04o}): refusing to work below it as root")
        current = candidate
    return None


def make_directory_for(directory: str, entry: pwd.struct_passwd, mode: int = 0o750) -> bool:
    """As root: make the missing *directory* and give it to *entry*; True if it was made.

    Only where root alone controls the parent, so that nobody can put a
    link in its place between ``mkdir`` and the hand-over; the hand-over
    goes through the new directory's own descriptor (``fchown``). An
    existing directory, or one below another user's, is left alone: its
    owner manages it.
    """
    if os.path.lexists(directory) or trust_boundary(os.path.dirname(directory)) is not None:
        return False
    try:
        os.mkdir(directory, mode)
    except FileExistsError:
        return False
    except OSError as exc:
        raise PrivilegeError(exc.errno, f"cannot make {directory}: {exc.strerror}") from None
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_uid != 0:
            return False
        os.fchown(fd, entry.pw_uid, entry.pw_gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return True


def _run_child(write_end: int, uid: int, gid: int, func: Callable[..., Any], args, kwargs) -> None:
    """In the forked worker: become the owner, run, send back JSON, never return."""
    code = 0
    try:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = None
        _switch(uid, gid, name)
        reply: Dict[str, Any] = {"ok": True, "value": func(*args, **kwargs)}
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as data
        reply = {"ok": False, "type": type(exc).__name__, "message": str(exc),
                 "kind": "timeout" if isinstance(exc, TimeoutError) else "value" if isinstance(exc, ValueError) else ""}
        if isinstance(exc, OSError) and exc.errno:
            reply.update(errno=exc.errno, strerror=exc.strerror, filename=exc.filename)
        code = 1
    try:
        data = json.dumps(reply).encode("utf-8")
    except (TypeError, ValueError) as exc:
        data = json.dumps({"ok": False, "type": "TypeError", "errno": None,
                           "message": f"the result cannot be sent back: {exc}"}).encode("utf-8")
        code = 1
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view):]
    finally:
        os._exit(code)


def _collect(read_end: int, pid: int, timeout: float, what: str) -> bytes:
    deadline = time.monotonic() + timeout
    chunks, size = [], 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                raise PrivilegeError(errno.ETIMEDOUT, f"{what} did not finish within {timeout:g}s")
            readable, _w, _x = select.select([read_end], [], [], left)
            if not readable:
                continue
            data = os.read(read_end, 65536)
            if not data:
                return b"".join(chunks)
            size += len(data)
            if size > _MAX_RESULT:
                os.kill(pid, signal.SIGKILL)
                raise PrivilegeError(errno.E2BIG, f"{what} sent back more than {_MAX_RESULT} bytes")
            chunks.append(data)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def as_owner(directory: str, func: Callable[..., Any], *args: Any, timeout: float = AS_OWNER_TIMEOUT,
             **kwargs: Any) -> Any:
    """``func(*args, **kwargs)`` as whoever controls *directory* (see ``trust_boundary``).

    Not root, or a directory only root controls: called right here.
    Otherwise in a forked worker that drops to the owner first; the result
    comes back as JSON (plain data only: root never unpickles what a
    process of another user wrote) and an exception as its type's closest
    OSError (with its errno, so PermissionError stays PermissionError),
    ValueError or TimeoutError, with its message.
    """
    if os.geteuid() != 0:
        return func(*args, **kwargs)
    owner = trust_boundary(directory)
    if owner is None:
        return func(*args, **kwargs)
    uid, gid = owner
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Mitogen runs modules in a threaded interpreter; the worker only switches users and runs
        # our own code, which takes no lock another thread could hold across the fork.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the worker, reported through the pipe
        os.close(read_end)
        _run_child(write_end, uid, gid, func, args, kwargs)
    os.close(write_end)
    what = f"the worker acting as uid {uid} for {directory}"
    data = _collect(read_end, pid, timeout, what)
    try:
        reply = json.loads(data.decode("utf-8")) if data else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise PrivilegeError(errno.EIO, f"{what} died without an answer")
    if reply.get("ok"):
        return reply.get("value")
    message = str(reply.get("message"))
    if reply.get("errno"):
        raise OSError(int(reply["errno"]), str(reply.get("strerror") or message), reply.get("filename"))
    if reply.get("kind") == "timeout":
        raise TimeoutError(message)
    if reply.get("kind") == "value":
        raise ValueError(message)
    raise PrivilegeError(errno.EIO, f"{what}: {reply.get('type')}: {message}")
