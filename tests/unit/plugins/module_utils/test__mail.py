# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_mail against real aiosmtpd servers on 127.0.0.1: plain, STARTTLS, SMTPS, AUTH, and every fault."""

import email
import email.policy
import fcntl
import os
import socket
import stat
import time

import pytest
import smtp_server

from ansible_collections.sysops.fleet.plugins.module_utils import _mail
from ansible_collections.sysops.fleet.plugins.module_utils._mail import SmtpSettings


def message(subject="Nightly Disk Usage Report for web1", to=("Ops <ops@example.com>",), text="table\n",
            html_body="<p>table</p>"):
    msg = _mail.build_message(_mail.parse_address("disk@web1.example.com", "mail_from"),
                              [_mail.parse_address(a, "mail_to") for a in to], subject, text, html_body,
                              domain="web1.example.com")
    return msg.as_bytes(policy=_mail.POLICY)


def settings(server, **kwargs):
    kwargs.setdefault("timeout", 5)
    return SmtpSettings(host="127.0.0.1", port=server.port, **kwargs).check()


def parsed(received):
    return email.message_from_bytes(received.data, policy=email.policy.default)


def content(msg, kind):
    """A part's text with the wire's CRLF line ends turned back into newlines."""
    return msg.get_body((kind,)).get_content().replace("\r\n", "\n")


def ids(server):
    return [parsed(m)["Message-ID"] for m in server.messages]


# ---- addresses and messages --------------------------------------------------------------------

@pytest.mark.parametrize("value,spec", [("ops@example.com", "ops@example.com"),
                                        ("Ops Team <ops@example.com>", "ops@example.com"),
                                        ("root@localhost", "root@localhost")])
def test_good_addresses(value, spec):
    assert _mail.parse_address(value, "mail_to").addr_spec == spec


@pytest.mark.parametrize("value,message", [
    ("ops", "is not a mail address"), ("@example.com", "is not a mail address"), ("ops@", "is not a mail address"),
    ("a@example.com, b@example.com", "more than one address"), ("a@example.com\r\nBcc: x@example.com", "line breaks"),
    ("", "is not a mail address"), ("a b@example.com", "is not a mail address"),
])
def test_bad_addresses(value, message):
    with pytest.raises(_mail.MailConfigError, match=message):
        _mail.parse_address(value, "mail_to")


