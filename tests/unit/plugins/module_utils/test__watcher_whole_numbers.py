# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whole numbers in watcher.ini (an outside tester's findings on issue 20): a 4,300-digit number gave a traceback
(Python's int-string limit) and was quoted whole; ``[hosts]`` count, retries, workers, concurrency and max_hosts
went through ``int()`` and took ``٤``, ``1_0`` and ``+5``; concurrency and max_hosts had no upper bound;
``timeout = 1e-320`` was accepted; two spellings of one IPv6 address in ``[host ...]`` sections silently dropped
one. A table of values and the message each gets, and hypothesis over arbitrary strings for each whole-number
setting: never a traceback, accepted exactly when ASCII digits in range."""

import re
import textwrap

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _watcher

BASE = """
[watcher]
interval = 86400
pidfile = /nonexistent-sysops-fleet/w.pid
log_file = /nonexistent-sysops-fleet/w.log
state_dir = /nonexistent-sysops-fleet
[hosts]
watch = 127.0.0.1
spacing = 0.002
"""


def read(extra):
    return _watcher.settings_from_text(BASE + textwrap.dedent(extra), "/nonexistent-sysops-fleet/watcher.ini")


# key -> (lowest, highest) accepted, and how to read the value back
RANGES = {"count": (1, 10000), "retries": (0, 10), "workers": (1, 256), "concurrency": (1, 65536),
          "max_hosts": (1, 1 << 22), "clear_after": (1, 60)}


def value_of(found, key):
    return found.debounce.clear_after if key == "clear_after" else getattr(found.sweep, key)


TABLE = [
    ("count", "\u0664", "[hosts] count must be a whole number, got '\u0664' (the digits 0-9 only)"),
    ("count", "\uff14", "[hosts] count must be a whole number, got '\uff14' (the digits 0-9 only)"),
    ("count", "1_0", "[hosts] count must be a whole number, got '1_0' (the digits 0-9 only)"),
    ("count", "+5", "[hosts] count must be a whole number, got '+5' (the digits 0-9 only)"),
    ("retries", "-1", "[hosts] retries must be a whole number, got '-1' (the digits 0-9 only)"),
    ("workers", "0x10", "[hosts] workers must be a whole number, got '0x10' (the digits 0-9 only)"),
    ("count", "9" * 5000, "[hosts] count is out of range: 5000 digits, got '" + "9" * 39 + "\u2026'"),
    ("clear_after", "9" * 5000, "[hosts] clear_after is out of range: 5000 digits, got '" + "9" * 39 + "\u2026'"),
    ("concurrency", "65537", "[hosts] concurrency must be at most 65536, got 65537"),
    ("concurrency", "10000000000000000000000", "[hosts] concurrency is out of range: 23 digits"),
    ("max_hosts", "4194305", "[hosts] max_hosts must be at most 4194304, got 4194305"),
    ("timeout", "1e-320", "[hosts] timeout must be a number, got '1e-320' (the digits 0-9 and one decimal point only)"),
    ("timeout", "0.00000000001", "[hosts] timeout must be at least 0.001 seconds (no reply comes sooner), got"),
    ("timeout", "0.0009", "[hosts] timeout must be at least 0.001 seconds (no reply comes sooner), got 0.0009"),
]


@pytest.mark.parametrize("key,value,message", TABLE)
def test_hostile_numbers_get_a_message_naming_the_key(key, value, message):
    with pytest.raises(_watcher.WatcherConfigError) as refused:
        read(f"{key} = {value}\n")
    assert str(refused.value).startswith(message), str(refused.value)
    assert len(str(refused.value)) < 300, "a long value is cut, not quoted whole"


def test_a_huge_number_elsewhere_is_refused_cut_too():
    with pytest.raises(_watcher.WatcherConfigError) as refused:
        read("\n[mail]\nsmtp_port = " + "9" * 5000 + "\n")
    assert str(refused.value).startswith("[mail] smtp_port is out of range: 5000 digits") and len(str(refused.value)) < 300


def test_the_edges_of_each_range_are_accepted():
    for key, (low, high) in RANGES.items():
        for value in (low, high, "0" * 30 + str(high)):
            assert value_of(read(f"{key} = {value}\n"), key) == int(value), (key, value)
    assert read("timeout = 0.001\n").sweep.timeout == 0.001


@pytest.mark.parametrize("sections", [
    "[host 2001:db8::1]\nrtt_warn = 5\n[host 2001:DB8:0::1]\nrtt_warn = 9\n",
    "[host ::1]\nrtt_warn = 5\n[host 0:0::1]\nrtt_warn = 9\n",
])
def test_two_spellings_of_one_address_are_refused_not_one_dropped(sections):
    text = BASE.replace("watch = 127.0.0.1", "watch = 2001:db8::1 ::1") + sections
    with pytest.raises(_watcher.WatcherConfigError) as refused:
        _watcher.settings_from_text(text, "/nonexistent-sysops-fleet/watcher.ini")
    assert "is the host of another [host ...] section" in str(refused.value)
    assert "keep one section per host" in str(refused.value)


def test_an_ipv6_section_spelled_once_is_accepted_under_its_canonical_address():
    text = BASE.replace("watch = 127.0.0.1", "watch = 2001:db8::1 ::1") + "[host 2001:DB8:0::1]\nrtt_warn = 5\n"
    found = _watcher.settings_from_text(text, "/nonexistent-sysops-fleet/watcher.ini")
    assert found.limits_for("2001:db8::1", "2001:db8::1").rtt_warn == 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(sorted(RANGES)), raw=st.one_of(
    st.text(max_size=30), st.from_regex(r"\A[+-]?[0-9_]{1,25}\Z"), st.integers(-10, 1 << 23).map(str)))
@example(key="count", raw="9" * 5000)
@example(key="max_hosts", raw="\u0664")
def test_any_text_is_accepted_exactly_when_it_is_ascii_digits_in_range(key, raw):
    line = f"{key} = {raw}\n"
    if "\n" in raw or "\r" in raw or not raw.strip():
        return  # a line break starts another line; an empty value is the default
    low, high = RANGES[key]
    digits = raw.strip()
    expected = bool(re.fullmatch(r"[0-9]+", digits)) and len(digits.lstrip("0")) < 20 and low <= int(digits) <= high
    try:
        found = read(line)
    except _watcher.WatcherConfigError as exc:
        assert not expected, (key, raw, str(exc))
        assert key in str(exc)
        return
    assert expected, (key, raw)
    assert value_of(found, key) == int(digits)


# ---- numbers with a decimal point: seconds, percentages, milliseconds (float() took '٤', '1_0', '+5', '1e3', 'inf') --

def read_number(key, raw):
    """Settings with *raw* as the value of *key*, in its own section; the value read back."""
    if key == "interval":
        found = _watcher.settings_from_text(BASE.replace("interval = 86400", f"interval = {raw}"),
                                            "/nonexistent-sysops-fleet/watcher.ini")
        return found.interval
    if key == "smtp_timeout":
        found = read(f"\n[mail]\nsmtp_timeout = {raw}\n")
        return found.report.mail.smtp.timeout
    found = read(f"{key} = {raw}\n")
    return found.host_limits.rtt_crit if key == "rtt_crit" else getattr(found.sweep, key)


DECIMAL_TABLE = [
    ("interval", "\u0664", "[watcher] interval must be a number, got '\u0664' (the digits 0-9 and one decimal point only)"),
    ("timeout", "1_0", "[hosts] timeout must be a number, got '1_0'"),
    ("rate", "+5", "[hosts] rate must be a number, got '+5'"),
    ("smtp_timeout", "1e2", "[mail] smtp_timeout must be a number, got '1e2'"),
    ("smtp_timeout", "inf", "[mail] smtp_timeout must be a number, got 'inf'"),
    ("rate", "nan", "[hosts] rate must be a number, got 'nan'"),
    ("rtt_crit", "\uff15", "[hosts] rtt_crit must be a number or off, got '\uff15'"),
    ("interval", "9" * 5000, "[watcher] interval is out of range: 5000 characters, got '" + "9" * 39 + "\u2026'"),
    ("timeout", "1.2.3", "[hosts] timeout must be a number, got '1.2.3'"),
]


@pytest.mark.parametrize("key,value,message", DECIMAL_TABLE)
def test_hostile_decimal_numbers_get_a_message_naming_the_key(key, value, message):
    with pytest.raises(ValueError) as refused:
        read_number(key, value)
    assert str(refused.value).startswith(message), str(refused.value)
    assert len(str(refused.value)) < 300


@pytest.mark.parametrize("key,value,expected", [("interval", "2.5", 2.5), ("timeout", ".5", 0.5),
                                                ("rate", "3.", 3.0), ("smtp_timeout", " 45 ", 45.0),
                                                ("rtt_crit", "0250.5", 250.5)])
def test_plain_decimals_are_read(key, value, expected):
    assert read_number(key, value) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(["interval", "timeout", "rate", "smtp_timeout", "rtt_crit"]), raw=st.one_of(
    st.text(max_size=30), st.from_regex(r"\A[+-]?[0-9_.eE]{1,25}\Z"),
    st.floats(min_value=0, max_value=1e6, allow_nan=False).map(str)))
@example(key="interval", raw="\u0664")
@example(key="smtp_timeout", raw="Infinity")
def test_any_text_as_a_decimal_setting_is_accepted_only_when_plain_ascii(key, raw):
    if "\n" in raw or "\r" in raw or not raw.strip() or raw.strip().lower() in ("off", "none"):
        return  # a line break starts another line; an empty value is the default; off is rtt_crit's word
    try:
        value = read_number(key, raw)
    except ValueError as exc:  # WatcherConfigError (and the rules' and sweep's own, its kin)
        assert key in str(exc), (key, raw, str(exc))
        return
    assert re.fullmatch(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", raw.strip()), (key, raw, value)
    assert value == float(raw.strip())


@pytest.mark.parametrize("value", ["+5", "1_0", "\u0665", "\uff15", "-0", "0o22", "\u0660\u0662\u0662", "8", "00777 1"])
def test_umask_takes_octal_digits_only(value):
    with pytest.raises(_watcher.WatcherConfigError, match=r"\[watcher\] umask must be octal such as 022"):
        _watcher.settings_from_text(BASE.replace("[watcher]\n", f"[watcher]\numask = {value}\n"),
                                    "/nonexistent-sysops-fleet/watcher.ini")
    found = _watcher.settings_from_text(BASE.replace("[watcher]\n", "[watcher]\numask = 027\n"),
                                        "/nonexistent-sysops-fleet/watcher.ini")
    assert found.umask == 0o027


def test_a_clear_margin_a_warn_could_never_clear_by_is_refused():
    with pytest.raises(_watcher.WatcherConfigError, match=r"clear_margin \(45\) must be below the lowest warn "
                                                          r"threshold \(30\)"):
        read("\n[disk]\nwarn = 30\nclear_margin = 45\n")
    assert read("\n[disk]\nwarn = 30\nclear_margin = 29\n").disk_margin == 29
    assert read("\n[disk]\nwarn = 1\ncrit = 100\n").disk_margin == 0.5, "the default margin under a warn of 1"
