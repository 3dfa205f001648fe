# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mail a report: build the message, send it over SMTP, spool it when that fails.

PRIVATE to the sysops.fleet collection. Pure standard library.

* Messages are built with the ``email`` package (multipart text + HTML,
  Date, Message-ID), which refuses line breaks in headers, so no header
  can be injected through a subject or an address.
* TLS is verified by default (``ssl.create_default_context()``) for both
  ``ssl`` and ``starttls``; ``starttls`` never falls back to plain text;
  a password is refused over an unencrypted connection unless
  ``allow_plaintext_auth`` says otherwise.
* Nothing is lost: a message that cannot be sent is written, complete, to
  the spool directory, and the next delivery sends the spooled messages
  first, oldest first, over the same connection.
"""

from __future__ import annotations

import dataclasses
import os
import smtplib
import socket
import ssl
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email import policy as email_policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from . import _files, _privilege

SECURITY = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
SEND_MODES = ("auto", "always", "on_alert", "never")

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
SYSTEM_SPOOL = "/var/lib/sysops-fleet/spool"
USER_SPOOL = os.path.join("sysops-fleet", "spool")  # under $XDG_STATE_HOME or ~/.local/state
SPOOL_SUFFIX = ".eml"
LOCK_WAIT = 60.0
# 7bit: non-ASCII bodies are quoted-printable, so any relay accepts the message.
POLICY = email_policy.SMTP.clone(cte_type="7bit")
_BAD_HEADER_CHARS = ("\r", "\n", "\0")


class MailError(Exception):
    """Mail could not be sent (or spooled); the message says why and what to do."""


class MailConfigError(MailError, ValueError):
    """A mail option is invalid; nothing was sent."""


def parse_address(value: str, name: str) -> Address:
    """One mail address (``user@example.com`` or ``Name <user@example.com>``), validated."""
    if not isinstance(value, str) or not value.strip() or any(c in value for c in _BAD_HEADER_CHARS):
        raise MailConfigError(f"{name}: {value!r} is not a mail address (line breaks and empty values are refused)")
    if len(getaddresses([value])) != 1:
        raise MailConfigError(f"{name}: {value!r} holds more than one address; give one address per list entry")
    display, spec = parseaddr(value)
    raw = value[value.rfind("<") + 1:value.rfind(">")] if "<" in value else value
    if raw.strip() != spec:  # parseaddr quietly glues "a@bad host" into "a@badhost"
        spec = ""
    address, detail = None, ""
    try:
        address = Address(display_name=display, addr_spec=spec) if spec else None
    except (ValueError, IndexError, HeaderParseError) as exc:
        detail = f" ({exc})"
    if address is None or not address.username or not address.domain or " " in address.domain:
        raise MailConfigError(f"{name}: {value!r} is not a mail address: expected user@example.com "
                              f"or 'Name <user@example.com>'{detail}")
    return address


def check_header(value: str, name: str) -> str:
    if any(c in value for c in _BAD_HEADER_CHARS):
        raise MailConfigError(f"{name} may not contain line breaks or NUL characters: {value!r}")
    return value


@dataclass
class SmtpSettings:
    """How to reach the mail server; ``check()`` refuses unsafe or impossible combinations."""

    host: str = "localhost"
    port: Optional[int] = None
    security: str = "none"
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    timeout: float = 30.0
    validate_certs: bool = True
    ca_file: Optional[str] = None
    allow_plaintext_auth: bool = False
    local_hostname: Optional[str] = None

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.security, 25)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.effective_port}"

    def check(self) -> "SmtpSettings":
        if self.security not in SECURITY:
            raise MailConfigError(f"smtp_security must be one of {', '.join(SECURITY)}, got {self.security!r}")
        host = self.host or ""
        if not host or len(host) > 253 or any(c.isspace() or c in "/@,;<>\\" for c in host) or "\0" in host:
            raise MailConfigError(f"smtp_host must be a host name or an IP address, got {self.host!r}")
        if self.port is not None and (isinstance(self.port, bool) or not 1 <= int(self.port) <= 65535):
            raise MailConfigError(f"smtp_port must be between 1 and 65535, got {self.port!r}")
        if not 0 < float(self.timeout) <= 3600:
            raise MailConfigError(f"smtp_timeout must be more than 0 and at most 3600 seconds, got {self.timeout!r}")
        if bool(self.username) != bool(self.password):
            raise MailConfigError("smtp_username and smtp_password must be given together")
        if self.username and self.security == "none" and not self.allow_plaintext_auth:
            raise MailConfigError(
                "refusing to send smtp_password over an unencrypted connection (smtp_security=none): "
                "use smtp_security=starttls or ssl, or set smtp_allow_plaintext_auth=true if the path "
                "to the server is trusted")
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise MailConfigError(f"smtp_ca_file {self.ca_file!r} does not exist or is not a file")
        return self


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """A verifying client context; only an explicit ``validate_certs=False`` turns checks off."""
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    if not settings.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def build_message(sender: Address, recipients: Sequence[Address], subject: str, text: str,
                  html_body: str, domain: str, when: Optional[float] = None) -> EmailMessage:
    """A multipart/alternative message: plain table first, HTML second (clients show the last they can)."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = list(recipients)
    msg["Subject"] = check_header(subject, "subject")
    msg["Date"] = formatdate(when, localtime=True)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-Mailer"] = "sysops.fleet disk_report"
    msg.set_content(text)
    msg.add_alternative(html_body, subtype="html")
    return msg


