# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The disk_columns filter: disk_report results in columns for fleet_report, and what columns cannot hold refused."""

import json

import pytest
from ansible.errors import AnsibleFilterError
from disk_columns_samples import disk_columns, fs
from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet_columns


def test_the_filter_refuses_what_columns_cannot_hold_naming_the_host():
    with pytest.raises(AnsibleFilterError, match=r"sysops.fleet.disk_columns: 'web1' is not a disk_report result"):
        disk_columns({"web1": {"failed": True, "msg": "df failed"}})
    with pytest.raises(AnsibleFilterError, match=r"'web1'.filesystems\[1\]: expected a filesystem .* got a string"):
        disk_columns({"web1": {"filesystems": [fs("/"), "/var"]}})
    with pytest.raises(AnsibleFilterError, match=r"'web1'.filesystems\[0\].forecast: expected a dict"):
        disk_columns({"web1": {"filesystems": [fs("/", forecast=[3.0])]}})
    with pytest.raises(AnsibleFilterError, match=r"expected a dict of host -> disk_report result, got list"):
        disk_columns([])
    assert json.loads(disk_columns({})) == {"version": 1, "hosts": [], "counts": [],
                                            **{name: [] for name in _fleet_columns.COLUMNS}}


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(JSON | st.dictionaries(st.text(max_size=8), st.fixed_dictionaries({"filesystems": st.lists(JSON, max_size=3)}),
                              max_size=3))
def test_any_json_is_columns_text_or_a_filter_error_never_a_traceback(value):
    try:
        text = disk_columns(value)
    except AnsibleFilterError as exc:
        assert str(exc).startswith("sysops.fleet.disk_columns: ") and "\n" not in str(exc)
        return
    table = json.loads(text)
    assert table["hosts"] == list(value) and sum(table["counts"]) == len(table["mount"])
