# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mesh's reading of a reachability matrix: each fault named exactly, nothing named on a healthy fleet.

Matrices are written by hand (``seen``: prober -> probed -> loss %, 100
for silence) for the rules' edges: ties, partial data, the smallest
fleets. A property test draws healthy fleets (with partial data and loss
below the threshold) and one fault of each kind on them.
"""

import pytest
from hypothesis import assume, given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet_inputs, _mesh, _mesh_render, _text

S = _mesh.SILENT


def healthy(hosts, loss=0.0):
    return {a: {b: loss for b in hosts if b != a} for a in hosts}


def names(n):
    return [f"h{i:02d}" for i in range(n)]


def kinds(found):
    return [(f["kind"], f.get("at"), f["hosts"]) for f in found]


def read(seen, hosts=None):
    return _mesh.findings(sorted(hosts or seen), seen)["findings"]


# ---- faults, as a network would make them ---------------------------------------------------------

def make_down(seen, host):
    """Stopped: it sweeps nothing, and nobody gets an answer from it."""
    seen.pop(host, None)
    for row in seen.values():
        if host in row:
            row[host] = S


def make_blind(seen, host):
    """Its probes never come back (its way out is blocked), but it answers everyone."""
    for other in seen[host]:
        seen[host][other] = S


def make_cut(seen, side):
    side = set(side)
    for a, row in seen.items():
        for b in row:
            if (a in side) != (b in side):
                row[b] = S


def make_one_way(seen, target, sources):
    """The target's firewall drops what comes in from *sources*; it still reaches them."""
    for source in sources:
        seen[source][target] = S


def make_lossy(seen, host, loss, inbound=True, outbound=True):
    for a, row in seen.items():
        for b in row:
            if (inbound and b == host) or (outbound and a == host):
                row[b] = loss


# ---- each kind, by hand ---------------------------------------------------------------------------

def test_a_healthy_mesh_has_no_finding_and_a_matrix_of_reached_cells():
    seen = healthy(names(4))
    assert read(seen) == []
    assert _mesh.rows(names(4), seen) == ["-ooo", "o-oo", "oo-o", "ooo-"]


def test_a_stopped_host_is_down_and_nothing_else():
    seen = healthy(names(5))
    make_down(seen, "h03")
    assert read(seen, names(5)) == [{"kind": "down", "hosts": ["h03"], "probed_by": 4}]


def test_a_host_cut_off_alone_that_still_sweeps_is_up_one_side_of_a_cut_not_down():
    """It ran its sweep, so it is up: reaching nobody and reached by nobody, it is cut off from the rest."""
    seen = healthy(names(5))
    make_cut(seen, ["h01"])
    assert read(seen) == [{"kind": "cut", "hosts": names(5), "sides": [["h00", "h02", "h03", "h04"], ["h01"]]}]
    del seen["h01"]  # the same silence from a host that did not sweep: down
    assert kinds(read(seen, names(5))) == [("down", None, ["h01"])]
    seen["h01"] = {}  # a sweep that probed no host still ran: up, cut off from the others
    assert kinds(read(seen, names(5))) == [("cut", None, names(5))]


def test_a_sweeper_whose_probes_never_come_back_is_blind():
    seen = healthy(names(5))
    make_blind(seen, "h02")
    assert read(seen) == [{"kind": "blind", "hosts": ["h02"], "reaches": 0, "probed": 4, "reached_by": 4,
                           "probed_by": 4}]


def test_a_blind_sweeper_is_told_from_a_cut_side_of_one_in_a_three_host_fleet():
    seen = healthy(names(3))
    make_blind(seen, "h00")
    assert kinds(read(seen)) == [("blind", None, ["h00"])]


def test_a_split_fleet_is_one_cut_naming_both_sides_and_its_matrix_shows_blocks():
    hosts = names(6)
    seen = healthy(hosts)
    make_cut(seen, ["h01", "h04"])
    result = _mesh.findings(hosts, seen)
    assert result["findings"] == [{"kind": "cut", "hosts": hosts,
                                   "sides": [["h00", "h02", "h03", "h05"], ["h01", "h04"]]}]
    assert result["order"] == ["h00", "h02", "h03", "h05", "h01", "h04"]
    assert _mesh.rows(result["order"], seen) == ["-oooxx", "o-ooxx", "oo-oxx", "ooo-xx", "xxxx-o", "xxxxo-"]


