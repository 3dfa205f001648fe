#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: disk_report
short_description: Report disk and inode usage of every filesystem, with thresholds, and mail it
version_added: "0.1.0"
description:
  - Reads size, used, available, use % and inode use of every mounted filesystem, the same numbers
    C(df -P) and C(df -Pi) print, and gives each filesystem a status V(ok), V(warn) or V(crit) from
    O(warn), O(crit), O(inode_warn), O(inode_crit), O(free_warn) and O(free_crit).
  - Pseudo filesystems (O(exclude_fstypes)), bind mounts of single files (C(/etc/hosts) in a container)
    and extra views of one device (bind mounts, btrfs subvolumes) are left out; each device appears once.
    A FUSE mount never counts as a view of another device, whatever source its user gave it.
  - The mount table (C(/proc/self/mountinfo)) is read as bytes, exactly as the kernel writes it, so any
    mount point name is read back as it is (bytes that are not UTF-8, carriage returns, U+2028, text that
    looks like a mount-table line of its own) and probed under its exact bytes. Names are shown escaped,
    in the result and in the report and mail alike (see RV(filesystems[].mount)). A line of the table that
    is not a mount as the kernel writes one is never dropped in silence - the task warns, naming the line.
  - Each filesystem is read by C(df) (GNU coreutils) with a timeout (O(probe_timeout)); the local
    filesystems in one C(df) call, each network or FUSE filesystem in its own, all at once. A hung
    network mount (stale NFS, dead FUSE server) cannot hang the report; it is reported as timed out,
    with status V(crit). Without C(df), each filesystem is probed with statvfs in a worker process instead.
  - Mails the report (a C(df -h)-style plain table, and an HTML part with the filesystems worst first,
    each with its status as a word and a colour and a usage bar, made for mail clients with inline
    styles only, nothing loaded and every name from the host escaped) over SMTP when O(send) says so.
    TLS is verified by default; V(starttls) never falls back to plain text; a password is never sent
    unencrypted unless O(smtp_allow_plaintext_auth=true).
  - The mail goes out like an MTA sends it, through a queue in O(spool_dir). Each run first sends the
    queued messages, oldest first, then its own report, over one conversation that O(smtp_timeout) bounds
    as a whole.
  - If the report cannot be sent (server down, timeout, TLS or login refused, a hang-up) the task fails
    with the reason and the complete message is queued; the next run that reaches the server sends it.
  - The server's answer counts per recipient. Any 2xx accepts. A recipient refused temporarily (4xx) gets a
    copy that waits in the queue for that recipient only, so the others never get it twice; the task warns,
    and fails only when no recipient took the report. A recipient refused for good (5xx) is reported
    (RV(mail.refused), RV(mail.dead_letters), a warning) and the message is kept as a dead letter in
    C(spool_dir/dead) with the server's answer; it is never retried, and every later report lists it
    under "Undelivered mail" until it is removed (or moved back into O(spool_dir) to be sent again).
  - When the server received the whole message but the conversation then ended without its answer (a
    hang-up, O(smtp_timeout), or an answer that is neither 2xx, 4xx nor 5xx), nobody knows whether it took
    the message. It is never called a refusal - the recipients are in RV(mail.uncertain), the message stays
    queued and is sent again (as mail servers do), so they may get it twice, and the task fails saying so.
  - A message that waits in the queue longer than O(spool_lifetime_days) (5 days) is given up and kept as a
    dead letter with the last reason it was not delivered.
  - A queued file that is no message (empty, corrupt, unreadable, not a regular file) is moved to
    C(spool_dir/quarantine) with the reason, never retried, and does not hold up the messages behind it.
  - A spool that cannot be read, locked or written (permissions, read-only filesystem) never stops the
    report from being mailed; the task warns, and the queued messages wait for a run that can use it.
    Nothing is lost.
  - "The mail's subject starts with the worst status and ends with the counts, so that mail can be sorted
    and filtered by it, as monit's and Nagios' can: C([CRIT] Nightly Disk Usage Report for web1: 1 filesystem
    crit, 2 filesystems warn), C([OK] Nightly Disk Usage Report for web1: 7 filesystems ok). Its C(X-Mailer)
    header is C(sysops.fleet disk_report)."
  - C(changed) is true only when a mail went out. Check mode reads and reports but never sends mail
    nor writes the spool or O(history_file); its C(changed) says whether a real run would send the report.
author:
  - sysops.fleet maintainers (@sysops)
requirements:
  - Python 3.9 or newer on the managed host (standard library only).
  - Linux (the mount table is read from C(/proc/self/mountinfo)).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - sysops.fleet.mail
