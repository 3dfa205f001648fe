# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""disk_report as Ansible runs it: a separate Python process reading its args as JSON, mailing a real server."""

import email
import email.policy
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter

import ansible_runner
import hostile_mounts
import html_check
import module_runner
import pytest
import smtp_server
import yaml

from ansible_collections.sysops.fleet.plugins.modules import disk_report
from ansible_collections.sysops.fleet.plugins.module_utils import (_disk, _fleet, _fleet_render, _mail, _mail_delivery,
                                                                   _mail_spool, _sizes, _text)

HUNG_MOUNT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils", "hung_mount.py")


def run_module(tmp_path, wrapper=(), **args):
    """(exit code, parsed JSON result) of one module run."""
    rc, out, unused_raw = run_module_raw(tmp_path, wrapper, **args)
    return rc, out


def run_module_raw(tmp_path, wrapper=(), env=None, **args):
    """(exit code, parsed JSON result, raw stdout) of one module run, optionally under *wrapper*."""
    return module_runner.run_module(disk_report, tmp_path, wrapper=wrapper, env=env, **args)


def mail_args(tmp_path, server, **extra):
    args = {"mail_to": ["Ops <ops@example.com>"], "mail_from": "disk-report@web1.example.com",
            "smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_timeout": 5,
            "spool_dir": str(tmp_path / "spool")}
    args.update(extra)
    return args


def received(server, n=0):
    return email.message_from_bytes(server.messages[n].data, policy=email.policy.default)