def test_a_three_way_split_names_three_sides():
    seen = healthy(names(6))
    make_cut(seen, ["h00", "h01"])
    make_cut(seen, ["h02", "h03"])
    assert read(seen)[0]["sides"] == [["h00", "h01"], ["h02", "h03"], ["h04", "h05"]]


def test_a_firewall_dropping_what_comes_in_is_one_one_way_finding_at_that_host():
    seen = healthy(names(5))
    make_one_way(seen, "h04", ["h00", "h01", "h02", "h03"])
    assert read(seen) == [{"kind": "one_way", "hosts": names(5), "at": "h04",
                           "pairs": [{"from": h, "to": "h04"} for h in names(4)]}]


def test_one_blocked_direction_of_one_pair_is_one_way_at_the_unreached_host():
    seen = healthy(names(4))
    make_one_way(seen, "h01", ["h03"])
    assert read(seen) == [{"kind": "one_way", "hosts": ["h01", "h03"], "at": "h01",
                           "pairs": [{"from": "h03", "to": "h01"}]}]


def test_a_lossy_link_is_one_lossy_finding_at_its_host_with_the_median_loss():
    seen = healthy(names(4))
    make_lossy(seen, "h02", 30.0)
    seen["h00"]["h02"] = 50.0
    found = read(seen)
    assert kinds(found) == [("lossy", "h02", names(4))]
    assert found[0]["loss_pct"] == 30.0 and len(found[0]["pairs"]) == 6
    assert {"from": "h00", "to": "h02", "loss_pct": 50.0} in found[0]["pairs"]


def test_loss_below_the_threshold_is_no_finding_and_the_threshold_can_be_chosen():
    seen = healthy(names(4), loss=_mesh.LOSSY_PCT - 0.001)
    assert read(seen) == []
    assert kinds(_mesh.findings(names(4), seen, lossy_pct=5.0)["findings"])[0][0] == "lossy"


# ---- ties -----------------------------------------------------------------------------------------

def test_a_sweeper_reached_by_exactly_half_is_not_blind():
    """h00 reaches nobody; h01, h02 reach it, h03, h04 do not: a tie, so not "most": no blind finding."""
    seen = healthy(names(5))
    make_blind(seen, "h00")
    seen["h03"]["h00"] = seen["h04"]["h00"] = S
    found = read(seen)
    assert "blind" not in [f["kind"] for f in found]
    assert kinds(found) == [("cut", "h00", ["h00", "h03", "h04"]), ("one_way", "h00", ["h00", "h01", "h02"])]
    assert found[0]["sides"] == [["h00"], ["h03", "h04"]]


def test_two_hosts_tell_nothing_more_than_their_pair():
    """Two hosts: h00's silence on h01 is h00 blind or h01 dropping what h00 sends: one_way at nobody."""
    seen = healthy(names(2))
    seen["h00"]["h01"] = S
    assert read(seen) == [{"kind": "one_way", "hosts": ["h00", "h01"], "at": None, "maybe_blind": "h00",
                           "pairs": [{"from": "h00", "to": "h01"}], "reaches": 0, "alive_elsewhere": 0}]
    seen["h01"]["h00"] = S
    assert read(seen) == [{"kind": "cut", "hosts": ["h00", "h01"], "sides": [["h00"], ["h01"]]}]


# ---- few probers (site.yml's fleet_mesh_group): the rows are the probers, the columns every host ----

def probed_by(probers, targets):
    """Each prober's healthy row over the other probers and every target (the targets do not probe)."""
    return {p: {h: 0.0 for h in probers + targets if h != p} for p in probers}


def drop(seen, target, source):
    seen[source][target] = S


