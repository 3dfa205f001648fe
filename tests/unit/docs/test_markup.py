# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The documentation's markup says what its authors meant, in every plugin and in the role.

Each text of each plugin's and the role's documentation, as ``ansible-doc --json`` hands it
out (doc fragments merged), is parsed with antsibull-docs-parser, the parser of the docs
site and of ansible-doc's own semantic markup. A text fails when:

* it does not parse (strict mode);
* the text of a C(), V() or O(name=value) part has unbalanced parentheses: the markup ended
  at a ``)`` that belonged to the text (``C(ssl.create_default_context())`` shows
  ``ssl.create_default_context(`` and a stray ``)``);
* a code part is followed by an apostrophe: ansible-doc prints code between quotes
  (```df'``), so ``C(df)'s`` reads ```df''s``;
* it refers to a plugin of this collection that does not exist as that type
  (``M(sysops.fleet.watcher)``, which is a role).
"""

import functools
import json
import os
import shutil
import subprocess
import sys

import pytest

parser = pytest.importorskip("antsibull_docs_parser.parser")
dom = pytest.importorskip("antsibull_docs_parser.dom")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
TYPES = {"modules": "module", "filter": "filter", "inventory": "inventory", "lookup": "lookup"}
TEXT_KEYS = ("description", "short_description", "notes", "details", "returned", "requirements")


def ours():
    """{(name, type)} of every plugin and role of the collection."""
    found = {(os.path.basename(role), "role") for role in os.listdir(os.path.join(ROOT, "roles"))}
    for folder, kind in TYPES.items():
        for name in os.listdir(os.path.join(ROOT, "plugins", folder)):
            stem, ext = os.path.splitext(name)
            if ext in (".py", ".yml") and not stem.startswith("_") and stem != "__init__":
                if kind == "filter" and ext == ".py":
                    continue  # a filter file may hold several filters: each is its sidecar NAME.yml
                found.add((stem, kind))
    return found


@functools.lru_cache(maxsize=None)
def documentation():
    """{(name, type): doc dict} from ansible-doc --json, as a user's ansible-doc reads them."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"))
    docs = {}
    kinds = sorted({kind for name, kind in ours()})
    for kind in kinds:
        names = [f"sysops.fleet.{name}" for name, k in sorted(ours()) if k == kind]
        ansible_doc = shutil.which("ansible-doc", path=BIN) or shutil.which("ansible-doc")
        proc = subprocess.run([ansible_doc, "--json", "-t", kind] + names, capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=300, check=True)
        for fqcn, entry in json.loads(proc.stdout).items():
            docs[(fqcn.rsplit(".", 1)[-1], kind)] = entry
    return docs


def texts(node, path=""):
    """(where, text) of every documentation string under *node*."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key in TEXT_KEYS:
                for i, text in enumerate([value] if isinstance(value, str) else value or []):
                    if isinstance(text, str):
                        yield f"{where}[{i}]", text
            else:
                yield from texts(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from texts(value, f"{path}[{i}]")


def problems(text, plugin, known):
    """What is wrong with the markup of one text, as sentences."""
    try:
        entrypoint = "main" if plugin.type == "role" else None  # the role's one entry point
        paragraphs = parser.parse(text, parser.Context(current_plugin=plugin, role_entrypoint=entrypoint), strict=True)
    except ValueError as exc:
        return [f"does not parse: {exc}"]
    found = []
    for paragraph in paragraphs:
        for part, after in zip(paragraph, list(paragraph[1:]) + [None]):
            if isinstance(part, dom.ErrorPart):
                found.append(f"does not parse: {part.message}")
            shown = getattr(part, "text", None) if isinstance(part, dom.CodePart) else getattr(part, "value", None)
            if shown and shown.count("(") != shown.count(")"):
                found.append(f"{type(part).__name__} {shown!r} has unbalanced parentheses (C() ends at the first "
                             "')': reword; in V() and O() write the closing one as '\\)')")
            if isinstance(part, dom.CodePart) and isinstance(after, dom.TextPart) and after.text.startswith("'"):
                found.append(f"C({part.text}) is followed by an apostrophe (ansible-doc shows `{part.text}'')")
            target = (part.fqcn, "module") if isinstance(part, dom.ModulePart) else (
                (part.plugin.fqcn, part.plugin.type) if isinstance(part, dom.PluginPart) else None)
            if target and target[0].startswith("sysops.fleet.") and (target[0][13:], target[1]) not in known:
                found.append(f"refers to the {target[1]} {target[0]}, which the collection does not have")
    return found


def test_every_plugin_and_the_role_is_documented():
    assert set(documentation()) == ours()


@pytest.mark.parametrize("name,kind", sorted(ours()))
def test_markup_reads_as_meant(name, kind):
    entry = documentation()[(name, kind)]
    plugin = dom.PluginIdentifier(fqcn=f"sysops.fleet.{name}", type=kind)
    bad = [f"{where}: {problem}: {text!r}" for where, text in texts(entry) for problem in problems(text, plugin, ours())]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("text,problem", [
    ("Verify it (C(ssl.create_default_context())).", "unbalanced parentheses"),
    ("The timeouts of C(df)'s children.", "followed by an apostrophe"),
    ("The part of the M(sysops.fleet.watcher) role.", "does not have"),
    ("Set O(rate=f(x)).", "unbalanced parentheses"),
    ("Set V(f(x)).", "unbalanced parentheses"),
    ("An unclosed C(code.", "does not parse"),
])
def test_each_kind_of_broken_markup_is_found(text, problem):
    plugin = dom.PluginIdentifier(fqcn="sysops.fleet.ping_sweep", type="module")
    assert any(problem in p for p in problems(text, plugin, ours())), problems(text, plugin, ours())


def test_sound_markup_passes():
    plugin = dom.PluginIdentifier(fqcn="sysops.fleet.ping_sweep", type="module")
    text = "As Python's C(ssl.create_default_context) does; see P(sysops.fleet.watcher#role), O(targets) and V(f(x\\))."
    assert problems(text, plugin, ours()) == []
