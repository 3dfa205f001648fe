# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sysops.fleet.addresses filter: ping_sweep's ranges back into addresses."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.sysops.fleet.plugins.filter import addresses as plugin


def test_ranges_become_the_sorted_addresses():
    expand = plugin.FilterModule().filters()["addresses"]
    assert expand(["127.0.0.9,1-2", "::1", "127.0.0.2"]) == ["127.0.0.1", "127.0.0.2", "127.0.0.9", "::1"]
    assert expand("127.0.0.1-2") == ["127.0.0.1", "127.0.0.2"]
    assert expand([]) == []


@pytest.mark.parametrize("value,kwargs,message", [
    ({"alive": []}, {}, "expected a list of ranges (a ping_sweep result's alive_ranges or dead_ranges), got dict"),
    (["localhost"], {}, "'localhost' is a host name"),
    (["10.0.0.0/8"], {}, "brings the total to 16777214 addresses, more than max_hosts=65536"),
    (["10.0.0.0/24"], {"max_hosts": 10}, "more than max_hosts=10"),
    (["127.0.0.1;id"], {}, "contains ';'"),
    ([7], {}, "7 is not a string"),
])
def test_hostile_input_is_an_ansible_filter_error(value, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plugin.addresses(value, **kwargs)