PROBERS = [
    # (what, probers, targets, fault, the findings: kind, at, hosts, and maybe_blind for a one_way at nobody)
    ("2 probers, healthy", 2, 3, lambda s: None, []),
    ("2 probers, p0 blind: silent on 3 targets p1 reaches", 2, 3, lambda s: make_blind(s, "p0"),
     [("blind", None, ["p0"], None)]),
    ("2 probers, p1 blind", 2, 3, lambda s: make_blind(s, "p1"), [("blind", None, ["p1"], None)]),
    ("2 probers, p0 blind, 2 targets", 2, 2, lambda s: make_blind(s, "p0"), [("blind", None, ["p0"], None)]),
    ("2 probers, p1 drops what p0 sends: p0 still reaches the targets", 2, 3, lambda s: drop(s, "p1", "p0"),
     [("one_way", "p1", ["p0", "p1"], None)]),
    ("2 probers, a target stopped", 2, 3, lambda s: make_down(s, "t1"), [("down", None, ["t1"], None)]),
    ("2 probers, p0 blind, 1 target: not told from p1 dropping p0", 2, 1, lambda s: make_blind(s, "p0"),
     [("one_way", None, ["p0", "p1"], "p0")]),
    ("2 probers, p1 drops p0 and the one target drops p0: reads as the line above", 2, 1,
     lambda s: (drop(s, "p1", "p0"), drop(s, "t0", "p0")), [("one_way", None, ["p0", "p1"], "p0")]),
    ("2 probers, no target, p0 blind: not told from p1 dropping p0", 2, 0, lambda s: make_blind(s, "p0"),
     [("one_way", None, ["p0", "p1"], "p0")]),
    ("2 probers, p0 blind, 3 targets, 2 of them stopped: 1 reached elsewhere", 2, 3,
     lambda s: (make_blind(s, "p0"), make_down(s, "t0"), make_down(s, "t1")),
     [("down", None, ["t0"], None), ("down", None, ["t1"], None), ("one_way", None, ["p0", "p1"], "p0")]),
    ("3 probers, healthy", 3, 2, lambda s: None, []),
    ("3 probers, p0 blind", 3, 2, lambda s: make_blind(s, "p0"), [("blind", None, ["p0"], None)]),
    ("3 probers, no target, p2 blind", 3, 0, lambda s: make_blind(s, "p2"), [("blind", None, ["p2"], None)]),
    ("3 probers, p1 drops what p0 sends", 3, 2, lambda s: drop(s, "p1", "p0"),
     [("one_way", "p1", ["p0", "p1"], None)]),
    ("3 probers, a target stopped", 3, 2, lambda s: make_down(s, "t0"), [("down", None, ["t0"], None)]),
]


@pytest.mark.parametrize("what, probers, targets, fault, want", PROBERS, ids=[row[0] for row in PROBERS])
def test_few_probers_name_the_fault_the_matrix_supports_and_no_healthy_host(what, probers, targets, fault, want):
    probing = [f"p{i}" for i in range(probers)]
    probed = [f"t{i}" for i in range(targets)]
    seen = probed_by(probing, probed)
    fault(seen)
    found = read(seen, probing + probed)
    assert [(f["kind"], f.get("at"), f["hosts"], f.get("maybe_blind")) for f in found] == want, what
    for f in found:
        if f["kind"] == "blind" and probers == 2:
            assert f["probed_by"] == 1 and f["alive_elsewhere"] >= _mesh.MIN_PEERS


def test_an_even_split_is_a_cut_with_sides_in_name_order():
    seen = healthy(names(4))
    make_cut(seen, ["h01", "h03"])
    assert read(seen)[0]["sides"] == [["h00", "h02"], ["h01", "h03"]]


def test_one_sweeper_alone_calls_nothing_down():
    """Its silence on the only other host may be its own: no prober that reaches anyone, no finding."""
    assert read({"h00": {"h01": S}}, ["h00", "h01"]) == []


# ---- partial data ---------------------------------------------------------------------------------

def test_a_host_that_did_not_sweep_but_answers_is_no_finding():
    seen = healthy(names(4))
    del seen["h02"]
    assert read(seen, names(4)) == []
    assert _mesh.rows(names(4), seen)[2] == "??-?"


def test_an_address_nobody_probed_is_no_finding():
    seen = healthy(names(3))
    assert read(seen, names(3) + ["h09"]) == []


def test_a_pair_measured_one_way_only_is_no_one_way_finding():
    seen = healthy(names(4))
    seen["h00"]["h01"] = S
    del seen["h01"]["h00"]
    assert read(seen) == []


def test_groups_with_no_pair_measured_between_them_are_not_a_cut():
    seen = {"h00": {"h01": 0.0}, "h01": {"h00": 0.0}, "h02": {"h03": 0.0}, "h03": {"h02": 0.0}}
    assert read(seen) == []


def test_a_host_not_sweeping_and_silent_to_some_only_is_no_finding():
    seen = healthy(names(4))
    del seen["h03"]
    seen["h00"]["h03"] = S
    assert read(seen, names(4)) == []


# ---- the ring of peers ----------------------------------------------------------------------------

