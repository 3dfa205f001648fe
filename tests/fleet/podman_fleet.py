# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet of podman containers that run sshd, for playbooks/site.yml over SSH as operators run it.

Used by the fleet test (tests/fleet/run.py) and its benchmark (tests/bench/bench_fleet.py).

* Every host is a container of the image built here without a registry
  (``scripts/build_image.sh host SUITE``: debootstrap, then ``podman import``),
  on an internal podman network that the fleet creates and removes
  (``podman network create --internal``): the containers reach each other and
  the controller's bridge address, nothing beyond.
* The keys are the test's own, made for each run: one client key, and one
  host key per container, generated on the controller and copied in. The
  known_hosts file is written from those host keys, so SSH checks every host
  key strictly (``StrictHostKeyChecking=yes``) against keys the test made,
  never against what the network offers.
* Each host has an ordinary user (``USER``) that logs in with the client key
  only and has passwordless sudo, or, for a host made to refuse become, no
  sudoers entry at all (tests/fleet/prepare_host.sh).
* Ansible logs in as that user with ``become: true`` and pipelining
  (``ANSIBLE_PIPELINING=true``), with the linear strategy or mitogen's
  ``mitogen_linear``; each play runs under tests/fleet/metered.py, which
  measures its wall time and the controller's CPU, ssh's masters included.

Everything the fleet made (containers, network, ssh masters, temporary
files) is removed by ``close``, also on an error or a signal.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterable, List, Optional

import jinja2

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV_BIN = os.path.join(os.environ.get("SYSOPS_FLEET_VENV", os.path.join(ROOT, ".venv")), "bin")
USER = "fleetop"
DATA = "/srv/fleet-data"  # a small tmpfs of each container's own, for disk_report to report and forecast
STRATEGIES = ("linear", "mitogen")


class FleetError(RuntimeError):
    """The fleet could not be made (a leftover of a killed run, a missing tool, a host without sshd)."""


@dataclasses.dataclass
class Host:
    name: str
    address: str = ""
    sudo: bool = True  # False: no sudoers entry, so become is refused
    running: bool = True
    vars: Dict[str, object] = dataclasses.field(default_factory=dict)  # host vars in the inventory


@dataclasses.dataclass
class PlayRun:
    """One metered ansible command: how it ended, what it took, where its output and record are."""

    name: str
    rc: int
    seconds: float
    user: float
    sys: float
    log: str
    record: str
    left: List[str]

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    def output(self) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def recap(self) -> str:
        text = self.output()
        return text[text.find("PLAY RECAP"):] if "PLAY RECAP" in text else text[-3000:]


def log(message: str) -> None:
    print(f"[sysops.fleet] {message}", file=sys.stderr, flush=True)


