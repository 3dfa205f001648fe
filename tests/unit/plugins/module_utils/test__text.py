# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""_text: any outside text becomes one printable line, and two different names never look alike."""

import os
import unicodedata

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.sysops.fleet.plugins.module_utils import _text


@pytest.mark.parametrize("raw,shown", [
    ("/srv/data", "/srv/data"),
    ("/media/My Disk", "/media/My Disk"),
    (b"/mnt/\xff\xfe", "/mnt/\\xff\\xfe"),
    ("/mnt/a\nb", "/mnt/a\\nb"),
    ("/mnt/a\rb", "/mnt/a\\rb"),
    ("/mnt/\x1b[2J", "/mnt/\\x1b[2J"),
    ("/mnt/a\u2028b\x85c\xa0d", "/mnt/a\\u2028b\\u0085c\\u00a0d"),
    (b"/mnt/\xc2\x85|\x85", "/mnt/\\u0085|\\x85"),
    ("/mnt/a\\nb", "/mnt/a\\\\nb"),
    ("caf\u00e9", "caf\u00e9"),
    ("/srv/data ", "/srv/data\\x20"),  # beside /srv/data
    (" data", "\\x20data"),
    ("cafe\u0301", "cafe\\u0301"),  # the decomposed caf\u00e9
    ("\u0926\u0947\u0935\u0928\u093e\u0917\u0930\u0940", "\u0926\u0947\u0935\u0928\u093e\u0917\u0930\u0940"),  # composed: kept
    ("Ti\u1ebfng Vi\u1ec7t", "Ti\u1ebfng Vi\u1ec7t"),
])
def test_outside_text_is_shown_escaped(raw, shown):
    assert _text.printable(raw) == shown


def test_a_long_value_is_cut_with_an_ellipsis():
    assert _text.printable("x" * 50, limit=10) == "x" * 9 + "\u2026"
    assert _text.words("550-no\r\n550 such\tuser  here", 12) == "550-no 550 \u2026"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_become_one_printable_line(raw):
    shown = _text.printable(raw)
    assert shown.isprintable()
    assert len(shown.splitlines()) <= 1


# Pieces that an escape is made of, so that collisions are looked for where they could hide.
_PIECES = st.lists(st.sampled_from([b"\\", b"x", b"u", b"0", b"8", b"5", b"n", b"\n", b"\xc2\x85", b"\x85",
                                    b"\xff", b"\xe2\x80\xa8", b"\x1b", b" ", b"2", b"e", b"3", b"1",
                                    b"\xcc\x81", b"\xc3\xa9"]), max_size=8).map(b"".join)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=24), _PIECES), st.one_of(st.binary(max_size=24), _PIECES))
def test_two_different_names_never_look_alike(a, b):
    if a != b:
        assert _text.printable(a) != _text.printable(b)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=64))
def test_any_text_becomes_one_printable_line_and_printable_text_is_kept(text):
    shown = _text.printable(text)
    assert shown.isprintable() and len(shown.splitlines()) <= 1
    if text.isprintable() and "\\" not in text and text.strip(" ") == text and unicodedata.is_normalized("NFC", text):
        assert shown == text
    assert not shown.startswith(" ") and not shown.endswith(" ")
    assert _text.words(text).isprintable()


def test_bytes_are_decoded_as_the_file_system_does():
    raw = b"/mnt/\xc3\xa9t\xe9"
    assert _text.printable(raw) == "/mnt/\u00e9t\\xe9" and os.fsencode(os.fsdecode(raw)) == raw


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=24))
def test_names_a_reader_would_see_as_one_print_differently(text):
    """The same letters composed and decomposed, or with a space more at an end, are told apart on the page."""
    variants = {text, unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text), text + " ", " " + text}
    assert len({_text.printable(v) for v in variants}) == len(variants)
