# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Safe files: what open_regular refuses, and that it never blocks; atomic writes through descriptors."""

import os
import stat
import threading
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _files


def bounded(func, *args, seconds=5.0):
    """Run func in a thread; fail the test if it does not return within *seconds* (a FIFO would hang it)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = func(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{func.__name__} blocked for more than {seconds}s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def plant(tmp_path, kind):
    path = tmp_path / "thing"
    target = tmp_path / "target"
    target.write_text("root's data\n")
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    return str(path), target


@pytest.mark.parametrize("kind, message", [
    ("symlink", "is a symbolic link: refusing to follow it"),
    ("fifo", "is a FIFO, not a regular file"),
    ("directory", "is a directory, not a regular file"),
])
@pytest.mark.parametrize("flags", [os.O_RDONLY, os.O_RDWR | os.O_CREAT, os.O_WRONLY | os.O_APPEND | os.O_CREAT])
def test_open_regular_refuses_what_is_not_a_regular_file_and_never_blocks(tmp_path, kind, message, flags):
    path, target = plant(tmp_path, kind)
    with pytest.raises(_files.UnsafeFile) as err:
        bounded(_files.open_regular, path, flags)
    text = str(err.value)
    if kind == "fifo" and flags & os.O_WRONLY:
        assert "FIFO or socket" in text  # a FIFO without a reader refuses a writer at once (ENXIO)
    else:
        assert message in text, text
    assert target.read_text() == "root's data\n"


def test_open_regular_refuses_a_file_of_another_owner(tmp_path):
    path = tmp_path / "pid"
    path.write_text("1\n")
    fd = _files.open_regular(str(path), owner=os.geteuid())
    os.close(fd)
    with pytest.raises(_files.UnsafeFile, match="belongs to uid"):
        _files.open_regular(str(path), owner=os.geteuid() + 1)


def test_read_text_is_bounded(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 1000)
    assert len(_files.read_text(str(path))) == 1000
    with pytest.raises(_files.UnsafeFile, match="larger than 10 bytes"):
        _files.read_text(str(path), limit=10)


def test_write_atomic_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    os.chmod(target, 0o600)
    link = tmp_path / "state.json"
    link.symlink_to(target)
    _files.write_atomic(str(link), "{}")
    assert target.read_text() == "keep me\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not link.is_symlink() and link.read_text() == "{}"
    assert stat.S_IMODE(link.stat().st_mode) == 0o600, "a new file, not the link target's mode"


def test_write_atomic_replaces_a_fifo_without_blocking(tmp_path):
    path = tmp_path / "state.json"
    os.mkfifo(path)
    bounded(_files.write_atomic, str(path), "{}")
    assert path.read_text() == "{}"


def test_write_atomic_keeps_a_regular_files_mode_and_sets_it_through_the_descriptor(tmp_path, monkeypatch):
    path = tmp_path / "history.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    calls = []
    monkeypatch.setattr(os, "chmod", lambda *a, **k: calls.append(("chmod", a)))
    monkeypatch.setattr(os, "chown", lambda *a, **k: calls.append(("chown", a)))
    _files.write_atomic(str(path), "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not calls, f"mode or owner set by path: {calls}"


def test_write_atomic_durable_syncs_the_file_and_the_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(stat.S_IFMT(os.fstat(fd).st_mode)) or real(fd))
    _files.write_atomic(str(tmp_path / "m.eml"), "message", durable=True)
    assert stat.S_IFREG in synced and stat.S_IFDIR in synced
    synced.clear()
    _files.write_atomic(str(tmp_path / "state.json"), "{}")
    assert not synced


def test_a_lock_file_that_is_a_fifo_or_a_symlink_is_refused(tmp_path):
    fifo = tmp_path / "history.json.lock"
    os.mkfifo(fifo)
    with pytest.raises(_files.UnsafeFile):
        bounded(lambda: _files.locked(str(fifo), 1).__enter__())
    link = tmp_path / "other.lock"
    link.symlink_to(tmp_path / "new-file-somewhere")
    with pytest.raises(_files.UnsafeFile):
        bounded(lambda: _files.locked(str(link), 1).__enter__())
    assert not (tmp_path / "new-file-somewhere").exists(), "the link's target was not created"


def test_a_held_lock_times_out(tmp_path):
    path = str(tmp_path / "x.lock")
    with _files.locked(path, 1):
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="holds"):
            with _files.locked(path, 0.3):
                pass
        assert time.monotonic() - started < 3