def mitogen_strategy_dir() -> str:
    """The strategy plugins of the mitogen package installed in the venv (requirements-dev.txt)."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        raise FleetError("mitogen is not installed in the venv: run scripts/setup.sh (requirements-dev.txt)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "plugins", "strategy")
    if not os.path.isfile(os.path.join(path, "mitogen_linear.py")):
        raise FleetError(f"no mitogen_linear strategy in {path}")
    return path


class Fleet:
    """The containers, their network and keys, and the plays run on them; a context manager that removes it all."""

    def __init__(self, suite: str = "bookworm", subnet: str = "10.89.77.0/28", prefix: str = "fleettest-",
                 network: str = "fleettest-net", keep: bool = False):
        self.suite, self.subnet, self.prefix, self.network, self.keep = suite, subnet, prefix, network, keep
        self.image = f"localhost/sysops-fleet-host:{suite}"
        self.work = tempfile.mkdtemp(prefix="fleettest.", dir="/tmp")
        self.ssh_dir = os.path.join(self.work, "ssh")
        self.client_key = os.path.join(self.ssh_dir, "id_ed25519")
        self.known_hosts = os.path.join(self.ssh_dir, "known_hosts")
        self.hosts: Dict[str, Host] = {}
        self.network_made = False
        self.runs = 0
        self.conf = os.path.join(self.work, "containers.conf")

    # ---- the whole fleet -------------------------------------------------------------------------

    def __enter__(self) -> "Fleet":
        try:
            self.prepare()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *unused) -> None:
        self.close()

    def prepare(self) -> None:
        """podman settings, the image (built if missing or outdated), the network, the client key."""
        if os.geteuid() != 0:
            raise FleetError("the fleet test needs root (rootful podman, debootstrap)")
        for tool in ("podman", "runc", "ssh", "ssh-keygen"):
            if shutil.which(tool) is None:
                raise FleetError(f"{tool} is missing: run scripts/setup.sh")
        if not os.path.isfile(os.path.join(VENV_BIN, "ansible-playbook")):
            raise FleetError(f"no ansible-playbook in {VENV_BIN}: run scripts/setup.sh first")
        if not os.path.exists(os.path.join(ROOT, ".build", "collections", "ansible_collections", "sysops", "fleet")):
            raise FleetError("no .build/collections: run scripts/setup.sh first")
        os.makedirs(self.ssh_dir, mode=0o700)
        subprocess.run(["bash", "-c", '. "$1" && write_podman_conf "$2" tests/fleet/podman_fleet.py', "lib",
                        os.path.join(ROOT, "scripts", "lib.sh"), self.conf], check=True)
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "build_image.sh"), "host", self.suite], check=True,
                       env=self.podman_env())
        if self.podman("network", "exists", self.network, check=False).returncode == 0:
            raise FleetError(f"network {self.network} exists already (a previous run that was killed?): "
                             f"podman network rm {self.network}")
        self.podman("network", "create", "--internal", "--subnet", self.subnet, self.network)
        self.network_made = True
        self.keygen(self.client_key, "fleettest-controller")

    def close(self) -> None:
        """Remove every container and the network this fleet made; the temporary files unless kept."""
        self.remove_hosts()
        if self.network_made:
            self.podman("network", "rm", "-f", self.network, check=False)
            self.network_made = False
        if self.keep:
            log(f"kept {self.work}")
        else:
            subprocess.run(["rm", "-rf", "--one-file-system", self.work], check=False)

    def podman_env(self) -> Dict[str, str]:
        return dict(os.environ, CONTAINERS_CONF=self.conf)

    def podman(self, *args: str, check: bool = True, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
        done = subprocess.run(["podman", *args], capture_output=True, text=True, env=self.podman_env(), input=stdin,
                              check=False)
        if check and done.returncode != 0:
            raise FleetError(f"podman {' '.join(args[:3])} ... failed ({done.returncode}): {done.stderr.strip()}")
        return done

    @staticmethod
    def keygen(path: str, comment: str) -> None:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], check=True)

    # ---- hosts -----------------------------------------------------------------------------------

    def start(self, count: int, without_sudo: Iterable[str] = (), network: Optional[str] = None,
              first: int = 1, addresses: Optional[List[str]] = None) -> List[Host]:
        """Containers PREFIX<first>.. (count of them) on *network* (default: the fleet's), each with its own host
        key, the user and sshd; known_hosts rewritten. *addresses*: each container's fixed address (kept when
        a stopped container starts again; else podman may hand it another)."""
        no_sudo = set(without_sudo)
        network = network or self.network
        with open(self.client_key + ".pub", encoding="utf-8") as handle:
            client_public = handle.read().strip()
        names = [f"{self.prefix}{i}" for i in range(first, first + count)]
        for index, name in enumerate(names):
            fixed = ["--ip", addresses[index]] if addresses else []
            if self.podman("container", "exists", name, check=False).returncode == 0:
                raise FleetError(f"container {name} exists already: podman rm -f {name}")
            self.hosts[name] = Host(name, sudo=name not in no_sudo)
            # DATA: nothing else writes to it, so its growth is exactly what the test writes
            self.podman("run", "-d", "--name", name, "--hostname", name, "--network", network, *fixed, "--init",
                        "--sysctl", "net.ipv4.ping_group_range=0 2147483647",
                        "--mount", f"type=tmpfs,destination={DATA},tmpfs-size=64m",
                        self.image, "/usr/sbin/cron", "-f")
        with open(os.path.join(HERE, "prepare_host.sh"), encoding="utf-8") as handle:
            prepare = handle.read()
        for name in names:
            host = self.hosts[name]
            host.address = self.podman("inspect", "--format",
                                       f'{{{{ (index .NetworkSettings.Networks "{network}").IPAddress }}}}',
                                       name).stdout.strip()
            if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", host.address):
                raise FleetError(f"no address for {name} on {network}: {host.address!r}")
            key_dir = os.path.join(self.ssh_dir, "hosts", name)
            shutil.rmtree(key_dir, ignore_errors=True)  # a fresh container gets a fresh host key
            os.makedirs(key_dir)
            self.keygen(os.path.join(key_dir, "ssh_host_ed25519_key"), name)
            self.podman("cp", os.path.join(key_dir, "ssh_host_ed25519_key"), f"{name}:/etc/ssh/ssh_host_ed25519_key")
            self.podman("exec", "-i", name, "bash", "-s", "--", USER, "nopasswd" if host.sudo else "none",
                        client_public, stdin=prepare)
            log(f"{name}: {host.address}, sshd up, {USER} {'with passwordless sudo' if host.sudo else 'without sudo'}")
        self.write_known_hosts(self.known_hosts)
        for name in names:
            self.wait_for_ssh(self.hosts[name])
        return [self.hosts[n] for n in names]

    def write_known_hosts(self, path: str, wrong_for: Iterable[str] = ()) -> None:
        """known_hosts from the host keys this fleet made; for the hosts in *wrong_for*, a key of nobody's."""
        wrong = set(wrong_for)
        lines = []
        for host in self.hosts.values():
            public = os.path.join(self.ssh_dir, "hosts", host.name, "ssh_host_ed25519_key.pub")
            if host.name in wrong:
                public = os.path.join(self.ssh_dir, "impostor_ed25519.pub")
                if not os.path.exists(public):
                    self.keygen(public[:-4], "impostor")
            with open(public, encoding="utf-8") as handle:
                kind, key = handle.read().split()[:2]
            lines.append(f"{host.address} {kind} {key}\n")
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(lines)

    def ssh_common_args(self, known_hosts: Optional[str] = None) -> str:
        return (f"-o UserKnownHostsFile={known_hosts or self.known_hosts} -o GlobalKnownHostsFile=/dev/null "
                f"-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes")

    def wait_for_ssh(self, host: Host, seconds: float = 15.0) -> None:
        """Log in once as USER with the known_hosts (sshd may still be binding its socket)."""
        deadline = time.monotonic() + seconds
        while True:
            done = subprocess.run(["ssh", "-i", self.client_key, *self.ssh_common_args().split(),
                                   "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"{USER}@{host.address}", "true"],
                                  capture_output=True, text=True, check=False)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise FleetError(f"cannot log in to {host.name} ({host.address}) as {USER}: {done.stderr.strip()}")
            time.sleep(0.3)

    def stop(self, name: str) -> None:
        self.podman("stop", "-t", "0", name)
        self.hosts[name].running = False

    def remove_hosts(self) -> None:
        for name in list(self.hosts):
            self.podman("rm", "-f", "-t", "0", name, check=False)
        self.hosts.clear()

    def exec(self, name: str, *argv: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
        """A command in a container through podman (the test looking in, not the play)."""
        return self.podman("exec", "-i", name, *argv, check=False, stdin=stdin)

    # ---- inventory and plays ---------------------------------------------------------------------

    def inventory(self, path: str, sweeper: str, known_hosts: Optional[str] = None) -> str:
        """The inventory for the hosts now in the fleet, from tests/fleet/inventory.yml.j2."""
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE), undefined=jinja2.StrictUndefined,
                                 trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
        hosts = list(self.hosts.values())
        text = env.get_template("inventory.yml.j2").render(
            hosts=hosts, network=self.network, user=USER, client_key=self.client_key,
            ssh_common_args=self.ssh_common_args(known_hosts), data_mount=DATA,
            report_dir=self.report_dir, state_file=os.path.join(self.report_dir, "fleet-state.json"),
            sweeper=sweeper, targets=[h.address for h in hosts])
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    @property
    def report_dir(self) -> str:
        return os.path.join(self.work, "reports")

    def ansible_env(self, strategy: str, record: str, control_dir: str) -> Dict[str, str]:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(
            PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
            ANSIBLE_HOME=os.path.join(ROOT, ".build", "ansible"),
            ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
            ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
            ANSIBLE_CALLBACKS_ENABLED="fleet_record",
            ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PY_COLORS="0",
            ANSIBLE_PIPELINING="true",  # as docs/fleet.md recommends; sudo must not want a tty
            ANSIBLE_HOST_KEY_CHECKING="true",  # the default, said out loud: whatever the caller's environment says
            ANSIBLE_SSH_CONTROL_PATH_DIR=control_dir,
            FLEET_RECORD=record,
            CONTAINERS_CONF=self.conf,
        )
        if strategy == "mitogen":
            env.update(ANSIBLE_STRATEGY_PLUGINS=mitogen_strategy_dir(), ANSIBLE_STRATEGY="mitogen_linear")
        else:
            env.update(ANSIBLE_STRATEGY="linear")
        return env

    def run(self, name: str, argv: List[str], strategy: str = "linear") -> PlayRun:
        """One ansible command from the repo root, metered; output in WORK/NAME.log, record in WORK/NAME.json."""
        self.runs += 1
        base = os.path.join(self.work, name)
        control_dir = os.path.join(self.work, "cp", str(self.runs))
        os.makedirs(control_dir)
        env = self.ansible_env(strategy, base + ".json", control_dir)
        subprocess.run([sys.executable, os.path.join(HERE, "metered.py"), "--result", base + ".cost.json",
                        "--log", base + ".log", "--control-dir", control_dir, "--",
                        os.path.join(VENV_BIN, argv[0]), *argv[1:]], cwd=ROOT, env=env, check=True)
        with open(base + ".cost.json", encoding="utf-8") as handle:
            cost = json.load(handle)
        return PlayRun(name, cost["rc"], cost["seconds"], cost["user"], cost["sys"], base + ".log", base + ".json",
                       cost["left"])

    def play(self, name: str, inventory: str, strategy: str = "linear", forks: int = 8) -> PlayRun:
        """playbooks/site.yml over the fleet."""
        return self.run(name, ["ansible-playbook", "playbooks/site.yml", "-i", inventory, "--forks", str(forks)],
                        strategy)
