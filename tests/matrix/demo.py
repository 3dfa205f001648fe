# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection as an operator meets it, with one ansible-core: installed, then used.

    python3 tests/matrix/demo.py --bin DIR [--tarball FILE] [--expect-version X.Y] [--unsupported-ok]

DIR holds that ansible-core's commands (a venv's ``bin``, or ``/usr/bin`` for a
distribution's package). Standard library only, so it also runs where nothing but
the distribution's ansible-core is installed (tests/fresh/run.sh RELEASE distro-ansible).
In a fresh directory, with none of this clone's settings (no ansible.cfg, no
ANSIBLE_* variable of the caller), it:

1. installs the collection tarball (built by DIR's ansible-galaxy unless given) with
   that ansible-galaxy into a directory of its own;
2. runs the ad hoc sweep: ``ansible localhost -m sysops.fleet.ping_sweep -a
   'targets=127.0.0.1-5,9'``, the short range form given as one string;
3. runs the demo: ``ansible-playbook sysops.fleet.site`` on this machine alone
   (inventory/localhost.yml's settings, but every path in the fresh directory: the
   watcher under it with its cron file there, not in any crontab; a loopback sweep of
   127.0.0.1-254; the fleet report there), then again (only the report changes), then
   ``ansible-playbook sysops.fleet.watcher -e watcher_state=absent`` (nothing left, the
   daemon gone);
4. renders every plugin's and the role's documentation with ``ansible-doc``.

Every command must succeed and print no warning on stderr (a CryptographyDeprecationWarning
included); with --unsupported-ok ansible-core's "does not support Ansible version" (a
version outside requires_ansible, tested all the same) is allowed, and so are the warnings
of ansible-core's own bugs in KNOWN (each with its upstream issue). Packets go to
127.0.0.0/8 only. Prints one line per check; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLUGIN_TYPES = {"modules": "module", "filter": "filter", "inventory": "inventory", "lookup": "lookup"}
UNSUPPORTED = re.compile(r"Collection sysops\.fleet does not support Ansible version")
# ansible-core's own warnings that no collection can avoid, each with its upstream issue.
KNOWN = {
    # ansible-doc -t role (2.19+) looks at its bundled ansible._protomatter, which has no MANIFEST.json
    re.compile(r"Collection at '\S*/ansible_collections/ansible/_protomatter' does not have a MANIFEST"):
        "https://github.com/ansible/ansible/issues/85689",
    # ansible-playbook NAMESPACE.COLLECTION.PLAYBOOK in 2.14 (a verbose message from 2.15 on)
    re.compile(r"\[WARNING\]: running playbook inside collection sysops\.fleet$"):
        "https://github.com/ansible/ansible/pull/79320",
    # 2.16.20: the argument validation task ansible-core adds itself to every role with meta/argument_specs.yml
    # is written with the `action` mapping its own new deprecation warns about (fixed in 2.19 by #85401)
    # (ansible-core wraps the line at the terminal's width: only its start is certain)
    re.compile(r"\[DEPRECATION WARNING\]: Using a mapping for `action` is deprecated\."):
        "https://github.com/ansible/ansible/issues/85399",
}
WARNING = re.compile(r"WARNING|Warning:|DeprecationWarning|DEPRECATION|Traceback")
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
INVENTORY = """\
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  vars:
    watcher_root: {root}
    watcher_user: {user}
    watcher_cron_file: {root}/cron
    watcher_service_manager: cron
    watcher_watch_hosts: ["127.0.0.1"]
    fleet_report_dir: {reports}
  children:
    sweepers:
      hosts:
        localhost:
          sweep_targets: ["127.0.0.1-254"]
"""


