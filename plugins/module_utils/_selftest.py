# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Prove, as the daemon's user, that the watcher can do a round: before it starts, never after.

PRIVATE to the sysops.fleet collection. Pure standard library.

A daemon that starts and then fails every round is worse than one that does
not start: the role says ok, the alerts are lost. The failures met in the
field were all of the kind a few seconds of trying find:

* the interpreter's own files out of the user's reach (a Python under
  ``/root``): the first alert died on "unknown encoding: idna", since
  modules are imported lazily, as the user, mid-round;
* a directory the user must write (state, spool, log, run, the textfile
  directory of node_exporter) that it cannot;
* no way to probe the watched hosts (no ICMP socket, no ``ping``) or to
  read the disks (no ``df``, nor a worker process).

``run`` does each step a round does, except sending anything: build and
encode an alert, look up the codecs a mail needs, make a TLS context if one
is used, choose the probe method, read the disks once, write and remove a
file in every directory. It returns what failed, one sentence each, naming
the path or the module and what to do.
"""

from __future__ import annotations

import codecs
import errno
import os
import tempfile
from typing import Callable, List

from . import _disk, _mail, _sweep, _watcher


def _step(failures: List[str], what: str, action: Callable[[], object]) -> None:
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - every failure is a finding, none may stop the others
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        failures.append(f"{what}: {type(exc).__name__}: {detail}")


def _writable(directory: str) -> Callable[[], None]:
    def attempt() -> None:
        os.makedirs(directory, 0o750, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=directory, prefix=".selftest-")
        os.close(fd)
        os.unlink(path)
    return attempt


def _mail_steps(settings: _watcher.Settings) -> Callable[[], None]:
    def attempt() -> None:
        config = settings.report.mail
        for name in ("idna", "ascii", "utf-8", "latin-1"):
            codecs.lookup(name)
        config.host.encode("idna")
        sender = config.mail_from
        recipients = config.mail_to or [sender]
        message = _mail.build_message(sender, recipients, "[fleet-watcher] self-test", "self-test\n",
                                      "<p>self-test</p>", domain=config.host)
        message.as_bytes(policy=_mail.POLICY)
        if config.smtp.security != "none":
            _mail.tls_context(config.smtp)
    return attempt


def run(settings: _watcher.Settings) -> List[str]:
    """What keeps this watcher from doing its rounds, as this process's user; empty when nothing does."""
    failures: List[str] = []
    _step(failures, "building an alert mail", _mail_steps(settings))
    directories = [("state directory", settings.state_dir), ("log directory", os.path.dirname(settings.log_file)),
                   ("run directory", os.path.dirname(settings.pidfile)),
                   ("mail spool", settings.report.mail.spool_dir)]
    if settings.textfile_dir:
        directories.append(("[metrics] textfile_dir", settings.textfile_dir))
    for what, directory in directories:
        _step(failures, f"writing in the {what} {directory}", _writable(directory))
    if settings.hosts:
        _step(failures, f"probing the watched hosts (method {settings.host_method})",
              lambda: _sweep.choose_method(settings.host_method, (4,)))
    config = settings.report
    _step(failures, "reading the disks",
          lambda: _disk.read_filesystems(config.selection, config.probe_timeout, config.workers))
    return [_hint(f) for f in failures]


def _hint(failure: str) -> str:
    """What to do, for the failures whose cure is known."""
    if "unknown encoding" in failure or "No module named" in failure:
        return (failure + " (the interpreter's files are out of this user's reach: run the watcher with a "
                "Python this user can read, such as /usr/bin/python3; the role's watcher_python)")
    if os.strerror(errno.EACCES) in failure or os.strerror(errno.EPERM) in failure:
        return failure + " (give this user write access there, or choose another directory)"
    return failure
