# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_mail against real servers on 127.0.0.1: messages and headers, TLS and AUTH, answers per recipient,
what each fault is called, and the deadline on the whole conversation (trickling and stalling servers)."""

import email
import email.policy
import socket
import threading

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


def converse(config, raw=None, recipients=None):
    """One conversation: connect, send *raw* once, QUIT; the server's answer (Sent)."""
    raw = raw or message()
    sender, to = _mail.envelope(raw)
    conn = _mail.connect(config)
    try:
        return _mail.send(conn, config, sender, recipients or to, raw)
    finally:
        _mail.close(conn)


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
    ("ops@example.com\u2028Bcc: x@example.com", "line breaks"), ("ops@exa\x0bmple.com", "line breaks"),
    ("ops@bücher.example", "non-ASCII characters in the address itself; write the domain in its ASCII form: "
                           "ops@xn--bcher-kva.example"),
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


# Every separator str.splitlines() splits on, plus NUL and other controls: each is refused naming subject.
LINE_SEPARATORS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\0",
                   "\x1b", "\x7f"]


@pytest.mark.parametrize("separator", LINE_SEPARATORS, ids=[repr(s) for s in LINE_SEPARATORS])
def test_a_subject_with_any_line_separator_is_refused_naming_subject(separator):
    subject = f"report{separator}Bcc: victim@example.com"
    with pytest.raises(_mail.MailConfigError) as refused:
        message(subject=subject)
    assert str(refused.value).startswith("subject may not contain line breaks or control characters")
    assert len(subject.splitlines()) > 1 or separator in "\0\x1b\x7f"  # the table holds what splitlines splits on


def test_a_plain_subject_with_tabs_and_unicode_is_kept():
    assert _mail.check_header("Disk\treport – äöü", "subject") == "Disk\treport – äöü"
    assert _mail.clean_header("/mnt/a\u2028b\nc") == "/mnt/a b c"


def test_envelope_comes_from_the_message_headers():
    assert _mail.envelope(message(to=("a@example.com", "B <b@example.com>"))) == (
        "disk@web1.example.com", ["a@example.com", "b@example.com"])


# ---- TLS and AUTH ------------------------------------------------------------------------------

def test_plain_conversation_delivers_and_is_read_back(smtpd):
    server = smtpd()
    raw = message(text="Filesystem Size\n/dev/sda1 100G\n", html_body="<table><tr><td>/dev/sda1</td></tr></table>")
    sent = converse(settings(server), raw)
    assert (sent.accepted, sent.deferred, sent.refused) == (["ops@example.com"], {}, {})
    received = server.messages[0]
    assert received.mail_from == "disk@web1.example.com" and received.rcpt_tos == ["ops@example.com"]
    assert received.tls is False
    msg = parsed(received)
    assert content(msg, "plain") == "Filesystem Size\n/dev/sda1 100G\n"
    assert "<td>/dev/sda1</td>" in content(msg, "html")


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_tls_is_verified_against_the_given_ca(smtpd, certs, tls):
    server = smtpd(tls=tls)
    assert converse(settings(server, security=tls, ca_file=certs.ca)).accepted == ["ops@example.com"]
    assert server.messages[0].tls is True


def test_ssl_cert_file_environment_variable_is_honoured(smtpd, certs, monkeypatch):
    server = smtpd(tls="starttls")
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca)
    assert converse(settings(server, security="starttls")).accepted


def test_starttls_with_auth_logs_in_over_tls(smtpd, certs):
    server = smtpd(tls="starttls", auth=("reports", "s3cret"))
    assert converse(settings(server, security="starttls", ca_file=certs.ca, username="reports", password="s3cret")).accepted
    assert (server.messages[0].tls, server.messages[0].login) == (True, "reports")


def test_an_untrusted_certificate_is_refused_unless_verification_is_turned_off(smtpd):
    server = smtpd(tls="starttls")
    with pytest.raises(_mail.MailError, match="could not be verified .*smtp_ca_file"):
        converse(settings(server, security="starttls"))
    assert server.messages == []
    assert converse(settings(server, security="starttls", validate_certs=False)).accepted


def test_a_password_goes_in_plain_text_only_when_explicitly_allowed(smtpd):
    with pytest.raises(_mail.MailConfigError, match="refusing to send smtp_password over an unencrypted"):
        SmtpSettings(host="127.0.0.1", username="u", password="p").check()
    server = smtpd(auth=("u", "p"), auth_require_tls=False)
    assert converse(settings(server, username="u", password="p", allow_plaintext_auth=True)).accepted
    assert (server.messages[0].tls, server.messages[0].login) == (False, "u")


def test_starttls_not_offered_sends_nothing_in_plain_text(smtpd):
    server = smtpd()
    with pytest.raises(_mail.MailError, match="does not offer STARTTLS and smtp_security=starttls"):
        converse(settings(server, security="starttls"))
    assert server.handler.mail_commands == []  # not even MAIL FROM went out


# ---- the server's answer, per recipient --------------------------------------------------------

def test_each_recipient_gets_its_own_answer(smtpd):
    server = smtpd(handler=smtp_server.Recorder(rcpt_replies={"busy@example.com": "451 4.2.1 mailbox busy",
                                                              "gone@example.com": "550 5.1.1 no such user"}))
    sent = converse(settings(server), message(to=("ops@example.com", "busy@example.com", "gone@example.com")))
    assert sent.accepted == ["ops@example.com"]
    assert sent.deferred == {"busy@example.com": "451 4.2.1 mailbox busy"}
    assert sent.refused == {"gone@example.com": "550 5.1.1 no such user"}
    assert server.messages[0].rcpt_tos == ["ops@example.com"]