def test_report_without_mail_is_never_changed_and_matches_df(tmp_path, df):
    rc, out = run_module(tmp_path)
    assert rc == 0, out
    assert out["changed"] is False and out["mail"]["sent"] is False
    table = df()
    root = next(fs for fs in out["filesystems"] if fs["mount"] == "/")
    assert root["device"] == table["/"][0] and root["fstype"] == table["/"][1]
    assert -(-root["size_bytes"] // 1024) == int(table["/"][2])
    assert abs(root["use_pct"] - int(table["/"][5].rstrip("%"))) <= 1
    assert set(root) >= {"device", "fstype", "mount", "size_bytes", "used_bytes", "avail_bytes", "use_pct",
                         "inodes_total", "inodes_used", "inode_pct", "status"}
    assert out["report"].startswith("Nightly Disk Usage Report for ")


def test_the_report_is_mailed_and_read_back(tmp_path, smtpd, df):
    server = smtpd()
    rc, out = run_module(tmp_path, warn=1, **mail_args(tmp_path, server))
    assert rc == 0, out
    assert out["changed"] is True
    assert out["mail"]["sent"] is True and out["mail"]["recipients"] == ["Ops <ops@example.com>"]
    assert out["mail"]["spooled"] is None and out["mail"]["reason"] == "sent"
    msg = received(server)
    assert msg["Message-ID"] == out["mail"]["message_id"] and msg["Date"]
    statuses = [fs["status"] for fs in out["filesystems"]]
    counts = ", ".join(f"{statuses.count(s)} filesystem{'' if statuses.count(s) == 1 else 's'} {s}"
                       for s in ("crit", "warn") if statuses.count(s))
    assert msg["Subject"] == f"[{out['status'].upper()}] {out['report'].splitlines()[0]}: {counts}"
    assert msg["X-Mailer"] == "sysops.fleet disk_report"
    assert server.messages[0].rcpt_tos == ["ops@example.com"]
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    page = msg.get_body(("html",)).get_content()
    assert text == out["report"]
    root = next(fs for fs in out["filesystems"] if fs["mount"] == "/")
    row = next(line.split() for line in text.splitlines() if line.endswith(" /"))
    assert row[:3] == [root["device"], root["fstype"], _sizes.human(root["size_bytes"])]
    assert row[5] == f"{root['use_pct']}%" and row[8] == "warn"  # warn=1: everything warns
    assert abs(root["use_pct"] - int(df()["/"][5].rstrip("%"))) <= 1
    assert f"width:{root['use_pct']}%" in page and "#f9a825" in page


def test_check_mode_never_sends_nor_spools(tmp_path, smtpd):
    server = smtpd()
    rc, out = run_module(tmp_path, _ansible_check_mode=True, send="always", **mail_args(tmp_path, server))
    assert rc == 0 and out["changed"] is True, "a real run would send the report: check mode says changed"
    assert out["mail"]["sent"] is False and out["mail"]["reason"].startswith("check mode: nothing sent")
    assert server.messages == [] and not (tmp_path / "spool").exists()


def test_a_failed_send_fails_spools_and_the_next_run_delivers_it_first(tmp_path, smtpd):
    server = smtpd()
    port = server.port
    server.stop()
    rc, out = run_module(tmp_path, **mail_args(tmp_path, server))
    assert rc == 1 and out["failed"] is True and out["changed"] is False
    assert "the disk report could not be mailed: cannot connect to 127.0.0.1:" in out["msg"]
    assert "connection refused" in out["msg"] and "spooled to" in out["msg"]
    spooled = out["mail"]["spooled"]
    assert os.path.isfile(spooled) and out["mail"]["spool_pending"] == 1
    assert out["filesystems"] and out["report"]  # the report is in the output all the same

    back = smtpd(port=port)
    rc, again = run_module(tmp_path, **mail_args(tmp_path, back))
    assert rc == 0 and again["changed"] is True, again
    assert again["mail"]["spool_sent"] == 1 and again["mail"]["spool_pending"] == 0
    assert [received(back, n)["Message-ID"] for n in range(2)] == [out["mail"]["message_id"],
                                                                   again["mail"]["message_id"]]
    assert not os.path.exists(spooled)


def test_password_is_never_in_the_output(tmp_path, smtpd, certs):
    server = smtpd(tls="starttls", auth=("reports", "Very-Secret-42"))
    rc, out, stdout = run_module_raw(tmp_path, smtp_security="starttls", smtp_username="reports",
                                     smtp_password="Very-Secret-42", smtp_ca_file=certs.ca,
                                     **mail_args(tmp_path, server))
    assert rc == 0 and out["changed"] is True, out
    assert server.messages[0].login == "reports" and server.messages[0].tls
    assert "Very-Secret-42" not in stdout


def test_history_file_adds_a_forecast_that_the_fleet_report_lists(tmp_path):
    """A first run starts the history; with two days of steady growth before it (1 GiB a day, a sample every
    15 minutes, written in) every filesystem has a fill rate and a date, and the fleet report lists them."""
    history_file = tmp_path / "lib" / "history.json"
    rc, first = run_module(tmp_path, history_file=str(history_file), send="never")
    assert rc == 0 and first["changed"] is False, first
    assert all(fs["forecast"]["rate_per_day"] is None for fs in first["filesystems"] if fs["forecast"])
    assert "not enough history yet" in first["report"]
    saved = json.loads(history_file.read_text())
    assert sorted(saved["filesystems"]) == sorted(fs["mount"] for fs in first["filesystems"] if fs["used_bytes"] is not None)
    for mount, samples in saved["filesystems"].items():
        when, used, avail = samples[0]
        step = (1 << 30) // 96
        saved["filesystems"][mount] = [[when - (192 - k) * 900, max(0, used - (192 - k) * step), avail + (192 - k) * step]
                                       for k in range(193)]
    history_file.write_text(json.dumps(saved))

    rc, second = run_module(tmp_path, history_file=str(history_file), send="never")
    assert rc == 0 and second["changed"] is False, second
    growing = [fs for fs in second["filesystems"] if fs["forecast"] and fs["forecast"]["days_to_full"] is not None]
    assert growing, second["filesystems"]
    for fs in growing:
        forecast = fs["forecast"]
        assert forecast["steady"] and forecast["rate_per_day"] == pytest.approx(1 << 30, rel=0.01)
        assert forecast["days_to_full"] == pytest.approx(fs["avail_bytes"] / forecast["rate_per_day"], rel=0.01)
        assert forecast["days_to_full_low"] <= forecast["days_to_full"] <= forecast["days_to_full_high"]
    assert "Fill rate (from 48.0 hours of history):" in second["report"]
    fleet = _fleet.build({}, {"web1": second}, ["web1"])["report"]
    assert len(fleet["forecasts"]) == min(10, len(growing))
    assert {f["mount"] for f in fleet["forecasts"]} <= {fs["mount"] for fs in growing}
    assert "full in" in _fleet_render.text(fleet).split("Filling fastest")[1]


def test_a_hung_mount_is_reported_and_the_task_finishes(tmp_path):
    wrapper = [sys.executable, HUNG_MOUNT, "--dir", str(tmp_path / "m"), "--"]
    rc, out = run_module(tmp_path, wrapper=wrapper, probe_timeout=1)
    assert rc == 0, out
    hung = [fs for fs in out["filesystems"] if fs["fstype"] == "fuse.hung"]
    assert len(hung) == 1 and hung[0]["status"] == "crit" and "timed out after 1s" in hung[0]["error"]
    assert hung[0] in out["alerts"] and out["status"] == "crit"


@pytest.mark.parametrize("args,message", [
    ({"warn": 150}, "warn must be a whole percentage between 1 and 100, got 150"),
    ({"warn": 95, "crit": 90}, "warn (95%) must not be above crit (90%)"),
    ({"inode_warn": 0}, "inode_warn must be a whole percentage"),
    ({"free_warn": "1G", "free_crit": "2G"}, "free_warn (1.0G) must not be below free_crit (2.0G)"),
    ({"free_warn": "10Q"}, "free_warn must be a size such as 10G"),
    ({"smtp_port": 99999}, "smtp_port must be between 1 and 65535, got 99999"),
    ({"mail_to": ["ops at example.com"]}, "mail_to: 'ops at example.com' is not a mail address"),
    ({"mail_to": ["ops@example.com\u2028Bcc: evil@example.com"]}, "is not a mail address (line breaks"),
    ({"mail_from": "x@example.com\nBcc: y@example.com"}, "line breaks"),
    ({"subject": "Disk report\u2028Bcc: evil@example.com"}, "subject may not contain line breaks or control characters"),
    ({"subject": "Disk\x0breport"}, "subject may not contain line breaks or control characters"),
    ({"subject": "Disk\x85report"}, "subject may not contain line breaks or control characters"),
    ({"subject": "Disk\x1ereport"}, "subject may not contain line breaks or control characters"),
    ({"subject": "Disk\u2029report"}, "subject may not contain line breaks or control characters"),
    ({"smtp_timeout": "nan"}, "smtp_timeout must be more than 0 and at most 3600 seconds, got nan"),
    ({"smtp_timeout": 0}, "smtp_timeout must be more than 0"),
    ({"send": "always", "mail_to": []}, "send=always needs mail_to"),
    ({"send": "weekly"}, "value of send must be one of"),
    ({"smtp_security": "tls"}, "value of smtp_security must be one of"),
    ({"smtp_username": "u", "smtp_password": "hunter2-pw"}, "refusing to send smtp_password over an unencrypted connection"),
    ({"smtp_username": "u"}, "parameters are required together: smtp_username, smtp_password"),
    ({"probe_timeout": 0}, "probe_timeout must be more than 0"),
])
def test_bad_input_fails_with_a_clear_message_and_sends_nothing(tmp_path, smtpd, args, message):
    server = smtpd()
    options = mail_args(tmp_path, server, send="always")
    options.update(args)
    rc, out = run_module(tmp_path, **options)
    assert rc == 1 and out["failed"] is True
    assert message in out["msg"]
    assert "filesystems" not in out
    assert server.handler.connections == 0 and not (tmp_path / "spool").exists(), "nothing sent, nothing spooled"


# ---- the queue through the module ----------------------------------------------------------------

def copies(server, message_id):
    return server.handler.copies().get(message_id, Counter())


def test_a_trickling_server_cannot_hold_the_task_and_the_report_goes_out_once_later(tmp_path, smtpd, slow_smtpd):
    down = smtpd()
    down.stop()
    started = time.monotonic()  # the reference, in the same run: the module's own cost, with an instant refusal
    run_module(tmp_path, **mail_args(tmp_path, down, spool_dir=str(tmp_path / "reference-spool")))
    own_cost = time.monotonic() - started
    slow = slow_smtpd("trickle", interval=0.1)
    started = time.monotonic()
    rc, out = run_module(tmp_path, **mail_args(tmp_path, slow, smtp_timeout=2))
    took = time.monotonic() - started
    assert rc == 1 and "within smtp_timeout=2s" in out["msg"] and "spooled to" in out["msg"], out["msg"]
    assert out["filesystems"] and out["mail"]["spooled"]
    assert took - own_cost < 2 + 1.5, f"the task took {took:.1f}s with smtp_timeout=2 ({own_cost:.1f}s its own)"
    slow.stop()
    good = smtpd(port=slow.port)
    rc, again = run_module(tmp_path, **mail_args(tmp_path, good))
    assert rc == 0 and again["mail"]["spool_sent"] == 1
    for run in (out, again):
        assert copies(good, run["mail"]["message_id"]) == Counter({"ops@example.com": 1})


def test_a_recipient_deferred_by_a_451_gets_its_copy_later_and_the_other_only_one(tmp_path, smtpd):
    server = smtpd(handler=smtp_server.Recorder(rcpt_replies={"night@example.com": "451 4.2.1 mailbox busy"}))
    args = mail_args(tmp_path, server, mail_to=["ops@example.com", "night@example.com"])
    rc, out = run_module(tmp_path, **args)
    assert rc == 0 and out["changed"] and out["mail"]["sent"], out
    assert out["mail"]["deferred"] == {"night@example.com": "451 4.2.1 mailbox busy"} and out["mail"]["spooled"]
    assert "temporarily refused night@example.com" in json.dumps(out["warnings"])
    server.handler.rcpt_replies.clear()
    rc, later = run_module(tmp_path, **dict(args, send="never"))  # send=never leaves the spool alone
    assert later["mail"]["spool_pending"] == 1
    rc, later = run_module(tmp_path, **dict(args, send="on_alert", warn=100, crit=100, inode_warn=100, inode_crit=100))
    assert rc == 0 and later["mail"]["spool_sent"] == 1 and later["mail"]["spool_pending"] == 0
    assert copies(server, out["mail"]["message_id"]) == Counter({"ops@example.com": 1, "night@example.com": 1})


def test_a_dead_letter_is_reported_and_the_next_report_mentions_it(tmp_path, smtpd):
    server = smtpd(handler=smtp_server.Recorder(refuse_rcpt=("gone@example.com",)))
    rc, out = run_module(tmp_path, **mail_args(tmp_path, server, mail_to=["ops@example.com", "gone@example.com"]))
    assert rc == 0 and out["mail"]["refused"] == {"gone@example.com": "550 5.1.1 mailbox unavailable"}
    [dead] = out["mail"]["dead_letters"]
    assert dead["recipients"] == {"gone@example.com": "550 5.1.1 mailbox unavailable"} and os.path.isfile(dead["file"])
    assert "refused for good gone@example.com" in json.dumps(out["warnings"])
    rc, nightly = run_module(tmp_path, **mail_args(tmp_path, server))
    assert rc == 0 and "Undelivered mail (1" in nightly["report"]
    assert "gone@example.com: 550 5.1.1 mailbox unavailable" in nightly["report"]
    page = email.message_from_bytes(server.messages[-1].data, policy=email.policy.default).get_body(("html",))
    assert ">Undelivered mail (1)</h2>" in page.get_content()
    assert server.handler.rcpt_commands.count("gone@example.com") == 1, "never retried"


def test_a_hang_up_after_the_whole_report_says_it_may_arrive_twice_and_sends_it_again(tmp_path, smtpd):
    """mail.uncertain: the server kept the report and hung up before answering. Before: "so it did not take
    the message" (it had), and nothing said the recipients might get it twice."""
    server = smtpd(handler=smtp_server.Recorder(keep_then_drop=True))
    rc, out = run_module(tmp_path, **mail_args(tmp_path, server, spool_lifetime_days=2))
    assert rc == 1 and out["msg"].startswith("it is not known whether the disk report was delivered: 127.0.0.1:")
    assert "may have taken the message" in out["msg"] and "did not take" not in out["msg"]
    assert list(out["mail"]["uncertain"]) == ["ops@example.com"] and out["mail"]["refused"] == {}
    assert out["mail"]["spooled"] and "they may get it twice" in json.dumps(out["warnings"])
    server.handler.keep_then_drop = False
    rc, again = run_module(tmp_path, **mail_args(tmp_path, server, send="never"))
    assert again["mail"]["spool_pending"] == 1
    rc, again = run_module(tmp_path, **mail_args(tmp_path, server))
    assert rc == 0 and again["mail"]["spool_sent"] == 1
    assert copies(server, out["mail"]["message_id"]) == Counter({"ops@example.com": 2})


@pytest.mark.parametrize("value", [0, 400])
def test_a_bad_spool_lifetime_fails_naming_it_before_anything_is_sent(tmp_path, smtpd, value):
    server = smtpd()
    rc, out = run_module(tmp_path, **mail_args(tmp_path, server, spool_lifetime_days=value))
    assert rc == 1 and out["msg"] == (f"spool_lifetime_days must be a number of days, more than 0 and at most 365, "
                                      f"got {float(value)}")
    assert server.handler.connections == 0


needs_mount_namespace = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                           reason="a read-only bind mount needs root and unshare")
READ_ONLY = ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"']


