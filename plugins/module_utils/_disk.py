# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Disk usage: read every mounted filesystem's size, use and inode use.

PRIVATE to the sysops.fleet collection. Pure standard library; Linux.

The numbers are the ones ``df -P`` and ``df -Pi`` print, because ``df``
gives them:

* The mount table comes from ``/proc/self/mountinfo`` (``_mount_table``),
  which never touches a filesystem, so a hung network mount cannot block
  reading it. Each mount point is probed under its exact bytes and
  reported under the name ``_text.printable`` shows (``Mount.shown``), so
  any byte a name may hold (a carriage return, U+2028, bytes that are not
  UTF-8) reaches no report, result, state key or metrics label raw; the
  lines that are no mount come back as the Reading's ``warnings``.
* The mount points are probed by GNU ``df`` itself, run through
  ``_command.run_many`` (``posix_spawn``, many children in flight, each
  killed at its own timeout, a killed child stuck in the kernel never
  waited for): ``df -B1 --output=size,used,avail,itotal,iused -- M/. ...``
  gives blocks and inodes of many mounts in one call. All local
  filesystems go in one call, each network/FUSE mount in a call of its
  own, all at once; a call that times out or fails is repeated one mount
  per call, so one bad mount cannot hide the others. A probe stuck on a
  stale NFS or dead FUSE server gets its ``df`` killed and the mount
  reported as timed out. The parent process never touches a mount point
  itself. (Spawning ``df`` costs far less than forking a Python worker:
  the report takes about as long as ``df -P``.)
