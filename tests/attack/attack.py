# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Attacks on a root install of the watcher, made as the daemon's own user.

    python3 attack.py [--prefix DIR] [--user sysops-fleet] [--smtp-port 2525] [--only NAME,...] [--json]

Run as root on a host where the ``sysops.fleet.watcher`` role installed the
watcher as root (cron as its service manager), with mail going to
127.0.0.1:SMTP_PORT. Standard library only (Python 3.9+), so the same file
runs on the test machine and in the molecule containers.

Each attack plants something as the daemon's user (a symbolic link to a root
file, a FIFO, a forged pid, a lock held by another process, a race on temp
files...), then runs what root really runs on such a host: ``fleet-watcher``
start/status/stop/restart/reload/report as root, every line of the cron file
as the user it names (as cron would), ``logrotate -f`` on the role's file,
and the disk report's core as root with the watcher's history and spool.
After each attack it checks that

* the bait is untouched: a root file (content, owner, mode), a root
  directory (owner, mode, contents), a file that must never be created,
  and a root secret that must never reach a mail (an SMTP sink on
  127.0.0.1 records every message);
* no unrelated process got a signal: a root sentinel and the attacker's own
  decoy record every catchable signal and must stay alive;
* every root command returned within ``--timeout`` seconds.

Prints one line per attack (or JSON) and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings

# The mail sink's threads make this process multi-threaded; its forked children only switch
# users and touch files, so the fork warning is noise here.
warnings.filterwarnings("ignore", message=".*multi-threaded.*fork", category=DeprecationWarning)

BAIT = "/etc/sysops-fleet-bait"
CANARY = "sysops-fleet-canary-" + os.urandom(8).hex()
SIGNALLED = "/tmp/.sysops-fleet-attack-signals"  # + ".root" (the sentinel's) and ".user" (the decoy's)
RECORDER = r"""
import os, signal, sys, time
out = sys.argv[1]
def note(signum, frame):
    with open(out, "a") as handle:
        handle.write(f"{os.getpid()} {signum}\n")
for s in range(1, signal.NSIG):
    if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
        try:
            signal.signal(s, note)
        except (OSError, ValueError, RuntimeError):
            pass
while True:
    time.sleep(1)
"""


# ---- the install under attack --------------------------------------------------------------

class Layout:
    """The paths of the install, read from its own settings (root reads them: root owns them)."""

    def __init__(self, prefix: str, user: str):
        self.prefix = prefix.rstrip("/")
        self.bin = f"{self.prefix}/opt/sysops-fleet/bin/fleet-watcher"
        self.lib = self.bin  # the program is a zipapp holding the core: importable from its own path
        self.config = f"{self.prefix}/etc/sysops-fleet/watcher.ini"
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.config)
        main = parser["watcher"]
        self.pidfile = main.get("pidfile")
        self.log = main.get("log_file")
        self.state_dir = main.get("state_dir")
        self.spool = parser["mail"].get("spool_dir") or os.path.join(self.state_dir, "spool")
        self.mail_to = parser["mail"].get("to", "").strip()
        self.smtp = (parser["mail"].get("smtp_host", ""), parser["mail"].get("smtp_port", ""))
        self.history = os.path.join(self.state_dir, "history.json")
        self.state = os.path.join(self.state_dir, "state.json")
        self.cron_file = "/etc/cron.d/sysops-fleet" if not self.prefix else ""
        self.logrotate = "/etc/logrotate.d/sysops-fleet" if not self.prefix else ""
        self.user = pwd.getpwnam(user)
        with open(self.bin, "rb") as handle:  # the interpreter the watcher runs on (a zipapp: bytes after line 1)
            self.python = handle.readline()[2:].decode("utf-8").split()[0]


def cron_lines(path: str):
    """(user, command) of every entry of a system cron file."""
    entries = []
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return entries
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split()
        if fields[0].startswith("@"):
            entries.append((fields[1], " ".join(fields[2:])))
        elif len(fields) > 6:
            entries.append((fields[5], " ".join(fields[6:])))
    return entries


# ---- doing things as the daemon's user -----------------------------------------------------

