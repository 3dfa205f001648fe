# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Removing a tree the daemon's user wrote (_account._remove, which the uninstall uses; _tree underneath).

Any tree goes (any depth, any names, fifos, links), nothing outside it is
touched, no link is followed, no mount point is entered.
"""

import os
import resource
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _account

NAMES = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))
KINDS = st.sampled_from(["file", "fifo", "link_file", "link_dir", "link_dangling", "link_up"])
TREES = st.recursive(
    st.dictionaries(NAMES, KINDS, max_size=4),
    lambda children: st.dictionaries(NAMES, st.one_of(KINDS, children), max_size=4),
    max_leaves=25)


def outside(base):
    """Files outside the tree that links point at: they must come through unchanged."""
    sentinel_dir = os.path.join(base, b"outside")
    os.makedirs(sentinel_dir, exist_ok=True)
    with open(os.path.join(sentinel_dir, b"keep"), "wb") as handle:
        handle.write(b"root's")
    return sentinel_dir


def build(directory: bytes, tree, sentinel_dir: bytes) -> None:
    for name, kind in tree.items():
        path = os.path.join(directory, name)
        if isinstance(kind, dict):
            os.mkdir(path)
            build(path, kind, sentinel_dir)
        elif kind == "file":
            with open(path, "wb") as handle:
                handle.write(name)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "link_file":
            os.symlink(os.path.join(sentinel_dir, b"keep"), path)
        elif kind == "link_dir":
            os.symlink(sentinel_dir, path)
        elif kind == "link_up":
            os.symlink(b"..", path)
        else:
            os.symlink(b"/nonexistent/nowhere", path)


def chain(directory: bytes, depth: int, name: bytes = b"d") -> None:
    """*depth* nested directories under *directory*, made by name from the inside (never a long path)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _level in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open(b"bottom", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "wb") as handle:
            handle.write(b"x")
    finally:
        os.close(fd)


def snapshot(directory: bytes):
    return sorted((root, tuple(sorted(dirs)), tuple(sorted(files))) for root, dirs, files in os.walk(directory))


@pytest.fixture
def few_descriptors():
    """RLIMIT_NOFILE's soft limit at 64 for the test: a removal that holds one descriptor per level fails."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tree=TREES, depth=st.integers(min_value=0, max_value=400))
def test_any_tree_goes_and_nothing_outside_it_is_touched(tmp_path, few_descriptors, tree, depth):
    base = os.fsencode(str(tmp_path))
    sentinel_dir = outside(base)
    before = snapshot(sentinel_dir)
    top = os.path.join(base, b"tree")
    if os.path.lexists(top):
        _account._remove(os.fsdecode(top))
    os.mkdir(top)
    build(top, tree, sentinel_dir)
    chain(top, depth, name=b"\xff\n deep")
    _account._remove(os.fsdecode(top))
    assert not os.path.lexists(top)
    assert snapshot(sentinel_dir) == before
    with open(os.path.join(sentinel_dir, b"keep"), "rb") as handle:
        assert handle.read() == b"root's"
    _account._remove(os.fsdecode(top))  # a second removal finds nothing, and says nothing


DEEP = """
import os, resource, sys
sys.path.insert(0, sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
sys.setrecursionlimit(1000)
from ansible_collections.sysops.fleet.plugins.module_utils import _account
_account._remove(sys.argv[2])
print("removed")
"""


def test_a_5000_deep_tree_goes_with_64_descriptors_and_a_link_at_its_bottom_is_not_followed(tmp_path):
    victim = tmp_path / "root-file"
    victim.write_text("keep")
    os.chmod(victim, 0o600)
    top = tmp_path / "tree"
    top.mkdir()
    chain(os.fsencode(str(top)), 5000)
    fd = os.open(str(top), os.O_RDONLY | os.O_DIRECTORY)
    for _level in range(5000):
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.symlink(str(victim), "link", dir_fd=fd)
    os.symlink(str(tmp_path), "uplink", dir_fd=fd)
    os.close(fd)
    import ansible_collections  # pylint: disable=import-outside-toplevel
    collections = os.path.dirname(list(ansible_collections.__path__)[0])
    out = subprocess.run([sys.executable, "-c", DEEP, collections, str(top)], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "removed", out
    assert not os.path.lexists(top)
    assert victim.read_text() == "keep"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_mount_point_inside_is_an_error_naming_it_and_nothing_under_it_goes(tmp_path):
    top = tmp_path / "tree"
    mounted = top / "a" / "mnt"
    mounted.mkdir(parents=True)
    (top / "a" / "file").write_text("x")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(mounted)], check=True)
    try:
        (mounted / "theirs").write_text("keep")
        with pytest.raises(_account.AccountError, match=r"tree/a/mnt: on another filesystem"):
            _account._remove(str(top))
        assert (mounted / "theirs").read_text() == "keep"
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_a_link_given_as_the_path_is_removed_not_followed(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    (tmp_path / "link").symlink_to(target)
    _account._remove(str(tmp_path / "link"))
    assert not os.path.lexists(tmp_path / "link") and (target / "keep").read_text() == "x"
