# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleet_report's run: files, state between runs, check mode, and mail to a real local SMTP server."""

import email
import email.policy
import json
import os

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
    assert "<h1>Fleet report" in (tmp_path / "fleet-report.html").read_text()


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


def test_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(fleet_report.DOCUMENTATION)
    shared = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert "sysops.fleet.mail" in doc["extends_documentation_fragment"]
    assert set(shared) == set(_mail_delivery.MAIL_ARGUMENT_SPEC)
    assert set(doc["options"]) == {"sweeps", "disk_reports", "hosts", "unreachable", "failed", "report_dir", "state_file",
                                   "top", "send", "subject"}
    yaml.safe_load(fleet_report.EXAMPLES)