def as_user(layout: Layout, func, *args) -> None:
    """Run func(*args) in a child that has become the daemon's user; raise if it failed."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            _demoter(layout.user)()
            func(*args)
        except BaseException as exc:  # noqa: BLE001
            sys.stderr.write(f"attacker: {exc}\n")
            code = 1
        os._exit(code)
    status = os.waitpid(pid, 0)[1]
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the attacker's step {func.__name__} failed")


def _demoter(entry: pwd.struct_passwd):
    def demote():
        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    return demote


def spawn_as_user(layout: Layout, argv):
    return subprocess.Popen(argv, preexec_fn=_demoter(layout.user), stdin=subprocess.DEVNULL, cwd="/",  # noqa: S603 pylint: disable=subprocess-popen-preexec-fn
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def replace_with(path: str, kind: str, target: str = "") -> None:
    """(As the user) put a symlink, a FIFO, a directory or a file at *path*."""
    if os.path.islink(path) or os.path.isfile(path) or stat.S_ISFIFO(_mode(path)):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if kind == "symlink":
        os.symlink(target, path)
    elif kind == "fifo":
        os.mkfifo(path, 0o644)
    elif kind == "dir":
        os.mkdir(path)
    elif kind == "file":
        with open(path, "w", encoding="ascii") as handle:
            handle.write(target)


def _mode(path: str) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


def remove_plants(paths) -> None:
    for path in paths:
        mode = _mode(path)
        if not mode:
            continue
        if stat.S_ISDIR(mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


# ---- bait, sentinel, mail sink ---------------------------------------------------------------

def make_bait() -> None:
    shutil.rmtree(BAIT, ignore_errors=True)
    os.mkdir(BAIT, 0o755)
    with open(f"{BAIT}/precious", "w", encoding="ascii") as handle:
        handle.write("precious root data\n")
    os.chmod(f"{BAIT}/precious", 0o600)
    with open(f"{BAIT}/secret", "w", encoding="ascii") as handle:
        handle.write(f"root secret {CANARY}\n")
    os.chmod(f"{BAIT}/secret", 0o600)
    os.mkdir(f"{BAIT}/dir", 0o755)


def bait_state() -> dict:
    found = {}
    for name in ("precious", "secret", "dir"):
        st = os.lstat(f"{BAIT}/{name}")
        entry = {"uid": st.st_uid, "gid": st.st_gid, "mode": stat.S_IMODE(st.st_mode), "type": stat.S_IFMT(st.st_mode)}
        if stat.S_ISREG(st.st_mode):
            with open(f"{BAIT}/{name}", "rb") as handle:
                entry["sha"] = hashlib.sha256(handle.read()).hexdigest()
        else:
            entry["entries"] = sorted(os.listdir(f"{BAIT}/{name}"))
        found[name] = entry
    found["others"] = sorted(set(os.listdir(BAIT)) - {"precious", "secret", "dir"})
    return found


class MailSink:
    """The smallest SMTP server that accepts every message, on 127.0.0.1 only."""

    def __init__(self, port: int):
        self.messages = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        reader = conn.makefile("rb")
        try:
            conn.sendall(b"220 sink ESMTP\r\n")
            while True:
                line = reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    body = []
                    for data in iter(reader.readline, b""):
                        if data in (b".\r\n", b".\n"):
                            break
                        body.append(data)
                    self.messages.append(b"".join(body).decode("utf-8", "replace"))
                    conn.sendall(b"250 queued\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 sink\r\n")
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            return
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopping = True
        self.sock.close()


# ---- root's side ------------------------------------------------------------------------------

class Root:
    """What root runs on the host, each with a deadline; every run is recorded."""

    def __init__(self, layout: Layout, timeout: float, control: bool = False):
        self.layout = layout
        self.timeout = timeout
        self.control = control
        self.runs = []

    def run(self, label: str, argv, user: str = "root") -> None:
        started = time.monotonic()
        demote = None if user == "root" else _demoter(pwd.getpwnam(user))
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": "/root" if user == "root" else pwd.getpwnam(user).pw_dir, "LOGNAME": user, "USER": user}
        try:
            proc = subprocess.run(argv, preexec_fn=demote, capture_output=True, text=True, timeout=self.timeout,  # noqa: S603 pylint: disable=subprocess-run-check
                                  env=env, stdin=subprocess.DEVNULL, start_new_session=True)
            outcome = {"rc": proc.returncode, "out": (proc.stdout + proc.stderr).strip()[-300:]}
        except subprocess.TimeoutExpired:
            outcome = {"rc": None, "out": f"did not return within {self.timeout:g}s (killed)"}
        self.runs.append(dict(label=label, seconds=round(time.monotonic() - started, 2), **outcome))

    def fleet_watcher(self, *words: str) -> None:
        self.run(f"root: fleet-watcher {' '.join(words)}", [self.layout.bin, *words])

    def cron(self) -> None:
        """Every line of the cron file, as the user it names (cron runs them with /bin/sh -c)."""
        for user, command in cron_lines(self.layout.cron_file):
            self.run(f"cron as {user}: {command}", ["/bin/sh", "-c", command], user=user)

    def logrotate(self) -> None:
        if self.layout.logrotate and os.path.exists(self.layout.logrotate) and shutil.which("logrotate"):
            with tempfile.TemporaryDirectory(prefix="attack-logrotate-") as work:
                self.run("root: logrotate -f", ["logrotate", "-f", "-s", os.path.join(work, "state"),
                                                self.layout.logrotate])

    def disk_report(self) -> None:
        """The disk report's core as root with the watcher's history and spool (disk_report with become)."""
        code = (f"import sys; sys.path.insert(0, {self.layout.lib!r})\n"
                f"from sysops_fleet_core import _report\n"
                f"options = {{'history_file': {self.layout.history!r}, 'spool_dir': {self.layout.spool!r}, "
                f"'send': 'always', 'mail_to': ['ops@example.com'], 'smtp_host': '127.0.0.1', "
                f"'smtp_port': {int(self.layout.smtp[1] or 25)}, 'smtp_timeout': 5}}\n"
                f"print(_report.run(_report.config_from_options(options)).error or 'ok')\n")
        self.run("root: the disk report (history and spool of the watcher)", [self.layout.python, "-c", code])

    def everything(self) -> None:
        """What root may run on a watcher host, in the order a day brings them."""
        if self.control:  # the naive root of the first round: opens, appends, signals as told (before start
            # puts a planted pidfile aside, so that it meets the plant)
            code = (f"import os\ntry:\n    os.write(os.open({self.layout.log!r}, os.O_WRONLY | os.O_APPEND), b'x')\n"
                    f"except OSError:\n    pass\n"
                    f"try:\n    os.kill(int(open({self.layout.pidfile!r}).read().split()[0]), 15)\n"
                    f"except (OSError, ValueError, IndexError):\n    pass\n")
            self.run("control: a naive root that follows links and signals what the pidfile says",
                     [self.layout.python, "-c", code])
        for words in (("start", "--if-not-running"), ("status",), ("reload",), ("restart",), ("report",),
                      ("check",), ("stop",)):
            self.fleet_watcher(*words)
        self.cron()
        self.logrotate()
        self.disk_report()
        self.fleet_watcher("stop")


# ---- the attacks ----------------------------------------------------------------------------

def attacks(layout: Layout):
    """(name, plant, paths to clean up) for every attack; plant runs as the daemon's user."""
    pid, log, spool = layout.pidfile, layout.log, layout.spool
    lock = layout.history + ".lock"
    listing = [
        ("log is a symlink to a root file", lambda: replace_with(log, "symlink", f"{BAIT}/precious"), [log]),
        ("log is a symlink to a new file in a root directory", lambda: replace_with(log, "symlink", f"{BAIT}/new"), [log]),
        ("log is a FIFO", lambda: replace_with(log, "fifo"), [log]),
        ("pidfile is a symlink to a root file", lambda: replace_with(pid, "symlink", f"{BAIT}/precious"), [pid]),
        ("pidfile is a symlink to a new file in a root directory",
         lambda: replace_with(pid, "symlink", f"{BAIT}/new"), [pid]),
        ("pidfile is a FIFO", lambda: replace_with(pid, "fifo"), [pid]),
        ("pidfile is a directory", lambda: replace_with(pid, "dir"), [pid]),
        ("state file is a FIFO", lambda: replace_with(layout.state, "fifo"), [layout.state]),
        ("history is a symlink to a root file", lambda: replace_with(layout.history, "symlink", f"{BAIT}/precious"),
         [layout.history]),
        ("history lock is a symlink to a new file in a root directory",
         lambda: replace_with(lock, "symlink", f"{BAIT}/new"), [lock]),
        ("history lock is a FIFO", lambda: replace_with(lock, "fifo"), [lock]),
        ("spooled message is a symlink to a root secret",
         lambda: replace_with(os.path.join(spool, "20000101T000000-000000001-1.eml"), "symlink", f"{BAIT}/secret"),
         [os.path.join(spool, "20000101T000000-000000001-1.eml")]),
        ("spool directory is a symlink to a root directory", lambda: replace_with(spool, "symlink", f"{BAIT}/dir"),
         [spool]),
        ("spooled message is a FIFO", lambda: replace_with(os.path.join(spool, "20000101T000000-000000002-1.eml"), "fifo"),
         [os.path.join(spool, "20000101T000000-000000002-1.eml")]),
    ]
    return listing


