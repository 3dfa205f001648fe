# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_sizes: the one size formatter, against df -h, and the same number in every report."""

import os
import subprocess

import pytest

from ansible_collections.sysops.fleet.plugins.module_utils import _disk, _fleet_render, _history, _sizes

G = 1024 ** 3


@pytest.mark.parametrize("value,shown", [
    (None, "-"), (0, "0"), (1023, "1023"), (1024, "1.0K"), (1025, "1.1K"), (1536, "1.5K"), (10 * 1024, "10K"),
    (10 * 1024 - 1, "10K"), (1024 ** 2 - 1, "1.0M"), (252 * G - 5, "252G"), (int(79.3 * G), "80G"),
    (3 * 1024 ** 4, "3.0T"), (1.2 * G, "1.2G"), (1.25 * G, "1.3G"), (99.5, "100"), (-1536, "-1.5K"),
])
def test_sizes_are_rounded_up_like_df_h(value, shown):
    assert _sizes.human(value) == shown


def test_amounts_below_a_kilobyte_can_carry_a_unit():
    assert _sizes.human(100, "B") == "100B" and _sizes.human(2048, "B") == "2.0K"


def test_sizes_match_df_h_on_this_machine():
    out = subprocess.run(["df", "-h", "-P"], capture_output=True, text=True, check=False,
                         env=dict(os.environ, LC_ALL="C")).stdout
    rows = {" ".join(line.split()[5:]): line.split()[1:4] for line in out.splitlines()[1:]}
    for unused_attempt in range(10):
        found = _disk.read_filesystems(_disk.Selection(exclude_fstypes=()))
        got = {f.mount: [_sizes.human(f.size_bytes), _sizes.human(f.used_bytes), _sizes.human(f.avail_bytes)]
               for f in found}
        if all(got[m] == rows[m] for m in got):
            break
    assert {m: rows[m] for m in got} == got


@pytest.mark.parametrize("rate", [1.25 * G, 1.2 * G, 1288490188.8, 24.4 * 2 ** 20, 999.0, 7.05 * 2 ** 40])
def test_the_daily_report_and_the_fleet_report_print_one_rate_the_same(rate):
    """They used to disagree: 1.2G/day in the daily report, 1.3G/day in the fleet report."""
    daily = _history.describe(_history.Forecast("/var", rate, 10 * G, days_to_full=3.0, full_at=0.0, span_s=86400))
    fleet = _fleet_render.eta({"days_to_full": 3.0, "rate_per_day": rate})
    shown = daily.split("+", 1)[1].split("/day", 1)[0]
    assert fleet.startswith(f"+{shown}/day, ") and shown == _sizes.human(rate, "B")
