# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run inside a fleet container by the fleet test (tests/fleet/run.py): a day of history, then real growth.

Usage (in the container): python3 - MOUNT HISTORY_FILE GROW_BYTES OWNER < seed_history.py
Writes HISTORY_FILE (the watcher's history format) with one sample of MOUNT
as it is now but dated a day ago, owned with its directory (mode 0750, as the
daemon makes it) by OWNER, the daemon's user, as on a host where the watcher
has run for a day; then writes GROW_BYTES of real data to
MOUNT. The play's disk_report then adds today's sample: MOUNT has grown by
GROW_BYTES in a day. A day cannot be waited for in a test; the growth is real.
"""
import json
import os
import pwd
import sys
import time


def main(argv):
    mount, history_file, grow, owner = argv[1], argv[2], int(argv[3]), pwd.getpwnam(argv[4])
    info = os.statvfs(mount)
    used = (info.f_blocks - info.f_bfree) * info.f_frsize
    avail = info.f_bavail * info.f_frsize
    directory = os.path.dirname(history_file)
    os.makedirs(directory, mode=0o750, exist_ok=True)
    with open(history_file, "w", encoding="utf-8") as handle:
        json.dump({"version": 1, "filesystems": {mount: [[time.time() - 86400, used, avail]]}}, handle)
    for path in (directory, history_file):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    block = b"\xa5" * (1 << 20)
    with open(os.path.join(mount, "grown-today"), "wb") as handle:
        for unused in range(grow // len(block)):
            handle.write(block)
        handle.write(block[:grow % len(block)])
        handle.flush()
        os.fsync(handle.fileno())
    print(f"{mount}: used {used}, avail {avail} a day ago (seeded); {grow} bytes written now")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
