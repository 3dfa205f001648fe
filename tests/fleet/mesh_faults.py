# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mesh fault test: site.yml in mesh mode on podman containers on two networks joined by a router.

    sudo .venv/bin/python tests/fleet/mesh_faults.py [--seed 22] [--faults 20] [--per-side 3] [--plan]

The fleet (tests/fleet/podman_fleet.py's containers, SSH, become, pipelining):
--per-side hosts on each of two internal networks the test creates and
removes (NET_A, NET_B), and a router container on both, which forwards
between them (``net.ipv4.ip_forward=1``); each host routes the other
network through it. The router is no managed host. Packets go only to the
containers' own addresses. Faults are made from outside the containers,
with the controller's ``nft`` and ``ip`` run in a container's network
namespace (``nsenter --net``), or by stopping a container:

    down      the host stopped (``podman stop``; started again after), or cut off by nftables (everything in and
              out dropped): unreachable for Ansible, silent for ping
    blind     the host's input drops echo replies: its probes never come back, it still answers
    cut       the router drops what it forwards between the networks, or the hosts of a random side drop what
              comes from, or goes to, the others
    one_way   the target's input drops echo requests from a random set of the others
    lossy     the host's input drops 50 % of the echo requests (``numgen random``): with 10 probes a pair,
              a pair loses 20 % or more but not all with a chance of 98.8 %; the finding must be at that host,
              the hosts it names those whose pairs to it lost that much

First a healthy run: every pair must answer and nothing may be found.
Then --faults faults drawn with random.Random(--seed) (the kind, the host,
the sides, the sources), each made, site.yml run with ``fleet_mesh:
true``, the findings of its fleet_report task (from the fleet_record
callback) compared with exactly the one expected (kind, the host it is
at, the hosts involved, the sides of a cut), and the fault undone.
``--plan`` prints the faults the seed draws and exits, without podman.
Every container and both networks are always removed. Exits 1 if any
fault was not labelled exactly (each is listed), 0 otherwise.
Environment: FLEET_SUITE (bookworm), FLEET_KEEP=1 keeps the temporary directory.
"""

from __future__ import annotations

import argparse
import ipaddress
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import podman_fleet  # noqa: E402  pylint: disable=wrong-import-position
from podman_fleet import USER, Fleet, log  # noqa: E402  pylint: disable=wrong-import-position

NET_A, NET_B = ("meshtest-a", "10.89.81.0/28"), ("meshtest-b", "10.89.82.0/28")
ROUTER = "meshtest-router"
KINDS = ("down", "blind", "cut", "one_way", "lossy")
TABLE = "meshfault"


def fixed(cidr: str, count: int) -> List[str]:
    """The hosts' fixed addresses on a side, from the ninth of its /28 on (the router has the second): a
    stopped host started again keeps its address, and known_hosts fits."""
    network = ipaddress.ip_network(cidr)
    if count > network.num_addresses - 10:
        raise SystemExit(f"at most {network.num_addresses - 10} hosts a side on {cidr}")
    return [str(network[8 + i]) for i in range(count)]


REPORT_TASK = "Merge everything into one fleet report on the controller"


@dataclasses.dataclass
class Fault:
    """One drawn fault: what it is, where, and the finding it must give."""

    kind: str
    host: str = ""  # down, blind, lossy: the host; one_way: the target
    how: str = ""  # down: stop or nft; cut: router or hosts
    others: Tuple[str, ...] = ()  # one_way: the sources; cut: one side

    def expected(self, hosts: List[str]) -> Dict[str, object]:
        """The one finding this fault must give, in the form ``labelled`` reads findings."""
        if self.kind in ("down", "blind"):
            return {"kind": self.kind, "at": None, "hosts": [self.host]}
        if self.kind == "cut":
            side = sorted(self.others)
            return {"kind": "cut", "at": None, "hosts": sorted(hosts),
                    "sides": sorted([side, sorted(set(hosts) - set(side))])}
        if self.kind == "one_way":
            return {"kind": "one_way", "at": self.host, "hosts": sorted(set(self.others) | {self.host})}
        return {"kind": "lossy", "at": self.host, "hosts": sorted(hosts)}  # at most these: see ``matches``

    def __str__(self) -> str:
        detail = {"down": f"{self.host} ({self.how})", "blind": self.host, "lossy": self.host,
                  "one_way": f"{', '.join(self.others)} -> {self.host} dropped",
                  "cut": f"{self.how}: {', '.join(self.others)} | the rest"}[self.kind]
        return f"{self.kind}: {detail}"


def draw(rng: random.Random, side_a: List[str], side_b: List[str], count: int) -> List[Fault]:
    """*count* faults, each kind with the same chance, their hosts and sides drawn from *rng*."""
    hosts = sorted(side_a + side_b)
    faults = []
    for unused in range(count):
        kind = rng.choice(KINDS)
        host = rng.choice(hosts)
        others = [h for h in hosts if h != host]
        if kind == "down":
            faults.append(Fault(kind, host, rng.choice(["stop", "nft"])))
        elif kind in ("blind", "lossy"):
            faults.append(Fault(kind, host))
        elif kind == "one_way":
            faults.append(Fault(kind, host, others=tuple(sorted(rng.sample(others, rng.randint(1, len(others)))))))
        elif rng.random() < 0.5:
            faults.append(Fault(kind, how="router", others=tuple(sorted(side_a))))
        else:
            size = rng.randint(2, len(hosts) - 2)
            faults.append(Fault(kind, how="hosts", others=tuple(sorted(rng.sample(hosts, size)))))
    return faults


def labelled(findings: List[Dict]) -> List[Dict[str, object]]:
    """The findings reduced to what a fault decides: kind, the host it is at (cut: none), hosts, cut's sides."""
    found = []
    for f in findings:
        entry: Dict[str, object] = {"kind": f["kind"], "at": f.get("at"), "hosts": sorted(f["hosts"])}
        if f["kind"] == "cut" and "at" not in f:
            entry["sides"] = sorted(sorted(side) for side in f["sides"])
        found.append(entry)
    return found


def matches(fault: Fault, want: List[Dict[str, object]], got: List[Dict[str, object]]) -> bool:
    """Exactly the finding wanted; for a lossy host, at that host and naming it and some of the others (each pair
    to it loses 50 % on average: now and then one loses less than the threshold and is rightly not named)."""
    if fault.kind != "lossy":
        return got == want
    if len(got) != 1 or got[0]["kind"] != "lossy" or got[0]["at"] != fault.host:
        return False
    named = set(got[0]["hosts"])  # type: ignore[arg-type]
    return fault.host in named and len(named) > 1 and named <= set(want[0]["hosts"])  # type: ignore[arg-type]


class MeshFleet(Fleet):
    """The fleet on two networks and a router; faults made in the containers' network namespaces."""

    def __init__(self, suite: str, keep: bool):
        super().__init__(suite=suite, subnet=NET_A[1], prefix="meshtest-", network=NET_A[0], keep=keep)
        self.second_made = False
        self.router: Dict[str, str] = {}  # network -> the router's address on it
        self.side: Dict[str, str] = {}  # host -> its network

    def prepare(self) -> None:
        super().prepare()
        if self.podman("network", "exists", NET_B[0], check=False).returncode == 0:
            raise podman_fleet.FleetError(f"network {NET_B[0]} exists already: podman network rm {NET_B[0]}")
        self.podman("network", "create", "--internal", "--subnet", NET_B[1], NET_B[0])
        self.second_made = True

    def close(self) -> None:
        """The router and the second network first: Fleet.close removes the temporary directory that holds
        podman's configuration (CONTAINERS_CONF), and a podman run after it failed, leaving the network
        (the next run then refused to start: "network meshtest-b exists already")."""
        self.podman("rm", "-f", "-t", "0", ROUTER, check=False)
        self.remove_hosts()
        if self.second_made:
            self.podman("network", "rm", "-f", NET_B[0], check=False)
            self.second_made = False
        super().close()

    def build(self, per_side: int) -> Tuple[List[str], List[str]]:
        """The router, then *per_side* hosts on each network, each routing the other network through the router."""
        router_a, router_b = (str(ipaddress.ip_network(cidr)[2]) for _name, cidr in (NET_A, NET_B))
        self.podman("run", "-d", "--name", ROUTER, "--hostname", ROUTER, "--network", f"{NET_A[0]}:ip={router_a}",
                    "--network", f"{NET_B[0]}:ip={router_b}", "--init", "--sysctl", "net.ipv4.ip_forward=1",
                    self.image, "/usr/sbin/cron", "-f")
        for net, unused in (NET_A, NET_B):
            self.router[net] = self.podman("inspect", "--format",
                                           f'{{{{ (index .NetworkSettings.Networks "{net}").IPAddress }}}}',
                                           ROUTER).stdout.strip()
        side_a = [h.name for h in self.start(per_side, network=NET_A[0], first=1, addresses=fixed(NET_A[1], per_side))]
        side_b = [h.name for h in self.start(per_side, network=NET_B[0], first=per_side + 1,
                                             addresses=fixed(NET_B[1], per_side))]
        self.side = dict({h: NET_A[0] for h in side_a}, **{h: NET_B[0] for h in side_b})
        for host in side_a + side_b:
            self.route(host)
        log(f"router {ROUTER}: {self.router}; side A {side_a}, side B {side_b}")
        return side_a, side_b

    def route(self, host: str) -> None:
        other = NET_B if self.side[host] == NET_A[0] else NET_A
        self.in_netns(host, ["ip", "route", "replace", other[1], "via", self.router[self.side[host]]])

    def pid(self, name: str) -> str:
        return self.podman("inspect", "--format", "{{ .State.Pid }}", name).stdout.strip()

    def in_netns(self, name: str, argv: List[str], stdin: Optional[str] = None) -> None:
        """A command of the controller (ip, nft) in a container's network namespace."""
        done = subprocess.run(["nsenter", "--target", self.pid(name), "--net", *argv], input=stdin,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise podman_fleet.FleetError(f"{' '.join(argv)} in {name}'s network namespace failed: "
                                          f"{done.stderr.strip()}")

    def rules(self, name: str, hook: str, body: str) -> None:
        self.in_netns(name, ["nft", "-f", "-"], stdin=f"table inet {TABLE} {{\n  chain {hook} {{\n"
                      f"    type filter hook {hook} priority -10; policy accept;\n{body}\n  }}\n}}\n")

    def clear(self, name: str) -> None:
        subprocess.run(["nsenter", "--target", self.pid(name), "--net", "nft", "delete", "table", "inet", TABLE],
                       capture_output=True, check=False)

    def address(self, name: str) -> str:
        return self.hosts[name].address

    def make(self, fault: Fault) -> None:
        if fault.kind == "down" and fault.how == "stop":
            self.stop(fault.host)
        elif fault.kind == "down":
            self.rules(fault.host, "input", '    iifname != "lo" drop')
            self.rules(fault.host, "output", '    oifname != "lo" drop')  # a second chain in the same table
        elif fault.kind == "blind":
            self.rules(fault.host, "input", "    icmp type echo-reply drop")
        elif fault.kind == "lossy":
            self.rules(fault.host, "input", "    icmp type echo-request numgen random mod 100 < 50 drop")
        elif fault.kind == "one_way":
            sources = ", ".join(self.address(s) for s in fault.others)
            self.rules(fault.host, "input", f"    ip saddr {{ {sources} }} icmp type echo-request drop")
        elif fault.how == "router":
            self.rules(ROUTER, "forward", f"    ip saddr {NET_A[1]} ip daddr {NET_B[1]} drop\n"
                                          f"    ip saddr {NET_B[1]} ip daddr {NET_A[1]} drop")
        else:
            rest = sorted(set(self.hosts) - set(fault.others))
            for inside, outside in ((fault.others, rest), (rest, fault.others)):
                them = ", ".join(self.address(h) for h in outside)
                for host in inside:
                    self.rules(host, "input", f"    ip saddr {{ {them} }} icmp type echo-request drop")

    def undo(self, fault: Fault) -> None:
        if fault.kind == "down" and fault.how == "stop":
            self.revive(fault.host)
            return
        for name in list(self.hosts) + [ROUTER]:
            self.clear(name)

    def revive(self, name: str) -> None:
        """A stopped host started again: sshd, its route; its address must not have changed (known_hosts)."""
        self.podman("start", name)
        self.hosts[name].running = True
        was = self.hosts[name].address
        now = self.podman("inspect", "--format",
                          f'{{{{ (index .NetworkSettings.Networks "{self.side[name]}").IPAddress }}}}', name).stdout.strip()
        if now != was:
            raise podman_fleet.FleetError(f"{name} came back as {now}, not {was}: the known_hosts no longer fit")
        self.exec(name, "sh", "-c", "install -d -m 0755 /run/sshd && /usr/sbin/sshd")
        self.route(name)
        self.wait_for_ssh(self.hosts[name])

    def mesh_inventory(self, path: str) -> str:
        """Every host in mesh mode, no sweepers, no watcher (not what is tested): the fleet test's SSH settings."""
        hosts = {h.name: {"ansible_host": h.address} for h in self.hosts.values()}
        variables = {"ansible_user": USER, "ansible_ssh_private_key_file": self.client_key,
                     "ansible_ssh_common_args": self.ssh_common_args(), "ansible_become": True,
                     "ansible_python_interpreter": "/usr/bin/python3", "fleet_watcher": False,
                     "fleet_disk_send": "never", "fleet_disk_include_mounts": [podman_fleet.DATA],
                     "fleet_report_dir": self.report_dir, "fleet_mail_send": "never",
                     "fleet_mesh": True, "fleet_mesh_count": 10, "fleet_mesh_spacing": 0.1, "fleet_mesh_timeout": 1}
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"all": {"vars": variables, "hosts": hosts}}, handle)
        return path