@needs_mount_namespace
def test_a_read_only_spool_warns_mails_the_report_and_keeps_the_queue_for_later(tmp_path, smtpd):
    spool = str(tmp_path / "spool")
    queued = _mail.build_message(_mail.parse_address("disk-report@web1.example.com", "mail_from"),
                                 [_mail.parse_address("ops@example.com", "mail_to")], "queued", "t\n", "<p>t</p>",
                                 domain="web1.example.com").as_bytes(policy=_mail.POLICY)
    _mail_spool.add(spool, queued, "disk-report@web1.example.com", ["ops@example.com"])
    server = smtpd()
    rc, out = run_module(tmp_path, wrapper=READ_ONLY + [spool], **mail_args(tmp_path, server))
    assert rc == 0 and out["mail"]["sent"] and out["filesystems"], out
    assert "is on a read-only filesystem: 1 queued message(s) were not sent" in json.dumps(out["warnings"])
    assert copies(server, _mail.message_id(queued)) == Counter(), "not sent: it could not be taken out after"
    rc, later = run_module(tmp_path, **mail_args(tmp_path, server))
    assert rc == 0 and later["mail"]["spool_sent"] == 1
    for message_id in (_mail.message_id(queued), out["mail"]["message_id"], later["mail"]["message_id"]):
        assert copies(server, message_id) == Counter({"ops@example.com": 1})


