# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's install step, run as written, from the clone's root and from elsewhere.

The block after ``<!-- install -->`` is run by bash with ``/path/to/your/clone`` replaced by
this clone, for a user whose home is a fresh directory and who has none of this clone's
variables (ANSIBLE_COLLECTIONS_PATH and the like). From the root of the clone it used to do
nothing ("Nothing to do", the clone's ansible.cfg points at the clone itself) and with
``--force`` end in "Unexpected Exception"; now it must install the collection into
``~/.ansible/collections`` from either place, warning about nothing, and ``ansible-doc`` run
outside the clone must find the installed copy.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
PLACEHOLDER = "/path/to/your/clone"


def install_block():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    match = re.search(r"<!-- install -->\n```sh\n(.*?)```", readme, re.S)
    assert match, "README.md has no install block (<!-- install --> followed by a sh block)"
    assert PLACEHOLDER in match.group(1)
    return match.group(1)


@pytest.mark.parametrize("where", ["the clone's root", "another directory"])
def test_the_install_step_installs_the_collection_from_anywhere(where, tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SYSOPS_FLEET_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp_path), PATH=BIN + os.pathsep + env.get("PATH", ""), ANSIBLE_NOCOLOR="1")
    script = install_block().replace(PLACEHOLDER, ROOT)
    cwd = ROOT if where == "the clone's root" else str(elsewhere)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    for bad in ("WARNING", "Nothing to do", "Unexpected Exception", "Traceback", "ERROR"):
        assert bad not in output, f"{bad!r} from the install step run in {where}:\n{output[-3000:]}"
    installed = home / ".ansible" / "collections" / "ansible_collections" / "sysops" / "fleet"
    assert (installed / "MANIFEST.json").is_file(), output[-2000:]
    doc = subprocess.run([shutil.which("ansible-doc", path=BIN) or "ansible-doc", "sysops.fleet.ping_sweep"],
                         cwd=str(elsewhere), env=env, capture_output=True, text=True, timeout=300, check=True)
    assert str(installed / "plugins" / "modules" / "ping_sweep.py") in doc.stdout
