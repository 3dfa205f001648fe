# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role's absent against what the daemon's user can do: a cron keepalive firing, a deep tree; it still removes all.

A real root install under a prefix (its own system user, its own file in
/etc/cron.d), run by ansible-playbook inside a network namespace of the
loopback lab (the role gathers facts, and facts look names up). While
absent runs, a loop runs the install's keepalive line as its user, as cron
would, whenever the cron file still exists: the uninstall must take the
cron file away before it kills the user's processes, or the keepalive
starts the daemon again and ``userdel`` fails.
"""

import contextlib
import glob
import os
import pwd
import subprocess
import sys
import tempfile
import threading

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _account

from ansible_runner import run

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))  # tests/, for lab
import lab  # noqa: E402  pylint: disable=wrong-import-position
from polling import wait_for  # noqa: E402  (tests/unit/plugins/conftest.py puts the helpers on sys.path)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a root install needs root (and the lab, ip and nft)")

PLAYBOOK = """
- name: The watcher under a prefix, as root, kept alive by cron
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: sysops.fleet.watcher
"""


def play(tmp_path, netns, prefix, *extra):
    book = tmp_path / "watcher.yml"
    book.write_text(PLAYBOOK)
    argv = ["ansible-playbook", "-i", "localhost,", str(book), "-e", "ansible_python_interpreter=/usr/bin/python3",
            "-e", f"watcher_root={prefix}", "-e", "watcher_service_manager=cron", "-e", "watcher_interval=5",
            "-e", '{"watcher_mail_to": [], "watcher_watch_hosts": ["127.0.0.1"]}', *extra]
    return run(argv, tmp_path, netns=netns, timeout=900)


def keepalive_line(cron_file):
    """(user, command) of the keepalive line of the install's cron file."""
    with open(cron_file, encoding="utf-8") as handle:
        for line in handle.read().splitlines():
            fields = line.split()
            if line.startswith("*/") and len(fields) > 6:
                return fields[5], " ".join(fields[6:])
    raise AssertionError(f"no keepalive line in {cron_file}")


class Keepalive(threading.Thread):
    """Runs the keepalive as its user, as cron would, over and over while the cron file exists."""

    def __init__(self, cron_file, user, command):
        super().__init__(daemon=True)
        self.cron_file, self.entry, self.command = cron_file, pwd.getpwnam(user), command
        self.done = threading.Event()
        self.runs = 0

    def run(self):
        entry = self.entry

        def demote():
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
        while not self.done.is_set():
            if not os.path.exists(self.cron_file):
                self.done.wait(0.05)
                continue
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "SHELL": "/bin/sh", "HOME": entry.pw_dir,
                   "LOGNAME": entry.pw_name}
            subprocess.run(["/bin/sh", "-c", self.command], preexec_fn=demote, cwd="/", env=env,  # noqa: S603 pylint: disable=subprocess-popen-preexec-fn
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True, timeout=60, check=False)
            self.runs += 1


# As the daemon's user: DEPTH nested directories in its state directory, a link to a root file at the bottom.
DEEP = r"""
import os, sys
os.chdir(sys.argv[1])
for _ in range(int(sys.argv[2])):
    os.mkdir("d")
    os.chdir("d")
os.symlink(sys.argv[3], "link")
"""


def cron_files_of(prefix, before):
    """The cron files made since *before* that run the program under *prefix* (CI's other lanes install under
    prefixes of their own meanwhile: a set difference alone once picked one of theirs)."""
    found = []
    for path in sorted(set(glob.glob("/etc/cron.d/sysops-fleet-*")) - before):
        try:
            with open(path, encoding="utf-8") as handle:
                if f"{prefix}/opt/sysops-fleet/bin/fleet-watcher" in handle.read():
                    found.append(path)
        except FileNotFoundError:
            continue
    return found


@contextlib.contextmanager
def installed(tmp_path, name):
    """A root install under a prefix of its own, in a lab of its own: (netns, prefix, the cron files it made).
    Removed afterwards, whatever the test left (absent, containers of its uid killed too, then the prefix)."""
    prefix = tempfile.mkdtemp(prefix=f"sf-{name}-", dir="/srv" if os.path.isdir("/srv") else "/")
    os.chmod(prefix, 0o755)
    before = set(glob.glob("/etc/cron.d/sysops-fleet-*"))
    with lab.lab(prefix=f"fleet{name}") as netns:
        try:
            done = play(tmp_path, netns, prefix)
            assert done.returncode == 0, done.stdout[-4000:]
            yield netns, prefix, cron_files_of(prefix, before)
        finally:
            play(tmp_path, netns, prefix, "-e", "watcher_state=absent", "-e", "watcher_absent_containers=kill")
            subprocess.run(["rm", "-rf", "--one-file-system", prefix], check=False)


