# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_mail_spool: the files of the queue, the dead letters and the quarantine, and what cannot be read."""

import email
import email.policy
import fcntl
import os
import stat
import tempfile
import time

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _files, _mail, _mail_spool

SENDER = "disk@web1.example.com"


def message(subject="report", to=("Ops <ops@example.com>", "b@example.com")):
    msg = _mail.build_message(_mail.parse_address(SENDER, "mail_from"),
                              [_mail.parse_address(a, "mail_to") for a in to], subject, "table\n", "<p>table</p>",
                              domain="web1.example.com")
    return msg.as_bytes(policy=_mail.POLICY)


def test_default_spool_dir_for_root_and_for_users():
    assert _mail_spool.default_dir(0, {}) == "/var/spool/sysops-fleet"  # root's own, not the watcher's
    assert _mail_spool.default_dir(1000, {"XDG_STATE_HOME": "/x/state"}) == "/x/state/sysops-fleet/spool"
    assert _mail_spool.default_dir(1000, {}) == os.path.expanduser("~/.local/state/sysops-fleet/spool")


def test_queued_files_are_private_complete_messages_oldest_first(tmp_path):
    spool = str(tmp_path / "spool")
    first = _mail_spool.add(spool, message(subject="one"), SENDER, ["ops@example.com"])
    second = _mail_spool.add(spool, message(subject="two"), SENDER, ["ops@example.com", "b@example.com"])
    (tmp_path / "spool" / ".tmp-half-written").write_bytes(b"x")
    assert _mail_spool.listing(spool) == [first, second] and _mail_spool.count(spool) == 2
    assert stat.S_IMODE(os.stat(spool).st_mode) == 0o700 and stat.S_IMODE(os.stat(first).st_mode) == 0o600
    with open(first, "rb") as handle:  # a mail client opens it as it is
        opened = email.message_from_binary_file(handle, policy=email.policy.default)
    assert opened["Subject"] == "one" and opened["X-Sysops-Fleet-Envelope-To"] == "ops@example.com"
    assert _mail_spool.listing(str(tmp_path / "missing")) == [] and _mail_spool.count(str(tmp_path / "missing")) == 0


def test_the_envelope_decides_who_gets_a_copy_the_headers_still_show_everyone(tmp_path):
    raw = message()
    path = _mail_spool.add(str(tmp_path), raw, SENDER, ["b@example.com"])
    item = _mail_spool.read(path)
    assert (item.sender, item.recipients, item.message) == (SENDER, ["b@example.com"], raw)
    assert _mail.envelope(item.message)[1] == ["ops@example.com", "b@example.com"]
    with open(path, "rb") as handle:
        envelope_only_from = b"".join(line for line in handle if not line.startswith(b"X-Sysops-Fleet-Envelope-To"))
    with open(path, "wb") as handle:
        handle.write(envelope_only_from)
    with pytest.raises(_mail_spool.Corrupt, match="no recipients"):  # never a fall back to the headers' everyone
        _mail_spool.read(path)
    with pytest.raises(ValueError):
        _mail_spool.keep_only(item, [])


def test_a_file_from_before_envelopes_is_sent_to_its_headers(tmp_path):
    old = tmp_path / "20240101T000000-1-1.eml"
    old.write_bytes(message().replace(b"\r\n", b"\n"))  # edited by hand: bare line feeds
    item = _mail_spool.read(str(old))
    assert item.recipients == ["ops@example.com", "b@example.com"] and item.sender == SENDER
    assert b"\n" not in item.message.replace(b"\r\n", b"")  # CRLF again, as servers want it


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


BAD_ENVELOPE = (b"X-Sysops-Fleet-Envelope-From: a@b.example\r\n"
                b"X-Sysops-Fleet-Envelope-To: x y@z.example\r\nSubject: x\r\n\r\nb\r\n")