attributes:
  check_mode:
    support: full
    details: Check mode reads and reports as usual but never connects to a mail server nor writes the spool or
      the history. It reports C(changed) when a real run would send the report.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  include_mounts:
    description:
      - Report only mount points matching one of these shell-style patterns (V(*) also matches V(/)).
      - Patterns in O(include_mounts), O(exclude_mounts) and O(exclude_fstypes) match a name as it is or
        as the report shows it (escaped), so a pattern copied from a report finds the mount it shows.
      - A mount point matched here is reported whatever its type, so V([/dev/shm]) watches a tmpfs
        without editing O(exclude_fstypes). O(exclude_mounts) still wins.
      - Empty means every mount point.
    type: list
    elements: str
    default: []
  exclude_mounts:
    description:
      - Mount points not to report, as shell-style patterns such as V(/mnt/backup*).
    type: list
    elements: str
    default: []
  exclude_fstypes:
    description:
      - Filesystem types not to report, as shell-style patterns such as V(fuse.*).
      - The default lists the pseudo and memory filesystems. Setting this replaces the list;
        V([]) reports every type, like C(df).
    type: list
    elements: str
    default: [autofs, binfmt_misc, bpf, cgroup, cgroup2, configfs, debugfs, devpts, devtmpfs, efivarfs,
              fusectl, fuse.gvfsd-fuse, fuse.lxcfs, fuse.portal, hugetlbfs, mqueue, nsfs, overlay, proc,
              pstore, ramfs, rpc_pipefs, securityfs, selinuxfs, squashfs, sysfs, tmpfs, tracefs]
  probe_timeout:
    description:
      - Seconds each probe (a C(df) call, or a worker process) may take before it is killed; a
        filesystem still unread is reported as timed out. More than 0, at most 600.
    type: float
    default: 5.0
  workers:
    description:
      - How many probes run at once; each hung mount holds one for O(probe_timeout).
      - Defaults to all at once when C(df) is used (one for the local filesystems plus one per network
        filesystem, at most 256), and to at most 4 worker processes without C(df). Between 1 and 256.
    type: int
  warn:
    description:
      - Use % at or above which a filesystem is V(warn). Use % is used / (used + available), as in
        C(df), rounded up. A whole number between 1 and 100, not above O(crit).
    type: int
    default: 80
  crit:
    description:
      - Use % at or above which a filesystem is V(crit). Between 1 and 100.
    type: int
    default: 90
  inode_warn:
    description:
      - Inode use % at or above which a filesystem is V(warn). Between 1 and 100, not above O(inode_crit).
    type: int
    default: 80
  inode_crit:
    description:
      - Inode use % at or above which a filesystem is V(crit). Between 1 and 100.
    type: int
    default: 90
  free_warn:
    description:
      - An absolute floor, like C(check_disk -w 10G) - a filesystem with less available space than
        this is V(warn), whatever its use %.
      - A size with an optional unit (powers of 1024) such as V(10G), V(500M), V(1.5T), or a number of bytes.
    type: str
  free_crit:
    description:
      - Like O(free_warn), for V(crit). Not larger than O(free_warn).
    type: str
  send:
    description:
      - When to mail the report.
      - V(auto) mails it when O(mail_to) is set.
      - V(always) mails it on every run and fails when O(mail_to) is empty.
      - V(on_alert) mails it only when some filesystem is V(warn) or V(crit).
      - V(never) only reports (and leaves the spool alone).
      - Whenever O(mail_to) is set and O(send) is not V(never), spooled messages from earlier failed
        runs are delivered, even when this run's report is not mailed.
    type: str
    choices: [auto, always, on_alert, never]
    default: auto
  subject:
    description:
      - The subject of the mail and the title of the report.
      - Defaults to V(Nightly Disk Usage Report for HOST), with the managed host's name.
      - "The mail's subject is this text between the worst status and the counts:
        V([WARN] Nightly Disk Usage Report for web1: 2 filesystems warn)."
    type: str
  history_file:
    description:
      - A disk-use history on the managed host (JSON). When set, this reading is added to it (at most one
        sample per filesystem every 15 minutes, 14 days kept) and every filesystem gets a
        RV(filesystems[].forecast) - its fill rate and when it would be full at that rate - which also goes
        into the report and the mail as a "Fill rate" section.
      - The rate is the least-squares slope of used space over the last 3 days of samples; it needs samples
        at least 10 minutes apart, so a first run has no rate yet.
      - Point it at the watcher's history (V(/var/lib/sysops-fleet/history.json) for a system install of the
        P(sysops.fleet.watcher#role) role) to use the samples the watcher daemon takes every 15 minutes;
        the two share the file under a lock (C(PATH.lock)). Writing it keeps its owner and mode.
      - The history is a cache - when it cannot be written the task warns and still reports, and writing it
        does not count as a change. Check mode reads it but does not write it.
    type: path
notes:
  - Thresholds compare the rounded-up percentages that C(df) prints, so a filesystem at 80.1% is 81% and
    warns at O(warn=81).
  - A filesystem that cannot be probed (timeout, permission denied, stale file handle) is reported with
    an C(error), no numbers and status V(crit).
  - Delivery is at least once; a spooled message whose delivery is interrupted after the server accepted
    it (the machine crashed before the spool file was updated, or the answer never came) may be sent again.
  - A spool file starts with its SMTP envelope (C(X-Sysops-Fleet-Envelope-From), one
    C(X-Sysops-Fleet-Envelope-To) line per recipient still waiting, and C(X-Sysops-Fleet-Queued-Since), when
    it was first queued), taken off before it is sent; a dead letter adds C(X-Sysops-Fleet-Refused) lines with
    the server's answers (or why it was given up).
  - Run with become (as root) the report goes through root's own O(spool_dir), V(/var/spool/sysops-fleet). With
    a O(spool_dir) another user owns, root sends the report itself and only what it could not deliver is
    queued there as that user; see O(spool_dir).
  - The watcher daemon of this collection runs the same report from cron without Ansible, with its own
    history file.
seealso:
  - name: df(1)
    description: The numbers this module reports.
    link: https://www.gnu.org/software/coreutils/manual/html_node/df-invocation.html
"""

EXAMPLES = r"""
- name: Mail the nightly disk report through the local mail server
  sysops.fleet.disk_report:
    mail_to:
      - ops@example.com

- name: Warn at 70%, go critical below 5G free, mail only when something is wrong
  sysops.fleet.disk_report:
    warn: 70
    crit: 85
    free_crit: 5G
    send: on_alert
    mail_to: [ops@example.com]
    mail_from: disk-report@example.com
    smtp_host: smtp.example.com
    smtp_security: starttls
    smtp_username: reports
    smtp_password: "{{ vault_smtp_password }}"

- name: Only report, for a dashboard; probe NFS mounts for at most 2 seconds
  sysops.fleet.disk_report:
    exclude_mounts: [/mnt/scratch*]
    probe_timeout: 2
  register: disks

- name: Report with fill rates from the watcher's history (and add tonight's reading to it)
  sysops.fleet.disk_report:
    history_file: /var/lib/sysops-fleet/history.json
    send: never
  register: disks

