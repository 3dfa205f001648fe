# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mail a rendered document: the mail options, when to send, and delivery through the spool, like an MTA.

PRIVATE to the sysops.fleet collection. Pure standard library.

Serves the disk report, the fleet report and the watcher's alerts. One
delivery (``deliver``) holds the spool's lock and sends, over one SMTP
conversation bounded by ``smtp_timeout``, first the queued messages
(oldest first), then the new one. For each message the server's answer
decides, per recipient:

* accepted (any 2xx): done (a queued message leaves the queue once no
  recipient is left);
* 4xx (deferred): a copy addressed, envelope-wise, to exactly those
  recipients waits in the queue, so the others never get a second copy;
* 5xx (refused): a dead letter for those recipients, with the server's
  answer, in ``spool_dir/dead``; reported, never retried, and listed by
  every later report until someone removes it;
* not known (uncertain): the server received the whole message, then hung
  up, timed out or answered something that is neither 2xx, 4xx nor 5xx.
  It may have taken the message: the copy stays queued and goes again,
  as MTAs do, and the result says the recipients may get it twice.

A message that waits longer than the spool's lifetime (``spool_lifetime_days``,
5 days by default, counted from when it was first queued) is given up: a
dead letter with the last reason it was not delivered, reported like one.

A queued file that is no message (empty, corrupt, unreadable, not a
regular file) is quarantined (``spool_dir/quarantine``). So no message
can block the ones behind it. When the conversation itself ends (server
down, timeout, hang-up, TLS or login refused) everything not yet answered
stays queued and the new message joins the queue. A spool that cannot be
read, locked or written never stops the new message from going out: the
delivery warns, and fails only when the new message could be neither sent
nor spooled (the report is still in the module's result).

Run as root with a ``spool_dir`` another user controls (the watcher's),
root holds the conversation itself and sends only its new message; only
what it could not deliver is handed to that user (``_privilege.as_owner``,
bounded by ``OWNER_WAIT``) to queue or keep as a dead letter. That user's
queue is sent by that user's own runs, with their own settings: root's
password never reaches a process of that user's, and nothing that user
does (holding the lock, stopping or killing the worker) stops root's send.
Whatever comes back from that user's side is checked before root uses it.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from . import _html, _mail, _mail_spool, _numbers, _privilege, _text

SEND_MODES = ("auto", "always", "on_alert", "never")
SECURITY = _mail.SECURITY
DAY = 86400.0
# RFC 5321 §4.5.4.1: the give-up time "needs to be at least 4-5 days"; Postfix's
# maximal_queue_lifetime and sendmail's Timeout.queuereturn are 5 days, Exim's default retry rule 4.
DEFAULT_LIFETIME_DAYS = 5.0
MAX_LIFETIME_DAYS = 365.0

# The mail options of every module that mails a report, in AnsibleModule's
# argument_spec format (plain data: the core imports nothing from Ansible).
# Documented once, in plugins/doc_fragments/mail.py.
MAIL_ARGUMENT_SPEC = {
    "mail_to": {"type": "list", "elements": "str", "default": []},
    "mail_from": {"type": "str"},
    "smtp_host": {"type": "str", "default": "localhost"},
    "smtp_port": {"type": "int"},
    "smtp_security": {"type": "str", "default": "none", "choices": list(SECURITY)},
    "smtp_username": {"type": "str"},
    "smtp_password": {"type": "str", "no_log": True},
    "smtp_allow_plaintext_auth": {"type": "bool", "default": False},
    "smtp_validate_certs": {"type": "bool", "default": True},
    "smtp_ca_file": {"type": "path"},
    "smtp_timeout": {"type": "float", "default": 30.0},
    "spool_dir": {"type": "path"},
    "spool_lifetime_days": {"type": "float", "default": DEFAULT_LIFETIME_DAYS},
}
LISTED = 20  # undelivered messages a report lists one by one, and notices per kind
OWNER_WAIT = 10.0  # seconds root waits for a worker acting as the spool's owner (which that user can stop)
_NAME = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9]{9}-[0-9]{7}-[0-9]{6}\.eml\Z")  # what _mail_spool names a file
_WHEN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC\Z")


# ---- options -------------------------------------------------------------------------------------

@dataclass
class MailConfig:
    """Where and how a report is mailed, validated: built by ``config_from_options``."""

    host: str                                   # this host: the Message-ID's domain, the default sender's
    mail_to: List[Any] = field(default_factory=list)
    mail_from: Any = None
    subject: str = ""
    smtp: _mail.SmtpSettings = field(default_factory=_mail.SmtpSettings)
    send: str = "auto"
    spool_dir: str = ""
    spool_lifetime_days: float = DEFAULT_LIFETIME_DAYS

    @property
    def lifetime(self) -> float:
        """Seconds a queued message may wait before it is given up."""
        return self.spool_lifetime_days * DAY


def _get(options: Mapping[str, Any], name: str, default: Any = None) -> Any:
    value = options.get(name)
    return default if value is None else value


def config_from_options(options: Mapping[str, Any], host: Optional[str] = None,
                        default_subject: str = "") -> MailConfig:
    """Validate the mail options (named as the modules' options; missing or None = default).

    Raises MailConfigError naming the option and what is wrong, before
    anything is sent.
    """
    host = host or socket.gethostname() or "localhost"
    smtp = _mail.SmtpSettings(
        host=_get(options, "smtp_host", "localhost"), port=options.get("smtp_port"),
        security=_get(options, "smtp_security", "none"), username=options.get("smtp_username") or None,
        password=options.get("smtp_password") or None, timeout=_timeout(options.get("smtp_timeout")),
        validate_certs=bool(_get(options, "smtp_validate_certs", True)), ca_file=options.get("smtp_ca_file") or None,
        allow_plaintext_auth=bool(_get(options, "smtp_allow_plaintext_auth", False)), local_hostname=host).check()
    mail_to = _get(options, "mail_to", [])
    if isinstance(mail_to, str):
        raise _mail.MailConfigError(f"mail_to must be a list of addresses, got the string {mail_to!r}")
    config = MailConfig(
        host=host, mail_to=[_mail.parse_address(a, "mail_to") for a in mail_to],
        mail_from=_sender(options.get("mail_from"), host),
        subject=_mail.check_header(options.get("subject") or default_subject or f"Report from {host}", "subject"),
        smtp=smtp, send=_get(options, "send", "auto"),
        spool_dir=options.get("spool_dir") or _mail_spool.default_dir(),
        spool_lifetime_days=check_lifetime(options.get("spool_lifetime_days")))
    decide(config.send, config.mail_to, alerting=False)  # refuses send=always without mail_to now
    return config


def _timeout(value: Any) -> float:
    if value is None:
        return 30.0
    try:
        return _numbers.decimal_number(value, "smtp_timeout") if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise _mail.MailConfigError(f"smtp_timeout must be a number of seconds, got {value!r}") from None


def check_lifetime(value: Any) -> float:
    """``spool_lifetime_days`` as a number of days (None: the default); MailConfigError naming it otherwise."""
    if value is None:
        return DEFAULT_LIFETIME_DAYS
    try:
        days = _numbers.decimal_number(value, "spool_lifetime_days") if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        days = float("nan")
    if isinstance(value, bool) or not 0 < days <= MAX_LIFETIME_DAYS:  # NaN fails both comparisons
        raise _mail.MailConfigError(f"spool_lifetime_days must be a number of days, more than 0 and at most "
                                    f"{MAX_LIFETIME_DAYS:g}, got {value!r}")
    return days


def _sender(mail_from: Optional[str], host: str) -> Any:
    """The From address: as given, or user@host, which must then be a valid address too."""
    if mail_from:
        return _mail.parse_address(mail_from, "mail_from")
    default = f"{_user()}@{host}"
    try:
        return _mail.parse_address(default, "mail_from")
    except _mail.MailConfigError:
        raise _mail.MailConfigError(f"cannot make a sender address from this user and host name ({default!r} "
                                    f"is not a valid address); set mail_from") from None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root" if os.geteuid() == 0 else "nobody"


def decide(mode: str, recipients: Sequence[object], alerting: bool) -> Tuple[bool, str]:
    """Whether this run mails its report, and if not, why not."""
    if mode not in SEND_MODES:
        raise _mail.MailConfigError(f"send must be one of {', '.join(SEND_MODES)}, got {mode!r}")
    if mode == "always" and not recipients:
        raise _mail.MailConfigError("send=always needs mail_to: give at least one recipient")
    if mode == "on_alert" and not recipients:
        raise _mail.MailConfigError("send=on_alert needs mail_to: give at least one recipient")
    if mode == "never":
        return False, "send=never"
    if not recipients:
        return False, "mail_to is empty"
    if mode == "on_alert" and not alerting:
        return False, "send=on_alert and no filesystem is in warn or crit"
    return True, ""


# ---- one delivery --------------------------------------------------------------------------------

@dataclass
class Delivery:
    """What one delivery did: the new message, the queue, and what went wrong if anything."""

    sent: bool = False                          # the new message was accepted for at least one recipient
    spooled: Optional[str] = None               # where the new message (or its copy for deferred recipients) waits
    spool_sent: List[str] = field(default_factory=list)  # Message-IDs of queued messages delivered now
    pending: int = 0                            # messages left in the queue
    refused: Dict[str, str] = field(default_factory=dict)   # recipient -> 5xx answer (now a dead letter)
    deferred: Dict[str, str] = field(default_factory=dict)  # recipient -> 4xx answer (waits in the queue)
    uncertain: Dict[str, str] = field(default_factory=dict)  # recipient -> why the outcome is not known (queued)
    dead_letters: List[Dict[str, Any]] = field(default_factory=list)  # made by this delivery
    quarantined: List[Dict[str, str]] = field(default_factory=list)   # moved out of the queue by this delivery
    warnings: List[str] = field(default_factory=list)
    error: str = ""                             # why the new message (or the queue) did not go out

    @property
    def changed(self) -> bool:
        return self.sent or bool(self.spool_sent)


def deliver(raw: Optional[bytes], settings: _mail.SmtpSettings, spool_dir: str,
            lifetime: float = DEFAULT_LIFETIME_DAYS * DAY) -> Delivery:
    """Send the queue (oldest first), then *raw*, over one conversation; see the module docstring.

    With *raw* None only the queue is sent (no connection when it is
    empty). A queued message older than *lifetime* seconds that still
    does not go out becomes a dead letter. Never raises for mail or spool
    trouble: it is in ``error`` and ``warnings``. Run as root with a
    *spool_dir* another user controls, only *raw* is sent, by root, and the
    queue is left to its owner (``_deliver_beside``).
    """
    if _foreign(spool_dir):
        return _deliver_beside(raw, settings, spool_dir)
    return _deliver(raw, settings, spool_dir, lifetime)


def _foreign(spool_dir: str) -> bool:
    """Whether this is root and *spool_dir* is controlled by another user (or by nobody safely)."""
    if os.geteuid() != 0:
        return False
    try:
        return _privilege.trust_boundary(spool_dir) is not None
    except OSError:
        return True  # a directory others may write: root keeps out of it (``as_owner`` refuses it too)


def _deliver(raw: Optional[bytes], settings: _mail.SmtpSettings, spool_dir: str, lifetime: float) -> Delivery:
    run = _Run(settings, spool_dir, lifetime)
    try:
        with run.queue() as paths:
            for path in paths:
                if run.ended:
                    run.keep_unsent(path)
                else:
                    run.send_queued(path)
            if raw is not None:
                run.send_new(raw)
    finally:
        run.close()
    result = run.result
    if raw is not None and not result.sent:
        result.error = run.why_not_sent() + result.error
    elif run.ended and not result.error:
        result.error = run.ended
    result.pending = _mail_spool.count(spool_dir)
    return result


class _Run:
    """The state of one delivery: the conversation (opened when first needed) and the result so far."""

    def __init__(self, settings: _mail.SmtpSettings, spool_dir: str, lifetime: float = DEFAULT_LIFETIME_DAYS * DAY):
        self.settings = settings
        self.spool_dir = spool_dir
        self.lifetime = lifetime
        self.now = time.time()
        self.result = Delivery()
        self.conn: Optional[_mail.Conversation] = None
        self.ended = ""  # why the conversation ended early: nothing more is sent
        self.ended_before_new = False  # ... and that happened before the new message was tried
        self.last: Optional[_mail.Sent] = None  # the server's answer to the new message

    @contextmanager
    def queue(self) -> Iterator[List[str]]:
        """The queued files under the spool's lock, or none (with a warning) if the queue cannot be used."""
        spool = self.spool_dir
        if os.path.lexists(spool) and not os.path.isdir(spool):
            self.warn(f"spool_dir {spool} is not a directory: no message can be spooled there")
        if not os.path.isdir(spool):
            yield []
            return
        with ExitStack() as stack:
            problem = _mail_spool.unwritable(spool)
            if not problem:
                try:
                    stack.enter_context(_mail_spool.lock(spool, _mail_spool.LOCK_WAIT))
                except TimeoutError:
                    problem = (f"locked by another run for more than {_mail_spool.LOCK_WAIT:g}s "
                               f"(it sends the queue)")
                except OSError as exc:
                    problem = f"not lockable ({exc.strerror or exc})"
            paths: List[str] = []
            if not problem:
                try:
                    paths = _mail_spool.listing(spool)
                except OSError as exc:
                    problem = f"not readable ({exc.strerror or exc})"
            if problem:
                waiting = _mail_spool.count(spool)
                self.warn(f"spool_dir {spool} is {problem}: "
                          + (f"{waiting} queued message(s) were not sent this run" if waiting else
                             "queued messages (if any) were not sent this run")
                          + "; this run's message is mailed all the same")
            yield paths

    def warn(self, text: str) -> None:
        self.result.warnings.append(text)

    def send(self, sender: str, recipients: Sequence[str], message: bytes) -> Optional[_mail.Sent]:
        """The server's answer, or None when the conversation has ended (``ended`` says why)."""
        if self.ended:
            return None
        try:
            if self.conn is None:
                self.conn = _mail.connect(self.settings)
            sent = _mail.send(self.conn, self.settings, sender, recipients, message)
        except _mail.MailError as exc:
            self.ended = str(exc)
            self.close()
            return None
        if sent.ended:  # answered, and over: a hang-up after the message, a 421
            self.ended = sent.ended
            self.close()
        return sent

    def send_queued(self, path: str) -> None:
        try:
            item = _mail_spool.read(path)
        except _mail_spool.Corrupt as exc:
            self.quarantine(path, str(exc))
            return
        sent = self.send(item.sender, item.recipients, item.message)
        if sent is None:  # stays queued, all of it (or is given up, once too old)
            self.keep_waiting(item, {r: self.ended for r in item.recipients})
            return
        if sent.accepted:
            self.result.spool_sent.append(item.message_id or os.path.basename(path))
        self.result.deferred.update(sent.deferred)
        self.result.uncertain.update(sent.uncertain)
        waiting = {**sent.deferred, **sent.uncertain}
        if sent.refused and not self.bury(item.message, item.sender, sent.refused):
            waiting.update(sent.refused)  # no dead letter could be written: keep them queued rather than lose them
        self.keep_waiting(item, waiting, sent.accepted)

    def keep_unsent(self, path: str) -> None:
        """A queued message this run could not try (the conversation had ended): given up once too old."""
        try:
            since = _mail_spool.queued_since(path)
            if since is not None and self.now - since <= self.lifetime:
                return
            item = _mail_spool.read(path)
        except _mail_spool.Corrupt:
            return  # the next run that tries it quarantines it
        self.keep_waiting(item, {r: self.ended for r in item.recipients})

    def keep_waiting(self, item: _mail_spool.Queued, waiting: Dict[str, str], delivered: Sequence[str] = ()) -> None:
        """Leave *item* queued for the *waiting* recipients (recipient: why not yet), or give up on them.

        Given up once it has waited longer than the lifetime: a dead letter
        with the last reason each was not delivered. A message without its
        first queueing time gets it now.
        """
        try:
            if not waiting:
                _mail_spool.remove(item.path)
                return
            since = item.queued_since
            if since is not None and self.now - since > self.lifetime:
                if self.bury(item.message, item.sender, {r: self.gave_up(since, why) for r, why in waiting.items()},
                             expired=True):
                    _mail_spool.remove(item.path)
                    return
            if len(waiting) < len(item.recipients) or since is None:
                _mail_spool.keep_only(item, [r for r in item.recipients if r in waiting])
        except OSError as exc:
            problem = f"cannot be updated in the spool ({exc.strerror or exc})"
            self.warn(f"the spooled message {_text.printable(item.path)} was delivered to {', '.join(delivered)} but "
                      f"{problem}: they may get it again" if delivered else
                      f"the spooled message {_text.printable(item.path)} {problem}; it stays as it was")

    def gave_up(self, since: float, why: str) -> str:
        """The reason of a message given up: how long it waited, and the last reason it did not go out."""
        queued = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
        return (f"not delivered within spool_lifetime_days={self.lifetime / DAY:g} (queued since {queued}); "
                f"the last try: {_text.words(why, 2 * _mail.MAX_REPLY)}")

    def send_new(self, raw: bytes) -> None:
        sender, recipients = _mail.envelope(raw)
        if not recipients:
            self.result.error = "the message has no recipients in To or Cc"
            return
        self.ended_before_new = bool(self.ended)
        sent = self.send(sender, recipients, raw)
        self.last = sent
        if sent is None:
            self.spool(raw, sender, recipients)
            return
        self.result.sent = bool(sent.accepted)
        self.result.deferred.update(sent.deferred)
        self.result.uncertain.update(sent.uncertain)
        waiting = {**sent.deferred, **sent.uncertain}
        if sent.refused and not self.bury(raw, sender, sent.refused):
            waiting.update(sent.refused)  # queued rather than lost, as for a queued message
        if waiting:
            self.spool(raw, sender, [r for r in recipients if r in waiting])

    def spool(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        try:
            self.result.spooled = _mail_spool.add(self.spool_dir, raw, sender, recipients)
        except (OSError, ValueError) as exc:
            self.not_spooled(getattr(exc, "strerror", None) or str(exc))

    def not_spooled(self, detail: str) -> None:
        self.result.error += (f"; and the message could NOT be spooled to {self.spool_dir}: {detail}"
                              f" (fix spool_dir; the report is still in this run's output)")

    def bury(self, raw: bytes, sender: str, refused: Dict[str, str], expired: bool = False) -> bool:
        """A dead letter for the refused (or given up) recipients; False (and a warning) if it cannot be written."""
        if not expired:
            self.result.refused.update(refused)
        try:
            path = _mail_spool.bury(self.spool_dir, raw, sender, refused)
        except (OSError, ValueError) as exc:
            self.warn(f"{', '.join(refused)} {'were given up' if expired else 'refused the message for good'}, "
                      f"and it cannot be kept as a dead letter in {self.spool_dir}: "
                      f"{getattr(exc, 'strerror', None) or exc}")
            return False
        self.buried(path, raw, refused, expired)
        return True

    def buried(self, path: str, raw: bytes, refused: Dict[str, str], expired: bool) -> None:
        headers = _mail.headers(raw)
        self.result.dead_letters.append({
            "file": path, "message_id": str(headers.get("Message-ID", "")).strip() or None,
            "subject": " ".join(str(headers.get("Subject", "")).split()), "recipients": dict(refused),
            "expired": expired})

    def quarantine(self, path: str, reason: str) -> None:
        try:
            moved = _mail_spool.quarantine(self.spool_dir, path, reason)
        except OSError as exc:
            self.warn(f"the spool file {_text.printable(path)} {reason} and cannot be moved to quarantine "
                      f"({exc.strerror or exc}); it is skipped: remove it")
            return
        self.result.quarantined.append({"file": moved, "was": path, "reason": reason})

    def why_not_sent(self) -> str:
        """Why the new message reached nobody: the conversation's end, or every recipient's answer."""
        if self.ended and self.ended_before_new:
            return f"the conversation ended before this message was sent: {self.ended}"
        if self.ended and (self.last is None or self.last.uncertain):
            return self.ended
        sent = self.last
        if sent is None:
            return ""
        where = self.settings.where
        parts = []
        if sent.deferred:
            parts.append("temporarily (4xx; the message was spooled and the next run tries again): "
                         + "; ".join(f"{r}: {why}" for r, why in sent.deferred.items()))
        if sent.refused:
            parts.append("permanently (5xx; kept as a dead letter; check mail_to and mail_from): "
                         + "; ".join(f"{r}: {why}" for r, why in sent.refused.items()))
        return f"{where} refused every recipient " + ", and ".join(parts)

    def close(self) -> None:
        if self.conn is not None:
            _mail.close(self.conn)
            self.conn = None


# ---- root, and a spool another user controls -----------------------------------------------------

class _BesideRun(_Run):
    """Root's delivery of its new message, with the spool of another user: root sends, the owner keeps.

    What root could not deliver is not written at once but handed over in
    one worker (``hand_over``) after the conversation: root's send never
    waits on anything that user can stop.
    """

    def __init__(self, settings: _mail.SmtpSettings, spool_dir: str):
        super().__init__(settings, spool_dir)
        self.to_queue: Optional[Tuple[bytes, str, List[str]]] = None
        self.to_bury: Optional[Tuple[bytes, str, Dict[str, str]]] = None
        self.counted = False  # the owner's worker said how many messages wait there

    def spool(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        self.to_queue = (raw, sender, list(recipients))

    def bury(self, raw: bytes, sender: str, refused: Dict[str, str], expired: bool = False) -> bool:
        self.result.refused.update(refused)
        self.to_bury = (raw, sender, dict(refused))
        return True

    def hand_over(self) -> None:
        """Queue and bury, as the spool's owner and within ``OWNER_WAIT``, what root could not deliver."""
        try:
            done = _from_owner(_privilege.as_owner(self.spool_dir, _owner_side, self.spool_dir, self.to_queue,
                                                   self.to_bury, timeout=OWNER_WAIT), self.spool_dir)
        except OSError as exc:
            self.lost(_text.words(exc.strerror or str(exc), 300))
            return
        if done is None:
            self.lost("it sent back something else than what was asked for")
            return
        self.result.pending, self.counted = done["pending"], True
        self.result.spooled = done["spooled"]
        if done["spool_problem"]:
            self.not_spooled(done["spool_problem"])
        if self.to_bury and done["dead"]:
            self.buried(done["dead"], self.to_bury[0], self.to_bury[2], False)
        elif self.to_bury:
            self.not_buried(done["dead_problem"])

    def lost(self, problem: str) -> None:
        """The owner's side failed, maybe after it wrote: say what may not have been kept."""
        if self.to_queue:
            self.result.error += (f"; and whether the message was spooled to {self.spool_dir} is not known: the "
                                  f"worker acting as its owner failed ({problem}) (the report is still in this "
                                  f"run's output)")
        if self.to_bury:
            self.not_buried(f"the worker acting as its owner failed ({problem})")
        if not (self.to_queue or self.to_bury):
            self.warn(f"the messages waiting in spool_dir {self.spool_dir} cannot be counted: the worker acting "
                      f"as its owner failed ({problem})")

    def not_buried(self, problem: str) -> None:
        refused = ", ".join(self.to_bury[2]) if self.to_bury else ""
        self.warn(f"{refused} refused the message for good, and it cannot be kept as a dead letter in "
                  f"{self.spool_dir}: {problem}")


def _deliver_beside(raw: Optional[bytes], settings: _mail.SmtpSettings, spool_dir: str) -> Delivery:
    """Root's delivery with a spool_dir another user controls: root sends *raw*, that user keeps the rest.

    The conversation (and root's password) stays in root's process; the
    spool's owner is asked, in one bounded worker afterwards, only to queue
    what could not be delivered, to keep a dead letter, and to count the
    queue. That user's own queued messages are not sent here: root would
    send that user's files with its own credentials.
    """
    run = _BesideRun(settings, spool_dir)
    if raw is not None:
        try:
            run.send_new(raw)
        finally:
            run.close()
    run.hand_over()
    result = run.result
    if raw is not None and not result.sent:
        result.error = run.why_not_sent() + result.error
    queued = f"the {result.pending} message(s)" if run.counted else "the messages"
    result.warnings.append(
        f"spool_dir {spool_dir} is controlled by {_who(spool_dir)}, not root: root sent this run's message "
        f"itself and left {queued} queued there to their owner's runs (the watcher), which send them with "
        f"their own mail settings; give root a spool_dir of its own (the default, {_mail_spool.SYSTEM_SPOOL}) "
        f"to have root send its queue")
    return result


def _who(spool_dir: str) -> str:
    """The user that controls *spool_dir*, as words (uid, and name when it has one)."""
    try:
        owner = _privilege.trust_boundary(spool_dir)
    except OSError:
        return "users other than root (a directory others may write)"
    if owner is None:
        return "root"
    try:
        return f"uid {owner[0]} ({_text.printable(_privilege.user_entry(owner[0]).pw_name, 64)})"
    except OSError:
        return f"uid {owner[0]}"


def _owner_side(spool_dir: str, to_queue: Optional[Tuple[bytes, str, List[str]]],
                to_bury: Optional[Tuple[bytes, str, Dict[str, str]]]) -> Dict[str, Any]:
    """As the spool's owner: queue and bury what root hands over, count the queue; plain data back."""
    done: Dict[str, Any] = {"spooled": None, "spool_problem": "", "dead": None, "dead_problem": "", "pending": 0}
    if to_queue is not None:
        try:
            done["spooled"] = _mail_spool.add(spool_dir, *to_queue)
        except (OSError, ValueError) as exc:
            done["spool_problem"] = str(getattr(exc, "strerror", None) or exc)
    if to_bury is not None:
        try:
            done["dead"] = _mail_spool.bury(spool_dir, *to_bury)
        except (OSError, ValueError) as exc:
            done["dead_problem"] = str(getattr(exc, "strerror", None) or exc)
    done["pending"] = _mail_spool.count(spool_dir)
    return done


def _from_owner(done: Any, spool_dir: str) -> Optional[Dict[str, Any]]:
    """What ``_owner_side`` sent back, checked (types, sizes, where the files are); None if it is not that.

    The worker ran as another user, who can change what it sends: root
    takes only a count, two file names of the form ``_mail_spool`` gives,
    and two short problems, made one printable line each.
    """
    keys = {"spooled", "spool_problem", "dead", "dead_problem", "pending"}
    if not isinstance(done, dict) or set(done) != keys:
        return None
    pending = done["pending"]
    if type(pending) is not int or not 0 <= pending <= 10**9:  # pylint: disable=unidiomatic-typecheck
        return None
    spooled, dead = done["spooled"], done["dead"]
    if not (spooled is None or _spool_file(spooled, spool_dir)):
        return None
    if not (dead is None or _spool_file(dead, os.path.join(spool_dir, _mail_spool.DEAD))):
        return None
    problems = [done["spool_problem"], done["dead_problem"]]
    if not all(isinstance(p, str) and len(p) <= 4096 for p in problems):
        return None
    return {"pending": pending, "spooled": spooled, "dead": dead,
            "spool_problem": _text.words(problems[0], 300), "dead_problem": _text.words(problems[1], 300)}


def _spool_file(value: Any, directory: str) -> bool:
    """Whether *value* names a file that ``_mail_spool`` makes, right in *directory*."""
    return (isinstance(value, str) and len(value) <= 4096 + 64 and bool(_NAME.match(os.path.basename(value)))
            and os.path.normpath(os.path.dirname(value)) == os.path.normpath(directory))


def pending(spool_dir: str) -> int:
    """How many messages wait in *spool_dir*, counted as its owner within ``OWNER_WAIT``; 0 if not known."""
    try:
        count = _privilege.as_owner(spool_dir, _mail_spool.count, spool_dir, timeout=OWNER_WAIT)
    except OSError:
        return 0
    return count if type(count) is int and 0 <= count <= 10**9 else 0  # pylint: disable=unidiomatic-typecheck


# ---- a rendered document, as a module mails it ---------------------------------------------------

@dataclass
class Mailing:
    """What mailing one document did: the module's ``mail`` return value, changed, warnings, error."""

    mail: Dict[str, Any]
    changed: bool = False
    warnings: List[str] = field(default_factory=list)
    error: str = ""


def mail_document(config: MailConfig, text: str, html_body: str, alerting: bool, when: Optional[float] = None,
                  check_mode: bool = False, what: str = "the report", mailer: str = "sysops.fleet") -> Mailing:
    """Mail a document (text and HTML parts) as ``config.send`` says, queued messages first.

    Never raises for mail: a failure is in ``error`` (and the message in
    the spool), everything else worth knowing in ``warnings``.
    """
    wanted, reason = decide(config.send, config.mail_to, alerting=alerting)
    mail: Dict[str, Any] = {"sent": False, "recipients": [str(a) for a in config.mail_to], "message_id": None,
                            "spooled": None, "spool_sent": 0, "spool_pending": 0, "refused": {}, "deferred": {},
                            "uncertain": {}, "dead_letters": [], "quarantined": [], "reason": reason}
    mailing = Mailing(mail)
    if check_mode or config.send == "never" or not config.mail_to:
        mail["spool_pending"] = pending(config.spool_dir)
        if check_mode:
            mail["reason"] = "check mode: nothing sent" + (f" (would send to {len(config.mail_to)} recipient(s))"
                                                           if wanted else f" ({reason})")
        return mailing
    raw = None
    if wanted:
        message = _mail.build_message(config.mail_from, config.mail_to, config.subject, text, html_body,
                                      domain=config.host, when=when, mailer=mailer)
        raw = message.as_bytes(policy=_mail.POLICY)
        mail["message_id"] = message["Message-ID"]
    delivery = deliver(raw, config.smtp, config.spool_dir, config.lifetime)
    mail.update(sent=delivery.sent, spooled=delivery.spooled, spool_sent=len(delivery.spool_sent),
                spool_pending=delivery.pending, refused=delivery.refused, deferred=delivery.deferred,
                uncertain=delivery.uncertain, dead_letters=delivery.dead_letters, quarantined=delivery.quarantined,
                reason=delivery.error or reason or "sent")
    mailing.changed = delivery.changed
    mailing.warnings = delivery.warnings + notices(delivery, config.smtp.where, config.spool_dir)
    if delivery.error:
        mailing.error = _failure(delivery, config, what)
    return mailing


def notices(delivery: Delivery, where: str, spool_dir: str) -> List[str]:
    """One warning per thing an operator must know: deferred, uncertain, dead letters, quarantined files.

    Names and reasons from the spool are one printable line each, and at
    most ``LISTED`` of each kind are named.
    """
    out = []
    if delivery.deferred and delivery.sent:
        out.append(f"{where} temporarily refused " + _each(delivery.deferred)
                   + f": a copy for them waits in {spool_dir}, and the next run tries again")
    if delivery.uncertain:
        out.append(f"it is not known whether {where} took the message for "
                   + ", ".join(list(delivery.uncertain)[:LISTED])
                   + f": it received the whole message, then the conversation ended before its reply "
                   f"(mail.uncertain says how). The message stays queued in {spool_dir} and is sent again, so "
                   f"they may get it twice")
    for dead in delivery.dead_letters[:LISTED]:
        verb = "gave up on" if dead.get("expired") else "refused for good"
        out.append(f"{where} {verb} " + _each(dead["recipients"])
                   + f": the message {dead['message_id'] or ''} is a dead letter, {_text.printable(dead['file'])}; "
                   f"it is not retried (move it back into {spool_dir} to send it again)")
    for moved in delivery.quarantined[:LISTED]:
        out.append(f"the spool file {_text.printable(moved['was'])} {_text.words(moved['reason'], 300)}: moved to "
                   f"{_text.printable(moved['file'])} and not retried")
    more = max(0, len(delivery.dead_letters) - LISTED) + max(0, len(delivery.quarantined) - LISTED)
    if more:
        out.append(f"... and {more} more dead letter(s) or quarantined file(s) in {spool_dir}")
    return out


def _each(reasons: Mapping[str, str]) -> str:
    """Recipients with their reasons, at most ``LISTED`` of them, one line."""
    shown = [f"{r} ({_text.words(why, 2 * _mail.MAX_REPLY)})" for r, why in list(reasons.items())[:LISTED]]
    return "; ".join(shown) + (f"; and {len(reasons) - LISTED} more" if len(reasons) > LISTED else "")


def _failure(delivery: Delivery, config: MailConfig, what: str) -> str:
    """The module's failure message: what went wrong, and that nothing was lost (or what was)."""
    if delivery.uncertain and not delivery.sent and not delivery.deferred and not delivery.refused:
        text = f"it is not known whether {what} was delivered: {delivery.error}"
    else:
        text = f"{what} could not be mailed: {delivery.error}"
    if delivery.spooled:
        text += (f". The message was spooled to {delivery.spooled}; the next run that reaches the mail "
                 f"server sends the {delivery.pending} spooled message(s) first")
    elif delivery.dead_letters and not delivery.deferred:
        text += f". It was kept as a dead letter: {delivery.dead_letters[-1]['file']}"
    elif delivery.pending:
        text += f". {delivery.pending} message(s) stay in {config.spool_dir} for the next run"
    return text


# ---- what the next report says about undelivered mail --------------------------------------------

UNDELIVERED_COLUMNS = (_html.Column("When", numeric=True), _html.Column("Kind"), _html.Column("Message"),
                       _html.Column("Why"))
_ENTRY_KEYS = ("file", "kind", "when", "subject", "reason")


def undelivered_section(spool_dir: str) -> Tuple[str, str]:
    """The "Undelivered mail" section (text, HTML); empty when there is nothing to list.

    The spool is read by its owner (``_privilege.as_owner``, within
    ``OWNER_WAIT``); what comes back is checked and every name, subject
    and reason shown as one printable line: the files are that user's to
    write.
    """
    try:
        listing = _privilege.as_owner(spool_dir, _undelivered_listing, spool_dir, timeout=OWNER_WAIT)
    except OSError as exc:
        return _unlisted(spool_dir, exc.strerror or str(exc))
    checked = _checked_listing(listing)
    if checked is None:
        return _unlisted(spool_dir, "its owner's answer was not a listing")
    total, entries = checked
    return _undelivered(spool_dir, total, entries) if total else ("", "")


def _undelivered_listing(spool_dir: str) -> Dict[str, Any]:
    """As the spool's owner: how many are undelivered, and the newest ``LISTED`` of them."""
    total, entries = _mail_spool.summary(spool_dir, LISTED)
    return {"total": total, "entries": entries}


def _checked_listing(listing: Any) -> Optional[Tuple[int, List[Dict[str, str]]]]:
    """``_undelivered_listing``'s answer if it is one (types, sizes, kinds); None otherwise."""
    if not isinstance(listing, dict) or set(listing) != {"total", "entries"}:
        return None
    total, entries = listing["total"], listing["entries"]
    if type(total) is not int or not 0 <= total <= 10**9:  # pylint: disable=unidiomatic-typecheck
        return None
    if not isinstance(entries, list) or len(entries) > min(total, LISTED):
        return None
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != set(_ENTRY_KEYS):
            return None
        if not all(isinstance(entry[k], str) and len(entry[k]) <= 8192 for k in _ENTRY_KEYS):
            return None
        if entry["kind"] not in ("dead letter", "quarantined"):
            return None
    return total, entries


def _unlisted(spool_dir: str, why: str) -> Tuple[str, str]:
    line = f"Undelivered mail: cannot be listed ({_text.words(why, 300)}); see {_text.printable(spool_dir)}"
    return line + "\n", _html.paragraph(line, muted=True)


def _shown(entry: Mapping[str, str]) -> Tuple[str, str, str, str]:
    """One listed entry as (when, kind, message, why): each one printable line, bounded."""
    when = entry["when"] if _WHEN.match(entry["when"]) else "?"
    what = (f'"{_text.words(entry["subject"], 200)}"' if entry["subject"].strip()
            else _text.printable(os.path.basename(entry["file"]), 120))
    return when, entry["kind"], what, _text.words(entry["reason"], 400)


def _undelivered(spool_dir: str, total: int, entries: List[Dict[str, str]]) -> Tuple[str, str]:
    """The section (text, HTML) listing *entries*, the newest of *total* dead letters and quarantined files."""
    shown = [_shown(e) for e in entries]
    more = total - len(shown)
    spool = _text.printable(spool_dir)
    why = (f"refused for good by the server, given up after spool_lifetime_days, or unreadable; never retried; "
           f"in {os.path.join(spool, _mail_spool.DEAD)} and {os.path.join(spool, _mail_spool.QUARANTINE)}")
    head = f"Undelivered mail ({total}: {why}):"
    tail = (f"Move a dead letter back into {spool} to send it again, or delete it; "
            f"this list shows them until they are gone.")
    text = "\n".join([head] + [f"  {when}  {kind}  {what}: {reason}" for when, kind, what, reason in shown]
                     + ([f"  ... and {more} more"] if more else []) + [tail]) + "\n"
    rows = [_html.Row(list(row)) for row in shown]
    page = (_html.heading(f"Undelivered mail ({total})") + _html.paragraph(why[0].upper() + why[1:] + ".")
            + _html.table(UNDELIVERED_COLUMNS, rows)
            + (_html.paragraph(f"... and {more} more", muted=True) if more else "") + _html.paragraph(tail))
    return text, page
