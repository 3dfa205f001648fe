# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reports to look at: a disk report and fleet reports of one and fifty hosts, made by the real renderers.

Every status occurs (ok, warn, crit; unreachable and failed hosts; a host
without a disk report), filesystems with and without fill rates, and an
"Undelivered mail" section read from a real spool (a dead letter and a
quarantined file). ``hostile=True`` puts markup and quotes where hosts put
data: host names, mount points, devices, error texts, address names.
"""

import datetime
import json
import os

from ansible_collections.sysops.fleet.plugins.module_utils import _disk, _fleet, _history, _mail
from ansible_collections.sysops.fleet.plugins.module_utils import _mail_delivery, _mail_spool, _report

G = 1024 ** 3
NOW = datetime.datetime(2026, 11, 27, 6, 0, tzinfo=datetime.timezone.utc)
SCRIPT = "<script>alert(1)</script>"
HOSTILE_HOST = f'{SCRIPT}"web\'1'
HOSTILE_MOUNT = "/mnt/\"quoted\" & 'single' <b>bold</b>"
HOSTILE_DEVICE = "<img src=x onerror=alert(2)>"
HOSTILE_NAME = "\"><svg onload=alert(3)>"
HOSTILE_REASON = "Report this host's disks: <i onmouseover=alert(4)>no</i> & \"quoted\""
HOSTILE_TEXTS = (HOSTILE_HOST, HOSTILE_MOUNT, HOSTILE_DEVICE, HOSTILE_NAME, HOSTILE_REASON)
# Why the failed hosts failed, as playbooks/site.yml passes it: the task, then Ansible's error.
REASONS = ("Gather facts: Missing sudo password",
           "Install the watcher: Destination /opt/sysops-fleet/lib not writable: a read-only file system")


def spool_with_undelivered(spool: str, subject: str = "Nightly Disk Usage Report for web1") -> str:
    """A spool holding one dead letter (refused with a 550) and one quarantined file, made by _mail_spool."""
    message = _mail.build_message(_mail.parse_address("report@web1.example.com", "mail_from"),
                                  [_mail.parse_address("gone@example.com", "mail_to")], subject, "text\n",
                                  "<p>html</p>", domain="web1.example.com").as_bytes(policy=_mail.POLICY)
    _mail_spool.bury(spool, message, "report@web1.example.com",
                     {"gone@example.com": "550 5.1.1 mailbox <unavailable>"})
    broken = os.path.join(spool, "broken.eml")
    with open(broken, "wb"):
        pass
    _mail_spool.quarantine(spool, broken, "is empty")
    return spool


def disk_filesystem(mount, use, device="/dev/sda1", fstype="ext4", size=100 * G, inode=12, error=None):
    if error:
        return _disk.Filesystem(device, fstype, mount, error=error)
    used = size * use // 100
    return _disk.Filesystem(device, fstype, mount, size_bytes=size, used_bytes=used, avail_bytes=size - used,
                            use_pct=use, inodes_total=6553600, inodes_used=65536 * inode, inode_pct=inode)


def disk_report(spool: str, hostile: bool = False) -> _report.Report:
    """web1's nightly report: a dozen filesystems of every status, fill rates, and undelivered mail."""
    odd = HOSTILE_MOUNT if hostile else "/mnt/backup"
    filesystems = [
        disk_filesystem("/", 47),
        disk_filesystem("/boot", 31, "/dev/sda2", size=G // 2),
        disk_filesystem("/var", 93, "/dev/mapper/vg0-var", "xfs"),
        disk_filesystem("/var/log", 84, "/dev/mapper/vg0-log", "xfs", size=20 * G),
        disk_filesystem("/home", 62, "/dev/sdb1", size=2048 * G),
        disk_filesystem("/srv/data", 71, "/dev/md0", size=8192 * G, inode=91),
        disk_filesystem("/tmp", 3, "/dev/sda5", size=10 * G),
        disk_filesystem(odd, 55, HOSTILE_DEVICE if hostile else "/dev/sdc1", size=4096 * G),
        disk_filesystem("/mnt/nfs", 0, "fileserver:/export", "nfs4",
                        error=(f'probe timed out after 5s: "{SCRIPT}"' if hostile
                               else "probe timed out after 5s: the mount is hung")),
        disk_filesystem("/opt", 12, "/dev/sda6", size=40 * G),
    ]
    report = _report.build(filesystems, _report.Thresholds(), HOSTILE_HOST if hostile else "web1", now=NOW)
    now = NOW.timestamp()
    day = _history.DAY
    items = [
        _history.Forecast("/", 1.2 * G, 53 * G, 53 / 1.2, now + 53 / 1.2 * day, 3 * day),
        _history.Forecast("/var", 2.5 * G, 7 * G, 2.8, now + 2.8 * day, 3 * day),
        _history.Forecast("/var/log", 9 * G, 3.2 * G, 3.2 / 9, now + 3.2 / 9 * day, 3 * day),
        _history.Forecast("/home", 0.0, 778 * G, span_s=3 * day),
        _history.Forecast("/srv/data", -40 * G, 2400 * G, span_s=3 * day),
        _history.Forecast(odd, None, 1800 * G, span_s=300.0),
        _history.Forecast("/opt", None, 35 * G, span_s=0.0),
    ]
    _report.add_section(report, _history.render_text(items), _history.render_html(items))
    _report.add_section(report, *_mail_delivery.undelivered_section(spool))
    return report


def fleet_filesystem(mount, use, status, days=None, rate=None, avail=None, inode=5.0):
    """A filesystem as disk_report returns it: its status and reasons from the real ``_report.assess``."""
    row = {"mount": mount, "device": "/dev/vda1", "fstype": "ext4", "size_bytes": 50 * G,
           "used_bytes": int(50 * G * use / 100), "avail_bytes": avail if avail is not None else int(50 * G * (100 - use) / 100),
           "use_pct": use, "inode_pct": inode, "status": status}
    probed = _disk.Filesystem(row["device"], row["fstype"], mount, row["size_bytes"], row["used_bytes"],
                              row["avail_bytes"], use, 6553600, int(65536 * inode), inode)
    assessed, row["reasons"] = _report.assess(probed, _report.Thresholds())
    assert assessed == status, (mount, use, inode, assessed, status)
    if days is not None or rate is not None:
        row["forecast"] = {"days_to_full": days, "rate_per_day": rate}
    return row


def fleet_inputs(count: int, hostile: bool = False):
    """sweeps, disk_reports, hosts, unreachable, failed, failure_reasons, previous state for *count* hosts."""
    kinds = ("web", "db", "cache", "app", "mq")
    hosts = [f"{kinds[i % len(kinds)]}{i // len(kinds) + 1:02d}" for i in range(count)]
    if hostile:
        hosts[0] = HOSTILE_HOST
    unreachable = hosts[3:count:17][:3] if count > 1 else []
    failed = hosts[5:count:19][:2] if count > 1 else []
    reasons = dict(zip(failed, REASONS))
    if hostile and failed:
        reasons[failed[0]] = HOSTILE_REASON
    disks = {}
    for i, host in enumerate(hosts):
        if host in unreachable or host in failed or (count > 1 and i % 23 == 11):
            continue  # no disk report: unreachable, failed, or (i % 23 == 11) reachable but not reporting
        use = (37 * i) % 60 + 20.0
        status = "crit" if use >= 90 else "warn" if use >= 80 else "ok"
        filling = i % 3 == 1
        rows = [fleet_filesystem("/", use, status, days=(1.5 + i / 3 if filling else None),
                                 rate=((0.3 + i % 7) * G if filling else None))]
        if i % 4 == 0:
            rows.append(fleet_filesystem(HOSTILE_MOUNT if hostile and i == 0 else "/var", 91.0 + i % 9, "crit",
                                         days=0.4 + i / 25, rate=(1 + i % 5) * G))
        if i % 5 == 1:
            rows.append(fleet_filesystem("/srv", 82.5, "warn", rate=-1.0 * G))
        if i % 13 == 7:  # crit for its inodes alone, at 12% use: never among the fullest
            rows.append(fleet_filesystem("/var/spool", 12.0, "crit", inode=99.0))
        disks[host] = {"filesystems": rows}
    alive = [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(count)]
    dead = [alive.pop(3)] if count > 1 else []
    names = dict(zip(alive, hosts))
    if hostile:
        names[alive[0]] = HOSTILE_NAME
    sweeps = {"sweeper-a": {"alive": alive, "dead": dead,
                            "hosts": {a: {"alive": True, "name": names[a]} for a in alive}}}
    previous = {"alive": alive[1:] + dead + ["127.9.9.9"]} if count > 1 else None
    return sweeps, disks, hosts, unreachable, failed, reasons, previous


def fleet_report(count: int, report_dir: str, spool: str, hostile: bool = False) -> str:
    """The fleet report's HTML file for *count* hosts, written by ``_fleet.run`` with the undelivered mail of *spool*."""
    sweeps, disks, hosts, unreachable, failed, reasons, previous = fleet_inputs(count, hostile)
    os.makedirs(report_dir, exist_ok=True)
    if previous is not None:
        with open(os.path.join(report_dir, "fleet-state.json"), "w", encoding="utf-8") as state:
            json.dump(previous, state)
    result = _fleet.run({"report_dir": report_dir, "sweeps": sweeps, "disk_reports": disks, "hosts": hosts,
                         "unreachable": unreachable, "failed": failed, "failure_reasons": reasons,
                         "spool_dir": spool, "send": "never"})
    assert not result["error"], result["error"]
    return result["files"]["html"]
