# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make ``ansible_collections.sysops.fleet`` importable when pytest runs from a clone.

Under ``ansible-test units`` the collection already sits in an
``ansible_collections`` tree; from a plain clone, scripts/setup.sh links it
under .build/collections.
"""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")

try:
    import ansible_collections.sysops.fleet  # noqa: F401  pylint: disable=unused-import
except ImportError:
    sys.path.insert(0, COLLECTIONS)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "alone: times something to the millisecond or reads numbers other tests change (df, timeouts "
                   "of a few seconds); scripts/test.sh runs these after the others, one at a time")
