# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run one command and say what it cost the controller: wall time, and the CPU of it and all it started.

    python3 metered.py --result RESULT.json --log LOG [--control-dir DIR] -- COMMAND [ARG...]

The CPU is user + sys of COMMAND and of every process under it, read with
``getrusage(RUSAGE_CHILDREN)`` once all of them have been waited for. Not
all of them are COMMAND's to wait for: ssh's ControlPersist masters
daemonize out of ansible-playbook's tree and would end up under init, their
encryption work uncounted. So this process makes itself a child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``): whatever COMMAND leaves behind is
re-parented here. Once COMMAND has exited, each control master in DIR is told
to exit (``ssh -O exit``; the CPU of those small clients is taken off again),
and every child left is waited for, then sent SIGTERM by its pid after a grace
period. The wall time is COMMAND's alone: spawn to exit.

RESULT.json: ``{"rc", "seconds", "user", "sys", "cpu", "left"}`` (seconds;
``left`` lists what had to be terminated). Linux only. Run by
tests/fleet/podman_fleet.py for every play of the fleet test and its benchmark.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
GRACE = 10.0  # seconds for leftovers to exit on their own once their masters were told to


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def my_children() -> dict:
    """pid -> command line of every live process whose parent is this one (re-parented ones included)."""
    found, me = {}, os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
            if int(stat.rsplit(")", 1)[1].split()[1]) != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                found[int(entry)] = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
    return found


def reap(deadline: float) -> None:
    """Wait for every exited child until none is left or the deadline passes."""
    while time.monotonic() < deadline:
        try:
            pid, unused_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def close_masters(control_dir: str) -> tuple:
    """``ssh -O exit`` for each control socket in *control_dir*; the (user, sys) CPU those clients used."""
    user = system = 0.0
    if not control_dir or not os.path.isdir(control_dir):
        return user, system
    for name in sorted(os.listdir(control_dir)):
        client = subprocess.Popen(["ssh", "-o", f"ControlPath={os.path.join(control_dir, name)}", "-O", "exit",
                                   "fleettest-master"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        unused_pid, unused_status, usage = os.wait4(client.pid, 0)
        user += usage.ru_utime
        system += usage.ru_stime
    return user, system


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--result", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--control-dir", default="")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv[1:])
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    become_subreaper()
    with open(args.log, "wb") as log:
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        unused_pid, status, unused_usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
    rc = os.waitstatus_to_exitcode(status)
    clients_user, clients_sys = close_masters(args.control_dir)
    reap(time.monotonic() + GRACE)
    left = my_children()
    for pid in left:
        os.kill(pid, signal.SIGTERM)
    reap(time.monotonic() + GRACE)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = usage.ru_utime - clients_user, usage.ru_stime - clients_sys
    with open(args.result, "w", encoding="utf-8") as handle:
        json.dump({"rc": rc, "seconds": seconds, "user": user, "sys": system, "cpu": user + system,
                   "left": sorted(left.values())}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