def forged_pid(layout: Layout, victim: int) -> None:
    """(As the user) a pidfile naming *victim*, not locked by anyone."""
    replace_with(layout.pidfile, "file", f"{victim}\n")


HOLDER = r"""
import fcntl, os, sys, time
path, pid = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, (str(os.getpid()) if pid == "self" else pid).encode() + b"\n")
while True:
    time.sleep(1)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="")
    parser.add_argument("--user", default="sysops-fleet")
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--only", default="", help="comma-separated substrings of attack names")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--control", action="store_true",
                        help="also run root commands that follow links (what the watcher must never do): "
                             "the attacks they join must then fail, which proves the checks can")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("attack.py runs as root (root's side), and becomes the daemon's user for each attack")
    layout = Layout(args.prefix, args.user)
    if not layout.mail_to or layout.smtp != ("127.0.0.1", str(args.smtp_port)):
        sys.exit(f"the install must mail to 127.0.0.1:{args.smtp_port} (watcher_mail_to, watcher_smtp_host/port): "
                 f"the spool attacks need a server that accepts mail; got {layout.smtp}")
    make_bait()
    forget_signals()
    results, started = [], []
    sink = MailSink(args.smtp_port)
    root = Root(layout, args.timeout, control=args.control)
    try:
        sentinel = subprocess.Popen([layout.python, "-c", RECORDER, SIGNALLED + ".root"])  # nobody may signal it
        started.append(sentinel)
        decoy = spawn_as_user(layout, [layout.python, "-c", RECORDER, SIGNALLED + ".user"])  # the user's bystander
        started.append(decoy)
        time.sleep(0.5)
        before = bait_state()
        cases = list(attacks(layout))
        cases.append(("pidfile names a root process (not locked)", lambda: forged_pid(layout, sentinel.pid),
                      [layout.pidfile]))
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        root.fleet_watcher("stop")
        for name, plant, paths in cases:
            if wanted and not any(w in name for w in wanted):
                continue
            results.append(one_attack(layout, root, name, plant, paths, before, sink, sentinel, decoy))
        for who, pid_word in (("a root process", str(sentinel.pid)), ("its own bystander", "self")):
            name = f"pidfile locked by another process of the user, naming {who}"
            if wanted and not any(w in name for w in wanted):
                continue
            results.append(locked_attack(layout, root, name, pid_word, before, sink, sentinel, decoy))
        if not wanted or any(w in "temp file race" for w in wanted):
            results.append(race_attack(layout, root, before, sink, sentinel, decoy))
    finally:
        root.fleet_watcher("stop")
        root.fleet_watcher("start")
        sink.stop()
        for proc in started:
            proc.kill()
            proc.wait()
        shutil.rmtree(BAIT, ignore_errors=True)
        forget_signals()
    failed = [r for r in results if not r["ok"]]
    if args.json:
        print(json.dumps({"results": results, "failed": len(failed)}, indent=1))
    else:
        for r in results:
            slowest = max((run["seconds"] for run in r["runs"]), default=0)
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['name']} ({len(r['runs'])} root commands, slowest {slowest:g}s)"
                  + ("" if r["ok"] else f": {'; '.join(r['problems'])}"))
        print(f"{len(results) - len(failed)} of {len(results)} attacks held")
    return 1 if failed else 0


def forget_signals() -> None:
    for suffix in (".root", ".user"):
        try:
            os.unlink(SIGNALLED + suffix)
        except FileNotFoundError:
            pass


def verdict(name, root: Root, before, sink: MailSink, sentinel, decoy, extra=()):
    problems = list(extra)
    after = bait_state()
    for key in before:
        if before[key] != after[key]:
            problems.append(f"bait {key} changed: {before[key]} -> {after[key]}")
    if os.path.lexists(f"{BAIT}/new"):
        problems.append(f"{BAIT}/new was created (owner uid {os.lstat(f'{BAIT}/new').st_uid})")
    for message in sink.messages:
        if CANARY in message:
            problems.append("a mail carried the root secret")
    got = []
    for suffix in (".root", ".user"):
        try:
            with open(SIGNALLED + suffix, encoding="ascii") as handle:
                got += [line for line in handle.read().split("\n") if line]
        except FileNotFoundError:
            pass
    if got:
        problems.append(f"signals reached a bystander: {got}")
    for proc, who in ((sentinel, "the root sentinel"), (decoy, "the user's bystander")):
        if proc.poll() is not None:
            problems.append(f"{who} died (exit {proc.returncode})")
    for run in root.runs:
        if run["rc"] is None:
            problems.append(f"{run['label']} {run['out']}")
    return {"name": name, "ok": not problems, "problems": problems, "runs": root.runs}


def reset(layout: Layout, root: Root, paths) -> None:
    """Take the plants away (as the user), stop whatever runs, forget the signals recorded."""
    as_user(layout, remove_plants, list(paths))
    root.fleet_watcher("stop")
    forget_signals()


def one_attack(layout, root_template: Root, name, plant, paths, before, sink, sentinel, decoy):
    root = Root(layout, root_template.timeout, root_template.control)
    make_bait()
    as_user(layout, plant)
    root.everything()
    result = verdict(name, root, before, sink, sentinel, decoy)
    reset(layout, Root(layout, root.timeout), paths)
    return result


def locked_attack(layout, root_template: Root, name, pid_word, before, sink, sentinel, decoy):
    root = Root(layout, root_template.timeout, root_template.control)
    make_bait()
    as_user(layout, remove_plants, [layout.pidfile])
    holder = spawn_as_user(layout, [layout.python, "-c", HOLDER, layout.pidfile, pid_word])
    time.sleep(0.5)
    root.everything()
    extra = [] if holder.poll() is None else ["the lock holder was killed"]
    result = verdict(name, root, before, sink, sentinel, decoy, extra)
    holder.kill()
    holder.wait()
    reset(layout, Root(layout, root.timeout), [layout.pidfile])
    return result


def race_attack(layout, root_template: Root, before, sink, sentinel, decoy):
    """While root works, the user swaps every temp file in its directories for a link to a root file."""
    root = Root(layout, root_template.timeout)
    make_bait()
    stop_at = time.monotonic() + 60

    def swap():
        dirs = [layout.state_dir, layout.spool]
        while time.monotonic() < stop_at and not os.path.exists(os.path.join(layout.state_dir, ".race-stop")):
            for directory in dirs:
                try:
                    names = os.listdir(directory)
                except OSError:
                    continue
                for entry in names:
                    if entry.startswith(".tmp"):
                        path = os.path.join(directory, entry)
                        try:
                            os.unlink(path)
                            os.symlink(f"{BAIT}/precious", path)
                        except OSError:
                            pass
    racer_pid = os.fork()
    if racer_pid == 0:  # pragma: no cover - child
        try:
            _demoter(layout.user)()
            swap()
        finally:
            os._exit(0)
    try:
        for _round in range(3):
            root.fleet_watcher("report")
            root.disk_report()
            root.fleet_watcher("check")
    finally:
        as_user(layout, replace_with, os.path.join(layout.state_dir, ".race-stop"), "file", "stop")
        os.waitpid(racer_pid, 0)
    result = verdict("temp file race (write_atomic's chmod/chown)", root, before, sink, sentinel, decoy)
    reset(layout, Root(layout, root.timeout), [os.path.join(layout.state_dir, ".race-stop")])
    return result


if __name__ == "__main__":
    sys.exit(main())