def test_peers_are_everyone_else_up_to_the_bound_then_ring_neighbours_probed_both_ways():
    hosts = names(10)
    assert _mesh.peers(hosts, "h03", 64) == [h for h in hosts if h != "h03"]
    assert _mesh.peers(hosts, "h00", 4) == ["h08", "h09", "h01", "h02"]
    ring = {h: set(_mesh.peers(hosts, h, 4)) for h in hosts}
    assert all(a in ring[b] for a in hosts for b in ring[a]), "every pair probed is probed both ways"
    assert all(sum(h in peers for peers in ring.values()) == 4 for h in hosts), "every host has 4 witnesses"


def test_a_ring_bounded_mesh_still_names_a_down_host_and_no_false_one_on_a_healthy_fleet():
    hosts = names(12)
    seen = {h: {p: 0.0 for p in _mesh.peers(hosts, h, 4)} for h in hosts}
    assert read(seen) == []
    make_down(seen, "h05")
    assert kinds(read(seen, hosts)) == [("down", None, ["h05"])]


# ---- from sweep results ---------------------------------------------------------------------------

def test_the_matrix_is_read_from_ping_sweep_results_with_count_mode_loss():
    addresses = {"web1": "192.0.2.1", "web2": "192.0.2.2", "db1": "192.0.2.3"}
    sweeps = _fleet_inputs.check_sweeps({
        "web1": {"alive": ["192.0.2.1", "192.0.2.2"], "dead": ["192.0.2.3"],
                 "stats": {"192.0.2.2": {"sent": 10, "received": 7, "loss_pct": 30.0}}},
        "web2": {"alive": ["192.0.2.1", "192.0.2.3"], "dead": []},
        "other": {"alive": ["192.0.2.3"], "dead": []},
    })
    seen = _mesh.observe(sweeps, addresses)
    assert seen == {"web1": {"web2": 30.0, "db1": S}, "web2": {"web1": 0.0, "db1": 0.0}}
    result = _mesh.mesh(sweeps, addresses)
    assert result["mesh"]["summary"] == {"hosts": 3, "sweepers": 2, "pairs": 4, "reached": 3, "silent": 1,
                                         "lossy": 1, "findings": 1}
    assert result["mesh"]["loss"] == {"web1": {"web2": 30.0}}
    assert kinds(result["findings"]) == [("lossy", "web2", ["web1", "web2"])], "db1 silent to one of two: nothing"


# ---- property: healthy is quiet, one fault is named exactly ----------------------------------------

@st.composite
def fleets(draw, least=3):
    n = draw(st.integers(least, 12))
    hosts = names(n)
    seen = {a: {b: draw(st.sampled_from([0.0, 0.0, 0.0, 5.0, 10.0])) for b in hosts if b != a} for a in hosts}
    return hosts, seen


@settings(max_examples=300, deadline=None)
@given(fleets(least=1), st.data())
def test_a_healthy_fleet_with_partial_data_gives_no_finding(fleet, data):
    hosts, seen = fleet
    for a in list(seen):
        if data.draw(st.booleans()) and data.draw(st.booleans()):
            del seen[a]  # did not sweep
            continue
        for b in list(seen[a]):
            if data.draw(st.integers(0, 9)) == 0:
                del seen[a][b]  # not probed
    assert read(seen, hosts) == []


@settings(max_examples=400, deadline=None)
@given(fleets(), st.sampled_from(_mesh.KINDS), st.data())
def test_one_random_fault_on_a_random_healthy_fleet_is_labelled_exactly(fleet, kind, data):
    hosts, seen = fleet
    host = data.draw(st.sampled_from(hosts))
    others = [h for h in hosts if h != host]
    if kind == "down":
        make_down(seen, host)
        want = [("down", None, [host])]
    elif kind == "blind":
        make_blind(seen, host)
        want = [("blind", None, [host])]
    elif kind == "cut":
        assume(len(hosts) >= 4)
        side = data.draw(st.lists(st.sampled_from(hosts), min_size=2, max_size=len(hosts) - 2, unique=True))
        make_cut(seen, side)
        want = [("cut", None, hosts)]
    elif kind == "one_way":
        sources = data.draw(st.lists(st.sampled_from(others), min_size=1, unique=True))
        make_one_way(seen, host, sources)
        want = [("one_way", host, sorted(sources + [host]))]
    else:
        inbound = data.draw(st.booleans())
        make_lossy(seen, host, data.draw(st.floats(_mesh.LOSSY_PCT, 99.0)), inbound, not inbound or data.draw(st.booleans()))
        want = [("lossy", host, hosts)]
    found = read(seen, hosts)
    assert kinds(found) == want
    if kind == "cut":
        assert sorted(found[0]["sides"]) == sorted([sorted(side), sorted(set(hosts) - set(side))])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 8), st.sampled_from(["p0", "p1"]), st.booleans())
