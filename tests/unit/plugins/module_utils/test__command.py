# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The command runner: real programs (true, sh, sleep), real timeouts."""

import time

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _command


def test_run_captures_output_code_and_duration():
    res = _command.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert res.rc == 3 and not res.ok
    assert res.stdout == "out\n" and res.stderr == "err\n"
    assert res.argv[0].startswith("/") and res.duration > 0


def test_run_forces_the_c_locale_and_sbin_on_path():
    res = _command.run(["sh", "-c", 'echo "$LC_ALL:$PATH"'])
    lc_all, path = res.stdout.strip().split(":", 1)
    assert lc_all == "C"
    assert "/usr/sbin" in path.split(":")


def test_run_passes_input_text():
    assert _command.run(["cat"], input_text="hello").stdout == "hello"


def test_run_kills_a_command_at_its_timeout():
    started = time.monotonic()
    res = _command.run(["sleep", "10"], timeout=0.3)
    assert res.timed_out and res.rc is None and not res.ok
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("argv", ["echo hi; reboot", b"echo", [], ["echo", 3], ["echo", "a\0b"]])
def test_anything_but_an_argv_list_of_strings_is_refused(argv):
    with pytest.raises(_command.CommandError):
        _command.run(argv)


def test_a_missing_binary_names_the_package_that_provides_it(monkeypatch):
    monkeypatch.setattr(_command, "EXTRA_PATH", ())
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(_command.MissingBinaryError) as err:
        _command.run(["ping", "-c1", "127.0.0.1"])
    assert "'ping' was not found" in str(err.value)
    assert "install the package 'iputils-ping'" in str(err.value)


def test_an_unknown_binary_says_how_to_fix_it():
    with pytest.raises(_command.MissingBinaryError, match="install it or give its full path"):
        _command.which("no-such-program-sysops-fleet")
    with pytest.raises(_command.MissingBinaryError):
        _command.which("/nonexistent/bin/tool")


def test_run_many_keeps_many_in_flight_and_reports_each():
    argvs = [["sh", "-c", f"sleep 0.4; echo {i}"] for i in range(20)]
    started = time.monotonic()
    results = dict(_command.run_many(argvs, concurrency=20, timeout=5))
    elapsed = time.monotonic() - started
    assert sorted(results) == list(range(20))
    assert all(results[i].ok and results[i].stdout == f"{i}\n" for i in range(20))
    assert elapsed < 4, "20 commands of 0.4 s each must run side by side"


def test_run_many_never_exceeds_its_concurrency():
    # each child records itself in a directory while it runs; count the peak
    argvs = [["sh", "-c", "n=$(ls /proc | wc -l); sleep 0.2; echo $n"] for _n in range(12)]
    started = time.monotonic()
    list(_command.run_many(argvs, concurrency=3, timeout=5))
    elapsed = time.monotonic() - started
    assert elapsed >= 0.2 * 12 / 3 - 0.05, "with 3 at a time, 12 x 0.2 s takes at least 0.8 s"


def test_run_many_timeout_runs_from_each_start_not_from_the_queue():
    # three 0.4 s commands one at a time with a 0.7 s timeout: the last one
    # waits 0.8 s in the queue yet must not be killed
    argvs = [["sleep", "0.4"]] * 3
    results = dict(_command.run_many(argvs, concurrency=1, timeout=0.7))
    assert all(r.ok for r in results.values())


def test_run_many_kills_overrunning_commands():
    results = dict(_command.run_many([["sleep", "10"], ["true"]], concurrency=2, timeout=0.3))
    assert results[0].timed_out and results[0].rc is None
    assert results[1].ok


def test_run_many_caps_the_start_rate():
    started = time.monotonic()
    list(_command.run_many([["true"]] * 6, concurrency=6, rate=10))
    assert time.monotonic() - started >= 0.45, "6 starts at 10/s take at least 0.5 s"


def test_run_many_kills_children_when_the_caller_stops_early():
    gen = _command.run_many([["true"], ["sleep", "30"]], concurrency=2, timeout=60)
    index = next(gen)[0]
    assert index == 0
    started = time.monotonic()
    gen.close()
    assert time.monotonic() - started < 2


def test_run_many_checks_every_argv_before_starting_any(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(_command.MissingBinaryError):
        list(_command.run_many([["touch", str(marker)], ["no-such-program-sysops-fleet"]]))
    assert not marker.exists()


def test_run_many_does_not_hang_on_a_child_that_closes_its_output_and_lingers():
    argv = ["sh", "-c", "exec >&- 2>&-; sleep 30"]
    started = time.monotonic()
    results = dict(_command.run_many([argv, ["sh", "-c", "exec >&-; exit 4"]], concurrency=2, timeout=0.5))
    assert time.monotonic() - started < 5
    assert results[0].timed_out and results[0].rc is None
    assert results[1].rc == 4 and not results[1].timed_out


def _gone(pid, within=3.0):
    """True once *pid* no longer runs (gone, or a zombie waiting for init to reap it)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_command_that_overruns_is_killed_with_everything_it_started():
    """A timed-out ping (or df) goes with its process group: a grandchild it left behind is killed too."""
    argv = ["sh", "-c", "sleep 60 & echo $!; wait"]
    [(unused_index, res)] = list(_command.run_many([argv], timeout=0.5))
    assert res.timed_out
    grandchild = int(res.stdout.split()[0])
    assert _gone(grandchild), "the command's own child outlived the timeout"


def test_each_command_runs_in_a_process_group_of_its_own():
    [(unused, res)] = list(_command.run_many([["sh", "-c", "echo $$; ps -o pgid= -p $$"]], timeout=5))
    pid, pgid = res.stdout.split()
    assert pid == pgid