@needs_mount_namespace
def test_a_read_only_spool_and_no_server_is_a_clear_failure_with_the_report(tmp_path, smtpd):
    spool = tmp_path / "spool"
    spool.mkdir()
    server = smtpd()
    server.stop()
    rc, out = run_module(tmp_path, wrapper=READ_ONLY + [str(spool)], **mail_args(tmp_path, server))
    assert rc == 1 and "connection refused" in out["msg"]
    assert "could NOT be spooled" in out["msg"] and "Read-only file system" in out["msg"]
    assert out["filesystems"] and out["report"], "the report is still in the result"


def test_a_spool_dir_that_is_a_file_does_not_stop_the_mail(tmp_path, smtpd):
    (tmp_path / "file").write_text("")
    server = smtpd()
    rc, out = run_module(tmp_path, **mail_args(tmp_path, server, spool_dir=str(tmp_path / "file")))
    assert rc == 0 and out["mail"]["sent"] and "is not a directory" in json.dumps(out["warnings"])
    assert copies(server, out["mail"]["message_id"]) == Counter({"ops@example.com": 1})


def test_documentation_matches_the_argument_spec():
    from ansible_collections.sysops.fleet.plugins.doc_fragments.mail import ModuleDocFragment
    doc = yaml.safe_load(disk_report.DOCUMENTATION)
    shared = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert "sysops.fleet.mail" in doc["extends_documentation_fragment"]
    assert set(doc["options"]) | set(shared) == {
        "include_mounts", "exclude_mounts", "exclude_fstypes", "probe_timeout", "workers", "warn", "crit",
        "inode_warn", "inode_crit", "free_warn", "free_crit", "send", "mail_to", "mail_from", "subject",
        "smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_password", "smtp_allow_plaintext_auth",
        "smtp_validate_certs", "smtp_ca_file", "smtp_timeout", "spool_dir", "spool_lifetime_days", "history_file"}
    assert set(shared) == set(_mail_delivery.MAIL_ARGUMENT_SPEC)
    assert doc["options"]["exclude_fstypes"]["default"] == list(_disk.PSEUDO_FSTYPES)
    returned = yaml.safe_load(disk_report.RETURN)
    assert {"filesystems", "alerts", "report", "mail", "status"} <= set(returned)
    assert {"sent", "recipients", "message_id", "spooled", "spool_sent", "spool_pending", "refused", "deferred",
            "uncertain", "dead_letters", "quarantined", "reason"} == set(returned["mail"]["contains"])
    assert {"device", "fstype", "mount", "size_bytes", "used_bytes", "avail_bytes", "use_pct", "inodes_total",
            "inodes_used", "inode_pct", "status"} <= set(returned["filesystems"]["contains"])
    yaml.safe_load(disk_report.EXAMPLES)


