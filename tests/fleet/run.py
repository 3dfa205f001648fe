# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet test: playbooks/site.yml over SSH on a fleet of podman containers, as an operator runs it.

    sudo .venv/bin/python tests/fleet/run.py [--strategy linear|mitogen|both]    (scripts/test.sh fleet)

The fleet (tests/fleet/podman_fleet.py): five containers running sshd on an
internal network the test creates and removes; the controller logs in to
each as an ordinary user with the test's own key, host keys checked against
the known_hosts written from the host keys the test made, ``become: true``
(sudo) and pipelining. Packets go only to the containers' own addresses:
the sweeper's sweep_targets are exactly them, watcher_watch_hosts is empty.

    fleettest-1  sweeper; its data filesystem grows 8 MiB a day (two seeded days, then today's real 8 MiB)
    fleettest-2  grew 16 MiB
    fleettest-3  grew 24 MiB (fills fastest)
    fleettest-4  stopped before the play: down for the sweep, UNREACHABLE for Ansible
    fleettest-5  SSH up, but its user has no sudoers entry: become is refused, FAILED with sudo's reason

For each strategy (linear, then mitogen's mitogen_linear on a fresh fleet):

* before the plays: an ad hoc command becomes root over SSH (and, linear,
  pipelined: no file is put on the host); a known_hosts with the wrong key
  for fleettest-1 makes it UNREACHABLE (host key verification failed);
* first run: the watcher runs on fleettest-1..3 and nothing was installed on
  fleettest-5; the sweep found exactly the running addresses alive and
  fleettest-4's down; the report lists all five, fleettest-4 UNREACHABLE,
  fleettest-5 FAILED with the become error; the forecasts are each grown
  size a day, full in available / rate days, the fastest first; the play
  exits 4 (a host unreachable);
* second run: the same, no new or vanished address, nothing changed but
  the fleet report;
* (linear) a failing run: disk_report refuses fleettest-3's thresholds, so
  it is FAILED too, with disk_report's message.

Every container and the network are always removed. Exits 1 if any check failed.
Environment: FLEET_SUITE (bookworm), FLEET_SUBNET (10.89.77.0/28), FLEET_FORKS (8), FLEET_KEEP=1 keeps the
temporary directory (logs, records, reports).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import check_fleet  # noqa: E402  pylint: disable=wrong-import-position
import podman_fleet  # noqa: E402  pylint: disable=wrong-import-position
from podman_fleet import DATA, USER, Fleet, log  # noqa: E402  pylint: disable=wrong-import-position

HOSTS = 5
STOPPED = "fleettest-4"
NO_SUDO = "fleettest-5"
FAILING = "fleettest-3"
GROW = {"fleettest-1": 8 << 20, "fleettest-2": 16 << 20, "fleettest-3": 24 << 20}
# Why fleettest-5 fails, by strategy: the become error of Ansible's ssh connection, or of mitogen's sudo
SUDO_REFUSED = {"linear": r"Gather facts: Missing sudo password",
                "mitogen": r"Gather facts: error occurred on host fleettest-5: sudo password is required"}
THRESHOLDS_REFUSED = (r"Report this host's disks: warn \(95%\) must not be above crit \(90%\): "
                      r"a filesystem would turn crit before it warns")
WATCHER_USER = "sysops-fleet"  # the role's system user for the daemon
UNREACHABLE_RC = 4  # what ansible-playbook exits with when a host was unreachable (and others failed)


class Scenario:
    def __init__(self, fleet: Fleet, strategy: str, forks: int):
        self.fleet, self.strategy, self.forks = fleet, strategy, forks
        self.failed: List[str] = []

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}" + (f": {detail}" if detail and not ok else ""))
        if not ok:
            self.failed.append(f"{self.strategy}: {what}")

    def expected(self, failing: Dict[str, str]) -> List[check_fleet.Expected]:
        hosts = []
        for host in self.fleet.hosts.values():
            state = "down" if not host.running else ("failing" if host.name in failing else "sound")
            hosts.append(check_fleet.Expected(host.name, host.address, state, GROW.get(host.name, 0),
                                              failing.get(host.name, "")))
        return hosts

    def run(self) -> None:
        fleet = self.fleet
        log(f"--- {self.strategy}: a fresh fleet of {HOSTS}")
        fleet.start(HOSTS, without_sudo=[NO_SUDO])
        with open(os.path.join(HERE, "seed_history.py"), encoding="utf-8") as handle:
            seed = handle.read()
        for name, grow in GROW.items():
            # the watcher's history, where site.yml's disk_report reads and adds samples, as on a host where
            # the watcher has run for a day: its user (made as the role makes it) owns its state directory
            done = fleet.exec(name, "sh", "-c", "groupadd --system \"$1\" && useradd --system --gid \"$1\" "
                              "--shell /usr/sbin/nologin --home-dir /var/lib/sysops-fleet --no-create-home \"$1\"",
                              "-", WATCHER_USER)
            if done.returncode != 0:
                raise podman_fleet.FleetError(f"making the daemon's user in {name} failed: {done.stderr}")
            done = fleet.exec(name, "python3", "-", DATA, "/var/lib/sysops-fleet/history.json", str(grow),
                              WATCHER_USER, stdin=seed)
            if done.returncode != 0:
                raise podman_fleet.FleetError(f"seeding {name}'s history failed: {done.stderr}")
            log(f"{name}: {done.stdout.strip()}")
        log(f"stopping {STOPPED} before the play")
        fleet.stop(STOPPED)
        inventory = fleet.inventory(os.path.join(fleet.work, f"inventory-{self.strategy}.yml"), "fleettest-1")
        self.preflight(inventory)
        failing = {NO_SUDO: SUDO_REFUSED[self.strategy]}
        for run in ("first", "second"):
            self.play(run, inventory, failing)
            self.look_into_hosts(run)
        if self.strategy == "linear":
            log(f"site.yml, failing run: {FAILING} gets thresholds disk_report refuses")
            fleet.hosts[FAILING].vars = {"fleet_disk_warn": 95, "fleet_disk_crit": 90}
            fleet.inventory(inventory, "fleettest-1")
            self.play("failing", inventory, dict(failing, **{FAILING: THRESHOLDS_REFUSED}))
        with open(os.path.join(fleet.report_dir, "fleet-report.txt"), encoding="utf-8") as handle:
            text = handle.read()
        print(f"--- fleet-report.txt, hosts ({self.strategy}, last run) ---")
        print(text.split("Hosts, worst first:\n", 1)[-1].split("\n\n", 1)[0])
        fleet.remove_hosts()
        os.rename(fleet.report_dir, f"{fleet.report_dir}-{self.strategy}")

    def preflight(self, inventory: str) -> None:
        """Over SSH as USER, become root; pipelined (linear); a wrong host key is refused."""
        fleet = self.fleet
        adhoc = fleet.run(f"{self.strategy}-become", ["ansible", "fleettest-1", "-i", inventory, "-vvv", "-m",
                                                      "ansible.builtin.command", "-a", "id -un"], self.strategy)
        out = adhoc.output()
        self.check(adhoc.rc == 0 and "CHANGED | rc=0 >>\nroot" in out.replace("\r", ""),
                   f"ad hoc over SSH as {USER} with become: the command ran as root", out[-1500:])
        if self.strategy == "linear":
            self.check(f"ESTABLISH SSH CONNECTION FOR USER: {USER}" in out and "sudo -H -S -n" in out,
                       f"ad hoc: ssh as {USER}, then sudo", out[-1500:])
            self.check(" PUT " not in out and "sftp" not in out, "ad hoc: pipelined (no file put on the host)",
                       out[-1500:])
        wrong = os.path.join(fleet.work, "known_hosts.wrong")
        fleet.write_known_hosts(wrong, wrong_for=["fleettest-1"])
        bad_inventory = fleet.inventory(os.path.join(fleet.work, f"inventory-{self.strategy}-wrong-key.yml"),
                                        "fleettest-1", known_hosts=wrong)
        refused = fleet.run(f"{self.strategy}-wrong-key", ["ansible", "fleettest-1", "-i", bad_inventory, "-m",
                                                           "ansible.builtin.ping"], self.strategy)
        out = refused.output()
        self.check(refused.rc == UNREACHABLE_RC and "UNREACHABLE!" in out
                   and ("Host key verification failed" in out or "mismatching host key" in out),
                   "a host whose key is not the one in known_hosts is UNREACHABLE (host key checking is on)", out[-1500:])

    def play(self, run: str, inventory: str, failing: Dict[str, str]) -> None:
        log(f"site.yml, {self.strategy}, {run} run (--forks {self.forks})")
        played = self.fleet.play(f"{self.strategy}-{run}", inventory, self.strategy, self.forks)
        log(f"{self.strategy} {run} run: ansible-playbook rc={played.rc} in {played.seconds:.1f}s, "
            f"controller CPU {played.cpu:.1f}s")
        print(played.recap(), file=sys.stderr)
        if not os.path.exists(played.record):
            print(played.output()[-4000:], file=sys.stderr)
            self.check(False, f"{run} run: the play wrote a record")
            return
        self.check(played.rc == UNREACHABLE_RC, f"{run} run: ansible-playbook exits {UNREACHABLE_RC} ({STOPPED} is down)",
                   f"rc={played.rc}\n{played.output()[-3000:]}")
        self.check(not played.left, f"{run} run: nothing left running on the controller but ssh masters",
                   str(played.left))
        for what in check_fleet.check_run(run, played.record, self.fleet.report_dir, DATA, self.expected(failing)):
            self.failed.append(f"{self.strategy} {run}: {what}")

    def look_into_hosts(self, run: str) -> None:
        """From outside the play (podman exec): the watcher runs where the play ran, nothing where sudo was refused."""
        for host in self.fleet.hosts.values():
            if not host.running:
                continue
            status = self.fleet.exec(host.name, "/opt/sysops-fleet/bin/fleet-watcher", "status")
            if host.sudo:
                self.check(status.returncode == 0, f"{run} run: fleet-watcher status exits 0 in {host.name}",
                           (status.stdout + status.stderr).strip())
                logged = self.fleet.exec(host.name, "cat", "/var/log/sysops-fleet/watcher.log").stdout
                bad = [line for line in logged.splitlines() if " ERROR " in line or " WARNING " in line]
                self.check("INFO started" in logged and not bad,
                           f"{run} run: {host.name}: the daemon started and logged no warning or error", "\n".join(bad or [logged]))
            else:
                present = self.fleet.exec(host.name, "test", "-e", "/opt/sysops-fleet")
                self.check(present.returncode == 1, f"{run} run: nothing installed in {host.name} (its sudo was refused)",
                           f"test -e /opt/sysops-fleet exited {present.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategy", choices=["linear", "mitogen", "both"], default="both")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *unused: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *unused: sys.exit(129))
    strategies = ["linear", "mitogen"] if args.strategy == "both" else [args.strategy]
    failed: List[str] = []
    try:
        with Fleet(suite=os.environ.get("FLEET_SUITE", "bookworm"),
                   subnet=os.environ.get("FLEET_SUBNET", "10.89.77.0/28"),
                   keep=os.environ.get("FLEET_KEEP", "0") == "1") as fleet:
            for strategy in strategies:
                scenario = Scenario(fleet, strategy, int(os.environ.get("FLEET_FORKS", "8")))
                scenario.run()
                failed += scenario.failed
    except podman_fleet.FleetError as exc:
        log(f"ERROR: {exc}")
        return 1
    if failed:
        log(f"the fleet test FAILED: {len(failed)} check(s):")
        for what in failed:
            print(f"  {what}", file=sys.stderr)
        return 1
    log(f"the fleet test passed ({', '.join(strategies)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
