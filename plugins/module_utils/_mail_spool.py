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
    X-Sysops-Fleet-Refused: gone@example.com 550 5.1.1 ...  (dead letters: why, per recipient)
    X-Sysops-Fleet-Dead-Since: 2024-05-01T03:00:01Z        (dead letters)
    From: ... (the message as built)

So a copy can wait for only some of the message's recipients (those a 4xx
deferred) while the headers still show every one. A file without these
lines (spooled by an older version, or by hand) is sent to the addresses
of its From, To and Cc headers. To send a dead letter again, move it back
into ``spool_dir``.

Every open, read, write, rename and unlink of a spool file is in one of
the small functions at the end of this file (``_read_file``, ``_write``,
``_make_dir``, ``_move``, ``_unlink``, ``_names``).
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import time
from dataclasses import dataclass
from typing import ContextManager, Dict, List, Optional, Sequence, Tuple

from . import _files, _mail

SYSTEM_SPOOL = "/var/lib/sysops-fleet/spool"
USER_SPOOL = os.path.join("sysops-fleet", "spool")  # under $XDG_STATE_HOME or ~/.local/state
SUFFIX = ".eml"
DEAD = "dead"
QUARANTINE = "quarantine"
WHY = ".why"
MAX_BYTES = 32 << 20  # a report is a few hundred KiB; anything this large is not ours
HEAD_BYTES = 64 << 10  # enough of a dead letter to list it
LOCK_WAIT = 60.0

FROM = b"X-Sysops-Fleet-Envelope-From:"
TO = b"X-Sysops-Fleet-Envelope-To:"
REFUSED = b"X-Sysops-Fleet-Refused:"
DEAD_SINCE = b"X-Sysops-Fleet-Dead-Since:"
_OURS = b"X-Sysops-Fleet-"
_LINE = re.compile(rb"\r?\n")
_FIELD = re.compile(rb"^[!-9;-~]+:")
_serial = itertools.count()


class Corrupt(ValueError):
    """A spool file that cannot be sent as it is; the message says what is wrong with it."""


@dataclass
class Queued:
    """One message of the queue, ready to send."""

    path: str
    sender: str
    recipients: List[str]
    message: bytes  # as it goes to the server: the envelope lines taken off, CRLF line ends

    @property
    def message_id(self) -> str:
        return _mail.message_id(self.message)


def default_dir(euid: Optional[int] = None, environ: Optional[Dict[str, str]] = None) -> str:
    """``/var/lib/sysops-fleet/spool`` for root, else ``$XDG_STATE_HOME`` (``~/.local/state``)/sysops-fleet/spool."""
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
    path = os.path.join(spool_dir, _new_name())
    _write(path, _envelope(sender, recipients) + message)
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
            raise Corrupt(f"has an envelope address that cannot be used: {address!r}")
    if not recipients:
        raise Corrupt("has no recipients (no envelope, no To or Cc header)")
    return Queued(path, sender, list(recipients), body)


def keep_only(item: Queued, recipients: Sequence[str]) -> None:
    """Rewrite a queued message in place for *recipients* only (the others have it); atomic."""
    if not recipients:
        raise ValueError("keep_only needs a recipient; remove() a message nobody waits for")
    _write(item.path, _envelope(item.sender, recipients) + item.message)


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
    path = os.path.join(directory, _new_name())
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


def undelivered(spool_dir: str) -> List[Dict[str, str]]:
    """Dead letters and quarantined files, oldest first: ``file``, ``kind``, ``when``, ``subject``, ``reason``.

    For the daily report, which lists them until someone deals with them.
    A file that cannot be read is listed with what is known.
    """
    found: List[Dict[str, str]] = []
    for kind, sub in (("dead letter", DEAD), ("quarantined", QUARANTINE)):
        directory = os.path.join(spool_dir, sub)
        try:
            names = _names(directory)
        except OSError:
            continue
        for name in names:
            if name.startswith(".") or name.endswith(WHY):
                continue
            path = os.path.join(directory, name)
            entry = {"file": path, "kind": kind, "when": _when(name), "subject": "", "reason": ""}
            if kind == "dead letter":
                entry.update(_dead_letter_summary(path))
            else:
                entry["reason"] = _quarantine_reason(path)
            found.append(entry)
    return sorted(found, key=lambda e: (e["when"], e["file"]))


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
    try:
        text = _read_file(path + WHY, HEAD_BYTES, whole=False).decode("utf-8", "replace").strip()
    except (Corrupt, OSError):
        return "could not be read as a message"
    return text.split(" ", 1)[1] if " " in text else text


def _when(name: str) -> str:
    match = re.match(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)", name)
    return "{}-{}-{} {}:{}:{} UTC".format(*match.groups()) if match else ""


# ---- envelope ------------------------------------------------------------------------------------

def _envelope(sender: str, recipients: Sequence[str]) -> bytes:
    for address in [sender] + list(recipients):
        if not _plausible(address):
            raise ValueError(f"not an envelope address: {address!r}")
    lines = [FROM + b" " + _ascii(sender)] + [TO + b" " + _ascii(r) for r in recipients]
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


def _new_name() -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{stamp}-{time.time_ns() % 10**9:09d}-{os.getpid()}-{next(_serial)}{SUFFIX}"


# ---- the file operations (all spool I/O goes through these) --------------------------------------

def _names(directory: str) -> List[str]:
    """Entries of *directory*, sorted; none when it does not exist."""
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


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
