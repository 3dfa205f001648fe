# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleet_report's run: files, state between runs, check mode, and mail to a real local SMTP server."""

import email
import email.policy
import json
import os

import ansible_runner
import html_check
import module_runner
import pytest
import yaml

from ansible_collections.sysops.fleet.plugins.doc_fragments.mail import ModuleDocFragment
from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _mail_delivery
from ansible_collections.sysops.fleet.plugins.modules import fleet_report


def sweep(alive, dead):
    return {"alive": alive, "dead": dead, "hosts": {}}


def disks(pct):
    return {"filesystems": [{"mount": "/", "use_pct": pct, "avail_bytes": 1 << 30, "status": "ok"}]}


def options(report_dir, **extra):
    opts = {"report_dir": str(report_dir), "sweeps": {}, "disk_reports": {}, "hosts": [], "unreachable": [],
            "top": 10, "send": "auto", "subject": "Fleet report", "mail_to": []}
    opts.update(extra)
    return opts


def test_two_runs_keep_state_and_report_what_changed(tmp_path):
    first = _fleet.run(options(tmp_path, sweeps={"s1": sweep(["127.0.0.1", "127.0.0.2"], [])},
                               disk_reports={"h1": disks(40)}, hosts=["h1"]))
    assert first["changed"] and first["report"]["first_run"]
    state = json.loads((tmp_path / "fleet-state.json").read_text())
    assert state["alive"] == ["127.0.0.1", "127.0.0.2"]
    assert oct((tmp_path / "fleet-state.json").stat().st_mode & 0o777) == "0o600"
    second = _fleet.run(options(tmp_path, sweeps={"s1": sweep(["127.0.0.1"], ["127.0.0.2"])},
                                disk_reports={"h1": disks(40)}, hosts=["h1"]))
    assert second["report"]["vanished"] == ["127.0.0.2"] and second["report"]["down"] == ["127.0.0.2"]
    text = (tmp_path / "fleet-report.txt").read_text()
    assert "Vanished addresses:\n  127.0.0.2" in text
    assert ">Fleet report</h1>" in (tmp_path / "fleet-report.html").read_text()


def test_check_mode_writes_nothing(tmp_path):
    result = _fleet.run(options(tmp_path / "reports", sweeps={"s": sweep(["127.0.0.1"], [])}), check_mode=True)
    assert result["changed"], "a real run would write the report"
    assert "127.0.0.1" not in result["text"].split("Addresses down")[1][:20]
    assert not (tmp_path / "reports").exists()


def test_a_corrupt_state_file_is_an_error_not_a_new_baseline(tmp_path):
    (tmp_path / "fleet-state.json").write_text("{oops")
    with pytest.raises(_fleet.FleetError, match="fix or remove it"):
        _fleet.run(options(tmp_path))


def test_mailed_to_a_real_smtp_server_on_alert(tmp_path, smtpd):
    server = smtpd()
    opts = options(tmp_path, sweeps={"s": sweep(["127.0.0.1"], ["127.0.0.9"])}, mail_to=["ops@example.com"],
                   mail_from="fleet@example.com", send="on_alert", smtp_host="127.0.0.1", smtp_port=server.port,
                   spool_dir=str(tmp_path / "spool"))
    result = _fleet.run(opts)
    assert result["mailing"].mail["sent"] and result["changed"]
    message = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
    assert message["Subject"] == "[WARN] Fleet report: 1 address down" and message["To"] == "ops@example.com"
    assert message["X-Mailer"] == "sysops.fleet fleet_report"
    plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Addresses down:\n  127.0.0.9" in plain
    assert "127.0.0.9" in message.get_body(("html",)).get_content()


def test_on_alert_mails_when_a_host_failed_and_not_when_all_is_well(tmp_path, smtpd):
    server = smtpd()
    mail = {"mail_to": ["ops@example.com"], "mail_from": "fleet@example.com", "send": "on_alert",
            "smtp_host": "127.0.0.1", "smtp_port": server.port, "spool_dir": str(tmp_path / "spool")}
    quiet = _fleet.run(options(tmp_path, hosts=["h1", "h2"], disk_reports={"h1": disks(40), "h2": disks(40)}, **mail))
    assert not quiet["mailing"].mail["sent"] and server.messages == []
    loud = _fleet.run(options(tmp_path, hosts=["h1", "h2"], disk_reports={"h1": disks(40)}, failed=["h2"], **mail))
    assert loud["mailing"].mail["sent"] and len(server.messages) == 1
    plain = email.message_from_bytes(server.messages[0].data, policy=email.policy.default).get_body(("plain",))
    assert "h2                       FAILED" in plain.get_content()


