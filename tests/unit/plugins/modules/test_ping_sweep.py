# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""ping_sweep as Ansible runs it: a separate Python process reading its args as JSON."""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.sysops.fleet.plugins.modules import ping_sweep

COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(list(
    __import__("ansible_collections.sysops.fleet", fromlist=["x"]).__path__)[0])))


def run_module(tmp_path, **args):
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([COLLECTIONS_ROOT] + sys.path))
    proc = subprocess.run([sys.executable, ping_sweep.__file__, str(args_file)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_sweep_of_loopback_reports_alive_hosts_and_is_never_changed(tmp_path):
    rc, out = run_module(tmp_path, targets=["127.0.0.1-4"], method="ping", rate=0)
    assert rc == 0, out
    assert out["changed"] is False
    assert out["alive"] == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert out["summary"]["total"] == 4 and out["summary"]["method"] == "ping"


def test_check_mode_sweeps_as_usual(tmp_path):
    rc, out = run_module(tmp_path, targets=["127.0.0.1"], method="ping", _ansible_check_mode=True)
    assert rc == 0 and out["alive"] == ["127.0.0.1"] and out["changed"] is False


@pytest.mark.parametrize("args,message", [
    ({"targets": ["10.0.0.1;reboot"]}, "contains ';'"),
    ({"targets": ["10.0.0.0/7"]}, "has 33554430 addresses, more than max_hosts=65536"),
    ({"targets": ["0.0.0.0/0"]}, "whole address space"),
    ({"targets": ["127.0.0.1"], "timeout": 0}, "timeout must be more than 0"),
    ({"targets": ["127.0.0.1"], "method": "icmp"}, "value of method must be one of"),
    ({"targets": []}, "at least one"),
])
def test_bad_input_fails_with_a_clear_message(tmp_path, args, message):
    rc, out = run_module(tmp_path, **args)
    assert rc == 1 and out["failed"] is True
    assert message in out["msg"]


def test_documentation_lists_every_option_of_the_argument_spec():
    import yaml
    doc = yaml.safe_load(ping_sweep.DOCUMENTATION)
    assert set(doc["options"]) == {"targets", "exclude", "timeout", "retries", "method", "workers",
                                   "concurrency", "rate", "max_hosts"}
    returned = yaml.safe_load(ping_sweep.RETURN)
    assert {"alive", "dead", "hosts", "summary", "unresolved"} <= set(returned)
