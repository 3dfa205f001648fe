# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, on an ephemeral port, in a thread.

Variants: plain, STARTTLS (offered or required), implicit TLS (SMTPS),
AUTH (with or without TLS), scripted refusals (451/550 at RCPT or DATA,
for every recipient or per recipient), other 2xx answers (251, 252),
and a server that hangs up once it has the whole message (before or
after keeping it). ``SlowServer`` is a raw asyncio server for the faults
aiosmtpd cannot play: a greeting trickled a byte at a time, replies that
never end (lines forever, one line forever), silence after the message,
a hang-up in the middle of the message. ``ScriptedServer`` sends bytes
the test gives (property-based tests of reply reading). ``socket_uid``
reads who owns the client's end of a connection from /proc/net/tcp.
Received messages are kept in memory (``messages``) and, when
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
import socket
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
    peer: Tuple[str, int] = ("", 0)  # the client's address and port
    peer_uid: Optional[int] = None  # who owned the client's socket while the message came in (record_uid)
    at: float = 0.0  # time.monotonic() when it came in


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
    keep_then_drop: bool = False         # keep the message, then hang up before answering it
    mail_reply: str = "250 OK"           # the answer to MAIL FROM (a 2xx: the sender is accepted)
    rcpt_accept_replies: Dict[str, str] = field(default_factory=dict)  # address -> a 2xx other than 250
    accept_reply: str = "250 2.0.0 Message accepted for delivery"  # the answer to a message kept
    record_uid: bool = False             # read the client socket's owner from /proc/net/tcp at DATA
    port: int = 0                        # the server's port (for record_uid), set by SmtpServer
    maildir: Optional[str] = None
    implicit_tls: bool = False
    messages: List[Received] = field(default_factory=list)
    mail_commands: List[bool] = field(default_factory=list)  # TLS state of every MAIL FROM seen
    rcpt_commands: List[str] = field(default_factory=list)   # every RCPT TO address seen, accepted or not
    rcpt_at: List[float] = field(default_factory=list)       # time.monotonic() of each
    connections: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_commands.append(self.implicit_tls or session.ssl is not None)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return self.mail_reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_commands.append(address)
        self.rcpt_at.append(time.monotonic())
        if self.rcpt_reply:
            return self.rcpt_reply
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        if address in self.refuse_rcpt:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return self.rcpt_accept_replies.get(address, "250 OK")

    async def handle_DATA(self, server, session, envelope):
        if self.drop_in_data:
            server.transport.close()
            return "250 never sent: the connection is gone"
        if self.data_reply:
            return self.data_reply
        data = envelope.original_content or envelope.content
        peer = tuple(session.peer[:2]) if session.peer else ("", 0)
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), data,
                            self.implicit_tls or session.ssl is not None,
                            _login(session), peer,
                            socket_uid(peer[1], self.port) if self.record_uid else None,
                            time.monotonic())
        self.messages.append(received)
        if self.maildir:  # numbered, so a reader knows the order of arrival; with how it came (TLS, login)
            numbered = (f"X-Test-Sequence: {time.time_ns()}\r\nX-Test-TLS: {'yes' if received.tls else 'no'}\r\n"
                        f"X-Test-Login: {received.login or '-'}\r\n").encode() + data
            mailbox.Maildir(self.maildir, create=True).add(numbered)
        if self.keep_then_drop:
            server.transport.close()
            return "250 never sent: the connection is gone"
        return self.accept_reply

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


def socket_uid(client_port: int, server_port: int) -> Optional[int]:
    """The uid owning the client's end of a live loopback TCP connection, from /proc/net/tcp and tcp6.

    The client's socket has local port *client_port* and remote port
    *server_port*. Read while the connection is up (a closed socket in
    TIME_WAIT shows uid 0 whoever had it).
    """
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, uid = fields[1], fields[2], fields[7]
            if int(local.rsplit(":", 1)[1], 16) == client_port and int(remote.rsplit(":", 1)[1], 16) == server_port:
                return int(uid)
    return None


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

    def start(self):
        super().start()
        self.handler.port = self.port
        return self

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
    """A raw asyncio server on 127.0.0.1 that misbehaves in time or in size, which aiosmtpd cannot.

    ``mode="trickle"``: a greeting that never ends, one byte every
    *interval* seconds ("220-" and then x's): each read gets a byte well
    within any per-read timeout, so only a deadline on the whole
    conversation stops a client. ``"flood_lines"``: a greeting of "220-"
    lines, as fast as the client reads, forever. ``"endless_line"``: one
    greeting line that never ends, as fast. ``"flood_ehlo"``: a good
    greeting, then an EHLO reply of "250-" lines forever. ``"flood_final"``:
    a correct dialogue up to the message, then "250-" lines forever as its
    final reply. ``"stall_after_data"``: a correct dialogue up to the
    message, then silence instead of the final answer.
    ``"drop_mid_message"``: a hang-up after the first line of the message.
    With *certs* it speaks implicit TLS first. Counts its connections and
    bytes sent; records nothing as delivered.
    """

    MODES = ("trickle", "flood_lines", "endless_line", "flood_ehlo", "flood_final", "stall_after_data",
             "drop_mid_message")

    def __init__(self, mode: str, interval: float = 0.2, port: int = 0, certs: Optional[Certs] = None):
        if mode not in self.MODES:
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

    async def _flood(self, writer: asyncio.StreamWriter, chunk: bytes) -> None:
        """*chunk* again and again, as fast as the client takes it."""
        block = chunk * max(1, (64 << 10) // len(chunk))
        while True:
            writer.write(block)
            self.bytes_sent += len(block)
            await writer.drain()

    async def _dialogue(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A correct SMTP dialogue, but for the misbehaviour the mode names."""
        writer.write(b"220 slow.test ESMTP\r\n")
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                if self.mode == "flood_ehlo":
                    await self._flood(writer, b"250-" + b"X" * 60 + b"\r\n")
                writer.write(b"250 slow.test\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                if self.mode == "drop_mid_message":
                    await reader.readline()
                    return
                while (await reader.readline()) not in (b".\r\n", b""):
                    pass
                if self.mode == "flood_final":
                    await self._flood(writer, b"250-" + b"Y" * 60 + b"\r\n")
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
            elif self.mode == "flood_lines":
                await self._flood(writer, b"220-" + b"x" * 60 + b"\r\n")
            elif self.mode == "endless_line":
                writer.write(b"220 ")
                await self._flood(writer, b"x" * 1024)
            else:
                await self._dialogue(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _listen(self, loop: asyncio.AbstractEventLoop):
        return asyncio.start_server(self._client, LOOPBACK, self.port,
                                    ssl=server_context(self.certs) if self.certs else None)


class ScriptedServer:
    """A tiny TCP server on 127.0.0.1 that sends each connection the bytes in ``script``, then its EOF.

    After the script it shuts its sending side and reads what the client
    sends until the client closes: the client's commands never meet a
    reset, so what it makes of the script is all that is tested. One
    client at a time (set ``script`` before each connection).
    """

    def __init__(self) -> None:
        self.script = b""
        self.listener = socket.socket()
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._closed = False

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, unused_addr = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn, self.script), daemon=True).start()

    @staticmethod
    def _talk(conn: socket.socket, script: bytes) -> None:
        conn.settimeout(10)
        try:
            conn.sendall(script)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closed = True
        self.listener.close()


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
    parser.add_argument("--slow", choices=list(SlowServer.MODES), help="a SlowServer instead")
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
