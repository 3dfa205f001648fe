# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The watcher's privilege boundary, against a real root system install on this machine.

The watcher role is applied to this machine as root (``install.yml``: system
layout, cron, the system user ``sysops-fleet``), then ``attack.py`` attacks it
as that user. Also here: root's disk report into the watcher's spool and
history, one cron and logrotate file per install, a watcher_root the daemon's
user cannot reach, and ``absent`` with a broken ``watcher.ini``. The last test
removes the install; the module's finalizer makes sure of it.

Needs root; ``scripts/test.sh attack`` runs it.
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time

import pytest

import root_install

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a root system install needs root")

from root_install import BIN, HERE, LEFTOVERS, SMTP_PORT, STATE, USER, ansible, play  # noqa: E402


@pytest.fixture(scope="module")
def attack_results(system_install):
    proc = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "attack.py"), "--smtp-port", str(SMTP_PORT),
                           "--json"], capture_output=True, text=True, timeout=1800, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"attack.py printed no JSON (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


KINDS = ("log is a symlink", "log is a FIFO", "pidfile is a symlink", "pidfile is a FIFO", "pidfile is a directory",
         "state file is a FIFO", "history is a symlink", "history lock is a symlink", "history lock is a FIFO",
         "spooled message is a symlink", "spool directory is a symlink", "spooled message is a FIFO",
         "pidfile names a root process", "pidfile locked by another process", "temp file race")


def test_every_attack_of_the_daemons_user_holds(attack_results):
    failed = [f"{r['name']}: {'; '.join(r['problems'])}" for r in attack_results["results"] if not r["ok"]]
    assert not failed, "\n".join(failed)


def test_the_suite_ran_every_kind_of_attack_against_every_root_command(attack_results):
    names = [r["name"] for r in attack_results["results"]]
    for kind in KINDS:
        assert any(kind in n for n in names), f"no attack of the kind {kind!r} ran"
    for result in attack_results["results"]:
        labels = " | ".join(run["label"] for run in result["runs"])
        if "race" in result["name"]:
            continue
        for command in ("fleet-watcher start", "fleet-watcher stop", "fleet-watcher reload", "fleet-watcher status",
                        "fleet-watcher report", "cron as root", f"cron as {USER}", "logrotate -f", "disk report"):
            assert command in labels, f"{result['name']}: root never ran {command!r} ({labels})"


def test_the_checks_catch_a_root_that_follows_links(system_install):
    """The control: a naive root step (append to the log path, signal the pid in the pidfile) must be caught."""
    proc = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "attack.py"), "--smtp-port", str(SMTP_PORT),
                           "--json", "--control", "--only", "log is a symlink to a root file,naming a root process"],
                          capture_output=True, text=True, timeout=600, check=False)
    results = {r["name"]: r for r in json.loads(proc.stdout)["results"]}
    linked = results["log is a symlink to a root file"]
    assert not linked["ok"] and any("bait precious changed" in p for p in linked["problems"]), linked
    signalled = results["pidfile locked by another process of the user, naming a root process"]
    assert not signalled["ok"] and any("signals reached a bystander" in p for p in signalled["problems"]), signalled
    assert proc.returncode == 1


class Sink:
    """Mail accepted on 127.0.0.1, counted (attack.py's sink, imported)."""

    def __enter__(self):
        sys.path.insert(0, HERE)
        import attack  # pylint: disable=import-outside-toplevel
        self.server = attack.MailSink(SMTP_PORT)
        return self.server

    def __exit__(self, *exc):
        self.server.stop()


