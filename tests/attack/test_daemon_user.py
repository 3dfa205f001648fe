# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Round three: the daemon's user against root, on a real root system install of this machine.

What root hands to the daemon's user is that user's: it can stop it, kill it, read it if it is
dumpable, and it writes whatever root later reads. Each test is an attack made as that user with
what a user has (signals, /proc, its own files, its own crontab, a forking process), against
what root really runs: fleet-watcher's commands, logrotate, the role's present and absent, the
disk_report module.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import root_install
from root_install import BIN, LOG_DIR, PIDFILE, STATE, USER, as_user, daemon_user, play, root_runs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a root system install needs root")

CANARY = "sysops-fleet-secret-" + os.urandom(6).hex()

# Stops every other process of its uid, over and over: whatever root hands to the user is frozen
# the moment it becomes the user.
FREEZER = """
import os, signal
while True:
    try:
        os.kill(-1, signal.SIGSTOP)
    except OSError:
        pass
"""

# Keeps forking: each parent exits right after its fork, so its pid is never the same twice.
FORKER = """
import os, time
while True:
    try:
        if os.fork():
            os._exit(0)
    except OSError:
        pass
    time.sleep(0.001)
"""

# Watches every other process of its uid and records what it can take from it: the environment,
# the targets of its descriptors, and its memory (searched for the canary). Writes one JSON line
# per finding to argv[2]; runs until argv[3] exists.
SPY = r"""
import json, os, sys, time
canary, out, stop = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
me = os.getpid()
uid = os.getuid()
seen = set()
scanned = set()  # (pid, start time): each process's memory is searched once

def note(kind, pid, detail):
    if (kind, pid) in seen:
        return
    seen.add((kind, pid))
    with open(out, "a") as handle:
        handle.write(json.dumps({"kind": kind, "pid": pid, "detail": detail}) + "\n")

def memory(pid):
    try:
        key = (pid, open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
        if key in scanned:
            return
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", 0)
    except (OSError, IndexError):
        return
    scanned.add(key)
    with mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5].startswith("/")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                if canary in mem.read(min(end - start, 64 << 20)):
                    note("read the canary in its memory", pid, line)
                    return
            except (OSError, ValueError, OverflowError):
                continue

def look(pid):
    try:
        if os.stat(f"/proc/{pid}").st_uid != uid:
            return
        environ = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        return
    if canary in environ:
        note("read the canary in its environment", pid, "")
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if "sysops-fleet-secret" in target:
                note("found root's secret file among its descriptors", pid, target)
    except OSError:
        pass
    memory(pid)

def last_pid():
    with open("/proc/loadavg") as handle:
        return int(handle.read().split()[4])

# Fast: every new pid as soon as the kernel hands it out, looked at again and again for a few
# seconds (a df lives a millisecond, and is still its parent's copy, root's to /proc, until it
# executes); now and then a full pass over /proc for the longer-lived ones.
newest = last_pid()
young = {}
rounds = 0
while not os.path.exists(stop):
    latest = last_pid()
    now = time.monotonic()
    for pid in range(newest + 1, latest + 1) if latest >= newest else ():
        young[pid] = now
    newest = latest
    for pid, born in list(young.items()):
        if now - born > 5:
            del young[pid]
        elif pid != me:
            look(pid)
    rounds += 1
    if rounds % 200 == 0:
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != me:
                look(int(name))
"""


@pytest.fixture
def spy(system_install):
    """The daemon's user watching its own uid's processes; yields a function that returns what it found."""
    work = tempfile.mkdtemp(prefix="attack-spy-")  # not under pytest's tmp_path: its parents are root's, 0700
    os.chmod(work, 0o777)
    out, stop = os.path.join(work, "found"), os.path.join(work, "stop")
    proc = as_user(["/usr/bin/python3", "-c", SPY, CANARY, out, stop])

    def found():
        assert proc.poll() is None, "the spy itself must still be watching"
        if not os.path.exists(out):
            return []
        with open(out, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle.read().splitlines()]
    yield found
    with open(stop, "w", encoding="ascii") as handle:
        handle.write("stop")
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(work, ignore_errors=True)


def restored():
    """Thaw the user's processes and make the install whole again for the next test."""
    if root_install.user_exists():
        root_install.thaw(daemon_user().pw_uid)
    root_install.fresh_install()


