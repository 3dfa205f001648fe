# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mail: build a message, and talk SMTP with one server, under one deadline.

PRIVATE to the sysops.fleet collection. Pure standard library.

* Messages are built with the ``email`` package (multipart text + HTML,
  Date, Message-ID). Headers are checked first: every line separator
  ``str.splitlines`` knows (``\u2028``, ``\x0b``, ``\x85``...) and
  control characters are refused with the option named, so no header can
  be injected through a subject or an address.
* TLS is verified by default (``ssl.create_default_context()``) for both
  ``ssl`` and ``starttls``; ``starttls`` never falls back to plain text;
  a password is refused over an unencrypted connection unless
  ``allow_plaintext_auth`` says otherwise.
* ``smtp_timeout`` bounds the whole conversation, from name resolution to
  QUIT: before every read and write the socket's timeout is shrunk to the
  time left, so a server that trickles its greeting a byte a second cannot
  hold a task (smtplib's own timeout is per read). No signals: modules run
  in threads under mitogen.
* Every reply is bounded (``read_reply``): at most ``MAX_REPLY_LINES``
  lines and ``MAX_REPLY_BYTES`` bytes, each line a reply line as RFC 5321
  §4.2 writes it (three digits, the same on every line). smtplib bounds
  only each line, so a greeting of ``250-`` lines that never ends grew
  the client's memory without limit. A server that breaks a bound ends
  the conversation with a MailError that says what it sent.
* ``send`` reports the server's answer per recipient (accepted by any
  2xx, deferred by a 4xx, refused by a 5xx); what to do with each is the
  queue's job (``_mail_delivery``). Errors that end the conversation raise
  MailError. Once the whole message is sent, a hang-up, a timeout or a
  reply that is neither 2xx, 4xx nor 5xx leaves the outcome unknown: the
  server may have taken the message. ``send`` says so (``Sent.uncertain``)
  and never calls it a refusal; the queue sends it again, as MTAs do.
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from email import policy as email_policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from typing import Any, BinaryIO, Dict, List, Optional, Sequence, Tuple

from . import _lookup, _text

SECURITY = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
# 7bit: non-ASCII bodies are quoted-printable, so any relay accepts the message.
POLICY = email_policy.SMTP.clone(cte_type="7bit")
# What str.splitlines() splits on, NUL, and the other C0 controls and DEL: none belongs in a header.
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BAD_HEADER_CHARS = frozenset(_LINE_BREAKS + "".join(chr(c) for c in range(32) if c != 9) + "\x7f")
MAX_REPLY = 300  # characters of a server's answer kept in a reason
MAX_REPLY_LINE = 8192  # bytes of one reply line: smtplib's own limit (RFC 5321 §4.5.3.1.5 says 512)
MAX_REPLY_LINES = 100  # lines of one reply: an EHLO answer lists a dozen extensions
MAX_REPLY_BYTES = 64 << 10  # bytes of one reply, all its lines
# A reply line (RFC 5321 §4.2): a code whose first digit is 1-5 and second 0-5, then a space,
# a hyphen (more lines follow) or the end of the line.
_REPLY_LINE = re.compile(rb"[1-5][0-5][0-9](?:[ -]|\r?\n|\Z)")
UNCERTAIN_PHASE = "final reply"  # the whole message is sent; whether the server took it is not known yet


class MailError(Exception):
    """Mail could not be sent (or spooled); the message says why and what to do."""


class MailConfigError(MailError, ValueError):
    """A mail option is invalid; nothing was sent."""


class ReplyError(smtplib.SMTPException):
    """The server sent something that is no SMTP reply, or a reply beyond the bounds; the message says what."""


