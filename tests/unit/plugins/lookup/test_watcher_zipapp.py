# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The watcher_zipapp lookup as the role uses it: through a real ``ansible`` command on this controller.

The program it builds is run for real (``--help``, ``sweep 127.0.0.1``,
``status``), and its bytes are compared across runs and across copies of
the core with other timestamps and modes: idempotence of the role rests on
those bytes never changing while the core does not.
"""

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.sysops.fleet.plugins.lookup import watcher_zipapp
from ansible_collections.sysops.fleet.plugins.module_utils import _command

BIN = os.path.dirname(sys.executable)
COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(list(
    __import__("ansible_collections.sysops.fleet", fromlist=["x"]).__path__)[0])))
CORE = os.path.dirname(os.path.abspath(_command.__file__))


def lookup(tmp_path, module="ansible.builtin.debug", template="msg={}", **options):
    """(rc, the lookup's value or Ansible's error message) of one ``ansible localhost -m debug`` run."""
    args = ", ".join(f"{k}={v!r}" for k, v in options.items())
    proc = subprocess.run(
        [os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-m", module,
         "-e", f"ansible_python_interpreter={sys.executable}",  # no discovery: it may meet pyenv's shims
         "-a", template.format("{{ lookup('sysops.fleet.watcher_zipapp', %s) }}" % args)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT, ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
                 ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
                 PATH=BIN + os.pathsep + os.environ.get("PATH", "")))
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text
    if proc.returncode == 0:
        return 0, json.loads(proc.stdout[proc.stdout.index("{"):]).get("msg")
    return proc.returncode, text


def test_the_same_options_give_the_same_bytes_on_every_run(tmp_path):
    rc, first = lookup(tmp_path, interpreter="/usr/bin/python3", output="base64")
    assert rc == 0, first
    rc, second = lookup(tmp_path, interpreter="/usr/bin/python3", output="base64")
    assert rc == 0 and first == second
    copied = tmp_path / "copied"  # output=path: a file in Ansible's local temp directory, for the copy module
    rc, unused = lookup(tmp_path, "ansible.builtin.copy", f"src={{}} dest={copied} mode=0755", interpreter="/usr/bin/python3")
    assert rc == 0, unused
    assert copied.read_bytes() == base64.b64decode(first)
    rc, other = lookup(tmp_path, interpreter="/usr/bin/python3", config="/srv/w.ini", output="base64")
    assert rc == 0 and other != first  # the settings path is part of the program


def test_other_timestamps_and_modes_of_the_core_change_no_byte(tmp_path):
    copy = tmp_path / "core"
    shutil.copytree(CORE, copy)
    for number, name in enumerate(sorted(os.listdir(copy))):
        os.chmod(copy / name, 0o600 if number % 2 else 0o664)
        os.utime(copy / name, (1_000_000_000 + number, 1_000_000_000 + number))
    ours = watcher_zipapp.build("/usr/bin/python3", watcher_zipapp.members(CORE, "/etc/sysops-fleet/watcher.ini"))
    theirs = watcher_zipapp.build("/usr/bin/python3", watcher_zipapp.members(str(copy), "/etc/sysops-fleet/watcher.ini"))
    assert ours == theirs
    (copy / "_command.py").write_text((copy / "_command.py").read_text() + "# changed\n")
    changed = watcher_zipapp.build("/usr/bin/python3", watcher_zipapp.members(str(copy), "/etc/sysops-fleet/watcher.ini"))
    assert changed != ours


def test_the_program_runs_from_anywhere_with_its_settings_path_built_in(tmp_path):
    rc, data = lookup(tmp_path, interpreter=sys.executable, config=str(tmp_path / "absent.ini"), output="base64")
    assert rc == 0, data
    program = tmp_path / "bin" / "fleet-watcher"
    program.parent.mkdir()
    program.write_bytes(base64.b64decode(data))
    program.chmod(0o755)
    assert program.read_bytes().startswith(f"#!{sys.executable} -I\n".encode())
    run = dict(capture_output=True, text=True, timeout=60)
    helped = subprocess.run(["bin/fleet-watcher", "--help"], cwd=tmp_path, check=False, **run)  # relative, as cron might
    assert helped.returncode == 0 and helped.stdout.startswith("usage: fleet-watcher"), helped.stderr
    swept = subprocess.run([str(program), "sweep", "127.0.0.1"], cwd="/", check=False, **run)
    assert swept.returncode == 0 and "127.0.0.1 is alive" in swept.stdout, swept.stdout + swept.stderr
    status = subprocess.run([str(program), "status"], cwd="/", check=False, **run)
    assert status.returncode == 4
    assert f"settings file {tmp_path / 'absent.ini'} does not exist" in status.stderr


@pytest.mark.parametrize("options,message", [
    ({"interpreter": "python3"}, "interpreter must be an absolute path without blanks, got 'python3'"),
    ({"interpreter": "/usr/bin/python3 -X dev"}, "interpreter must be an absolute path without blanks"),
    ({"interpreter": "/usr/bin/python3", "config": "watcher.ini"}, "config must be an absolute path, got 'watcher.ini'"),
    ({"interpreter": "/usr/bin/python3", "output": "zip"}, "zip"),
], ids=["relative interpreter", "interpreter with options", "relative config", "unknown output"])
def test_bad_options_fail_the_task_with_what_was_wrong(tmp_path, options, message):
    rc, text = lookup(tmp_path, **options)
    assert rc != 0
    assert message in text, text
    assert not (tmp_path / "tmp").exists() or not any(n.endswith(".pyz") for n in os.listdir(tmp_path / "tmp"))
