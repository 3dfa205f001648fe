# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, on an ephemeral port, in a thread.

Variants: plain, STARTTLS (offered or required), implicit TLS (SMTPS),
AUTH (with or without TLS), and scripted refusals (451/550 at RCPT or
DATA). Received messages are kept in memory (``messages``) and, when
``maildir`` is given, written to a Maildir, so another process can read
them back. ``make_certs`` makes a throw-away CA and a server certificate
for 127.0.0.1 / ::1 / localhost with ``cryptography`` (an ansible-core
dependency), so TLS is verified for real.

Run as a program for the integration target::

    python smtp_server.py --maildir DIR --port-file FILE [--port N]

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
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

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
    """aiosmtpd handler: keeps what arrives, or refuses it as scripted."""

    rcpt_reply: Optional[str] = None     # e.g. "550 5.1.1 no such user"
    data_reply: Optional[str] = None     # e.g. "451 4.3.0 try again later"
    refuse_rcpt: Tuple[str, ...] = ()    # addresses refused with 550 while others are accepted
    maildir: Optional[str] = None
    implicit_tls: bool = False
    messages: List[Received] = field(default_factory=list)
    mail_commands: List[bool] = field(default_factory=list)  # TLS state of every MAIL FROM seen

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_commands.append(self.implicit_tls or session.ssl is not None)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        if address in self.refuse_rcpt:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        data = envelope.original_content or envelope.content
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), data,
                                      self.implicit_tls or session.ssl is not None,
                                      _login(session)))
        if self.maildir:  # numbered, so a reader knows the order of arrival
            numbered = f"X-Test-Sequence: {time.time_ns()}\r\n".encode() + data
            mailbox.Maildir(self.maildir, create=True).add(numbered)
        return "250 2.0.0 Message accepted for delivery"


def _login(session) -> Optional[str]:
    data = getattr(session, "auth_data", None)
    return data.login.decode() if isinstance(data, LoginPassword) else None


class SmtpServer:
    """aiosmtpd in a thread of its own on 127.0.0.1; ``port`` is known once started."""

    def __init__(self, handler: Optional[Recorder] = None, tls: Optional[str] = None, certs: Optional[Certs] = None,
                 auth: Optional[Tuple[str, str]] = None, auth_require_tls: bool = True, port: int = 0):
        if tls not in (None, "starttls", "ssl"):
            raise ValueError(tls)
        self.handler = handler or Recorder()
        self.handler.implicit_tls = tls == "ssl"
        self.tls, self.certs, self.auth, self.auth_require_tls = tls, certs, auth, auth_require_tls
        self.port = port
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server = None
        self._thread: Optional[threading.Thread] = None

    @property
    def messages(self) -> List[Received]:
        return self.handler.messages

    def _context(self) -> Optional[ssl.SSLContext]:
        if not self.tls:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certs.cert, self.certs.key)
        return context

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _factory(self) -> SMTP:
        context = self._context()
        kwargs = {"hostname": "smtp.test", "ident": "sysops.fleet test SMTP"}
        if self.tls == "starttls":
            kwargs["tls_context"] = context
        if self.auth:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=self.auth_require_tls)
        return SMTP(self.handler, **kwargs)

    def start(self) -> "SmtpServer":
        ready = threading.Event()
        failure: List[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                ssl_context = self._context() if self.tls == "ssl" else None
                self._server = loop.run_until_complete(
                    loop.create_server(self._factory, host=LOOPBACK, port=self.port, ssl=ssl_context))
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

    def __enter__(self) -> "SmtpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="aiosmtpd on 127.0.0.1 writing to a Maildir")
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--tls", choices=["starttls", "ssl"])
    parser.add_argument("--certs", help="directory to make a CA and server certificate in (with --tls)")
    parser.add_argument("--auth", help="USER:PASSWORD required to log in")
    args = parser.parse_args()
    certs = make_certs(args.certs) if args.tls else None
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    server = SmtpServer(Recorder(maildir=args.maildir), tls=args.tls, certs=certs, auth=auth, port=args.port).start()
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
