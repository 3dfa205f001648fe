# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""One real root system install of the watcher for the whole attack suite, removed (and checked gone) at the end."""

import os

import pytest

import root_install

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a root system install needs root")


@pytest.fixture(scope="session")
def system_install():
    if os.geteuid() != 0:
        pytest.skip("a root system install needs root")
    if os.path.exists(root_install.BIN) and not os.environ.get("SYSOPS_FLEET_ATTACK_REUSE"):
        root_install.remove()
    root_install.play()
    yield
    root_install.remove()
    left = [p for p in root_install.LEFTOVERS if os.path.lexists(p)]
    assert not left, f"absent left {left}"
    assert not root_install.user_exists(), "absent removed the daemon's user"
