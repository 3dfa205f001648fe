# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property-based tests at the boundaries where outside bytes come in (besides the mount table, SMTP and the
history, which have their own files): the settings file, targets, the state file and the pidfile.

Each reader either returns what it documents or raises its own error with a message; nothing else, whatever
the bytes.
"""

import contextlib
import io
import json
import os
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _pidfile, _targets, _watcher, _watcher_cli

TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120)
SETTING_LINES = st.lists(st.one_of(
    st.sampled_from(["[watcher]", "[disk]", "[hosts]", "[mail]", "[history]", "[metrics]", "[bogus]", "[watcher",
                     "interval = ", "interval = 1e309", "umask = 0888", "pidfile = relative", "watch = 127.0.0.1",
                     "warn = 101", "to = a@b.c", "smtp_port = 0", "smtp_timeout = nan", "keep_days = inf", "  x",
                     "send = always", "method = carrier-pigeon", "textfile_dir = /x", "free_warn = 10Q"]),
    TEXTS), max_size=12).map("\n".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(SETTING_LINES.map(lambda t: t.encode("utf-8")), st.binary(max_size=300)))
def test_any_settings_file_loads_or_says_which_option_is_wrong(raw):
    with tempfile.NamedTemporaryFile(suffix=".ini") as handle:
        handle.write(raw)
        handle.flush()
        try:
            loaded = _watcher.load_settings(handle.name)
        except _watcher.WatcherConfigError as exc:
            assert str(exc)
        else:
            assert 1.0 <= loaded.interval <= _watcher.MAX_INTERVAL and os.path.isabs(loaded.pidfile)


TARGET_PIECES = st.lists(st.sampled_from(["10", "0", "1", "255", "256", "300", ".", "-", ",", "/", ":", "::", "a",
                                          "x", "0x", "24", "32", "ff", " ", "\n", "*", ";", "$(", "`", "\u0660"]),
                         max_size=10).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(TARGET_PIECES, TEXTS), min_size=1, max_size=3))
def test_any_targets_parse_or_are_refused_with_a_message_and_nothing_is_looked_up(entries):
    try:
        parsed = _targets.parse_all(entries, "targets", max_hosts=1 << 16)
    except _targets.TargetError as exc:
        assert str(exc).startswith("targets")
        return
    total = 0
    for target in parsed:
        if isinstance(target, _targets.Span):
            assert target.first <= target.last
            total += target.size
        else:
            assert isinstance(target, _targets.Name) and target.name  # a name is only a name until a sweep
    assert total <= 1 << 16


STATE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXTS, inner, max_size=4), max_leaves=20)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200),
                 st.dictionaries(st.sampled_from(["disks", "hosts", "last_check", "spool_pending", "last_round",
                                                  "pid"]), STATE_VALUES).map(lambda d: json.dumps(d).encode())))
def test_any_state_file_gives_a_status_and_never_a_traceback(raw):
    directory = tempfile.mkdtemp(prefix="fleet-state-")
    try:
        with open(os.path.join(directory, "state.json"), "wb") as handle:
            handle.write(raw)
        config = _watcher.Settings(path="(test)", pidfile=os.path.join(directory, "watcher.pid"),
                                   state_dir=directory, log_file=os.path.join(directory, "watcher.log"))
        args = _watcher_cli.parser().parse_args(["status"])
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = _watcher_cli.cmd_status(args, config)
        assert code == _watcher_cli.EXIT_NOT_RUNNING and "is not running" in out.getvalue()
        args = _watcher_cli.parser().parse_args(["status", "--json"])
        with contextlib.redirect_stdout(io.StringIO()) as out:
            _watcher_cli.cmd_status(args, config)
        json.loads(out.getvalue())
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_pidfile_content_is_a_plausible_pid_or_none(raw):
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as handle:
        handle.write(raw)
        handle.flush()
        pid = _pidfile._pid_in(handle.fileno())  # pylint: disable=protected-access
    os.close(read_end)
    os.close(write_end)
    assert pid is None or 0 < pid < 1 << 22