def test_message_is_multipart_text_then_html_with_date_and_message_id():
    msg = email.message_from_bytes(message(text="Filesystem ä\n", html_body="<p>ä</p>"), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert content(msg, "plain") == "Filesystem ä\n"
    assert content(msg, "html").strip() == "<p>ä</p>"
    assert msg["Date"] and msg["Message-ID"].endswith("@web1.example.com>")
    assert msg["To"] == "Ops <ops@example.com>" and msg["From"] == "disk@web1.example.com"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert all(ord(c) < 128 for c in message(text="ä\n").decode("ascii"))  # 7bit: any relay takes it


def test_headers_cannot_be_injected():
    with pytest.raises(_mail.MailConfigError, match="subject may not contain line breaks"):
        message(subject="report\nBcc: victim@example.com")


def test_envelope_comes_from_the_message_headers():
    assert _mail.envelope(message(to=("a@example.com", "B <b@example.com>"))) == (
        "disk@web1.example.com", ["a@example.com", "b@example.com"])


@pytest.mark.parametrize("mode,recipients,alerting,decision", [
    ("auto", ["a"], False, (True, "")), ("auto", [], True, (False, "mail_to is empty")),
    ("always", ["a"], False, (True, "")), ("never", ["a"], True, (False, "send=never")),
    ("on_alert", ["a"], False, (False, "send=on_alert and no filesystem is in warn or crit")),
    ("on_alert", ["a"], True, (True, "")),
])
def test_when_to_send(mode, recipients, alerting, decision):
    assert _mail.decide(mode, recipients, alerting) == decision


# ---- the spool ---------------------------------------------------------------------------------

def test_default_spool_dir_for_root_and_for_users():
    assert _mail.default_spool_dir(0, {}) == "/var/lib/sysops-fleet/spool"
    assert _mail.default_spool_dir(1000, {"XDG_STATE_HOME": "/x/state"}) == "/x/state/sysops-fleet/spool"
    assert _mail.default_spool_dir(1000, {}) == os.path.expanduser("~/.local/state/sysops-fleet/spool")


def test_spool_files_are_private_complete_and_oldest_first(tmp_path):
    spool = str(tmp_path / "spool")
    first = _mail.spool_write(spool, message(subject="one"))
    second = _mail.spool_write(spool, message(subject="two"))
    (tmp_path / "spool" / ".tmp-half-written").write_bytes(b"x")
    assert _mail.spooled(spool) == [first, second]
    assert stat.S_IMODE(os.stat(spool).st_mode) == 0o700 and stat.S_IMODE(os.stat(first).st_mode) == 0o600
    with open(first, "rb") as handle:
        assert email.message_from_binary_file(handle, policy=email.policy.default)["Subject"] == "one"
    assert _mail.spooled(str(tmp_path / "missing")) == []


def test_the_spool_lock_keeps_two_runs_apart(tmp_path):
    spool = str(tmp_path)
    with _mail.spool_lock(spool):
        other = os.open(os.path.join(spool, ".lock"), os.O_RDWR)
        with pytest.raises(OSError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(other)
        started = time.monotonic()
        with pytest.raises(_mail.MailError, match="another run holds the lock"):
            with _mail.spool_lock(spool, wait=0.3):
                pass
        assert time.monotonic() - started < 2


# ---- real delivery -----------------------------------------------------------------------------

def test_plain_delivery_is_read_back_with_headers_and_both_parts(tmp_path, smtpd):
    server = smtpd()
    raw = message(text="Filesystem Size\n/dev/sda1 100G\n", html_body="<table><tr><td>/dev/sda1</td></tr></table>")
    result = _mail.deliver(raw, settings(server), str(tmp_path / "spool"))
    assert (result.sent, result.error, result.spooled, result.changed) == (True, "", None, True)
    received = server.messages[0]
    assert received.mail_from == "disk@web1.example.com" and received.rcpt_tos == ["ops@example.com"]
    assert received.tls is False
    msg = parsed(received)
    assert msg["Subject"] == "Nightly Disk Usage Report for web1" and msg["Message-ID"] and msg["Date"]
    assert content(msg, "plain") == "Filesystem Size\n/dev/sda1 100G\n"
    assert "<td>/dev/sda1</td>" in content(msg, "html")
    assert not (tmp_path / "spool").exists()  # nothing spooled, no spool directory made


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_tls_is_verified_against_the_given_ca(tmp_path, smtpd, certs, tls):
    server = smtpd(tls=tls)
    result = _mail.deliver(message(), settings(server, security=tls, ca_file=certs.ca), str(tmp_path))
    assert result.sent and result.error == ""
    assert server.messages[0].tls is True


def test_ssl_cert_file_environment_variable_is_honoured(tmp_path, smtpd, certs, monkeypatch):
    server = smtpd(tls="starttls")
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca)
    assert _mail.deliver(message(), settings(server, security="starttls"), str(tmp_path)).sent


def test_starttls_with_auth_logs_in_over_tls(tmp_path, smtpd, certs):
    server = smtpd(tls="starttls", auth=("reports", "s3cret"))
    result = _mail.deliver(message(), settings(server, security="starttls", ca_file=certs.ca, username="reports",
                                               password="s3cret"), str(tmp_path))
    assert result.sent
    assert (server.messages[0].tls, server.messages[0].login) == (True, "reports")


def test_an_untrusted_certificate_is_refused_unless_verification_is_turned_off(tmp_path, smtpd):
    server = smtpd(tls="starttls")
    refused = _mail.deliver(message(), settings(server, security="starttls"), str(tmp_path))
    assert "could not be verified" in refused.error and "smtp_ca_file" in refused.error
    assert server.messages == [] and refused.spooled
    accepted = _mail.deliver(message(), settings(server, security="starttls", validate_certs=False), str(tmp_path))
    assert accepted.sent and len(accepted.spool_sent) == 1 and len(server.messages) == 2


def test_a_password_goes_in_plain_text_only_when_explicitly_allowed(tmp_path, smtpd):
    with pytest.raises(_mail.MailConfigError, match="refusing to send smtp_password over an unencrypted"):
        SmtpSettings(host="127.0.0.1", username="u", password="p").check()
    server = smtpd(auth=("u", "p"), auth_require_tls=False)
    allowed = settings(server, username="u", password="p", allow_plaintext_auth=True)
    assert _mail.deliver(message(), allowed, str(tmp_path)).sent
    assert (server.messages[0].tls, server.messages[0].login) == (False, "u")


def test_some_recipients_refused_is_still_sent(tmp_path, smtpd):
    server = smtpd(handler=smtp_server.Recorder(refuse_rcpt=("gone@example.com",)))
    result = _mail.deliver(message(to=("ops@example.com", "gone@example.com")), settings(server), str(tmp_path))
    assert result.sent and result.spooled is None
    assert result.refused == {"gone@example.com": "550 5.1.1 mailbox unavailable"}
    assert server.messages[0].rcpt_tos == ["ops@example.com"]


# ---- faults: clear error, message spooled, delivered first by the next run ---------------------

def _down(smtpd):
    server = smtpd()
    server.stop()
    return server, {}


def _answers(reply_kind, reply):
    def make(smtpd):
        return smtpd(handler=smtp_server.Recorder(**{reply_kind: reply})), {}
    return make


def _wrong_password(smtpd):
    server = smtpd(tls="starttls", auth=("reports", "right"))
    return server, {"security": "starttls", "username": "reports", "password": "wrong"}


def _no_starttls(smtpd):
    return smtpd(), {"security": "starttls"}


FAULTS = {
    "server down": (_down, "connection refused", {}),
    "451 at DATA": (_answers("data_reply", "451 4.3.0 Try again later"),
                    "temporarily refused the message: 451 4.3.0 Try again later", {}),
    "550 at RCPT": (_answers("rcpt_reply", "550 5.1.1 No such user"),
                    "refused every recipient (ops@example.com: 550 5.1.1 No such user)", {}),
    "wrong password": (_wrong_password, "refused the login of 'reports': 535", {"password": "right"}),
    "STARTTLS not offered": (_no_starttls, "does not offer STARTTLS and smtp_security=starttls: refusing to send "
                             "in plain text", {}),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_send_is_spooled_and_delivered_first_by_the_next_run(tmp_path, smtpd, certs, fault):
    make_bad, error, fix = FAULTS[fault]
    bad, options = make_bad(smtpd)
    spool = str(tmp_path / "spool")
    failed = _mail.deliver(message(subject="first"), settings(bad, ca_file=certs.ca, **options), spool)
    assert failed.sent is False and failed.changed is False
    assert error in failed.error
    assert failed.spooled and os.path.dirname(failed.spooled) == spool and failed.pending == 1
    assert bad.messages == []
    if fault == "STARTTLS not offered":
        assert bad.handler.mail_commands == []  # not even MAIL FROM went out in plain text
    with open(failed.spooled, "rb") as handle:
        spooled_id = email.message_from_binary_file(handle, policy=email.policy.default)["Message-ID"]

    good = smtpd(tls="starttls" if options.get("security") == "starttls" else None,
                 auth=("reports", "right") if "username" in options else None,
                 port=bad.port if fault == "server down" else 0)
    options.update(fix)
    later = _mail.deliver(message(subject="second"), settings(good, ca_file=certs.ca, **options), spool)
    assert (later.sent, later.error, later.pending, later.changed) == (True, "", 0, True)
    assert later.spool_sent == [spooled_id]
    assert [parsed(m)["Subject"] for m in good.messages] == ["first", "second"]  # the spooled one first
    assert ids(good)[0] == spooled_id
    assert _mail.spooled(spool) == []


def test_a_server_that_never_answers_times_out(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # connections complete in the backlog, but no greeting ever comes
    try:
        started = time.monotonic()
        result = _mail.deliver(message(), SmtpSettings(host="127.0.0.1", port=listener.getsockname()[1],
                                                       timeout=0.5).check(), str(tmp_path))
        assert time.monotonic() - started < 5
    finally:
        listener.close()
    assert "no answer from 127.0.0.1:" in result.error and "within smtp_timeout=0.5s" in result.error
    assert result.spooled


def test_a_partly_delivered_spool_keeps_the_rest(tmp_path, smtpd):
    spool = str(tmp_path)
    for subject in ("one", "two"):
        _mail.spool_write(spool, message(subject=subject))
    _mail.spool_write(spool, message(subject="three", to=("nobody@nowhere.example",)))
    server = smtpd(handler=smtp_server.Recorder(refuse_rcpt=("nobody@nowhere.example",)))
    result = _mail.deliver(message(subject="four"), settings(server), spool)
    assert "refused every recipient (nobody@nowhere.example" in result.error
    assert "after 2 spooled message(s) went out" in result.error
    assert len(result.spool_sent) == 2 and result.changed
    assert result.pending == 2 and result.spooled  # "three" is kept, "four" joined it


def test_only_the_spool_is_delivered_when_there_is_no_new_message(tmp_path, smtpd):
    server = smtpd()
    assert _mail.deliver(None, settings(server), str(tmp_path)).changed is False  # nothing to do: no connection
    _mail.spool_write(str(tmp_path), message(subject="old"))
    result = _mail.deliver(None, settings(server), str(tmp_path))
    assert result.sent is False and len(result.spool_sent) == 1 and result.changed
    assert [parsed(m)["Subject"] for m in server.messages] == ["old"]


def test_a_message_that_cannot_be_spooled_says_so(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = _mail.deliver(message(), SmtpSettings(host="127.0.0.1", port=9, timeout=1).check(), str(blocker))
    assert "could NOT be spooled" in result.error and result.spooled is None