# ---- the user freezes what root hands to it -------------------------------------------------

def test_a_user_who_freezes_its_own_processes_never_hangs_root(system_install):
    """Root's commands end by their deadlines (with a message), never waiting on a stopped process."""
    settings = {"smtp_timeout": 5, "probe_timeout": 5}  # tests/attack/install.yml
    deadlines = {"status": 15, "reload": 15, "stop": 10 + 20, "start": 30 + 2 * settings["probe_timeout"],
                 "report": 30 + 2 * settings["probe_timeout"] + 2 * settings["smtp_timeout"]}
    freezer = as_user(["/usr/bin/python3", "-c", FREEZER])
    try:
        time.sleep(0.5)
        with tempfile.TemporaryDirectory(prefix="attack-logrotate-") as work:
            runs = {word: subprocess.Popen([BIN, word], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,  # noqa: S603
                                           env=root_install.ROOT_ENV, stdin=subprocess.DEVNULL)
                    for word in deadlines}
            started = time.monotonic()
            rotate = root_runs(["logrotate", "-f", "-s", os.path.join(work, "state"), "/etc/logrotate.d/sysops-fleet"],
                               timeout=60)
            results = {}
            for word, proc in runs.items():
                try:
                    out, _err = proc.communicate(timeout=deadlines[word] + 60)
                    results[word] = (proc.returncode, time.monotonic() - started, out)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    results[word] = (None, time.monotonic() - started, "root's command hung")
    finally:
        freezer.kill()
        freezer.wait()
        restored()
    # Slack over each deadline: five root commands, logrotate and a freezer start at once, while CI's
    # other lane keeps both cores busy (30.2 s was seen for the 15 s reload). The old code never ended.
    slack = 45
    assert rotate[0] == 0 and rotate[1] < 15 + slack, f"logrotate (its postrotate reload) hung: {rotate}"
    for word, (code, seconds, out) in results.items():
        assert code is not None and seconds < deadlines[word] + slack, f"{word}: {code} after {seconds:.0f}s: {out}"
        assert code != 0 and "did not finish within" in out and "killed" in out, f"{word}: {out}"


# ---- nothing of root's reaches the user --------------------------------------------------------

def test_root_hands_the_user_neither_its_environment_nor_its_descriptors(spy):
    secret = tempfile.NamedTemporaryFile(prefix=CANARY + "-", delete=False)  # noqa: SIM115
    try:
        os.chmod(secret.name, 0o600)
        fd = os.open(secret.name, os.O_RDONLY)
        os.set_inheritable(fd, True)
        env = dict(root_install.ROOT_ENV, SYSOPS_FLEET_ROOT_TOKEN=CANARY)
        for words in (["check"], ["report", "--check"], ["status"], ["selftest"]) * 3:
            code, _seconds, out = root_runs([BIN, *words], timeout=120, env=env, pass_fds=(fd,))
            assert code is not None, out
        time.sleep(1)
        os.close(fd)
    finally:
        os.unlink(secret.name)
    assert not spy(), f"the daemon's user took from root's process: {spy()}"


def test_root_modules_worker_is_undumpable_even_with_suid_dumpable_1(spy):
    """disk_report as root updates the watcher's history in a worker that became its user: memory out of reach."""
    with open("/proc/sys/fs/suid_dumpable", encoding="ascii") as handle:
        before = handle.read().strip()
    lock = os.path.join(STATE, "history.json.lock")
    holder = as_user(["/usr/bin/python3", "-c", f"import fcntl, os, time\nfd = os.open({lock!r}, os.O_RDONLY | "
                      f"os.O_CREAT, 0o644)\nfcntl.flock(fd, fcntl.LOCK_EX)\ntime.sleep(60)\n"])
    try:
        subprocess.run(["sysctl", "-q", "-w", "fs.suid_dumpable=1"], check=True)
        time.sleep(0.5)  # the holder has the lock: root's worker waits on it, an easy target
        out = root_install.ansible(
            "ansible", "localhost", "-i", "tests/attack/inventory.yml", "-m", "sysops.fleet.disk_report", "-a",
            f"history_file={STATE}/history.json send=never smtp_username=u smtp_password={CANARY} "
            f"smtp_security=starttls", check=False)
    finally:
        subprocess.run(["sysctl", "-q", "-w", f"fs.suid_dumpable={before}"], check=True)
        holder.kill()
        holder.wait()
    assert "cannot keep the disk history" in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]
    assert not spy(), f"the daemon's user got into root's worker: {spy()}"


