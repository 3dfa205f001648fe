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
import threading
from collections import Counter

import pytest
import smtp_server

from ansible_collections.sysops.fleet.plugins.module_utils import _mail, _mail_delivery, _mail_spool
from ansible_collections.sysops.fleet.plugins.module_utils._mail import SmtpSettings

A, B, C = "a@example.com", "b@example.com", "c@example.com"
SENDER = "disk@web1.example.com"
FOLLOWING_RUNS = 3


def message(subject="Nightly Disk Usage Report for web1", to=(A, B)):
    msg = _mail.build_message(_mail.parse_address(SENDER, "mail_from"),
                              [_mail.parse_address(a, "mail_to") for a in to], subject, "table\n", "<p>table</p>",
                              domain="web1.example.com")
    return msg.as_bytes(policy=_mail.POLICY)


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
    "hang-up in the middle of DATA": (_scripted(drop_in_data=True), (A, B), False, "during DATA", set()),
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


@pytest.mark.parametrize("fault", list(FAULTS))
def test_after_every_fault_each_recipient_gets_exactly_one_copy_or_a_dead_letter(tmp_path, smtpd, slow_smtpd, fault):
    start_bad, recipients, sent_first, error, dead = FAULTS[fault]
    port, bad = start_bad(smtpd, slow_smtpd)
    spool = str(tmp_path / "spool")
    raw = message(to=recipients)

    took, first, unused = smtp_server.bounded(lambda: deliver(raw, port, spool, timeout=1.5))
    assert took < 3.0, f"smtp_timeout=1.5 held the delivery for {took:.1f}s"
    assert first.sent is sent_first, first
    assert error in first.error
    if "temporarily" in error or "451" in fault:
        assert "check mail_to" not in first.error, "a temporary refusal is not a wrong address"
    if "DATA" in fault and "hang-up" in fault:
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
