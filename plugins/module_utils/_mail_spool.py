# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail spool on disk: queued messages, dead letters, quarantined files.

PRIVATE to the sysops.fleet collection. Pure standard library.

Layout of ``spool_dir`` (0700, files 0600: a report names hosts and mounts)::

    spool_dir/NAME.eml             queued: sent by the next run that reaches the server
    spool_dir/dead/NAME.eml        dead letters: refused for good (5xx), with the server's answer
    spool_dir/quarantine/NAME      files that could not be read as a message (empty, corrupt,
    spool_dir/quarantine/NAME.why  not a regular file...) and why, never retried
    spool_dir/.lock                held by the run that sends the queue

NAME starts with the UTC time it was written, so names sort oldest first.
Each ``.eml`` is a complete message (a mail client opens it) that starts
with its SMTP envelope, which is taken off before it is sent::

    X-Sysops-Fleet-Envelope-From: disk@web1.example.com
    X-Sysops-Fleet-Envelope-To: ops@example.com          (one line per recipient)
    X-Sysops-Fleet-Queued-Since: 2024-05-01T03:00:01Z      (queued: when it was first queued)
    X-Sysops-Fleet-Refused: gone@example.com 550 5.1.1 ...  (dead letters: why, per recipient)
    X-Sysops-Fleet-Dead-Since: 2024-05-01T03:00:01Z        (dead letters)
    From: ... (the message as built)

So a copy can wait for only some of the message's recipients (those a 4xx
deferred) while the headers still show every one. A file without these
lines (spooled by an older version, or by hand) is sent to the addresses
of its From, To and Cc headers. To send a dead letter again, move it back
into ``spool_dir``. The queue's age of a message is counted from its
``Queued-Since`` line, kept when the file is rewritten for fewer
recipients; a file without one (an older version's, a dead letter moved
back) counts from the first run that keeps it queued, which adds the line.

NAME is the UTC time, to the nanosecond, from one reading of the clock,
then the process and a counter, all of fixed width: names sort in the
order the messages were queued (within one process strictly, even when
the clock steps back; across processes, as the wall clock does).