# ---- what the user plants does not stop root ------------------------------------------------

def plant_pidfile(kind):
    """(As the user) something at the pidfile's path that is not the daemon's pidfile; returns a holder process."""
    root_runs([BIN, "stop"], timeout=60)
    code = {"symlink": f"import os\nos.symlink('/etc/shadow', {PIDFILE!r})\n",
            "fifo": f"import os\nos.mkfifo({PIDFILE!r})\n",
            "directory": f"import os\nos.makedirs({PIDFILE!r} + '/inside')\n"}
    if kind in code:
        root_install.run_as_user(f"import os\ntry:\n    os.unlink({PIDFILE!r})\nexcept OSError:\n    pass\n" + code[kind])
        return None
    sentinel = os.getpid()  # a root process the forged pid names
    holder = as_user(["/usr/bin/python3", "-c", f"import fcntl, os, time\nfd = os.open({PIDFILE!r}, os.O_RDWR | "
                      f"os.O_CREAT, 0o644)\nfcntl.flock(fd, fcntl.LOCK_EX)\nos.ftruncate(fd, 0)\n"
                      f"os.write(fd, b'{sentinel}\\n')\ntime.sleep(300)\n"])
    time.sleep(0.5)
    return holder


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "locked by the user's process"])
def test_a_planted_pidfile_fails_neither_present_nor_absent(system_install, kind):
    holder = plant_pidfile(kind)
    try:
        play()  # present, over the plant: the role starts the daemon all the same
        code, _seconds, out = root_runs([BIN, "status"], 60)
        assert code == 0 and "is running" in out, out
        assert os.stat(PIDFILE).st_uid == daemon_user().pw_uid and os.path.isfile(PIDFILE)
        assert holder is None or holder.poll() is None, "present kills nothing of the user's"
        if holder is not None:
            holder.kill()
            holder.wait()
        holder = plant_pidfile(kind)
        uid = daemon_user().pw_uid
        play("-e", "watcher_state=absent")  # absent, over the plant: everything goes
        assert not root_install.processes_of(uid), root_install.processes_of(uid)
        assert not root_install.user_exists() and not os.path.lexists("/run/sysops-fleet")
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
            holder.wait()
        restored()


def test_absent_leaves_nothing_of_the_user(system_install, tmp_path):
    user = daemon_user()
    forker = as_user(["/usr/bin/python3", "-c", FORKER])
    sleeper = as_user(["sleep", "10000"])
    crontab = tmp_path / "crontab"
    crontab.write_text("* * * * * sleep 1000\n")
    os.chmod(tmp_path, 0o755)
    subprocess.run(["crontab", "-u", USER, str(crontab)], check=True)
    planted = f"/tmp/sysops-fleet-attack-{os.getpid()}"
    root_install.run_as_user(f"import os\nos.makedirs({planted!r} + '/x')\nopen('/dev/shm/sfattack-{os.getpid()}', "
                             f"'w').close()\n")
    time.sleep(0.5)
    try:
        play("-e", "watcher_state=absent")
        assert not root_install.processes_of(user.pw_uid), root_install.processes_of(user.pw_uid)
        time.sleep(0.5)
        assert not root_install.processes_of(user.pw_uid), "nothing came back"
        assert not root_install.user_exists(), "userdel worked"
        assert not os.path.exists(f"/var/spool/cron/crontabs/{USER}"), "its crontab is gone"
        assert not os.path.lexists(planted) and not os.path.lexists(f"/dev/shm/sfattack-{os.getpid()}")
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        forker.kill()
        sleeper.kill()
        restored()