def read_reply(stream: BinaryIO) -> Tuple[int, bytes]:
    """One reply from *stream*: its code and its text (lines joined by LF), within the bounds above.

    Raises ReplyError for a reply too long (bytes, lines or one line), a
    line that is no reply line, or lines with different codes; and
    SMTPServerDisconnected at the end of the stream. Memory stays below
    ``MAX_REPLY_BYTES`` plus one line, whatever the server sends.
    """
    lines: List[bytes] = []
    size = 0
    code = b""
    while True:
        line = stream.readline(MAX_REPLY_LINE + 1)
        if not line:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        size += len(line)
        if len(line) > MAX_REPLY_LINE:
            raise ReplyError(f"sent a reply line longer than {MAX_REPLY_LINE} bytes")
        if size > MAX_REPLY_BYTES:
            raise ReplyError(f"sent a reply longer than {MAX_REPLY_BYTES} bytes")
        if len(lines) == MAX_REPLY_LINES:
            raise ReplyError(f"sent a reply of more than {MAX_REPLY_LINES} lines")
        if not _REPLY_LINE.match(line):
            raise ReplyError(f"sent something that is no SMTP reply: {_shown(line)}")
        if code and line[:3] != code:
            raise ReplyError(f"sent a reply whose lines have different codes ({code.decode()} and "
                             f"{line[:3].decode()})")
        code = line[:3]
        lines.append(line[4:].strip(b" \t\r\n"))
        if line[3:4] != b"-":
            return int(code), b"\n".join(lines)


def _shown(data: bytes) -> str:
    """The start of what a server sent, quoted, as one printable line."""
    return '"' + _text.printable(data[:60].rstrip(b"\r\n")) + ('..."' if len(data) > 60 else '"')


def parse_address(value: str, name: str) -> Address:
    """One mail address (``user@example.com`` or ``Name <user@example.com>``), validated."""
    if not isinstance(value, str) or not value.strip() or _bad_chars(value):
        raise MailConfigError(f"{name}: {value!r} is not a mail address (line breaks, control characters and "
                              f"empty values are refused)")
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
    if not address.addr_spec.isascii():  # SMTP commands are ASCII (no SMTPUTF8 here)
        try:
            hint = f"; write the domain in its ASCII form: {address.username}@{address.domain.encode('idna').decode()}"
        except UnicodeError:
            hint = ""
        raise MailConfigError(f"{name}: {value!r} has non-ASCII characters in the address itself{hint}")
    return address


def _bad_chars(value: str) -> bool:
    return not _BAD_HEADER_CHARS.isdisjoint(value)


def check_header(value: str, name: str) -> str:
    """*value* if it is one line of text; MailConfigError naming *name* otherwise."""
    if not isinstance(value, str):
        raise MailConfigError(f"{name} must be text, got {value!r}")
    if _bad_chars(value):
        raise MailConfigError(f"{name} may not contain line breaks or control characters (such as \\n, \\r, "
                              f"\\x0b, \\x85, \\u2028, NUL): {value!r}")
    return value


def clean_header(value: str) -> str:
    """*value* with every line separator and control character made a blank, for generated headers.

    The watcher's alert subject names mount points, which may hold anything.
    """
    return "".join(" " if c in _BAD_HEADER_CHARS else c for c in value)


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
    """A verifying client context; only an explicit ``validate_certs=False`` turns checks off.

    Its sockets keep the conversation's deadline across the TLS upgrade.
    """
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    if not settings.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.sslsocket_class = _DeadlineSSLSocket
    return context


def build_message(sender: Address, recipients: Sequence[Address], subject: str, text: str,
                  html_body: str, domain: str, when: Optional[float] = None,
                  mailer: str = "sysops.fleet") -> EmailMessage:
    """A multipart/alternative message: plain table first, HTML second (clients show the last they can).

    *mailer* (``X-Mailer``) names what sent it, ``sysops.fleet fleet_report``, for mail filters and for
    the reader who wonders which job to look at.
    """
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = list(recipients)
    msg["Subject"] = check_header(subject, "subject")
    msg["Date"] = formatdate(when, localtime=True)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-Mailer"] = check_header(mailer, "mailer")
    msg.set_content(text)
    msg.add_alternative(html_body, subtype="html")
    return msg


def envelope(raw: bytes) -> Tuple[str, List[str]]:
    """The envelope sender and recipients of a flattened message, from its own headers (From, To, Cc)."""
    headers = BytesHeaderParser(policy=email_policy.compat32).parsebytes(raw)
    sender = parseaddr(str(headers.get("From", "")))[1]
    fields = [str(v) for v in headers.get_all("To", []) + headers.get_all("Cc", [])]
    recipients = [pair[1] for pair in getaddresses(fields) if pair[1]]
    return sender, recipients