def test_a_deep_tree_the_user_made_in_its_state_directory_does_not_stop_absent(tmp_path):
    """The tester's 2500 levels made ansible.builtin.file fail ("maximum recursion depth") and the user stayed."""
    victim = tmp_path / "root-only"
    victim.write_text("root's")
    with installed(tmp_path, "deep") as (netns, prefix, [cron_file]):
        user = pwd.getpwnam(os.path.basename(cron_file))
        state = os.path.join(prefix, "var", "lib", "sysops-fleet")

        def demote():
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        planted = subprocess.run(["/usr/bin/python3", "-c", DEEP, state, "2500", str(victim)],  # noqa: S603 pylint: disable=subprocess-popen-preexec-fn
                                 preexec_fn=demote, cwd="/", capture_output=True, text=True, check=False)
        assert planted.returncode == 0, planted.stderr
        removed = play(tmp_path, netns, prefix, "-e", "watcher_state=absent")
        assert removed.returncode == 0, removed.stdout[-4000:]
        assert "Traceback" not in removed.stdout
        with pytest.raises(KeyError):
            pwd.getpwnam(user.pw_name)
        assert not os.path.exists(prefix) and victim.read_text() == "root's"


def test_absent_removes_the_cron_keepalive_before_it_kills_so_nothing_of_the_user_survives(tmp_path):
    keepalive = None
    with installed(tmp_path, "order") as (netns, prefix, cron_files):
        try:
            assert len(cron_files) == 1, cron_files
            cron_file = cron_files.pop()
            user, command = keepalive_line(cron_file)
            uid = pwd.getpwnam(user).pw_uid
            keepalive = Keepalive(cron_file, user, command)
            keepalive.start()
            removed = play(tmp_path, netns, prefix, "-e", "watcher_state=absent")
            keepalive.done.set()
            keepalive.join(timeout=120)
            assert keepalive.runs > 0, "the keepalive ran during the uninstall"
            assert removed.returncode == 0, removed.stdout[-4000:]
            assert not _account.processes_of(uid), "no process of the uid is left"
            with pytest.raises(KeyError):
                pwd.getpwnam(user)
            assert not os.path.exists(cron_file) and not os.path.exists(prefix)
        finally:
            if keepalive is not None:
                keepalive.done.set()
                keepalive.join(timeout=120)


def test_absent_refuses_while_a_container_runs_as_the_users_uid_unless_told_to_kill(tmp_path):
    """A rootful container whose image runs as the role's user's uid number: absent stops nothing and fails naming
    it and the role variable; with watcher_absent_containers=kill it kills that process too and removes the user."""
    container = None
    with installed(tmp_path, "ctr") as (netns, prefix, [cron_file]):
        try:
            user = pwd.getpwnam(os.path.basename(cron_file))
            container = subprocess.Popen(  # what a rootful container is to the kernel: a PID namespace root made
                ["unshare", "--pid", "--fork", "--kill-child", "setpriv", f"--reuid={user.pw_uid}",
                 f"--regid={user.pw_gid}", "--clear-groups", "--", "sleep", "1021"])
            [inside] = wait_for(lambda: [p for p in _account.processes_of(user.pw_uid) if p.command == "sleep 1021"],
                                10, "the container's sleep 1021")
            refused = play(tmp_path, netns, prefix, "-e", "watcher_state=absent")
            assert refused.returncode == 2, refused.stdout[-4000:]
            assert f"pid {inside.pid} sleep 1021" in refused.stdout and "Nothing was stopped" in refused.stdout
            assert "(with this role: watcher_absent_containers=kill)" in refused.stdout
            assert container.poll() is None and pwd.getpwnam(user.pw_name), "nothing stopped, the user kept"
            removed = play(tmp_path, netns, prefix, "-e", "watcher_state=absent", "-e", "watcher_absent_containers=kill")
            assert removed.returncode == 0, removed.stdout[-4000:]
            assert container.wait(timeout=30) is not None and not _account.processes_of(user.pw_uid)
            with pytest.raises(KeyError):
                pwd.getpwnam(user.pw_name)
        finally:
            if container is not None and container.poll() is None:
                container.kill()
                container.wait()