* Without GNU ``df`` (not installed, or a ``df`` whose answer we do not
  understand, such as busybox's), and whenever a *prober* is given, each
  mount point is probed (``stat`` + ``statvfs``) in a worker process of
  ``_fanout`` with the same timeouts and batching.
* Pseudo filesystems are skipped by type; a mount point that is a file
  (a bind mount of ``/etc/hosts`` in a container) is dropped; several views
  of one device (bind mounts, btrfs subvolumes) are reported once.
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import os
import re
import stat
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _command, _fanout
from ._mount_table import Mount, MountTable, read_mounts
from ._text import printable

# Types that hold no user data or only mirror another filesystem. tmpfs and
# devtmpfs are here too, as they are memory, not disk; list them in
# include_mounts (or clear exclude_fstypes) to watch them.
PSEUDO_FSTYPES = (
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal",
    "hugetlbfs", "mqueue", "nsfs", "overlay", "proc", "pstore", "ramfs", "rpc_pipefs",
    "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs",
)
# Types whose probe waits on a server (or a user process) and so may hang.
NETWORK_FSTYPES = ("9p", "afs", "beegfs", "ceph", "cifs", "fuse", "fuse.*", "fuseblk", "glusterfs", "gpfs",
                   "lustre", "ncpfs", "nfs", "nfs4", "smb3", "smbfs", "sshfs", "virtiofs")
# Types an ordinary user can mount (FUSE, through fusermount): their source names whatever the user chose.
USER_FSTYPES = ("fuse", "fuse.*", "fuseblk")
DEFAULT_PROBE_TIMEOUT = 5.0
DISK_PASSES = 4  # probe timeouts a reading takes at most: df in batches, then one mount a call, then statvfs twice
MAX_PROBE_TIMEOUT = 600.0
DEFAULT_MAX_WORKERS = 4  # forked statvfs workers; df children are cheap and all run at once

# One df call prints blocks (in bytes) and inodes of every mount point given.
DF_OPTIONS = ("-B1", "--output=size,used,avail,itotal,iused")
DF_HEADER = ["1B-blocks", "Used", "Avail", "Inodes", "IUsed"]  # LC_ALL=C is forced by _command
_DF_ROW = re.compile(r"\s*" + r"\s+".join([r"(-?\d+|-)"] * 5) + r"\s*")
# strerror text (C locale) -> errno, to turn df's messages back into the errno a statvfs probe gives.
_ERRNOS = {os.strerror(code): code for code in sorted(errno.errorcode, reverse=True)}

Probe = Dict[str, int]  # what one probe learnt about one mount point (or an errno)
Prober = Callable[[str], Probe]
Outcome = Tuple[Optional[Probe], Optional[str]]  # (probe, None) or (None, error)


class DiskError(ValueError):
    """The mount table cannot be read or the selection is malformed; nothing was probed."""


@dataclass
class Filesystem:
    """One reported filesystem: ``df -P`` and ``df -Pi`` numbers, or the error that replaced them.

    ``device``, ``fstype`` and ``mount`` are the names as shown (``Mount.shown``), escaped.
    """

    device: str
    fstype: str
    mount: str
    size_bytes: Optional[int] = None
    used_bytes: Optional[int] = None
    avail_bytes: Optional[int] = None
    use_pct: Optional[int] = None
    inodes_total: Optional[int] = None
    inodes_used: Optional[int] = None
    inode_pct: Optional[int] = None
    error: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        """The fields as a dict, in order: a shallow copy, as every field is a number, a str or None.

        (``dataclasses.asdict`` copies recursively and cost a tenth of a
        200-filesystem report.)
        """
        return dict(self.__dict__)


@dataclass(frozen=True)
class Selection:
    """Which mounts to report: glob patterns on mount points and filesystem types.

    A mount point matched by ``include_mounts`` is reported whatever its
    type, so ``include_mounts: [/dev/shm]`` watches a tmpfs without editing
    ``exclude_fstypes``; ``exclude_mounts`` always wins.
    """

    include_mounts: Sequence[str] = ()
    exclude_mounts: Sequence[str] = ()
    exclude_fstypes: Sequence[str] = PSEUDO_FSTYPES

    def check(self) -> None:
        for name in ("include_mounts", "exclude_mounts", "exclude_fstypes"):
            for pattern in getattr(self, name):
                if not isinstance(pattern, str) or not pattern.strip():
                    raise DiskError(f"{name}: every entry must be a non-empty string, got {pattern!r}")

    def wanted(self, mount: Mount) -> bool:
        """Patterns match a name as it is or as the report shows it (escaped), whichever the user wrote."""
        if _either(mount.mount, self.exclude_mounts):
            return False
        if self.include_mounts:
            return _either(mount.mount, self.include_mounts)
        return not _either(mount.fstype, self.exclude_fstypes)


def _matches(value: str, patterns: Sequence[str]) -> bool:
    return bool(patterns) and _compiled(tuple(patterns))(value) is not None


def _either(name: str, patterns: Sequence[str]) -> bool:
    """*name* or its escaped form matches: a pattern copied from the report finds the odd mount it shows."""
    if not patterns:
        return False
    if _matches(name, patterns):
        return True
    shown = printable(name)
    return shown != name and _matches(shown, patterns)


@functools.lru_cache(maxsize=32)
def _compiled(patterns: Tuple[str, ...]) -> Callable[[str], Any]:
    """One regular expression for a list of globs: the default list is matched against every mount."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match


def visible(mounts: Sequence[Mount]) -> List[Mount]:
    """Drop mounts hidden under a later mount on the same mount point.

    ``statvfs(path)`` sees only the top mount, so reporting the ones below
    would repeat its numbers under another device name. Every line comes
    from the kernel (read as it writes them), so a name cannot forge a
    later mount on another mount point and hide it.
    """
    top = {m.mount: i for i, m in enumerate(mounts)}
    return [m for i, m in enumerate(mounts) if top[m.mount] == i]


def probe(path: str) -> Probe:
    """``stat`` and ``statvfs`` of one mount point; runs in a worker because it may never return."""
    try:
        st = os.stat(path)
        vfs = os.statvfs(path)
    except OSError as exc:
        return {"errno": exc.errno or 0}
    return {"is_dir": int(stat.S_ISDIR(st.st_mode)), "frsize": vfs.f_frsize or vfs.f_bsize,
            "blocks": vfs.f_blocks, "bfree": vfs.f_bfree, "bavail": vfs.f_bavail,
            "files": vfs.f_files, "ffree": vfs.f_ffree}


def ceil_pct(part: int, whole: int) -> Optional[int]:
    """Percentage rounded up, as df rounds it: 80.1% is 81%, so a threshold is never missed."""
    if whole <= 0:
        return None
    return -(-part * 100 // whole)


def usage(mount: Mount, got: Probe) -> Filesystem:
    """The numbers df -P and df -Pi print, in bytes, from one probe.

    Use % is used / (used + available), not used / size: blocks reserved
    for root count neither as used nor as available, exactly as in df.
    """
    frsize = got["frsize"]
    used_blocks = max(0, got["blocks"] - got["bfree"])
    avail_blocks = max(0, got["bavail"]) if got["bavail"] < 1 << 63 else 0
    inodes_used = max(0, got["files"] - got["ffree"])
    return Filesystem(
        **mount.shown(),
        size_bytes=got["blocks"] * frsize, used_bytes=used_blocks * frsize,
        avail_bytes=avail_blocks * frsize, use_pct=ceil_pct(used_blocks, used_blocks + avail_blocks),
        inodes_total=got["files"], inodes_used=inodes_used, inode_pct=ceil_pct(inodes_used, got["files"]),
    )


def _keys(mount: Mount) -> List[Tuple[str, ...]]:
    """What makes two mount entries one filesystem: the device number, or the same type on the same /dev path.

    btrfs subvolumes get a device number each but share the /dev path and
    every number; they are one filesystem in a disk report. The source of a
    FUSE mount is whatever its user chose (``-o fsname=/dev/sda1``), so it
    never joins a mount to another: only the kernel's device number does.
    """
    keys = [("dev", mount.dev)] if mount.dev else []
    if mount.device.startswith("/dev/") and not _matches(mount.fstype, USER_FSTYPES):
        keys.append(("source", mount.fstype, mount.device))
    return keys


def _preference(mount: Mount, fs: Filesystem) -> Tuple[bool, bool, int]:
    """Sort key choosing the view of a device to report: probed, whole filesystem, shortest path."""
    return (fs.error is not None, mount.root != "/", len(mount.mount))


def keep(probed: Sequence[Tuple[Mount, Optional[Probe], Optional[str]]]) -> List[Filesystem]:
    """Turn probe results into the reported filesystems, one per device, in mount order.

    Dropped: mount points that are files (bind mounts of single files),
    mounts that vanished while probed, and filesystems with no blocks
    (``df`` hides those too).
    """
    groups: Dict[Tuple[str, ...], int] = {}
    best: Dict[int, Tuple[int, Mount, Filesystem]] = {}
    for order, (mount, got, failure) in enumerate(probed):
        fs = _to_filesystem(mount, got, failure)
        if fs is None:
            continue
        keys = _keys(mount)
        group = next((groups[k] for k in keys if k in groups), order)
        groups.update({k: group for k in keys})
        held = best.get(group)
        if held is None:
            best[group] = (order, mount, fs)
        elif _preference(mount, fs) < _preference(held[1], held[2]):
            best[group] = (held[0], mount, fs)
    return [held[2] for held in sorted(best.values(), key=lambda held: held[0])]


def _to_filesystem(mount: Mount, got: Optional[Probe], failure: Optional[str]) -> Optional[Filesystem]:
    if failure is not None:
        return Filesystem(**mount.shown(), error=failure)
    if got is None:
        return None
    if "errno" in got:
        if got["errno"] in (errno.ENOENT, errno.ENOTDIR):
            return None  # unmounted while we looked
        return Filesystem(**mount.shown(), error=f"cannot read usage: {os.strerror(got['errno'])}")
    if not got["is_dir"] or got["blocks"] == 0:
        return None
    return usage(mount, got)


def batches(mounts: Sequence[Mount]) -> List[List[int]]:
    """Probe tasks as lists of indices: all local filesystems in one, each network mount alone.

    A probe takes microseconds but a task costs a round trip to a worker,
    so local filesystems (hundreds of bind mounts on a container host) go
    together; network mounts, the ones that hang, get a task and so a
    worker of their own, and hang in parallel.
    """
    local = [i for i, m in enumerate(mounts) if not _matches(m.fstype, NETWORK_FSTYPES)]
    remote = [[i] for i, m in enumerate(mounts) if _matches(m.fstype, NETWORK_FSTYPES)]
    return ([local] if local else []) + remote


def default_workers(tasks: int) -> int:
    """One worker per task, at most 4: each costs a fork, and a hung mount holds one for the whole timeout."""
    return max(1, min(tasks, DEFAULT_MAX_WORKERS))


def probe_mounts(mounts: Sequence[Mount], timeout: float, workers: Optional[int] = None,
                 prober: Prober = probe, heartbeat: Optional[Callable[[], None]] = None) -> List[Outcome]:
    """(probe, None) or (None, error) per mount, *prober* run in worker processes with a timeout.

    The alternative to ``df_probe_mounts``: used when a *prober* is given
    (tests, other platforms) or when there is no ``df`` we understand.

    A batch of local filesystems that fails (one of them hung, or a
    crash) is probed again one mount per task, so only the culprit is
    reported: a hung local disk costs at most two timeouts.
    """
    results: List[Outcome] = [(None, None)] * len(mounts)

    def run(task: List[int]) -> List[Probe]:
        return [prober(mounts[i].mount) for i in task]

    retry = _probe_round(batches(mounts), run, results, timeout, workers, heartbeat)
    if retry:
        _probe_round([[i] for i in retry], run, results, timeout, workers, heartbeat)
    return results


def _probe_round(tasks: List[List[int]], run: Callable[[List[int]], List[Probe]],
                 results: List[Outcome], timeout: float,
                 workers: Optional[int], heartbeat: Optional[Callable[[], None]] = None) -> List[int]:
    """One fan-out over *tasks*, filling *results*; returns the mounts of failed multi-mount tasks."""
    count = default_workers(len(tasks)) if workers is None else min(workers, len(tasks))
    retry: List[int] = []
    for task, outcome in zip(tasks, _fanout.fan_out(run, tasks, count, timeout=timeout, heartbeat=heartbeat)):
        if outcome.ok:
            for i, got in zip(task, outcome.value):
                results[i] = (got, None)
        elif len(task) > 1:
            retry.extend(task)
        else:
            results[task[0]] = (None, _describe(outcome.error, timeout))
    return retry


def df_argv(df: str, paths: Sequence[str]) -> List[str]:
    """The df call for *paths*: ``M/.`` so that a mount point that is a file fails (ENOTDIR) and is dropped."""
    return [df, *DF_OPTIONS, "--"] + [path.rstrip("/") + "/." for path in paths]


def _df_row(columns: Sequence[str]) -> Probe:
    """df's five numbers as a probe with 1-byte blocks: usage() then gives df's numbers back.

    df prints a negative used or available count for the values statvfs
    gives as "negative"; they map back to what usage() clamps to 0.
    """
    size, used, avail, itotal, iused = (0 if c == "-" else int(c) for c in columns)
    return {"is_dir": 1, "frsize": 1, "blocks": size, "bfree": size - used,
            "bavail": avail if avail >= 0 else avail + (1 << 64), "files": itotal, "ffree": itotal - iused}


def _df_error(text: str, args: Sequence[str], taken: Dict[int, Probe]) -> Optional[Tuple[int, Probe]]:
    """Which argument a df error line (program name stripped) is about, and its errno; None if unclear."""
    for i, arg in enumerate(args):
        if i in taken:
            continue
        for quoted in (arg, f"'{arg}'"):
            if text.startswith(quoted + ": ") and text[len(quoted) + 2:] in _ERRNOS:
                return i, {"errno": _ERRNOS[text[len(quoted) + 2:]]}
    if len(args) == 1 and not taken:  # one argument, oddly quoted: the message alone says enough
        message = text.rsplit(": ", 1)[-1]
        if ": " in text and message in _ERRNOS:
            return 0, {"errno": _ERRNOS[message]}
    return None


def parse_df(output: str, argv: Sequence[str], rc: Optional[int]) -> Optional[List[Probe]]:
    """One probe per mount point of a df call from its output (stdout and stderr merged), or None.

    df prints one row per argument it could read, in argument order, and
    an error line ``df: ARG: MESSAGE`` (exit code 1) for each it could
    not. None when the output cannot be matched to the arguments line by
    line (a crash, an unknown message, a df without ``--output``): the
    caller asks again one mount per call, then falls back to statvfs.
    """
    args = list(argv[argv.index("--") + 1:])
    programs = (f"{argv[0]}: ", f"{os.path.basename(argv[0])}: ")
    rows: List[Probe] = []
    failed: Dict[int, Probe] = {}
    for line in output.splitlines():
        match = _DF_ROW.fullmatch(line)
        if match:
            rows.append(_df_row(match.groups()))
            continue
        if not line.strip() or line.split() == DF_HEADER:
            continue
        program = next((p for p in programs if line.startswith(p)), None)
        found = _df_error(line[len(program):], args, failed) if program else None
        if found is None:
            return None
        failed[found[0]] = found[1]
    clean = (rc == 0 and not failed) or (rc == 1 and bool(failed))  # df exits 1 when an argument failed
    if not clean or len(rows) + len(failed) != len(args):
        return None
    answers = iter(rows)
    return [failed[i] if i in failed else next(answers) for i in range(len(args))]


def df_probe_mounts(mounts: Sequence[Mount], timeout: float, workers: Optional[int] = None,
                    df: str = "df", heartbeat: Optional[Callable[[], None]] = None) -> List[Outcome]:
    """(probe, None) or (None, error) per mount, read by df calls each killed after *timeout* seconds.

    Tasks as in batches(): local filesystems in one df call, each network
    mount in its own, up to *workers* calls at once (default: all). A
    multi-mount call that times out or fails is repeated one mount per
    call, so a hung local disk costs at most two timeouts. Mounts whose
    lone df call gives an answer we do not understand (a df without
    ``--output``, an unknown message) are probed by statvfs workers
    (probe_mounts) instead. Raises MissingBinaryError without df.
    """
    df = _command.which(df)
    results: List[Outcome] = [(None, None)] * len(mounts)
    unclear: List[int] = []
    retry = _df_round(batches(mounts), mounts, df, results, unclear, timeout, workers, heartbeat)
    if retry:
        _df_round([[i] for i in retry], mounts, df, results, unclear, timeout, workers, heartbeat)
    if unclear:
        again = probe_mounts([mounts[i] for i in unclear], timeout, workers, heartbeat=heartbeat)
        for i, outcome in zip(unclear, again):
            results[i] = outcome
    return results


def _df_round(tasks: List[List[int]], mounts: Sequence[Mount], df: str, results: List[Outcome],
              unclear: List[int], timeout: float, workers: Optional[int],
              heartbeat: Optional[Callable[[], None]] = None) -> List[int]:
    """One run_many over *tasks*, filling *results*; returns the mounts of failed multi-mount tasks."""
    argvs = [df_argv(df, [mounts[i].mount for i in task]) for task in tasks]
    count = min(len(tasks), _fanout.MAX_WORKERS if workers is None else workers)
    retry: List[int] = []
    for index, result in _command.run_many(argvs, concurrency=count, timeout=timeout, heartbeat=heartbeat):
        task = tasks[index]
        probes = None if result.timed_out else parse_df(result.stdout, argvs[index], result.rc)
        if probes is not None:
            for i, got in zip(task, probes):
                results[i] = (got, None)
        elif len(task) > 1:
            retry.extend(task)
        elif result.timed_out:
            results[task[0]] = (None, _describe("timed out", timeout))
        else:
            unclear.append(task[0])
    return retry


def check_workers(workers: Optional[int]) -> Optional[int]:
    """None (choose per run) or a worker count fan_out accepts."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not 1 <= int(workers) <= _fanout.MAX_WORKERS:
        raise DiskError(f"workers must be between 1 and {_fanout.MAX_WORKERS}, got {workers}")
    return int(workers)


def check_timeout(timeout: float) -> float:
    timeout = float(timeout)
    if not 0 < timeout <= MAX_PROBE_TIMEOUT:
        raise DiskError(f"probe_timeout must be more than 0 and at most {MAX_PROBE_TIMEOUT:g} seconds, got {timeout:g}")
    return timeout


class Reading(list):
    """The filesystems one reading found (a list, in mount order) and its ``warnings``.

    A list, so that callers that only want the filesystems (and readers
    that stand in for this one) need nothing else; ``warnings`` names each
    mount-table line that could not be read, so no filesystem goes missing
    without a word.
    """

    def __init__(self, filesystems: Sequence[Filesystem] = (), warnings: Sequence[str] = ()):
        super().__init__(filesystems)
        self.warnings = list(warnings)


def read_filesystems(selection: Selection = Selection(), timeout: float = DEFAULT_PROBE_TIMEOUT,
                     workers: Optional[int] = None, mounts: Optional[Sequence[Mount]] = None,
                     prober: Optional[Prober] = None, heartbeat: Optional[Callable[[], None]] = None) -> Reading:
    """Every selected filesystem with its usage, each device once, in mount order, as a Reading.

    The Reading's ``warnings`` name the mount-table lines that could not be
    read (none when *mounts* is given). A mount whose probe does not
    finish within *timeout* seconds is reported with ``error`` set and no
    numbers. The probe is GNU ``df`` (df_probe_mounts), *workers* calls at
    once (default: all); without ``df``, or when *prober* is given (tests,
    other platforms), *prober* (default: ``probe``, statvfs) runs in
    *workers* worker processes (default: at most 4). *mounts* replaces the
    mount table. Raises DiskError for bad input, MountTableError without a
    mount table, and _fanout.FanOutError if no worker process can be
    started (OSError if no df process can be). *heartbeat* is called at least every quarter second
    while the probes run (``DISK_PASSES`` x *timeout* at most).
    """
    selection.check()
    timeout = check_timeout(timeout)
    workers = check_workers(workers)
    table = read_mounts() if mounts is None else MountTable("", list(mounts))
    chosen = [m for m in visible(table.mounts) if selection.wanted(m)]
    if not chosen:
        return Reading([], table.warnings())
    results = None
    if prober is None:
        try:
            results = df_probe_mounts(chosen, timeout, workers, heartbeat=heartbeat)
        except _command.MissingBinaryError:
            pass  # no df (a minimal image without coreutils): statvfs in workers gives the same numbers
    if results is None:
        results = probe_mounts(chosen, timeout, workers, probe if prober is None else prober, heartbeat)
    return Reading(keep([(mount, got, error) for mount, (got, error) in zip(chosen, results)]), table.warnings())


def _describe(error: str, timeout: float) -> str:
    first = error.splitlines()[0] if error else "the probe failed"
    if first.startswith("timed out"):
        return f"probe timed out after {timeout:g}s: the mount is hung (stale NFS or dead FUSE server?)"
    return f"probe failed: {first}"
