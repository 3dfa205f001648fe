# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a certifier checks in a release, and what an installed collection must carry.

* changelogs/changelog.yaml has a release entry for galaxy.yml's version, with a summary;
  CHANGELOG.rst is what antsibull-changelog makes of it; the README links it;
* every version_added (plugins, their options and return values, the role) names a release of
  the changelog, no later than galaxy.yml's version, and every plugin and the role have one;
* the GPL-3.0 text the file headers point to is there, and is that licence's text;
* the built tarball carries the licence, the changelog and the example inventory, and the
  example documents every setting of playbooks/site.yml.
"""

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
LICENCE = os.path.join("LICENSES", "GPL-3.0-or-later.txt")
# sha256 of the GNU GPL v3 text as the FSF publishes it (https://www.gnu.org/licenses/gpl-3.0.txt).
GPL3_SHA256 = "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"
TYPES = {"modules": "module", "filter": "filter", "inventory": "inventory", "lookup": "lookup"}


def tool(name):
    return shutil.which(name, path=BIN) or shutil.which(name)


def load(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def version_key(version):
    return tuple(int(p) for p in version.split("."))


def test_the_changelog_has_a_release_entry_for_galaxy_version():
    version = load("galaxy.yml")["version"]
    releases = load("changelogs", "changelog.yaml")["releases"]
    assert version in releases, f"changelogs/changelog.yaml has no release {version} (galaxy.yml's version)"
    assert releases[version]["changes"].get("release_summary"), "the release has no release_summary"
    assert all(version_key(v) <= version_key(version) for v in releases), "a release newer than galaxy.yml's"


def test_changelog_rst_is_what_antsibull_changelog_makes(tmp_path):
    if not tool("antsibull-changelog"):
        pytest.skip("antsibull-changelog is not installed here (it is in .venv)")
    copy = tmp_path / "collection"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", ".build", "tests", "*.tar.gz"))
    subprocess.run([tool("antsibull-changelog"), "generate"], cwd=copy, check=True, capture_output=True,
                   env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections")))
    made = (copy / "CHANGELOG.rst").read_text(encoding="utf-8")
    with open(os.path.join(ROOT, "CHANGELOG.rst"), encoding="utf-8") as handle:
        assert handle.read() == made, "CHANGELOG.rst is stale: run antsibull-changelog generate (or release)"
    lint = subprocess.run([tool("antsibull-changelog"), "lint"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr


def test_the_readme_links_the_changelog():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    section = re.search(r"^## Changelog\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section and "(CHANGELOG.rst)" in section.group(1)
    assert os.path.isfile(os.path.join(ROOT, "CHANGELOG.rst"))


@functools.lru_cache(maxsize=None)
def documentation():
    """{'type name': ansible-doc --json entry} of every plugin and the role."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"))
    docs = {}
    wanted = {"role": [f"sysops.fleet.{r}" for r in os.listdir(os.path.join(ROOT, "roles"))]}
    for folder, kind in TYPES.items():
        wanted[kind] = sorted({f"sysops.fleet.{os.path.splitext(n)[0]}" for n in os.listdir(os.path.join(ROOT, "plugins", folder))
                               if n.endswith(".yml" if kind == "filter" else (".py", ".yml")) and not n.startswith("_")})
    for kind, names in wanted.items():
        out = subprocess.run([tool("ansible-doc"), "--json", "-t", kind] + names, capture_output=True, text=True,
                             env=env, cwd=ROOT, check=True, timeout=300).stdout
        docs.update({f"{kind} {name}": entry for name, entry in json.loads(out).items()})
    return docs


def versions_added(node, path=""):
    """(where, version_added) of every version_added of this collection under *node* (doc fragments of
    ansible.builtin bring theirs, marked with their own version_added_collection)."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "version_added":
                if node.get("version_added_collection", "sysops.fleet") == "sysops.fleet":
                    yield where, str(value)
            else:
                yield from versions_added(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from versions_added(value, f"{path}[{i}]")


def test_every_plugin_and_the_role_say_when_they_were_added():
    for name, entry in documentation().items():
        if name.startswith("role "):
            for point, spec in entry["entry_points"].items():
                assert spec.get("version_added"), f"{name} entry point {point} has no version_added"
        else:
            assert entry["doc"].get("version_added"), f"{name} has no version_added"


def test_every_version_added_is_a_release_no_later_than_galaxy_version():
    version = load("galaxy.yml")["version"]
    releases = set(load("changelogs", "changelog.yaml")["releases"])
    seen = 0
    for name, entry in documentation().items():
        for where, added in versions_added(entry):
            seen += 1
            assert added in releases and version_key(added) <= version_key(version), (
                f"{name}: {where} is {added}; the changelog's releases are {sorted(releases)}, galaxy.yml says {version}")
    assert seen >= len(documentation())


def test_the_licence_the_headers_point_to_is_the_gpl_3_text():
    with open(os.path.join(ROOT, LICENCE), "rb") as handle:
        text = handle.read()
    assert text.lstrip().startswith(b"GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007")
    assert hashlib.sha256(text).hexdigest() == GPL3_SHA256
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    pointers = set()
    for path in tracked or []:
        if path.endswith((".py", ".sh", ".yml", ".j2")) and os.path.isfile(os.path.join(ROOT, path)):
            with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as handle:
                pointers.update(re.findall(r"GNU General Public License v3\.0\+ \(see (\S+) or", handle.read(4000)))
    assert pointers, "no file header points to a licence file"
    for pointer in pointers:
        assert os.path.isfile(os.path.join(ROOT, pointer)), f"file headers point to {pointer}, which is missing"


@pytest.fixture(scope="module")
def tarball_names(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    subprocess.run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(out), ROOT], cwd=str(out),
                   check=True, capture_output=True, env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(out)))
    [tarball] = [p for p in out.iterdir() if p.name.endswith(".tar.gz")]
    with tarfile.open(tarball) as archive:
        return set(archive.getnames())


@pytest.mark.parametrize("path", [LICENCE, "CHANGELOG.rst", "changelogs/changelog.yaml",
                                  "inventory/example/hosts.yml", "inventory/example/group_vars/all.yml",
                                  "playbooks/site.yml"])
def test_the_built_collection_carries(path, tarball_names):
    assert path in tarball_names


def test_the_built_collection_leaves_out_the_clones_own_inventory(tarball_names):
    assert "inventory/localhost.yml" not in tarball_names  # its report directory is inside the clone


def site_settings():
    """The variables playbooks/site.yml reads with a default: its settings."""
    with open(os.path.join(ROOT, "playbooks", "site.yml"), encoding="utf-8") as handle:
        return sorted(set(re.findall(r"(?<!\| )(?<![.\w])([a-z][a-z0-9_]*) \| default\(", handle.read())))


def test_the_example_inventory_documents_every_setting_of_site_yml():
    with open(os.path.join(ROOT, "inventory", "example", "group_vars", "all.yml"), encoding="utf-8") as handle:
        example = handle.read()
    role = load("roles", "watcher", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    settings = site_settings()
    assert {"fleet_state_file", "fleet_mail_from", "fleet_smtp_port", "fleet_spool_dir", "sweep_rate"} <= set(settings)
    for name in settings:
        if name.startswith("watcher_"):
            assert name in role, f"site.yml reads {name}, which the watcher role does not document"
        else:
            assert re.search(rf"^(# )?{name}:", example, re.M), f"inventory/example/group_vars/all.yml lacks {name}"
