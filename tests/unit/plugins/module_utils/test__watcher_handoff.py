# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""fleet-watcher run by root: each command handed to the daemon's user, executed anew, proven before it starts.

Root's side is this test (root); the daemon's user is a real throw-away system user; the program is an
executable script as the role installs one (a shebang naming a Python every user can run).
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import throwaway_user  # noqa: E402

from ansible_collections.sysops.fleet.plugins.module_utils import _watcher_cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a daemon's user other than root needs root")
HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.abspath(os.path.join(HERE, "..", "..", "..", "..", ".build", "collections"))
ROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "SYSOPS_FLEET_ROOT_TOKEN": "root-only"}


@pytest.fixture(scope="module")
def user(system_user):
    return system_user


@pytest.fixture
def install(user):
    """Program, settings (root's) and the daemon's directories under a top directory every user may pass."""
    top = tempfile.mkdtemp(prefix="fleet-cli-")
    os.chmod(top, 0o755)
    program = os.path.join(top, "fleet-watcher")
    with open(program, "w", encoding="utf-8") as handle:
        handle.write(f"#!/usr/bin/python3 -I\nimport sys\nsys.path.insert(0, {COLLECTIONS!r})\n"
                     "from ansible_collections.sysops.fleet.plugins.module_utils import _watcher_cli\n"
                     "_watcher_cli.entry_point()\n")
    os.chmod(program, 0o755)

    def settings(extra=""):
        path = os.path.join(top, "watcher.ini")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"[watcher]\ninterval = 1\nuser = {user.pw_name}\npidfile = {top}/run/watcher.pid\n"
                         f"log_file = {top}/log/watcher.log\nstate_dir = {top}/lib\n[disk]\nprobe_timeout = 5\n"
                         + extra)
        os.chmod(path, 0o644)
        return path

    def run(*words, timeout=120):
        return subprocess.run([program, "--config", settings.path, *words], capture_output=True, text=True,  # noqa: S603
                              timeout=timeout, env=ROOT_ENV, check=False)
    settings.path = settings()
    yield run, settings, top
    pid = None
    try:
        pid = int(open(f"{top}/run/watcher.pid", encoding="ascii").read())
    except (OSError, ValueError):
        pass
    if pid and owner_of(pid)[0] == user.pw_uid:
        os.kill(pid, 9)
    shutil.rmtree(top, ignore_errors=True)


def owner_of(pid):
    if not os.path.exists(f"/proc/{pid}"):
        return [None]
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        return [int(u) for u in dict(line.split(":", 1) for line in handle if ":" in line)["Uid"].split()]


def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as handle:
        return handle.read()


