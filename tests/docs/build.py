# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the collection's docs site with antsibull-docs, offline, and fail on any error or warning.

    python tests/docs/build.py [--dest DIR]        (default DIR: .build/docs)

1. ``antsibull-docs lint-collection-docs --plugin-docs`` (every plugin's and the role's
   documentation: schema, markup, references to other plugins);
2. ``antsibull-docs sphinx-init`` and ``antsibull-docs collection`` as the generated
   ``build.sh`` runs them (``--fail-on-error``), then ``sphinx-build -W`` (a warning is an error);
3. checks that the site has a page for every module, plugin and role of the collection.

Offline: Sphinx's intersphinx would download the inventories of docs.python.org and
docs.ansible.com. Our pages refer only to Ansible's (ansible.builtin plugins, the
configuration settings and their environment variables, the common return values), so
the mapping is one local inventory of those targets, written from the installed
ansible-core (:func:`ansible_inventory`) with the URLs intersphinx would have given them.
The site ends up in DIR/build/html.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import zlib
from typing import Iterator, List, Tuple

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
ANSIBLE_DOCS = "https://docs.ansible.com/projects/ansible/devel/"
# The labels of Ansible's own docs that generated plugin pages refer to, and their pages.
FIXED_LABELS = {
    "common_return_values": ("reference_appendices/common_return_values.html#common-return-values",
                             "Return Values"),
    "ansible_configuration_settings": ("reference_appendices/config.html#ansible-configuration-settings",
                                       "Ansible Configuration Settings"),
}
PLUGIN_FOLDERS = {"module": "modules", "filter": "plugins/filter", "test": "plugins/test",
                  "lookup": "plugins/lookup", "inventory": "plugins/inventory", "cache": "plugins/cache",
                  "callback": "plugins/callback", "connection": "plugins/connection", "become": "plugins/become",
                  "strategy": "plugins/strategy", "vars": "plugins/vars", "shell": "plugins/shell"}


def tool(name: str) -> str:
    return shutil.which(name, path=BIN) or shutil.which(name) or sys.exit(f"{name} is missing: run scripts/setup.sh")


def ansible_entries() -> Iterator[Tuple[str, str, str, str]]:
    """(name, domain:role, uri, display name) of every target of Ansible's docs our pages can refer to."""
    import ansible

    base = os.path.dirname(ansible.__file__)
    for label, (uri, title) in FIXED_LABELS.items():
        yield label, "std:label", uri, title
    for kind, folder in PLUGIN_FOLDERS.items():
        for path in sorted(glob.glob(os.path.join(base, folder, "[a-z]*.py"))
                           + glob.glob(os.path.join(base, folder, "[a-z]*.yml"))):
            name = os.path.splitext(os.path.basename(path))[0]
            label = f"ansible_collections.ansible.builtin.{name}_{kind}"
            yield (label, "std:label", f"collections/ansible/builtin/{name}_{kind}.html#{label.replace('.', '-').replace('_', '-')}",
                   f"ansible.builtin.{name} {kind}")
    with open(os.path.join(base, "config", "base.yml"), encoding="utf-8") as handle:
        settings = yaml.safe_load(handle)
    for setting in settings.values():
        for env in setting.get("env") or []:
            yield env["name"], "std:envvar", f"reference_appendices/config.html#envvar-{env['name']}", "-"


def ansible_inventory(path: str) -> int:
    """Write a Sphinx objects.inv (version 2) of :func:`ansible_entries`; returns how many it holds."""
    lines = sorted({f"{name} {role} -1 {uri} {title}" for name, role, uri, title in ansible_entries()})
    header = ("# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
              "# The remainder of this file is compressed using zlib.\n").encode()
    with open(path, "wb") as handle:
        handle.write(header + zlib.compress("\n".join(lines).encode() + b"\n"))
    return len(lines)


def run(argv: List[str], cwd: str) -> None:
    print("$ " + " ".join(argv), flush=True)
    subprocess.run(argv, cwd=cwd, check=True)


def expected_pages() -> List[str]:
    """The page every module, plugin and role of the collection must get."""
    pages = []
    for folder, kind in (("modules", "module"), ("inventory", "inventory"), ("lookup", "lookup")):
        for path in glob.glob(os.path.join(ROOT, "plugins", folder, "[a-z]*.py")):
            pages.append(f"{os.path.splitext(os.path.basename(path))[0]}_{kind}.html")
    for path in glob.glob(os.path.join(ROOT, "plugins", "filter", "[a-z]*.yml")):  # a file may hold several filters
        pages.append(f"{os.path.splitext(os.path.basename(path))[0]}_filter.html")
    pages += [f"{os.path.basename(role)}_role.html" for role in glob.glob(os.path.join(ROOT, "roles", "*"))]
    return sorted(set(pages))


def build(dest: str) -> List[str]:
    """Lint, generate and build the site in *dest*; the expected pages that are missing."""
    antsibull = tool("antsibull-docs")
    run([antsibull, "lint-collection-docs", "--plugin-docs", "--validate-collection-refs", "all",
         "--disallow-unknown-collection-refs", ROOT], ROOT)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    run([antsibull, "sphinx-init", "--use-current", "--fail-on-error", "--dest-dir", dest, "sysops.fleet"], dest)
    inventory = os.path.join(dest, "ansible_devel.inv")
    print(f"local intersphinx inventory of Ansible's docs: {ansible_inventory(inventory)} targets", flush=True)
    with open(os.path.join(dest, "conf.py"), "a", encoding="utf-8") as handle:
        handle.write(f"\n# Offline (tests/docs/build.py): Ansible's targets from a local inventory, nothing fetched.\n"
                     f"intersphinx_mapping = {{'ansible_devel': ({ANSIBLE_DOCS!r}, {inventory!r})}}\n")
    rst = os.path.join(dest, "rst")
    os.makedirs(rst, exist_ok=True)
    os.chmod(rst, 0o755)
    run([antsibull, "--config-file", "antsibull-docs.cfg", "collection", "--cleanup", "everything",
         "--fail-on-error", "--use-current", "--dest-dir", rst, "sysops.fleet"], dest)
    run([tool("sphinx-build"), "-M", "html", rst, os.path.join(dest, "build"), "-c", dest, "-W", "--keep-going",
         "-q"], dest)
    html = os.path.join(dest, "build", "html", "collections", "sysops", "fleet")
    return [page for page in expected_pages() if not os.path.isfile(os.path.join(html, page))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=os.path.join(ROOT, ".build", "docs"))
    args = parser.parse_args()
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, ".build", "collections")
    os.environ["PATH"] = BIN + os.pathsep + os.environ.get("PATH", "")  # antsibull-docs runs ansible-doc
    try:
        missing = build(os.path.abspath(args.dest))
    except subprocess.CalledProcessError as exc:
        print(f"docs: {os.path.basename(exc.cmd[0])} failed (exit {exc.returncode}); see above")
        return 1
    if missing:
        print(f"docs: the site lacks {', '.join(missing)}")
        return 1
    print(f"docs: built without warnings: {os.path.join(os.path.abspath(args.dest), 'build', 'html', 'index.html')} "
          f"({len(expected_pages())} plugin and role pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