- name: Warn about filesystems full within a week at their current rate
  ansible.builtin.debug:
    msg: "{{ item.mount }} is full in {{ item.forecast.days_to_full | round(1) }} days"
  loop: "{{ disks.filesystems | selectattr('forecast') | selectattr('forecast.days_to_full') | list }}"
  when: item.forecast.days_to_full < 7

- name: Fail the play when a filesystem is critical
  ansible.builtin.assert:
    that: disks.alerts | selectattr('status', 'eq', 'crit') | list | length == 0
    fail_msg: "{{ disks.report }}"
"""

RETURN = r"""
filesystems:
  description:
    - One entry per reported filesystem, in mount order. Sizes are bytes; percentages are rounded up as
      C(df) rounds them. Numbers are null when the filesystem could not be probed (see C(error)), and
      inode numbers are null percentages when the filesystem has no inode count (btrfs, vfat).
  returned: success or when mailing failed
  type: list
  elements: dict
  contains:
    device:
      description: The mounted device or source, escaped as RV(filesystems[].mount) is.
      type: str
      sample: /dev/sda1
    fstype:
      description: The filesystem type, escaped as RV(filesystems[].mount) is.
      type: str
      sample: ext4
    mount:
      description:
        - The mount point, as one line of printable text that names exactly one mount point - a character
          that is not printable is written as an escape (C(\n), C(\r), C(\t), C(\xHH) for an ASCII
          control or a byte that is not UTF-8, C(\uXXXX) for any other, such as C(\u2028)), and a backslash
          is doubled. A name that needs no escape is shown as it is.
        - The same name keys the history (O(history_file)) and the watcher's state and metrics.
      type: str
      sample: /
    size_bytes:
      description: Total size.
      type: int
      sample: 105089261568
    used_bytes:
      description: Used space.
      type: int
      sample: 52544630784
    avail_bytes:
      description: Space available to ordinary users (root's reserve excluded).
      type: int
      sample: 47171284992
    use_pct:
      description: Used / (used + available) in percent, rounded up; the Capacity column of C(df).
      type: int
      sample: 53
    inodes_total:
      description: Inodes.
      type: int
      sample: 6553600
    inodes_used:
      description: Inodes in use.
      type: int
      sample: 412345
    inode_pct:
      description: Inode use in percent, rounded up; the IUse% column of C(df -i).
      type: int
      sample: 7
    status:
      description: V(ok), V(warn) or V(crit).
      type: str
      sample: ok
    reasons:
      description: Why the status is not V(ok); empty when it is.
      type: list
      elements: str
      sample: ["use 93% is at or above crit 90%"]
    error:
      description: Why the filesystem could not be probed (for example a timeout); null when it was.
      type: str
      sample: null
    forecast:
      description:
        - How fast the filesystem fills, from O(history_file); null when the history has no sample of it.
      returned: when O(history_file) is set
      type: dict
      contains:
        rate_per_day:
          description:
            - Growth of used space in bytes per day (negative when it shrinks); null until the history spans 10
              minutes.
            - The Theil-Sen slope (the median of the slopes between samples), day over day (the same time of day
              on different days) once the history has that, so nightly temporary files, log rotation or a burst
              on a tmpfs do not move it.
          type: float
          sample: 1288490188.8
        rate_low_per_day:
          description: The low end of the rate's 95 % interval; null while there are too few samples for one.
          type: float
          sample: 1181116006.4
          version_added: "0.1.0"
        rate_high_per_day:
          description: The high end of the rate's 95 % interval; null while there are too few samples for one.
          type: float
          sample: 1395864371.2
          version_added: "0.1.0"
        steady:
          description:
            - Whether the filesystem fills steadily - the whole 95 % interval above zero, and every day of the
              window grew at about that rate. Only a steady one gets C(days_to_full); a one-off jump (an upgrade)
              or growth within one day only (a log before its rotation) does not.
          type: bool
          sample: true
          version_added: "0.1.0"
        days_to_full:
          description:
            - Days until no space is available at that rate, counted from the trend line's free space (not this
              reading's, so a temporary file that fills the disk for an hour moves no date); null unless C(steady).
            - A date needs the same times of day seen on two days (about 26 hours of history at the default
              15-minute samples).
          type: float
          sample: 36.6
        days_to_full_low:
          description: The soonest it may be full (at C(rate_high_per_day)); null without a date.
          type: float
          sample: 31.5
          version_added: "0.1.0"
        days_to_full_high:
          description: The latest it may be full (at C(rate_low_per_day)); null without a date.
          type: float
          sample: 39.9
          version_added: "0.1.0"
        full_at:
          description: When that is, as a Unix time; null without a date.
          type: float
          sample: 1717200000.0
        span_s:
          description: Seconds of history the rate rests on.
          type: float
          sample: 259200.0
fill_rate:
  description: The forecast of every reported filesystem that has history, with its C(mount) and C(avail_bytes).
  returned: when O(history_file) is set
  type: list
  elements: dict
  sample:
    - {mount: /var, rate_per_day: 1288490188.8, avail_bytes: 47171284992, days_to_full: 36.6,
       full_at: 1717200000.0, span_s: 259200.0, rate_low_per_day: 1181116006.4, rate_high_per_day: 1395864371.2,
       days_to_full_low: 31.5, days_to_full_high: 39.9, steady: true}
alerts:
  description: The entries of RV(filesystems) whose status is not V(ok).
  returned: success or when mailing failed
  type: list
  elements: dict
  sample:
    - {device: "nfs1:/export", fstype: nfs4, mount: /mnt/data, status: crit, size_bytes: null,
       error: "probe timed out after 5s: the mount is hung (stale NFS or dead FUSE server?)"}
status:
  description: The worst status of all filesystems.
  returned: success or when mailing failed
  type: str
  sample: warn
report:
  description: The report as text, the plain part of the mail - a title, a C(df -h)-style table and the alerts.
  returned: success or when mailing failed
  type: str
  sample: |
    Nightly Disk Usage Report for web1
    Generated 2024-05-01 03:00:01 UTC

    Filesystem Type Size Used Avail Use% Inodes IUse% Status Mounted on
    /dev/sda1  ext4  98G  49G   44G  53%   6.3M    7% ok     /

    No alerts: every filesystem is below its thresholds.
mail:
  description: What happened to the mail.
  returned: success or when mailing failed
  type: dict
  contains:
    sent:
      description: Whether this run's report went out.
      type: bool
      sample: true
    recipients:
      description: The recipients of this run's report.
      type: list
      elements: str
      sample: ["ops@example.com"]
    message_id:
      description: The Message-ID of this run's report; null when no message was built.
      type: str
      sample: "<171453240112.4242.123456789@web1>"
    spooled:
      description:
        - The spool file this run's report waits in, because sending failed or some recipients deferred it
          (then the file is addressed to those recipients only); null otherwise.
      type: str
      sample: null
    spool_sent:
      description: Messages from earlier runs delivered (to at least one recipient) by this run.
      type: int
      sample: 0
    spool_pending:
      description: Messages left in the queue after this run.
      type: int
      sample: 0
    refused:
      description: Recipients the server refused for good (5xx) in this run, with its answer; their copy is a dead letter.
      type: dict
      sample: {gone@example.com: "550 5.1.1 mailbox unavailable"}
    deferred:
      description: Recipients the server refused temporarily (4xx) in this run, with its answer; their copy waits in the queue.
      type: dict
      sample: {}
    uncertain:
      description:
        - Recipients of a message (this run's or a queued one) that the server received whole, after which the
          conversation ended before its answer - a hang-up, O(smtp_timeout), or an answer that is neither 2xx,
          4xx nor 5xx - with what happened. The server may have taken it, so it is not called a refusal; the
          message stays queued and is sent again, and these recipients may get it twice.
        - RFC 5321 gives a server 10 minutes for that answer; O(smtp_timeout=600) waits that long.
      type: dict
      sample: {ops@example.com: "mail.example.com:25 received the whole message but gave no final reply within
               smtp_timeout=30s: it may have taken the message. It stays queued and is sent again, so its
               recipients may get it twice (...)"}
    dead_letters:
      description:
        - Messages this run kept as dead letters in C(spool_dir/dead), one entry per message - C(file),
          C(message_id), C(subject), C(recipients) (recipient to the server's answer, or why it was given up)
          and C(expired) (true when it was given up after O(spool_lifetime_days), false when the server
          refused it).
      type: list
      elements: dict
      sample:
        - {file: /var/spool/sysops-fleet/dead/20240501T030001-123456789-0004242-000000.eml,
           message_id: "<171453240112.4242.123456789@web1>", subject: Nightly Disk Usage Report for web1,
           recipients: {gone@example.com: "550 5.1.1 mailbox unavailable"}, expired: false}
    quarantined:
      description: Queued files this run moved to C(spool_dir/quarantine) because they are no message - C(file), C(was), C(reason).
      type: list
      elements: dict
      sample: []
    reason:
      description: Why no mail was sent (V(send=never), check mode, no alerts, or the error); V(sent) when it was.
      type: str
      sample: sent
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sysops.fleet.plugins.module_utils import _disk, _fanout, _mail, _mail_delivery, _report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            include_mounts=dict(type="list", elements="str", default=[]),
            exclude_mounts=dict(type="list", elements="str", default=[]),
            exclude_fstypes=dict(type="list", elements="str", default=list(_disk.PSEUDO_FSTYPES)),
            probe_timeout=dict(type="float", default=_disk.DEFAULT_PROBE_TIMEOUT),
            workers=dict(type="int"),
            warn=dict(type="int", default=80),
            crit=dict(type="int", default=90),
            inode_warn=dict(type="int", default=80),
            inode_crit=dict(type="int", default=90),
            free_warn=dict(type="str"),
            free_crit=dict(type="str"),
            send=dict(type="str", default="auto", choices=list(_mail_delivery.SEND_MODES)),
            subject=dict(type="str"),
            history_file=dict(type="path"),
            **_mail_delivery.MAIL_ARGUMENT_SPEC,
        ),
        required_together=[("smtp_username", "smtp_password")],
        supports_check_mode=True,
    )
    try:
        config = _report.config_from_options(module.params)
        outcome = _report.run(config, check_mode=module.check_mode)
    except (ValueError, _fanout.FanOutError, _mail.MailError) as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:  # the mail spool never raises; this is the disk reading itself
        module.fail_json(msg=f"cannot read the filesystems: {exc}")
    for warning in outcome.warnings:
        module.warn(warning)
    if outcome.error:
        module.fail_json(msg=outcome.error, changed=outcome.changed, **outcome.result)
    module.exit_json(changed=outcome.changed, **outcome.result)


if __name__ == "__main__":
    main()
