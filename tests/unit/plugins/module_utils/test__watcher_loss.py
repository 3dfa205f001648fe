# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Loss levels debounced like down (an outside tester's finding on issue 20): a host's loss level changes only
when K of the last N rounds agree, and a round in which the host answered nothing is the down rule's alone.

The real ``Watcher`` (settings loaded from a file, its state saved and read back every round) is fed the
per-round sweep results a test chooses: exact loss sequences cannot be had from a real path, and
hypothesis needs thousands of them. The sweep itself and a real lossy path are the lab tests'
(test__watcher_alerts.py).
"""

import textwrap

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _watcher

HOST = "127.0.0.2"
COUNT = 4


def watcher(tmp_path, rules="", limits="loss_warn = 5\nloss_crit = 40\n"):
    """A watcher of one host, 4 probes a round, with *rules* (down_after, window, clear_after) and *limits*."""
    (tmp_path / "lib").mkdir(exist_ok=True)
    path = tmp_path / "watcher.ini"
    path.write_text(textwrap.dedent(f"""
        [watcher]
        pidfile = {tmp_path}/w.pid
        log_file = {tmp_path}/w.log
        state_dir = {tmp_path}/lib
        [hosts]
        watch = {HOST}
        count = {COUNT}
        """) + rules + limits)
    rounds = []

    def sweeper(targets, **options):
        received = rounds.pop(0)
        entry = {"alive": received > 0, "sent": options["count"], "received": received,
                 "rtt_ms": 0.05 if received else None, "rtts_ms": [0.05] * received}
        return {"hosts": {HOST: entry}}

    return _watcher.Watcher(_watcher.load_settings(str(path)), sweeper=sweeper), rounds


def replay(found, answered):
    """Run one round per entry of *answered* (probes answered of 4); each round's change (old, new) or None."""
    watcher_, queue = found
    changes = []
    for number, received in enumerate(answered):
        queue.append(received)
        made = watcher_.check_hosts(1000.0 + number)
        changes.append((made[0].old, made[0].new) if made else None)
    return changes


def statuses(found):
    return found[0].state["hosts"][HOST]["status"]


@pytest.mark.parametrize("answered,why", [
    ([4, 4, 3, 4, 4, 4, 4, 4, 4, 4], "one lost probe in 20 (count 4, window 5, loss_warn 5): it was a warn and a recovery"),
    ([4, 4, 0, 0, 4, 4, 4, 4, 4, 4], "a 2-round outage: the down rule holds it back (2 < 3); it was a crit through loss"),
    ([4, 4, 2, 0, 0, 1, 4, 4, 4, 4], "the same outage starting and ending mid-round: the lossy edges are 2 rounds"),
    ([4, 3, 4, 4, 3, 4, 4, 4, 3, 4], "a probe lost now and then, never twice in 3 of 5 rounds"),
])
def test_what_the_outside_tester_saw_mails_nothing(tmp_path, answered, why):
    assert replay(watcher(tmp_path), answered) == [None] * len(answered), why


@pytest.mark.parametrize("answered,alerts", [
    ([4, 3, 3, 3, 4, 4, 4], [("up", "warn"), ("warn", "up")]),            # 25 % in 3 rounds in a row
    ([4, 2, 4, 2, 2, 4, 4], [("up", "crit"), ("crit", "up")]),            # 50 % in 3 of 5
    ([0, 0, 0, 4, 4], [("up", "down"), ("down", "up")]),                    # the down rule as before
    ([0, 0, 0, 2, 2, 2, 2], [("up", "down"), ("down", "crit")]),          # back, but lossy: one mail, no up
])
def test_loss_that_lasts_k_rounds_is_alerted_and_cleared_once(tmp_path, answered, alerts):
    assert [c for c in replay(watcher(tmp_path), answered) if c] == alerts


def test_the_alert_says_in_how_many_rounds_and_what_this_round_lost(tmp_path):
    found = watcher(tmp_path)
    queue = found[1]
    changes = []
    for number, received in enumerate([4, 3, 3, 3]):
        queue.append(received)
        changes += found[0].check_hosts(1000.0 + number)
    assert [c.line() for c in changes] == [
        f"host {HOST}: up -> warn (warn or worse in 3 of the last 4 rounds; this round: loss 25% is at or above "
        f"warn 5%)"]
    assert found[0].state["hosts"][HOST]["loss_pct"] == 18.75, "the window's loss is still shown"


def rule_sets():
    return st.tuples(st.integers(1, 6), st.integers(0, 4), st.integers(1, 4)).map(
        lambda t: (max(1, t[0] - t[1]), t[0], t[2]))  # down_after <= window


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rules=rule_sets(), answered=st.lists(st.integers(0, COUNT), max_size=30),
       warn=st.sampled_from([5, 25, 50]))
def test_any_loss_sequence_alerts_only_as_k_of_n_allows(tmp_path_factory, rules, answered, warn):
    """Per-round loss sequences of a host: every alert is backed by K of the last N rounds, problems are at
    most one per K bad rounds, a host that lost in fewer than K rounds never alerts, and one that keeps losing
    at least loss_warn is alerted within N rounds."""
    down_after, window, clear_after = rules
    text = f"down_after = {down_after}\nwindow = {window}\nclear_after = {clear_after}\n"
    tail = [COUNT - 2] * max(window, clear_after)  # 50 %: over every warn sampled, and never a down round
    found = watcher(tmp_path_factory.mktemp("w"), text, f"loss_warn = {warn}\n")
    changes = replay(found, answered + tail)
    lossy = [100.0 * (COUNT - r) / COUNT >= warn and r > 0 for r in answered + tail]
    down = [r == 0 for r in answered + tail]
    problems = [c for c in changes if c and c[0] == "up"]
    assert len(problems) <= (sum(lossy) + sum(down)) // down_after
    for index, change in enumerate(changes):
        if change and change[1] in ("warn", "down") and change[0] in ("up", "warn"):
            recent = (down if change[1] == "down" else lossy)[max(0, index - window + 1):index + 1]
            assert sum(recent) >= down_after, (index, change, answered)
    if sum(lossy[:len(answered)]) < down_after and sum(down[:len(answered)]) < down_after:
        assert not any(changes[:len(answered)]), (answered, changes)
    assert statuses(found) == "warn", (answered, changes)
