# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the module_utils and module tests: real SMTP servers (good and slow), a test CA, df's numbers."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "module_utils")
if HELPERS not in sys.path:
    sys.path.insert(0, HELPERS)

import smtp_server  # noqa: E402  (the helper directory is put on sys.path just above)

HUNG_MOUNT = os.path.join(HELPERS, "hung_mount.py")


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""
    return smtp_server.make_certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def smtpd(certs):
    """Start real aiosmtpd servers on 127.0.0.1: ``smtpd(tls=..., auth=..., handler=..., port=...)``.

    Every server started is stopped at teardown; ``port`` lets a test bring
    a stopped server back on the same port ("the server is back").
    """
    started = []

    def start(handler=None, tls=None, auth=None, auth_require_tls=True, port=0):
        server = smtp_server.SmtpServer(handler or smtp_server.Recorder(), tls=tls, certs=certs, auth=auth,
                                        auth_require_tls=auth_require_tls, port=port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def slow_smtpd(certs):
    """Start raw asyncio servers that misbehave in time: ``slow_smtpd("trickle"|"stall_after_data", port=..., tls=...)``."""
    started = []

    def start(mode, interval=0.2, port=0, tls=False):
        server = smtp_server.SlowServer(mode, interval=interval, port=port, certs=certs if tls else None).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def shm_path(tmp_path):
    """A directory on tmpfs (/dev/shm) when there is one, else tmp_path: for tests that write many files
    (each spool write is fsynced, which a disk makes slow), on a real filesystem all the same."""
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    directory = tempfile.mkdtemp(prefix="sysops-fleet-test-", dir="/dev/shm")
    try:
        yield pathlib.Path(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def df_table(inodes=False):
    """``df -P -T`` (or ``-Pi -T``) as {mount: (device, fstype, n1, n2, n3, pct)}, in 1024-byte blocks or inodes."""
    argv = ["df", "-P", "-T"] + (["-i"] if inodes else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=False,
                         env=dict(os.environ, LC_ALL="C")).stdout
    table = {}
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 7:
            continue
        device, fstype, total, used, free, pct = fields[:6]
        table[" ".join(fields[6:])] = (device, fstype, total, used, free, pct)
    return table


@pytest.fixture
def df():
    return df_table


@pytest.fixture(scope="module")
def system_user():
    """A real system user made for this test module and removed after it (root only): the daemon's user."""
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root")
    import throwaway_user  # pylint: disable=import-outside-toplevel  # the helpers' directory is on sys.path
    entry = throwaway_user.make("sftest")
    yield entry
    throwaway_user.remove(entry)
