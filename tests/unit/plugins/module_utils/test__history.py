# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The disk-use history: samples, fill rates, and one history file shared by the watcher and disk_report."""

import multiprocessing
import os
import stat
import threading
import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _files, _history


def test_history_keeps_one_sample_per_period_and_forgets_old_ones():
    history = {}
    rows = [{"mount": "/", "used_bytes": 10, "avail_bytes": 90}]
    assert _history.record(history, rows, 1000.0, sample_every=900)
    assert not _history.record(history, rows, 1500.0, sample_every=900), "too soon for another sample"
    assert _history.record(history, rows, 1900.0, sample_every=900)
    assert len(history["/"]) == 2
    assert _history.record(history, rows, 1900.0 + 15 * _history.DAY, sample_every=900, keep_days=14)
    assert len(history["/"]) == 1


def test_fill_rate_and_time_to_full():
    day = _history.DAY
    # 1 GiB more every day for two days, a sample every 15 minutes: 10 GiB left at the end
    gib = 1024 ** 3
    times = [t * 900.0 for t in range(2 * 96 + 1)]
    history = {"/var": [(t, int(t / day * gib), 12 * gib - int(t / day * gib)) for t in times],
               "/srv": [(t, 500 - int(t / day * 100), 500 + int(t / day * 100)) for t in times],
               "/new": [(2 * day, 1, 1)]}
    now = 2 * day
    found = {f.mount: f for f in _history.forecast(history, now)}
    var = found["/var"]
    assert var.steady and var.rate_per_day == pytest.approx(gib, rel=1e-6)
    assert var.days_to_full == pytest.approx(10.0, rel=1e-6)
    assert var.days_to_full_low <= var.days_to_full <= var.days_to_full_high
    assert "+1.0G/day (1.0G to 1.0G/day), full in about 10 days (10-10 days)" in _history.describe(var)
    assert _history.describe(found["/srv"]) == "/srv: shrinking by 100B/day"
    assert "not enough history" in _history.describe(found["/new"])


def test_a_rate_from_one_day_of_history_gets_no_date():
    """Within one day a log that grows until its rotation looks like growth: a rate, no date."""
    gib = 1024 ** 3
    history = {"/var": [(t * 900.0, t * gib // 96, 2 * gib - t * gib // 96) for t in range(90)]}
    (var,) = _history.forecast(history, 89 * 900.0)
    assert var.rate_per_day == pytest.approx(gib, rel=0.02) and var.days_to_full is None and not var.steady
    assert "no date before the same times of day were seen on two days" in _history.describe(var)


def test_history_file_round_trip_and_garbage(tmp_path):
    path = str(tmp_path / "history.json")
    _history.save(path, {"/": [(1.0, 2, 3)]})
    assert _history.load(path) == {"/": [(1.0, 2, 3)]}
    (tmp_path / "history.json").write_text("{not json")
    assert _history.load(path) == {}


# ---- one file, several writers -------------------------------------------------------------------

def _writer(path, first, count, start_at):
    """One process adding *count* filesystems of its own, one update each, all starting at once."""
    while time.time() < start_at:
        time.sleep(0.001)
    for k in range(first, first + count):
        unused_history, warning = _history.update(path, [{"mount": f"/m{k}", "used_bytes": k, "avail_bytes": 1}],
                                                  now=1000.0)
        assert warning is None, warning


def test_concurrent_updates_lose_no_sample(tmp_path):
    """The watcher daemon and disk_report write one file: without the lock, load-add-save races drop samples."""
    path = str(tmp_path / "history.json")
    start_at = time.time() + 0.5
    workers = [multiprocessing.get_context("fork").Process(target=_writer, args=(path, i * 25, 25, start_at))
               for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert sorted(_history.load(path)) == sorted(f"/m{k}" for k in range(150))


def test_an_update_waits_for_the_lock_and_a_long_wait_is_an_error(tmp_path):
    path = str(tmp_path / "history.json")
    rows = [{"mount": "/", "used_bytes": 5, "avail_bytes": 95}]
    done = []
    with _history.locked(path):
        writer = threading.Thread(target=lambda: done.append(_history.update(path, rows, now=1000.0)))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and not os.path.exists(path), "the update must wait for the lock"
        with pytest.raises(OSError, match="holds .*history.json.lock for more than 0.2s"):
            with _history.locked(path, wait=0.2):
                pass
    writer.join(10)
    assert done and done[0][1] is None
    assert _history.load(path) == {"/": [(1000.0, 5, 95)]}


def test_check_mode_reads_but_never_writes(tmp_path):
    path = str(tmp_path / "history.json")
    _history.save(path, {"/": [(0.0, 10, 90)]})
    before = os.stat(path).st_mtime_ns
    forecasts, warning = _history.update(path, [{"mount": "/", "used_bytes": 20, "avail_bytes": 80}],
                                         now=_history.DAY, window=2 * _history.DAY, write=False)
    assert warning is None and [(f.mount, f.rate_per_day, f.span_s) for f in forecasts] == [("/", 10.0, _history.DAY)]
    assert os.stat(path).st_mtime_ns == before and _history.load(path) == {"/": [(0.0, 10, 90)]}
    assert not os.path.exists(path + ".lock")


def test_a_history_that_cannot_be_written_warns_and_still_counts(tmp_path):
    (tmp_path / "not-a-dir").write_text("")
    path = str(tmp_path / "not-a-dir" / "history.json")
    forecasts, warning = _history.update(path, [{"mount": "/", "used_bytes": 1, "avail_bytes": 2}], now=5.0)
    assert [(f.mount, f.avail_bytes, f.rate_per_day) for f in forecasts] == [("/", 2, None)]
    assert warning.startswith(f"cannot keep the disk history in {path}: ")


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_root_updating_the_watchers_history_leaves_it_the_watchers(tmp_path):
    """disk_report runs as root; the watcher daemon as its own user must still own (and rewrite) its file."""
    path = tmp_path / "history.json"
    _history.save(str(path), {"/": [(0.0, 1, 1)]})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, "root's first history must be readable to the watcher"
    os.chown(path, 65534, 65534)
    _history.update(str(path), [{"mount": "/", "used_bytes": 2, "avail_bytes": 0}], now=_history.DAY)
    info = os.stat(path)
    assert (info.st_uid, info.st_gid) == (65534, 65534)
    assert len(_history.load(str(path))["/"]) == 2
    lock = os.stat(str(path) + ".lock")
    assert stat.S_IMODE(lock.st_mode) & 0o044 == 0o044, "the lock file must be readable to the watcher's user"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_an_atomic_rewrite_keeps_the_files_owner_and_mode(tmp_path):
    path = tmp_path / "state.json"
    _files.write_atomic(str(path), "{}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, "a new file is private unless a mode is given"
    os.chown(path, 65534, 65534)
    os.chmod(path, 0o640)
    _files.write_atomic(str(path), '{"a": 1}')
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)
    assert path.read_text() == '{"a": 1}'
    _files.write_atomic(str(path), "{}", 0o644)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644 and os.stat(path).st_uid == 65534
