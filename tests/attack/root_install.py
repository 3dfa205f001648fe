# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The root system install the attack tests attack, and what they need to act on it: root's side and the user's."""

import os
import pwd
import signal
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
USER = "sysops-fleet"
BIN = "/opt/sysops-fleet/bin/fleet-watcher"
CONFIG = "/etc/sysops-fleet/watcher.ini"
STATE = "/var/lib/sysops-fleet"
LOG_DIR = "/var/log/sysops-fleet"
PIDFILE = "/run/sysops-fleet/watcher.pid"
SMTP_PORT = 2525
LEFTOVERS = ("/opt/sysops-fleet", "/etc/sysops-fleet", STATE, LOG_DIR, "/run/sysops-fleet",
             "/etc/cron.d/sysops-fleet", "/etc/logrotate.d/sysops-fleet", "/usr/local/bin/fleet-watcher")
ROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            "HOME": "/root", "LOGNAME": "root", "USER": "root"}


def ansible(*args, check=True, timeout=900):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    proc = subprocess.run([os.path.join(VENV_BIN, args[0]), *args[1:]], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return proc


def play(*extra, check=True):
    return ansible("ansible-playbook", "-i", "tests/attack/inventory.yml", "tests/attack/install.yml",
                   "-e", f"attack_smtp_port={SMTP_PORT}", *extra, check=check)


def remove():
    play("-e", "watcher_state=absent", check=False)


def daemon_user():
    return pwd.getpwnam(USER)


def user_exists(name=USER):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def processes_of(uid):
    """Live processes whose real uid is *uid* (zombies left out): (pid, state, command line)."""
    found = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/status", "rb") as handle:
                status = handle.read().decode("ascii", "replace")
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
            found.append((pid, fields["State"].strip()[:1], argv))
    return found


def demoter(entry):
    def demote():
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    return demote


def as_user(argv, entry=None, **kwargs):
    """Start *argv* as the daemon's user (the attacker), in a session of its own."""
    entry = entry or daemon_user()
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.Popen(argv, preexec_fn=demoter(entry), start_new_session=True, cwd="/",  # noqa: S603 pylint: disable=subprocess-popen-preexec-fn
                            stdin=subprocess.DEVNULL,
                            env={"PATH": ROOT_ENV["PATH"], "HOME": "/", "LANG": "C.UTF-8"}, **kwargs)


def run_as_user(code, entry=None, timeout=60):
    """Run Python *code* as the daemon's user to its end; its stdout."""
    entry = entry or daemon_user()
    proc = subprocess.run(["/usr/bin/python3", "-c", code], preexec_fn=demoter(entry), capture_output=True,  # noqa: S603 pylint: disable=subprocess-popen-preexec-fn
                          text=True, timeout=timeout, cwd="/", check=False)
    assert proc.returncode == 0, f"the attacker's step failed: {proc.stderr[-2000:]}"
    return proc.stdout


def thaw(uid):
    """SIGCONT every process of *uid* (after an attack that froze them)."""
    for pid, _state, _argv in processes_of(uid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def root_runs(argv, timeout, env=None, **kwargs):
    """What root runs, timed: (returncode or None when it had to be killed, seconds, stdout+stderr)."""
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env or ROOT_ENV,  # noqa: S603
                              stdin=subprocess.DEVNULL, check=False, **kwargs)
        return proc.returncode, time.monotonic() - started, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        return None, time.monotonic() - started, out.decode("utf-8", "replace") if isinstance(out, bytes) else out


def fresh_install():
    """The system install as the suite expects it: installed, running, nothing planted."""
    play()
    code, _seconds, out = root_runs([BIN, "status"], 60)
    assert code == 0, out


def prefix_cron_files(prefix):
    """The cron files of installs that run the program under *prefix* (other installs may come and go meanwhile:
    CI's other lanes install under prefixes of their own as root)."""
    found = []
    for name in os.listdir("/etc/cron.d"):
        if name.startswith("sysops-fleet-"):
            try:
                with open(f"/etc/cron.d/{name}", encoding="utf-8") as handle:
                    if f"{prefix}/opt/sysops-fleet/bin/fleet-watcher" in handle.read():
                        found.append(name)
            except FileNotFoundError:
                continue
    return found
