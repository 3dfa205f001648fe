# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_report: sizes parsed, thresholds and statuses, the text and HTML renderings, options and one whole run."""

import datetime
import email
import email.policy

import html_check
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _disk, _history, _mail, _mail_spool, _report
from ansible_collections.sysops.fleet.plugins.module_utils._disk import Filesystem
from ansible_collections.sysops.fleet.plugins.module_utils._report import Thresholds

G = 1024 ** 3
NOW = datetime.datetime(2024, 5, 1, 3, 0, 1, tzinfo=datetime.timezone.utc)


def fs(mount="/", use=50, inode=10, avail=50 * G, error=None, device="/dev/sda1"):
    if error:
        return Filesystem(device, "nfs4", mount, error=error)
    return Filesystem(device, "ext4", mount, size_bytes=100 * G, used_bytes=100 * G - avail, avail_bytes=avail,
                      use_pct=use, inodes_total=1000, inodes_used=inode * 10, inode_pct=inode)


# ---- sizes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("10G", 10 * G), ("10g", 10 * G), ("10GB", 10 * G), ("10GiB", 10 * G), ("1.5T", int(1.5 * 1024 * G)),
    ("512M", 512 * 1024 ** 2), ("100", 100), (2048, 2048), ("0", 0), (None, None), ("", None),
])
def test_sizes_use_powers_of_1024(text, value):
    assert _report.parse_size(text, "free_warn") == value


@pytest.mark.parametrize("text", ["ten gigs", "10X", "-5G", "G", True, "1e9"])
def test_bad_sizes_are_refused_by_name(text):
    with pytest.raises(_report.ReportError, match="free_crit"):
        _report.parse_size(text, "free_crit")


@pytest.mark.parametrize("value,message", [
    (10 ** 400, "free_crit must be at most 1024E (larger than any filesystem), got a number of about 401 digits"),
    ("9" * 400 + "G", "free_crit must be at most 1024E (larger than any filesystem), got '99999"),
    ("1025E", "free_crit must be at most 1024E (larger than any filesystem), got '1025E'"),
    (float("inf"), "free_crit must be at most 1024E (larger than any filesystem), got inf"),
    (float("nan"), "free_crit must be a size such as 10G, 500M or a number of bytes, got nan"),
    ([10], "free_crit must be a size such as 10G, 500M or a number of bytes, got [10]"),
])
def test_a_size_too_big_for_a_float_is_refused_by_name(value, message):
    """Before: OverflowError for 10**400 and for a 400-digit size."""
    with pytest.raises(_report.ReportError) as refused:
        _report.parse_size(value, "free_crit")
    assert str(refused.value).startswith(message) and len(str(refused.value)) < 200


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.integers(), st.floats(), st.text(max_size=40),
                 st.from_regex(r"\A ?[0-9]{1,500}(\.[0-9]{1,20})? ?[KMGTPEkmgtpe]?(i?[bB])?\Z")))
def test_any_size_is_a_number_of_bytes_or_refused_by_name(value):
    try:
        size = _report.parse_size(value, "free_warn")
    except _report.ReportError as exc:
        assert str(exc).startswith("free_warn ") and str(exc).isprintable() and len(str(exc)) < 200
        return
    assert size is None or (isinstance(size, int) and 0 <= size <= _report.MAX_SIZE)


# ---- thresholds --------------------------------------------------------------------------------

@pytest.mark.parametrize("limits,message", [
    (Thresholds(warn=0), "warn must be a whole percentage between 1 and 100, got 0"),
    (Thresholds(crit=101), "crit must be a whole percentage between 1 and 100, got 101"),
    (Thresholds(inode_warn=-1), "inode_warn must be a whole percentage"),
    (Thresholds(warn=95, crit=90), r"warn \(95%\) must not be above crit \(90%\)"),
    (Thresholds(inode_warn=91), r"inode_warn \(91%\) must not be above inode_crit \(90%\)"),
    (Thresholds(free_warn=G, free_crit=10 * G), r"free_warn \(1.0G\) must not be below free_crit \(10G\)"),
])
def test_bad_thresholds_are_refused_with_the_reason(limits, message):
    with pytest.raises(_report.ReportError, match=message):
        limits.check()