def headers(raw: bytes) -> Any:
    """The header block of a flattened message (compat32: never raises on odd headers)."""
    return BytesHeaderParser(policy=email_policy.compat32).parsebytes(raw)


def message_id(raw: bytes) -> str:
    return str(headers(raw).get("Message-ID", "")).strip()


# ---- one conversation, one deadline ----------------------------------------------------------

def _left(deadline: float) -> float:
    """Seconds until *deadline*; socket.timeout once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("smtp_timeout reached")
    return left


class _Deadline:
    """Socket methods that first shrink the timeout to the time left before the deadline.

    smtplib reads a reply with ``makefile().readline()``: many ``recv_into``
    calls, each with a fresh timeout. Arming every call makes the deadline
    hold for the whole conversation.
    """

    deadline: Optional[float] = None

    def _arm(self) -> None:
        if self.deadline is not None:
            super().settimeout(_left(self.deadline))  # type: ignore[misc]

    def recv(self, *args):
        self._arm()
        return super().recv(*args)  # type: ignore[misc]

    def recv_into(self, *args):
        self._arm()
        return super().recv_into(*args)  # type: ignore[misc]

    def send(self, *args):
        self._arm()
        return super().send(*args)  # type: ignore[misc]

    def sendall(self, *args):
        self._arm()  # a plain socket's sendall bounds the total; SSLSocket's calls send() per chunk
        return super().sendall(*args)  # type: ignore[misc]


class _DeadlineSocket(_Deadline, socket.socket):
    """A TCP socket whose every read and write ends by the conversation's deadline."""


class _DeadlineSSLSocket(_Deadline, ssl.SSLSocket):
    """The same after TLS (SMTPS or STARTTLS): the TLS socket takes over the plain one's deadline."""

    @classmethod
    def _create(cls, sock, *args, **kwargs):  # pylint: disable=arguments-differ
        deadline = getattr(sock, "deadline", None)
        if deadline is not None:
            sock.settimeout(_left(deadline))  # CPython bounds the whole handshake by this timeout
        wrapped = super()._create(sock, *args, **kwargs)
        wrapped.deadline = deadline
        return wrapped


def _resolve(host: str, port: int, deadline: float) -> List[Tuple[Any, ...]]:
    """getaddrinfo, bounded by the deadline: a name lookup can hang, and has no timeout of its own.

    An address literal needs no lookup; a name is looked up as the core
    looks names up (``_lookup.call_all``: in a helper thread, left behind if
    the resolver outlives the deadline).
    """
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    answer = _lookup.call_all(lambda name: socket.getaddrinfo(name, port, type=socket.SOCK_STREAM), [host],
                              timeout=_left(deadline), threads=1)[host]
    if answer.timed_out:
        raise socket.timeout(f"looking up {host} took longer than smtp_timeout")
    if answer.error is not None:
        raise answer.error
    return answer.value


class Conversation(smtplib.SMTP):
    """An smtplib session under one deadline, that knows which step it is at (for the error message)."""

    def __init__(self, deadline: float, local_hostname: str, implicit_tls: Optional[ssl.SSLContext] = None):
        self.deadline = deadline
        self.phase = "connect"
        self.implicit_tls = implicit_tls
        super().__init__(local_hostname=local_hostname, timeout=max(0.001, deadline - time.monotonic()))

    def _get_socket(self, host, port, timeout):
        self._host = host  # what STARTTLS checks the certificate against (smtplib sets it only in __init__)
        last: Optional[OSError] = None
        for family, kind, proto, _name, address in _resolve(host, port, self.deadline):
            sock = _DeadlineSocket(family, kind, proto)
            sock.deadline = self.deadline
            try:
                sock.settimeout(_left(self.deadline))
                sock.connect(address)
            except OSError as exc:
                sock.close()
                last = exc
                if isinstance(exc, socket.timeout):
                    break
                continue
            self.phase = "greeting"
            if self.implicit_tls is not None:
                return self.implicit_tls.wrap_socket(sock, server_hostname=host)
            return sock
        raise last or OSError(f"no address for {host}")

    def getreply(self):
        """smtplib's reply reader, bounded (``read_reply``); the connection is closed on any fault."""
        if self.file is None:
            self.file = self.sock.makefile("rb")
        try:
            return read_reply(self.file)
        except (ReplyError, smtplib.SMTPServerDisconnected):
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from exc

    def data(self, msg: bytes) -> Tuple[int, bytes]:
        """DATA, the message, the final dot, its reply: the phases ``explain`` tells apart.

        "DATA" until the server's 354; "message" while the message is sent
        (a fault here: the server cannot have it, its end never came); then
        ``UNCERTAIN_PHASE``, when the server has the whole message and the
        reply alone says whether it took it. Raises SMTPDataError for an
        answer to DATA other than 354, as smtplib does.
        """
        self.phase = "DATA"
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        self.phase = "message"
        self.send(_dot_stuffed(msg))
        self.phase = UNCERTAIN_PHASE
        return self.getreply()