def envelope(raw: bytes) -> Tuple[str, List[str]]:
    """The envelope sender and recipients of a flattened message, from its own headers."""
    headers = BytesHeaderParser(policy=email_policy.compat32).parsebytes(raw)
    sender = parseaddr(str(headers.get("From", "")))[1]
    fields = [str(v) for v in headers.get_all("To", []) + headers.get_all("Cc", [])]
    recipients = [pair[1] for pair in getaddresses(fields) if pair[1]]
    return sender, recipients


def message_id(raw: bytes) -> str:
    return str(BytesHeaderParser(policy=email_policy.compat32).parsebytes(raw).get("Message-ID", "")).strip()


# ---- spool ---------------------------------------------------------------------------------------

def default_spool_dir(euid: Optional[int] = None, environ: Optional[Dict[str, str]] = None) -> str:
    """``/var/lib/sysops-fleet/spool`` for root, else ``$XDG_STATE_HOME`` (``~/.local/state``)/sysops-fleet/spool."""
    euid = os.geteuid() if euid is None else euid
    environ = os.environ if environ is None else environ
    if euid == 0:
        return SYSTEM_SPOOL
    state = environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, USER_SPOOL)


def spool_write(spool_dir: str, raw: bytes) -> str:
    """Write a complete message atomically (temp file, fsync, rename); returns its path.

    Names sort oldest first. Directory 0700 and files 0600: a report names
    hosts and mount points.
    """
    os.makedirs(spool_dir, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=spool_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        final = os.path.join(spool_dir, f"{stamp}-{time.time_ns() % 10**9:09d}-{os.getpid()}{SPOOL_SUFFIX}")
        os.replace(tmp, final)
    except BaseException:
        _unlink(tmp)
        raise
    _fsync_dir(spool_dir)
    return final


def spooled(spool_dir: str) -> List[str]:
    """Spooled message files, oldest first; none when the directory does not exist."""
    try:
        names = os.listdir(spool_dir)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise MailError(f"cannot read spool_dir {spool_dir}: {exc.strerror}") from exc
    return [os.path.join(spool_dir, n) for n in sorted(names) if n.endswith(SPOOL_SUFFIX) and not n.startswith(".")]


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def spool_lock(spool_dir: str, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the spool's lock, so a cron run and an Ansible run never send one spooled message twice."""
    if not os.path.isdir(spool_dir):
        yield  # nothing spooled, nothing to share
        return
    with ExitStack() as stack:
        try:
            stack.enter_context(_files.locked(os.path.join(spool_dir, ".lock"), wait))
        except TimeoutError:
            raise MailError(f"another run holds the lock of spool_dir {spool_dir} for more than "
                            f"{wait:g}s; try again later") from None
        yield


# ---- SMTP ----------------------------------------------------------------------------------------

def connect(settings: SmtpSettings) -> smtplib.SMTP:
    """An SMTP session, encrypted as asked and logged in; raises MailError with the reason."""
    local = settings.local_hostname or socket.gethostname() or "localhost"  # never getfqdn(): DNS may hang
    try:
        if settings.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.effective_port, local_hostname=local,
                                                  timeout=settings.timeout, context=tls_context(settings))
        else:
            conn = smtplib.SMTP(settings.host, settings.effective_port, local_hostname=local, timeout=settings.timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(explain(exc, settings)) from exc
    try:
        conn.ehlo_or_helo_if_needed()
        if settings.security == "starttls":
            if not conn.has_extn("starttls"):
                raise MailError(f"{settings.where} does not offer STARTTLS and smtp_security=starttls: refusing "
                                f"to send in plain text. Enable TLS on the server, or use smtp_security=ssl "
                                f"(port 465) if it speaks implicit TLS")
            conn.starttls(context=tls_context(settings))
            conn.ehlo()
        if settings.username:
            if not conn.has_extn("auth"):
                raise MailError(f"{settings.where} does not offer AUTH, so smtp_username cannot log in; "
                                f"remove smtp_username/smtp_password or check the server's settings")
            conn.login(settings.username, settings.password or "")
    except MailError:
        _close(conn)
        raise
    except (OSError, smtplib.SMTPException) as exc:
        _close(conn)
        raise MailError(explain(exc, settings)) from exc
    return conn


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()


def explain(exc: BaseException, settings: SmtpSettings) -> str:
    """A message that says what went wrong with the mail server and what to do about it."""
    where = settings.where
    if isinstance(exc, (socket.timeout, TimeoutError)) or isinstance(exc.__context__, (socket.timeout, TimeoutError)):
        return f"no answer from {where} within smtp_timeout={settings.timeout:g}s"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (f"{where} refused the login of {settings.username!r}: {_reply(exc)}; "
                f"check smtp_username and smtp_password")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
        return f"{where} refused every recipient ({refused}); check mail_to"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"{where} refused the sender {exc.sender!r}: {_reply(exc)}; check mail_from"
    if isinstance(exc, smtplib.SMTPDataError):
        kind = "temporarily" if 400 <= exc.smtp_code < 500 else "permanently"
        return f"{where} {kind} refused the message: {_reply(exc)}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{where}: {exc}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{where} closed the connection unexpectedly ({exc or 'no reason given'}); is it an SMTP server?"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{where} answered {_reply(exc)}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the TLS certificate of {where} could not be verified ({exc.verify_message}); give its CA in "
                f"smtp_ca_file, or set smtp_validate_certs=false to skip verification (not recommended)")
    if isinstance(exc, ssl.SSLError):
        return (f"TLS with {where} failed ({exc.reason or exc}); check that smtp_security matches the port "
                f"(465 is usually ssl, 587 starttls)")
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve smtp_host {settings.host!r}: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {where}: connection refused (is the mail server running and listening there?)"
    if isinstance(exc, OSError):
        return f"cannot talk to {where}: {exc.strerror or exc}"
    return f"{where}: {exc}"


def _text(message) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}".strip()


