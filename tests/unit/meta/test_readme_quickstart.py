# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's quick start, run as a new user runs it: install, then the three plays.

In a fresh home directory, with none of this clone's variables: the install block (as
test_readme_install runs it), the ``quickstart.yml`` inventory saved as the README shows it,
and every command of the plays block, one at a time, each exiting 0 and warning about
nothing. One change, said here: ``watcher_cron_file: ""`` (the user's own crontab) becomes a
file in the test's directory, because this machine's crontab is shared with other runs; the
watcher's files land under the fresh home (``watcher_root`` is ``$HOME/sysops-fleet-demo``).
Then: the ad hoc sweep finds its six loopback addresses alive, site.yml writes the fleet
report where the README says, the watcher runs and says so, and its removal leaves nothing
under the prefix and no daemon. Packets go to 127.0.0.0/8 only.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "matrix"))
import demo  # noqa: E402  pylint: disable=wrong-import-position
# (demo.KNOWN: ansible-core's own warnings, each with its upstream issue)

BIN = os.path.dirname(sys.executable)
CRONTAB_LINE = 'watcher_cron_file: ""'
WARNING = re.compile(r"WARNING|Warning:|DeprecationWarning|Traceback|ERROR")


def block(marker, language):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    match = re.search(rf"<!-- {marker} -->\n```{language}\n(.*?)```", readme, re.S)
    assert match, f"README.md has no {marker} block (<!-- {marker} --> followed by a {language} block)"
    return match.group(1)


def commands(script):
    """The plays block's commands, one per line, comments left out."""
    return [line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def pid_of(prefix):
    try:
        with open(os.path.join(prefix, "run", "sysops-fleet", "watcher.pid"), encoding="ascii") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def runs_from(pid, prefix):
    """Is *pid* this test's watcher (its command line names the prefix)?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return prefix.encode() in handle.read()
    except (OSError, TypeError):
        return False


@pytest.fixture
def newcomer(tmp_path):
    """A fresh home and working directory; afterwards no watcher of this test is left running."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SYSOPS_FLEET_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp_path), PATH=BIN + os.pathsep + env.get("PATH", ""),
               ANSIBLE_NOCOLOR="1", USER=env.get("USER") or "root")
    env.pop("VIRTUAL_ENV", None)
    prefix = str(home / "sysops-fleet-demo")
    yield env, work, prefix
    pid = pid_of(prefix)
    if pid and runs_from(pid, prefix):
        os.kill(pid, signal.SIGTERM)


def run(argv_line, env, cwd):
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", argv_line], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{argv_line}\n{output[-3000:]}"
    warnings = [line for line in output.splitlines()
                if WARNING.search(line) and not any(known.search(line) for known in demo.KNOWN)]
    assert warnings == [], f"{argv_line}\n" + "\n".join(warnings[:10])
    return proc.stdout


def test_the_quick_start_runs_as_written(newcomer, tmp_path):
    env, work, prefix = newcomer
    run(block("install", "sh").replace("/path/to/your/clone", ROOT), env, work)

    inventory = block("quickstart inventory", "yaml")
    assert inventory.count(CRONTAB_LINE) == 1
    cron_file = tmp_path / "cron"
    (work / "quickstart.yml").write_text(inventory.replace(CRONTAB_LINE, f"watcher_cron_file: {cron_file}"))

    plays = commands(block("quickstart plays", "sh"))
    assert len(plays) == 5, plays
    adhoc, site, watcher, status, remove = plays
    assert "sysops.fleet.ping_sweep" in adhoc and "sysops.fleet.site" in site
    assert "sysops.fleet.watcher" in watcher and "status" in status and "watcher_state=absent" in remove

    out = run(adhoc, env, work)
    result = json.loads(re.search(r"^localhost \| \w+ => (\{.*\})\s*$", out, re.S | re.M).group(1))
    assert result["alive"] == [f"127.0.0.{i}" for i in (1, 2, 3, 4, 5, 9)]

    out = run(site, env, work)
    assert re.search(r"^localhost\s*:.*\bfailed=0\b", out, re.M), out[-2000:]
    reports = os.path.join(env["HOME"], ".local", "state", "sysops-fleet", "reports")
    with open(os.path.join(reports, "fleet-report.txt"), encoding="utf-8") as handle:
        assert "254" in handle.read()
    assert os.path.isfile(os.path.join(reports, "fleet-report.html"))
    assert runs_from(pid_of(prefix), prefix)
    assert "fleet-watcher start" in cron_file.read_text()

    out = run(watcher, env, work)
    assert re.search(r"^localhost\s*:.*\bchanged=0\b.*\bfailed=0\b", out, re.M), out[-2000:]
    out = run(status, env, work)
    assert "running" in out, out

    pid = pid_of(prefix)
    run(remove, env, work)
    assert not os.path.exists(prefix), os.listdir(prefix)
    assert not runs_from(pid, prefix)
    assert "fleet-watcher" not in (cron_file.read_text() if cron_file.exists() else "")
    assert shlex.split(status)[0].startswith("~/sysops-fleet-demo/")