@pytest.mark.parametrize("filesystem,limits,status,reason", [
    (fs(use=79), Thresholds(), "ok", None),
    (fs(use=80), Thresholds(), "warn", "use 80% is at or above warn 80%"),
    (fs(use=90), Thresholds(), "crit", "use 90% is at or above crit 90%"),
    (fs(inode=85), Thresholds(), "warn", "inode use 85% is at or above warn 80%"),
    (fs(use=85, inode=95), Thresholds(), "crit", "inode use 95% is at or above crit 90%"),
    (fs(avail=9 * G), Thresholds(free_warn=10 * G), "warn", "9.0G free is below free_warn 10G"),
    (fs(avail=4 * G), Thresholds(free_warn=10 * G, free_crit=5 * G), "crit", "4.0G free is below free_crit 5.0G"),
    (fs(avail=20 * G), Thresholds(free_warn=10 * G, free_crit=5 * G), "ok", None),
    (fs(error="probe timed out after 5s"), Thresholds(), "crit", "probe timed out after 5s"),
    (Filesystem("/dev/x", "btrfs", "/b", size_bytes=1, used_bytes=0, avail_bytes=1, use_pct=0), Thresholds(), "ok", None),
])
def test_status_of_a_filesystem(filesystem, limits, status, reason):
    got, reasons = _report.assess(filesystem, limits)
    assert got == status
    assert (reason in reasons) if reason else reasons == []


# ---- rendering ---------------------------------------------------------------------------------

def sample_report():
    return _report.build([fs("/", use=50), fs("/var", use=93, device="/dev/sda2"),
                          fs("/mnt/<b>&\"x\"", use=81, device="/dev/sdc"),
                          fs("/mnt/nfs", error="probe timed out after 5s: the mount is hung", device="nfs:/e")],
                         Thresholds(), "web1", now=NOW)


def test_report_statuses_and_alerts():
    report = sample_report()
    assert [f["status"] for f in report.filesystems] == ["ok", "crit", "warn", "crit"]
    assert [a["mount"] for a in report.alerts] == ["/var", "/mnt/<b>&\"x\"", "/mnt/nfs"]
    assert report.status == "crit"
    assert set(report.filesystems[0]) == {"device", "fstype", "mount", "size_bytes", "used_bytes", "avail_bytes",
                                          "use_pct", "inodes_total", "inodes_used", "inode_pct", "status",
                                          "reasons", "error"}


def test_text_is_a_df_h_table_with_the_alerts():
    text = sample_report().text
    lines = text.splitlines()
    assert lines[0] == "Nightly Disk Usage Report for web1"
    assert lines[1] == "Generated 2024-05-01 03:00:01 UTC"
    assert lines[3].split() == ["Filesystem", "Type", "Size", "Used", "Avail", "Use%", "Inodes", "IUse%",
                                "Status", "Mounted", "on"]
    assert lines[4].split() == ["/dev/sda1", "ext4", "100G", "50G", "50G", "50%", "1000", "10%", "ok", "/"]
    assert lines[7].split()[:9] == ["nfs:/e", "nfs4", "-", "-", "-", "-", "-", "-", "crit"]
    assert len({line.index("Mounted") if "Mounted" in line else lines[4].index(" /") + 1 for line in lines[3:5]}) == 1
    assert "Alerts (3):" in text
    assert "  CRIT /var: use 93% is at or above crit 90%" in text
    assert "  CRIT /mnt/nfs: probe timed out after 5s: the mount is hung" in text
    assert not any(line.endswith(" ") for line in lines)


def test_text_without_alerts_or_filesystems():
    assert "No alerts" in _report.build([fs()], Thresholds(), "h", now=NOW).text
    assert "No filesystem matched the selection." in _report.build([], Thresholds(), "h", now=NOW).text


def test_html_has_a_bar_per_filesystem_coloured_by_status_worst_first_and_escapes_names():
    page = sample_report().html
    root, unused_doctype, errors = html_check.parse(page)
    assert errors == [] and html_check.mail_problems(page) == []
    rows = html_check.rows(html_check.table_after(root, "Nightly Disk Usage Report"))
    assert [r.attrs["data-status"] for r in rows] == ["crit", "crit", "warn", "ok"]
    bars = [r.find_all("td")[8].find_all("td")[0].style for r in rows]  # the filled part of each usage bar
    assert bars[0]["width"] == "93%" and bars[0]["background"] == "#c62828"
    assert bars[1]["width"] == "100%" and bars[1]["background"] == "#c62828"  # unknown usage: full red
    assert bars[2]["width"] == "81%" and bars[2]["background"] == "#f9a825"
    assert bars[3]["width"] == "50%" and bars[3]["background"] == "#2e7d32"
    assert rows[2].kids("td")[1].text == "/mnt/<b>&\"x\""  # shown as text, not markup
    assert "<b>&" not in page and "&lt;b&gt;&amp;" in page


# ---- options -----------------------------------------------------------------------------------