def test_smtp_server_helper_is_loopback_only():
    assert smtp_server.LOOPBACK == "127.0.0.1"


# ---- through Ansible: ``ansible localhost -m sysops.fleet.disk_report`` ----------------------------

def test_through_ansible_check_mode_says_changed_when_a_real_run_would_mail(tmp_path, smtpd):
    """Before: changed=false for a run whose result said it would send mail."""
    server = smtpd()
    rc, out = ansible_runner.adhoc("sysops.fleet.disk_report", mail_args(tmp_path, server, send="always"), tmp_path,
                                   check=True)
    assert rc == 0 and out["changed"] is True, out
    assert out["mail"]["reason"] == "check mode: nothing sent (would send to 1 recipient(s))"
    rc, out = ansible_runner.adhoc("sysops.fleet.disk_report", mail_args(tmp_path, server, send="never"), tmp_path,
                                   check=True)
    assert rc == 0 and out["changed"] is False, "send=never: a real run changes nothing"
    assert server.handler.connections == 0 and not (tmp_path / "spool").exists()


def test_through_ansible_the_subject_says_the_worst_status_and_counts(tmp_path, smtpd):
    """Before: "Nightly Disk Usage Report for HOST" whether every filesystem was fine or crit."""
    server = smtpd()
    rc, out = ansible_runner.adhoc("sysops.fleet.disk_report", mail_args(tmp_path, server, warn=1, crit=100,
                                                                         inode_warn=100, inode_crit=100), tmp_path)
    assert rc == 0 and out["mail"]["sent"], out
    count = len(out["filesystems"])
    warned = f"{count} filesystem{'s' if count > 1 else ''} warn"
    assert received(server)["Subject"] == f"[WARN] {out['report'].splitlines()[0]}: {warned}"
    assert received(server)["X-Mailer"] == "sysops.fleet disk_report"
    rc, out = ansible_runner.adhoc("sysops.fleet.disk_report", mail_args(tmp_path, server, warn=100, crit=100,
                                                                         inode_warn=100, inode_crit=100), tmp_path)
    assert received(server, 1)["Subject"] == f"[OK] {out['report'].splitlines()[0]}: {count} filesystem" + \
        ("s ok" if count > 1 else " ok")