def running(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_a_report_root_spools_into_the_watchers_spool_is_the_daemons_and_goes_out(system_install):
    spool = os.path.join(STATE, "spool")
    before = set(os.listdir(spool)) if os.path.isdir(spool) else set()
    down = ansible("ansible", "localhost", "-i", "tests/attack/inventory.yml", "-m", "sysops.fleet.disk_report", "-a",
                   f"mail_to=ops@example.com smtp_host=127.0.0.1 smtp_port={closed_port()} send=always "
                   f"spool_dir={spool} subject='root report {os.getpid()}'", check=False)
    assert down.returncode != 0 and "spooled to" in down.stdout, down.stdout
    added = sorted(set(os.listdir(spool)) - before)
    assert len(added) == 1, added
    daemon = pwd.getpwnam(USER)
    st = os.stat(os.path.join(spool, added[0]))
    assert (st.st_uid, st.st_gid) == (daemon.pw_uid, daemon.pw_gid), "spooled by the daemon's user, as its owner"
    with Sink() as sink:
        check = subprocess.run([BIN, "check"], capture_output=True, text=True, timeout=60, check=False)
        assert check.returncode == 0, check.stderr
        assert "Permission" not in check.stderr
        assert any(f"root report {os.getpid()}" in m for m in sink.messages), "the daemon delivered root's report"
    state = json.loads(open(os.path.join(STATE, "state.json"), encoding="utf-8").read())
    assert time.time() - state["last_check"] < 60, "the round saved its state"
    assert not [n for n in os.listdir(spool) if n in added], "the spooled report left the spool"


def test_root_adds_to_the_watchers_history_as_the_daemons_user(system_install):
    history = os.path.join(STATE, "history.json")
    out = ansible("ansible", "localhost", "-i", "tests/attack/inventory.yml", "-m", "sysops.fleet.disk_report",
                  "-a", f"history_file={history} send=never")
    assert '"forecast"' in out.stdout
    daemon = pwd.getpwnam(USER)
    for path in (history, history + ".lock"):
        st = os.stat(path)
        assert st.st_uid == daemon.pw_uid, f"{path} belongs to uid {st.st_uid}, not to {USER}"


def test_every_install_has_its_own_cron_and_logrotate_files(system_install, tmp_path):
    prefix = "/srv/sysops-fleet-attack-prefix"
    with open("/etc/cron.d/sysops-fleet", encoding="utf-8") as handle:
        system_cron = handle.read()
    system_logrotate = None
    if os.path.exists("/etc/logrotate.d/sysops-fleet"):
        with open("/etc/logrotate.d/sysops-fleet", encoding="utf-8") as handle:
            system_logrotate = handle.read()
    try:
        play("-e", f"watcher_root={prefix}", "-e", "watcher_user=nobody")
        own = root_install.prefix_cron_files(prefix)
        assert len(own) == 1, own
        with open("/etc/cron.d/sysops-fleet", encoding="utf-8") as handle:
            assert handle.read() == system_cron, "the system install's cron file is untouched"
        if system_logrotate is not None:
            with open("/etc/logrotate.d/sysops-fleet", encoding="utf-8") as handle:
                assert handle.read() == system_logrotate, "the system install's logrotate file is untouched"
        assert not [n for n in os.listdir("/etc/logrotate.d") if n.startswith("sysops-fleet-")], "none under a prefix"
    finally:
        play("-e", f"watcher_root={prefix}", "-e", "watcher_user=nobody", "-e", "watcher_state=absent")
    assert not root_install.prefix_cron_files(prefix) and not os.path.exists(f"/etc/cron.d/{own[0]}"), "its cron file went"
    assert not os.path.exists(prefix)
    assert os.path.exists("/etc/cron.d/sysops-fleet") and os.path.exists(BIN), "the system install is still there"
    if system_logrotate is not None:
        assert os.path.exists("/etc/logrotate.d/sysops-fleet")


def test_a_watcher_root_the_daemons_user_cannot_reach_is_refused_before_touching_the_host(system_install):
    prefix = "/root/sysops-fleet-unreachable"
    refused = play("-e", f"watcher_root={prefix}", check=False)
    assert refused.returncode != 0
    assert "could not pass through /root" in refused.stdout, refused.stdout[-3000:]
    assert not os.path.exists(prefix)


def test_absent_stops_the_daemon_even_with_a_broken_settings_file(system_install):
    """The last test of the suite: it removes the install (the session fixture checks nothing is left)."""
    start = subprocess.run([BIN, "start", "--if-not-running"], capture_output=True, text=True, timeout=60, check=False)
    assert start.returncode == 0, start.stderr
    pid = int(open("/run/sysops-fleet/watcher.pid", encoding="ascii").read())
    with open("/etc/sysops-fleet/watcher.ini", "a", encoding="utf-8") as handle:
        handle.write("\n[watcher]\ninterval = not a number\n[bogus\n")
    status = subprocess.run([BIN, "status"], capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode == 4, "a broken settings file: status cannot tell"
    play("-e", "watcher_state=absent")
    assert not running(pid), "the daemon was stopped"
    with pytest.raises(KeyError):
        pwd.getpwnam(USER)
    left = [p for p in LEFTOVERS if os.path.lexists(p)]
    assert not left, left
    shutil.rmtree("/etc/sysops-fleet-bait", ignore_errors=True)