@pytest.mark.parametrize("options,message", [
    ({"warn": 101}, "warn must be a whole percentage between 1 and 100, got 101"),
    ({"warn": 95, "crit": 90}, r"warn \(95%\) must not be above crit \(90%\)"),
    ({"inode_crit": 0}, "inode_crit must be a whole percentage"),
    ({"free_warn": "lots"}, "free_warn must be a size such as 10G"),
    ({"smtp_port": 0}, "smtp_port must be between 1 and 65535, got 0"),
    ({"smtp_port": 70000}, "smtp_port must be between 1 and 65535, got 70000"),
    ({"smtp_host": "mail server"}, "smtp_host must be a host name or an IP address"),
    ({"smtp_timeout": 0}, "smtp_timeout must be more than 0"),
    ({"mail_to": ["not-an-address"]}, "mail_to: 'not-an-address' is not a mail address"),
    ({"mail_to": ["a@example.com, b@example.com"]}, "holds more than one address"),
    ({"mail_to": ["a@example.com\nBcc: evil@example.com"]}, "line breaks"),
    ({"mail_from": "nobody"}, "mail_from: 'nobody' is not a mail address"),
    ({"subject": "report\r\nBcc: evil@example.com"}, "subject may not contain line breaks"),
    ({"smtp_username": "u", "smtp_password": "p"}, "refusing to send smtp_password over an unencrypted connection"),
    ({"smtp_username": "u"}, "smtp_username and smtp_password must be given together"),
    ({"smtp_ca_file": "/nonexistent/ca.pem"}, "smtp_ca_file '/nonexistent/ca.pem' does not exist"),
    ({"send": "always"}, "send=always needs mail_to"),
    ({"send": "on_alert"}, "send=on_alert needs mail_to"),
    ({"send": "sometimes", "mail_to": ["a@example.com"]}, "send must be one of"),
    ({"smtp_security": "tls"}, "smtp_security must be one of none, starttls, ssl"),
    ({"probe_timeout": -1}, "probe_timeout must be more than 0"),
    ({"workers": 0}, "workers must be between 1 and 256, got 0"),
    ({"exclude_fstypes": [""]}, "exclude_fstypes: every entry must be a non-empty string"),
])
def test_bad_options_are_refused_with_the_option_named(options, message):
    with pytest.raises(ValueError, match=message):
        _report.config_from_options(options, host="web1")


def test_defaults_of_a_config():
    config = _report.config_from_options({}, host="web1")
    mail = config.mail
    assert mail.subject == "Nightly Disk Usage Report for web1"
    assert mail.smtp.host == "localhost" and mail.smtp.effective_port == 25 and mail.smtp.validate_certs
    assert mail.send == "auto" and mail.mail_to == []
    assert config.selection.exclude_fstypes == _disk.PSEUDO_FSTYPES
    assert str(mail.mail_from).endswith("@web1")
    assert config.spool_dir == mail.spool_dir == _mail_spool.default_dir()


@pytest.mark.parametrize("security,port", [("none", 25), ("starttls", 587), ("ssl", 465)])
def test_the_port_follows_smtp_security(security, port):
    assert _report.config_from_options({"smtp_security": security}, host="h").mail.smtp.effective_port == port


def test_a_default_sender_that_is_no_address_asks_for_mail_from():
    with pytest.raises(_mail.MailConfigError, match="cannot make a sender address .* set mail_from"):
        _report.config_from_options({}, host="bad host")


def test_plaintext_auth_only_when_explicitly_allowed():
    config = _report.config_from_options({"smtp_username": "u", "smtp_password": "s3cret-pw",
                                          "smtp_allow_plaintext_auth": True}, host="h")
    assert config.mail.smtp.username == "u" and "s3cret-pw" not in repr(config.mail.smtp)


# ---- one run -----------------------------------------------------------------------------------

def test_a_run_without_mail_reports_and_changes_nothing(tmp_path):
    config = _report.config_from_options({"spool_dir": str(tmp_path / "spool")}, host="web1")
    outcome = _report.run(config)
    assert outcome.changed is False and outcome.error == ""
    assert "/" in [f["mount"] for f in outcome.result["filesystems"]]
    assert outcome.result["report"].startswith("Nightly Disk Usage Report for web1\n")
    assert outcome.result["mail"]["reason"] == "mail_to is empty" and outcome.result["mail"]["sent"] is False
    assert not (tmp_path / "spool").exists()


def test_an_empty_selection_is_reported_with_a_warning(tmp_path):
    config = _report.config_from_options({"include_mounts": ["/no/such/mount"], "spool_dir": str(tmp_path)}, host="h")
    outcome = _report.run(config)
    assert outcome.result["filesystems"] == [] and "No filesystem matched the selection." in outcome.result["report"]
    assert outcome.warnings == ["no filesystem matched include_mounts, exclude_mounts and exclude_fstypes"]


