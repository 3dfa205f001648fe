# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet report as operators get it: ``ansible-playbook playbooks/site.yml``, a real SMTP server, the files.

Everything runs inside a network namespace of the loopback lab (root):
the play, its ssh attempts, its facts (which look names up) and the SMTP
server the test starts there. Unreachable hosts are 127.0.0.x addresses
with ssh on a port nothing listens on, so the connection is refused at
once and nothing leaves the namespace.
"""

import datetime
import json
import os
import shutil
import sys

import ansible_runner
import html_check
import pytest
import yaml

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, TESTS)
import lab  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("nft")),
                                reason="site.yml runs in the loopback lab, which needs root, ip and nft")
CLOSED_PORT = 9  # nothing listens on it in a fresh namespace: ssh is refused at once
SECRET = "S3cret-relay-pw-19"
STALE = "Fleet report 2020-01-01T06:00:00+00:00\nOK: 2 hosts (0 unreachable, 0 failed), all is well\n"


@pytest.fixture
def netns():
    with lab.lab(prefix="fleetsite") as name:
        yield name


def inventory(tmp_path, hosts, **fleet_vars):
    """An inventory file: *hosts* (name -> vars), the fleet's variables, no watcher (it is not what is tested)."""
    variables = {"fleet_watcher": False, "fleet_report_dir": str(tmp_path / "reports"),
                 "fleet_spool_dir": str(tmp_path / "spool"), "fleet_mail_from": "fleet@example.com",
                 "fleet_mail_to": ["ops@example.com"], "fleet_smtp_host": "127.0.0.1"}
    variables.update(fleet_vars)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"vars": variables, "hosts": hosts}}))
    return str(path)


def unreachable(address):
    return {"ansible_host": address, "ansible_connection": "ssh", "ansible_port": CLOSED_PORT}


def local():
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def hosts_section(text):
    return text.split("Hosts, worst first:\n", 1)[1].split("\n\n", 1)[0].splitlines()


