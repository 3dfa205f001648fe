# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""user_purge: trees the daemon's user made, 5000 deep, go with 64 descriptors.

Links are not followed, a mount point inside is an error that names it, a bad path is refused by name.
"""

import os
import pathlib
import subprocess
import tempfile
import time

import pytest

from ansible_collections.sysops.fleet.plugins.modules import user_purge

from ansible_runner import adhoc
from module_runner import run_module

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")

# As the user: DEPTH nested directories under TOP, made from the inside by name (the path gets longer than
# PATH_MAX), a link to a root file at the bottom, and a fifo.
DEEP = r"""
import os, sys
top, depth, victim = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.mkdir(top)
os.chdir(top)
for _ in range(depth):
    os.mkdir("d")
    os.chdir("d")
os.symlink(victim, "link")
os.mkfifo("fifo")
open("file", "w").close()
"""


def deep_tree_as(entry, top, depth, victim):
    def demote():
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    argv = ["/usr/bin/python3", "-c", DEEP, top, str(depth), victim]
    done = subprocess.run(argv, preexec_fn=demote, cwd="/", capture_output=True, text=True,  # noqa: S603 pylint: disable=subprocess-popen-preexec-fn
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def victim(tmp_path):
    """A root file that links in the trees point at: it must come through."""
    path = tmp_path / "root-only"
    path.write_text("root's")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def writable():
    """A directory the daemon's user may write in (as its state directory's parent is), outside the temp directories."""
    top = tempfile.mkdtemp(prefix="sf-purge-", dir="/srv" if os.path.isdir("/srv") else "/")
    os.chmod(top, 0o755)
    directory = pathlib.Path(top) / "prefix"
    directory.mkdir()
    os.chmod(directory, 0o1777)
    yield directory
    subprocess.run(["rm", "-rf", "--one-file-system", top], check=False)


def test_5000_deep_trees_in_paths_and_in_tmp_go_with_64_descriptors(system_user, tmp_path, victim, writable):
    given = str(writable / "state")
    in_tmp = f"/tmp/sfpurge-{os.getpid()}"
    deep_tree_as(system_user, given, 5000, str(victim))
    deep_tree_as(system_user, in_tmp, 5000, str(victim))
    try:
        rc, out, raw = run_module(user_purge, tmp_path, wrapper=["prlimit", "--nofile=64:64", "--"],
                                  name=system_user.pw_name, paths=[given])
        assert rc == 0, raw
        assert given in out["removed"] and in_tmp in out["removed"], out
        assert not os.path.lexists(given) and not os.path.lexists(in_tmp)
        assert victim.read_text() == "root's" and os.path.isdir(writable)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", in_tmp], check=False)


def test_through_ansible_a_deep_tree_goes_and_a_mount_point_inside_fails_naming_it(
        system_user, tmp_path, victim, writable):
    given = str(writable / "log")
    deep_tree_as(system_user, given, 3000, str(victim))
    rc, out = adhoc("sysops.fleet.user_purge", {"name": system_user.pw_name, "paths": [given]}, tmp_path)
    assert rc == 0 and out["changed"] and given in out["removed"], out
    assert not os.path.lexists(given) and victim.read_text() == "root's"
    rc, out = adhoc("sysops.fleet.user_purge", {"name": system_user.pw_name, "paths": [given]}, tmp_path)
    assert rc == 0 and not out["changed"], "idempotent: nothing left the second time"
    mounted = writable / "run" / "mnt"
    mounted.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(mounted)], check=True)
    try:
        (mounted / "keep").write_text("x")
        rc, out = adhoc("sysops.fleet.user_purge", {"name": system_user.pw_name, "paths": [str(writable / "run")]},
                        tmp_path)
        assert rc != 0 and f"{writable}/run/mnt: on another filesystem" in out["msg"], out
        assert (mounted / "keep").read_text() == "x"
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


@pytest.mark.parametrize("path, message", [
    ("relative/dir", "paths: 'relative/dir' is not an absolute path below /"),
    ("/", "paths: '/' is not an absolute path below /"),
    ("//", "paths: '//' is not an absolute path below /"),
])
def test_a_bad_path_is_refused_by_name_and_nothing_is_done(system_user, tmp_path, path, message):
    rc, out, _raw = run_module(user_purge, tmp_path, name=system_user.pw_name, paths=[path])
    assert rc != 0 and message in out["msg"] and out["killed"] == [], out


def test_through_ansible_a_container_of_the_same_uid_stops_it_unless_told_to_kill_it_too(system_user, tmp_path):
    """Rootful containers share the kernel's uids: a PID namespace root made, running as the uid."""
    container = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "setpriv",  # noqa: S603
                                  f"--reuid={system_user.pw_uid}", f"--regid={system_user.pw_gid}", "--clear-groups",
                                  "--", "sleep", "1021"])
    host = subprocess.Popen(["setpriv", f"--reuid={system_user.pw_uid}", f"--regid={system_user.pw_gid}",  # noqa: S603
                             "--clear-groups", "--", "sleep", "1022"], start_new_session=True)
    try:
        for _attempt in range(100):
            if sum("sleep 102" in p.command for p in user_purge._account.processes_of(system_user.pw_uid)) == 2:
                break
            time.sleep(0.05)
        for check in (True, False):
            rc, out = adhoc("sysops.fleet.user_purge", {"name": system_user.pw_name}, tmp_path, check=check)
            assert rc != 0 and "run in containers" in out["msg"] and "containers=kill" in out["msg"], out
            assert [p["command"] for p in out["containers"]] == ["sleep 1021"] and out["killed"] == [], out
            assert host.poll() is None and container.poll() is None, "nothing was signalled"
        rc, out = adhoc("sysops.fleet.user_purge", {"name": system_user.pw_name, "containers": "kill"}, tmp_path,
                        check=True)
        assert rc == 0 and sorted(p["command"] for p in out["killed"]) == ["sleep 1021", "sleep 1022"], out
        rc, out = adhoc("sysops.fleet.user_purge", {"name": system_user.pw_name, "containers": "kill"}, tmp_path)
        assert rc == 0 and sorted(p["command"] for p in out["killed"]) == ["sleep 1021", "sleep 1022"], out
        assert host.wait(timeout=5) == -9 and container.wait(timeout=10) != 0
    finally:
        for proc in (container, host):
            proc.kill()
            proc.wait(timeout=10)