def _dot_stuffed(msg: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 §4.5.2): leading dots doubled, CRLF, the final dot."""
    data = re.sub(rb"(?m)^\.", b"..", msg)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def connect(settings: SmtpSettings, deadline: Optional[float] = None) -> Conversation:
    """An SMTP session, encrypted as asked and logged in, that must end by *deadline*.

    *deadline* (``time.monotonic()``) defaults to now + ``settings.timeout``.
    Raises MailError with the reason.
    """
    deadline = time.monotonic() + float(settings.timeout) if deadline is None else deadline
    local = settings.local_hostname or socket.gethostname() or "localhost"  # never getfqdn(): DNS may hang
    implicit = tls_context(settings) if settings.security == "ssl" else None
    conn = Conversation(deadline, local, implicit)
    try:
        code, greeting = conn.connect(settings.host, settings.effective_port)
        if code != 220:  # smtplib checks this only when given the host at construction
            raise smtplib.SMTPConnectError(code, greeting)
        conn.phase = "EHLO"
        conn.ehlo_or_helo_if_needed()
        if settings.security == "starttls":
            if not conn.has_extn("starttls"):
                raise MailError(f"{settings.where} does not offer STARTTLS and smtp_security=starttls: refusing "
                                f"to send in plain text. Enable TLS on the server, or use smtp_security=ssl "
                                f"(port 465) if it speaks implicit TLS")
            conn.phase = "STARTTLS"
            conn.starttls(context=tls_context(settings))
            conn.phase = "EHLO"
            conn.ehlo()
        if settings.username:
            if not conn.has_extn("auth"):
                raise MailError(f"{settings.where} does not offer AUTH, so smtp_username cannot log in; "
                                f"remove smtp_username/smtp_password or check the server's settings")
            conn.phase = "AUTH"
            conn.login(settings.username, settings.password or "")
    except MailError:
        close(conn)
        raise
    except (OSError, smtplib.SMTPException, ValueError) as exc:  # ValueError: a login challenge that is no base64
        close(conn)
        raise MailError(explain(exc, settings, conn.phase)) from exc
    return conn


def close(conn: smtplib.SMTP) -> None:
    """QUIT if the server still listens (and time is left), else just close."""
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()


def _timed_out(exc: BaseException) -> bool:
    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 5:
        if isinstance(current, (socket.timeout, TimeoutError)):
            return True
        current, seen = current.__cause__ or current.__context__, seen + 1
    return False


def explain(exc: BaseException, settings: SmtpSettings, phase: str = "") -> str:
    """A message that says what went wrong with the mail server and what to do about it.

    *phase* is the step of the conversation it happened at: a server that
    hangs up before its greeting may be no SMTP server; one that hangs up
    while the message is sent cannot have it; one that hangs up once it has
    the whole message may have taken it (``UNCERTAIN_PHASE``): never called
    a refusal.
    """
    if phase == UNCERTAIN_PHASE:
        return uncertain(settings, _before_final_reply(exc, settings))
    where = settings.where
    if _timed_out(exc):
        if phase == "message":
            return (f"{where} did not take the whole message within smtp_timeout={settings.timeout:g}s (still "
                    f"sending it; its end never reached the server, so it was not delivered); the timeout "
                    f"bounds the whole exchange")
        return (f"{where} did not finish the conversation within smtp_timeout={settings.timeout:g}s "
                f"(still waiting during {phase or 'connect'}); the timeout bounds the whole exchange")
    if isinstance(exc, ReplyError):
        return (f"{where} {exc} (at {phase or 'connect'}): it does not speak SMTP as RFC 5321 says, so the "
                f"conversation was ended")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (f"{where} refused the login of {settings.username!r}: {_reply(exc)}; "
                f"check smtp_username and smtp_password")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{where}: {exc}"
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError)):
        return _hang_up(exc, where, phase)
    if isinstance(exc, smtplib.SMTPConnectError):
        return f"{where} did not accept the connection: {_reply(exc)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{where} answered {_reply(exc)} to {phase}"
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


def _hang_up(exc: BaseException, where: str, phase: str) -> str:
    """A closed or reset connection, named by the step it ended (before the message's end: not delivered)."""
    detail = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or "no reason given"
    if phase in ("connect", "greeting"):
        return f"{where} closed the connection before its greeting ({detail}); is it an SMTP server?"
    if phase == "DATA":
        return (f"{where} closed the connection after DATA, before the message was sent, so it did not "
                f"take the message ({detail})")
    if phase == "message":
        return (f"{where} closed the connection while the message was being sent, before its end, so it "
                f"did not take the message ({detail})")
    return f"{where} closed the connection unexpectedly during {phase} ({detail})"


def _before_final_reply(exc: BaseException, settings: SmtpSettings) -> str:
    """What went wrong once the whole message was sent, for ``uncertain``."""
    if _timed_out(exc):
        return f"gave no final reply within smtp_timeout={settings.timeout:g}s"
    if isinstance(exc, ReplyError):
        return f"{exc} instead of its final reply"
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError)):
        return "closed the connection before its final reply"
    return f"failed before its final reply ({getattr(exc, 'strerror', None) or exc})"