@pytest.mark.parametrize("option,value,message", [
    ("free_crit", 10 ** 400, "free_crit must be at most 1024E (larger than any filesystem), got '10000000000"),
    ("free_warn", "1" * 400 + "G", "free_warn must be at most 1024E (larger than any filesystem), got '11111"),
    ("free_crit", "2000000E", "free_crit must be at most 1024E (larger than any filesystem), got '2000000E'"),
    ("free_crit", 1e308 * 10, "free_crit must be a size such as 10G, 500M or a number of bytes, got 'inf'"),
])
def test_through_ansible_a_size_too_big_for_a_float_is_refused_by_name(tmp_path, smtpd, option, value, message):
    """Before: an uncaught OverflowError (MODULE FAILURE) for 10**400 and for '1000...0G'."""
    server = smtpd()
    rc, out = ansible_runner.adhoc("sysops.fleet.disk_report", mail_args(tmp_path, server, **{option: value}), tmp_path)
    assert rc == 2 and out["msg"].startswith(message), out
    assert server.handler.connections == 0


# ---- hostile mount tables: real mounts in a private mount namespace ------------------------------

HELPERS = os.path.dirname(HUNG_MOUNT)
HOSTILE_MOUNTS = os.path.join(HELPERS, "hostile_mounts.py")
BIN = os.path.dirname(sys.executable)
# findmnt (util-linux, its own mountinfo parser) lists the table the module sees, in the same namespace:
# raw output, every odd byte as \xHH
FINDMNT = 'LC_ALL=C findmnt -rn -o TARGET,SOURCE,FSTYPE > "$0" && exec "$@"'


