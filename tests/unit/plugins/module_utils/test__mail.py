# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_mail against real servers on 127.0.0.1: messages and headers, TLS and AUTH, answers per recipient,
what each fault is called, and the deadline on the whole conversation (trickling and stalling servers)."""

import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import smtp_server
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

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

# Larger than the loopback socket buffers: the client is still sending when the server hangs up. (A message
# the kernel takes whole is sent, as far as the client can know: a hang-up then is an unknown outcome.)
BIG_TEXT = ("x" * 76 + "\n") * 120000


def test_a_hang_up_in_the_middle_of_the_message_is_called_that(slow_smtpd):
    server = slow_smtpd("drop_mid_message")
    with pytest.raises(_mail.MailError) as failed:
        converse(settings(server), message(text=BIG_TEXT))
    assert ("closed the connection while the message was being sent, before its end, so it did not take "
            "the message") in str(failed.value)
    assert "is it an SMTP server" not in str(failed.value) and "may have taken" not in str(failed.value)


@pytest.mark.parametrize("keeps", [False, True], ids=["drops it", "keeps it"])
def test_a_hang_up_after_the_whole_message_is_not_called_a_refusal(smtpd, keeps):
    """Before: "closed the connection while the message was being sent (during DATA), so it did not take the
    message", also when the server had it (keep_then_drop: it did)."""
    server = smtpd(handler=smtp_server.Recorder(drop_in_data=not keeps, keep_then_drop=keeps))
    sent = converse(settings(server), message(to=("a@example.com", "b@example.com")))
    assert (sent.accepted, sent.deferred, sent.refused) == ([], {}, {})
    reason = ("received the whole message but closed the connection before its final reply: it may have taken "
              "the message. It stays queued and is sent again, so its recipients may get it twice")
    assert set(sent.uncertain) == {"a@example.com", "b@example.com"}
    assert all(reason in why and "did not take" not in why for why in sent.uncertain.values())
    assert sent.ended == sent.uncertain["a@example.com"]
    assert len(server.messages) == int(keeps)


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
    """Before: "did not finish the conversation ... (still waiting during DATA)", and the message was resent
    without a word that the server had it whole."""
    server = slow_smtpd("stall_after_data")
    took, sent, error = smtp_server.bounded(lambda: converse(settings(server, timeout=1.5)))
    assert error is None and took < 3.0, (took, error)
    [why] = sent.uncertain.values()
    assert why.startswith("127.0.0.1:") and ("received the whole message but gave no final reply within "
                                             "smtp_timeout=1.5s: it may have taken the message") in why
    assert "RFC 5321 gives a server 10 minutes for this reply" in why and "set smtp_timeout to 600" in why


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


# ---- every reply is bounded ----------------------------------------------------------------------

# A child process talks to the server: its peak RSS is what the bound is about. Its address space is capped
# at 1 GiB so that an unbounded client fails fast (MemoryError) instead of filling the shared machine.
CHILD = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
sys.path.insert(0, sys.argv[3])
from ansible_collections.sysops.fleet.plugins.module_utils import _mail
settings = _mail.SmtpSettings(host="127.0.0.1", port=int(sys.argv[1]), timeout=float(sys.argv[2])).check()
raw = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\nMessage-ID: <1@example.com>\r\n\r\nbody\r\n")
started = time.monotonic()
outcome = {}
try:
    conn = _mail.connect(settings)
    try:
        sent = _mail.send(conn, settings, "a@example.com", ["b@example.com"], raw)
        unknown = getattr(sent, "uncertain", {})
        outcome = {"kind": "Sent", "accepted": sent.accepted, "error": " ".join(unknown.values())}
    finally:
        _mail.close(conn)
except _mail.MailError as exc:
    outcome = {"kind": "MailError", "error": str(exc)}
except BaseException as exc:
    outcome = {"kind": type(exc).__name__, "error": repr(exc)[:300]}