def test_two_probers_never_blame_the_healthy_prober(targets, host, blind):
    """A blind prober, or the other prober dropping what it sends: named right, or named as not told apart."""
    other = "p1" if host == "p0" else "p0"
    probed = [f"t{i}" for i in range(targets)]
    seen = probed_by(["p0", "p1"], probed)
    if blind:
        make_blind(seen, host)
    else:
        drop(seen, other, host)
    found = [(f["kind"], f.get("at"), f["hosts"], f.get("maybe_blind")) for f in read(seen, ["p0", "p1"] + probed)]
    untold = [("one_way", None, sorted([host, other]), host)]
    if blind:
        assert found == ([("blind", None, [host], None)] if targets >= _mesh.MIN_PEERS else untold)
    else:
        assert found == ([("one_way", other, sorted([host, other]), None)] if targets else untold)


def test_the_report_says_what_two_probers_can_and_cannot_tell():
    seen = probed_by(["p0", "p1"], ["t0", "t1"])
    make_blind(seen, "p0")
    blind = _mesh_render.sentence(read(seen, ["p0", "p1", "t0", "t1"])[0])
    assert blind == ("p0: reaches 0 of the 3 hosts it probed (2 of them reached by another prober), while 1 of 1 "
                     "reach it: its own way out is at fault")
    seen = probed_by(["p0", "p1"], [])
    make_blind(seen, "p0")
    untold = _mesh_render.sentence(read(seen, ["p0", "p1"])[0])
    assert untold == ("p0 cannot reach p1, which reaches it: either p0's own way out is at fault (blind) or p1 drops "
                      "what p0 sends; too few probers to tell (a third prober, or 2 hosts that another prober "
                      "reaches, would)")


# ---- the text matrix's row names ------------------------------------------------------------------

def test_long_names_cut_alike_in_the_text_matrix_stay_told_apart():
    """Names sharing their first 32 characters were cut to one label: two rows read as one host."""
    hosts = ["web-frontend-eu-west-1a-production-01", "web-frontend-eu-west-1a-production-02",
             "web-frontend-eu-west-1a-produc~1", "db1"]  # the third is 32 long: kept, and its ~1 not reused
    addresses = {h: f"192.0.2.{i + 1}" for i, h in enumerate(hosts)}
    sweeps = {h: {"alive": [addresses[o] for o in hosts if o != h], "dead": []} for h in hosts}
    result = _mesh.mesh(sweeps, addresses)
    lines = _mesh_render.text_lines(result["mesh"], result["findings"])
    rows = [line.split()[0] for line in lines[lines.index("") + 2:-1]]
    assert rows == ["db1", "web-frontend-eu-west-1a-produc~2", "web-frontend-eu-west-1a-produc~3",
                    "web-frontend-eu-west-1a-produc~1"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=8, unique=True))
def test_row_names_are_unique_and_at_most_32_columns(hosts):
    labels = _mesh_render.row_labels(hosts)
    shown = [_fleet_inputs.shown(h) for h in hosts]
    assert len(set(labels)) == len(labels)
    assert all(_text.columns(label) <= _mesh_render.NAME_WIDTH for label in labels)
    assume(len(set(shown)) == len(shown))
    assert all(label == text for label, text in zip(labels, shown) if _text.columns(text) <= _mesh_render.NAME_WIDTH)


def test_cannot_tell_names_the_count_it_lacks_not_a_share_it_meets():
    """An outside tester: "h0 reaches 0 of the 1 other hosts ... (more than half would clear it, at most 20% would
    blame it)" - 0 % is at most 20 %; what was missing is a second such host."""
    finding = {"kind": "one_way", "hosts": ["h0", "h1"], "at": None, "maybe_blind": "h0",
               "pairs": [{"from": "h0", "to": "h1"}], "reaches": 0, "alive_elsewhere": 1}
    said = _mesh_render.sentence(finding)
    assert said.endswith("cannot tell which: h0 reaches 0 of the 1 other host(s) it probed that another prober "
                         f"reaches, and at least {_mesh.MIN_PEERS} such hosts are needed to blame it"), said
    assert "would blame it" not in said
