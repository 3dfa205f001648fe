# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mesh mode of playbooks/site.yml, as operators run it, in the loopback lab.

``ansible-playbook playbooks/site.yml`` runs inside a network namespace of
the loopback lab (root), whose nftables drop echo requests to every
127.x address whose last octet is a multiple of 3. The hosts are local
connections, each with its ``fleet_mesh_address`` on 127.77.0.x; one
more host is unreachable for Ansible (ssh refused on a closed port) and
silent for ping. Nothing leaves the namespace.
"""

import json
import os
import shutil
import sys

import ansible_runner
import pytest
import yaml

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, TESTS)
import lab  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("nft")),
                                reason="site.yml runs in the loopback lab, which needs root, ip and nft")
CLOSED_PORT = 9


@pytest.fixture
def netns():
    with lab.lab(prefix="fleetmesh") as name:
        yield name


def local(address, **more):
    return dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "fleet_mesh_address": address}, **more)


def play(tmp_path, netns, hosts, **fleet_vars):
    variables = {"fleet_watcher": False, "fleet_report_dir": str(tmp_path / "reports"),
                 "fleet_spool_dir": str(tmp_path / "spool"), "fleet_mail_send": "never",
                 "fleet_mesh_count": 3, "fleet_mesh_spacing": 0.05, "fleet_mesh_timeout": 1}
    variables.update(fleet_vars)
    groups = {name: {"hosts": dict.fromkeys(members)} for name, members in variables.pop("groups", {}).items()}
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": variables, "hosts": hosts, "children": groups}}))
    done = ansible_runner.run(["ansible-playbook", "-i", str(inventory), "playbooks/site.yml"], tmp_path, netns)
    text = (tmp_path / "reports" / "fleet-report.txt").read_text() if (tmp_path / "reports").exists() else ""
    return done, text


def mesh_section(text):
    return text.split("Mesh findings", 1)[1].split("\n\n", 1)[0].splitlines()


def test_mesh_mode_names_a_down_host_and_a_host_whose_way_in_is_blocked(tmp_path, netns):
    """app-gone: unreachable and silent (octet 6), so down; web4-deaf answers nobody (octet 3) but reaches all.

    app-gone is the first host of the play, so the mesh's addresses are worked out by a host that is not
    the first one: every host still gets them. Without mesh mode (before) the report only said 127.77.0.3
    and 127.77.0.6 were down addresses.
    """
    hosts = {"app-gone": {"ansible_host": "127.77.0.6", "ansible_connection": "ssh", "ansible_port": CLOSED_PORT},
             "web1": local("127.77.0.1"), "web2": local("127.77.0.2"), "web3": local("127.77.0.4"),
             "web4-deaf": local("127.77.0.3")}
    done, text = play(tmp_path, netns, hosts, fleet_mesh=True)
    output = done.stdout + done.stderr
    assert done.returncode == 4, output[-3000:]
    assert "Traceback" not in output
    lines = text.splitlines()
    assert lines[3] == "Mesh findings (2), 5 hosts, 4 probing, 16 pairs measured:", text
    assert lines[4] == "  DOWN     app-gone: silent to all 4 hosts that probed it, and it did not sweep"
    assert lines[5] == "  ONE-WAY  at web4-deaf: web1, web2, web3 cannot reach web4-deaf, which reaches them"
    assert lines.index("Filesystems not ok (0), worst first:") > 5, "the findings lead the report"
    state = json.loads((tmp_path / "reports" / "fleet-state.json").read_text())
    assert state["alive"] == ["127.77.0.1", "127.77.0.2", "127.77.0.3", "127.77.0.4"], "web4-deaf swept: up"
    assert text.split("\nAddresses down:\n", 1)[1].split("\n\n", 1)[0] == "  127.77.0.6"
    recap = output[output.find("PLAY RECAP"):]
    assert "web1" in recap and "failed=0" in recap.split("web1", 1)[1].splitlines()[0]


def test_a_healthy_mesh_of_a_group_bounded_to_one_peer_each_has_no_finding(tmp_path, netns):
    """Only the group "meshed" probes, each host at most one peer (the ring): every host probed, nothing wrong."""
    hosts = {"web1": local("127.77.0.1"), "web2": local("127.77.0.2"), "web3": local("127.77.0.4"),
             "web4": local("127.77.0.5")}
    done, text = play(tmp_path, netns, hosts, fleet_mesh=True, fleet_mesh_group="meshed", fleet_mesh_peers=2,
                      groups={"meshed": ["web1", "web2", "web3"]})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    section = mesh_section(text)
    assert section[0] == " (0), 4 hosts, 3 probing, 6 pairs measured:", section
    assert section[1].startswith("  none: 6 of 6 pairs answered"), section
    matrix = text.split("between the sides of a cut):\n", 1)[1].split("\n\n", 1)[0].splitlines()
    # the ring web1 web2 web3 web4: each prober probes the host before it and the one after it
    assert matrix == ["  web1 -o?o", "  web2 o-o?", "  web3 ?o-o", "  web4 ???-"], matrix


def test_mesh_mode_off_by_default_runs_no_probe_of_the_hosts(tmp_path, netns):
    hosts = {"web1": local("127.77.0.1"), "web2": local("127.77.0.2")}
    done, text = play(tmp_path, netns, hosts)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "Mesh" not in text
    assert "Probe the other hosts' addresses (mesh mode)" in done.stdout
    assert lab.echo_requests(netns) == 0, "no probe was sent"
