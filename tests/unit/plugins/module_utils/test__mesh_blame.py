# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mesh never blames a healthy host: worlds drawn with their faults known, read back from the sweeps they give.

Issue 22's second outside tester found the healthy prober blamed when the
probers are few: two probers where A reaches 1 of the 4 hosts B reaches
(25 %, above the 20 % of ``blind``) gave ONE-WAY at B; three probers with
two of them blind gave a cut and ONE-WAY at the healthy third.

Here hypothesis draws a world: probers and hosts that only answer, which
hosts are down (a down prober does not sweep), which probers are blind
(their probes never come back; they answer everyone), which links are cut
(both ways), which pairs are probed at all, and the small loss of pairs
that work. The sweeps that world gives are read by the real analysis, and

* no host is called ``blind`` that is not blind;
* no ``one_way`` finding is placed ``at`` a host that is not at fault (in
  these worlds a one-way pair only comes from a blind prober: a cut link
  fails both ways); ``at`` None with ``maybe_blind`` ("cannot tell") is
  always allowed;
* no host is called ``down`` that a prober probing it reaches, or that swept.

A firewall that drops what one host sends reads exactly like that host's
own way out failing toward it, so such worlds are not drawn here: the
table tests in test__mesh.py say where those pairs are placed.
"""

from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet_inputs, _mesh, _mesh_render

S = _mesh.SILENT


@st.composite
def worlds(draw):
    """(hosts, probers, down, blind, cut links, seen): a fleet, its faults, and the matrix its sweeps give."""
    probers = [f"p{i}" for i in range(draw(st.integers(2, 6)))]
    targets = [f"t{i}" for i in range(draw(st.integers(0, 5)))]
    hosts = probers + targets
    down = set(draw(st.lists(st.sampled_from(hosts), unique=True, max_size=max(1, len(hosts) // 3))))
    blind = set(draw(st.lists(st.sampled_from(probers), unique=True, max_size=len(probers))))
    blind -= down
    pairs = [(a, b) for i, a in enumerate(hosts) for b in hosts[i + 1:]]
    cut = set(draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs) // 2))) if pairs else set()
    cut |= {(b, a) for a, b in cut}
    every = draw(st.booleans())
    seen = {}
    for prober in probers:
        if prober in down:
            continue  # stopped: it sweeps nothing
        row = {}
        for other in hosts:
            if other == prober or not (every or draw(st.integers(0, 5))):
                continue  # itself, or not probed (a ring-bounded mesh probes some only)
            answers = other not in down and prober not in blind and (prober, other) not in cut
            row[other] = draw(st.sampled_from([0.0, 0.0, 5.0, 10.0])) if answers else S
        seen[prober] = row
    return hosts, probers, down, blind, cut, seen


def at_fault(finding):
    """The host a finding says is at fault, or None (a cut names sides, not a culprit; "cannot tell" none)."""
    if finding["kind"] in ("down", "blind"):
        return finding["hosts"][0]
    if finding["kind"] == "one_way":
        return finding["at"]
    return None


@settings(max_examples=1500, deadline=None)
@given(worlds())
def test_no_finding_blames_a_host_that_is_not_at_fault(world):
    hosts, unused_probers, down, blind, unused_cut, seen = world
    found = _mesh.findings(sorted(hosts), seen)["findings"]
    for finding in found:
        assert finding["kind"] != "lossy", finding
        culprit = at_fault(finding)
        if culprit is None:
            continue
        if finding["kind"] == "down":
            assert all(row[culprit] >= S for row in seen.values() if culprit in row), (finding, "reached")
            assert culprit not in seen or culprit in down, (finding, "it swept: it is up")
        else:
            assert culprit in blind, (finding, _mesh_render.sentence(finding), "blamed, but healthy")


# ---- the outside tester's cases, and where the rule draws its lines --------------------------------

def run(seen, hosts):
    return [(f["kind"], f.get("at"), f.get("maybe_blind"), f.get("reaches"), f.get("alive_elsewhere"))
            for f in _mesh.findings(sorted(hosts), seen)["findings"]]


def row(**cells):
    return {host: (S if cell == "x" else 0.0) for host, cell in cells.items()}


H = ["A", "B", "H1", "H2", "H3"]
P3 = ["A", "B", "C", "H1", "H2"]
CASES = [
    ("2 probers: A reaches 1 of the 4 hosts B reaches (25 %): cannot tell, B not blamed", H,
     {"A": row(B="x", H1="o", H2="x", H3="x"), "B": row(A="o", H1="o", H2="o", H3="o")},
     [("one_way", None, "A", 1, 3)]),
    ("2 probers: A reaches 1 of the 2 hosts B reaches (half): still cannot tell", ["A", "B", "H1", "H2"],
     {"A": row(B="x", H1="o", H2="x"), "B": row(A="o", H1="o", H2="o")},
     [("one_way", None, "A", 1, 2)]),
    ("2 probers: A reaches 2 of the 3 other hosts B reaches (more than half): B drops it", H,
     {"A": row(B="x", H1="o", H2="o", H3="x"), "B": row(A="o", H1="o", H2="o", H3="o")},
     [("one_way", "B", None, None, None)]),
    ("2 probers: A reaches the 3 hosts B reaches, not B: its way out works, B drops it", H,
     {"A": row(B="x", H1="o", H2="o", H3="o"), "B": row(A="o", H1="o", H2="o", H3="o")},
     [("one_way", "B", None, None, None)]),
    ("3 probers, A and C blind: the pair between them fails both ways, each at its own way out", P3,
     {"A": row(B="x", C="x", H1="x", H2="x"), "B": row(A="o", C="o", H1="o", H2="o"),
      "C": row(A="x", B="x", H1="x", H2="x")},
     [("cut", "C", None, None, None), ("one_way", "A", None, 0, 3), ("one_way", "C", None, 0, 3)]),
    ("3 probers, C reaches the hosts but not A, B, nor they it: a cut, not blindness", P3,
     {"A": row(B="o", C="x", H1="o", H2="o"), "B": row(A="o", C="x", H1="o", H2="o"),
      "C": row(A="x", B="x", H1="o", H2="o")},
     [("cut", None, None, None, None)]),
    ("3 probers, C reaches A and B (which reach it) but none of 9 hosts: its way out works, not blind",
     ["A", "B", "C"] + [f"H{i}" for i in range(9)],
     {"A": {h: 0.0 for h in ["B", "C"] + [f"H{i}" for i in range(9)]},
      "B": {h: 0.0 for h in ["A", "C"] + [f"H{i}" for i in range(9)]},
      "C": dict({"A": 0.0, "B": 0.0}, **{f"H{i}": S for i in range(9)})},
     []),
]


def test_the_outside_testers_few_prober_cases_blame_no_healthy_prober():
    for what, hosts, seen, want in CASES:
        assert run(seen, hosts) == want, what


def test_the_report_says_why_it_cannot_tell_and_why_it_blames():
    untold = _mesh.findings(sorted(H), CASES[0][2])["findings"][0]
    assert _mesh_render.sentence(untold) == (
        "A cannot reach B, which reaches it: either A's own way out is at fault (blind) or B drops what A sends; "
        "cannot tell which: A reaches 1 of the 3 other hosts it probed that another prober reaches (more than half "
        "would clear it, at most 20% would blame it)")
    outlier = _mesh.findings(sorted(P3), CASES[4][2])["findings"][1]
    assert _mesh_render.sentence(outlier) == (
        "at A: A cannot reach B, which reaches it; its own way out is at fault: it reaches 0 of the 3 other hosts "
        "it probed that another prober reaches")
    assert _fleet_inputs.shown(outlier["at"]) == "A"
