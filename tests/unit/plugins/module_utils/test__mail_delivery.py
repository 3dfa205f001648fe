# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_mail_delivery: the queue against real servers that misbehave.

Every fault ends the same way: the server is fixed, the following runs go
out, and the copies each recipient got are COUNTED: exactly one each, or
a dead letter with the server's reason (and no second attempt).
"""

import email
import email.policy
import os
import tempfile
import threading
import time
from collections import Counter

import pytest
import smtp_server
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _mail, _mail_delivery, _mail_spool
from ansible_collections.sysops.fleet.plugins.module_utils._mail import SmtpSettings

A, B, C = "a@example.com", "b@example.com", "c@example.com"
SENDER = "disk@web1.example.com"
FOLLOWING_RUNS = 3


def message(subject="Nightly Disk Usage Report for web1", to=(A, B), text="table\n"):
    msg = _mail.build_message(_mail.parse_address(SENDER, "mail_from"),
                              [_mail.parse_address(a, "mail_to") for a in to], subject, text, "<p>table</p>",
                              domain="web1.example.com")
    return msg.as_bytes(policy=_mail.POLICY)


BIG_TEXT = ("x" * 76 + "\n") * 120000  # larger than the loopback buffers: a hang-up meets the client mid-message


def mid(raw):
    return _mail.message_id(raw)


def settings(port, timeout=5.0):
    return SmtpSettings(host="127.0.0.1", port=port, timeout=timeout).check()


def deliver(raw, port, spool, timeout=5.0):
    return _mail_delivery.deliver(raw, settings(port, timeout), spool)


def dead_letters(spool):
    return [e for e in _mail_spool.undelivered(spool) if e["kind"] == "dead letter"]


def dead_recipients(spool):
    """Every recipient some dead letter is for (its reason lists them: "c@x: 550 ...; d@x: 550 ...")."""
    return {part.split(": ", 1)[0] for e in dead_letters(spool) for part in e["reason"].split("; ")}


def test_when_to_send():
    for mode, recipients, alerting, decision in [
            ("auto", ["a"], False, (True, "")), ("auto", [], True, (False, "mail_to is empty")),
            ("always", ["a"], False, (True, "")), ("never", ["a"], True, (False, "send=never")),
            ("on_alert", ["a"], False, (False, "send=on_alert and no filesystem is in warn or crit")),
            ("on_alert", ["a"], True, (True, ""))]:
        assert _mail_delivery.decide(mode, recipients, alerting) == decision


@pytest.mark.parametrize("options,message_text", [
    ({"mail_to": "ops@example.com"}, "mail_to must be a list of addresses, got the string 'ops@example.com'"),
    ({"subject": "disk\u2028Bcc: x@example.com"}, "subject may not contain line breaks"),
    ({"subject": "disk\x85report"}, "subject may not contain line breaks"),
    ({"smtp_timeout": float("nan")}, "smtp_timeout must be more than 0 and at most 3600"),
    ({"smtp_timeout": float("inf")}, "smtp_timeout must be more than 0 and at most 3600"),
    ({"smtp_timeout": "soon"}, "smtp_timeout must be a number of seconds"),
    ({"send": "always"}, "send=always needs mail_to"),
    ({"spool_lifetime_days": 0}, "spool_lifetime_days must be a number of days, more than 0 and at most 365"),
])
def test_bad_mail_options_are_refused_by_name(options, message_text):
    with pytest.raises(_mail.MailConfigError, match=message_text.replace("(", r"\(").replace(")", r"\)")):
        _mail_delivery.config_from_options(options, host="web1")


# ---- faults, and the count of copies afterwards ---------------------------------------------------

def _scripted(**script):
    def start(smtpd, slow_smtpd):
        server = smtpd(handler=smtp_server.Recorder(**script))
        return server.port, server

    return start


def _slow(mode):
    def start(smtpd, slow_smtpd):
        server = slow_smtpd(mode, interval=0.1)
        return server.port, server

    return start


def _down(smtpd, slow_smtpd):
    server = smtpd()
    server.stop()
    return server.port, None


BUSY, GONE = "451 4.2.1 mailbox busy", "550 5.1.1 no such user"
FAULTS = {
    # name: (bad server, recipients, new message sent on the first run?, error words, recipients dead for good)
    "451 for one of two recipients": (_scripted(rcpt_replies={B: BUSY}), (A, B), True, "", set()),
    "550 for one of two recipients": (_scripted(rcpt_replies={B: GONE}), (A, B), True, "", {B}),
    "250, 451 and 550 in one message": (_scripted(rcpt_replies={B: BUSY, C: GONE}), (A, B, C), True, "", {C}),
    "451 for every recipient": (_scripted(rcpt_reply="451 4.3.0 Try again later"), (A, B), False,
                                "refused every recipient temporarily", set()),
    "550 for every recipient": (_scripted(rcpt_reply=GONE), (A, B), False,
                                "refused every recipient permanently", {A, B}),
    "451 at DATA": (_scripted(data_reply="451 4.3.0 Try again later"), (A, B), False, "temporarily", set()),
    "554 at DATA": (_scripted(data_reply="554 5.6.0 Content rejected"), (A, B), False, "permanently", {A, B}),
    "hang-up in the middle of the message": (_slow("drop_mid_message"), (A, B), False,
                                             "before its end, so it did not take the message", set()),
    "hang-up after the whole message": (_scripted(drop_in_data=True), (A, B), False,
                                        "closed the connection before its final reply: it may have taken", set()),
    "greeting trickled a byte at a time": (_slow("trickle"), (A, B), False, "within smtp_timeout=1.5s", set()),
    "silence after the message": (_slow("stall_after_data"), (A, B), False, "within smtp_timeout=1.5s", set()),
    "server down": (_down, (A, B), False, "connection refused", set()),
}


def _fix(bad, port, smtpd):
    """The server is fixed: a scripted one stops misbehaving, a slow or stopped one is replaced on its port."""
    if isinstance(bad, smtp_server.SmtpServer):
        handler = bad.handler
        handler.rcpt_replies, handler.rcpt_reply, handler.data_reply, handler.drop_in_data = {}, None, None, False
        return bad
    if bad is not None:
        bad.stop()
    return smtpd(port=port)


@pytest.mark.alone  # a few seconds of smtp_timeout against the server the test drives
@pytest.mark.parametrize("fault", list(FAULTS))
def test_after_every_fault_each_recipient_gets_exactly_one_copy_or_a_dead_letter(tmp_path, smtpd, slow_smtpd, fault):
    start_bad, recipients, sent_first, error, dead = FAULTS[fault]
    port, bad = start_bad(smtpd, slow_smtpd)
    spool = str(tmp_path / "spool")
    raw = message(to=recipients, text=BIG_TEXT if "middle of the message" in fault else "table\n")

    took, first, unused = smtp_server.bounded(lambda: deliver(raw, port, spool, timeout=1.5))
    assert took < 3.0, f"smtp_timeout=1.5 held the delivery for {took:.1f}s"
    assert first.sent is sent_first, first
    assert error in first.error
    if "temporarily" in error or "451" in fault:
        assert "check mail_to" not in first.error, "a temporary refusal is not a wrong address"
    if "hang-up" in fault:
        assert "is it an SMTP server" not in first.error
    assert set(first.refused) == dead
    waiting = set(first.deferred) if sent_first else set(recipients) - dead
    assert bool(first.spooled) == bool(waiting), first
    if first.spooled:  # spooled for exactly those still waiting, envelope-wise
        assert _mail_spool.read(first.spooled).recipients == [r for r in recipients if r in waiting]

    good = _fix(bad, port, smtpd)
    for _run in range(FOLLOWING_RUNS):
        later = deliver(None, port, spool)
        assert later.error == "", later.error
    copies = good.handler.copies().get(mid(raw), Counter())
    assert copies == Counter({r: 1 for r in recipients if r not in dead}), (fault, copies)
    assert _mail_spool.listing(spool) == [], "nothing may stay queued once the server is fixed"
    assert dead_recipients(spool) == dead
    for letter in dead_letters(spool):
        assert letter["reason"].split(": ", 1)[1][0] == "5", letter  # the server's 5xx answer is the reason
    for rcpt in dead:
        assert good.handler.rcpt_commands.count(rcpt) == 1, "a dead letter is never tried again"


# ---- the queue moves on ------------------------------------------------------------------------

def test_a_poison_message_and_a_corrupt_file_do_not_block_the_queue(tmp_path, smtpd):
    """Before: the oldest message, refused for good, failed every run and kept every later report queued."""
    spool = str(tmp_path / "spool")
    poison = message(subject="to a dead address", to=(C,))
    _mail_spool.add(spool, poison, SENDER, [C])
    empty = tmp_path / "spool" / "20000101T000001-0-0-0.eml"
    empty.write_bytes(b"")
    older = message(subject="an older report")
    _mail_spool.add(spool, older, SENDER, [A, B])
    server = smtpd(handler=smtp_server.Recorder(refuse_rcpt=(C,)))
    new = message(subject="tonight's report")

    result = deliver(new, server.port, spool)
    assert result.sent and result.error == "" and result.changed
    assert [d["recipients"] for d in result.dead_letters] == [{C: "550 5.1.1 mailbox unavailable"}]
    assert [q["reason"] for q in result.quarantined] == ["is empty"]
    copies = server.handler.copies()
    assert copies[mid(older)] == Counter({A: 1, B: 1}) and copies[mid(new)] == Counter({A: 1, B: 1})
    assert result.pending == 0 and _mail_spool.listing(spool) == []

    for _run in range(FOLLOWING_RUNS):
        assert deliver(None, server.port, spool).changed is False
    assert server.handler.rcpt_commands.count(C) == 1, "the dead letter is not retried"
    assert len(server.handler.messages) == 2
    kinds = sorted(e["kind"] for e in _mail_spool.undelivered(spool))
    assert kinds == ["dead letter", "quarantined"]


def test_a_message_the_server_refuses_for_good_is_reported_by_the_next_report(tmp_path, smtpd):
    spool = str(tmp_path / "spool")
    server = smtpd(handler=smtp_server.Recorder(refuse_rcpt=(C,)))
    deliver(message(subject="Nightly for web1", to=(A, C)), server.port, spool)
    text, page = _mail_delivery.undelivered_section(spool)
    assert text.startswith("Undelivered mail (1")
    assert '"Nightly for web1": c@example.com: 550 5.1.1 mailbox unavailable' in text
    assert "Move a dead letter back into" in text and ">Undelivered mail (1)</h2>" in page
    assert _mail_delivery.undelivered_section(str(tmp_path / "empty")) == ("", "")


# ---- a spool that cannot be used never stops the new message ------------------------------------

def test_a_spool_dir_that_is_a_file_warns_and_the_report_still_goes_out(tmp_path, smtpd):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    server = smtpd()
    result = deliver(message(), server.port, str(blocker))
    assert result.sent and result.error == ""
    assert any("is not a directory" in w for w in result.warnings)
    server.stop()
    down = deliver(message(), server.port, str(blocker))
    assert "connection refused" in down.error and "could NOT be spooled" in down.error and down.spooled is None


def test_a_spool_that_cannot_be_locked_is_left_alone_and_the_new_report_goes_out(tmp_path, smtpd):
    spool = str(tmp_path / "spool")
    queued = message(subject="queued")
    _mail_spool.add(spool, queued, SENDER, [A, B])
    os.mkdir(os.path.join(spool, ".lock"))  # open(2) on it fails with EISDIR
    server = smtpd()
    new = message(subject="new")
    result = deliver(new, server.port, spool)
    assert result.sent and result.error == "" and result.spool_sent == []
    assert any("is not lockable" in w and "1 queued message(s) were not sent" in w for w in result.warnings)
    os.rmdir(os.path.join(spool, ".lock"))
    assert deliver(None, server.port, spool).spool_sent == [mid(queued)]
    copies = server.handler.copies()
    assert copies[mid(new)] == Counter({A: 1, B: 1}) and copies[mid(queued)] == Counter({A: 1, B: 1})


def test_a_spool_held_by_another_run_is_left_to_it(tmp_path, smtpd, monkeypatch):
    spool = str(tmp_path / "spool")
    _mail_spool.add(spool, message(subject="queued"), SENDER, [A])
    monkeypatch.setattr(_mail_spool, "LOCK_WAIT", 0.3)
    server = smtpd()
    with _mail_spool.lock(spool):
        result = deliver(message(subject="new"), server.port, spool)
    assert result.sent and any("locked by another run" in w for w in result.warnings)
    assert len(server.messages) == 1


def test_only_the_queue_is_sent_when_there_is_no_new_message(tmp_path, smtpd):
    server = smtpd()
    assert deliver(None, server.port, str(tmp_path)).changed is False
    assert server.handler.connections == 0, "nothing queued: no connection at all"
    _mail_spool.add(str(tmp_path), message(subject="old"), SENDER, [A])
    result = deliver(None, server.port, str(tmp_path))
    assert result.sent is False and len(result.spool_sent) == 1 and result.changed
    assert [email.message_from_bytes(m.data, policy=email.policy.default)["Subject"]
            for m in server.messages] == ["old"]


def test_two_runs_at_once_send_a_queued_message_once(tmp_path, smtpd):
    spool = str(tmp_path / "spool")
    queued = message(subject="queued")
    _mail_spool.add(spool, queued, SENDER, [A, B])
    server = smtpd()
    go = threading.Barrier(4)
    results = []

    def run():
        go.wait()
        results.append(deliver(None, server.port, spool))
    threads = [threading.Thread(target=run) for unused in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 4 and all(r.error == "" for r in results)
    assert server.handler.copies()[mid(queued)] == Counter({A: 1, B: 1})


# ---- the module's mail result ------------------------------------------------------------------

def test_mail_document_reports_deferred_refused_and_dead_letters_with_warnings(tmp_path, smtpd):
    server = smtpd(handler=smtp_server.Recorder(rcpt_replies={B: BUSY, C: GONE}))
    config = _mail_delivery.config_from_options(
        {"mail_to": [A, B, C], "smtp_host": "127.0.0.1", "smtp_port": server.port, "mail_from": SENDER,
         "spool_dir": str(tmp_path / "spool")}, host="web1", default_subject="Report")
    mailing = _mail_delivery.mail_document(config, "text\n", "<p>html</p>", alerting=False)
    mail = mailing.mail
    assert mailing.error == "" and mailing.changed and mail["sent"]
    assert mail["deferred"] == {B: BUSY} and mail["refused"] == {C: GONE}
    assert mail["spooled"] and mail["spool_pending"] == 1
    assert [d["recipients"] for d in mail["dead_letters"]] == [{C: GONE}]
    assert mail["dead_letters"][0]["message_id"] == mail["message_id"]
    assert any("temporarily refused b@example.com" in w and "the next run tries again" in w for w in mailing.warnings)
    assert any("refused for good c@example.com" in w and "dead letter" in w for w in mailing.warnings)


# ---- any 2xx is success (RFC 5321 §4.2.1) ---------------------------------------------------------

@pytest.mark.parametrize("script", [
    {"accept_reply": "251 2.1.5 will forward"},
    {"mail_reply": "251 2.1.0 sender ok"},
    {"rcpt_accept_replies": {A: "252 2.1.5 cannot verify, will try", B: "251 2.1.5 will forward"}},
], ids=["251 at end of data", "251 to MAIL FROM", "252 and 251 to RCPT TO"])
def test_any_2xx_is_success_and_each_recipient_gets_one_copy(tmp_path, smtpd, script):
    """Before: a 251 at end of data (or a 2xx other than 250 to MAIL FROM, a 252 to RCPT TO) was a
    deferral; the message was queued and sent again: two copies."""
    server = smtpd(handler=smtp_server.Recorder(**script))
    spool = str(tmp_path / "spool")
    raw = message()
    first = deliver(raw, server.port, spool)
    assert first.sent and first.error == "" and first.deferred == {} and first.spooled is None, first
    for _run in range(FOLLOWING_RUNS):
        deliver(None, server.port, spool)
    assert server.handler.copies()[mid(raw)] == Counter({A: 1, B: 1})


# ---- an outcome nobody knows is said plainly -------------------------------------------------------

def test_a_hang_up_after_the_whole_message_keeps_it_queued_and_says_it_may_arrive_twice(tmp_path, smtpd):
    """The server kept the message and hung up before its reply: it is sent again (as MTAs do), and the
    result said beforehand that the recipients may get it twice. Before: "did not take the message"."""
    server = smtpd(handler=smtp_server.Recorder(keep_then_drop=True))
    config = _mail_delivery.config_from_options(
        {"mail_to": [A, B], "smtp_host": "127.0.0.1", "smtp_port": server.port, "mail_from": SENDER,
         "spool_dir": str(tmp_path / "spool"), "smtp_timeout": 5}, host="web1", default_subject="Report")
    mailing = _mail_delivery.mail_document(config, "text\n", "<p>html</p>", alerting=False)
    mail = mailing.mail
    assert mail["sent"] is False and mail["refused"] == {} and mail["deferred"] == {}
    assert set(mail["uncertain"]) == {A, B} and mail["spooled"] and mail["spool_pending"] == 1
    why = mail["uncertain"][A]
    assert "closed the connection before its final reply: it may have taken the message" in why
    assert "may get it twice" in why and "did not take" not in why and "refused" not in why
    assert mailing.error.startswith("it is not known whether the report was delivered: 127.0.0.1:")
    assert any("it is not known whether" in w and "they may get it twice" in w for w in mailing.warnings)
    server.handler.keep_then_drop = False
    assert deliver(None, server.port, config.spool_dir).spool_sent == [mail["message_id"]]
    assert server.handler.copies()[mail["message_id"]] == Counter({A: 2, B: 2}), "as the result said it may"


def test_a_timeout_waiting_for_the_final_reply_says_how_to_wait_longer(tmp_path, slow_smtpd):
    server = slow_smtpd("stall_after_data")
    took, result, unused = smtp_server.bounded(lambda: deliver(message(), server.port, str(tmp_path), timeout=1.0))
    assert took < 2.5 and result.sent is False and set(result.uncertain) == {A, B} and result.spooled
    assert "gave no final reply within smtp_timeout=1s: it may have taken the message" in result.error
    assert "set smtp_timeout to 600 or more" in result.error


# ---- a message deferred forever is given up -------------------------------------------------------

def queued_days_ago(spool, days, raw=None, to=(A, B)):
    """A queued message first queued *days* ago (its Queued-Since line, as an earlier run wrote it)."""
    path = _mail_spool.add(spool, raw or message(subject=f"{days} days old", to=to), SENDER, list(to))
    item = _mail_spool.read(path)
    item.queued_since -= days * 86400
    _mail_spool.keep_only(item, item.recipients)
    return path


@pytest.mark.parametrize("server_state", ["defers", "down"])
def test_a_message_older_than_the_lifetime_becomes_a_dead_letter_with_the_last_reason(tmp_path, smtpd, server_state):
    """Before: a message deferred on every try (or never reaching a server) was tried forever."""
    spool = str(tmp_path / "spool")
    server = smtpd(handler=smtp_server.Recorder(rcpt_reply="451 4.3.0 Try again later"))
    if server_state == "down":
        server.stop()
    old = queued_days_ago(spool, 6)
    young = queued_days_ago(spool, 4)
    result = deliver(None, server.port, spool)
    assert _mail_spool.listing(spool) == [young], "the old one left the queue, the young one waits"
    [dead] = result.dead_letters
    assert dead["expired"] is True and dead["subject"] == "6 days old" and set(dead["recipients"]) == {A, B}
    last = "451 4.3.0 Try again later" if server_state == "defers" else "connection refused"
    why = dead["recipients"][A]
    assert why.startswith("not delivered within spool_lifetime_days=5 (queued since ") and last in why, why
    assert result.refused == {}, "given up is not refused by the server"
    assert any(w.startswith(f"127.0.0.1:{server.port} gave up on a@example.com") for w in
               _mail_delivery.notices(result, f"127.0.0.1:{server.port}", spool))
    text, unused = _mail_delivery.undelivered_section(spool)
    assert '"6 days old": a@example.com: not delivered within spool_lifetime_days=5' in text
    assert not os.path.exists(old)


def test_a_short_lifetime_gives_up_in_real_time(tmp_path, smtpd):
    """spool_lifetime_days as the modules take it: a message spooled while the server is down is given up by
    the first run after its lifetime, with the reason that run met."""
    down = smtpd()
    down.stop()
    options = {"mail_to": [A], "smtp_host": "127.0.0.1", "smtp_port": down.port, "mail_from": SENDER,
               "spool_dir": str(tmp_path / "spool"), "smtp_timeout": 2, "spool_lifetime_days": 1.5 / 86400}
    config = _mail_delivery.config_from_options(options, host="web1", default_subject="Report")
    first = _mail_delivery.mail_document(config, "one\n", "<p>one</p>", alerting=False)
    assert first.mail["spooled"] and first.mail["dead_letters"] == []
    time.sleep(2.0)
    second = _mail_delivery.mail_document(config, "two\n", "<p>two</p>", alerting=False)
    [dead] = second.mail["dead_letters"]
    assert dead["message_id"] == first.mail["message_id"] and dead["expired"]
    assert "spool_lifetime_days=1.73611e-05" in dead["recipients"][A] and "connection refused" in dead["recipients"][A]
    assert _mail_spool.listing(config.spool_dir) == [second.mail["spooled"]]


def test_a_message_without_its_queueing_time_gets_it_and_waits(tmp_path, smtpd):
    """A file from an older version (or a dead letter moved back) counts from the first run that keeps it."""
    down = smtpd()
    down.stop()
    spool = tmp_path / "spool"
    spool.mkdir()
    old = spool / "20000101T000000-000000001-0000001-000000.eml"  # its name says 2000: the name is not its age
    old.write_bytes(f"X-Sysops-Fleet-Envelope-From: {SENDER}\r\nX-Sysops-Fleet-Envelope-To: {A}\r\n".encode()
                    + message(to=(A,)))
    result = deliver(None, down.port, str(spool))
    assert result.dead_letters == [] and _mail_spool.listing(str(spool)) == [str(old)]
    assert abs(_mail_spool.read(str(old)).queued_since - time.time()) < 10


@pytest.mark.parametrize("value,text", [(0, "0"), (-1, "-1"), (366, "366"), ("soon", "'soon'"), (float("nan"), "nan"),
                                        (True, "True")])
def test_a_bad_lifetime_is_refused_by_name(value, text):
    with pytest.raises(_mail.MailConfigError) as refused:
        _mail_delivery.config_from_options({"spool_lifetime_days": value}, host="web1")
    assert str(refused.value) == ("spool_lifetime_days must be a number of days, more than 0 and at most 365, "
                                  f"got {text}")


# ---- oldest first, strictly -----------------------------------------------------------------------

REAL_GMTIME = time.gmtime


class SteppingClock:
    """The wall clock, stepping on every reading: a name's readings straddle second boundaries (see
    test__mail_spool); a real boundary cannot be placed between two readings of the clock."""

    def __init__(self, step):
        self.now, self.step = (time.time_ns() // 10**9 - 3600) * 10**9 - 500_000, step

    def time_ns(self):
        self.now += self.step
        return self.now

    def time(self):
        return self.time_ns() / 1e9

    def gmtime(self, seconds=None):
        return REAL_GMTIME(self.time() if seconds is None else seconds)


@pytest.mark.parametrize("clock", ["stepping", "real"])
def test_a_thousand_messages_arrive_in_the_order_they_were_queued(shm_path, smtpd, monkeypatch, clock):
    """1,000 messages queued over several seconds, flushed to a real server: arrival order is queue order.
    Before: names took the second and the nanoseconds from two readings of the clock."""
    spool = str(shm_path / "spool")
    monkeypatch.setattr(_mail_spool, "_clock", {"last": 0}, raising=False)
    subjects = [f"queued {n:04d}" for n in range(1000)]
    started = time.time()
    with monkeypatch.context() as patch:
        if clock == "stepping":
            fake = SteppingClock(step=3_000_000)  # 333.3 readings a second: boundaries fall inside names
            for name in ("time_ns", "time", "gmtime"):
                patch.setattr(time, name, getattr(fake, name))
        raw = message(subject="queued PLACEHOLDER", to=(A,))  # built once: the email package takes 9 ms a message
        for n, subject in enumerate(subjects):
            _mail_spool.add(spool, raw.replace(b"queued PLACEHOLDER", subject.encode()), SENDER, [A])
            if clock == "real" and n % 10 == 9:
                time.sleep(0.03)
    seconds = {os.path.basename(p)[:15] for p in _mail_spool.listing(spool)}
    assert len(seconds) >= 3, f"queued within {len(seconds)} second(s): not across several"
    server = smtpd()
    result = deliver(None, server.port, spool, timeout=120)
    assert result.error == "" and len(result.spool_sent) == 1000, result.error
    arrived = [email.message_from_bytes(m.data)["Subject"] for m in server.messages]
    assert arrived == subjects
    print(f"{clock} clock: queued over {len(seconds)} s in {time.time() - started:.1f} s wall time")


# ---- what another user can write reaches the report as one line each ---------------------------

HOSTILE_TEXT = ["line\nForged: line", "\x1b[2J\x1b]0;title\x07", "\u2028next\u2029para\x85nel", "tab\there",
                "\r\nSubject: forged", "\\x0a looks escaped"]


def test_undelivered_mail_shows_each_file_as_one_printable_line_and_bounded(tmp_path):
    """Before: a quarantined file's name and reason, a dead letter's subject or reason with escapes, came
    out raw in the report's text, new lines as lines of their own."""
    spool = tmp_path / "spool"
    (spool / "dead").mkdir(parents=True)
    (spool / "quarantine").mkdir()
    for n, text in enumerate(HOSTILE_TEXT * 10):  # 60 dead letters (older), 60 quarantined files (newer)
        raw = message(subject="PLACEHOLDER").replace(b"PLACEHOLDER", f"subject {text}".encode())  # written raw
        (spool / "dead" / f"2024020{n % 9 + 1}T000000-{n:09d}-0000001-000000.eml").write_bytes(
            f"X-Sysops-Fleet-Envelope-From: {SENDER}\r\nX-Sysops-Fleet-Refused: {A} 550 {text}\r\n".encode() + raw)
        name = f"2024030{n % 9 + 1}T0000{n % 60:02d}-{text}-{n}".replace("/", "")
        (spool / "quarantine" / name).write_bytes(b"")
        (spool / "quarantine" / (name + ".why")).write_text(f"{name} is empty, {text}", encoding="utf-8")
    text, page = _mail_delivery.undelivered_section(str(spool))
    lines = text.splitlines()
    assert lines[0].startswith("Undelivered mail (120: ") and lines[-2] == "  ... and 100 more"
    assert len(lines) == 2 + _mail_delivery.LISTED + 1, "one line per listed file"
    assert all(line.isprintable() and len(line) < 800 for line in lines)
    names = "\n".join(lines[1:-2])
    for escaped in ("line\\nForged: line", "\\x1b[2J\\x1b]0;title\\x07", "\\u2028next\\u2029para\\u0085nel",
                    "\\r\\nSubject: forged", "\\\\x0a looks escaped"):
        assert escaped in names, (escaped, names)
    assert "\x1b" not in page and "\u2028" not in page

    for path in (spool / "quarantine").iterdir():
        path.unlink()
    text, page = _mail_delivery.undelivered_section(str(spool))
    assert len(text.splitlines()) == 23 and "\\x1b[2J" in text and "\x1b" not in text + page


