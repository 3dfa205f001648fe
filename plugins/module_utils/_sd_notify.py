# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""systemd's service notifications (sd_notify(3)), standard library only.

PRIVATE to the sysops.fleet collection.

A ``Type=notify`` service tells systemd ``READY=1`` once it is really ready
(``systemctl start`` waits for it, and the unit is "activating" until then),
``WATCHDOG=1`` at least once per ``WatchdogSec=`` (else systemd kills and
restarts it), ``STOPPING=1`` on its way out and ``STATUS=...`` for
``systemctl status``. Each message is one datagram to the ``AF_UNIX`` socket
that ``$NOTIFY_SOCKET`` names: a path, or an abstract name written with a
leading ``@``. Outside systemd (cron, a terminal, a container) there is no
``$NOTIFY_SOCKET`` and every call does nothing.

The variables are taken out of the environment when read, as
``sd_notify(unset_environment=1)`` does, so that the children the daemon runs
(``ping``, ``df``) cannot speak for it.
"""

from __future__ import annotations

import os
import socket
from typing import MutableMapping, Optional

VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _address(value: str) -> Optional[str]:
    """The socket address ``$NOTIFY_SOCKET`` names, or None if it is not one we can use."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]  # the abstract namespace
    if value.startswith("/"):
        return value
    return None  # unset, empty, or a kind we do not speak (vsock: "vsock:CID:PORT")


def _watchdog_seconds(environ: MutableMapping[str, str], pid: int) -> Optional[float]:
    """``WatchdogSec=`` in seconds when the watchdog is meant for process *pid*, else None."""
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None  # set for another process (our parent's, say)
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None


class Notifier:
    """Sends notifications to systemd, or does nothing when there is no systemd to tell."""

    def __init__(self, address: Optional[str] = None, watchdog: Optional[float] = None):
        self.address = address
        self.watchdog = watchdog  # WatchdogSec= in seconds, None when off
        self.error = ""  # the last send error, for the caller to log once

    @classmethod
    def from_environment(cls, environ: Optional[MutableMapping[str, str]] = None) -> "Notifier":
        """The notifier for this process, from ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC``; takes them out."""
        environ = os.environ if environ is None else environ
        address = _address(environ.get("NOTIFY_SOCKET", ""))
        watchdog = _watchdog_seconds(environ, os.getpid()) if address else None
        for name in VARIABLES:
            environ.pop(name, None)
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_every(self) -> Optional[float]:
        """How often to send WATCHDOG=1: half of WatchdogSec=, as sd_watchdog_enabled(3) advises."""
        return self.watchdog / 2 if self.watchdog else None

    def send(self, **fields: object) -> bool:
        """One notification (``READY=1``, ``STATUS=...``); False (and ``error`` set) if it could not be sent."""
        if self.address is None:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value).replace("\n", " ")  # one line each: a newline would start another field
            lines.append(f"{key.upper()}={text}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
        except OSError as exc:
            self.error = f"cannot notify systemd through {self.address.lstrip(chr(0))}: {exc.strerror or exc}"
            return False
        self.error = ""
        return True

    def ready(self, status: str = "") -> bool:
        return self.send(ready=1, status=status) if status else self.send(ready=1)

    def status(self, status: str) -> bool:
        return self.send(status=status)

    def ping(self, status: str = "") -> bool:
        """WATCHDOG=1 (with a new status line, if given), when the watchdog is on."""
        if not self.watchdog:
            return self.status(status) if status else False
        return self.send(watchdog=1, status=status) if status else self.send(watchdog=1)

    def stopping(self, status: str = "") -> bool:
        return self.send(stopping=1, status=status) if status else self.send(stopping=1)