def test_mail_failure_spools_the_report(tmp_path, smtpd):
    server = smtpd()
    port = server.port
    server.stop()
    opts = options(tmp_path, mail_to=["ops@example.com"], mail_from="fleet@example.com", send="always",
                   smtp_host="127.0.0.1", smtp_port=port, spool_dir=str(tmp_path / "spool"))
    result = _fleet.run(opts)
    assert "the fleet report could not be mailed" in result["mailing"].error
    assert len(os.listdir(tmp_path / "spool")) == 1


def fs_row(**changes):
    row = {"mount": "/", "use_pct": 40, "avail_bytes": 1 << 30, "status": "ok"}
    row.update(changes)
    return {"filesystems": [row]}


# Hostile input through the module: a clear failure naming host and field, no traceback, nothing
# written (report files, state), nothing mailed.
HOSTILE = [
    ({"sweeps": {"s1": {"alive": "127.0.0.1"}}}, "sweeps['s1'].alive: expected a list of addresses, got a string"),
    ({"sweeps": {"s1": {"alive": ["127.0.0.1", "db1"]}}}, "sweeps['s1'].alive[1]: 'db1' is not an IP address"),
    ({"sweeps": {"s1": {"alive": [], "dead": {"127.0.0.9": True}}}}, "sweeps['s1'].dead: expected a list of addresses"),
    ({"sweeps": {"s1": "127.0.0.1"}}, "sweeps['s1'] is not a ping_sweep result"),
    ({"disk_reports": {"web1": {"filesystems": "/"}}}, "disk_reports['web1'] is not a disk_report result"),
    ({"disk_reports": {"web1": fs_row(status="purple")}},
     "disk_reports['web1'].filesystems[0].status: expected one of ok, warn, crit (or null), got a string ('purple')"),
    ({"disk_reports": {"web1": fs_row(use_pct="lots")}}, "disk_reports['web1'].filesystems[0].use_pct: expected a number"),
    ({"disk_reports": {"web1": fs_row(avail_bytes="10G")}},
     "disk_reports['web1'].filesystems[0].avail_bytes: expected a whole number"),
    ({"disk_reports": {"web1": fs_row(forecast={"days_to_full": "soon"})}},
     "disk_reports['web1'].filesystems[0].forecast.days_to_full: expected a number"),
    ({"disk_reports": {"web1": fs_row(mount=["/"])}}, "disk_reports['web1'].filesystems[0].mount: expected a mount point"),
    ({"top": 0}, "top must be a whole number of at least 1, got 0"),
    ({"subject": "Fleet\u2028Bcc: x@example.com"}, "subject may not contain line breaks or control characters"),
    ({"smtp_timeout": "inf"}, "smtp_timeout must be more than 0 and at most 3600"),
]


@pytest.mark.parametrize("args,message", HOSTILE, ids=[m[:50] for _a, m in HOSTILE])
def test_hostile_input_fails_clearly_and_writes_and_sends_nothing(tmp_path, smtpd, args, message):
    server = smtpd()
    state = tmp_path / "reports" / "fleet-state.json"
    options = dict(options_for_module(tmp_path / "reports", server), **args)
    rc, out, unused = module_runner.run_module(fleet_report, tmp_path, **options)
    assert rc == 1 and out["failed"] and message in out["msg"], out
    assert not (tmp_path / "reports").exists() and not state.exists(), "nothing written, no state saved"
    assert server.handler.connections == 0, "nothing mailed"


