# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_history as untrusted input: whatever the watcher's user writes in its history, root's report stays whole.

The history file is the daemon's user's to write. Root's disk report (disk_report with become and the
watcher's history_file) reads it through that user (as_owner) and gets back only forecasts, checked.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _history


NOW = 1_700_000_000.0
HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.abspath(os.path.join(HERE, "..", "..", "..", "..", ".build", "collections"))

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10 ** 30), max_value=10 ** 30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


def valid(history):
    for mount, samples in history.items():
        assert isinstance(mount, str) and 0 < len(mount) <= _history.MAX_NAME
        assert 0 < len(samples) <= _history.MAX_SAMPLES
        for when, used, avail in samples:
            assert math.isfinite(when) and 0 <= when <= NOW + _history.MAX_SKEW
            assert 0 <= used < _history.MAX_COUNT and 0 <= avail < _history.MAX_COUNT


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=6))
def test_any_json_as_filesystems_keeps_only_valid_samples_and_every_report_renders(filesystems):
    history, dropped = _history.checked(filesystems, NOW)
    valid(history)
    assert dropped >= 0
    items = _history.forecast(history, NOW)
    _history.render_text(items)
    _history.render_html(items)
    for item in items:
        _history.describe(item)
        assert item.days_to_full is None or 0 <= item.days_to_full <= _history.MAX_DAYS_TO_FULL


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=512))
def test_any_bytes_as_the_history_file_are_an_empty_or_valid_history(tmp_path, raw):
    path = tmp_path / "history.json"
    path.write_bytes(raw)
    history, dropped = _history.load_checked(str(path), NOW)
    valid(history)
    assert dropped in (0, 1) or history


@settings(max_examples=100, deadline=None)
@given(st.lists(JSON_VALUES, max_size=4))
def test_any_answer_of_the_owner_gives_only_well_formed_forecasts(answer):
    for item in _history.checked_forecasts(answer)[0]:
        _history.describe(item)
        _history.render_html([item])


GOOD_FORECAST = {"mount": "/", "rate_per_day": 100.0, "avail_bytes": 1000, "days_to_full": 10.0, "full_at": NOW + 864000,
                 "span_s": 86400.0, "rate_low_per_day": 90.0, "rate_high_per_day": 110.0, "days_to_full_low": 9.0,
                 "days_to_full_high": 11.0, "steady": True}


@pytest.mark.parametrize("change", [
    {"rate_low_per_day": 120.0},                     # an interval that does not hold the rate
    {"days_to_full_high": 5.0},                      # nor the date
    {"days_to_full_low": -1.0},
    {"days_to_full_high": _history.MAX_DAYS_TO_FULL * 2},
    {"rate_high_per_day": float("inf")},
    {"rate_low_per_day": float("nan")},
    {"steady": "yes"},
    {"steady": False},                               # a date for a filesystem that does not fill steadily
    {"days_to_full_low": True},
])
def test_the_forecasts_new_fields_are_checked_when_they_cross_back_to_root(change):
    assert _history.checked_forecasts([GOOD_FORECAST]) == ([_history.Forecast(**GOOD_FORECAST)], 0)
    assert _history.checked_forecasts([dict(GOOD_FORECAST, **change)]) == ([], 1), change


@pytest.mark.parametrize("name,samples,kept", [
    ("a 2000-digit integer", [[NOW - 10, 10 ** 2000, 5]], 0),
    ("a sample dated in the future", [[NOW + 86400 * 365, 10, 5], [NOW - 10, 10, 5]], 1),
    ("infinity as a time", [[float("inf"), 10, 5]], 0),
    ("NaN as a count", [[NOW - 10, float("nan"), 5]], 0),
    ("a negative count", [[NOW - 10, -1, 5]], 0),
    ("a count of 2**63", [[NOW - 10, 2 ** 63, 5]], 0),
    ("booleans", [[NOW - 10, True, False]], 0),
    ("a sample of four", [[NOW - 10, 1, 2, 3]], 0),
    ("a string", "not a list", 0),
])
def test_hostile_samples_are_dropped_not_fatal(name, samples, kept):
    history, dropped = _history.checked({"/": samples}, NOW)
    assert len(history.get("/", [])) == kept, name
    assert dropped >= 1, name