def test_a_sparse_log_does_not_hold_roots_logrotate(system_install):
    """A terabyte of nothing planted as the log: root's logrotate only renames it."""
    root_install.run_as_user(f"import os\nfor name in ('watcher.log', 'watcher.log.1'):\n"
                             f"    path = os.path.join({LOG_DIR!r}, name)\n"
                             f"    with open(path, 'a') as handle:\n        handle.truncate(1 << 40)\n")
    try:
        with tempfile.TemporaryDirectory(prefix="attack-logrotate-") as work:
            for _round in range(2):
                code, seconds, out = root_runs(["logrotate", "-f", "-s", os.path.join(work, "state"),
                                                "/etc/logrotate.d/sysops-fleet"], timeout=120)
                assert code == 0 and seconds < 30, (code, seconds, out)
        assert not [n for n in os.listdir(LOG_DIR) if n.endswith(".gz")]
    finally:
        for name in os.listdir(LOG_DIR):
            if name != "watcher.log":
                os.unlink(os.path.join(LOG_DIR, name))
        restored()


# ---- what comes back from the user is checked and bounded ------------------------------------

POISONED = {
    "a 2000-digit integer": '{"version": 1, "filesystems": {"/": [[1, 1' + "0" * 2000 + ', 1]]}}',
    "samples dated in the future": json.dumps({"version": 1, "filesystems": {"/": [[4102444800.0, 1, 1]] * 100}}),
    "30 MiB of samples": json.dumps({"version": 1, "filesystems": {
        f"/m{i}": [[1700000000.0 + k, 1, 1] for k in range(2400)] for i in range(400)}}),
}


@pytest.mark.parametrize("poison", sorted(POISONED))
def test_a_poisoned_history_never_crashes_roots_report(system_install, poison):
    history = os.path.join(STATE, "history.json")
    root_runs([BIN, "stop"], timeout=60)  # else the daemon's next round drops the poison before root reads it
    with tempfile.TemporaryDirectory(prefix="attack-history-") as work:
        os.chmod(work, 0o755)
        source = os.path.join(work, "history.json")
        with open(source, "w", encoding="utf-8") as handle:
            handle.write(POISONED[poison])
        os.chmod(source, 0o644)
        root_install.run_as_user(f"import shutil\nshutil.copyfile({source!r}, {history!r})\n")
    started = time.monotonic()
    out = root_install.ansible("ansible", "localhost", "-i", "tests/attack/inventory.yml", "-m",
                               "sysops.fleet.disk_report", "-a", f"history_file={history} send=never")
    assert time.monotonic() - started < 60
    assert "dropped" in out.stdout + out.stderr and "Traceback" not in out.stdout, (out.stdout + out.stderr)[-3000:]
    assert os.stat(history).st_uid == daemon_user().pw_uid
    root_runs([BIN, "start"], timeout=120)


# ---- installs and their users -----------------------------------------------------------------

def test_an_install_under_a_prefix_has_a_user_of_its_own_and_its_daily_report_lands_somewhere(system_install):
    prefix = "/srv/sysops-fleet-attack-own-user"
    system = daemon_user()
    code, _s, out = root_runs([BIN, "status"], 60)
    assert code == 0, out
    daemon_pid = int(open(PIDFILE, encoding="ascii").read())
    try:
        play("-e", f"watcher_root={prefix}", "-e", '{"watcher_mail_to": []}')
        cron = root_install.prefix_cron_files(prefix)  # other lanes' installs under prefixes come and go meanwhile
        assert len(cron) == 1, cron
        own = pwd.getpwnam(cron[0])  # the install id names its cron file and its user
        assert own.pw_uid != system.pw_uid and own.pw_dir == f"{prefix}/var/lib/sysops-fleet"
        assert pwd.getpwnam(USER).pw_dir == system.pw_dir, "the system user's home did not move"
        with open(f"/etc/cron.d/{cron[0]}", encoding="utf-8") as handle:
            report_line = [line for line in handle.read().splitlines()
                           if line.endswith(" report") and not line.startswith("#")]
        assert report_line, "without recipients the report is printed, so that cron mails it"
        user, command = report_line[0].split()[5], " ".join(report_line[0].split()[6:])
        assert user == own.pw_name
        printed = subprocess.run(["/bin/sh", "-c", command], preexec_fn=root_install.demoter(own), capture_output=True,  # noqa: S603 pylint: disable=subprocess-popen-preexec-fn
                                 text=True, timeout=120, cwd="/", check=False,
                                 env={"PATH": root_install.ROOT_ENV["PATH"], "HOME": own.pw_dir, "SHELL": "/bin/sh"})
        assert printed.returncode == 0 and "Filesystem" in printed.stdout, printed
        kept = f"{prefix}/var/lib/sysops-fleet/daily-report.txt"
        with open(kept, encoding="utf-8") as handle:
            assert "Filesystem" in handle.read()
    finally:
        play("-e", f"watcher_root={prefix}", "-e", "watcher_state=absent")
    assert not os.path.exists(prefix)
    assert pwd.getpwnam(USER).pw_uid == system.pw_uid, "the system install's user is still there"
    assert os.path.exists(f"/proc/{daemon_pid}"), "the system install's daemon still runs"