def test_hostile_input_leaves_an_existing_state_file_as_it_was(tmp_path, smtpd):
    server = smtpd()
    good = options_for_module(tmp_path / "reports", server, sweeps={"s1": {"alive": ["127.0.0.1"], "dead": []}})
    rc, out, unused = module_runner.run_module(fleet_report, tmp_path, **good)
    assert rc == 0, out
    state = (tmp_path / "reports" / "fleet-state.json").read_text()
    bad = dict(good, sweeps={"s1": {"alive": "127.0.0.2"}})
    rc, out, unused = module_runner.run_module(fleet_report, tmp_path, **bad)
    assert rc == 1 and (tmp_path / "reports" / "fleet-state.json").read_text() == state
    assert len(server.messages) == 1


def test_a_report_dir_that_cannot_be_written_fails_with_the_report_and_still_mails(tmp_path, smtpd):
    server = smtpd()
    (tmp_path / "blocker").write_text("")
    options = options_for_module(tmp_path / "blocker" / "reports", server, state_file=str(tmp_path / "state.json"),
                                 sweeps={"s1": {"alive": ["127.0.0.1"], "dead": ["127.0.0.9"]}})
    rc, out, unused = module_runner.run_module(fleet_report, tmp_path, **options)
    assert rc == 1 and "cannot write the fleet report in" in out["msg"] and "Not a directory" in out["msg"], out
    assert out["report"]["down"] == ["127.0.0.9"] and out["mail"]["sent"] and len(server.messages) == 1


def options_for_module(report_dir, server, **extra):
    opts = {"report_dir": str(report_dir), "mail_to": ["ops@example.com"], "mail_from": "fleet@example.com",
            "send": "always", "smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_timeout": 5,
            "spool_dir": str(report_dir) + "-spool"}
    opts.update(extra)
    return opts


def test_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(fleet_report.DOCUMENTATION)
    shared = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert "sysops.fleet.mail" in doc["extends_documentation_fragment"]
    assert set(shared) == set(_mail_delivery.MAIL_ARGUMENT_SPEC)
    assert set(doc["options"]) == {"sweeps", "disk_reports", "disk_columns", "hosts", "unreachable", "failed", "failure_reasons",
                                   "addresses", "report_dir", "state_file",
                                   "top", "send", "subject"}
    yaml.safe_load(fleet_report.EXAMPLES)


# ---- through Ansible: ``ansible localhost -m sysops.fleet.fleet_report`` ---------------------------

def fleet_fs(mount, use, status, reasons=(), inode=3.0, avail=8 << 30, forecast=None):
    """A filesystem as disk_report returns it."""
    return {"mount": mount, "device": "/dev/vda1", "fstype": "ext4", "size_bytes": 100 << 30,
            "used_bytes": (100 << 30) - avail, "avail_bytes": avail, "use_pct": use, "inode_pct": inode,
            "status": status, "reasons": list(reasons), "error": None, "forecast": forecast}


FLEET = {
    "hosts": ["web1", "web2", "db1", "db2", "app1"],
    "unreachable": ["app1"],
    "failed": ["db2"],
    "failure_reasons": {"db2": "Gather facts: Missing sudo password",
                        "app1": "Failed to connect to the host via ssh: Connection refused"},
    "disk_reports": {
        "web1": {"filesystems": [fleet_fs("/", 71, "ok"), fleet_fs("/var/spool", 10, "crit", inode=99,
                                                                   reasons=["inode use 99% is at or above crit 90%"])]},
        "web2": {"filesystems": [fleet_fs("/", 85, "warn", reasons=["use 85% is at or above warn 80%"])]},
        "db1": {"filesystems": [fleet_fs("/", 40, "ok"), fleet_fs("/srv", 60, "crit", avail=2 << 30,
                                                                  reasons=["2.0G free is below free_crit 5.0G"])]},
    },
    "sweeps": {"s1": {"alive": ["127.0.0.1", "127.0.0.2"], "dead": ["127.0.0.9"], "names": {}}},
}


def adhoc(tmp_path, server=None, check=False, **args):
    options = {"report_dir": str(tmp_path / "reports"), "spool_dir": str(tmp_path / "spool"), "send": "never"}
    if server is not None:
        options.update(mail_to=["ops@example.com"], mail_from="fleet@example.com", send="always",
                       smtp_host="127.0.0.1", smtp_port=server.port, smtp_timeout=10)
    options.update(args)
    return ansible_runner.adhoc("sysops.fleet.fleet_report", options, tmp_path, check=check)