def test_a_forecast_that_would_be_full_after_the_year_9999_is_not_filling():
    """One byte a day more on a terabyte: ValueError from datetime before, 'not full within 100 years' now."""
    history = {"/": [(NOW - 2 * 86400 + t * 900, 100 + t // 96, 10 ** 12 - t // 96) for t in range(2 * 96 + 1)]}
    (item,) = _history.forecast(history, NOW, 3 * 86400)
    assert item.rate_per_day > 0 and item.steady and item.days_to_full is None
    assert "not full within 100 years" in _history.describe(item)
    _history.render_html([item])


def test_a_long_history_keeps_the_newest_samples():
    history = {"/": [(NOW - 3600 + t, t, t) for t in range(_history.MAX_SAMPLES + 10)]}
    _history.record(history, [{"mount": "/", "used_bytes": 1, "avail_bytes": 1}], NOW)
    assert len(history["/"]) == _history.MAX_SAMPLES and history["/"][-1][0] == NOW


# ---- root's report with a history the daemon's user poisoned ------------------------------------

ROOT_SIDE = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.sysops.fleet.plugins.module_utils import _history
started = time.monotonic()
forecasts, warning = _history.update(sys.argv[2], [{"mount": "/", "used_bytes": 10, "avail_bytes": 90}], time.time())
print(json.dumps({"seconds": time.monotonic() - started, "warning": warning,
                  "forecasts": [f.as_dict() for f in forecasts],
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

POISONS = {
    "a 2000-digit integer": lambda: json.dumps({"filesystems": {"/": [[time.time() - 60, 1, 1]]}})[:-3] + "]," +
    '"/x": [[1, ' + "9" * 2000 + ", 1]]}}",
    "samples dated in the future": lambda: json.dumps({"filesystems": {"/": [[time.time() + 86400 * 400, 1, 1]] * 50}}),
    "deep nesting": lambda: '{"filesystems": {"/": ' + "[" * 100000 + "]" * 100000 + "}}",
    "50 MiB of samples": lambda: json.dumps({"filesystems": {f"/m{i}": [[time.time() - 60, 1, 1]] * 4000
                                                             for i in range(500)}}),
}


@pytest.fixture(scope="module")
def daemon_user(system_user):
    return system_user


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_roots_report_survives_a_poisoned_history_in_bounded_time_and_memory(daemon_user, poison):
    top = tempfile.mkdtemp(prefix="fleet-history-")
    try:
        os.chmod(top, 0o755)
        owned = os.path.join(top, "state")
        os.mkdir(owned, 0o750)
        os.chown(owned, daemon_user.pw_uid, daemon_user.pw_gid)
        path = os.path.join(owned, "history.json")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(POISONS[poison]())
        os.chown(path, daemon_user.pw_uid, daemon_user.pw_gid)
        baseline = json.loads(subprocess.run([sys.executable, "-c", ROOT_SIDE, COLLECTIONS, "/nonexistent/h.json"],
                                             capture_output=True, text=True, check=True).stdout)
        out = subprocess.run([sys.executable, "-c", ROOT_SIDE, COLLECTIONS, path], capture_output=True, text=True,
                             check=False, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        got = json.loads(out.stdout)
        assert got["seconds"] < 10, got["seconds"]
        assert got["maxrss_kib"] < baseline["maxrss_kib"] + 32 * 1024, (got["maxrss_kib"], baseline["maxrss_kib"])
        assert got["warning"] and "dropped" in got["warning"], got["warning"]
        assert [f["mount"] for f in got["forecasts"]] == ["/"], "this reading still counts"
        with open(path, encoding="utf-8") as handle:
            after = json.load(handle)
        assert list(after["filesystems"]) == ["/"], "the owner rewrote its history without the poison"
        assert os.stat(path).st_uid == daemon_user.pw_uid
    finally:
        subprocess.run(["rm", "-rf", top], check=False)
