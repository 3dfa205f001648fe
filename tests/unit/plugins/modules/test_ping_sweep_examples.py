# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""ping_sweep as its documentation says to use it: targets given as one string, and the split example.

* ``targets: 127.0.0.1-5,9`` as one string (split at its commas by Ansible) sweeps six
  addresses, run as Ansible runs the module;
* the EXAMPLES task "Split a /16 across two sweeper hosts" runs, as written but for its
  addresses (loopback halves of a /24 instead of a /16 of documentation addresses) and host
  names, in a real ``ansible-playbook`` whose play is on localhost: each sweeper sweeps its own
  half and only that, once, and the next example task counts both halves together.
"""

import json
import os
import shutil
import subprocess
import sys

import yaml

from ansible_collections.sysops.fleet.plugins.modules import ping_sweep

from module_runner import run_module  # tests/unit/plugins/modules, on sys.path as this file's directory

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
SPLIT = "Split a /16 across two sweeper hosts"
# The example's documentation addresses and names, and what the test puts in their place.
HALVES = {"10.20.0.1-10.20.127.255": "127.20.0.1-127.20.0.127", "10.20.128.0-10.20.255.254": "127.20.0.128-127.20.0.254"}
SWEEPERS = {"sweeper1.example.com": "sweeper1", "sweeper2.example.com": "sweeper2"}
LONE = "is a last octet without its network; write it after an address of its /24, as in 192.0.2.1-5,9"


def test_targets_given_as_one_string_sweep_what_they_say(tmp_path):
    rc, result, stdout = run_module(ping_sweep, tmp_path, targets="127.0.0.1-5,9", method="ping", timeout=2)
    assert rc == 0, stdout
    assert result["alive"] == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.9"]
    assert result["alive_ranges"] == ["127.0.0.1-5,9"]


def test_a_lone_last_octet_is_refused_with_where_it_belongs_and_nothing_is_swept(tmp_path):
    rc, result, stdout = run_module(ping_sweep, tmp_path, targets="9,127.0.0.1")
    assert rc == 1 and result["failed"], stdout
    assert result["msg"].startswith(f"targets: '9' {LONE}")
    assert "summary" not in result


def substitute(node):
    """The example with the test's addresses and sweeper names."""
    if isinstance(node, dict):
        return {k: substitute(v) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v) for v in node]
    if isinstance(node, str):
        return SWEEPERS.get(node, HALVES.get(node, node))
    return node


def example_tasks():
    """The split example and the task after it, from EXAMPLES as ansible-doc shows them."""
    tasks = yaml.safe_load(ping_sweep.EXAMPLES)
    [index] = [i for i, t in enumerate(tasks) if t["name"].startswith(SPLIT)]
    return tasks[index:index + 2]


def test_the_split_example_sweeps_each_half_once_from_its_own_sweeper(tmp_path):
    split, count = [substitute(t) for t in example_tasks()]
    assert {i["sweeper"] for i in split["loop"]} == set(SWEEPERS.values()), "the example's sweepers changed"
    assert sorted(t for i in split["loop"] for t in i["targets"]) == sorted(HALVES.values()), "its halves changed"
    split["vars"] = {"rate": 0}  # (the example leaves rate at its default; the result is the same)
    split["sysops.fleet.ping_sweep"]["rate"] = "{{ rate }}"
    record = {"name": "Record who swept what", "ansible.builtin.copy": {
        "content": "{{ {'results': halves.results, 'message': counted.msg} | to_json }}", "dest": str(tmp_path / "out.json")},
        "run_once": True}
    count["register"] = "counted"
    play = [{"name": "A play on localhost alone", "hosts": "localhost", "gather_facts": False,
             "tasks": [split, count, record]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    hosts = {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}
    for name in SWEEPERS.values():  # each sweeper's Python notes that a module ran there
        wrapper = tmp_path / f"python-{name}"
        wrapper.write_text(f"#!/bin/sh\necho {name} >> {tmp_path / 'ran'}\nexec {sys.executable} \"$@\"\n")
        wrapper.chmod(0o755)
        hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": str(wrapper)}
    inventory = {"all": {"hosts": hosts}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"), ANSIBLE_NOCOLOR="1")
    playbook = shutil.which("ansible-playbook", path=BIN) or shutil.which("ansible-playbook")
    proc = subprocess.run([playbook, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    results = out["results"]
    assert [r["item"]["sweeper"] for r in results] == ["sweeper1", "sweeper2"], "one sweep per sweeper, once"
    assert [r["summary"]["total"] for r in results] == [127, 127], "each sweeps its own half, not every share"
    first, second = (set(r["alive"]) for r in results)
    assert not first & second and len(first | second) == 254
    assert first == {f"127.20.0.{i}" for i in range(1, 128)}
    assert out["message"] == "254 addresses answered"
    assert (tmp_path / "ran").read_text().split() == ["sweeper1", "sweeper2"], "each half ran on its own sweeper"