Every open, read, write, rename and unlink of a spool file is in one of
the small functions at the end of this file (``_read_file``, ``_write``,
``_make_dir``, ``_move``, ``_unlink``, ``_names``, ``_scan``).
"""

from __future__ import annotations

import calendar
import errno
import heapq
import itertools
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple

from . import _files, _mail, _text

SYSTEM_SPOOL = "/var/spool/sysops-fleet"  # root's own; the watcher's is in its state directory
USER_SPOOL = os.path.join("sysops-fleet", "spool")  # under $XDG_STATE_HOME or ~/.local/state
SUFFIX = ".eml"
DEAD = "dead"
QUARANTINE = "quarantine"
WHY = ".why"
MAX_BYTES = 32 << 20  # a report is a few hundred KiB; anything this large is not ours
HEAD_BYTES = 64 << 10  # enough of a dead letter to list it, or of a queued file to read its envelope
MAX_FIELD = 1000  # characters of a subject, a reason or a file name that a listing keeps
LOCK_WAIT = 60.0

FROM = b"X-Sysops-Fleet-Envelope-From:"
TO = b"X-Sysops-Fleet-Envelope-To:"
REFUSED = b"X-Sysops-Fleet-Refused:"
DEAD_SINCE = b"X-Sysops-Fleet-Dead-Since:"
QUEUED_SINCE = b"X-Sysops-Fleet-Queued-Since:"
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
_OURS = b"X-Sysops-Fleet-"
_LINE = re.compile(rb"\r?\n")
_FIELD = re.compile(rb"^[!-9;-~]+:")
_serial = itertools.count()
_clock = {"last": 0}  # the clock reading (ns) of this process's last name: names never go back
_clock_lock = threading.Lock()
KINDS = (("dead letter", DEAD), ("quarantined", QUARANTINE))


class Corrupt(ValueError):
    """A spool file that cannot be sent as it is; the message says what is wrong with it."""


@dataclass
class Queued:
    """One message of the queue, ready to send."""

    path: str
    sender: str
    recipients: List[str]
    message: bytes  # as it goes to the server: the envelope lines taken off, CRLF line ends
    queued_since: Optional[float] = None  # when first queued (UTC seconds); None: not known (see above)

    @property
    def message_id(self) -> str:
        return _mail.message_id(self.message)


def default_dir(euid: Optional[int] = None, environ: Optional[Dict[str, str]] = None) -> str:
    """``/var/spool/sysops-fleet`` for root, else ``$XDG_STATE_HOME`` (``~/.local/state``)/sysops-fleet/spool.

    Root's own, not the watcher's (``/var/lib/sysops-fleet/spool``, its
    user's): a report root sends never waits in a directory another user
    controls unless ``spool_dir`` says so.
    """
    euid = os.geteuid() if euid is None else euid
    environ = os.environ if environ is None else environ
    if euid == 0:
        return SYSTEM_SPOOL
    state = environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, USER_SPOOL)


# ---- the queue -----------------------------------------------------------------------------------

def listing(spool_dir: str) -> List[str]:
    """Queued message files, oldest first; none when the directory does not exist. Raises OSError."""
    return [os.path.join(spool_dir, n) for n in _names(spool_dir) if n.endswith(SUFFIX) and not n.startswith(".")]


def count(spool_dir: str) -> int:
    """How many messages wait in the queue; 0 when it cannot be read (the delivery says why)."""
    try:
        return len(listing(spool_dir))
    except OSError:
        return 0


def lock(spool_dir: str, wait: float = LOCK_WAIT) -> ContextManager[None]:
    """Hold the spool's lock, so a cron run and an Ansible run never send one queued message twice.

    Raises TimeoutError (another run holds it longer than *wait*) or OSError.
    """
    return _files.locked(os.path.join(spool_dir, ".lock"), wait)


def unwritable(spool_dir: str) -> str:
    """Why messages cannot be taken out of *spool_dir* (read-only filesystem, permissions), or ''.

    A queued message must not be sent when it cannot be removed after: it
    would go out again on every run.
    """
    if os.access(spool_dir, os.W_OK | os.X_OK):
        return ""
    try:
        if os.statvfs(spool_dir).f_flag & os.ST_RDONLY:
            return "on a read-only filesystem"
    except OSError:
        pass
    return "not writable by this user"


def add(spool_dir: str, message: bytes, sender: str, recipients: Sequence[str]) -> str:
    """Queue *message* for *recipients* (the envelope; its headers may name more); returns the file."""
    _make_dir(spool_dir)
    name, now = _new_name()
    path = os.path.join(spool_dir, name)
    _write(path, _envelope(sender, recipients, now) + message)
    return path


def read(path: str) -> Queued:
    """The queued message at *path*; Corrupt when it cannot be one (it is then to be quarantined)."""
    data = _read_file(path, MAX_BYTES)
    if not data.strip():
        raise Corrupt("is empty")
    envelope, body = _split(data)
    body = _LINE.sub(b"\r\n", body)  # a file edited by hand may have bare LFs, which servers refuse
    if not _FIELD.match(body) or b"\r\n\r\n" not in body:
        raise Corrupt("is not a mail message (no header block)")
    if envelope:  # ours: it alone says who still waits for the message (never fall back to the headers)
        sender = (envelope.get(FROM) or [""])[0]
        recipients = envelope.get(TO, [])
    else:
        sender, recipients = _mail.envelope(body)
    for address in [sender] + list(recipients):
        if not _plausible(address):
            raise Corrupt(f"has an envelope address that cannot be used: {_text.printable(address, 80)}")
    if not recipients:
        raise Corrupt("has no recipients (no envelope, no To or Cc header)")
    return Queued(path, sender, list(recipients), body, _since(envelope))


def queued_since(path: str) -> Optional[float]:
    """When the message at *path* was first queued, from the head of the file; None when not known.

    Raises Corrupt when the file cannot be read (it is quarantined by the
    run that tries to send it).
    """
    envelope, _body = _split(_read_file(path, HEAD_BYTES, whole=False))
    return _since(envelope)


def _since(envelope: Dict[bytes, List[str]]) -> Optional[float]:
    """The ``Queued-Since`` time as UTC seconds; None when missing or not written as this module writes it."""
    value = (envelope.get(QUEUED_SINCE) or [""])[0]
    if not _UTC.match(value):
        return None
    try:
        return float(calendar.timegm(time.strptime(value, UTC_FORMAT)))
    except (ValueError, OverflowError):
        return None


def keep_only(item: Queued, recipients: Sequence[str]) -> None:
    """Rewrite a queued message in place for *recipients* only (the others have it); atomic.

    Its ``Queued-Since`` stays (the age counts from the first queueing);
    a message without one gets it now.
    """
    if not recipients:
        raise ValueError("keep_only needs a recipient; remove() a message nobody waits for")
    since = item.queued_since if item.queued_since is not None else time.time()
    _write(item.path, _envelope(item.sender, recipients, since) + item.message)


def remove(path: str) -> None:
    """Take a delivered message out of the queue."""
    _unlink(path)


# ---- dead letters and quarantine -----------------------------------------------------------------

def bury(spool_dir: str, message: bytes, sender: str, refused: Dict[str, str]) -> str:
    """Keep *message* as a dead letter for the *refused* recipients, with the server's answer to each."""
    directory = os.path.join(spool_dir, DEAD)
    _make_dir(spool_dir)
    _make_dir(directory)
    lines = [REFUSED + b" " + _ascii(f"{rcpt} {why}") for rcpt, why in refused.items()]
    lines.append(DEAD_SINCE + b" " + _ascii(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
    path = os.path.join(directory, _new_name()[0])
    _write(path, _envelope(sender, list(refused)) + b"".join(line + b"\r\n" for line in lines) + message)
    return path


def quarantine(spool_dir: str, path: str, reason: str) -> str:
    """Move a spool file that is no message out of the queue, with a ``.why`` beside it; returns where."""
    directory = os.path.join(spool_dir, QUARANTINE)
    _make_dir(directory)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = os.path.join(directory, f"{stamp}-{next(_serial)}-{os.path.basename(path)}")
    _move(path, target)
    try:
        _write(target + WHY, f"{os.path.basename(path)} {reason}\n".encode("utf-8", "replace"))
    except OSError:
        pass  # the file is out of the queue, which is what matters; the run reports the reason
    return target


def undelivered(spool_dir: str, newest: int = 0) -> List[Dict[str, str]]:
    """Dead letters and quarantined files, oldest first: ``file``, ``kind``, ``when``, ``subject``, ``reason``.

    For the daily report, which lists them until someone deals with them;
    with *newest*, only that many of the newest (see ``summary``).
    """
    return summary(spool_dir, newest)[1]


def summary(spool_dir: str, newest: int = 0) -> Tuple[int, List[Dict[str, str]]]:
    """How many dead letters and quarantined files there are, and the *newest* of them (all when 0).

    A file that cannot be read is listed with what is known. Only the
    listed files are read, and only their heads; the names are counted as
    the directories are read, keeping the newest: a directory a user filled
    with names costs time, not memory. Every string is at most
    ``MAX_FIELD`` characters (the file's path: its name).
    """
    total = 0
    kept: List[Tuple[str, str, str]] = []  # (when, path, kind): a heap of the newest when *newest* > 0
    for kind, sub in KINDS:
        directory = os.path.join(spool_dir, sub)
        for name in _scan(directory):
            if name.startswith(".") or name.endswith(WHY):
                continue
            total += 1
            item = (_when(name), os.path.join(directory, name[:MAX_FIELD]), kind)
            if newest <= 0:
                kept.append(item)
            elif len(kept) < newest:
                heapq.heappush(kept, item)
            else:
                heapq.heappushpop(kept, item)
    return total, [_entry(kind, path, when) for when, path, kind in sorted(kept)]


def _entry(kind: str, path: str, when: str) -> Dict[str, str]:
    entry = {"file": path, "kind": kind, "when": when, "subject": "", "reason": ""}
    if kind == "dead letter":
        entry.update(_dead_letter_summary(path))
    else:
        entry["reason"] = _quarantine_reason(path)
    entry["subject"], entry["reason"] = entry["subject"][:MAX_FIELD], entry["reason"][:MAX_FIELD]
    return entry


def _dead_letter_summary(path: str) -> Dict[str, str]:
    try:
        envelope, body = _split(_read_file(path, HEAD_BYTES, whole=False))
    except (Corrupt, OSError):
        return {"reason": "(cannot be read)"}
    refused = envelope.get(REFUSED, [])
    subject = str(_mail.headers(_LINE.sub(b"\r\n", body)).get("Subject", ""))
    return {"subject": " ".join(subject.split()), "reason": "; ".join(
        r.replace(" ", ": ", 1) for r in refused) or "refused"}


def _quarantine_reason(path: str) -> str:
    """The reason in the ``.why`` beside a quarantined file, without the name it had in the queue.

    ``quarantine`` names the file STAMP-SERIAL-NAME and writes "NAME reason";
    a name may hold blanks.
    """
    try:
        text = _read_file(path + WHY, HEAD_BYTES, whole=False).decode("utf-8", "replace").strip()
    except (Corrupt, OSError):
        return "could not be read as a message"
    parts = os.path.basename(path).split("-", 2)
    if len(parts) == 3 and text.startswith(parts[2] + " "):
        return text[len(parts[2]) + 1:]
    return text.split(" ", 1)[1] if " " in text else text


def _when(name: str) -> str:
    match = re.match(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})", name)
    return "{}-{}-{} {}:{}:{} UTC".format(*match.groups()) if match else ""


# ---- envelope ------------------------------------------------------------------------------------

def _envelope(sender: str, recipients: Sequence[str], since: Optional[float] = None) -> bytes:
    for address in [sender] + list(recipients):
        if not _plausible(address):
            raise ValueError(f"not an envelope address: {address!r}")
    lines = [FROM + b" " + _ascii(sender)] + [TO + b" " + _ascii(r) for r in recipients]
    if since is not None:
        lines.append(QUEUED_SINCE + b" " + _ascii(time.strftime(UTC_FORMAT, time.gmtime(since))))
    return b"".join(line + b"\r\n" for line in lines)


def _split(data: bytes) -> Tuple[Dict[bytes, List[str]], bytes]:
    """The envelope lines at the top of a spool file (by field), and the message after them."""
    envelope: Dict[bytes, List[str]] = {}
    offset = 0
    while data.startswith(_OURS, offset):
        end = data.find(b"\n", offset)
        if end < 0:
            raise Corrupt("ends inside its envelope")
        line = data[offset:end].rstrip(b"\r")
        name, _colon, value = line.partition(b":")
        envelope.setdefault(name + b":", []).append(value.strip().decode("ascii", "replace"))
        offset = end + 1
    return envelope, data[offset:]


def _plausible(address: str) -> bool:
    """An envelope address we can put after MAIL FROM / RCPT TO: one token with an @, nothing that breaks a line."""
    return (bool(address) and address.isascii() and "@" in address and len(address) <= 320
            and not any(c.isspace() for c in address)
            and not any(c in address for c in "<>\0") and _mail.clean_header(address) == address)


def _ascii(text: str) -> bytes:
    return _mail.clean_header(text).encode("ascii", "replace")


def _new_name() -> Tuple[str, float]:
    """A new queue file's name (see the module docstring) and the time it names, in seconds.

    One reading of the clock gives both the second and the nanoseconds:
    two readings put a name written across a second boundary before the
    names of that whole second.
    """
    with _clock_lock:
        now = max(time.time_ns(), _clock["last"] + 1)
        _clock["last"] = now
        serial = next(_serial)
    seconds, fraction = divmod(now, 10**9)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds))
    return f"{stamp}-{fraction:09d}-{os.getpid():07d}-{serial:06d}{SUFFIX}", now / 1e9


