# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Import the built collection tarball the way Galaxy does: galaxy-importer, offline.

    python tests/galaxy/import_check.py [--keep DIR]

Builds the tarball with ``ansible-galaxy collection build`` from this clone,
runs ``python -m galaxy_importer.main`` on it with Galaxy's defaults except
``ansible_local_tmp`` (ansible-test is off by default there, and ansible-lint
runs offline), and fails unless:

* the import succeeds (exit 0, ``importer_result.json`` written);
* the importer logged no ERROR, and no WARNING but the ones in ``ACCEPTED``;
* every module and the role are in the result, each module with its rendered
  documentation and the role with its README (Galaxy refuses a role without one).

Prints the importer's log and a one-line verdict.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULES = ("ping_sweep", "disk_report", "fleet_report")
ROLES = ("watcher",)
# WARNINGs we accept, each with the reason. None: requires_ansible's lower bound (2.16.0) is
# one galaxy-importer's ansible-lint counts as supported (meta-runtime[unsupported-version]
# would warn about a 2.14 or 2.20 lower bound).
ACCEPTED = {}


def build(out_dir: str) -> str:
    subprocess.run(["ansible-galaxy", "collection", "build", "--force", "--output-path", out_dir, ROOT],
                   check=True, stdout=subprocess.DEVNULL)
    (tarball,) = glob.glob(os.path.join(out_dir, "*.tar.gz"))
    return tarball


def run_importer(tarball: str, work: str) -> subprocess.CompletedProcess:
    config = os.path.join(work, "galaxy-importer.cfg")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(f"[galaxy-importer]\nANSIBLE_LOCAL_TMP = {os.path.join(work, 'ansible-tmp')}\n")
    env = dict(os.environ, GALAXY_IMPORTER_CONFIG=config)
    return subprocess.run([sys.executable, "-m", "galaxy_importer.main", tarball], cwd=work, env=env,
                          capture_output=True, text=True, check=False)


def problems(proc: subprocess.CompletedProcess, result) -> list:
    found = []
    if proc.returncode != 0 or result is None:
        found.append(f"the import failed (exit {proc.returncode}, no importer_result.json)")
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith("ERROR"):
            found.append(line)
        elif line.startswith("WARNING") and not any(tag in line for tag in ACCEPTED):
            found.append(line)
    if result is None:
        return found
    contents = {(c["content_type"], c["name"]) for c in result.get("contents", [])}
    docs = {(c["content_type"], c["content_name"]): c for c in result.get("docs_blob", {}).get("contents", [])}
    for module in MODULES:
        if ("module", module) not in contents:
            found.append(f"module {module} is not in the import")
        elif not (docs.get(("module", module)) or {}).get("doc_strings"):
            found.append(f"module {module} has no rendered documentation")
    for role in ROLES:
        if ("role", role) not in contents:
            found.append(f"role {role} is not in the import")
        elif not (docs.get(("role", role)) or {}).get("readme_html"):
            found.append(f"role {role} has no README in the import")
    if not result.get("docs_blob", {}).get("collection_readme", {}).get("html"):
        found.append("the collection README did not render")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="keep the tarball and the importer's result in this directory")
    args = parser.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="sysops-fleet-galaxy-")
    os.makedirs(work, exist_ok=True)
    try:
        tarball = build(work)
        proc = run_importer(tarball, work)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        result_file = os.path.join(work, "importer_result.json")
        result = None
        if os.path.exists(result_file):
            with open(result_file, encoding="utf-8") as handle:
                result = json.load(handle)
        found = problems(proc, result)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if found:
        print(f"galaxy-importer: {os.path.basename(tarball)} REFUSED or not clean:")
        for item in found:
            print(f"  - {item}")
        return 1
    accepted = ", ".join(f"{tag} ({why})" for tag, why in ACCEPTED.items()) or "none"
    print(f"galaxy-importer: {os.path.basename(tarball)} imported: {len(MODULES)} modules with docs, "
          f"role README, no errors; warnings accepted: {accepted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