def send_raw(conn: smtplib.SMTP, raw: bytes, settings: SmtpSettings) -> Dict[str, str]:
    """Send one flattened message; returns the recipients refused while others accepted it."""
    sender, recipients = envelope(raw)
    if not recipients:
        raise MailError("the message has no recipients in To or Cc")
    try:
        refused = conn.sendmail(sender, recipients, raw)
    except (OSError, smtplib.SMTPException) as exc:
        try:
            conn.rset()  # leave the session usable for the next spooled message's error report
        except (OSError, smtplib.SMTPException):
            pass
        raise MailError(explain(exc, settings)) from exc
    return {rcpt: f"{code} {_text(msg)}" for rcpt, (code, msg) in refused.items()}


# ---- delivery ------------------------------------------------------------------------------------

@dataclass
class Delivery:
    """What one delivery did: the new message, the spool, and the error if any."""

    sent: bool = False                          # the new message went out
    spooled: Optional[str] = None               # where the new message was spooled after a failure
    spool_sent: List[str] = field(default_factory=list)  # Message-IDs of spooled messages delivered now
    pending: int = 0                            # messages left in the spool
    refused: Dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def changed(self) -> bool:
        return self.sent or bool(self.spool_sent)


def deliver(raw: Optional[bytes], settings: SmtpSettings, spool_dir: str) -> Delivery:
    """Send spooled messages (oldest first), then *raw*, over one connection.

    On any failure the new message is spooled and ``error`` says why;
    spooled messages that went out are removed, the rest stay. With
    *raw* None only the spool is delivered (and nothing is done when it
    is empty). Run as root on another user's spool (the watcher's, from a
    module with become), the whole delivery is done by that user
    (``_privilege.as_owner``): root never reads, locks or writes a spool
    file that user could have swapped for a link, and what it spools
    stays readable by the daemon.
    """
    try:
        done = _privilege.as_owner(spool_dir, lambda: dataclasses.asdict(_deliver(raw, settings, spool_dir)))
    except OSError as exc:
        return Delivery(error=f"cannot work on spool_dir {spool_dir}: {exc.strerror or exc}")
    return Delivery(**done)