CORRUPT = {
    "empty": (lambda p: _write(p, "a.eml", b""), "is empty"),
    "blank": (lambda p: _write(p, "a.eml", b"\r\n \r\n"), "is empty"),
    "garbage": (lambda p: _write(p, "a.eml", os.urandom(64).replace(b":", b"") + b"\n\n"), "no header block"),
    "no recipients": (lambda p: _write(p, "a.eml", b"Subject: x\r\nFrom: a@b.example\r\n\r\nbody\r\n"),
                      "no recipients"),
    "bad envelope": (lambda p: _write(p, "a.eml", BAD_ENVELOPE), "envelope address that cannot be used"),
    "non-ASCII envelope": (lambda p: _write(p, "a.eml", BAD_ENVELOPE.replace(b"x y@z", "jörg@z".encode())),
                           "envelope address that cannot be used"),
    "truncated envelope": (lambda p: _write(p, "a.eml", b"X-Sysops-Fleet-Envelope-From: a@b.exa"),
                           "ends inside its envelope"),
    "symlink": (lambda p: (os.symlink("/etc/hostname", p / "a.eml"), p / "a.eml")[1], "is a symbolic link"),
    "fifo": (lambda p: (os.mkfifo(p / "a.eml"), p / "a.eml")[1], "is not a regular file"),
    "directory": (lambda p: (os.mkdir(p / "a.eml"), p / "a.eml")[1], "is not a regular file"),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_what_cannot_be_a_message_is_corrupt_and_quarantined_with_the_reason(tmp_path, kind):
    make, reason = CORRUPT[kind]
    spool = tmp_path / "spool"
    spool.mkdir()
    path = str(make(spool))
    started = time.monotonic()
    with pytest.raises(_mail_spool.Corrupt, match=reason) as why:
        _mail_spool.read(path)
    assert time.monotonic() - started < 2, "a FIFO must not block the reader"
    moved = _mail_spool.quarantine(str(spool), path, str(why.value))
    assert not os.path.lexists(path) and os.path.lexists(moved)
    assert os.path.dirname(moved) == str(spool / "quarantine") and _mail_spool.listing(str(spool)) == []
    listed = _mail_spool.undelivered(str(spool))
    assert [(e["kind"], e["reason"]) for e in listed] == [("quarantined", str(why.value))]
    if kind == "symlink":
        assert os.path.islink(moved) and os.path.exists("/etc/hostname"), "the link moves, never its target"


def test_a_file_larger_than_any_report_is_corrupt(tmp_path, monkeypatch):
    monkeypatch.setattr(_mail_spool, "MAX_BYTES", 1000)
    path = _mail_spool.add(str(tmp_path), message() + b"x" * 1000, SENDER, ["b@example.com"])
    with pytest.raises(_mail_spool.Corrupt, match="is larger than 1000 bytes"):
        _mail_spool.read(path)


def test_a_dead_letter_keeps_the_message_the_refused_recipients_and_the_servers_answers(tmp_path):
    spool = str(tmp_path)
    raw = message(subject="Nightly")
    dead = _mail_spool.bury(spool, raw, SENDER, {"b@example.com": "550 5.1.1 no such user"})
    assert os.path.dirname(dead) == os.path.join(spool, "dead") and _mail_spool.listing(spool) == []
    assert stat.S_IMODE(os.stat(dead).st_mode) == 0o600
    [entry] = _mail_spool.undelivered(spool)
    assert (entry["kind"], entry["subject"], entry["reason"]) == ("dead letter", "Nightly",
                                                                  "b@example.com: 550 5.1.1 no such user")
    assert entry["when"].endswith(" UTC")
    os.rename(dead, os.path.join(spool, os.path.basename(dead)))  # "move it back to send it again"
    again = _mail_spool.read(os.path.join(spool, os.path.basename(dead)))
    assert again.recipients == ["b@example.com"] and again.message == raw


def test_answers_with_line_breaks_cannot_forge_envelope_lines(tmp_path):
    dead = _mail_spool.bury(str(tmp_path), message(), SENDER,
                            {"b@example.com": "550 bad\r\nX-Sysops-Fleet-Envelope-To: victim@example.com"})
    os.rename(dead, str(tmp_path / "back.eml"))
    assert _mail_spool.read(str(tmp_path / "back.eml")).recipients == ["b@example.com"]


def test_the_spool_lock_keeps_two_runs_apart(tmp_path):
    spool = str(tmp_path)
    with _mail_spool.lock(spool):
        other = os.open(os.path.join(spool, ".lock"), os.O_RDWR)
        with pytest.raises(OSError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(other)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            with _mail_spool.lock(spool, wait=0.3):
                pass
        assert time.monotonic() - started < 2


def test_spool_writes_are_durable_through_the_one_atomic_writer(tmp_path, monkeypatch):
    calls = []
    real = _files.write_atomic

    def spy(path, text, mode=None, durable=False):
        calls.append((os.path.basename(os.path.dirname(path)), mode, durable, type(text)))
        return real(path, text, mode, durable)
    monkeypatch.setattr(_files, "write_atomic", spy)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    spool = str(tmp_path / "spool")
    path = _mail_spool.add(spool, message(), SENDER, ["b@example.com"])
    _mail_spool.bury(spool, message(), SENDER, {"b@example.com": "550 no"})
    _mail_spool.keep_only(_mail_spool.read(path), ["b@example.com"])
    assert calls == [("spool", 0o600, True, bytes), ("dead", 0o600, True, bytes), ("spool", 0o600, True, bytes)]
    assert len(synced) >= 6, "each write fsyncs the file and its directory"


def test_unwritable_says_why(tmp_path):
    assert _mail_spool.unwritable(str(tmp_path)) == ""
    assert _mail_spool.unwritable(str(tmp_path / "missing")) == "not writable by this user"


# ---- names sort in the order messages were queued -----------------------------------------------

REAL_GMTIME = time.gmtime


class SteppingClock:
    """The wall clock as the spool reads it, stepping *step* ns on every reading, starting just before a second.

    A real second boundary cannot be made to fall between two readings of one name; this clock puts one
    there: each second here holds a few names, and every boundary falls inside some name's readings.
    """

    def __init__(self, step=1_000_000, start=1_700_000_000_999_500_000):
        self.now, self.step = start, step

    def time_ns(self):
        self.now += self.step
        return self.now

    def time(self):
        return self.time_ns() / 1e9

    def gmtime(self, seconds=None):
        return REAL_GMTIME(self.time() if seconds is None else seconds)


def queue_in_order(spool, count, clock, monkeypatch):
    """Queue *count* messages (subjects 0..count-1), reading the time from *clock*; their files, in that order."""
    raw = message()
    monkeypatch.setattr(_mail_spool, "_clock", {"last": 0}, raising=False)  # this process's names so far: none
    with monkeypatch.context() as patch:
        for name in ("time_ns", "time", "gmtime"):
            patch.setattr(time, name, getattr(clock, name))
        return [_mail_spool.add(spool, raw.replace(b"Subject: report", f"Subject: {n}".encode()), SENDER,
                                ["b@example.com"]) for n in range(count)]


def test_names_sort_in_the_order_messages_were_queued_across_second_boundaries(shm_path, monkeypatch):
    """Before: the second and the nanoseconds came from two readings of the clock; a name written across a
    boundary (second S, nanoseconds of S+1) sorted before every name of second S."""
    spool = str(shm_path / "spool")
    paths = queue_in_order(spool, 600, SteppingClock(step=7_000_000), monkeypatch)
    assert len({p.split("/")[-1][:15] for p in paths}) >= 4, "the names span several seconds"
    assert _mail_spool.listing(spool) == paths


def test_names_never_go_back_when_the_clock_does(tmp_path, monkeypatch):
    spool = str(tmp_path / "spool")
    backwards = SteppingClock(step=-1_000_000)
    assert _mail_spool.listing(spool) == [] and queue_in_order(spool, 20, backwards, monkeypatch) == \
        _mail_spool.listing(spool)


# ---- the queue's age of a message ----------------------------------------------------------------

def test_a_queued_message_keeps_when_it_was_first_queued(tmp_path):
    spool = str(tmp_path)
    before = time.time()
    path = _mail_spool.add(spool, message(), SENDER, ["ops@example.com", "b@example.com"])
    item = _mail_spool.read(path)
    assert before - 1 <= item.queued_since <= time.time() and _mail_spool.queued_since(path) == item.queued_since
    with open(path, "rb") as handle:
        head = handle.read(400)
    assert b"\r\nX-Sysops-Fleet-Queued-Since: " + time.strftime("%Y-%m-%dT", time.gmtime()).encode() in head
    item.queued_since -= 86400 * 3  # three days ago: kept when rewritten for fewer recipients
    _mail_spool.keep_only(item, ["b@example.com"])
    again = _mail_spool.read(path)
    assert again.recipients == ["b@example.com"] and again.queued_since == item.queued_since


@pytest.mark.parametrize("value", [b"", b"yesterday", b"2024-13-01T00:00:00Z", b"2024-05-01 03:00:01",
                                   "2024-05-01T03:00:0\u0661Z".encode(), b"99999-01-01T00:00:00Z"])
def test_a_queued_since_that_is_not_ours_counts_as_unknown(tmp_path, value):
    path = tmp_path / "x.eml"
    path.write_bytes(b"X-Sysops-Fleet-Envelope-From: a@b.example\r\nX-Sysops-Fleet-Envelope-To: c@d.example\r\n"
                     b"X-Sysops-Fleet-Queued-Since: " + value + b"\r\nSubject: x\r\n\r\nbody\r\n")
    assert _mail_spool.read(str(path)).queued_since is None and _mail_spool.queued_since(str(path)) is None
    _mail_spool.keep_only(_mail_spool.read(str(path)), ["c@d.example"])  # stamped now, the first time kept
    assert abs(_mail_spool.read(str(path)).queued_since - time.time()) < 5


# ---- listing what was not delivered, bounded ---------------------------------------------------

def test_a_listing_reads_only_the_newest_and_counts_the_rest(shm_path):
    spool = shm_path / "spool"
    (spool / "dead").mkdir(parents=True)
    for n in range(3000):  # names only: a user fills a directory cheaply
        (spool / "dead" / f"2024010{n % 9 + 1}T000000-{n:09d}-0000001-000000.eml").write_bytes(b"")
    newest = _mail_spool.bury(str(spool), message(subject="the newest"), SENDER, {"b@example.com": "550 no"})
    total, entries = _mail_spool.summary(str(spool), 20)
    assert total == 3001 and len(entries) == 20 and entries[-1]["file"] == newest
    assert entries[-1]["subject"] == "the newest" and entries[0]["subject"] == ""
    assert [e["file"] for e in entries] == sorted(e["file"] for e in entries)


# ---- property-based: whatever bytes a spool file holds -------------------------------------------

ENVELOPE_LINES = st.sampled_from([b"X-Sysops-Fleet-Envelope-From:", b"X-Sysops-Fleet-Envelope-To:",
                                  b"X-Sysops-Fleet-Queued-Since:", b"X-Sysops-Fleet-Refused:", b"From:", b"To:",
                                  b"Cc:", b"Subject:", b""])
SPOOL_BYTES = st.lists(st.one_of(
    st.tuples(ENVELOPE_LINES, st.binary(max_size=40), st.sampled_from([b"\r\n", b"\n", b"\r", b""])).map(
        lambda t: t[0] + b" " + t[1] + t[2]),
    st.sampled_from([b"a@b.example", b"x y@z.example", b"<a@b>", b"\r\n\r\nbody\r\n", b"\x00", "j\u00f6rg@z".encode(),
                     b"a@b.example\rRCPT TO:<evil@x>", b"\xe2\x80\xa8", b"@"]),
    st.binary(max_size=60)), max_size=14).map(b"".join)


def usable(address):
    """What may follow MAIL FROM: / RCPT TO: without breaking the command line."""
    return (address.isascii() and address.isprintable() and "@" in address and len(address) <= 320
            and not any(c in address for c in " \t<>\0\r\n"))


@given(data=SPOOL_BYTES)
@examples(max_examples=300, deadline=None)
def test_any_bytes_in_a_queued_file_are_a_message_with_usable_addresses_or_corrupt(data):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "20240101T000000-000000000-0000001-000000.eml")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            item = _mail_spool.read(path)
        except _mail_spool.Corrupt as exc:
            assert str(exc).isprintable(), exc
            return
        assert item.recipients and all(usable(a) for a in [item.sender] + item.recipients), item
        assert b"\r\n\r\n" in item.message and b"\n" not in item.message.replace(b"\r\n", b"")
        assert item.queued_since is None or isinstance(item.queued_since, float)
