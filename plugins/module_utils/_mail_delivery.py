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

* accepted: done (a queued message leaves the queue once no recipient is left);
* 4xx (deferred): a copy addressed, envelope-wise, to exactly those
  recipients waits in the queue, so the others never get a second copy;
* 5xx (refused): a dead letter for those recipients, with the server's
  answer, in ``spool_dir/dead``; reported, never retried, and listed by
  every later report until someone removes it.

A queued file that is no message (empty, corrupt, unreadable, not a
regular file) is quarantined (``spool_dir/quarantine``). So no message
can block the ones behind it. When the conversation itself ends (server
down, timeout, hang-up, TLS or login refused) everything not yet answered
stays queued and the new message joins the queue. A spool that cannot be
read, locked or written never stops the new message from going out: the
delivery warns, and fails only when the new message could be neither sent
nor spooled (the report is still in the module's result).
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import socket
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from . import _html, _mail, _mail_spool, _privilege

SEND_MODES = ("auto", "always", "on_alert", "never")
SECURITY = _mail.SECURITY

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
}
LISTED = 20  # undelivered messages a report lists one by one


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
        spool_dir=options.get("spool_dir") or _mail_spool.default_dir())
    decide(config.send, config.mail_to, alerting=False)  # refuses send=always without mail_to now
    return config


def _timeout(value: Any) -> float:
    if value is None:
        return 30.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _mail.MailConfigError(f"smtp_timeout must be a number of seconds, got {value!r}") from None


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
    dead_letters: List[Dict[str, Any]] = field(default_factory=list)  # made by this delivery
    quarantined: List[Dict[str, str]] = field(default_factory=list)   # moved out of the queue by this delivery
    warnings: List[str] = field(default_factory=list)
    error: str = ""                             # why the new message (or the queue) did not go out

    @property
    def changed(self) -> bool:
        return self.sent or bool(self.spool_sent)


def deliver(raw: Optional[bytes], settings: _mail.SmtpSettings, spool_dir: str) -> Delivery:
    """Send the queue (oldest first), then *raw*, over one conversation; see the module docstring.

    With *raw* None only the queue is sent (no connection when it is
    empty). Never raises for mail or spool trouble: it is in ``error``
    and ``warnings``. Run as root on another user's spool (the watcher's,
    from a module with become), the whole delivery is done by that user
    (``_privilege.as_owner``): root never reads, locks, moves or writes a
    spool file that user could have swapped for a link, and whatever it
    queues stays the daemon's to read and send.
    """
    try:
        done = _privilege.as_owner(spool_dir, lambda: dataclasses.asdict(_deliver(raw, settings, spool_dir)))
    except OSError as exc:
        return Delivery(error=f"cannot work on spool_dir {spool_dir} as its owner: {exc.strerror or exc}")
    return Delivery(**done)


def _deliver(raw: Optional[bytes], settings: _mail.SmtpSettings, spool_dir: str) -> Delivery:
    run = _Run(settings, spool_dir)
    try:
        with run.queue() as paths:
            for path in paths:
                if run.ended:
                    break
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

    def __init__(self, settings: _mail.SmtpSettings, spool_dir: str):
        self.settings = settings
        self.spool_dir = spool_dir
        self.result = Delivery()
        self.conn: Optional[_mail.Conversation] = None
        self.ended = ""  # why the conversation ended early: nothing more is sent
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
            return _mail.send(self.conn, self.settings, sender, recipients, message)
        except _mail.MailError as exc:
            self.ended = str(exc)
            self.close()
            return None

    def send_queued(self, path: str) -> None:
        try:
            item = _mail_spool.read(path)
        except _mail_spool.Corrupt as exc:
            self.quarantine(path, str(exc))
            return
        sent = self.send(item.sender, item.recipients, item.message)
        if sent is None:
            return  # stays queued, all of it
        if sent.accepted:
            self.result.spool_sent.append(item.message_id or os.path.basename(path))
        left = dict(sent.deferred)
        if sent.refused and not self.bury(item.message, item.sender, sent.refused):
            left.update(sent.refused)  # no dead letter could be written: keep them queued rather than lose them
        self.result.deferred.update(sent.deferred)
        try:
            if not left:
                _mail_spool.remove(path)
            elif len(left) < len(item.recipients):
                _mail_spool.keep_only(item, [r for r in item.recipients if r in left])
        except OSError as exc:
            self.warn(f"the spooled message {path} was delivered to {', '.join(sent.accepted) or 'nobody'} but "
                      f"cannot be updated in the spool ({exc.strerror or exc}): they may get it again")

    def send_new(self, raw: bytes) -> None:
        sender, recipients = _mail.envelope(raw)
        if not recipients:
            self.result.error = "the message has no recipients in To or Cc"
            return
        sent = self.send(sender, recipients, raw)
        self.last = sent
        if sent is None:
            self.spool(raw, sender, recipients)
            return
        self.result.sent = bool(sent.accepted)
        left = dict(sent.deferred)
        if sent.refused and not self.bury(raw, sender, sent.refused):
            left.update(sent.refused)  # queued rather than lost, as for a queued message
        self.result.deferred.update(sent.deferred)
        if left:
            self.spool(raw, sender, [r for r in recipients if r in left])

    def spool(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        try:
            self.result.spooled = _mail_spool.add(self.spool_dir, raw, sender, recipients)
        except (OSError, ValueError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc)
            self.result.error += (f"; and the message could NOT be spooled to {self.spool_dir}: {detail}"
                                  f" (fix spool_dir; the report is still in this run's output)")

    def bury(self, raw: bytes, sender: str, refused: Dict[str, str]) -> bool:
        """A dead letter for the refused recipients; False (and a warning) if it cannot be written."""
        self.result.refused.update(refused)
        try:
            path = _mail_spool.bury(self.spool_dir, raw, sender, refused)
        except (OSError, ValueError) as exc:
            self.warn(f"{', '.join(refused)} refused the message for good, and it cannot be kept as a dead "
                      f"letter in {self.spool_dir}: {getattr(exc, 'strerror', None) or exc}")
            return False
        headers = _mail.headers(raw)
        self.result.dead_letters.append({
            "file": path, "message_id": str(headers.get("Message-ID", "")).strip() or None,
            "subject": " ".join(str(headers.get("Subject", "")).split()), "recipients": dict(refused)})
        return True

    def quarantine(self, path: str, reason: str) -> None:
        try:
            moved = _mail_spool.quarantine(self.spool_dir, path, reason)
        except OSError as exc:
            self.warn(f"the spool file {path} {reason} and cannot be moved to quarantine "
                      f"({exc.strerror or exc}); it is skipped: remove it")
            return
        self.result.quarantined.append({"file": moved, "was": path, "reason": reason})

    def why_not_sent(self) -> str:
        """Why the new message reached nobody: the conversation's end, or every recipient's answer."""
        if self.ended:
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
                            "dead_letters": [], "quarantined": [], "reason": reason}
    mailing = Mailing(mail)
    if check_mode or config.send == "never" or not config.mail_to:
        mail["spool_pending"] = _mail_spool.count(config.spool_dir)
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
    delivery = deliver(raw, config.smtp, config.spool_dir)
    mail.update(sent=delivery.sent, spooled=delivery.spooled, spool_sent=len(delivery.spool_sent),
                spool_pending=delivery.pending, refused=delivery.refused, deferred=delivery.deferred,
                dead_letters=delivery.dead_letters, quarantined=delivery.quarantined,
                reason=delivery.error or reason or "sent")
    mailing.changed = delivery.changed
    mailing.warnings = delivery.warnings + notices(delivery, config.smtp.where, config.spool_dir)
    if delivery.error:
        mailing.error = _failure(delivery, config, what)
    return mailing