def findmnt_rows(path):
    """(mount point, source, type) as bytes, from findmnt's raw output."""
    def unhex(field):
        return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes((int(m.group(1), 16),)), field)
    return [tuple(unhex(f) for f in line.split(b" ")) for line in path.read_bytes().splitlines()]


def shown_rows(rows, base):
    """What a report must show for the rows of the table at / and under *base*: (device, fstype, mount), escaped."""
    under = os.fsencode(base) + b"/"
    return {(_text.printable(src), _text.printable(fstype), _text.printable(target))
            for target, src, fstype in rows if target == b"/" or target.startswith(under)}


def ansible_disk_report(tmp_path, wrapper, args):
    """(exit code, result, output) of ``ansible localhost -m sysops.fleet.disk_report`` started under *wrapper*."""
    argv = list(wrapper) + [os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-i", "localhost,",
                            "-e", f"ansible_python_interpreter={sys.executable}",
                            "-m", "sysops.fleet.disk_report", "-a", json.dumps(args)]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=module_runner.COLLECTIONS_ROOT, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run(argv, capture_output=True, text=True, errors="surrogateescape", cwd=tmp_path, env=env,
                          timeout=300, check=False)
    if proc.returncode == 77:
        pytest.skip(proc.stderr.strip())
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "localhost | " in proc.stdout, output
    result, unused_end = json.JSONDecoder().raw_decode(proc.stdout, proc.stdout.index(" => ") + 4)
    return proc.returncode, result, output


def printable_lines(text):
    """Every line of *text* printable: no raw control, line or paragraph separator inside a line."""
    return all(line.isprintable() for line in text.split("\n"))


@needs_mount_namespace
def test_hostile_mount_points_are_all_reported_escaped_through_ansible_and_the_mail(tmp_path, smtpd):
    """Non-UTF-8 bytes, every line break str.splitlines knows, forged mountinfo lines naming / and another real
    mount, a path near PATH_MAX, and a FUSE mount with a hostile source and type: every filesystem of the table
    is reported, each under its escaped name, nothing hidden, and no raw control character reaches the report
    or the mail. Before: the whole task failed (Ansible refused the result); after removing the non-UTF-8 name,
    eight mounts vanished and / was reported with the forged device."""
    base = str(tmp_path / "m")
    server = smtpd()
    wrapper = [sys.executable, HOSTILE_MOUNTS, "--dir", base, "--fuse", "--", "sh", "-c", FINDMNT,
               str(tmp_path / "findmnt")]
    args = mail_args(tmp_path, server, include_mounts=["/", base + "/*"], probe_timeout=1, send="always")
    rc, out, output = ansible_disk_report(tmp_path, wrapper, args)
    assert rc == 0, output

    expected = shown_rows(findmnt_rows(tmp_path / "findmnt"), base)
    planned = hostile_mounts.plan(base, fuse=True)
    assert len(expected) == len(planned) + 1, "findmnt sees / and every planned mount"
    reported = [(fs["device"], fs["fstype"], fs["mount"]) for fs in out["filesystems"]]
    assert sorted(reported) == sorted(expected), "every filesystem of the table, each once, nothing forged"
    mounts = {fs["mount"]: fs for fs in out["filesystems"]}
    for name, shown, why in hostile_mounts.NAMES:
        assert f"{_text.printable(base)}/{shown}" in mounts, why
    assert {_text.printable(p.path) for p in planned} | {"/"} == set(mounts)
    assert mounts["/"]["error"] is None and mounts["/"]["device"] != "/dev/forged"
    assert mounts[_text.printable(base) + "/plain"]["device"] == "src-plain", "not the forged line's device"
    fuse = mounts[_text.printable(base) + "/fuse-\\rx"]
    assert (fuse["device"], fuse["fstype"]) == ("/dev/vda\\rfake \\xff", "fuse.evil\\x0b\\x1b[1m\\xfe")
    assert fuse["status"] == "crit" and "timed out after 1s" in fuse["error"]
    assert not [w for w in warning_texts(out) if "is not a mount" in w]

    table = out["report"].split("\n\n")[1].split("\n")
    assert len(table) == 1 + len(reported), "one line per filesystem: no name broke a line"
    assert printable_lines(out["report"])
    msg = received(server)
    assert msg["Subject"].isprintable()
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    page = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert text == out["report"] and printable_lines(text)
    assert printable_lines(page) and html_check.mail_problems(page) == []
    for fs in out["filesystems"]:
        assert html.escape(fs["mount"], quote=False) in page and html.escape(fs["device"], quote=False) in page


