# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print, as JSON, what a daemon looks like from /proc: run on the test instance by verify.yml.

Usage: python3 inspect_daemon.py PIDFILE
"""

import errno
import fcntl
import json
import os
import pwd
import sys


def main(pidfile):
    facts = {"pidfile": pidfile, "pidfile_exists": os.path.exists(pidfile)}
    if not facts["pidfile_exists"]:
        print(json.dumps(facts))
        return 0
    with open(pidfile, encoding="ascii") as handle:
        text = handle.read().strip()
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            facts["pidfile_locked"] = False
        except OSError as exc:
            facts["pidfile_locked"] = exc.errno in (errno.EAGAIN, errno.EACCES)
    pid = int(text) if text.isdigit() else 0
    facts["pid"] = pid
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            rest = handle.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)
    except (OSError, ValueError):
        facts["alive"] = False
        print(json.dumps(facts))
        return 0
    uid = int(status["Uid"].split()[1])
    facts.update(
        alive=rest[0] != "Z",
        ppid=int(rest[1]),
        session=int(rest[3]),
        session_leader=int(rest[3]) == pid,
        tty_nr=int(rest[4]),
        cwd=os.readlink(f"/proc/{pid}/cwd"),
        umask=status.get("Umask"),
        user=pwd.getpwuid(uid).pw_name,
        stdin=os.readlink(f"/proc/{pid}/fd/0"),
        stdout=os.readlink(f"/proc/{pid}/fd/1"),
        stderr=os.readlink(f"/proc/{pid}/fd/2"),
    )
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