FILE_NAMES = st.binary(min_size=1, max_size=60).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))
SPOOL_BYTES = st.lists(st.one_of(
    st.sampled_from([b"X-Sysops-Fleet-Envelope-From: a@b.example\r\n", b"X-Sysops-Fleet-Refused: a@b 550 \x1b[2J\n",
                     b"Subject: \xe2\x80\xa8x\r\n", b"\r\n\r\nbody\r\n", b"X-Sysops-Fleet-Refused: "]),
    st.binary(max_size=60)), max_size=8).map(b"".join)


@given(dead=st.lists(st.tuples(FILE_NAMES, SPOOL_BYTES), max_size=4),
       quarantined=st.lists(st.tuples(FILE_NAMES, st.binary(max_size=200)), max_size=4))
@examples(max_examples=150, deadline=None)
def test_any_names_and_bytes_in_dead_and_quarantine_list_as_one_printable_line_each(dead, quarantined):
    """Files another user can write: each listed entry is one line of the report, whatever they hold."""
    with tempfile.TemporaryDirectory() as directory:
        base = os.fsencode(directory)
        for sub, files, why in ((b"dead", dead, False), (b"quarantine", quarantined, True)):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
            for name, data in files:
                with open(os.path.join(base, sub, name), "wb") as handle:
                    handle.write(b"" if why else data)
                if why:
                    with open(os.path.join(base, sub, name + b".why"), "wb") as handle:
                        handle.write(data)
        text, page = _mail_delivery.undelivered_section(directory)
    lines = text.splitlines()
    assert all(line.isprintable() for line in lines)
    assert len(lines) <= 2 + min(len(dead) + len(quarantined), _mail_delivery.LISTED) + 1
    assert "\x1b" not in page


