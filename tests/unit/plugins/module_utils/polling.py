# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waiting in tests for something another process does: poll, with a deadline that names what was awaited."""

import time


def wait_for(condition, seconds, what):
    """The first true value *condition()* gives within *seconds*; AssertionError naming *what* after that."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