@pytest.mark.parametrize("strategy", ["linear", "mitogen"])
def test_every_host_unreachable_still_writes_and_mails_the_report(tmp_path, netns, strategy):
    """Before: no report at all (rc 4, 'NO MORE HOSTS LEFT'), and yesterday's file left looking current."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "fleet-report.txt").write_text(STALE)
    (reports / "fleet-report.html").write_text("<p>" + STALE + "</p>")
    server = ansible_runner.MaildirServer(tmp_path, netns)
    try:
        inv = inventory(tmp_path, {"web1": unreachable("127.0.0.2"), "db1": unreachable("127.0.0.3")},
                        fleet_smtp_port=server.port)
        done = ansible_runner.run(["ansible-playbook", "-i", inv, "playbooks/site.yml"], tmp_path, netns,
                                  env=ansible_runner.mitogen_env() if strategy == "mitogen" else None)
        messages = server.messages()
    finally:
        server.stop()
    output = done.stdout + done.stderr
    assert done.returncode == 4, output[-3000:]
    assert "Traceback" not in output
    text = (reports / "fleet-report.txt").read_text()
    generated = datetime.datetime.fromisoformat(text.splitlines()[0].split()[-1])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - generated).total_seconds()) < 600, "written now"
    assert text.splitlines()[1].startswith("CRIT: 2 hosts (2 unreachable, 0 failed")
    assert text.splitlines()[2] == "No host could be reached: each is listed under Hosts with what the connection said."
    hosts = hosts_section(text)
    assert [line.split()[:2] for line in hosts[::2]] == [["db1", "UNREACHABLE"], ["web1", "UNREACHABLE"]]
    for line, address in zip(hosts[1::2], ("127.0.0.3", "127.0.0.2")):
        assert line.startswith("      reason: ") and f"{address} port {CLOSED_PORT}: Connection refused" in line
    page = (reports / "fleet-report.html").read_text()
    rows = html_check.rows(html_check.table_after(html_check.parse(page)[0], "Hosts, worst first"))
    assert [(r.kids("td")[1].text, r.attrs["data-status"]) for r in rows] == [("db1", "unreachable"),
                                                                              ("web1", "unreachable")]
    assert all("Connection refused" in r.kids("td")[2].text for r in rows)
    assert len(messages) == 1, "mailed once"
    message = messages[0]
    assert message["Subject"] == "[CRIT] Fleet report: all 2 hosts unreachable"
    assert message["X-Mailer"] == "sysops.fleet fleet_report"
    assert ansible_runner.plain(message) == text
    state = json.loads((reports / "fleet-state.json").read_text())
    assert state["alive"] == [] and state["generated"] == text.splitlines()[0].split()[-1]


def test_a_filesystem_crit_for_its_inodes_is_named_and_mailed_through_an_authenticated_relay(tmp_path, netns):
    """A real disk_report on a real tmpfs at 96% of its inodes (0% used), mailed with STARTTLS, login and CA file.

    Before: the report said CRIT but listed only the fullest filesystem (not the culprit), and
    site.yml could not log in to the relay (no login, CA file or certificate settings).
    """
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    server = ansible_runner.MaildirServer(tmp_path, netns, ["--tls", "starttls", "--certs", str(tmp_path / "certs"),
                                                            "--auth", f"fleet:{SECRET}"])
    # a private mount namespace: the tmpfs is seen by this play alone, and goes with it
    mount_first = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs -o size=4m,nr_inodes=64 sysops-fleet-tiny "$0" && '
                   'i=0; while [ $i -lt 60 ]; do : > "$0/f$i"; i=$((i + 1)); done; shift; exec "$@"',
                   str(tiny), "--"]
    try:
        inv = inventory(tmp_path, {"web1": local(), "db1": unreachable("127.0.0.3")},
                        fleet_disk_include_mounts=[str(tiny), "/"], fleet_report_top=1,
                        fleet_smtp_port=server.port, fleet_smtp_security="starttls",
                        fleet_smtp_username="fleet", fleet_smtp_password=SECRET,
                        fleet_smtp_ca_file=str(tmp_path / "certs" / "ca.pem"), fleet_smtp_timeout=20)
        done = ansible_runner.run(["ansible-playbook", "-vvv", "-i", inv, "playbooks/site.yml"], tmp_path, netns,
                                  wrapper=mount_first)
        messages = server.messages()
    finally:
        server.stop()
    output = done.stdout + done.stderr
    assert done.returncode == 4, output[-4000:]
    assert SECRET not in output, "the relay's password is never shown, even with -vvv"
    text = (tmp_path / "reports" / "fleet-report.txt").read_text()
    lines = text.splitlines()
    culprit = [line for line in lines if str(tiny) in line]
    assert culprit and culprit[0].split()[:2] == ["CRIT", "web1"], text
    assert culprit[0].endswith("inode use 96% is at or above crit 90%"), culprit
    first_not_ok = lines.index(next(line for line in lines if line.startswith("Filesystems not ok (")))
    assert lines.index(culprit[0]) == first_not_ok + 1 or lines[first_not_ok + 1].startswith("  CRIT  web1")
    assert first_not_ok < lines.index("Hosts, worst first:") < lines.index("Fullest filesystems:")
    fullest = text.split("Fullest filesystems:\n", 1)[1].split("\n\n", 1)[0]
    assert str(tiny) not in fullest, "the culprit is not among the fullest: it is named above them"
    assert [line.split()[:2] for line in hosts_section(text)[::2]] == [["db1", "UNREACHABLE"], ["web1", "reachable"]]
    assert len(messages) == 1, output[-3000:]
    message = messages[0]
    assert message["X-Test-TLS"] == "yes" and message["X-Test-Login"] == "fleet", "STARTTLS and the login were used"
    assert message["Subject"] == "[CRIT] Fleet report: 1 host unreachable, 1 host crit"
    assert ansible_runner.plain(message) == text
    page = message.get_body(("html",)).get_content()
    alerts = html_check.rows(html_check.table_after(html_check.parse(page)[0], "Filesystems not ok"))
    cells = [[td.text for td in r.kids("td")] for r in alerts]
    assert ["CRIT", "web1", str(tiny)] in [c[:3] for c in cells]
    assert next(c for c in cells if c[2] == str(tiny))[-1] == "inode use 96% is at or above crit 90%"
