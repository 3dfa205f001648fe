# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mesh mode's filters: each host's address, the peers it probes, its two sweeps joined for fleet_report."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.sysops.fleet.plugins.filter import mesh as plugin
from ansible_collections.sysops.fleet.plugins.module_utils import _fleet, _fleet_inputs

FILTERS = plugin.FilterModule().filters()


def test_the_address_is_fleet_mesh_address_else_an_ip_ansible_host_else_the_default_route_never_a_lookup():
    hostvars = {
        "a": {"fleet_mesh_address": "192.0.2.1", "ansible_host": "192.0.2.99"},
        "b": {"ansible_host": "192.0.2.2"},
        "c": {"ansible_host": "c.example.com", "ansible_facts": {"default_ipv4": {"address": "192.0.2.3"}}},
        "d": {"ansible_facts": {"default_ipv4": {}, "default_ipv6": {"address": "2001:db8::4"}}},
        "e": {"ansible_host": "e.example.com"},
    }
    assert FILTERS["mesh_addresses"](hostvars, list(hostvars)) == {
        "a": "192.0.2.1", "b": "192.0.2.2", "c": "192.0.2.3", "d": "2001:db8::4"}


def test_peers_are_bounded_and_a_bad_bound_is_refused_naming_the_knob():
    addresses = {f"h{i}": f"192.0.2.{i}" for i in range(1, 9)}
    assert FILTERS["mesh_peers"](addresses, "h1", 64) == [f"192.0.2.{i}" for i in range(2, 9)]
    assert FILTERS["mesh_peers"](addresses, "h1", "2") == ["192.0.2.8", "192.0.2.2"]
    for bad in (0, -3, "many", None):
        with pytest.raises(AnsibleFilterError, match="fleet_mesh_peers must be a whole number of at least 1"):
            FILTERS["mesh_peers"](addresses, "h1", bad)


def test_a_sweepers_own_sweep_and_its_mesh_sweep_join_into_one_result_fleet_report_reads():
    own = {"s1": {"alive": ["10.0.0.1"], "dead": ["10.0.0.2"], "alive_ranges": ["10.0.0.1"],
                  "dead_ranges": ["10.0.0.2"], "names": {"10.0.0.1": "gw"}},
           "s2": {"alive": [], "dead": [], "alive_ranges": [], "dead_ranges": []}}
    meshed = {"s1": {"alive": ["192.0.2.2"], "dead": ["192.0.2.3"], "alive_ranges": ["192.0.2.2"],
                     "dead_ranges": ["192.0.2.3"], "stats": {"192.0.2.2": {"loss_pct": 30.0}}},
              "m3": {"alive": ["192.0.2.1"], "dead": [], "alive_ranges": ["192.0.2.1"], "dead_ranges": []}}
    joined = FILTERS["mesh_joined"](own, meshed)
    checked = _fleet_inputs.check_sweeps(joined)
    assert checked["s1"] == {"alive": ["10.0.0.1", "192.0.2.2"], "dead": ["10.0.0.2", "192.0.2.3"],
                             "names": {"10.0.0.1": "gw"}, "loss": {"192.0.2.2": 30.0}}
    assert set(checked) == {"s1", "s2", "m3"}
    assert _fleet.merge_sweeps(checked)["down"] == ["10.0.0.2", "192.0.2.3"]
    assert FILTERS["mesh_joined"](own, {}) == own
    with pytest.raises(AnsibleFilterError, match="expected two dicts"):
        FILTERS["mesh_joined"](own, [])


def test_hosts_that_share_an_address_are_left_out_and_the_report_still_takes_the_rest():
    """Port-forwarded hosts behind one address (an outside tester's web1/web2 on 127.0.0.1) cost no fleet report."""
    hostvars = {"web1": {"ansible_host": "127.0.0.1", "ansible_port": 2201},
                "web2": {"ansible_host": "127.0.0.1", "ansible_port": 2202},
                "db1": {"ansible_host": "127.0.0.3"}}
    assert plugin.mesh_addresses(hostvars, ["web1", "web2", "db1"]) == {"db1": "127.0.0.3"}


@pytest.mark.parametrize("first,second", [
    ("2001:DB8::5", "2001:db8::5"), ("192.0.2.5", "::ffff:192.0.2.5"), ("fe80::5%eth0", "fe80::5%eth1"),
    ("2001:db8:0:0::0005", "2001:db8::5")])
def test_two_spellings_of_one_address_are_one_shared_address_and_the_report_still_comes(first, second):
    """An outside tester: compared as written, two spellings of one address passed this filter, and fleet_report,
    which reads them as one, refused the whole of addresses: no report was written or mailed."""
    hostvars = {"a": {"fleet_mesh_address": first}, "b": {"fleet_mesh_address": second},
                "c": {"fleet_mesh_address": "2001:DB8::7"}}
    addresses = plugin.mesh_addresses(hostvars, ["a", "b", "c"])
    assert addresses == {"c": "2001:db8::7"}, "the two left out, the third in the report's own spelling"
    assert _fleet_inputs.mesh_addresses(addresses) == {"c": "2001:db8::7"}, "fleet_report takes it"


def test_a_name_as_fleet_mesh_address_leaves_that_host_out_not_the_report(capsys):
    hostvars = {"a": {"fleet_mesh_address": "web1.example.com"}, "b": {"fleet_mesh_address": "192.0.2.2"}}
    assert plugin.mesh_addresses(hostvars, ["a", "b"]) == {"b": "192.0.2.2"}
    said = capsys.readouterr()
    assert "a: 'web1.example.com' is no IP address" in said.out + said.err


def test_a_loss_given_as_text_is_joined_not_a_type_error():
    """An outside tester: mesh_joined raised TypeError on a loss_pct written as text ("50"), which fleet_report
    itself reads; a silent pair (100) and no loss (0, "0") are not kept, text that is no number is, for
    fleet_report to name."""
    meshed = {"m1": {"alive_ranges": ["192.0.2.2"], "dead_ranges": [],
                     "stats": {"192.0.2.2": {"loss_pct": "50"}, "192.0.2.3": {"loss_pct": 100.0},
                               "192.0.2.4": {"loss_pct": "0"}, "192.0.2.5": {"loss_pct": "lots"}}}}
    joined = FILTERS["mesh_joined"]({}, meshed)
    assert joined["m1"]["stats"] == {"192.0.2.2": {"loss_pct": "50"}, "192.0.2.5": {"loss_pct": "lots"}}
    with pytest.raises(_fleet_inputs.FleetError, match="loss_pct"):
        _fleet_inputs.check_sweeps(joined)