def _deliver(raw: Optional[bytes], settings: SmtpSettings, spool_dir: str) -> Delivery:
    result = Delivery()
    try:
        with spool_lock(spool_dir):
            queue = spooled(spool_dir)
            if queue or raw is not None:
                _send_all(queue, raw, settings, result)
    except MailError as exc:
        result.error = str(exc)
    if result.error and raw is not None and not result.sent:
        try:
            result.spooled = spool_write(spool_dir, raw)
        except OSError as exc:
            result.error += (f"; and the message could NOT be spooled to {spool_dir}: {exc.strerror or exc}"
                             f" (fix spool_dir; the report is still in this run's output)")
    try:
        result.pending = len(spooled(spool_dir))
    except MailError:
        pass
    return result


def _send_all(queue: Sequence[str], raw: Optional[bytes], settings: SmtpSettings, result: Delivery) -> None:
    conn = connect(settings)
    try:
        for path in queue:
            try:
                old = _files.read_bytes(path)
            except OSError as exc:
                raise MailError(f"cannot read the spooled message {path}: {exc.strerror or exc}") from exc
            refused = send_raw(conn, old, settings)
            _unlink(path)
            result.spool_sent.append(message_id(old) or os.path.basename(path))
            result.refused.update(refused)
        if raw is not None:
            result.refused.update(send_raw(conn, raw, settings))
            result.sent = True
    except MailError as exc:
        done = len(result.spool_sent)
        raise MailError(str(exc) + (f" (after {done} spooled message(s) went out)" if done else "")) from exc
    finally:
        _close(conn)


def decide(mode: str, recipients: Sequence[object], alerting: bool) -> Tuple[bool, str]:
    """Whether this run mails its report, and if not, why not."""
    if mode not in SEND_MODES:
        raise MailConfigError(f"send must be one of {', '.join(SEND_MODES)}, got {mode!r}")
    if mode == "always" and not recipients:
        raise MailConfigError("send=always needs mail_to: give at least one recipient")
    if mode == "on_alert" and not recipients:
        raise MailConfigError("send=on_alert needs mail_to: give at least one recipient")
    if mode == "never":
        return False, "send=never"
    if not recipients:
        return False, "mail_to is empty"
    if mode == "on_alert" and not alerting:
        return False, "send=on_alert and no filesystem is in warn or crit"
    return True, ""
