#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_report
short_description: Merge a fleet's sweeps and disk reports into one report, kept and mailed
version_added: "0.1.0"
description:
  - Takes the results of M(sysops.fleet.ping_sweep) from every sweeper and of M(sysops.fleet.disk_report)
    from every host, and writes one fleet report as text and HTML to O(report_dir).
  - The report lists every host (reachable or not, worst disk status), the addresses that are down
    (silent for every sweeper that swept them), the addresses that are new or vanished since the
    previous run, the fullest filesystems across the fleet and those that will fill first.
  - The HTML report counts the hosts of each status at the top and lists them worst first (unreachable,
    failed, crit, warn, no disk report, ok; many hosts that are fine share one line), each status as a
    word and a colour; it says why a filesystem has no fill rate, and why "filling fastest" is empty.
    It is made for mail clients, with inline styles only, nothing loaded and every name from the hosts escaped.
  - The addresses seen alive are kept in O(state_file) for the next run; the first run is the baseline.
  - Mails the text and HTML report as O(send) says, with the same mail options, TLS rules and spool as
    M(sysops.fleet.disk_report).
  - Meant to run once on the controller, for example with C(run_once) and C(delegate_to=localhost).
  - Every field it reads from O(sweeps) and O(disk_reports) is checked first; a malformed one (a string
    where a list of addresses belongs, an unknown status, a size that is no number) fails the task with
    the sweeper or host and the field named, and nothing is written, mailed or saved in O(state_file).
  - When the report files cannot be written the task fails with the reason, the report is still in the
    result and still mailed.
  - Mail that the spool could not deliver (dead letters, quarantined files) is listed at the end of the
    report under "Undelivered mail".