def test_check_mode_says_changed_when_a_real_run_would_mail_and_sends_and_writes_nothing(tmp_path, smtpd):
    """Before: changed=false for a run that said it would send mail."""
    server = smtpd()
    rc, out = adhoc(tmp_path, server, check=True, **FLEET)
    assert rc == 0 and out["changed"] is True, out
    assert out["mail"]["reason"] == "check mode: nothing sent (would send to 1 recipient(s))"
    assert server.handler.connections == 0 and not (tmp_path / "reports").exists()
    assert not (tmp_path / "spool").exists()


@pytest.mark.parametrize("args,subject", [
    (FLEET, "[CRIT] Fleet report: 1 host unreachable, 1 host failed, 2 hosts crit, 1 host warn, 1 address down"),
    ({"hosts": ["web1", "web2"], "disk_reports": {"web1": FLEET["disk_reports"]["web2"]}},
     "[WARN] Fleet report: 1 host warn"),
    ({"hosts": ["web1"], "disk_reports": {"web1": {"filesystems": [fleet_fs("/", 10, "ok")]}}},
     "[OK] Fleet report: 1 host ok"),
    ({"hosts": ["a", "b", "c"], "unreachable": ["a", "b", "c"]}, "[CRIT] Fleet report: all 3 hosts unreachable"),
], ids=["crit", "warn", "ok", "all-unreachable"])
def test_the_subject_says_the_worst_status_and_counts_and_x_mailer_names_fleet_report(tmp_path, smtpd, args, subject):
    """Before: the subject was "Fleet report" whatever happened, and X-Mailer said disk_report."""
    server = smtpd()
    rc, out = adhoc(tmp_path, server, **args)
    assert rc == 0 and out["mail"]["sent"], out
    message = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
    assert message["Subject"] == subject
    assert message["X-Mailer"] == "sysops.fleet fleet_report"


def section(text, title):
    return text.split(f"\n{title}", 1)[1].split("\n\n", 1)[0].splitlines()[1:]