outcome.update(took=time.monotonic() - started, peak_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(json.dumps(outcome))
"""


def collections_path():
    """The directory holding ``ansible_collections`` that this test imports the collection from."""
    return os.path.abspath(os.path.join(os.path.dirname(_mail.__file__), *[".."] * 5))


def talk_in_a_child(port, timeout):
    done = subprocess.run([sys.executable, "-c", CHILD, str(port), str(timeout), collections_path()],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip(), done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


ENDLESS = {
    # mode: (what the client says, after the server's address)
    "flood_lines": "sent a reply of more than 100 lines (at greeting)",
    "endless_line": "sent a reply line longer than 8192 bytes (at greeting)",
    "flood_ehlo": "sent a reply of more than 100 lines (at EHLO)",
    "flood_final": ("received the whole message but sent a reply of more than 100 lines instead of its final "
                    "reply: it may have taken the message"),
    "trickle": "did not finish the conversation within smtp_timeout=3s (still waiting during greeting)",
}


@pytest.fixture(scope="module")
def reference_peak_kib(certs):
    """The child's peak RSS with a well-behaved server: what a bounded client stays near."""
    server = smtp_server.SmtpServer(certs=certs).start()
    try:
        outcome = talk_in_a_child(server.port, 3)
    finally:
        server.stop()
    assert outcome["kind"] == "Sent" and outcome["accepted"] == ["b@example.com"], outcome
    return outcome["peak_kib"]


@pytest.mark.parametrize("mode", list(ENDLESS))
def test_a_reply_that_never_ends_is_bounded_in_memory_and_time(slow_smtpd, reference_peak_kib, mode):
    """Before: smtplib kept every line of a reply; a greeting of "220-" lines forever grew the client
    without bound (measured: 106-144 MiB above the reference after 8 s, as fast as the test server sends)."""
    server = slow_smtpd(mode, interval=0.1)
    timeout = 3 if mode == "trickle" else 8  # a flood has time to show growth; a bounded client ends at once
    outcome = talk_in_a_child(server.port, timeout)
    print(f"{mode}: {outcome['peak_kib'] / 1024:.1f} MiB peak RSS (reference {reference_peak_kib / 1024:.1f} MiB), "
          f"{outcome['took']:.2f} s, server sent {server.bytes_sent} bytes")
    assert ENDLESS[mode] in outcome["error"], outcome
    assert outcome["kind"] == ("Sent" if mode == "flood_final" else "MailError"), outcome
    assert outcome["peak_kib"] < reference_peak_kib + 8 * 1024, "the reply is not bounded in memory"
    assert outcome["took"] < timeout + 0.5, "smtp_timeout bounds the conversation"
    if mode != "trickle":
        assert outcome["took"] < 2.0, "a bound on size ends the conversation when it is reached, not at the deadline"


# ---- what a server sends, byte for byte, and what the client makes of it ------------------------

G, E, M, R, D, F = (b"220 s.test ESMTP\r\n", b"250 s.test\r\n", b"250 2.1.0 ok\r\n", b"250 2.1.5 ok\r\n",
                    b"354 go ahead\r\n", b"250 2.0.0 kept\r\n")
UNTIL_DATA = G + E + M + R + D
HOSTILE_REPLIES = [
    # (what the server sends, what the client says: a MailError's text, or the outcome of the message)
    (b"220-x\r\n" * 200, "error: sent a reply of more than 100 lines (at greeting)"),
    (b"220 " + b"x" * 9000 + b"\r\n", "error: sent a reply line longer than 8192 bytes (at greeting)"),
    (G + (b"250-" + b"x" * 8000 + b"\r\n") * 9, "error: sent a reply longer than 65536 bytes (at EHLO)"),
    (b"HTTP/1.1 400 Bad Request\r\n", 'error: sent something that is no SMTP reply: "HTTP/1.1 400 Bad Request" '
                                      "(at greeting)"),
    (b"\x1b[2J\x1b[31m220 hi\r\n", 'error: sent something that is no SMTP reply: "\\x1b[2J\\x1b[31m220 hi"'),
    (b"2x0 hi\r\n", 'error: sent something that is no SMTP reply: "2x0 hi"'),
    (b"220-a\r\n250 b\r\n", "error: sent a reply whose lines have different codes (220 and 250) (at greeting)"),
    (b"", "error: closed the connection before its greeting"),
    (b"554 5.3.2 go away\r\n", "error: did not accept the connection: 554 5.3.2 go away"),
    (G + E + b"354 go ahead\r\n", "error: answered 354 go ahead to MAIL FROM, which is no answer RFC 5321 allows "
                                  "there: the message was not sent"),
    (G + E + M + b"150 what\r\n", "error: answered 150 what to RCPT TO, which is no answer RFC 5321 allows there"),
    (G + E + M + R + b"250 ok\r\n", "error: answered 250 ok to DATA, which is no answer RFC 5321 allows there"),
    (G + E + M + R + b"421 4.3.2 bye\r\n", "error: is closing the connection: 421 4.3.2 bye (at DATA)"),
    (G + E + M + b"550 5.1.1 \x1b]0;pwned\x07 no\r\n", "refused: 550 5.1.1 \\x1b]0;pwned\\x07 no"),
    (UNTIL_DATA + b"354 more?\r\n", "uncertain: received the whole message but answered 354 more? to it, which is "
                                    "neither success (2xx) nor failure (4xx, 5xx): it may have taken the message"),
    (UNTIL_DATA, "uncertain: received the whole message but closed the connection before its final reply: it may "
                 "have taken the message. It stays queued and is sent again, so its recipients may get it twice"),
    (UNTIL_DATA + b"250-x\r\n" * 200, "uncertain: received the whole message but sent a reply of more than 100 "
                                      "lines instead of its final reply"),
    (UNTIL_DATA + b"251 2.1.5 forwarded\r\n", "accepted"),
    (G + E + b"251 2.1.0 sender ok\r\n" + b"252 2.1.5 will try\r\n" + D + F, "accepted"),
    (UNTIL_DATA + b"421 4.3.2 shutting down\r\n", "deferred: 421 4.3.2 shutting down (to DATA)"),
    (UNTIL_DATA + b"451 4.3.0 later\r\n", "deferred: 451 4.3.0 later (to DATA)"),
]


@pytest.fixture(scope="module")
def scripted():
    with smtp_server.ScriptedServer() as server:
        yield server


def outcome_of(server, script, timeout=2.0):
    """Connect and send one message to a server that sends *script*: "accepted", "KIND: reason" or "error: ..."."""
    server.script = script
    config = SmtpSettings(host="127.0.0.1", port=server.port, timeout=timeout).check()
    raw = message(to=("b@example.com",))
    try:
        conn = _mail.connect(config)
        try:
            sent = _mail.send(conn, config, "disk@web1.example.com", ["b@example.com"], raw)
        finally:
            _mail.close(conn)
    except _mail.MailError as exc:
        return "error: " + str(exc).split(" ", 1)[1]  # without "127.0.0.1:PORT "
    for kind in ("refused", "deferred", "uncertain"):
        for why in getattr(sent, kind).values():
            return f"{kind}: " + (why.split(" ", 1)[1] if kind == "uncertain" else why)
    return "accepted" if sent.accepted == ["b@example.com"] else f"nothing: {sent}"


@pytest.mark.parametrize("script,said", HOSTILE_REPLIES,
                         ids=[repr(s[:24]) + s[-12:].hex() for s, unused in HOSTILE_REPLIES])
def test_what_each_hostile_reply_gets(scripted, script, said):
    assert outcome_of(scripted, script).startswith(said)


REPLY_PARTS = st.one_of(
    st.sampled_from([G, E, M, R, D, F, b"250-x\r\n", b"220-x\r\n", b"451 4.3.0 later\r\n", b"550 5.1.1 no\r\n",
                     b"421 bye\r\n", b"251 ok\r\n", b"354 more\r\n", b"150 hm\r\n"]),
    st.binary(max_size=120),
    st.binary(max_size=120).map(lambda b: b"250 " + b + b"\r\n"))


@given(parts=st.lists(REPLY_PARTS, max_size=9))
@examples(max_examples=150, deadline=None)
def test_any_bytes_as_replies_get_an_answer_or_a_mail_error_in_time(scripted, parts):
    """Whatever the server sends: a per-recipient answer or a MailError (no other exception), within the
    deadline, every reason one printable line and bounded."""
    started = time.monotonic()
    said = outcome_of(scripted, b"".join(parts), timeout=2.0)
    assert time.monotonic() - started < 3.0
    assert said.isprintable() and len(said) < 1200, said