def findings_of(run: podman_fleet.PlayRun) -> Tuple[Optional[List[Dict]], Optional[Dict]]:
    """The fleet_report task's findings and mesh, from the play's record."""
    with open(run.record, encoding="utf-8") as handle:
        record = json.load(handle)
    for result in record["results"]:
        if result["task"] == REPORT_TASK and result["status"] == "ok":
            return result.get("findings"), result.get("mesh")
    return None, None


def run_faults(fleet: MeshFleet, faults: List[Fault], hosts: List[str]) -> List[str]:
    """The healthy run, then each fault made, played, compared and undone; what was not labelled exactly."""
    inventory = fleet.mesh_inventory(os.path.join(fleet.work, "inventory-mesh.yml"))
    failed: List[str] = []
    played = fleet.play("mesh-healthy", inventory)
    findings, mesh = findings_of(played)
    silent = (mesh or {}).get("summary", {}).get("silent")
    ok = findings == [] and silent == 0 and played.rc == 0
    print(f"  [{'ok' if ok else 'FAIL'}] healthy fleet: rc {played.rc}, {silent} silent pairs, findings {findings}")
    if not ok:
        failed.append(f"healthy fleet: rc {played.rc}, {silent} silent pairs, findings {findings}")
        return failed  # the network does not work as built: every fault would fail for that reason
    for number, fault in enumerate(faults, 1):
        log(f"fault {number}/{len(faults)}: {fault}")
        fleet.make(fault)
        try:
            played = fleet.play(f"mesh-fault-{number}", inventory)
            findings, unused = findings_of(played)
        finally:
            fleet.undo(fault)
        want = [fault.expected(hosts)]
        got = labelled(findings or [])
        ok = matches(fault, want, got)
        print(f"  [{'ok' if ok else 'FAIL'}] fault {number} ({fault}): "
              f"{'labelled exactly' if ok else f'expected {want}, got {got}'}")
        if not ok:
            failed.append(f"fault {number} ({fault}): expected {want}, got {got} (rc {played.rc}, {played.log})")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--per-side", type=int, default=3)
    parser.add_argument("--plan", action="store_true", help="print the faults the seed draws, run nothing")
    args = parser.parse_args()
    if args.per_side < 2:
        parser.error("--per-side must be at least 2 (a cut needs two hosts a side)")
    side_a = [f"meshtest-{i}" for i in range(1, args.per_side + 1)]
    side_b = [f"meshtest-{i}" for i in range(args.per_side + 1, 2 * args.per_side + 1)]
    faults = draw(random.Random(args.seed), side_a, side_b, args.faults)
    hosts = sorted(side_a + side_b)
    if args.plan:
        for number, fault in enumerate(faults, 1):
            print(f"{number:2d}. {fault}  ->  {fault.expected(hosts)}")
        return 0
    signal.signal(signal.SIGTERM, lambda *unused: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *unused: sys.exit(129))
    try:
        with MeshFleet(os.environ.get("FLEET_SUITE", "bookworm"), os.environ.get("FLEET_KEEP", "0") == "1") as fleet:
            built = fleet.build(args.per_side)
            if sorted(built[0] + built[1]) != hosts:
                raise podman_fleet.FleetError(f"the fleet's hosts are {built}, not {hosts}")
            failed = run_faults(fleet, faults, hosts)
    except podman_fleet.FleetError as exc:
        log(f"ERROR: {exc}")
        return 1
    if failed:
        log(f"the mesh fault test FAILED (seed {args.seed}): {len(failed)} of {len(faults)} fault(s):")
        for what in failed:
            print(f"  {what}", file=sys.stderr)
        return 1
    log(f"the mesh fault test passed: a healthy fleet and {len(faults)} faults (seed {args.seed}), each labelled exactly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