def test_the_text_report_leads_with_every_filesystem_not_ok_and_why_then_hosts_worst_first(tmp_path):
    """Before: "CRIT" and "1 disk alerts", then the fullest list, where /var/spool (10% used) is not."""
    rc, out = adhoc(tmp_path, top=2, **FLEET)
    assert rc == 0, out
    text = (tmp_path / "reports" / "fleet-report.txt").read_text()
    assert text == out["text"].rstrip("\n") + "\n"
    titles = [line for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert titles == ["Filesystems not ok (3), worst first:", "Hosts, worst first:", "Addresses down:",
                      "New / vanished addresses:", "Fullest filesystems:",
                      "Filling fastest (days until full at the current rate):"]
    assert section(text, "Filesystems not ok") == [
        "  CRIT  db1                  /srv                     2.0G free is below free_crit 5.0G",
        "  CRIT  web1                 /var/spool               inode use 99% is at or above crit 90%",
        "  WARN  web2                 /                        use 85% is at or above warn 80%"]
    assert "/var/spool" not in "\n".join(section(text, "Fullest filesystems"))
    assert [line.split()[:3] for line in section(text, "Hosts, worst first") if not line.startswith("      ")] == [
        ["app1", "UNREACHABLE", "disks"], ["db2", "FAILED", "disks"], ["db1", "reachable", "disks"],
        ["web1", "reachable", "disks"], ["web2", "reachable", "disks"]]
    assert section(text, "Filling fastest") == [
        "  No fill rate yet for any of the 5 filesystems: a rate needs disk-use history spanning at least 10 "
        "minutes (history_file; the watcher adds a sample every 15 minutes by default)."]
    assert out["report"]["status"] == "crit" and out["report"]["summary"]["hosts_crit"] == 2
    assert [(a["host"], a["mount"], a["reasons"]) for a in out["report"]["alerts"]] == [
        ("db1", "/srv", ["2.0G free is below free_crit 5.0G"]),
        ("web1", "/var/spool", ["inode use 99% is at or above crit 90%"]),
        ("web2", "/", ["use 85% is at or above warn 80%"])]
    rc, one = adhoc(tmp_path / "one", hosts=["web1"], disk_reports={"web1": {"filesystems": [fleet_fs("/", 5, "ok")]}})
    assert one["text"].splitlines()[1].startswith("OK: 1 host (0 unreachable, 0 failed, 0 crit, 0 warn, "), "not '1 hosts'"


HOSTILE_TEXT = ["web\n  CRIT  db9  /  use 100%", "db\r\x1b[2J\x1b[31mred", "app\u2028next", "mq\x85\x0b\x0c", "x\\ny",
                "\x00\t\u200b"]


def test_names_from_outside_never_add_a_line_to_the_text_report(tmp_path):
    """Host names, mount points, address names and reasons with line breaks and escapes: one printable line each.

    Before: each line break in one made a line of its own in fleet-report.txt (the HTML escaped them).
    """
    plain = {"hosts": [f"h{i}" for i in range(len(HOSTILE_TEXT))]}
    hostile = {"hosts": HOSTILE_TEXT}
    for args, names in ((plain, plain["hosts"]), (hostile, HOSTILE_TEXT)):
        args.update(unreachable=names[:1], failure_reasons={names[0]: "ssh: " + names[1], names[2]: names[3]},
                    disk_reports={n: {"filesystems": [fleet_fs("/" + n, 95, "crit", reasons=["why " + n]),
                                                      fleet_fs("/", 10, "ok")]} for n in names[1:]},
                    sweeps={"s": {"alive": ["127.0.0.1"], "dead": ["127.0.0.8", "127.0.0.9"],
                                  "names": {"127.0.0.8": names[4], "127.0.0.9": names[5]}}})
    rc, calm = adhoc(tmp_path / "plain", **plain)
    assert rc == 0, calm
    rc, out = adhoc(tmp_path / "hostile", **hostile)
    assert rc == 0, out
    text = (tmp_path / "hostile" / "reports" / "fleet-report.txt").read_text()
    lines = text.splitlines()
    assert len(text.split("\n")) == len(calm["text"].rstrip("\n").split("\n")) + 1, "not one line more"
    assert all(line.isprintable() for line in lines), [line for line in lines if not line.isprintable()]
    assert "  web\\n  CRIT  db9  /  use 100%" in text and "db\\r\\x1b[2J\\x1b[31mred" in text
    assert "app\\u2028next" in text and "mq\\u0085\\x0b\\x0c" in text
    # a name that is printable is shown as it came: disk_report has escaped a mount point's line break once already
    assert "  x\\ny " in text and "127.0.0.8 (x\\ny)" in text and "127.0.0.9 (\\x00\\t\\u200b)" in text
    page = (tmp_path / "hostile" / "reports" / "fleet-report.html").read_text()
    assert "\x1b" not in page and "<\x1b" not in page and html_check.mail_problems(page) == []


@pytest.mark.parametrize("field,value,message", [
    ("size_bytes", 10 ** 400, "size_bytes: expected a whole number of at least 0 or null, got an integer of 401 "
                              "digits (too large for a float)"),
    ("use_pct", 10 ** 400, "use_pct: expected a number from 0 to 100 or null, got an integer of 401 digits"),
    ("avail_bytes", "1" * 5000, "avail_bytes: expected a whole number of at least 0 or null, got a string ('111"),
    ("forecast", {"days_to_full": 10 ** 400}, "forecast.days_to_full: expected a number of at least 0 or null, "
                                              "got an integer of 401 digits (too large for a float)"),
    ("forecast", {"rate_per_day": -10 ** 400}, "forecast.rate_per_day: expected a number or null, got an integer of "
                                               "401 digits (too large for a float)"),
    ("used_bytes", 1e308 * 10, "used_bytes: expected a whole number of at least 0 or null"),
], ids=["size", "use", "long-text", "days", "rate", "inf"])
def test_a_number_too_big_for_a_float_fails_naming_host_and_field(tmp_path, field, value, message):
    """Before: an uncaught OverflowError (a traceback, MODULE FAILURE)."""
    row = fleet_fs("/", 10, "ok")
    row[field] = value
    rc, out = adhoc(tmp_path, hosts=["web1"], disk_reports={"web1": {"filesystems": [row]}})
    assert rc == 2 and out["msg"].startswith(f"disk_reports['web1'].filesystems[0].{message}"), out
    assert not (tmp_path / "reports").exists()
