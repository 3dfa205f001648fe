# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, on an ephemeral port, in a thread.

Variants: plain, STARTTLS (offered or required), implicit TLS (SMTPS),
AUTH (with or without TLS), scripted refusals (451/550 at RCPT or DATA,
for every recipient or per recipient), and a server that hangs up in the
middle of DATA. ``SlowServer`` is a raw asyncio server for the faults
aiosmtpd cannot play: a greeting trickled a byte at a time, or silence
after the message. Received messages are kept in memory (``messages``) and, when
``maildir`` is given, written to a Maildir, so another process can read
them back. ``make_certs`` makes a throw-away CA and a server certificate
for 127.0.0.1 / ::1 / localhost with ``cryptography`` (an ansible-core
dependency), so TLS is verified for real.

Run as a program for the integration target::

    python smtp_server.py --maildir DIR --port-file FILE [--port N] [--refuse ADDR ...]
    python smtp_server.py --slow trickle --port-file FILE     # the slow one, for the deadline

Only ever listens on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import logging
import mailbox
import os
import signal
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Dict, List, Optional, Tuple

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

LOOPBACK = "127.0.0.1"
logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # refused TLS handshakes are the point of some tests


@dataclass
class Certs:
    ca: str
    cert: str
    key: str


def make_certs(directory: str) -> Certs:
    """A CA and a server certificate signed by it, valid for 127.0.0.1, ::1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sysops.fleet test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    os.makedirs(directory, exist_ok=True)
    paths = Certs(os.path.join(directory, "ca.pem"), os.path.join(directory, "server.pem"),
                  os.path.join(directory, "server.key"))
    with open(paths.ca, "wb") as out:
        out.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths.cert, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths.key, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return paths


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: List[str]
    data: bytes
    tls: bool
    login: Optional[str]


@dataclass
class Recorder:
    """aiosmtpd handler: keeps what arrives, or refuses it as scripted.

    The script may change between runs (``rcpt_replies.clear()``: the
    server is fixed), which is how the tests count what each recipient
    got over several runs.
    """

    rcpt_reply: Optional[str] = None     # e.g. "550 5.1.1 no such user", for every recipient
    data_reply: Optional[str] = None     # e.g. "451 4.3.0 try again later"
    refuse_rcpt: Tuple[str, ...] = ()    # addresses refused with 550 while others are accepted
    rcpt_replies: Dict[str, str] = field(default_factory=dict)  # address -> its own reply ("451 4.2.1 busy")
    drop_in_data: bool = False           # hang up once the message is in, before answering it
    maildir: Optional[str] = None
    implicit_tls: bool = False
    messages: List[Received] = field(default_factory=list)
    mail_commands: List[bool] = field(default_factory=list)  # TLS state of every MAIL FROM seen
    rcpt_commands: List[str] = field(default_factory=list)   # every RCPT TO address seen, accepted or not
    connections: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_commands.append(self.implicit_tls or session.ssl is not None)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_commands.append(address)
        if self.rcpt_reply:
            return self.rcpt_reply
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        if address in self.refuse_rcpt:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.drop_in_data:
            server.transport.close()
            return "250 never sent: the connection is gone"
        if self.data_reply:
            return self.data_reply
        data = envelope.original_content or envelope.content
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), data,
                            self.implicit_tls or session.ssl is not None, _login(session))
        self.messages.append(received)
        if self.maildir:  # numbered, so a reader knows the order of arrival; with how it came (TLS, login)
            numbered = (f"X-Test-Sequence: {time.time_ns()}\r\nX-Test-TLS: {'yes' if received.tls else 'no'}\r\n"
                        f"X-Test-Login: {received.login or '-'}\r\n").encode() + data
            mailbox.Maildir(self.maildir, create=True).add(numbered)
        return "250 2.0.0 Message accepted for delivery"

    def copies(self) -> Dict[str, Counter]:
        """Message-ID -> how many copies each recipient got: what "delivered exactly once" is counted on."""
        counts: Dict[str, Counter] = {}
        for received in self.messages:
            mid = str(BytesHeaderParser().parsebytes(received.data).get("Message-ID", "")).strip()
            counts.setdefault(mid, Counter()).update(received.rcpt_tos)
        return counts


def _login(session) -> Optional[str]:
    data = getattr(session, "auth_data", None)
    return data.login.decode() if isinstance(data, LoginPassword) else None


def server_context(certs: Certs) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)
    return context


class _LoopThread:
    """An asyncio server in a thread of its own on 127.0.0.1; ``port`` is known once started."""

    port = 0
    _loop: Optional[asyncio.AbstractEventLoop] = None
    _server = None
    _thread: Optional[threading.Thread] = None

    def _listen(self, loop: asyncio.AbstractEventLoop):
        raise NotImplementedError

    def start(self):
        ready = threading.Event()
        failure: List[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(self._listen(loop))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # noqa: BLE001 - handed to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._stop_loop)
            self._thread.join(10)
        self._thread = None

    def _stop_loop(self) -> None:
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._server.close()
        self._loop.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class SmtpServer(_LoopThread):
    """aiosmtpd in a thread of its own on 127.0.0.1; ``port`` is known once started."""

    def __init__(self, handler: Optional[Recorder] = None, tls: Optional[str] = None, certs: Optional[Certs] = None,
                 auth: Optional[Tuple[str, str]] = None, auth_require_tls: bool = True, port: int = 0):
        if tls not in (None, "starttls", "ssl"):
            raise ValueError(tls)
        self.handler = handler or Recorder()
        self.handler.implicit_tls = tls == "ssl"
        self.tls, self.certs, self.auth, self.auth_require_tls = tls, certs, auth, auth_require_tls
        self.port = port

    @property
    def messages(self) -> List[Received]:
        return self.handler.messages

    def _context(self) -> Optional[ssl.SSLContext]:
        return server_context(self.certs) if self.tls else None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _factory(self) -> SMTP:
        self.handler.connections += 1
        context = self._context()
        kwargs = {"hostname": "smtp.test", "ident": "sysops.fleet test SMTP"}
        if self.tls == "starttls":
            kwargs["tls_context"] = context
        if self.auth:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=self.auth_require_tls)
        return SMTP(self.handler, **kwargs)

    def _listen(self, loop: asyncio.AbstractEventLoop):
        return loop.create_server(self._factory, host=LOOPBACK, port=self.port,
                                  ssl=self._context() if self.tls == "ssl" else None)


class SlowServer(_LoopThread):
    """A raw asyncio server on 127.0.0.1 that misbehaves in time, which aiosmtpd cannot.

    ``mode="trickle"``: a greeting that never ends, one byte every
    *interval* seconds ("220-" and then x's): each read gets a byte well
    within any per-read timeout, so only a deadline on the whole
    conversation stops a client. ``mode="stall_after_data"``: a correct
    dialogue up to the message, then silence instead of the final answer.
    With *certs* it speaks implicit TLS first. Counts its connections;
    records nothing as delivered.
    """

    def __init__(self, mode: str, interval: float = 0.2, port: int = 0, certs: Optional[Certs] = None):
        if mode not in ("trickle", "stall_after_data"):
            raise ValueError(mode)
        self.mode, self.interval, self.port = mode, interval, port
        self.certs = certs  # given: implicit TLS (SMTPS), the misbehaviour comes after the handshake
        self.connections = 0
        self.bytes_sent = 0

    async def _trickle(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220-")
        while True:
            await writer.drain()
            await asyncio.sleep(self.interval)
            writer.write(b"x")
            self.bytes_sent += 1

    async def _stall_after_data(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 slow.test ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250 slow.test\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                while (await reader.readline()) not in (b".\r\n", b""):
                    pass
                await asyncio.sleep(3600)  # never answers the message
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.mode == "trickle":
                await self._trickle(writer)
            else:
                await self._stall_after_data(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _listen(self, loop: asyncio.AbstractEventLoop):
        return asyncio.start_server(self._client, LOOPBACK, self.port,
                                    ssl=server_context(self.certs) if self.certs else None)


def bounded(func, limit: float = 30.0):
    """Run *func* in a thread: (seconds it took, its result, its exception).

    A client that never gives up on a slow server fails the test after
    *limit* seconds instead of hanging the whole run.
    """
    box: list = []

    def call() -> None:
        started = time.monotonic()
        try:
            box.append((func(), None))
        except Exception as exc:  # noqa: BLE001 - handed to the test
            box.append((None, exc))
        box.append(time.monotonic() - started)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(limit)
    assert not worker.is_alive(), f"still talking to the server after {limit}s: the deadline does not hold"
    (value, error), took = box
    return took, value, error


def main() -> int:
    parser = argparse.ArgumentParser(description="aiosmtpd on 127.0.0.1 writing to a Maildir")
    parser.add_argument("--maildir")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--tls", choices=["starttls", "ssl"])
    parser.add_argument("--certs", help="directory to make a CA and server certificate in (with --tls)")
    parser.add_argument("--auth", help="USER:PASSWORD required to log in")
    parser.add_argument("--refuse", action="append", default=[], help="refuse this recipient with 550 (repeatable)")
    parser.add_argument("--slow", choices=["trickle", "stall_after_data"], help="a SlowServer instead")
    args = parser.parse_args()
    if args.slow:
        server = SlowServer(args.slow, port=args.port).start()
    else:
        if not args.maildir:
            parser.error("--maildir is needed (unless --slow)")
        certs = make_certs(args.certs) if args.tls else None
        auth = tuple(args.auth.split(":", 1)) if args.auth else None
        server = SmtpServer(Recorder(maildir=args.maildir, refuse_rcpt=tuple(args.refuse)), tls=args.tls, certs=certs,
                            auth=auth, port=args.port).start()
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as out:
            out.write(str(server.port))
        os.replace(args.port_file + ".tmp", args.port_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
