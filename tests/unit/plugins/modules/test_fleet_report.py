# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleet_report's run: files, state between runs, check mode, and mail to a real local SMTP server."""

import email
import email.policy
import json
import os

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
    assert not result["changed"] and "127.0.0.1" not in result["text"].split("Addresses down")[1][:20]
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
    assert message["Subject"] == "Fleet report" and message["To"] == "ops@example.com"
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
    assert set(doc["options"]) == {"sweeps", "disk_reports", "hosts", "unreachable", "failed", "failure_reasons",
                                   "report_dir", "state_file",
                                   "top", "send", "subject"}
    yaml.safe_load(fleet_report.EXAMPLES)