# ---- the file operations (all spool I/O goes through these) --------------------------------------

def _names(directory: str) -> List[str]:
    """Entries of *directory*, sorted; none when it does not exist."""
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


def _scan(directory: str) -> Iterator[str]:
    """Entries of *directory* one by one, unsorted; none when it cannot be read."""
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                yield entry.name
    except OSError:
        return


def _read_file(path: str, limit: int, whole: bool = True) -> bytes:
    """Up to *limit* bytes of a regular file, never through a symlink, never blocking on a FIFO.

    With *whole*, a larger file is Corrupt; otherwise its head is returned.
    """
    try:
        fd = _files.open_regular(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Corrupt("is a symbolic link") from None
        if isinstance(exc, _files.UnsafeFile):
            raise Corrupt("is not a regular file") from None
        raise Corrupt(f"cannot be read ({exc.strerror or exc})") from None
    try:
        if whole and os.fstat(fd).st_size > limit:
            raise Corrupt(f"is larger than {limit} bytes")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise Corrupt(f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if whole and len(data) > limit:
        raise Corrupt(f"is larger than {limit} bytes")
    return data[:limit]


def _write(path: str, data: bytes) -> None:
    """Atomically and durably (fsync): the queue may hold the only copy of a report."""
    _files.write_atomic(path, data, 0o600, durable=True)


def _make_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)


def _move(path: str, target: str) -> None:
    os.rename(path, target)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