author:
  - sysops.fleet maintainers (@sysops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - sysops.fleet.mail
attributes:
  check_mode:
    support: full
    details: Builds the report and returns it, but writes no file, sends no mail and leaves the state alone.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  sweeps:
    description:
      - Results of M(sysops.fleet.ping_sweep), keyed by the sweeper that produced each.
      - An address answering any sweeper is alive; it is down when every sweeper that swept it found it silent.
      - Each result's C(alive) and C(dead) lists are read where it has them, else its C(alive_ranges) and
        C(dead_ranges) (what a sweep larger than its O(sysops.fleet.ping_sweep#module:list_limit) returns).
    type: dict
    default: {}
  disk_reports:
    description:
      - Results of M(sysops.fleet.disk_report), keyed by host.
      - Filesystems with a C(forecast) (disk_report run with O(sysops.fleet.disk_report#module:history_file))
        are ranked in the report's "Filling fastest" section by days until full.
    type: dict
    default: {}
  hosts:
    description:
      - Every host of the play, so that hosts without a disk report are listed too.
    type: list
    elements: str
    default: []
  unreachable:
    description:
      - Hosts that could not be reached; listed as V(UNREACHABLE).
    type: list
    elements: str
    default: []
  failed:
    description:
      - Hosts that were reached but where a task failed; listed as V(FAILED). A host also in
        O(unreachable) is unreachable.
      - C(playbooks/site.yml) tells the two apart as Ansible does. A host it cannot log in to is
        unreachable; a host it logs in to where anything fails (a refused C(sudo), a task, a handler) is failed.
    type: list
    elements: str
    default: []
  failure_reasons:
    description:
      - Why each failed host failed, host name -> reason, shown under the host in the text and HTML report
        and returned as C(reason) of its entry in C(report.hosts).
      - "C(playbooks/site.yml) passes the task that failed and its error, for example
        C(Gather facts: Missing sudo password) for a host whose user may not C(sudo)."
      - A host named here is failed even when it is not in O(failed); a host in O(unreachable) keeps no reason.
      - Each reason is kept as one line of printable text (line breaks and control characters become spaces)
        of at most 300 characters.
    type: dict
    default: {}
    version_added: "0.1.0"
  report_dir:
    description:
      - Directory for C(fleet-report.txt) and C(fleet-report.html); created if missing.
    type: path
    required: true
  state_file:
    description:
      - JSON file holding the addresses alive at the previous run. Defaults to C(fleet-state.json)
        in O(report_dir). A file that cannot be read fails the task (fix or remove it) rather than
        silently starting a new baseline.
    type: path
  top:
    description:
      - How many filesystems the fullest and filling-fastest lists show.
    type: int
    default: 10
  send:
    description:
      - When to mail the report. V(auto) mails it when O(mail_to) is set, V(always) every run,
        V(on_alert) only when some address is down, some host unreachable or failed, or some
        filesystem is not V(ok), V(never) not at all.
    type: str
    choices: [auto, always, on_alert, never]
    default: auto
  subject:
    description:
      - Subject of the mail. One line; line separators and control characters are refused.
    type: str
    default: Fleet report
"""

EXAMPLES = r"""
- name: Merge the fleet report on the controller
  sysops.fleet.fleet_report:
    sweeps: "{{ fleet_sweeps }}"  # sweeper name -> its ping_sweep result
    disk_reports: "{{ fleet_disk_reports }}"  # host -> its disk_report result
    hosts: "{{ ansible_play_hosts_all }}"
    unreachable: "{{ fleet_unreachable }}"  # hosts Ansible could not reach
    failed: "{{ fleet_failed }}"  # hosts reached, where a task failed
    failure_reasons: "{{ fleet_failure_reasons }}"  # host -> why it failed
    report_dir: "{{ playbook_dir }}/reports"
    mail_to: [ops@example.com]
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
report:
  description:
    - The merged report (hosts, unreachable, failed, down, new, vanished, alerts, fullest, forecasts, summary).
    - The addresses alive are not returned (their count is in C(summary.addresses_alive)); they are kept in the
      state file (C(files.state)) and listed by the text report, and the sweeps that were merged have them.
    - C(down_ranges) has the down addresses as O(sysops.fleet.ping_sweep#module:targets) entries, one per /24
      (V(192.0.2.3,6,9-40)); the C(down) list itself is returned only up to 1024 addresses. Above 256 down, new
      or vanished addresses, the text and HTML reports list them the same way, one line per /24 (addresses with
      a name stay on lines of their own).
    - Each entry of C(hosts) has C(host), C(reachable), C(failed), C(reason) (why a failed host failed, from
      O(failure_reasons); null otherwise), C(disk_status) and C(reported).
    - C(summary) counts hosts, addresses and disk alerts, and the filesystems reported (C(filesystems)),
      those filling (C(filling), they have a days-to-full) and those without a fill rate yet (C(no_fill_rate)).
  returned: success
  type: dict
  sample: {summary: {hosts: 4, unreachable: 0, failed: 0, addresses_alive: 3, addresses_down: 1, new: 0, vanished: 0,
                     alerts: 0, filesystems: 6, filling: 2, no_fill_rate: 1}}
text:
  description: The report as plain text, as written to C(fleet-report.txt).
  returned: success
  type: str
  sample: "Fleet report 2026-11-27T06:00:00+00:00 ..."
files:
  description: Paths of the report files and the state file.
  returned: success
  type: dict
  sample: {text: /srv/reports/fleet-report.txt, html: /srv/reports/fleet-report.html, state: /srv/reports/fleet-state.json}
mail:
  description:
    - What mailing did, with the keys of M(sysops.fleet.disk_report)'s RV(sysops.fleet.disk_report#module:mail)
      (sent, recipients, message_id, spooled, spool_sent, spool_pending, refused, deferred, dead_letters,
      quarantined, reason).
  returned: success
  type: dict
  sample: {sent: false, recipients: [], message_id: null, spooled: null, spool_sent: 0, spool_pending: 0, refused: {},
           deferred: {}, dead_letters: [], quarantined: [], reason: mail_to is empty}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _mail, _mail_delivery


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sweeps=dict(type="dict", default={}),
            disk_reports=dict(type="dict", default={}),
            hosts=dict(type="list", elements="str", default=[]),
            unreachable=dict(type="list", elements="str", default=[]),
            failed=dict(type="list", elements="str", default=[]),
            failure_reasons=dict(type="dict", default={}),
            report_dir=dict(type="path", required=True),
            state_file=dict(type="path"),
            top=dict(type="int", default=10),
            send=dict(type="str", default="auto", choices=list(_mail_delivery.SEND_MODES)),
            subject=dict(type="str", default="Fleet report"),
            **_mail_delivery.MAIL_ARGUMENT_SPEC,
        ),
        required_together=[("smtp_username", "smtp_password")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = _fleet.run(p, check_mode=module.check_mode)
    except (ValueError, OSError, _mail.MailError) as exc:
        module.fail_json(msg=str(exc))
    mailing = result.pop("mailing")
    errors = [e for e in (result.pop("error"), mailing.error) if e]
    for warning in mailing.warnings:
        module.warn(warning)
    if errors:
        module.fail_json(msg="; ".join(errors), mail=mailing.mail, **result)
    module.exit_json(mail=mailing.mail, **result)


if __name__ == "__main__":
    main()
