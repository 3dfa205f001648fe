# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ansible-core versions the collection claims are exactly the ones it is tested with.

``requires_ansible`` (meta/runtime.yml) must admit every "claimed" version of
tests/matrix/versions.txt and nothing else; the claimed versions run without a gap from
the oldest to the newest; .venv (requirements-dev.txt) is the newest; the lower bound is one
Automation Hub certifies. Each test fails if one of those files drifts from the others.
"""

import os
import re

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# The oldest ansible-core Automation Hub's certification accepts as requires_ansible's lower bound
# (AAP's supported ansible-core versions; 2.14 and 2.15 are out of support).
OLDEST_CERTIFIABLE = Version("2.16")


def matrix():
    """{version: tier} of tests/matrix/versions.txt."""
    found = {}
    with open(os.path.join(ROOT, "tests", "matrix", "versions.txt"), encoding="utf-8") as handle:
        for line in handle:
            fields = line.split("#", 1)[0].split()
            if fields:
                assert len(fields) == 4 and fields[3] in ("claimed", "compat"), f"malformed line: {line!r}"
                found[fields[0]] = fields[3]
    return found


def claimed():
    return sorted((v for v, tier in matrix().items() if tier == "claimed"), key=Version)


def requires_ansible():
    with open(os.path.join(ROOT, "meta", "runtime.yml"), encoding="utf-8") as handle:
        return SpecifierSet(yaml.safe_load(handle)["requires_ansible"])


def test_requires_ansible_admits_exactly_the_claimed_versions():
    spec = requires_ansible()
    for minor in range(9, 40):
        version = f"2.{minor}"
        admitted = [spec.contains(f"{version}.{patch}") for patch in (0, 5, 99)]
        assert len(set(admitted)) == 1, f"requires_ansible {spec} admits only part of {version}"
        assert admitted[0] == (version in claimed()), (
            f"requires_ansible {spec} {'admits' if admitted[0] else 'refuses'} ansible-core {version}, "
            f"but tests/matrix/versions.txt {'claims' if version in claimed() else 'does not claim'} it")


def test_compat_versions_are_outside_requires_ansible():
    spec = requires_ansible()
    for version, tier in matrix().items():
        if tier == "compat":
            assert not spec.contains(f"{version}.0"), f"{version} is compat (tested, unclaimed) but admitted"


def test_claimed_versions_have_no_gap():
    versions = [Version(v) for v in claimed()]
    assert versions, "tests/matrix/versions.txt claims no version"
    wanted = [Version(f"2.{m}") for m in range(versions[0].minor, versions[-1].minor + 1)]
    assert versions == wanted, f"every minor from the oldest to the newest is tested: {claimed()}"


def test_lower_bound_is_a_full_version_automation_hub_certifies():
    spec = requires_ansible()
    lower = [s for s in spec if s.operator == ">="]
    assert len(lower) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", lower[0].version), (
        f"requires_ansible needs one lower bound written as a full version (>=2.16.0): {spec}")
    assert Version(lower[0].version) >= OLDEST_CERTIFIABLE, f"{spec}: certification needs >={OLDEST_CERTIFIABLE}.0"
    assert lower[0].version == f"{claimed()[0]}.0"


def test_dev_venv_is_the_newest_claimed_version():
    with open(os.path.join(ROOT, "requirements-dev.txt"), encoding="utf-8") as handle:
        [line] = [text.strip() for text in handle if re.match(r"ansible-core\b", text)]
    spec = SpecifierSet(line[len("ansible-core"):])
    newest = claimed()[-1]
    admitted = sorted({f"2.{m}" for m in range(9, 40) if spec.contains(f"2.{m}.0") or spec.contains(f"2.{m}.9")})
    assert admitted == [newest], f"requirements-dev.txt's {line} must be the newest claimed ({newest}) alone"
