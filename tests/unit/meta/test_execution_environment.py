# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Execution environments: what ansible-builder finds in the built collection, and the build context it makes.

Offline: the collection is built and installed from its own tarball; no
image is built and nothing is pulled. The air-gapped definition's galaxy
and builder stages are replayed on this machine the way its Containerfile
runs them, so the test sees the bindep.txt an image would install.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from bindep.depends import Depends

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)


def tool(name):
    return shutil.which(name, path=BIN) or shutil.which(name) or pytest.fail(f"{name} is missing: run scripts/setup.sh")


def run(argv, cwd, **env):
    """Run outside the clone (its ansible.cfg would make the clone itself the installed collection)."""
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, **env))
    assert proc.returncode == 0, f"{argv}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The collection tarball and the collection installed from it: (tarball, collections path)."""
    work = tmp_path_factory.mktemp("ee")
    installed = work / "installed"
    run([tool("ansible-galaxy"), "collection", "build", ROOT, "--output-path", str(work)], work,
        ANSIBLE_COLLECTIONS_PATH=str(installed))
    [tarball] = [work / n for n in os.listdir(work) if n.endswith(".tar.gz")]
    run([tool("ansible-galaxy"), "collection", "install", "-p", str(installed), str(tarball)], work,
        ANSIBLE_COLLECTIONS_PATH=str(installed))
    return tarball, installed


def our_bindep_lines():
    with open(os.path.join(ROOT, "meta", "ee-bindep.txt"), encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def introspect(folder, work, *extra):
    out = run([tool("ansible-builder"), "introspect", "--sanitize", str(folder), *extra], work)
    return yaml.safe_load(out[out.index("---"):])


def test_introspect_finds_our_system_packages_and_no_python_requirement(built, tmp_path):
    tarball, installed = built
    meta = installed / "ansible_collections" / "sysops" / "fleet" / "meta"
    assert {"execution-environment.yml", "ee-bindep.txt", "ee-requirements.txt"} <= set(os.listdir(meta)), \
        "the dependency files are in the tarball (not build_ignored)"
    found = introspect(installed, tmp_path)
    assert found["python"] == [], "nothing beyond ansible-core"
    assert found["system"] == [f"{line}  # from collection sysops.fleet" for line in our_bindep_lines()]
    assert [line.split()[0] for line in our_bindep_lines()] == ["iputils-ping", "iputils", "coreutils"]


@pytest.mark.parametrize("profiles, packages", [
    (["platform:dpkg", "platform:debian"], ["iputils-ping", "coreutils"]),
    (["platform:dpkg", "platform:ubuntu"], ["iputils-ping", "coreutils"]),
    (["platform:rpm", "platform:centos", "platform:redhat"], ["iputils", "coreutils"]),
    (["platform:rpm", "platform:fedora"], ["iputils", "coreutils"]),
])
def test_bindep_picks_the_packages_of_each_platform(profiles, packages):
    with open(os.path.join(ROOT, "meta", "ee-bindep.txt"), encoding="utf-8") as handle:
        depends = Depends(handle.read())
    rules = depends.active_rules(profiles)
    assert [rule[0] for rule in rules] == packages


def test_bindep_finds_nothing_missing_here():
    """This Debian machine has what the file asks for (scripts/setup.sh installs iputils-ping)."""
    out = run([tool("bindep"), "--brief", "--file", os.path.join(ROOT, "meta", "ee-bindep.txt")], ROOT)
    assert out.strip() == ""


def readme_definition():
    with open(os.path.join(ROOT, "docs", "execution_environments.md"), encoding="utf-8") as handle:
        match = re.search(r"<!-- execution environment -->\s*```yaml\n(.*?)```", handle.read(), re.S)
    assert match, "docs/execution_environments.md has no execution environment definition"
    return yaml.safe_load(match.group(1))


def create(definition, work, files=()):
    for path in files:
        shutil.copy(path, work)
    (work / "execution-environment.yml").write_text(yaml.safe_dump(definition))
    run([tool("ansible-builder"), "create", "--file", "execution-environment.yml", "--context", "context"], work)
    return work / "context"


def test_create_makes_the_build_context_of_the_readme_definition(tmp_path):
    definition = readme_definition()
    assert definition["version"] == 3
    context = create(definition, tmp_path)
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream10"' in containerfile
    assert "ansible-core>=2.16,<2.22" in containerfile
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements == {"collections": [{"name": "sysops.fleet"}]}


def test_an_air_gapped_build_installs_our_tarball_and_our_system_packages(built, tmp_path):
    tarball = built[0]
    definition = readme_definition()
    definition["dependencies"]["galaxy"] = {"collections": [{"name": f"collections/{tarball.name}", "type": "file"}]}
    definition["additional_build_files"] = [{"src": tarball.name, "dest": "collections"}]
    context = create(definition, tmp_path, [tarball])
    build = context / "_build"
    assert (build / "collections" / tarball.name).read_bytes() == tarball.read_bytes()
    containerfile = (context / "Containerfile").read_text()
    # the galaxy stage: WORKDIR /build (the context's _build), then the collection install
    assert re.search(r"COPY _build /build\nWORKDIR /build\n", containerfile)
    image = tmp_path / "image"
    collections = image / "usr" / "share" / "ansible" / "collections"
    run([tool("ansible-galaxy"), "collection", "install", "-r", "requirements.yml", "--collections-path",
         str(collections)], build, ANSIBLE_COLLECTIONS_PATH=str(collections))
    # the builder stage: the context's own introspect script writes what the final stage installs
    assert "introspect.py introspect --write-bindep=/tmp/src/bindep.txt --write-pip=/tmp/src/requirements.txt" \
        in containerfile
    out = image / "tmp" / "src"
    out.mkdir(parents=True)
    run([sys.executable, str(build / "scripts" / "introspect.py"), "introspect", str(collections),
         f"--write-bindep={out / 'bindep.txt'}", f"--write-pip={out / 'requirements.txt'}"], build)
    assert (out / "bindep.txt").read_text().splitlines() == [
        f"{line}  # from collection sysops.fleet" for line in our_bindep_lines()]
    assert not (out / "requirements.txt").exists(), "no Python requirement to install"
