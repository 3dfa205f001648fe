# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Root's report with a spool_dir another user controls (the watcher's): root sends it, in its own process.

As root, with a throw-away system user that the test makes and removes (``useradd --system``), owning a
spool directory. That user's own process holds the spool's lock, stops (SIGSTOP) every other process of
its uid in a loop, or kills them: root's delivery still reaches a real SMTP server on 127.0.0.1 within
smtp_timeout, over a TCP connection of uid 0 (read from /proc/net/tcp by the client port the server
saw), and the user's worse delays root by one worker's deadline. Before: the whole delivery, SMTP
conversation and password included, ran in a worker that had become that user.
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import smtp_server

from ansible_collections.sysops.fleet.plugins.module_utils import _mail, _mail_delivery, _mail_spool, _privilege
from ansible_collections.sysops.fleet.plugins.module_utils._mail import SmtpSettings

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: makes a system user")

A, B = "a@example.com", "b@example.com"
SENDER = "root@web1.example.com"
TIMEOUT = 5.0
OWNER_WAIT = 3.0
SYSTEM_PYTHON = "/usr/bin/python3"  # the user cannot read the test's own interpreter under /root

# The user's side: hold the spool's lock, and/or stop or kill every other process of its uid, in a loop.
ATTACKER = r"""
import fcntl, os, signal, sys, time
spool, mode = sys.argv[1], sys.argv[2]
me, uid = os.getpid(), str(os.getuid())
if "lock" in mode:
    fd = os.open(os.path.join(spool, ".lock"), os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
sys.stdout.write("ready\n")
sys.stdout.flush()
hit = signal.SIGKILL if "kill" in mode else signal.SIGSTOP
while True:
    if "stop" in mode or "kill" in mode:
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            try:
                with open("/proc/%s/status" % name) as status:
                    uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
            except (OSError, StopIteration):
                continue
            if uid in uids:
                try:
                    os.kill(int(name), hit)
                except OSError:
                    pass
    time.sleep(0.002)
"""


def message(subject="Nightly Disk Usage Report for web1", to=(A, B)):
    msg = _mail.build_message(_mail.parse_address(SENDER, "mail_from"),
                              [_mail.parse_address(a, "mail_to") for a in to], subject, "table\n", "<p>table</p>",
                              domain="web1.example.com")
    return msg.as_bytes(policy=_mail.POLICY)


def settings(port):
    return SmtpSettings(host="127.0.0.1", port=port, timeout=TIMEOUT, username="root-reports",
                        password="root's smtp password", allow_plaintext_auth=True).check()


def processes_of(uid):
    pids = []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.stat(f"/proc/{name}/status") and _uids(name).count(str(uid)):
                pids.append(int(name))
        except OSError:
            continue
    return pids


