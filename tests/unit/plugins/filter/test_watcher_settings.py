# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sysops.fleet.watcher_settings_problem filter: fleet-watcher's own reader on a settings file's text, which
the watcher role runs on the file it would write before it touches the host."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.sysops.fleet.plugins.filter import watcher_settings as plugin

CHECK = plugin.FilterModule().filters()["watcher_settings_problem"]
HEAD = "[watcher]\ninterval = 60\npidfile = /run/w.pid\nlog_file = /var/log/w.log\nstate_dir = /var/lib/w\n"


@pytest.mark.parametrize("body,message", [
    ("[hosts]\nwatch = 127.0.0.1\n", ""),
    ("[hosts]\nwatch = 127.0.0.1\ncount = 20\nspacing = 10\n",
     "[hosts] count=20 at spacing=10 would take about 3.2 minutes (the last timeout included): not less than "
     "[watcher] interval = 60 s, so every round would run into the next (and outlast a systemd watchdog). Lower "
     "count or spacing, or raise interval"),
    ("[hosts]\nwatch = db1\n[host 10.0.0.1]\nloss_warn = 5\n",
     "[host 10.0.0.1]: '10.0.0.1' is not one watched host of [hosts] watch (a name given there, or one address it "
     "covers)"),
    ("[hosts]\nwatch = 127.0.0.1\ndown_after = 2.5\n", "[hosts] down_after must be a whole number, got '2.5'"),
    ("[host db1\n]\n", "cannot read settings file /etc/w.ini: Source contains parsing errors"),
    ("[mail]\nsmtp_ca_file = /etc/ssl/only-on-the-target.pem\n", ""),     # the target's file: the daemon checks it
])
def test_the_message_is_the_daemons_own(body, message):
    said = CHECK(HEAD + body, "/etc/w.ini")
    assert said.startswith(message) and bool(said) == bool(message), said


def test_anything_but_text_is_an_error_of_the_filter():
    with pytest.raises(AnsibleFilterError, match="expected the text of a settings file, got dict"):
        CHECK({"hosts": {}})
