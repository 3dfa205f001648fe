# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mesh's groups (the sides of a cut): exactly what they were, without the cubic search.

``reference_groups`` below is ``_mesh.groups`` as it was before issue 22's
outside tester found it cubic in the groups (800 hosts with much of the
matrix unmeasured or silent: 64 s of CPU). It is kept here, and only here,
as the reference: random matrices (hosts, measured / unmeasured / silent /
lossy pairs, hosts that did not sweep, excluded hosts, probes of hosts
outside the mesh) must give identical groups, in identical order. The
speed is measured in tests/bench/bench_mesh.py (``--sparse``); here the
work is counted instead of timed: comparisons of host names, which the old
search spent per join on sorting every host again.
"""

from typing import Dict, List, Set, Tuple

from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _mesh

S = _mesh.SILENT


# ---- the reference: _mesh.groups before issue 22's fix (its union-find, _mesh._Groups, is unchanged) ----

def reference_groups(m, excluded: Set[str]) -> List[List[str]]:
    nodes = [h for h in m.hosts if h in m.seen and h not in excluded]
    union = _mesh._Groups(nodes)  # the union-find is unchanged; the joining after it is what changed
    node_set = set(nodes)
    for a in nodes:
        for b, loss in m.seen[a].items():
            if loss < S and b in node_set:
                union.join(a, b)
    root = {h: union.find(h) for h in nodes}
    measured: Set[Tuple[str, str]] = set()
    for a in nodes:
        mine = root[a]
        for b in m.seen[a]:
            theirs = root.get(b, mine)
            if theirs != mine:
                measured.add((mine, theirs) if mine < theirs else (theirs, mine))
    while True:
        sides = union.members()
        root = {h: union.find(h) for h in nodes}
        failing = {frozenset((root[a], root[b])) for a, b in measured if root[a] != root[b]}
        roots = [union.find(side[0]) for side in sides]
        unknown = [(x, y) for i, x in enumerate(roots) for y in roots[i + 1:] if frozenset((x, y)) not in failing]
        if not unknown:
            return sides
        union.join(*unknown[0])


# ---- random matrices ------------------------------------------------------------------------------

NAME = st.text(alphabet="ab9Z_-.", min_size=1, max_size=4)
WORKING = st.sampled_from([0.0, 0.0, 5.0, 35.0, S - 1e-9])  # a pair that answered: its loss


@st.composite
def matrices(draw):
    """(hosts, seen, excluded): random names, each pair unmeasured, silent, reached or lossy at random."""
    hosts = draw(st.lists(NAME, max_size=24, unique=True))
    outside = draw(st.lists(NAME.filter(lambda n: n not in hosts), max_size=2, unique=True))
    sweepers = [h for h in hosts if draw(st.integers(0, 5))] + outside  # some did not sweep; some are no mesh host
    # what a prober saw of a host (None: not probed): mostly nothing or silence, so that many groups are joined
    density = draw(st.sampled_from([(None,), (None, S), (None, None, None, S, 0.0), (S, S, S, 0.0, None), (0.0, S)]))
    seen: Dict[str, Dict[str, float]] = {}
    for a in sweepers:
        row = {}
        for b in hosts + outside:
            cell = draw(st.sampled_from(density)) if b != a else None
            if cell is not None:
                row[b] = draw(WORKING) if cell == 0.0 else cell
        seen[a] = row
    excluded = set(draw(st.lists(st.sampled_from(hosts), max_size=3))) if hosts else set()
    order = draw(st.permutations(hosts))  # findings() takes the hosts in any order
    return order, seen, excluded


@settings(max_examples=800, deadline=None)
@given(matrices())
def test_groups_are_exactly_those_of_the_old_search_on_random_matrices(matrix):
    hosts, seen, excluded = matrix
    assert _mesh.groups(_mesh._Matrix(hosts, seen), excluded) == reference_groups(_mesh._Matrix(hosts, seen), excluded)


@settings(max_examples=300, deadline=None)
@given(matrices())
def test_findings_are_those_the_old_groups_give(matrix):
    """The whole reading, with the reference groups put in their place: the same findings and order."""
    hosts, seen, unused = matrix
    new = _mesh.findings(hosts, seen)
    kept = _mesh.groups
    try:
        _mesh.groups = reference_groups
        old = _mesh.findings(hosts, seen)
    finally:
        _mesh.groups = kept
    assert new == old


# ---- by hand: the order of joins decides ----------------------------------------------------------

def test_the_first_open_group_joins_the_first_group_it_has_no_measured_pair_to():
    """Five lone hosts (every probe silent), only some pairs measured: the joins go in the old order."""
    seen = {"a": {"b": S, "c": S}, "b": {"a": S, "d": S}, "c": {"e": S}, "d": {"e": S}, "e": {}}
    hosts = sorted(seen)
    want = reference_groups(_mesh._Matrix(hosts, seen), set())
    assert _mesh.groups(_mesh._Matrix(hosts, seen), set()) == want == [["a", "d"], ["b", "c"], ["e"]]


def test_no_sweeping_host_is_no_group_and_one_group_is_one_side():
    assert _mesh.groups(_mesh._Matrix(["a", "b"], {}), set()) == []
    seen = {"a": {"b": 0.0}, "b": {"a": S}}
    assert _mesh.groups(_mesh._Matrix(["a", "b"], seen), set()) == [["a", "b"]]
    assert _mesh.groups(_mesh._Matrix(["a", "b"], seen), {"a"}) == [["b"]]


# ---- the work, counted ----------------------------------------------------------------------------

class Name(str):
    """A host name that counts how often it is ordered against another (sorting, min, heaps)."""

    compared = 0

    def __lt__(self, other):
        Name.compared += 1
        return str.__lt__(self, other)

    def __gt__(self, other):
        Name.compared += 1
        return str.__gt__(self, other)

    def __le__(self, other):
        Name.compared += 1
        return str.__le__(self, other)

    def __ge__(self, other):
        Name.compared += 1
        return str.__ge__(self, other)

    __hash__ = str.__hash__


def ring_all_silent(count: int, bound: int) -> Tuple[List[str], Dict[str, Dict[str, float]]]:
    """A ring-bounded mesh whose every probe went unanswered (ICMP dropped fleet-wide): every host a group."""
    hosts = [Name(f"host{i:05d}") for i in range(count)]
    return hosts, {h: {p: S for p in _mesh.peers(hosts, h, bound)} for h in hosts}


def test_joining_lone_hosts_orders_names_a_near_linear_number_of_times():
    """400 lone hosts, each measured against 8 ring neighbours only: 399 joins.

    The old search sorted every host again before each join (241,082
    comparisons here, and growing with the cube of the groups); joining by
    the measured pairs orders names a few times per host and pair (8,130).
    """
    hosts, seen = ring_all_silent(400, 8)
    m = _mesh._Matrix(hosts, seen)
    Name.compared = 0
    found = _mesh.groups(m, set())
    work = Name.compared
    sides = [set(side) for side in found]
    assert sorted(h for side in found for h in side) == sorted(hosts) and len(sides) > 1
    assert all(any(b in sides[j] for a in sides[i] for b in seen[a]) for i in range(len(sides)) for j in range(i)), \
        "every two groups have a pair measured between them"
    pairs = sum(len(row) for row in seen.values())
    assert work <= 4 * (len(hosts) + pairs), f"{work} comparisons of names for {pairs} measured pairs"
