# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who does the work: the trust boundary of a path, work done as a directory's owner, dropping root."""

import errno
import json
import os
import pwd
import shutil
import tempfile
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _files, _history, _privilege

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def top():
    """A directory only root controls (pytest's tmp_path is one too, but keep the layout obvious)."""
    path = tempfile.mkdtemp(prefix="fleet-privilege-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@needs_root
def test_a_path_only_root_controls_has_no_boundary(top):
    os.makedirs(os.path.join(top, "a", "b"))
    assert _privilege.trust_boundary(os.path.join(top, "a", "b", "file")) is None
    assert _privilege.trust_boundary(os.path.join(top, "missing", "deeper")) is None


@needs_root
def test_the_first_component_of_another_user_is_the_boundary(top):
    owned = os.path.join(top, "daemon")
    os.mkdir(owned)
    os.chown(owned, NOBODY.pw_uid, NOBODY.pw_gid)
    os.mkdir(os.path.join(owned, "spool"))  # root-owned, but below the user's: the user can rename it away
    assert _privilege.trust_boundary(os.path.join(owned, "spool")) == (NOBODY.pw_uid, NOBODY.pw_gid)


@needs_root
def test_a_users_symlink_is_the_users_and_a_roots_symlink_is_followed(top):
    os.mkdir(os.path.join(top, "real"))
    os.symlink(os.path.join(top, "real"), os.path.join(top, "by-root"))
    assert _privilege.trust_boundary(os.path.join(top, "by-root", "x")) is None
    os.symlink("/etc", os.path.join(top, "by-nobody"))
    os.lchown(os.path.join(top, "by-nobody"), NOBODY.pw_uid, NOBODY.pw_gid)
    assert _privilege.trust_boundary(os.path.join(top, "by-nobody", "x")) == (NOBODY.pw_uid, NOBODY.pw_gid)


@needs_root
def test_a_directory_others_may_write_without_the_sticky_bit_is_refused(top):
    shared = os.path.join(top, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    with pytest.raises(_privilege.PrivilegeError, match="writable by users other than root"):
        _privilege.trust_boundary(os.path.join(shared, "x"))
    os.chmod(shared, 0o1777)  # like /tmp: others' entries are theirs, root's stay root's
    assert _privilege.trust_boundary(os.path.join(shared, "x")) is None


@needs_root
def test_as_owner_does_the_work_as_the_owner_and_brings_back_plain_data(top):
    owned = os.path.join(top, "daemon")
    os.mkdir(owned, 0o750)
    os.chown(owned, NOBODY.pw_uid, NOBODY.pw_gid)

    def work(name):
        path = os.path.join(owned, name)
        _files.write_atomic(path, "made")
        return {"uid": os.geteuid(), "gid": os.getegid(), "path": path}
    got = _privilege.as_owner(owned, work, "file")
    assert got["uid"] == NOBODY.pw_uid and got["gid"] == NOBODY.pw_gid
    st = os.stat(got["path"])
    assert (st.st_uid, st.st_gid) == (NOBODY.pw_uid, NOBODY.pw_gid)
    assert os.geteuid() == 0, "the caller stays root"
    assert _privilege.as_owner(top, os.geteuid) == 0, "a root directory: done right here, as root"


@needs_root
def test_as_owner_hands_errors_back_as_their_kind(top):
    owned = os.path.join(top, "daemon")
    os.mkdir(owned)
    os.chown(owned, NOBODY.pw_uid, NOBODY.pw_gid)
    secret = os.path.join(top, "secret")
    with open(secret, "w", encoding="ascii") as handle:
        handle.write("root only")
    os.chmod(secret, 0o600)
    with pytest.raises(PermissionError) as err:
        _privilege.as_owner(owned, lambda: open(secret, encoding="ascii").read())
    assert err.value.errno == errno.EACCES and err.value.filename == secret
    with pytest.raises(ValueError, match="bad option"):
        _privilege.as_owner(owned, raise_, ValueError("bad option"))
    with pytest.raises(TimeoutError, match="held"):
        _privilege.as_owner(owned, raise_, TimeoutError("lock held"))
    with pytest.raises(_privilege.PrivilegeError, match="cannot be sent back"):
        _privilege.as_owner(owned, object)


def raise_(exc):
    raise exc


@needs_root
def test_a_worker_that_dies_or_overruns_is_an_error_not_a_hang(top):
    owned = os.path.join(top, "daemon")
    os.mkdir(owned)
    os.chown(owned, NOBODY.pw_uid, NOBODY.pw_gid)
    with pytest.raises(_privilege.PrivilegeError, match="died without an answer"):
        _privilege.as_owner(owned, lambda: os._exit(3))
    started = time.monotonic()
    with pytest.raises(_privilege.PrivilegeError, match="did not finish within 0.5s"):
        _privilege.as_owner(owned, time.sleep, 30, timeout=0.5)
    assert time.monotonic() - started < 5


@needs_root
def test_root_reads_nothing_the_owner_sends_but_json(top):
    """The worker's answer is parsed as JSON: a pickle-looking payload stays a string."""
    owned = os.path.join(top, "daemon")
    os.mkdir(owned)
    os.chown(owned, NOBODY.pw_uid, NOBODY.pw_gid)
    payload = "cos\nsystem\n(S'touch /tmp/pwned'\ntR."
    assert _privilege.as_owner(owned, lambda: payload) == payload
    assert json.dumps(_privilege.as_owner(owned, lambda: {"a": [1, 2.5, None]})) == '{"a": [1, 2.5, null]}'


@needs_root
def test_a_history_in_the_daemons_directory_is_updated_by_the_daemons_user(top):
    owned = os.path.join(top, "lib")
    os.mkdir(owned, 0o750)
    os.chown(owned, NOBODY.pw_uid, NOBODY.pw_gid)
    path = os.path.join(owned, "history.json")
    rows = [{"mount": "/", "used_bytes": 10, "avail_bytes": 90}]
    forecasts, warning = _history.update(path, rows, time.time())
    assert warning is None and [(f.mount, f.avail_bytes) for f in forecasts] == [("/", 90)]
    assert _history.load(path)["/"][0][1:] == (10, 90)
    for name in (path, path + ".lock"):
        assert os.stat(name).st_uid == NOBODY.pw_uid, name


@needs_root
def test_make_directory_for_hands_a_new_directory_over_only_below_root(top):
    made = os.path.join(top, "run")
    assert _privilege.make_directory_for(made, NOBODY, 0o755)
    st = os.stat(made)
    assert (st.st_uid, st.st_mode & 0o777) == (NOBODY.pw_uid, 0o755)
    assert not _privilege.make_directory_for(made, NOBODY), "an existing directory is left alone"
    inner = os.path.join(made, "spool")
    assert not _privilege.make_directory_for(inner, NOBODY), "below the user's: the user makes it"
    assert not os.path.exists(inner)


@needs_root
def test_drop_to_cannot_be_undone():
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            _privilege.drop_to(NOBODY)
            if (os.getuid(), os.geteuid(), os.getgid()) == (NOBODY.pw_uid, NOBODY.pw_uid, NOBODY.pw_gid):
                try:
                    os.setuid(0)
                except PermissionError:
                    code = 0 if os.environ.get("USER") == "nobody" else 2
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_an_unknown_user_is_named():
    with pytest.raises(_privilege.PrivilegeError, match="'no-such-user-here' does not exist"):
        _privilege.user_entry("no-such-user-here")