def _uids(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(line for line in status if line.startswith("Uid:")).split()[1:]


@pytest.fixture
def spool_owner():
    """A system user made for this test, owning a spool directory it can reach; removed afterwards."""
    if not shutil.which("useradd") or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs useradd and /usr/bin/python3")
    name = f"sfmail{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    base = tempfile.mkdtemp(prefix="sysops-fleet-mail-", dir="/dev/shm" if os.path.isdir("/dev/shm") else "/tmp")
    try:
        user = pwd.getpwnam(name)
        os.chmod(base, 0o755)
        spool = os.path.join(base, "spool")
        os.mkdir(spool, 0o700)
        os.chown(spool, user.pw_uid, user.pw_gid)
        yield user, spool
    finally:
        for _sweep in range(50):  # what the test started as that user, by pid, until none is left
            pids = processes_of(pwd.getpwnam(name).pw_uid)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def attacker(user, spool, mode):
    """The user's own process doing *mode* ("lock", "stop", "kill", combined with "+") until the block ends."""
    proc = subprocess.Popen([SYSTEM_PYTHON, "-c", ATTACKER, spool, mode], user=user.pw_uid, group=user.pw_gid,
                            extra_groups=[], stdout=subprocess.PIPE, cwd="/", env={"PATH": "/usr/bin:/bin"})
    try:
        assert proc.stdout.readline() == b"ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def quick_owner(monkeypatch):
    monkeypatch.setattr(_mail_delivery, "OWNER_WAIT", OWNER_WAIT, raising=False)


@pytest.mark.parametrize("mode", ["lock+stop", "lock+kill"])
def test_roots_report_goes_out_from_roots_own_process_whatever_the_user_does(spool_owner, smtpd, quick_owner, mode):
    user, spool = spool_owner
    theirs = _privilege.as_owner(spool, _mail_spool.add, spool, message(subject="the user's own"), SENDER, [A])
    server = smtpd(handler=smtp_server.Recorder(record_uid=True), auth=("root-reports", "root's smtp password"),
                   auth_require_tls=False)
    raw = message()
    with attacker(user, spool, mode):
        started = time.monotonic()
        took, result, error = smtp_server.bounded(lambda: _mail_delivery.deliver(raw, settings(server.port), spool),
                                                  limit=60)
    assert error is None, error
    [received] = server.messages
    assert _mail.message_id(received.data) == _mail.message_id(raw), "root sent its own message, not the user's"
    assert received.login == "root-reports" and received.at - started < TIMEOUT
    assert received.peer_uid == 0, f"the connection that reached the server was uid {received.peer_uid}'s"
    assert result.sent and result.error == "" and took < TIMEOUT + OWNER_WAIT + 2, (took, result)
    assert os.path.exists(theirs), "the user's queued message is left to the user's runs"
    assert any(f"spool_dir {spool} is controlled by uid {user.pw_uid} ({user.pw_name}), not root" in w
               and "which send them with their own mail settings" in w for w in result.warnings), result.warnings


def test_what_root_cannot_deliver_is_queued_as_the_owner_and_sent_by_the_owners_run(spool_owner, smtpd, quick_owner):
    user, spool = spool_owner
    server = smtpd(handler=smtp_server.Recorder(record_uid=True, rcpt_replies={B: "451 4.2.1 mailbox busy"}),
                   auth=("root-reports", "root's smtp password"), auth_require_tls=False)
    raw = message()
    result = _mail_delivery.deliver(raw, settings(server.port), spool)
    assert result.sent and result.deferred == {B: "451 4.2.1 mailbox busy"} and result.error == ""
    assert [m.peer_uid for m in server.messages] == [0]
    st = os.stat(result.spooled)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (user.pw_uid, user.pw_gid, 0o600)
    assert os.path.dirname(result.spooled) == spool and result.pending == 1
    assert _mail_spool.read(result.spooled).recipients == [B], "a copy for the deferred recipient only"

    server.handler.rcpt_replies.clear()  # the owner's run (its watcher), with its own settings, sends its queue
    owners = SmtpSettings(host="127.0.0.1", port=server.port, timeout=TIMEOUT).check()
    sent = _privilege.as_owner(spool, lambda: _mail_delivery.deliver(None, owners, spool).spool_sent)
    assert sent == [_mail.message_id(raw)] and server.messages[-1].login is None
    assert server.messages[-1].rcpt_tos == [B] and server.messages[-1].peer_uid == user.pw_uid


@pytest.mark.parametrize("mode", ["stop", "kill"])
def test_a_user_who_stops_the_worker_delays_root_by_its_deadline_and_loses_only_the_copy(
        spool_owner, smtpd, quick_owner, mode):
    """The server defers every recipient, so root must queue its message in the user's spool: the user
    freezes or kills the worker. Root's send already happened; root waits at most OWNER_WAIT and says
    what could not be kept (the report is in the module's result)."""
    user, spool = spool_owner
    assert _privilege.as_owner(spool, plant_names, spool, 100000) == 100000  # the worker's count takes a while
    server = smtpd(handler=smtp_server.Recorder(rcpt_reply="451 4.3.0 Try again later", record_uid=True))
    plain = SmtpSettings(host="127.0.0.1", port=server.port, timeout=TIMEOUT).check()
    with attacker(user, spool, f"lock+{mode}"):
        started = time.monotonic()
        took, result, error = smtp_server.bounded(lambda: _mail_delivery.deliver(message(), plain, spool), limit=60)
    assert error is None and server.handler.rcpt_commands == [A, B] and server.handler.rcpt_at[0] - started < TIMEOUT
    assert took < TIMEOUT + OWNER_WAIT + 2, took
    assert result.sent is False and set(result.deferred) == {A, B}
    assert server.messages == [] and server.handler.rcpt_commands == [A, B], "nothing sent twice"
    if result.spooled is None:  # the user stopped or killed the worker: root says what it does not know
        assert ("whether the message was spooled to " + spool + " is not known: the worker acting as its owner "
                "failed") in result.error, result.error
        if mode == "stop":
            assert "did not finish within 3s" in result.error and took >= OWNER_WAIT
    else:  # the worker was done before the user's next sweep: queued as the user
        assert os.stat(result.spooled).st_uid == user.pw_uid
    print(f"{mode}: root waited {took:.2f} s; spooled={result.spooled!r}; {result.error[-160:]}")


def plant_names(spool, count):
    """As the user: *count* names in its spool (not messages: they start with a dot), cheaply."""
    for n in range(count):
        os.close(os.open(os.path.join(spool, f".pad-{n}"), os.O_CREAT | os.O_WRONLY, 0o600))
    return count


def test_the_users_text_in_its_spool_reaches_roots_report_as_one_line_each(spool_owner):
    user, spool = spool_owner

    def plant():
        for sub in ("dead", "quarantine"):
            os.makedirs(os.path.join(spool, sub), mode=0o700, exist_ok=True)
        with open(os.path.join(spool, "quarantine", "20240101T000000-0-x\nForged: line\x1b[2J"), "wb"):
            pass
        with open(os.path.join(spool, "quarantine", "20240101T000000-0-x\nForged: line\x1b[2J.why"), "wb") as why:
            why.write(b"x\nForged: line\x1b[2J is empty\nAnother: forged line\x1b]0;t\x07\n")
        with open(os.path.join(spool, "dead", "20240102T000000-000000000-0000001-000000.eml"), "wb") as dead:
            dead.write(b"X-Sysops-Fleet-Refused: a@b 550 \x1b[31mred\r\n"
                       b"Subject: =?utf-8?q?a=0Ab?= \x1b[2J\r\n\r\nx\r\n")
        return True

    assert _privilege.as_owner(spool, plant)
    text, page = _mail_delivery.undelivered_section(spool)
    lines = text.splitlines()
    assert len(lines) == 4 and all(line.isprintable() for line in lines), text
    assert "x\\nForged: line\\x1b[2J" in lines[1] and "Another: forged line\\x1b]0;t\\x07" in lines[1]
    assert "\\x1b[31mred" in lines[2] and "\x1b" not in page