def notices(delivery: Delivery, where: str, spool_dir: str) -> List[str]:
    """One warning per thing an operator must know: recipients deferred, dead letters, quarantined files."""
    out = []
    if delivery.deferred and delivery.sent:
        out.append(f"{where} temporarily refused " + "; ".join(f"{r} ({why})" for r, why in delivery.deferred.items())
                   + f": a copy for them waits in {spool_dir}, and the next run tries again")
    for dead in delivery.dead_letters:
        out.append(f"{where} refused for good " + "; ".join(f"{r} ({why})" for r, why in dead["recipients"].items())
                   + f": the message {dead['message_id'] or ''} is a dead letter, {dead['file']}; it is not "
                   f"retried (move it back into {spool_dir} to send it again)")
    for moved in delivery.quarantined:
        out.append(f"the spool file {moved['was']} {moved['reason']}: moved to {moved['file']} and not retried")
    return out


def _failure(delivery: Delivery, config: MailConfig, what: str) -> str:
    """The module's failure message: what went wrong, and that nothing was lost (or what was)."""
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

def undelivered_section(spool_dir: str) -> Tuple[str, str]:
    """The "Undelivered mail" section (text, HTML), read as the spool's owner (see ``deliver``)."""
    try:
        text, page = _privilege.as_owner(spool_dir, _undelivered_section, spool_dir)
    except OSError:
        return "", ""
    return text, page


UNDELIVERED_COLUMNS = (_html.Column("When", numeric=True), _html.Column("Kind"), _html.Column("Message"),
                       _html.Column("Why"))


def _what(entry: Mapping[str, str]) -> str:
    """A listed message: its subject in quotes, or the file's name when it has none."""
    return f'"{entry["subject"]}"' if entry["subject"] else os.path.basename(entry["file"])


def _undelivered_section(spool_dir: str) -> Tuple[str, str]:
    """A report section (text, HTML) listing dead letters and quarantined files; empty when there are none."""
    entries = _mail_spool.undelivered(spool_dir)
    if not entries:
        return "", ""
    shown = entries[-LISTED:]
    more = len(entries) - len(shown)
    lines = [f"{e['when'] or '?'}  {e['kind']}  {_what(e)}: {e['reason']}" for e in shown]
    why = (f"refused for good by the server, or unreadable; never retried; "
           f"in {os.path.join(spool_dir, _mail_spool.DEAD)} and {os.path.join(spool_dir, _mail_spool.QUARANTINE)}")
    head = f"Undelivered mail ({len(entries)}: {why}):"
    tail = (f"Move a dead letter back into {spool_dir} to send it again, or delete it; "
            f"this list shows them until they are gone.")
    text = "\n".join([head] + [f"  {line}" for line in lines]
                     + ([f"  ... and {more} more"] if more else []) + [tail]) + "\n"
    rows = [_html.Row([e["when"] or "?", e["kind"], _what(e), e["reason"]]) for e in shown]
    page = (_html.heading(f"Undelivered mail ({len(entries)})") + _html.paragraph(why[0].upper() + why[1:] + ".")
            + _html.table(UNDELIVERED_COLUMNS, rows)
            + (_html.paragraph(f"... and {more} more", muted=True) if more else "") + _html.paragraph(tail))
    return text, page