def test_root_starts_the_daemon_as_its_user_with_nothing_of_roots(install, user):
    run, _settings, top = install
    started = run("start")
    assert started.returncode == 0, started.stderr
    pid = int(open(f"{top}/run/watcher.pid", encoding="ascii").read())
    assert owner_of(pid) == [user.pw_uid] * 4
    assert b"root-only" not in environ_of(pid), "root's environment stayed root's"
    assert os.stat(f"{top}/run").st_uid == user.pw_uid, "root made the run directory and gave it to the user"
    status = run("status")
    assert status.returncode == 0 and f"running (pid {pid})" in status.stdout
    stopped = run("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout


def test_a_daemon_that_could_not_work_is_not_started(install, user):
    run, settings, top = install
    unwritable = os.path.join(top, "textfile")
    os.mkdir(unwritable, 0o755)  # root's: the daemon's user cannot write there
    settings.path = settings(f"[metrics]\ntextfile_dir = {unwritable}\n")
    refused = run("start")
    assert refused.returncode == 6, refused
    assert "self-test failed: writing in the [metrics] textfile_dir" in refused.stderr and "Permission denied" in \
        refused.stderr, refused.stderr
    assert not os.path.exists(f"{top}/run/watcher.pid") or run("status").returncode != 0
    selftest = run("selftest")
    assert selftest.returncode == 1 and "FAILED: writing in the [metrics] textfile_dir" in selftest.stdout


def test_a_program_whose_interpreter_the_user_cannot_run_is_refused_with_the_cure(install, user):
    run, _settings, top = install
    hidden = tempfile.mkdtemp(prefix="fleet-cli-python-")  # 0700, as /root is
    try:
        shutil.copy("/usr/bin/python3", os.path.join(hidden, "python3"))
        program = os.path.join(top, "fleet-watcher")
        with open(program, encoding="utf-8") as handle:
            text = handle.read()
        with open(program, "w", encoding="utf-8") as handle:
            handle.write(text.replace("#!/usr/bin/python3", f"#!{hidden}/python3", 1))
        for words, code in ((["start"], 6), (["status"], 4)):
            out = run(*words)
            assert out.returncode == code, out
            assert "cannot run" in out.stderr and "Permission denied" in out.stderr and "watcher_python" in out.stderr
            assert "Traceback" not in out.stderr
    finally:
        shutil.rmtree(hidden)


def test_a_planted_pidfile_is_put_aside_by_start(install, user):
    run, _settings, top = install
    os.makedirs(f"{top}/run", exist_ok=True)
    os.chown(f"{top}/run", user.pw_uid, user.pw_gid)
    throwaway_user.spawn_as(user, ["/usr/bin/python3", "-c", f"import os; os.symlink('/etc/shadow', "
                                   f"'{top}/run/watcher.pid')"]).wait()
    assert os.path.islink(f"{top}/run/watcher.pid")
    started = run("start")
    assert started.returncode == 0, started.stderr
    assert not os.path.islink(f"{top}/run/watcher.pid") and run("status").returncode == 0
    time.sleep(0.5)
    with open(f"{top}/log/watcher.log", encoding="utf-8") as handle:
        assert "put aside what was not this daemon's pidfile" in handle.read()
    assert pwd.getpwnam("root")  # and /etc/shadow is untouched: it was never opened


def test_run_in_the_foreground_as_root_becomes_the_user_in_the_same_process(install, user):
    _run, settings, top = install
    program = os.path.join(top, "fleet-watcher")
    proc = subprocess.Popen([program, "--config", settings.path, "run", "--log-file", "-"], env=ROOT_ENV,  # noqa: S603
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not os.path.exists(f"{top}/lib/state.json"):
            time.sleep(0.1)
        assert owner_of(proc.pid) == [user.pw_uid] * 4, "the very process root started is now the user's"
        assert b"root-only" not in environ_of(proc.pid)
        assert proc.poll() is None
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_ctrl_c_during_a_handed_off_command_ends_with_130_and_a_sentence_not_a_traceback(install, user):
    """The user stops its own process; root's operator presses Ctrl-C: no traceback, no child left."""
    _run, settings, top = install
    stopper = subprocess.Popen(  # noqa: S603
        ["runuser", "-u", user.pw_name, "--", "/usr/bin/python3", "-c",
         "import os, signal, time\n"
         "end = time.time() + 60\n"
         "while time.time() < end:\n"
         "    for p in os.listdir('/proc'):\n"
         "        try:\n"
         f"            if p.isdigit() and int(p) != os.getpid() and os.stat('/proc/' + p).st_uid == {user.pw_uid}:\n"
         "                if b'fleet-watcher' in open('/proc/' + p + '/cmdline', 'rb').read():\n"
         "                    os.kill(int(p), signal.SIGSTOP)\n"
         "        except OSError:\n"
         "            pass\n"
         "    time.sleep(0.01)\n"], env=ROOT_ENV, start_new_session=True)
    try:
        time.sleep(0.5)
        root = subprocess.Popen([os.path.join(top, "fleet-watcher"), "--config", settings.path, "sweep", "127.0.0.1"],  # noqa: S603
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ROOT_ENV,
                                preexec_fn=default_sigint)  # pylint: disable=subprocess-popen-preexec-fn
        time.sleep(3)
        root.send_signal(signal.SIGINT)
        out, err = root.communicate(timeout=30)
    finally:
        os.killpg(stopper.pid, signal.SIGKILL)  # runuser and the user's loop under it
        stopper.wait()
    assert root.returncode == 130, (root.returncode, out, err)
    assert "Traceback" not in err and "interrupted" in err, err
    time.sleep(0.5)
    left = [p for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}")
            and owner_of(int(p))[0] == user.pw_uid and top.encode() in _cmdline(p)]
    assert left == [], "a handed-off command outlived root's interruption"


def default_sigint():
    """A terminal's Ctrl-C reaches a program whose SIGINT is the default (a pytest-xdist worker ignores it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def test_the_sweep_deadline_follows_what_the_sweep_was_asked(tmp_path):
    """An hour for any sweep was a long wait on a stopped child: now what sending and waiting take, plus a minute."""
    args = _watcher_cli.parser(str(tmp_path / "none.ini")).parse_args(["sweep", "127.0.0.1"])
    assert 60 <= _watcher_cli._sweep_deadline(args, None) < 70
    args = _watcher_cli.parser(str(tmp_path / "none.ini")).parse_args(
        ["sweep", "--count", "10", "--spacing", "2", "127.0.0.0/16"])
    assert 60 + 65534 / 1000 + 20 <= _watcher_cli._sweep_deadline(args, None) < 160
    args = _watcher_cli.parser(str(tmp_path / "none.ini")).parse_args(["sweep", "127.0.0.1|x"])
    assert _watcher_cli._sweep_deadline(args, None) == 60.0
