# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
name: watcher_zipapp
short_description: The fleet-watcher program and the collection's core as one reproducible zipapp
version_added: "0.1.0"
description:
  - Builds C(fleet-watcher) on the controller as one executable zip archive (PEP 441 zipapp) holding
    the collection's core (the C(_*.py) files of C(plugins/module_utils)) as the package
    C(sysops_fleet_core) and a C(__main__.py) that runs the command, and returns the archive's path.
  - The archive is byte-for-byte reproducible (a fixed first line, files in name order, fixed timestamps
    and modes, stored without compression so that no zlib version changes a byte), so copying it to a
    host changes nothing when neither the core nor the options changed, whichever controller built it.
  - Built once per run and per set of options, in Ansible's local temporary directory.
  - The C(sysops.fleet.watcher) role installs it as C(/opt/sysops-fleet/bin/fleet-watcher), one file per
    host and one task, where the core used to be one file (and one task) per module.
author:
  - sysops.fleet maintainers (@sysops)
options:
  _terms:
    description: Not used.
    required: false
  interpreter:
    description: The Python 3.9+ on the target that runs the program (its first line, C(#!INTERPRETER -I)).
    type: str
    required: true
  config:
    description: The settings file the program reads unless told otherwise (C(--config)).
    type: str
    default: /etc/sysops-fleet/watcher.ini
  output:
    description:
      - V(path) returns the path of the archive, written to Ansible's local temporary directory.
      - V(base64) returns the archive itself, base64-encoded, for a module that takes the content
        (M(sysops.fleet.watcher_files)).
    type: str
    choices: [path, base64]
    default: path
"""

EXAMPLES = r"""
- name: Install fleet-watcher
  ansible.builtin.copy:
    src: "{{ lookup('sysops.fleet.watcher_zipapp', interpreter='/usr/bin/python3') }}"
    dest: /opt/sysops-fleet/bin/fleet-watcher
    mode: "0755"
"""

RETURN = r"""
_raw:
  description: The path of the archive on the controller, or its base64-encoded content.
  type: list
  elements: str
"""

import base64
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile

from ansible import constants as C
from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.sysops.fleet.plugins.module_utils import _command as _core_anchor

PACKAGE = "sysops_fleet_core"
INIT = (b"# The sysops.fleet collection's core (plugins/module_utils), packed by the\n"
        b"# sysops.fleet.watcher_zipapp lookup. Do not edit: the watcher role replaces it.\n")
MAIN = '''# fleet-watcher: the sysops.fleet watcher (start, stop, status, run, check, report, sweep).
# Built by the sysops.fleet.watcher_zipapp lookup; see fleet-watcher --help.
import os
import sys

sys.path[0] = os.path.abspath(sys.path[0])  # the daemon changes to / before it imports the rest
from sysops_fleet_core import _watcher_cli  # noqa: E402

_watcher_cli.entry_point(default_config={config})
'''
_EPOCH = (1980, 1, 1, 0, 0, 0)
_INTERPRETER = re.compile(r"^/[^\s]+$")

display = Display()


def members(core_dir: str, config: str):
    """(archive name, content) of every file of the program, in name order."""
    names = sorted(n for n in os.listdir(core_dir) if n.startswith("_") and n.endswith(".py") and n != "__init__.py")
    files = [("__main__.py", MAIN.format(config=json.dumps(config)).encode("utf-8")),
             (f"{PACKAGE}/__init__.py", INIT)]
    for name in names:
        with open(os.path.join(core_dir, name), "rb") as handle:
            files.append((f"{PACKAGE}/{name}", handle.read()))
    return files


def build(interpreter: str, files) -> bytes:
    """The program's bytes: the same interpreter and files always give the same bytes."""
    buffer = io.BytesIO()
    buffer.write(f"#!{interpreter} -I\n".encode("utf-8"))
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:  # after the first line, as zipapp does
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # Unix, whatever the controller
            archive.writestr(info, data)
    return buffer.getvalue()


_BUILT = {}  # digest of the program's bytes -> path, for this run


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        interpreter, config = self.get_option("interpreter"), self.get_option("config")
        if not _INTERPRETER.match(interpreter or ""):
            raise AnsibleLookupError(f"interpreter must be an absolute path without blanks, got {interpreter!r}")
        if not os.path.isabs(config or ""):
            raise AnsibleLookupError(f"config must be an absolute path, got {config!r}")
        core_dir = os.path.dirname(os.path.abspath(_core_anchor.__file__))
        data = build(interpreter, members(core_dir, config))
        if self.get_option("output") == "base64":
            return [base64.b64encode(data).decode("ascii")]
        digest = hashlib.sha256(data).hexdigest()[:16]
        path = _BUILT.get(digest)
        if path and os.path.isfile(path):
            return [path]
        try:
            fd, path = tempfile.mkstemp(dir=C.DEFAULT_LOCAL_TMP, prefix=f"fleet-watcher-{digest}-", suffix=".pyz")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise AnsibleLookupError(f"cannot write the fleet-watcher program to {C.DEFAULT_LOCAL_TMP}: {exc}") from exc
        _BUILT[digest] = path
        display.vvv(f"sysops.fleet.watcher_zipapp: built {path} ({len(data)} bytes)")
        return [path]