@pytest.mark.parametrize("answer", [
    None, [], "Undelivered mail (1):\nforged", {"total": 1}, {"total": "1", "entries": []},
    {"total": -1, "entries": []}, {"total": 10**12, "entries": []}, {"total": True, "entries": []},
    {"total": 1, "entries": [{"file": "x"}]},
    {"total": 1, "entries": [{"file": "x", "kind": "rm -rf", "when": "", "subject": "", "reason": ""}]},
    {"total": 1, "entries": [{"file": "x", "kind": "quarantined", "when": "", "subject": 1, "reason": ""}]},
    {"total": 1, "entries": [{"file": "x" * 10**6, "kind": "quarantined", "when": "", "subject": "", "reason": ""}]},
    {"total": 1, "entries": [{"file": "x", "kind": "quarantined", "when": "", "subject": "", "reason": ""}] * 2},
    {"total": 99, "entries": [{"file": "x", "kind": "quarantined", "when": "", "subject": "", "reason": ""}] * 21},
], ids=lambda a: repr(a)[:40])
def test_what_the_spools_owner_sends_back_is_checked_before_root_uses_it(answer, monkeypatch):
    monkeypatch.setattr(_mail_delivery._privilege, "as_owner", lambda *args, **kwargs: answer)
    text, page = _mail_delivery.undelivered_section("/var/lib/sysops-fleet/spool")
    assert text == ("Undelivered mail: cannot be listed (its owner's answer was not a listing); see "
                    "/var/lib/sysops-fleet/spool\n") and "forged" not in page


