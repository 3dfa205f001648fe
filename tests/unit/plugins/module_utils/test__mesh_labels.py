# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The text matrix's row names: one per host, never two alike, and the cells of every row in one column.

Issue 22's second outside tester found two names that read alike after
escaping (a host named ``a`` line-break ``b`` is shown ``a\\nb``, as is a
host named with a backslash and an n) printed as one host twice, and CJK
names (two columns each character) pushing their row's cells out of line,
the width having been counted with ``len``.
"""

import unicodedata

from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _mesh, _mesh_render, _text

NAMES = st.text(alphabet=st.sampled_from(["a", "b", "n", "\\", "\n", "\t", "~", "1", "東", "京", "ｗ", "é", "-"]),
                min_size=1, max_size=40)


def width(text):
    """Columns on a terminal, counted here on its own (the oracle for ``_text.columns``): CJK two, marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def matrix_rows(hosts):
    """The text matrix of a healthy mesh of *hosts*: (label column, cells) of each row, as printed."""
    addresses = {h: f"192.0.2.{i + 1}" for i, h in enumerate(hosts)}
    sweeps = {h: {"alive": [addresses[o] for o in hosts if o != h], "dead": []} for h in hosts}
    result = _mesh.mesh(sweeps, addresses)
    lines = _mesh_render.text_lines(result["mesh"], result["findings"])
    rows = lines[lines.index("") + 2:-1]
    return [(line[:-len(hosts)], line[-len(hosts):]) for line in rows]


def test_a_line_break_and_a_backslash_n_are_two_rows():
    labels = _mesh_render.row_labels(["a\nb", "a\\nb", "c"])
    assert labels == ["a\\nb~1", "a\\nb", "c"], "the host named a\\nb keeps its name; the escaped one is told apart"


def test_cjk_names_keep_the_cells_in_one_column():
    rows = matrix_rows(["東京-web1", "web2", "大阪-データベース-01"])
    assert [width(label) for label, unused in rows] == [2 + 20 + 1] * 3, "大阪-データベース-01 is 20 columns"
    assert [cells for unused, cells in rows] == ["-oo", "o-o", "oo-"]


def test_a_long_cjk_name_is_cut_to_32_columns_not_32_characters():
    name = "東" * 40
    assert _mesh_render.row_labels([name, "db1"]) == ["東" * 16, "db1"]
    assert _mesh_render.row_labels([name, name + "x"]) == ["東" * 15 + "~1", "東" * 15 + "~2"]


@settings(max_examples=300, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=8, unique=True))
def test_labels_are_unique_at_most_32_columns_and_rows_line_up(hosts):
    labels = _mesh_render.row_labels(hosts)
    assert len(set(labels)) == len(labels), labels
    assert all(width(label) <= _mesh_render.NAME_WIDTH for label in labels)
    assert all(label == host for label, host in zip(labels, hosts)
               if host.isprintable() and "\\" not in host and width(host) <= _mesh_render.NAME_WIDTH
               and sum(_mesh_render.row_labels([h])[0] == host for h in hosts) == 1), "a short plain name is kept"
    assert all(label.isprintable() for label in labels)
    columns = {width(label) for label, unused in matrix_rows(hosts)}
    assert len(columns) == 1, "every row's cells start in the same column"


def test_columns_counts_wide_characters_twice_and_marks_not_at_all():
    assert all(_text.columns(t) == width(t) for t in ("web1", "東京-web1", "ｗｅｂ", "cafe\u0301", "a\\nb"))
    assert _text.columns("web1") == 4
    assert _text.columns("東京-web1") == 9
    assert _text.columns("ｗｅｂ") == 6
    assert _text.columns("cafe\u0301") == 4