@needs_mount_namespace
def test_a_forged_line_cannot_hide_the_root_filesystem_from_the_default_selection(tmp_path):
    """The forged line names / as a tmpfs: before, / was dropped as a pseudo filesystem and the report was empty
    but for the FUSE mount. The hostile tmpfs mounts are left out (tmpfs), the user's FUSE mount is reported."""
    base = str(tmp_path / "m")
    wrapper = [sys.executable, HOSTILE_MOUNTS, "--dir", base, "--fuse", "--", "sh", "-c", FINDMNT,
               str(tmp_path / "findmnt")]
    rc, out = run_module(tmp_path, wrapper=wrapper, probe_timeout=1)
    assert rc == 0, out
    root = {(src, fstype) for target, src, fstype in findmnt_rows(tmp_path / "findmnt") if target == b"/"}
    mounts = {fs["mount"]: fs for fs in out["filesystems"]}
    assert "/" in mounts and {(os.fsencode(mounts["/"]["device"]), os.fsencode(mounts["/"]["fstype"]))} == root
    assert [m for m in mounts if m.startswith(_text.printable(base))] == [_text.printable(base) + "/fuse-\\rx"]
    assert "/dev/forged" not in [fs["device"] for fs in out["filesystems"]]


BAD_LINES = [b"garbage line", b"", b"1 2 x:y / /z rw - ext4 /dev/q rw", b"\x1b[2Jhidden\r/dev/sdz 1 2",
             b"1 2 3:4 / relative rw - ext4 /dev/q rw", b"1 2 3:4 / /a rw - ext4", b"7 8 9:9 / /b\xff rw"]
# The module's own /proc/self/mountinfo replaced by the real table with bad lines among it: the shell binds the
# file over /proc/$$/mountinfo and then becomes the module (exec keeps the pid); df, a child, reads the real one.
CRAFTED_TABLE = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                 'mount --bind "$0" /proc/$$/mountinfo && exec "$@"']


def warning_texts(result):
    """The module's warnings as text (ansible-core 2.19+ returns each as an event with its message)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


@needs_mount_namespace
def test_lines_that_are_no_mount_are_warnings_naming_them_and_the_rest_is_reported(tmp_path):
    with open("/proc/self/mountinfo", "rb") as handle:
        real = handle.read().split(b"\n")
    crafted = tmp_path / "mountinfo"
    crafted.write_bytes(b"\n".join(real[:2] + BAD_LINES + real[2:]))
    rc, plain = run_module(tmp_path)
    rc, out = run_module(tmp_path, wrapper=CRAFTED_TABLE + [str(crafted)])
    assert rc == 0, out
    assert [fs["mount"] for fs in out["filesystems"]] == [fs["mount"] for fs in plain["filesystems"]]
    warnings = [w for w in warning_texts(out) if "/proc/self/mountinfo" in w]
    assert len(warnings) == 6, warnings
    assert "line 3 is not a mount as the kernel writes one (no ' - ' after the mount options)" in warnings[0]
    assert warnings[0].endswith("may be missing from the report: garbage line")
    assert warnings[3].startswith("/proc/self/mountinfo line 6 is not a mount") \
        and warnings[3].endswith(": \\x1b[2Jhidden\\r/dev/sdz 1 2")
    assert warnings[5] == ("/proc/self/mountinfo: 2 more line(s) could not be read (7 in all), so filesystems may "
                           "be missing from the report")
    assert all(w.isprintable() for w in warnings)
