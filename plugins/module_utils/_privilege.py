# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who does the work: look a user up, drop root for good, act as a directory's owner.

PRIVATE to the sysops.fleet collection. Pure standard library; POSIX.

The collection's trust rule: **root never opens, creates, chowns, locks or
signals anything through a path that a less privileged user can change.**
Such a path belongs to that user, so root hands the work to that user:

* ``become`` / ``drop_to`` switch a process for good, and keep it
  undumpable throughout, so the new user can signal it but never read it;
  ``fleet-watcher`` started by root hands its command to the daemon's user
  this way (``_handoff``: executed anew, nothing of root's kept);
* ``as_owner`` for one call, in a forked worker: a module run with become
  that updates the watcher's disk history does so as the owner of that
  directory, so the files stay the owner's and nothing the owner planted
  there (a symlink, a FIFO) can reach root. The worker takes nothing of
  root's along, and root waits for it only until a deadline.

``trust_boundary`` finds that owner: the first component of a path that
root does not control.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import resource
import select
import signal
import stat
import time
import warnings
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

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


SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a process handed to another user keeps of root's environment (plus LC_*): the locale and
# the time zone. Everything else (credentials, tokens, Ansible's variables) stays root's.
KEEP_ENV = ("LANG", "LANGUAGE", "TZ")
_PR_GET_DUMPABLE, _PR_SET_DUMPABLE = 3, 4


def clean_environment(entry: pwd.struct_passwd, environ: Optional[Dict[str, str]] = None,
                      keep: Sequence[str] = ()) -> Dict[str, str]:
    """The environment root gives a process of *entry*: a safe PATH, the user's own names, locale and TZ.

    *keep* names variables of *environ* (default: ours) that pass as well,
    such as ``NOTIFY_SOCKET`` for a daemon started by systemd.
    """
    environ = os.environ if environ is None else environ
    clean = {k: v for k, v in environ.items() if k in KEEP_ENV or k.startswith("LC_") or k in keep}
    clean.update(PATH=SAFE_PATH, HOME=entry.pw_dir or "/", USER=entry.pw_name, LOGNAME=entry.pw_name,
                 SHELL="/bin/sh")
    return clean


def _prctl_function() -> Callable[..., int]:
    """prctl(2) through ctypes (the standard library has no binding), loaded while this process is still root.

    After the switch the interpreter's own files may be out of the new
    user's reach (a Python under /root), so nothing may be imported then.
    """
    import ctypes  # pylint: disable=import-outside-toplevel  # only a process that changes users needs it
    libc = ctypes.CDLL(None, use_errno=True)
    ulong = ctypes.c_ulong

    def prctl(option: int, value: int = 0) -> int:
        result = libc.prctl(option, ulong(value), ulong(0), ulong(0), ulong(0))
        if result < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return int(result)
    return prctl


def set_undumpable(prctl: Optional[Callable[..., int]] = None) -> None:
    """No core file, no ptrace, no /proc/PID/{mem,environ,fd} and no pidfd_getfd for this process's own user.

    The kernel makes a process that changed users undumpable unless
    ``fs.suid_dumpable`` says otherwise; this says it explicitly, so a
    host with ``fs.suid_dumpable=1`` does not open root's worker to its user.
    """
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    try:
        (prctl or _prctl_function())(_PR_SET_DUMPABLE, 0)
    except (OSError, ImportError, AttributeError) as exc:
        if _suid_dumpable() != 0:
            raise PrivilegeError(errno.EPERM, f"cannot make this process undumpable ({exc}) on a host with "
                                 f"fs.suid_dumpable={_suid_dumpable()}: refusing to hand it to another user") from None


def _suid_dumpable() -> int:
    try:
        with open("/proc/sys/fs/suid_dumpable", "rb") as handle:
            return int(handle.read().strip() or b"0")
    except (OSError, ValueError):
        return -1


def dumpable(prctl: Optional[Callable[..., int]] = None) -> bool:
    """Whether this process's own user may trace it (PR_GET_DUMPABLE; else /proc shows undumpable files as root's)."""
    if prctl is not None:
        return prctl(_PR_GET_DUMPABLE) != 0
    try:
        return os.stat(f"/proc/{os.getpid()}/environ").st_uid != 0
    except OSError:
        return True


def become(entry: pwd.struct_passwd) -> None:
    """Become *entry* for good, without a moment in which that user could trace this process.

    Groups, then group, then the uid in two steps: first with root kept as
    the saved uid (so the user cannot ptrace us: its uid is not all of
    ours) while the process is made undumpable, then the saved uid too.
    The second step changes neither the effective uid nor the file system
    uid, so the kernel keeps the process undumpable, whatever
    ``fs.suid_dumpable`` says. Then prove root cannot be regained.
    """
    uid, gid = entry.pw_uid, entry.pw_gid
    try:
        prctl: Optional[Callable[..., int]] = _prctl_function()
    except (ImportError, OSError, AttributeError):
        prctl = None  # set_undumpable decides whether this host can do without
    try:
        if entry.pw_name:
            try:
                os.initgroups(entry.pw_name, gid)
            except OSError:
                os.setgroups([gid])
        else:
            os.setgroups([gid])
        os.setresgid(gid, gid, gid)
        if uid == 0:
            return
        os.setresuid(uid, uid, 0)
        set_undumpable(prctl)
        os.setresuid(uid, uid, uid)
    except PrivilegeError:
        raise
    except OSError as exc:
        raise PrivilegeError(exc.errno, f"cannot switch to user {entry.pw_name}: {exc.strerror}") from exc
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:  # pragma: no cover - a kernel that lets this happen is not one to run on
        raise PrivilegeError(errno.EPERM, f"dropped to uid {uid} but could become root again")
    if dumpable(prctl):  # pragma: no cover - set_undumpable refused a host where this could happen
        raise PrivilegeError(errno.EPERM, f"switched to uid {uid} but the process is still dumpable")


def drop_to(entry: pwd.struct_passwd) -> None:
    """Become *entry* for good (``become``) in this process, with its clean environment.

    Nothing to do when this process already runs as that user.
    """
    if os.getuid() == os.geteuid() == entry.pw_uid and os.getgid() == entry.pw_gid:
        return
    become(entry)
    environ = clean_environment(entry, dict(os.environ))
    os.environ.clear()
    os.environ.update(environ)


def close_descriptors(keep: Sequence[int] = ()) -> None:
    """Close every descriptor above stderr but *keep*: what root holds open is not the user's to take."""
    kept = sorted(set(fd for fd in keep if fd > 2))
    low = 3
    for fd in kept + [_max_fd()]:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1


def _max_fd() -> int:
    try:
        return max(256, os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def reap(pid: int, wait: float) -> Optional[int]:
    """The wait status of our child *pid* if it ends within *wait* seconds, else None (it is left as it is).

    A child killed while stuck in the kernel (a hung mount) may take
    forever to go; root waits for it no longer than this.
    """
    deadline = time.monotonic() + wait
    pause = 0.001
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def kill_child(pid: int) -> None:
    """SIGKILL our own child, not yet reaped (so its pid cannot belong to anyone else)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _entry_for(uid: int, gid: int) -> pwd.struct_passwd:
    """The passwd entry to become for a directory's owner; a uid without a name gets a bare one."""
    try:
        found = pwd.getpwuid(uid)
        return pwd.struct_passwd((found.pw_name, "x", uid, gid, found.pw_gecos, found.pw_dir, found.pw_shell))
    except KeyError:
        return pwd.struct_passwd(("", "x", uid, gid, "", "/", "/usr/sbin/nologin"))


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


def _run_child(write_end: int, entry: pwd.struct_passwd, func: Callable[..., Any], args, kwargs) -> None:
    """In the forked worker: take nothing of root's along, become the owner, run, send back JSON, never return.

    Before the switch: stdin, stdout and stderr from /dev/null (a module's
    stdout is Ansible's result channel), every other descriptor closed but
    the answer pipe, the environment cleaned. The worker still holds a copy
    of root's memory (module arguments, a password): ``become`` keeps it
    undumpable, so its new user can stop or kill it (root waits with a
    deadline) but never read it.
    """
    code = 0
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        close_descriptors(keep=[write_end])
        environ = clean_environment(entry, dict(os.environ))
        os.environ.clear()
        os.environ.update(environ)
        become(entry)
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


def _collect(read_end: int, pid: int, timeout: float, what: str, limit: int = _MAX_RESULT) -> bytes:
    """What the worker sends back, read within *timeout*; the worker is killed and reaped (briefly) either way.

    Its new user may stop it (SIGSTOP) or make it send forever: both end
    at the deadline or the size limit, never later.
    """
    deadline = time.monotonic() + timeout
    chunks, size = [], 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PrivilegeError(errno.ETIMEDOUT, f"{what} did not finish within {timeout:g}s "
                                     f"(stopped or stuck; its user can signal it): killed")
            readable, _w, _x = select.select([read_end], [], [], left)
            if not readable:
                continue
            data = os.read(read_end, 65536)
            if not data:
                return b"".join(chunks)
            size += len(data)
            if size > limit:
                raise PrivilegeError(errno.E2BIG, f"{what} sent back more than {limit} bytes: killed")
            chunks.append(data)
    finally:
        os.close(read_end)
        if reap(pid, 0.0) is None:
            kill_child(pid)
            reap(pid, 5.0)


def as_owner(directory: str, func: Callable[..., Any], *args: Any, timeout: float = AS_OWNER_TIMEOUT,
             limit: int = _MAX_RESULT, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)`` as whoever controls *directory* (see ``trust_boundary``).

    Not root, or a directory only root controls: called right here.
    Otherwise in a forked worker that drops to the owner first (with
    nothing of root's: see ``_run_child``), waited for at most *timeout*
    seconds and read up to *limit* bytes; the result
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
    entry = _entry_for(uid, gid)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Mitogen runs modules in a threaded interpreter; the worker only switches users and runs
        # our own code, which takes no lock another thread could hold across the fork.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the worker, reported through the pipe
        os.close(read_end)
        _run_child(write_end, entry, func, args, kwargs)
    os.close(write_end)
    what = f"the worker acting as uid {uid} for {directory}"
    data = _collect(read_end, pid, timeout, what, limit)
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
