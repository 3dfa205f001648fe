# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``sysops.fleet.watcher_settings_problem`` filter: what fleet-watcher would say of a settings file's text
(docs in watcher_settings_problem.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.sysops.fleet.plugins.module_utils import _watcher


def watcher_settings_problem(text, path="watcher.ini"):
    """The message fleet-watcher would refuse *text* with, or an empty string: the watcher role checks the settings
    file it would write with the daemon's own reader, before it touches the host."""
    if not isinstance(text, str):
        raise AnsibleFilterError(f"sysops.fleet.watcher_settings_problem: expected the text of a settings file, "
                                 f"got {type(text).__name__}")
    try:
        _watcher.settings_from_text(text, str(path), on_target=False)  # the target's own files are its to check
    except _watcher.WatcherConfigError as exc:
        return str(exc)
    return ""


class FilterModule:
    """Filters of the sysops.fleet collection."""

    def filters(self):
        return {"watcher_settings_problem": watcher_settings_problem}