class Demo:
    """One ansible-core's commands, run in a fresh directory; every failed check is kept."""

    def __init__(self, bindir: str, work: str, unsupported_ok: bool):
        self.bindir = bindir
        self.work = work
        self.unsupported_ok = unsupported_ok
        self.failed: List[str] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SYSOPS_FLEET_"))}
        self.env.update(ANSIBLE_HOME=os.path.join(work, "ansible-home"), ANSIBLE_NOCOLOR="1",
                        ANSIBLE_COLLECTIONS_PATH=os.path.join(work, "collections"),
                        PATH=bindir + os.pathsep + self.env.get("PATH", "/usr/bin:/bin"))
        self.env.pop("VIRTUAL_ENV", None)
        self.env.pop("PYTHONPATH", None)
        self.env.pop("PYTHONWARNINGS", None)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}", flush=True)
        if not ok:
            self.failed.append(name)
        return ok

    def run(self, name: str, argv: Sequence[str], timeout: int = 600) -> subprocess.CompletedProcess:
        """Run one of DIR's commands in the fresh directory; it must exit 0 and warn about nothing."""
        argv = [os.path.join(self.bindir, argv[0])] + list(argv[1:])
        proc = subprocess.run(argv, cwd=self.work, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        warnings = [line for line in proc.stderr.splitlines() + proc.stdout.splitlines()
                    if WARNING.search(line) and not (self.unsupported_ok and UNSUPPORTED.search(line))
                    and not any(known.search(line) for known in KNOWN)]
        tail = (proc.stdout + proc.stderr)[-3000:]
        self.check(f"{name}: exit 0", proc.returncode == 0, f"exit {proc.returncode}\n{tail}")
        self.check(f"{name}: no warning", not warnings, "\n".join(warnings[:10]))
        return proc


def adhoc_result(stdout: str) -> Dict:
    """The JSON after 'localhost | SUCCESS =>' of an ad hoc command's default output."""
    match = re.search(r"^localhost \| \w+ => (\{.*\})\s*$", stdout, re.S | re.M)
    return json.loads(match.group(1)) if match else {}


def recap(stdout: str) -> Dict[str, int]:
    """localhost's counts from the PLAY RECAP."""
    match = [m for m in RECAP.finditer(stdout) if m.group(1) == "localhost"]
    if not match:
        return {}
    ok, changed, unreachable, failed = (int(g) for g in match[-1].groups()[1:])
    return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


def watcher_pid(root: str) -> Optional[int]:
    try:
        with open(os.path.join(root, "run", "sysops-fleet", "watcher.pid"), encoding="ascii") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: Optional[int], root: str) -> bool:
    """Is *pid* a process of this demo's watcher (its command line names this prefix)?"""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return root.encode() in handle.read()
    except OSError:
        return False


def install(demo: Demo, tarball: str) -> bool:
    demo.run("ansible-galaxy collection install", ["ansible-galaxy", "collection", "install", "-p",
                                                   demo.env["ANSIBLE_COLLECTIONS_PATH"], tarball])
    manifest = os.path.join(demo.env["ANSIBLE_COLLECTIONS_PATH"], "ansible_collections", "sysops", "fleet",
                            "MANIFEST.json")
    return demo.check("the collection is installed (MANIFEST.json)", os.path.isfile(manifest))


def adhoc(demo: Demo) -> None:
    proc = demo.run("ad hoc sweep", ["ansible", "localhost", "-c", "local", "-i", "localhost,",
                                     "-e", "ansible_python_interpreter={{ ansible_playbook_python }}",
                                     "-m", "sysops.fleet.ping_sweep", "-a", "targets=127.0.0.1-5,9"])
    result = adhoc_result(proc.stdout)
    demo.check("ad hoc sweep: 127.0.0.1-5,9 is six addresses, all alive",
               result.get("alive") == [f"127.0.0.{i}" for i in (1, 2, 3, 4, 5, 9)], proc.stdout[-2000:])


def site(demo: Demo, inventory: str, root: str, reports: str) -> None:
    proc = demo.run("demo: ansible-playbook sysops.fleet.site", ["ansible-playbook", "-i", inventory, "sysops.fleet.site"])
    counts = recap(proc.stdout)
    demo.check("demo: nothing failed or unreachable", counts.get("failed") == 0 and counts.get("unreachable") == 0,
               str(counts))
    text = os.path.join(reports, "fleet-report.txt")
    report = open(text, encoding="utf-8").read() if os.path.isfile(text) else ""
    demo.check("demo: the fleet report (text and HTML) is written",
               bool(report) and os.path.isfile(os.path.join(reports, "fleet-report.html")))
    demo.check("demo: the report has the sweep's 254 loopback addresses alive", "254" in report, report[:1500])
    demo.check("demo: the watcher runs", alive(watcher_pid(root), root))
    cron = os.path.join(root, "cron")
    entries = open(cron, encoding="utf-8").read() if os.path.isfile(cron) else ""
    demo.check("demo: its three cron entries are in its cron file",
               entries.count("fleet-watcher start") == 2 and "fleet-watcher report" in entries, entries)
    again = recap(demo.run("demo again", ["ansible-playbook", "-i", inventory, "sysops.fleet.site"]).stdout)
    demo.check("demo again: only the fleet report changed", again.get("changed") == 1 and again.get("failed") == 0,
               str(again))


