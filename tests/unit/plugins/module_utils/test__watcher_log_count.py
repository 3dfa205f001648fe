# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The watcher's start line and its READY status for systemd count the addresses it watches, not the entries of
``watch``, less ``exclude``.

Issue 22's second outside tester: ``watch = 127.0.0.1-6`` logged "1 watched
host(s)", and systemd's status said "watching 2 host(s)" for seven. The
watcher runs in the foreground (as under systemd, a datagram socket of the
test standing for systemd's), pings only 127.0.0.x, and its log (stderr)
and what reached the socket are read back.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from ansible_collections.sysops.fleet.plugins.module_utils import _pidfile, _watcher

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(_watcher.__file__), "..", "..", "..", "..", ".."))


def test_a_range_of_six_and_a_single_address_less_one_excluded_are_six_watched_hosts(tmp_path):
    for directory in ("lib", "log", "run"):
        (tmp_path / directory).mkdir()
    path = tmp_path / "watcher.ini"
    path.write_text(f"[watcher]\ninterval = 5\npidfile = {tmp_path}/run/watcher.pid\nlog_file = {tmp_path}/log/w.log\n"
                    f"state_dir = {tmp_path}/lib\n[hosts]\nwatch = 127.0.0.1-6, 127.0.0.9\nexclude = 127.0.0.4\n")
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(tmp_path / "notify.sock"))
    systemd.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify.sock"))
    env.pop("WATCHDOG_USEC", None)
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from ansible_collections.sysops.fleet.plugins.module_utils import _watcher_cli; "
         "_watcher_cli.entry_point(sys.argv[2:])", COLLECTIONS, "--config", str(path), "run", "--log-file", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready = systemd.recv(4096).decode()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _pidfile.running_pid(str(tmp_path / "run" / "watcher.pid")) != proc.pid:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        systemd.close()
        proc.kill()
        proc.wait()
    started = [line for line in err.splitlines() if "started: pid" in line]
    assert started and ", 6 watched host(s)," in started[0], out + err
    assert "READY=1" in ready and "STATUS=watching 6 host(s) and the disks" in ready, ready
