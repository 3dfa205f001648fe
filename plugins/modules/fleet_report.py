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
  - The report leads with what needs attention. In this order, the same in the text, the HTML and the mail -
    the counts and the worst status (V(CRIT) when a host is unreachable, failed or has a crit filesystem,
    V(WARN) for a warn filesystem, an address down or a mesh finding, else V(OK));
    every filesystem that is not V(ok), worst first, with its host and the reasons disk_report gave
    (C(inode use 99% is at or above crit 90%), C(2.0G free is below free_crit 5.0G));
    the hosts worst first (unreachable, failed, crit, warn, without a disk report, ok), an unreachable or
    failed host with why on a line under it;
    the addresses that are down (silent for every sweeper that swept them; in mesh mode never the address of a
    mesh host whose sweep is in O(sweeps) - it ran, so it is up, and the mesh findings say why nobody reaches it),
    new or vanished since the previous run; the fullest filesystems across the fleet; those that will fill first, or why none is listed
    (none filling, or how many have no fill rate yet).
  - The HTML report counts the hosts of each status at the top; many hosts that are fine share one line. Each
    status is a word and a colour. It is made for mail clients, with inline styles only, nothing loaded and
    every name from the hosts escaped. In the text report every host name, mount point, address name and
    reason is one line of printable text (line breaks and terminal escapes are shown escaped), so nothing a
    host holds can add a line to it.
  - "The mail's subject starts with the worst status and ends with the counts, so that mail can be sorted and
    filtered by it, as monit's and Nagios' can: C([CRIT] Fleet report: 3 hosts unreachable, 2 hosts crit,
    1 address down), C([CRIT] Fleet report: all 12 hosts unreachable), C([OK] Fleet report: 120 hosts ok).
    Its C(X-Mailer) header is C(sysops.fleet fleet_report)."
  - With O(addresses) (mesh mode, C(fleet_mesh) in C(playbooks/site.yml)), each of those hosts' sweep of the others
    is read as a matrix of who reaches whom, and the fault in it is named in RV(findings), which lead the text and
    HTML report (above everything else but the counts), followed by the matrix; see O(addresses) for the rules.
  - The addresses seen alive are kept in O(state_file) for the next run; the first run is the baseline.
  - Mails the text and HTML report as O(send) says, with the same mail options, TLS rules and spool as
    M(sysops.fleet.disk_report).
  - Meant to run once on the controller, for example with C(run_once) and C(delegate_to=localhost).
  - Every field it reads from O(sweeps) and O(disk_reports) is checked first; a malformed one (a string
    where a list of addresses belongs, an unknown status, a size that is no number or too large for a float)
    fails the task with the sweeper or host and the field named, and nothing is written, mailed or saved in
    O(state_file).
  - The report is built in one pass over the filesystems, so its cost grows with the fleet, not faster. For
    10,000 hosts (100,000 filesystems) pass the disk reports as O(disk_columns) and O(sweeps) as JSON text
    (C(| to_json)), as C(playbooks/site.yml) does - the whole module process then took 2.7 s of CPU and 132 MB
    at most on the collection's 2-core test machine (busy with other jobs), against 3.6 s and 249 MB with
    O(disk_reports) as JSON text in the same round. Do not pass them as dicts at that size; Ansible copies a
    dict argument twice before the module starts, which alone took 6 s of CPU and doubled the memory there.
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
      C(changed) says whether a real run would write the report files or send the mail.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  sweeps:
    description:
      - Results of M(sysops.fleet.ping_sweep), keyed by the sweeper that produced each; a dict, or the same as
        JSON text (C(| to_json)), which is far cheaper for Ansible to pass when large.
      - An address answering any sweeper is alive; it is down when every sweeper that swept it found it silent.
      - Each result's C(alive) and C(dead) lists are read where it has them, else its C(alive_ranges) and
        C(dead_ranges) (what a sweep larger than its O(sysops.fleet.ping_sweep#module:list_limit) returns).
      - Every address is read in one spelling, here, in C(names) and C(stats), in O(addresses) and in the state file
        alike - IPv6 as C(inet_ntop) writes it (V(2001:DB8:0::0001) is V(2001:db8::1)), an IPv4-mapped address
        (V(::ffff:192.0.2.1)) as its IPv4 address, an IPv6 zone (V(%eth0)) dropped; the report lists that spelling.
    type: raw
    default: {}
  disk_reports:
    description:
      - Results of M(sysops.fleet.disk_report), keyed by host; a dict, or the same as JSON text (C(| to_json)).
      - Of each result only C(filesystems) is read; each filesystem's C(status) and C(reasons) say why it is
        listed under "Filesystems not ok".
      - Filesystems with a C(forecast) (disk_report run with O(sysops.fleet.disk_report#module:history_file))
        are ranked in the report's "Filling fastest" section by days until full.
    type: raw
    default: {}
  disk_columns:
    description:
      - The disk reports in columns, as the filter P(sysops.fleet.disk_columns#filter) makes them from the same
        results as O(disk_reports) takes (C(playbooks/site.yml) passes them so); given instead of O(disk_reports),
        with the same report made of them, byte for byte.
      - "A dict, or the same as JSON text (what the filter returns) - C(version) (V(1)); C(hosts), the hosts with a
        disk report; C(counts), how many filesystems each of them has, in the same order; and one list per field,
        one value per filesystem, host after host - C(mount), C(device), C(status), C(reasons), C(error),
        C(use_pct), C(inode_pct), C(avail_bytes), C(days_to_full), C(rate_per_day) (the last two from the
        filesystem's C(forecast)). For example
        C({version: 1, hosts: [web1, db1], counts: [2, 1], mount: [/, /var, /], use_pct: [40, 91, 12], ...})."
      - It holds only the fields the report reads, a third of the disk reports' size - at 10,000 hosts 10.6 MB of
        JSON instead of 34 MB, which Ansible and the module read, parse and check in much less time (see the
        description above).
      - Each value is checked as in O(disk_reports); a wrong one fails the task naming the column and its index
        (C(disk_columns.use_pct[17])), the host and which of its filesystems it is, and what is wrong with it; so
        does a column whose length is not the sum of C(counts), an unknown column, a host listed twice, and giving
        both O(disk_reports) and O(disk_columns).
    type: raw
    default: {}
    version_added: "0.1.0"
  hosts:
    description:
      - Every host of the play, so that hosts without a disk report are listed too.
    type: list
    elements: str
    default: []
  unreachable:
    description:
      - Hosts that could not be reached; listed as V(UNREACHABLE), with why from O(failure_reasons) when it
        says.
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
      - Why each failed or unreachable host failed or could not be reached, host name -> reason, shown under
        the host in the text and HTML report and returned as C(reason) of its entry in C(report.hosts).
      - "C(playbooks/site.yml) passes the task that failed and its error, for example
        C(Gather facts: Missing sudo password) for a host whose user may not C(sudo), and for a host it cannot
        reach what the connection said (C(Failed to connect to the host via ssh: ... Connection refused))."
      - A host named here is failed even when it is not in O(failed), unless it is in O(unreachable).
      - Each reason is kept as one line of printable text (line breaks and tabs become spaces, other control
        characters are shown escaped, as C(\x1b)) of at most 300 characters.
    type: dict
    default: {}
    version_added: "0.1.0"
  addresses:
    description:
      - "Mesh mode. Each host of the mesh -> the IP address the other hosts probe, for example
        C({web1: 192.0.2.10, web2: 192.0.2.11}); a dict, or the same as JSON text. Every host named here whose
        sweep is in O(sweeps) (keyed by the same name) is a vantage point; its sweep's results for the other
        hosts' addresses are its row of the matrix (count mode's C(stats) give each pair's loss)."
      - "The findings, in this order (a pair explained by an earlier finding gives no later one):
        V(down) - every host that probed it found it silent, one of them reaches some other host, and it did not
        sweep (a host that swept is up, even when its sweep probed no mesh host - cut off from everyone, it is one
        side of a V(cut)); a host Ansible reached (in O(hosts), not in O(unreachable)) is up too: its V(down)
        finding has C(answers_ansible) true and reads C(NO PING) (warn, as pings to it are dropped), and its address is
        no address down;
        V(blind) - it reached at most 20 % of the live hosts it probed (at least 2) and at most 20 % of those it
        probed that reach it (at least 1), while strictly more than half
        of those that probed it (at least 2) reach it; with one other prober (two probers, C(fleet_mesh_group)),
        that prober reaches it and it reached at most 20 % of at least 2 hosts it probed that the other prober
        reaches (C(alive_elsewhere));
        V(cut) - the hosts that are neither down nor blind split into groups that reach each other inside and
        nothing across, every side named in C(sides) (inside a group, a pair failing both ways is a cut between
        those hosts, with C(at));
        V(one_way) - A cannot reach B while B reaches A (C(pairs)); when A reaches more than half of the other hosts
        it probed that another prober reaches, its way out works and the pairs are gathered at the host they share
        (C(at)); when it reaches at most 20 % of at least 2 of them, its view is the outlier and its pairs are one
        finding at A; else the matrix cannot tell (C(at) null, C(maybe_blind) A, no host blamed);
        V(lossy) - a working pair that lost at least 20 % of its probes in count mode, gathered the same way."
      - "Few probers can tell less. A prober that cannot reach a host that reaches it is either at fault itself or
        dropped by that host; the other hosts it probed that another prober reaches tell which (see V(one_way)).
        Without enough of them (two probers and fewer than 2 other hosts, or a prober that reaches between 20 % and
        half of them) its pairs are one V(one_way) with C(at) null and C(maybe_blind) naming it: no host is
        blamed. A host probed by a single prober is never V(down) unless that prober reaches some other host."
      - Partial data gives no finding from what was not measured - a host that did not sweep, an address nobody
        probed, a pair measured in one direction only; a tie (exactly half reach a host) is not "most".
      - Refused, with the host named and nothing written or mailed - a value that is no dict, a host name that is
        empty, an address that is not an IP address (a name is refused; the sweeps list addresses), two hosts
        with the same address, more than 2000 hosts (mesh a group of them).
    type: raw
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
        V(on_alert) only when some address is down, some host unreachable or failed, some
        filesystem is not V(ok) or the mesh found a fault (RV(findings)), V(never) not at all.
    type: str
    choices: [auto, always, on_alert, never]
    default: auto
  subject:
    description:
      - Subject of the mail. One line; line separators and control characters are refused.
      - "The mail's subject is this text between the worst status and the counts:
        V([CRIT] Fleet report: 1 host unreachable, 2 hosts crit, 3 addresses down)."
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
    addresses: "{{ fleet_mesh_addresses | default({}) }}"  # mesh mode: host -> the address the others probe
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
    - The merged report (status, hosts, unreachable, failed, down, new, vanished, alerts, fullest, forecasts,
      summary).
    - C(status) is the worst status, V(crit), V(warn) or V(ok), as in the mail's subject.
    - C(alerts) lists every filesystem that is not V(ok), worst first (crit, then warn; by host and mount point),
      each with C(host), C(mount), C(device), C(status), C(reasons), C(use_pct), C(inode_pct) and C(avail_bytes).
    - The addresses alive are not returned (their count is in C(summary.addresses_alive)); they are kept in the
      state file (C(files.state)) and listed by the text report, and the sweeps that were merged have them.
      C(names) holds the names of the addresses listed as down, new or vanished.
    - C(down_ranges) has the down addresses as O(sysops.fleet.ping_sweep#module:targets) entries, one per /24
      (V(192.0.2.3,6,9-40)); the C(down) list itself is returned only up to 1024 addresses. Above 256 down, new
      or vanished addresses, the text and HTML reports list them the same way, one line per /24 (addresses with
      a name stay on lines of their own).
    - Each entry of C(hosts) (sorted by name) has C(host), C(reachable), C(failed), C(reason) (why a failed or
      unreachable host failed, from O(failure_reasons); null otherwise), C(disk_status) and C(reported).
    - C(summary) counts hosts (C(hosts), C(unreachable), C(failed), and by worst disk status C(hosts_crit),
      C(hosts_warn), C(hosts_ok), C(hosts_no_report)), addresses, the filesystems not ok (C(alerts)), the
      filesystems reported (C(filesystems)), those filling (C(filling), they have a days-to-full) and those without
      a fill rate yet (C(no_fill_rate)).
  returned: success
  type: dict
  sample: {status: warn, summary: {hosts: 4, unreachable: 0, failed: 0, hosts_crit: 0, hosts_warn: 1, hosts_ok: 3,
                                   hosts_no_report: 0, addresses_alive: 3, addresses_down: 1, new: 0, vanished: 0,
                                   alerts: 1, filesystems: 6, filling: 2, no_fill_rate: 1}}
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
mesh:
  description:
    - Mesh mode only (O(addresses) given), else null. The matrix of who reaches whom.
    - C(hosts) - the mesh's hosts in the order the matrix shows them - the sides of a cut as blocks (largest
      first), then hosts on no side, the down hosts last. C(addresses) - each host's address.
    - C(rows) - one string per host of C(hosts), one character per host of C(hosts) - what the row's host saw of
      the column's host - V(o) reached, V(~) reached but lossy, V(x) silent, V(?) not probed, V(-) itself.
    - C(loss) - prober -> probed host -> percent lost, for every pair that lost some but not all (count mode).
    - C(lossy_pct) - the loss from which a pair is lossy. C(summary) - C(hosts), C(sweepers) (mesh hosts whose
      sweep was passed), C(pairs) measured, C(reached), C(silent), C(lossy), C(findings).
  returned: success
  type: dict
  sample: {hosts: [web1, web3, web2, web4], addresses: {web1: 192.0.2.1, web3: 192.0.2.3, web2: 192.0.2.2,
                                                       web4: 192.0.2.4},
           rows: ["-oxx", "o-xx", "xx-o", "xxo-"], loss: {}, lossy_pct: 20.0,
           summary: {hosts: 4, sweepers: 4, pairs: 12, reached: 4, silent: 8, lossy: 0, findings: 1}}
  version_added: "0.1.0"
findings:
  description:
    - Mesh mode only (else empty) - the faults the matrix shows, in the order V(down), V(blind), V(cut),
      V(one_way), V(lossy) (the rules are under O(addresses)).
    - Each has C(kind) and C(hosts) (every host involved, sorted). V(down) adds C(probed_by), and
      C(answers_ansible) true for a host Ansible reached (up, its pings dropped); V(blind) C(reaches),
      C(probed), C(reached_by), C(probed_by), and with one other prober C(alive_elsewhere) (the hosts it probed
      that the other prober reaches); V(cut) C(sides) (a list of host lists); V(one_way) and V(lossy)
      C(at) (the host their pairs share) and C(pairs) (each C(from), C(to), and for V(lossy) C(loss_pct)), and
      V(lossy) the median C(loss_pct). A cut between a pair inside a group also has C(at).
    - A V(one_way) whose cause the matrix cannot tell has C(at) null and C(maybe_blind), the prober that is blind
      unless the hosts it cannot reach drop what it sends (see O(addresses)). Such a finding, and one placed at its
      prober because that prober's view is the outlier, also has C(reaches) and C(alive_elsewhere) - how many of
      the other hosts it probed that another prober reaches it reached, of how many.
  returned: success
  type: list
  elements: dict
  sample: [{kind: down, hosts: [db2], probed_by: 7},
           {kind: cut, hosts: [web1, web2, web3, web4], sides: [[web1, web3], [web2, web4]]},
           {kind: one_way, hosts: [web5, web6], at: web6, pairs: [{from: web5, to: web6}]}]
  version_added: "0.1.0"
mail:
  description:
    - What mailing did, with the keys of M(sysops.fleet.disk_report)'s RV(sysops.fleet.disk_report#module:mail)
      (sent, recipients, message_id, spooled, spool_sent, spool_pending, refused, deferred, uncertain,
      dead_letters, quarantined, reason).
  returned: success
  type: dict
  sample: {sent: false, recipients: [], message_id: null, spooled: null, spool_sent: 0, spool_pending: 0, refused: {},
           deferred: {}, uncertain: {}, dead_letters: [], quarantined: [], reason: mail_to is empty}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _mail, _mail_delivery


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sweeps=dict(type="raw", default={}),
            disk_reports=dict(type="raw", default={}),
            disk_columns=dict(type="raw", default={}),
            hosts=dict(type="list", elements="str", default=[]),
            unreachable=dict(type="list", elements="str", default=[]),
            failed=dict(type="list", elements="str", default=[]),
            failure_reasons=dict(type="dict", default={}),
            addresses=dict(type="raw", default={}),
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