def remove(demo: Demo, inventory: str, root: str) -> None:
    pid = watcher_pid(root)
    demo.run("remove: ansible-playbook sysops.fleet.watcher -e watcher_state=absent",
             ["ansible-playbook", "-i", inventory, "sysops.fleet.watcher", "-e", "watcher_state=absent"])
    demo.check("remove: nothing is left under the watcher's prefix", not os.path.exists(root),
               "\n".join(sorted(glob.glob(os.path.join(root, "**"), recursive=True))[:20]))
    demo.check("remove: the daemon is gone", not alive(pid, root))


def docs(demo: Demo) -> None:
    """ansible-doc renders every plugin of the installed collection, and the role."""
    base = os.path.join(demo.env["ANSIBLE_COLLECTIONS_PATH"], "ansible_collections", "sysops", "fleet")
    for folder, kind in PLUGIN_TYPES.items():
        # a filter file may hold several filters, each documented by a sidecar NAME.yml
        pattern = "[a-z]*.yml" if kind == "filter" else "[a-z]*.py"
        names = sorted(os.path.splitext(os.path.basename(p))[0]
                       for p in glob.glob(os.path.join(base, "plugins", folder, pattern)))
        if not names:
            continue
        proc = demo.run(f"ansible-doc -t {kind}", ["ansible-doc", "-t", kind] + [f"sysops.fleet.{n}" for n in names])
        text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout).lower()
        missing = [n for n in names if f"sysops.fleet.{n}" not in text]
        demo.check(f"ansible-doc -t {kind}: {', '.join(names)} rendered", not missing, f"missing: {missing}")
    proc = demo.run("ansible-doc -t role", ["ansible-doc", "-t", "role", "sysops.fleet.watcher"])
    demo.check("ansible-doc -t role: the watcher's options", "watcher_state" in proc.stdout)


def cleanup(demo: Demo, inventory: str, root: str) -> None:
    """After a failure: remove the watcher as the role does, and stop its daemon if it survived."""
    pid = watcher_pid(root)
    if os.path.exists(root) and os.path.isfile(inventory):
        subprocess.run([os.path.join(demo.bindir, "ansible-playbook"), "-i", inventory, "sysops.fleet.watcher",
                        "-e", "watcher_state=absent"], cwd=demo.work, env=demo.env, capture_output=True, check=False)
    if alive(pid, root):
        os.kill(pid, signal.SIGTERM)
        time.sleep(1)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="directory of ansible, ansible-playbook, ansible-galaxy, ansible-doc")
    parser.add_argument("--tarball", help="the collection tarball (default: built from this clone by --bin's ansible-galaxy)")
    parser.add_argument("--expect-version", help="fail unless ansible --version says this X.Y")
    parser.add_argument("--unsupported-ok", action="store_true",
                        help="allow ansible-core's 'does not support Ansible version' (a version outside requires_ansible)")
    parser.add_argument("--keep", action="store_true", help="keep the fresh directory")
    args = parser.parse_args(argv)
    bindir = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="sysops-fleet-demo-")
    os.chmod(work, 0o755)
    demo = Demo(bindir, work, args.unsupported_ok)
    root, reports = os.path.join(work, "root"), os.path.join(work, "reports")
    inventory = os.path.join(work, "inventory.yml")
    with open(inventory, "w", encoding="utf-8") as handle:
        handle.write(INVENTORY.format(root=root, reports=reports, user=pwd.getpwuid(os.getuid()).pw_name))
    try:
        version = demo.run("ansible --version", ["ansible", "--version"]).stdout
        found = re.search(r"\[core (\d+\.\d+)", version)
        print(f"---- ansible-core {found.group(1) if found else '?'} from {bindir}", flush=True)
        if args.expect_version:
            demo.check(f"ansible-core is {args.expect_version}", bool(found) and found.group(1) == args.expect_version,
                       version.splitlines()[0] if version else "")
        tarball = args.tarball
        if not tarball:
            demo.run("ansible-galaxy collection build", ["ansible-galaxy", "collection", "build", "--output-path",
                                                         work, ROOT])
            tarball = (glob.glob(os.path.join(work, "sysops-fleet-*.tar.gz")) or [""])[0]
        if install(demo, os.path.abspath(tarball)):
            adhoc(demo)
            site(demo, inventory, root, reports)
            remove(demo, inventory, root)
            docs(demo)
    finally:
        cleanup(demo, inventory, root)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'FAILED' if demo.failed else 'passed'}: {len(demo.failed)} check(s) failed"
          + (f" ({', '.join(demo.failed)})" if demo.failed else ""), flush=True)
    return 1 if demo.failed else 0


if __name__ == "__main__":
    sys.exit(main())