@pytest.mark.parametrize("reply,kind", [("451 4.3.0 Try again later", "deferred"), ("554 5.6.0 Rejected", "refused")])
def test_an_answer_to_data_covers_every_accepted_recipient(smtpd, reply, kind):
    server = smtpd(handler=smtp_server.Recorder(data_reply=reply))
    sent = converse(settings(server), message(to=("a@example.com", "b@example.com")))
    assert sent.accepted == [] and server.messages == []
    assert getattr(sent, kind) == {r: f"{reply} (to DATA)" for r in ("a@example.com", "b@example.com")}


def test_a_451_for_every_recipient_is_temporary_not_a_wrong_address(smtpd):
    server = smtpd(handler=smtp_server.Recorder(rcpt_reply="451 4.3.0 Try again later"))
    sent = converse(settings(server), message(to=("a@example.com", "b@example.com")))
    assert sent.accepted == [] and sent.refused == {}
    assert set(sent.deferred) == {"a@example.com", "b@example.com"}


# ---- what each fault is called -----------------------------------------------------------------

def test_a_drop_in_the_middle_of_data_is_called_that(smtpd):
    server = smtpd(handler=smtp_server.Recorder(drop_in_data=True))
    with pytest.raises(_mail.MailError) as failed:
        converse(settings(server))
    assert "closed the connection while the message was being sent (during DATA)" in str(failed.value)
    assert "is it an SMTP server" not in str(failed.value)


def test_a_hang_up_before_the_greeting_asks_whether_it_is_an_smtp_server():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    done = threading.Event()

    def hang_up():
        conn, unused_addr = listener.accept()
        conn.close()
        done.set()
    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(_mail.MailError, match="closed the connection before its greeting .*is it an SMTP server"):
            _mail.connect(SmtpSettings(host="127.0.0.1", port=listener.getsockname()[1], timeout=5).check())
    finally:
        done.wait(5)
        listener.close()


def test_a_refused_connection_and_a_wrong_password_are_named(smtpd):
    down = smtpd()
    down.stop()
    with pytest.raises(_mail.MailError, match="cannot connect to 127.0.0.1:[0-9]+: connection refused"):
        _mail.connect(settings(down))
    server = smtpd(auth=("reports", "right"), auth_require_tls=False)
    with pytest.raises(_mail.MailError, match="refused the login of 'reports': 535"):
        _mail.connect(settings(server, username="reports", password="wrong", allow_plaintext_auth=True))


# ---- one deadline for the whole conversation ---------------------------------------------------

def test_a_greeting_trickled_one_byte_at_a_time_cannot_outlast_smtp_timeout(slow_smtpd):
    """Each byte comes well within any per-read timeout: only a deadline on the whole exchange stops it."""
    server = slow_smtpd("trickle", interval=0.1)
    took, unused, error = smtp_server.bounded(lambda: _mail.connect(settings(server, timeout=1.5)))
    assert isinstance(error, _mail.MailError)
    assert "did not finish the conversation within smtp_timeout=1.5s (still waiting during greeting)" in str(error)
    assert 1.4 <= took < 3.0, took
    assert server.bytes_sent >= 10  # it did trickle: a per-read timeout alone would never have fired


def test_the_deadline_holds_after_tls_too(slow_smtpd, certs):
    """SMTPS: the TLS socket takes over the deadline; a trickle after the handshake is stopped the same."""
    server = slow_smtpd("trickle", interval=0.1, tls=True)
    took, unused, error = smtp_server.bounded(lambda: _mail.connect(settings(server, timeout=1.5, security="ssl",
                                                                             ca_file=certs.ca)))
    assert isinstance(error, _mail.MailError) and "within smtp_timeout=1.5s" in str(error), error
    assert 1.4 <= took < 3.0, took
    assert server.bytes_sent >= 10


def test_a_server_silent_after_the_message_cannot_outlast_smtp_timeout(slow_smtpd):
    server = slow_smtpd("stall_after_data")
    took, unused, error = smtp_server.bounded(lambda: converse(settings(server, timeout=1.5)))
    assert isinstance(error, _mail.MailError) and "within smtp_timeout=1.5s (still waiting during DATA)" in str(error)
    assert took < 3.0, took


def test_a_tls_handshake_that_never_comes_cannot_outlast_smtp_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # the TCP connection completes in the backlog; no TLS byte ever comes
    try:
        took, unused, error = smtp_server.bounded(lambda: _mail.connect(SmtpSettings(
            host="127.0.0.1", port=listener.getsockname()[1], security="ssl", timeout=1.0).check()))
    finally:
        listener.close()
    assert isinstance(error, _mail.MailError) and "within smtp_timeout=1s" in str(error)
    assert took < 2.5, took


def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # connections complete in the backlog, but no greeting ever comes
    try:
        took, unused, error = smtp_server.bounded(lambda: _mail.connect(SmtpSettings(
            host="127.0.0.1", port=listener.getsockname()[1], timeout=0.5).check()))
    finally:
        listener.close()
    assert isinstance(error, _mail.MailError)
    assert "127.0.0.1:" in str(error) and "within smtp_timeout=0.5s" in str(error)
    assert took < 2.0