def test_a_python_the_daemons_user_cannot_run_fails_the_role_and_absent_still_removes_it(system_install):
    venv = "/root/.cache/sysops-fleet-attack-venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", venv], check=True, capture_output=True)
    before = int(open(PIDFILE, encoding="ascii").read())
    try:
        refused = play("-e", f"watcher_python={venv}/bin/python3", check=False)
        assert refused.returncode != 0
        assert "cannot run" in refused.stdout and "watcher_python" in refused.stdout, refused.stdout[-3000:]
        uid = daemon_user().pw_uid
        # cron's keepalive (fleet-watcher start --if-not-running, every minute) may be running this
        # moment: a second daemon would stay, a keepalive ends within seconds
        deadline = time.monotonic() + 20
        while True:
            running = [p[0] for p in root_install.processes_of(uid) if "fleet-watcher" in p[2]]
            if running == [before] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert running == [before], f"no daemon started on that Python (the old one runs on): {running}"
        play("-e", f"watcher_python={venv}/bin/python3", "-e", "watcher_state=absent")
        assert not root_install.user_exists() and not os.path.exists(BIN)
    finally:
        shutil.rmtree(venv, ignore_errors=True)
        restored()


def test_a_textfile_dir_the_daemons_user_cannot_write_fails_the_role(system_install, tmp_path):
    os.chmod(tmp_path, 0o755)
    refused = play("-e", f"watcher_textfile_dir={tmp_path}", check=False)
    try:
        assert refused.returncode != 0
        assert "self-test failed" in refused.stdout and str(tmp_path) in refused.stdout, refused.stdout[-3000:]
    finally:
        restored()


def test_the_users_text_never_becomes_lines_of_roots_report(system_install):
    """A dead letter and a quarantined file whose names, subject and reason carry line breaks and escapes."""
    spool = os.path.join(STATE, "spool")
    forged = "\n\nALL FILESYSTEMS OK\x1b[2J\u2028"
    root_install.run_as_user(
        "import os\n"
        f"spool = {spool!r}\n"
        "for sub in ('dead', 'quarantine'):\n"
        "    os.makedirs(os.path.join(spool, sub), exist_ok=True)\n"
        f"forged = {forged!r}\n"
        "name = '20240101T000000-000000001-0000001-000001' + forged + '.eml'\n"
        "with open(os.path.join(spool, 'dead', name), 'w') as handle:\n"
        "    handle.write('X-Sysops-Fleet-Refused: a@b.c 550 ' + forged + '\\r\\nSubject: ' + forged + '\\r\\n\\r\\nbody\\r\\n')\n"
        "with open(os.path.join(spool, 'quarantine', 'x' + forged), 'w') as handle:\n"
        "    handle.write('junk')\n"
        "with open(os.path.join(spool, 'quarantine', 'x' + forged + '.why'), 'w') as handle:\n"
        "    handle.write('x ' + forged + '\\n')\n")
    try:
        out = root_install.ansible("ansible", "localhost", "-i", "tests/attack/inventory.yml", "-m",
                                   "sysops.fleet.disk_report", "-a", f"spool_dir={spool} send=never")
        report = json.loads(out.stdout.split("=>", 1)[1])["report"]
        assert "\x1b" not in report and "\u2028" not in report, report
        assert not any(line.strip() == "ALL FILESYSTEMS OK" for line in report.splitlines()), report
        assert "ALL FILESYSTEMS OK" in report, "the text is shown, escaped, not dropped"
    finally:
        root_install.run_as_user(f"import shutil\nfor sub in ('dead', 'quarantine'):\n"
                                 f"    shutil.rmtree({spool!r} + '/' + sub, ignore_errors=True)\n")
