# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run inside a fleet container by the fleet test (tests/fleet/run.py): two days of steady growth, then real growth.

Usage (in the container): python3 - MOUNT HISTORY_FILE GROW_BYTES OWNER < seed_history.py
Writes GROW_BYTES of real data to MOUNT (yesterday's growth), then
HISTORY_FILE (the watcher's history format): a sample an hour over the two
days before, on the line of a steady growth of GROW_BYTES a day that ends
where MOUNT will be once today's GROW_BYTES are written, owned with its
directory (mode 0750, as the daemon makes it) by OWNER, the daemon's user,
as on a host where the watcher has run for two days; then writes today's
GROW_BYTES to MOUNT. The play's disk_report adds today's sample. A
forecast gets a date only for steady growth seen day over day with its 95 %
interval above zero (plugins/module_utils/_trend.py): one sample a day ago
is not enough. Days cannot be waited for in a test; today's growth is real.
"""
import json
import os
import pwd
import sys
import time


def write(path, size):
    """*size* bytes of real data in *path*, on the disk when this returns."""
    block = b"\xa5" * (1 << 20)
    with open(path, "wb") as handle:
        for unused in range(size // len(block)):
            handle.write(block)
        handle.write(block[:size % len(block)])
        handle.flush()
        os.fsync(handle.fileno())


def main(argv):
    mount, history_file, grow, owner = argv[1], argv[2], int(argv[3]), pwd.getpwnam(argv[4])
    write(os.path.join(mount, "grown-yesterday"), grow)
    info = os.statvfs(mount)
    now = time.time()
    used = (info.f_blocks - info.f_bfree) * info.f_frsize + grow  # once today's growth is written
    avail = info.f_bavail * info.f_frsize - grow
    samples = [[now - hours * 3600, round(used - grow * hours / 24), round(avail + grow * hours / 24)]
               for hours in range(47, 0, -1)]
    directory = os.path.dirname(history_file)
    os.makedirs(directory, mode=0o750, exist_ok=True)
    with open(history_file, "w", encoding="utf-8") as handle:
        json.dump({"version": 1, "filesystems": {mount: samples}}, handle)
    for path in (directory, history_file):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    write(os.path.join(mount, "grown-today"), grow)
    used, avail = samples[0][1], samples[0][2]
    print(f"{mount}: used {used}, avail {avail} 47 hours ago, {grow} bytes a day since (seeded); {grow} bytes written now")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
