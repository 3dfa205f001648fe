# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The alert rules: K bad rounds of the last N, clear after M good ones, host thresholds, disk hysteresis; and
the [hosts] and [host NAME] settings that set them, with a table of hostile values and the message each gets."""

import os
import re
import textwrap

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _alert_rules, _disk, _report, _watcher

RULES = _alert_rules.Debounce(down_after=3, window=5, clear_after=2)


def replay(letters, rules=RULES, alerted="up"):
    """The alerted level after each round of *letters* (u/w/c/d), as the watcher keeps it."""
    seen, levels = "", []
    for letter in letters:
        seen = _alert_rules.remember(seen, _alert_rules._LEVEL[letter], max(rules.window, rules.clear_after))
        alerted, seen = _alert_rules.advance(alerted, seen, rules)
        levels.append(alerted[0])
    return "".join(levels)


@pytest.mark.parametrize("letters,alerted", [
    ("uuuuu", "uuuuu"),
    ("dduuu", "uuuuu"),                  # two silent rounds of five: no alert
    ("ddd", "uud"),                      # a host that stops: alerted on the third round
    ("dudud", "uuuud"),                  # 3 of the last 5, not in a row
    ("dddudd", "uuddd" + "d"),           # one good round does not clear it
    ("ddduu", "uuddu"),                  # two good rounds in a row clear it
    ("ddduud", "uudduu"),                # and the bad rounds before the recovery are forgotten
    ("ddduuddd", "uudduuud"),            # so it takes three fresh ones to alert again
    ("www", "uuw"),                      # a threshold, the same way
    ("wwc", "uuw"),                      # warn or worse in 3 of 5: warn; crit needs its own 3
    ("ccc", "uuc"),
    ("cccww", "uuccw"),                  # clears to the worst of the two good-enough rounds
    ("wwd", "uuu"),                      # a down round is the down rule's: never a loss or round-trip round
    ("wdwdw", "uuuuw"),                  # so warn needs its own 3 of 5
])
def test_the_alerted_level_follows_k_of_n_and_m(letters, alerted):
    assert replay(letters) == alerted


def test_one_round_rules_alert_on_every_change_as_before():
    one = _alert_rules.Debounce(down_after=1, window=1, clear_after=1)
    assert replay("udud", one) == "udud"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="uwcd", max_size=40), st.integers(1, 6), st.integers(0, 5), st.integers(1, 6))
def test_any_rounds_give_a_level_that_k_of_n_backs(letters, window, extra, clear_after):
    rules = _alert_rules.Debounce(down_after=max(1, window - extra), window=window, clear_after=clear_after).check()
    levels = replay(letters, rules)
    assert len(levels) == len(letters)
    for i, level in enumerate(levels):
        if level != (levels[i - 1] if i else "u") and _alert_rules.severity(_alert_rules._LEVEL[level]) > \
                _alert_rules.severity(_alert_rules._LEVEL[levels[i - 1] if i else "u"]):
            recent = letters[max(0, i - window + 1):i + 1]
            bad = sum(1 for c in recent if _alert_rules.severity(_alert_rules._LEVEL[c]) >=
                      _alert_rules.severity(_alert_rules._LEVEL[level]))
            assert bad >= rules.down_after, (letters, levels, i)


def test_host_thresholds_judge_loss_and_median_round_trip():
    limits = _alert_rules.HostLimits(loss_warn=5, loss_crit=20, rtt_warn=50, rtt_crit=200).check()
    assert limits.level(0.0, 10.0) == ("up", [])
    assert limits.level(5.0, 10.0) == ("warn", ["loss 5% is at or above warn 5%"])
    assert limits.level(1.0, 250.0) == ("crit", ["median round trip 250 ms is at or above crit 200 ms"])
    assert _alert_rules.HostLimits().level(99.0, 9999.0) == ("up", []), "no thresholds: only down alerts"


def fs(pct, size=1000):
    used = size * pct // 100
    return _disk.Filesystem(device="/dev/t", fstype="ext4", mount="/t", size_bytes=size, used_bytes=used,
                            avail_bytes=size - used, use_pct=pct, inodes_total=100, inodes_used=1, inode_pct=1)


@pytest.mark.parametrize("previous,pct,margin,status", [
    ("ok", 79, 2, "ok"), ("ok", 80, 2, "warn"),
    ("warn", 79, 2, "warn"), ("warn", 78, 2, "ok"),          # clears only 2 points below warn
    ("warn", 79, 0, "ok"),                                   # no margin: as the report
    ("crit", 89, 2, "crit"), ("crit", 88, 2, "warn"), ("crit", 70, 2, "ok"),
    ("warn", 95, 2, "crit"),                                 # worse is never held back
])
def test_a_disk_status_clears_only_a_margin_below_its_threshold(previous, pct, margin, status):
    limits = _report.Thresholds(warn=80, crit=90).check()
    found, reasons = _alert_rules.disk_status(fs(pct), limits, previous, margin)
    assert found == status, reasons
    if found == previous and found != _report.assess(fs(pct), limits)[0]:
        assert any("not yet 2 points below" in r for r in reasons), reasons


def test_free_space_floors_hold_by_the_margin_of_the_size():
    limits = _report.Thresholds(free_warn=300).check()
    assert _alert_rules.disk_status(fs(75), limits, "warn", 2)[0] == "warn", "250 free < 300 + 2 % of 1000"
    assert _alert_rules.disk_status(fs(68), limits, "warn", 2)[0] == "ok", "320 free >= 320"


def load(tmp_path, body):
    path = tmp_path / "watcher.ini"
    path.write_text(textwrap.dedent(f"""
        [watcher]
        pidfile = {tmp_path}/w.pid
        log_file = {tmp_path}/w.log
        state_dir = {tmp_path}/lib
        """) + textwrap.dedent(body))
    return _watcher.load_settings(str(path))


def test_hosts_settings_and_per_host_sections(tmp_path):
    found = load(tmp_path, """
        [hosts]
        watch = 127.0.0.0/29 db1.example
        count = 10
        spacing = 0.5
        down_after = 2
        window = 30
        clear_after = 3
        loss_warn = 10%
        [host 127.0.0.3]
        loss_crit = 50
        rtt_warn = 100
        [host db1.example]
        loss_warn = off
        """)
    assert found.sweep.count == 10 and found.sweep.spacing == 0.5 and found.hosts == ["127.0.0.0/29", "db1.example"]
    assert found.debounce == _alert_rules.Debounce(down_after=2, window=30, clear_after=3)
    assert found.limits_for("127.0.0.3", "127.0.0.3") == _alert_rules.HostLimits(loss_warn=10, loss_crit=50, rtt_warn=100)
    assert found.limits_for("db1.example", "192.0.2.9") == _alert_rules.HostLimits()
    assert found.limits_for("127.0.0.4", "127.0.0.4") == _alert_rules.HostLimits(loss_warn=10)
    # 7 addresses (a name counts as one) x 10 probes at rate 1000, 9 spacings and the timeout, starting the workers
    assert found.sweep_seconds() == pytest.approx(7 * 10 / 1000 + 9 * 0.5 + 1.0 + 0.5)


def test_the_watchers_defaults_are_the_measured_ones(tmp_path):
    found = load(tmp_path, "[hosts]\nwatch = 127.0.0.1\n")
    assert found.sweep.count == 4 and found.sweep.spacing == 1.0 and found.sweep.timeout == 1.0
    assert found.debounce == _alert_rules.Debounce(3, 5, 2) and found.disk_margin == 2.0
    assert found.host_limits == _alert_rules.HostLimits()


HOSTILE = [
    ("[hosts]\ncount = 0", "[hosts] count must be between 1 and 10000 probes per address, got 0"),
    ("[hosts]\ncount = many", "[hosts] count must be a whole number, got 'many'"),
    ("[hosts]\ncount = 1e9", "[hosts] count must be a whole number, got '1e9'"),
    ("[hosts]\nspacing = 0.0001", "[hosts] spacing must be between 0.002 and 60 seconds"),
    ("[hosts]\nspacing = nan", "[hosts] spacing must be a number, got 'nan' (the digits 0-9 and one decimal point only)"),
    ("[hosts]\nspacing = 61", "[hosts] spacing must be between 0.002 and 60 seconds"),
    ("[hosts]\ntimeout = 0", "[hosts] timeout must be more than 0 and at most 60 seconds, got 0.0"),
    ("[hosts]\ntimeout = inf", "[hosts] timeout must be a number, got 'inf'"),
    ("[hosts]\ntimeout = 61", "[hosts] timeout must be more than 0 and at most 60 seconds, got 61"),
    ("[hosts]\nretries = 11", "[hosts] retries must be between 0 and 10, got 11"),
    ("[hosts]\nmethod = carrier-pigeon", "[hosts] method must be one of auto, socket, ping, got 'carrier-pigeon'"),
    ("[hosts]\nrate = -1", "[hosts] rate must be a number, got '-1'"),
    ("[hosts]\nworkers = 0", "[hosts] workers must be between 1 and 256, got 0"),
    ("[hosts]\nwatch = 127.0.0.1;reboot", "[hosts] watch: '127.0.0.1;reboot' contains ';'"),
    ("[hosts]\nwatch = 10.0.0.0/7", "[hosts] watch: '10.0.0.0/7' has 33554430 addresses, more than max_hosts=65536"),
    ("[hosts]\nwatch = 0x7f.1", "[hosts] watch: '0x7f.1' is not a valid address here"),
    ("[hosts]\nexclude = 127.0.0.1|x", "[hosts] exclude: '127.0.0.1|x' contains '|'"),
    ("[hosts]\nretires = 2", "[hosts] unknown key 'retires' (did you mean 'retries'?)"),
    ("[hosts]\ndown_after = 6", "[hosts] down_after must be between 1 and window (5) rounds, got 6"),
    ("[hosts]\nwindow = 0", "[hosts] window must be between 1 and 60, got 0"),
    ("[hosts]\nclear_after = 61", "[hosts] clear_after must be between 1 and 60, got 61"),
    ("[hosts]\nloss_warn = 0", "[hosts] loss_warn must be more than 0 and at most 100 (percent), got 0.0"),
    ("[hosts]\nloss_warn = 101", "[hosts] loss_warn must be more than 0 and at most 100 (percent), got 101.0"),
    ("[hosts]\nloss_warn = nan", "[hosts] loss_warn must be a number or off, got 'nan' (the digits 0-9 and one "
     "decimal point only)"),
    ("[hosts]\nloss_warn = lots", "[hosts] loss_warn must be a number or off, got 'lots'"),
    ("[hosts]\nloss_warn = \u0664", "[hosts] loss_warn must be a number or off, got '\u0664'"),
    ("[hosts]\nrtt_warn = 1_0", "[hosts] rtt_warn must be a number or off, got '1_0'"),
    ("[hosts]\nrtt_crit = +5", "[hosts] rtt_crit must be a number or off, got '+5'"),
    ("[hosts]\nrtt_crit = 1e3", "[hosts] rtt_crit must be a number or off, got '1e3'"),
    ("[hosts]\nloss_warn = 30\nloss_crit = 20", "[hosts] loss_warn (30) must not be above loss_crit (20)"),
    ("[hosts]\nrtt_warn = -5", "[hosts] rtt_warn must be a number or off, got '-5'"),
    ("[hosts]\nrtt_warn = 0", "[hosts] rtt_warn must be more than 0 and at most 3.6e+06 (milliseconds), got 0.0"),
    ("[hosts]\nwatch = 127.0.0.1\n[host 127.0.0.2]\nloss_warn = 5",
     "[host 127.0.0.2]: '127.0.0.2' is not one watched host of [hosts] watch"),
    ("[hosts]\nwatch = web1\n[host web2]\nloss_warn = 5", "[host web2]: 'web2' is not one watched host"),
    ("[hosts]\nwatch = 127.0.0.0/24\n[host 127.0.0.0/25]\nloss_warn = 5", "[host 127.0.0.0/25]: '127.0.0.0/25' is not one"),
    ("[hosts]\nwatch = 127.0.0.1\n[host 127.0.0.1]\ncount = 5", "[host 127.0.0.1] unknown key 'count'"),
    ("[hosts]\nwatch = 127.0.0.1\n[host 127.0.0.1;x]\nloss_warn = 5", "[host 127.0.0.1;x]: '127.0.0.1;x' contains ';'"),
    ("[hosts]\nwatch = 127.0.0.1\n[host 127.0.0.1]\nrtt_crit = 10\nrtt_warn = 20",
     "[host 127.0.0.1] rtt_warn (20) must not be above rtt_crit (10)"),
    ("[disk]\nclear_margin = 51", "[disk] clear_margin must be between 0 and 50, got 51"),
    ("[disk]\nclear_margin = -1", "[disk] clear_margin must be a number, got '-1'"),
    ("[hostz]\nwatch = 1", "unknown section(s) hostz"),
    # a count with a fraction is refused, not cut (an outside tester's 4.9 became 4)
    ("[hosts]\ndown_after = 2.9", "[hosts] down_after must be a whole number, got '2.9'"),
    ("[hosts]\nwindow = 4.9", "[hosts] window must be a whole number, got '4.9'"),
    ("[hosts]\nclear_after = 1e1", "[hosts] clear_after must be a whole number, got '1e1'"),
    ("[disk]\nwarn = 80.5", "[disk] warn must be a whole number, got '80.5'"),
    ("[disk]\ninode_crit = nan", "[disk] inode_crit must be a whole number, got 'nan'"),
    ("[mail]\nsmtp_port = 25.9", "[mail] smtp_port must be a whole number, got '25.9'"),
]


@pytest.mark.parametrize("body,message", HOSTILE)
def test_hostile_host_settings_are_refused_naming_the_key(tmp_path, body, message):
    with pytest.raises(_watcher.WatcherConfigError) as refused:
        load(tmp_path, body)
    assert message in str(refused.value), str(refused.value)


def test_the_documented_hosts_example_loads_as_written(tmp_path):
    """docs/watcher.md's [hosts] example, pasted into a settings file, is accepted (an outside tester found its
    inline comments refused: a '#' after a value is part of the value)."""
    docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "docs", "watcher.md")
    with open(docs, encoding="utf-8") as handle:
        text = handle.read()
    block = re.search(r"```ini\n(# The sweep's options.*?)```", text, re.S).group(1)
    settings_ = load(tmp_path, block)
    assert settings_.sweep_seconds() > 0


@pytest.mark.parametrize("body,where", [
    ("[hosts]\nwatch = 127.0.0.1\ncount = 1\nwindow = 60\nloss_warn = 50\n", "[hosts] loss_warn"),
    ("[hosts]\nwatch = 127.0.0.1\ncount = 1\nwindow = 60\n[host 127.0.0.1]\nloss_crit = 50\n", "[host 127.0.0.1] loss_crit"),
])
def test_a_loss_threshold_with_one_probe_a_round_is_refused(tmp_path, body, where):
    """With count = 1 the loss of a round is never counted (an outside tester's 50 % loss went unseen): say so."""
    with pytest.raises(_watcher.WatcherConfigError, match=re.escape(where) + " needs \\[hosts\\] count of 2 or more"):
        load(tmp_path, body)
    assert load(tmp_path, body.replace("count = 1", "count = 2")).sweep.count == 2
