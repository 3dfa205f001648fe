# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet_hosts filter: site.yml's host lists in one pass over hostvars, the same lists the play's former
templates gave (each a pass over hostvars of its own, templated again wherever used), through real ansible-playbook
runs on local hosts: some unreachable at the first task, some failed, some lost later in the play."""

import json
import os
import random
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.sysops.fleet.plugins.filter.fleet_hosts import GROUPS, fleet_hosts

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "modules"))
import ansible_runner  # noqa: E402  pylint: disable=wrong-import-position

# site.yml's templates before the filter, word for word
FORMER = {
    "ended": "{{ ansible_play_hosts | map('extract', hostvars) | selectattr('fleet_reach.unreachable', 'defined')"
             " | selectattr('fleet_reach.unreachable') | map(attribute='inventory_hostname') | list }}",
    "unreachable": "{{ ansible_play_hosts_all | difference(ansible_play_hosts) | union(ended) }}",
    "reached": "{{ ansible_play_hosts | difference(ended) }}",
    "failed": "{{ reached | map('extract', hostvars) | selectattr('fleet_failure', 'defined')"
              " | map(attribute='inventory_hostname') | list }}",
    "sound": "{{ reached | difference(failed) }}",
    "sweepers": "{{ sound | intersect(groups['sweepers'] | default([])) }}",
    "meshers": "{{ sound | map('extract', hostvars) | selectattr('fleet_mesh_sweep', 'defined')"
               " | rejectattr('fleet_mesh_sweep.skipped', 'defined') | map(attribute='inventory_hostname') | list }}",
    "reporters": "{{ sound | map('extract', hostvars) | selectattr('fleet_disk', 'defined')"
                 " | map(attribute='inventory_hostname') | list }}",
}


def world(seed, count):
    """*count* local hosts, each with a random mix of what site.yml's first play leaves behind."""
    rng = random.Random(seed)
    hosts, sweepers = {}, []
    for index in range(count):
        name = f"h{index:03d}"
        facts = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        roll = rng.random()
        if roll < 0.15:
            facts["fleet_reach"] = {"unreachable": True, "msg": "ssh: connect refused"}
        elif roll < 0.2:
            facts["fleet_reach"] = {"unreachable": False, "changed": False}  # reached: the key is there, false
        elif roll < 0.3:
            facts["fleet_failure"] = "Gather facts: Missing sudo password"
        elif roll < 0.38:
            facts["drop"] = True  # fails a task of the play: Ansible drops it
        if rng.random() < 0.5:
            facts["fleet_disk"] = {"filesystems": []}
        if rng.random() < 0.4:
            facts["fleet_mesh_sweep"] = {"skipped": True} if rng.random() < 0.5 else {"alive": ["127.0.0.1"]}
        if rng.random() < 0.3:
            sweepers.append(name)
        hosts[name] = facts
    return hosts, sweepers


PLAY = [{"name": "the lists", "hosts": "all", "gather_facts": False, "tasks": [
    {"name": "lose some hosts", "ansible.builtin.fail": {"msg": "dropped"}, "when": "drop | default(false)"},
    {"name": "the filter", "ansible.builtin.set_fact": {"found": (
        "{{ hostvars | sysops.fleet.fleet_hosts(ansible_play_hosts_all, ansible_play_hosts,"
        " groups['sweepers'] | default([])) }}")}, "run_once": True, "delegate_to": "localhost"},
    {"name": "both", "ansible.builtin.copy": {
        "content": "{{ {'filter': found, 'former': {'ended': ended, 'unreachable': unreachable, 'failed': failed,"
                   " 'sound': sound, 'sweepers': sweepers, 'meshers': meshers, 'reporters': reporters}} | to_json }}",
        "dest": "{{ out }}"}, "vars": FORMER, "run_once": True, "delegate_to": "localhost"},
]}]


@pytest.mark.parametrize("seed", [19, 20])
def test_the_filter_gives_what_the_former_templates_gave(tmp_path, seed):
    hosts, sweepers = world(seed, 40)
    inventory = {"all": {"hosts": hosts, "vars": {"out": str(tmp_path / "lists.json")}},
                 "sweepers": {"hosts": {name: {} for name in sweepers}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(PLAY, sort_keys=False))
    done = ansible_runner.run(["ansible-playbook", "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                              tmp_path)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]  # the dropped hosts failed
    lists = json.loads((tmp_path / "lists.json").read_text())
    for group in GROUPS:
        assert sorted(lists["filter"][group]) == sorted(lists["former"][group]), group
    assert lists["filter"]["unreachable"] and lists["filter"]["failed"] and lists["filter"]["meshers"], \
        "the world has every kind of host"
    assert all(len(lists["filter"][g]) == len(set(lists["filter"][g])) for g in GROUPS), "each host once"


def test_wrong_inputs_are_a_filter_error_naming_the_argument():
    with pytest.raises(AnsibleFilterError, match="play_hosts must be a list of host names, got str"):
        fleet_hosts({}, ["a"], "a")
    with pytest.raises(AnsibleFilterError, match="sweepers must be a list of host names, got dict"):
        fleet_hosts({}, [], [], {"a": 1})
    assert fleet_hosts({}, [], []) == {group: [] for group in GROUPS}