def uncertain(settings: SmtpSettings, what: str) -> str:
    """The message for an outcome nobody knows: the server has the whole message and *what* happened then.

    RFC 5321 §4.5.3.2.6 gives a server 10 minutes for the reply to the
    final dot, while ``smtp_timeout`` bounds the whole conversation: the
    message says how to wait that long.
    """
    text = (f"{settings.where} received the whole message but {what}: it may have taken the message. It stays "
            f"queued and is sent again, so its recipients may get it twice")
    if "smtp_timeout" in what:
        text += (f" (RFC 5321 gives a server 10 minutes for this reply; smtp_timeout={settings.timeout:g}s bounds "
                 f"the whole conversation: set smtp_timeout to 600 or more to wait that long)")
    return text


def _said(message) -> str:
    """A server's answer as one printable line (it goes into reasons, headers and reports), bounded."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return _text.words(text, MAX_REPLY)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_said(exc.smtp_error)}".strip()


# ---- one message, per recipient ----------------------------------------------------------------

@dataclass
class Sent:
    """What the server answered for one message, recipient by recipient."""

    accepted: List[str] = field(default_factory=list)
    deferred: Dict[str, str] = field(default_factory=dict)  # recipient -> 4xx answer: try again later
    refused: Dict[str, str] = field(default_factory=dict)   # recipient -> 5xx answer: never
    uncertain: Dict[str, str] = field(default_factory=dict)  # recipient -> why nobody knows if it was taken
    ended: str = ""  # why the conversation ended with this message (nothing more can be sent); "" if it goes on


def _kind(code: int) -> str:
    """What a reply code says (RFC 5321 §4.2.1): "ok" (any 2xx), "later" (4xx), "never" (5xx), else "odd"."""
    return {2: "ok", 4: "later", 5: "never"}.get(code // 100, "odd")


def _closing(code: int, reply, settings: SmtpSettings, phase: str) -> MailError:
    return MailError(f"{settings.where} is closing the connection: {code} {_said(reply)} (at {phase})")


def _odd(code: int, reply, settings: SmtpSettings, phase: str) -> MailError:
    return MailError(f"{settings.where} answered {code} {_said(reply)} to {phase}, which is no answer RFC 5321 "
                     f"allows there: the message was not sent, and is tried again later")


def _answer(sent: Sent, kind: str, recipients: Sequence[str], reason: str) -> None:
    """Record a 4xx ("later") or 5xx ("never") answer for *recipients*."""
    (sent.deferred if kind == "later" else sent.refused).update({r: reason for r in recipients})


def send(conn: Conversation, settings: SmtpSettings, sender: str, recipients: Sequence[str],
         raw: bytes) -> Sent:
    """MAIL FROM, RCPT TO each recipient, DATA: the server's answer for every recipient.

    Any 2xx accepts, a 4xx defers, a 5xx refuses; a 4xx or 5xx to MAIL
    FROM or to DATA applies to every recipient it covers. Raises MailError
    when the conversation ends before the message's end was sent (timeout,
    hang-up, 421, a reply SMTP does not allow there): then the server does
    not have the message and all of it must be tried again. Once it has the
    whole message, a fault leaves the accepted recipients ``uncertain``
    and sets ``ended`` instead.
    """
    sent = Sent()
    try:
        conn.phase = "MAIL FROM"
        code, reply = conn.mail(sender)
        if code == 421 or _kind(code) == "odd":
            raise (_closing if code == 421 else _odd)(code, reply, settings, conn.phase)
        if _kind(code) != "ok":
            _answer(sent, _kind(code), recipients, f"{code} {_said(reply)} (to MAIL FROM:<{sender}>)")
            _reset(conn)
            return sent
        conn.phase = "RCPT TO"
        for rcpt in recipients:
            code, reply = conn.rcpt(rcpt)
            if code == 421 or _kind(code) == "odd":
                raise (_closing if code == 421 else _odd)(code, reply, settings, conn.phase)
            if _kind(code) == "ok":
                sent.accepted.append(rcpt)
            else:
                _answer(sent, _kind(code), [rcpt], f"{code} {_said(reply)}")
        if not sent.accepted:
            _reset(conn)
            return sent
        _transfer(conn, settings, raw, sent)
    except MailError:
        raise
    except UnicodeError as exc:  # a non-ASCII envelope address (a spool file edited by hand): the session is lost
        raise MailError(f"cannot send to {settings.where}: an envelope address is not ASCII ({exc})") from exc
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        raise MailError(explain(exc, settings, conn.phase)) from exc
    return sent


def _transfer(conn: Conversation, settings: SmtpSettings, raw: bytes, sent: Sent) -> None:
    """DATA and the message: the answer to its end decides for every accepted recipient (see ``send``)."""
    try:
        code, reply = conn.data(raw)
    except smtplib.SMTPDataError as exc:  # the answer to DATA itself: the message was not sent
        code, reply = exc.smtp_code, exc.smtp_error
        if code == 421 or _kind(code) in ("ok", "odd"):  # 354 is the only go-ahead
            raise (_closing if code == 421 else _odd)(code, reply, settings, "DATA") from None
    except (OSError, smtplib.SMTPException) as exc:
        if conn.phase != UNCERTAIN_PHASE:
            raise
        _unknown(sent, explain(exc, settings, UNCERTAIN_PHASE))
        return
    kind = _kind(code)
    if kind == "ok":
        return
    if kind == "odd":
        _unknown(sent, uncertain(settings, f"answered {code} {_said(reply)} to it, which is neither success "
                                           f"(2xx) nor failure (4xx, 5xx)"))
        return
    _answer(sent, kind, sent.accepted, f"{code} {_said(reply)} (to DATA)")
    sent.accepted = []
    if code == 421:
        sent.ended = str(_closing(code, reply, settings, "the end of DATA"))


def _unknown(sent: Sent, reason: str) -> None:
    """The accepted recipients' outcome is not known (see ``uncertain``); the conversation is over."""
    sent.uncertain.update({r: reason for r in sent.accepted})
    sent.accepted = []
    sent.ended = reason


def _reset(conn: smtplib.SMTP) -> None:
    """RSET after a refused transaction; a server gone by now fails the next message instead."""
    try:
        conn.rset()
    except (OSError, smtplib.SMTPException):
        pass