def test_check_mode_never_connects_nor_spools(tmp_path):
    config = _report.config_from_options({"mail_to": ["ops@example.com"], "smtp_host": "127.0.0.1",
                                          "smtp_port": 9, "spool_dir": str(tmp_path / "spool")}, host="web1")
    outcome = _report.run(config, check_mode=True)
    assert outcome.changed is True and outcome.error == "", "changed: a real run would send the report"
    assert outcome.result["mail"]["reason"] == "check mode: nothing sent (would send to 1 recipient(s))"
    assert not (tmp_path / "spool").exists()
    quiet = _report.config_from_options({"mail_to": ["ops@example.com"], "send": "never", "smtp_host": "127.0.0.1",
                                         "smtp_port": 9, "spool_dir": str(tmp_path / "spool")}, host="web1")
    assert _report.run(quiet, check_mode=True).changed is False, "send=never: a real run would change nothing"


def test_send_on_alert_mails_only_when_something_is_wrong(tmp_path, smtpd):
    server = smtpd()
    options = {"mail_to": ["ops@example.com"], "smtp_host": "127.0.0.1", "smtp_port": server.port,
               "spool_dir": str(tmp_path), "send": "on_alert", "warn": 100, "crit": 100,
               "inode_warn": 100, "inode_crit": 100}
    quiet = _report.run(_report.config_from_options(options, host="web1"))
    assert quiet.changed is False and server.messages == []
    assert quiet.result["mail"]["reason"] == "send=on_alert and no filesystem is in warn or crit"
    options.update(warn=1, crit=100)
    loud = _report.run(_report.config_from_options(options, host="web1"))
    assert loud.changed is True and len(server.messages) == 1
    assert loud.result["mail"]["sent"] is True and loud.result["status"] == "warn"


def history_a_day_ago(path, now, less):
    """A history with one sample a day ago, when every filesystem had *less* bytes in use."""
    before = now.timestamp() - _history.DAY
    _history.save(path, {f.mount: [(before, f.used_bytes - less, f.avail_bytes + less)]
                         for f in _disk.read_filesystems() if f.used_bytes is not None})
    return before


def test_history_file_gives_every_filesystem_its_fill_rate_in_the_result_and_the_mail(tmp_path, smtpd):
    server = smtpd()
    history_file = str(tmp_path / "state" / "history.json")
    now = datetime.datetime.now(datetime.timezone.utc).astimezone()
    before = history_a_day_ago(history_file, now, less=24 << 20)
    earlier = _history.load(history_file)
    config = _report.config_from_options({"mail_to": ["ops@example.com"], "smtp_host": "127.0.0.1",
                                          "smtp_port": server.port, "spool_dir": str(tmp_path / "spool"),
                                          "history_file": history_file}, host="web1")
    outcome = _report.run(config, now=now)
    assert not outcome.error and outcome.changed
    rows = [f for f in outcome.result["filesystems"] if f["mount"] in earlier and f["used_bytes"] is not None]
    assert rows
    for row in rows:
        unused_t, used_then, unused_avail = earlier[row["mount"]][0]
        rate = (row["used_bytes"] - used_then) / (now.timestamp() - before) * _history.DAY
        forecast = row["forecast"]
        assert forecast["rate_per_day"] == pytest.approx(rate, rel=1e-9)
        assert forecast["span_s"] == pytest.approx(_history.DAY)
        # one day-over-day comparison gives a rate but no 95 % interval, so no date (test__history has dated ones)
        assert forecast["days_to_full"] is None and forecast["steady"] is False
    assert {f["mount"] for f in outcome.result["fill_rate"]} == {r["mount"] for r in outcome.result["filesystems"]
                                                                 if r["forecast"]}
    assert "Fill rate (from 24.0 hours of history):" in outcome.result["report"]
    message = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
    assert "Fill rate (from 24.0 hours" in message.get_body(("plain",)).get_content()
    assert ">Fill rate (from 24.0 hours of history)</h2>" in message.get_body(("html",)).get_content()
    # this reading was added: two samples per filesystem now
    assert all(len(_history.load(history_file)[row["mount"]]) == 2 for row in rows)


def test_history_in_check_mode_and_when_it_cannot_be_written(tmp_path):
    history_file = str(tmp_path / "history.json")
    now = datetime.datetime.now(datetime.timezone.utc).astimezone()
    history_a_day_ago(history_file, now, less=1 << 20)
    earlier = _history.load(history_file)
    config = _report.config_from_options({"history_file": history_file, "send": "never"}, host="web1")
    checked = _report.run(config, check_mode=True, now=now)
    assert any(f["forecast"] and f["forecast"]["rate_per_day"] is not None for f in checked.result["filesystems"])
    assert _history.load(history_file) == earlier, "check mode must not write the history"
    (tmp_path / "file").write_text("")
    config = _report.config_from_options({"history_file": str(tmp_path / "file" / "h.json"), "send": "never"})
    broken = _report.run(config, now=now)
    assert not broken.error and broken.result["filesystems"]
    assert any(w.startswith("cannot keep the disk history in ") for w in broken.warnings)
    assert all(f["forecast"]["rate_per_day"] is None for f in broken.result["filesystems"] if f["forecast"])
    assert "not enough history yet" in broken.result["report"]
