# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module as Ansible runs it: a separate Python process reading its arguments as JSON.

Optionally under a wrapper command (a private mount namespace, a hung
mount) or inside a network namespace of the loopback lab.
"""

import json
import os
import subprocess
import sys

import pytest

COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(list(
    __import__("ansible_collections.sysops.fleet", fromlist=["x"]).__path__)[0])))


def run_module(module, tmp_path, wrapper=(), env=None, netns=None, **args):
    """(exit code, parsed JSON result, raw stdout) of one run of *module* (its imported Python module)."""
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([COLLECTIONS_ROOT] + sys.path), **(env or {}))
    argv = list(wrapper) + [sys.executable, module.__file__, str(args_file)]
    if netns:
        argv = ["ip", "netns", "exec", netns] + argv
    proc = subprocess.run(argv, capture_output=True, text=True, env=environ, timeout=120, check=False)
    if proc.returncode == 77 and wrapper:
        pytest.skip(proc.stderr.strip())
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stdout
