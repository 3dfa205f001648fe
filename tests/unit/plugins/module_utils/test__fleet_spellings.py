# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""One address, however it is spelled: the fleet report reads every spelling of an address as that address.

Issue 22's second outside tester passed a sweep listing ``2001:DB8::1``
while ``addresses`` gave ``2001:db8::1``: the mesh's addresses were made
canonical and the sweeps kept as written, so no cell matched and the fault
gave no finding. Every address now enters through
``_fleet_inputs.canonical`` (sweeps' alive and dead lists and ranges, the
names and stats keyed by address, ``addresses``, the state file). Here
hypothesis draws a small mesh fleet with a fault and respells every address
everywhere it appears (upper case, leading zeros, ``::`` anywhere a run of
zero groups allows or nowhere, a dotted-quad tail, IPv4 as IPv4-mapped
IPv6): the report, its text and HTML, the mesh and the state must be
exactly those of the canonical spelling.
"""

import datetime
import ipaddress
import json
import socket

from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _fleet_inputs, _fleet_render

NOW = datetime.datetime(2026, 12, 7, 6, 0, tzinfo=datetime.timezone.utc)


def plain(address):
    """The spelling inet_ntop gives (as ping_sweep writes addresses): what every other spelling must read as."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_ntop(family, socket.inet_pton(family, address))


def _groups(packed):
    return [int.from_bytes(packed[i:i + 2], "big") for i in range(0, 16, 2)]


@st.composite
def spell_ipv6(draw, packed):
    """One of the many ways to write the 16 bytes *packed* that inet_pton reads back as them."""
    groups = _groups(packed)
    tail = draw(st.booleans())  # the last 32 bits as a dotted quad
    words = groups[:6] if tail else groups
    texts = []
    for value in words:
        text = format(value, "x").zfill(draw(st.integers(1, 4)))
        texts.append(text.upper() if draw(st.booleans()) else text)
    if tail:
        texts.append(str(ipaddress.IPv4Address(packed[12:])))
    runs = [(i, j) for i in range(len(words)) for j in range(i + 1, len(words) + 1)
            if all(words[k] == 0 for k in range(i, j))]
    if runs and draw(st.booleans()):
        i, j = draw(st.sampled_from(runs))
        return ":".join(texts[:i]) + "::" + ":".join(texts[j:])
    return ":".join(texts)


@st.composite
def spelling(draw, address):
    """*address* (canonical) spelled another way: IPv6 as above, IPv4 as itself or as IPv4-mapped IPv6."""
    parsed = ipaddress.ip_address(address)
    if parsed.version == 4:
        if draw(st.booleans()):
            return address
        return draw(spell_ipv6(bytes(10) + b"\xff\xff" + parsed.packed))
    return draw(spell_ipv6(parsed.packed))


ADDRESS = st.one_of(st.ip_addresses(v=4).map(str),
                    st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(str),
                    st.sampled_from(["2001:db8::1", "2001:db8::", "::1", "2001:db8:0:1:0:0:0:1", "::ffff:0:1"]))


@st.composite
def fleets(draw):
    """A small mesh: hosts, each one's canonical address, who reaches whom, and the previous run's alive list."""
    count = draw(st.integers(3, 6))
    addresses = draw(st.lists(ADDRESS, min_size=count, max_size=count, unique_by=plain))
    hosts = [f"h{i}" for i in range(count)]
    canonical = {h: plain(a) for h, a in zip(hosts, addresses)}
    silent = set(draw(st.lists(st.tuples(st.sampled_from(hosts), st.sampled_from(hosts)), max_size=8)))
    sweepers = draw(st.lists(st.sampled_from(hosts), min_size=2, unique=True))
    previous = draw(st.lists(st.sampled_from(list(canonical.values())), unique=True))
    return hosts, canonical, silent, sweepers, previous


def inputs(fleet, spell):
    """The module's inputs for *fleet*, each address written by *spell* (called once per place it appears)."""
    hosts, canonical, silent, sweepers, previous = fleet
    sweeps = {}
    for index, a in enumerate(sweepers):
        alive = [canonical[b] for b in hosts if b != a and (a, b) not in silent]
        dead = [canonical[b] for b in hosts if b != a and (a, b) in silent]
        result = {"names": {spell(x): f"name-of-{x}" for x in dead}, "stats": {
            spell(x): {"sent": 10, "received": 6, "loss_pct": 40.0} for x in alive[:1]}}
        if index % 2:
            result.update({"alive_ranges": [spell(x) for x in alive], "dead_ranges": [spell(x) for x in dead]})
        else:
            result.update({"alive": [spell(x) for x in alive], "dead": [spell(x) for x in dead]})
        sweeps[a] = result
    return {"sweeps": sweeps, "addresses": {h: spell(canonical[h]) for h in hosts},
            "previous": {"version": 1, "alive": [spell(x) for x in previous]}}


def report_of(given_inputs, tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps(given_inputs["previous"]))
    previous = _fleet.load_state(str(state))
    built = _fleet.build(given_inputs["sweeps"], {}, [], previous=previous, now=NOW,
                         addresses=given_inputs["addresses"])
    report = built["report"]
    return report, built["state"], _fleet_render.text(report), _fleet_render.html(report)


@settings(max_examples=150, deadline=None)
@given(fleets(), st.data())
def test_every_spelling_of_the_addresses_gives_the_same_report(tmp_path_factory, fleet, data):
    tmp_path = tmp_path_factory.mktemp("spell")
    plain = report_of(inputs(fleet, lambda address: address), tmp_path)
    respelled = report_of(inputs(fleet, lambda address: data.draw(spelling(address))), tmp_path)
    assert respelled == plain
    hosts, canonical, silent, sweepers, unused = fleet
    if any((a, b) in silent for a in sweepers for b in sweepers if a != b):
        assert plain[0]["mesh"]["summary"]["silent"], "the silent pairs between sweepers were matched"


def test_the_outside_testers_upper_case_ipv6_sweep_matches_its_host():
    """The sweeps as written ('2001:DB8::2' dead for a), addresses canonical: the one_way at b is found."""
    addresses = {"a": "2001:db8::1", "b": "2001:db8::2", "c": "2001:db8::3"}
    sweeps = {"a": {"alive": ["2001:DB8::3"], "dead": ["2001:DB8::2"]},
              "b": {"alive": ["2001:DB8::1", "2001:0db8:0:0:0:0:0:3"], "dead": []},
              "c": {"alive": ["2001:db8::1", "2001:db8::2"], "dead": []}}
    report = _fleet.build(sweeps, {}, [], now=NOW, addresses=addresses)["report"]
    assert report["mesh"]["summary"]["pairs"] == 6
    assert [(f["kind"], f["at"]) for f in report["findings"]] == [("one_way", "b")]
    assert report["mesh"]["rows"] == ["-xo", "o-o", "oo-"]


def test_canonical_spellings_and_what_is_no_address():
    assert _fleet_inputs.canonical("2001:DB8:0000:0000::0001") == "2001:db8::1"
    assert _fleet_inputs.canonical("::FFFF:192.0.2.1") == "192.0.2.1"
    assert _fleet_inputs.canonical("::ffff:c000:201") == "192.0.2.1"
    assert _fleet_inputs.canonical("fe80::1%eth0") == "fe80::1"
    assert _fleet_inputs.canonical("2001:db8::192.0.2.1") == "2001:db8::c000:201"
    for bad in ("192.0.2.01", "192.0.2.1 ", "web1", "", "1.2.3", "2001:db8::1::2", "\x00", None, 7):
        assert _fleet_inputs.canonical(bad) is None, bad
