# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet of N hosts as fleet_report receives it from playbooks/site.yml: the benchmark's and the 10k page's data.

Standard library only, and deterministic (one seed). Each host's disk
report is what disk_report returns for 8 to 12 filesystems (every field,
with reasons and a forecast from the watcher's history); the addresses
(one per host and a tenth more) are swept by four sweepers, a quarter
each, and come back as ranges (``alive_ranges``/``dead_ranges``), as
ping_sweep returns a sweep larger than its list_limit. About 2 % of the
filesystems are warn or crit (some for their inodes alone, at low use),
1 % of the hosts unreachable and 0.5 % failed, each with a reason as
site.yml passes it.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any, Dict, List

G = 1 << 30
MOUNTS = ("/", "/boot", "/boot/efi", "/var", "/var/log", "/var/lib/docker", "/home", "/srv", "/tmp", "/opt",
          "/data", "/backup")
DEVICES = ("/dev/sda1", "/dev/sda2", "/dev/nvme0n1p1", "/dev/mapper/vg0-var", "/dev/mapper/vg0-log",
           "/dev/md0", "/dev/sdb1", "fileserver:/export")
SIZES = (1 * G, 20 * G, 50 * G, 100 * G, 500 * G, 2048 * G, 8192 * G)
NOW = 1_796_000_000.0
UNREACHABLE = "Failed to connect to the host via ssh: ssh: connect to host {addr} port 22: Connection timed out"
FAILED = "Gather facts: Missing sudo password"


def _status(use: int, inode: int, avail: int, size: int) -> tuple:
    """disk_report's status and reasons with its defaults (warn 80, crit 90, inodes the same) and free_crit 1G."""
    reasons, level = [], 0
    for pct, what in ((use, "use"), (inode, "inode use")):
        if pct >= 90:
            reasons.append(f"{what} {pct}% is at or above crit 90%")
            level = 2
        elif pct >= 80:
            reasons.append(f"{what} {pct}% is at or above warn 80%")
            level = max(level, 1)
    if avail < G and size >= 4096 * G:  # a floor for the big data volumes: 1G free on 4T or more
        reasons.append(f"{avail / 2 ** 20:.0f}M free is below free_crit 1.0G")
        level = 2
    return ("ok", "warn", "crit")[level], reasons


def filesystem(rng: random.Random, mount: str) -> Dict[str, Any]:
    size = rng.choice(SIZES)
    roll = rng.random()
    use = rng.randint(80, 89) if roll < 0.015 else rng.randint(90, 99) if roll < 0.02 else rng.randint(1, 79)
    inode = rng.randint(91, 100) if rng.random() < 0.002 else rng.randint(0, 40)
    used = size * use // 100
    avail = size - used
    if size >= 4096 * G and rng.random() < 0.01:
        used, avail = size - G // 2, G // 2
    status, reasons = _status(use, inode, avail, size)
    rate = rng.choice((None, None, 0.0, rng.uniform(-0.5, 3.0) * G))
    days = avail / rate if rate else None
    return {"device": rng.choice(DEVICES), "fstype": "ext4" if mount != "/boot/efi" else "vfat", "mount": mount,
            "size_bytes": size, "used_bytes": used, "avail_bytes": avail, "use_pct": use,
            "inodes_total": 6553600, "inodes_used": 65536 * inode, "inode_pct": inode, "error": None,
            "status": status, "reasons": reasons,
            "forecast": {"rate_per_day": rate, "days_to_full": None if days is None or days < 0 else days,
                         "full_at": None if not days or days < 0 else NOW + days * 86400, "span_s": 259200.0}}


def _ranges(addresses: List[str]) -> List[str]:
    """ping_sweep's ranges: one entry per /24, ``10.0.1.1-7,9,12-250``."""
    by_net: Dict[str, List[int]] = {}
    for address in addresses:
        net, last = address.rsplit(".", 1)
        by_net.setdefault(net, []).append(int(last))
    out = []
    for net, lasts in by_net.items():
        runs, start, prev = [], lasts[0], lasts[0]
        for value in lasts[1:] + [None]:
            if value is not None and value == prev + 1:
                prev = value
                continue
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            if value is not None:
                start = prev = value
        out.append(f"{net}.{','.join(runs)}")
    return out


def fleet(count: int, seed: int = 19) -> Dict[str, Any]:
    """fleet_report's inputs for *count* hosts: sweeps, disk_reports, hosts, unreachable, failed, failure_reasons."""
    rng = random.Random(seed)
    kinds = ("web", "db", "cache", "app", "mq", "lb", "batch", "store")
    hosts = [f"{kinds[i % len(kinds)]}-{i // len(kinds) + 1:05d}.dc{i % 3 + 1}.example.com" for i in range(count)]
    base = int(ipaddress.IPv4Address("10.16.0.1"))
    addresses = [str(ipaddress.IPv4Address(base + i + i // 250 * 6)) for i in range(count + count // 10)]
    unreachable, failed, reasons, disks = [], [], {}, {}
    for i, host in enumerate(hosts):
        roll = rng.random()
        if roll < 0.01:
            unreachable.append(host)
            reasons[host] = UNREACHABLE.format(addr=addresses[i])
        elif roll < 0.015:
            failed.append(host)
            reasons[host] = FAILED
        else:
            mounts = rng.sample(MOUNTS, rng.randint(8, 12))
            disks[host] = {"filesystems": [filesystem(rng, m) for m in sorted(mounts)]}
    down = set(rng.sample(addresses, max(1, len(addresses) // 40))) | {addresses[hosts.index(h)] for h in unreachable}
    sweeps = {}
    for s in range(4):
        part = addresses[s::4]
        sweeps[f"sweeper-{s + 1}.dc1.example.com"] = {
            "alive_ranges": _ranges([a for a in part if a not in down]),
            "dead_ranges": _ranges([a for a in part if a in down]),
            "names": {}, "errors": {}, "summary": {"total": len(part)}}
    return {"sweeps": sweeps, "disk_reports": disks, "hosts": hosts, "unreachable": unreachable, "failed": failed,
            "failure_reasons": reasons}