@pytest.mark.parametrize("answer", [
    None, {"spooled": None}, {"spooled": "/etc/shadow", "spool_problem": "", "dead": None, "dead_problem": "",
                              "pending": 0},
    {"spooled": "/s/../etc/20240101T000000-000000000-0000001-000000.eml", "spool_problem": "", "dead": None,
     "dead_problem": "", "pending": 0},
    {"spooled": None, "spool_problem": "", "dead": "/s/20240101T000000-000000000-0000001-000000.eml",
     "dead_problem": "", "pending": 0},
    {"spooled": None, "spool_problem": "", "dead": None, "dead_problem": "", "pending": -3},
    {"spooled": None, "spool_problem": "", "dead": None, "dead_problem": "", "pending": 2.5},
    {"spooled": None, "spool_problem": "x" * 5000, "dead": None, "dead_problem": "", "pending": 0},
    {"spooled": None, "spool_problem": "", "dead": None, "dead_problem": "", "pending": 0, "extra": 1},
], ids=lambda a: repr(a)[:48])
def test_a_hand_over_answer_that_is_not_one_is_refused(answer):
    assert _mail_delivery._from_owner(answer, "/s") is None


def test_a_good_hand_over_answer_is_taken_with_its_problems_made_one_line():
    done = _mail_delivery._from_owner(
        {"spooled": "/s/20240101T000000-000000000-0000001-000000.eml", "spool_problem": "",
         "dead": "/s/dead/20240101T000000-000000001-0000001-000001.eml", "dead_problem": "disk\nfull\x1b[2J",
         "pending": 3}, "/s/")
    assert done["pending"] == 3 and done["dead_problem"] == "disk full\\x1b[2J"


def test_notices_name_spool_files_as_one_printable_line_and_are_bounded():
    delivery = _mail_delivery.Delivery(quarantined=[{"file": f"/s/quarantine/q{n}\n\x1b", "was": f"/s/{n}\nx.eml",
                                                     "reason": "is empty\r\nForged: yes"} for n in range(50)])
    out = _mail_delivery.notices(delivery, "mx:25", "/s")
    last = "... and 30 more dead letter(s) or quarantined file(s) in /s"
    assert len(out) == _mail_delivery.LISTED + 1 and out[-1] == last
    assert all(line.isprintable() for line in out) and "\\n\\x1b" in out[0]
