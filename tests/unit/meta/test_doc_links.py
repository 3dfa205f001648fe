# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every relative link and every #anchor in README.md and docs/*.md leads somewhere.

The README is a short quick start that links into ``docs/`` (issue 21), so a moved or renamed
section breaks links nobody sees until a reader follows one. A link is ``[text](target)`` or
``![alt](target)`` outside code; a target with a scheme (``https:``, ``mailto:``) is left alone.
The path must exist, relative to the file that links it and inside the repository; an anchor
must be the GitHub id of a heading (outside code blocks) of the file it points at, or an
explicit ``id``/``name`` attribute there. The checker is itself tested on files with a broken
link of each kind, so it can fail.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FENCE = re.compile(r"^ {0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ID = re.compile(r"<a\s+[^>]*(?:id|name)=\"([^\"]+)\"", re.I)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> Iterator[Tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks: a link or a heading in
    a code block (a ``# comment`` in a shell example) is not one."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif line.strip().startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's id for a heading: the rendered text (link text, code without its backticks, no
    emphasis), lower case, every character but letters, digits, ``_``, ``-`` and space dropped,
    spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: str) -> Set[str]:
    """Every id a link may name in the markdown file *path* (duplicates numbered as GitHub does)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    seen: Dict[str, int] = {}
    found: Set[str] = set()
    for _number, line in prose_lines(text):
        found.update(EXPLICIT_ID.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: str) -> Iterator[Tuple[int, str]]:
    """(line number, target) of every link in the markdown file *path*, outside code."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    for number, line in prose_lines(text):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            yield number, match.group(1)


def broken_links(files: List[str], root: str) -> List[str]:
    """One line per link of *files* that leads nowhere: 'file:line: target: why'."""
    problems = []
    for path in files:
        where = os.path.relpath(path, root)
        for number, target in links(path):
            if SCHEME.match(target):
                continue
            file_part, _hash, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if os.path.commonpath([os.path.abspath(dest), root]) != root:
                problems.append(f"{where}:{number}: {target}: outside the repository")
            elif not os.path.exists(dest):
                problems.append(f"{where}:{number}: {target}: {os.path.relpath(dest, root)} does not exist")
            elif anchor and not dest.endswith(".md"):
                problems.append(f"{where}:{number}: {target}: an anchor into a file that is not markdown")
            elif anchor and anchor not in anchors(dest):
                problems.append(f"{where}:{number}: {target}: no heading of {os.path.relpath(dest, root)} "
                                f"has the id {anchor!r}")
    return problems


def documentation_files() -> List[str]:
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def test_every_relative_link_and_anchor_of_the_readme_and_docs_resolves():
    files = documentation_files()
    assert len(files) > 1, "docs/*.md are gone: the README links into them"
    assert sum(1 for path in files for _link in links(path)) > 20, "hardly any link found: is the link pattern broken?"
    assert broken_links(files, ROOT) == []


def test_every_docs_page_is_linked_from_the_readme():
    readme = os.path.join(ROOT, "README.md")
    linked = {os.path.normpath(os.path.join(ROOT, target.partition("#")[0])) for _number, target in links(readme)}
    assert [path for path in documentation_files()[1:] if path not in linked] == []


@pytest.mark.parametrize("heading, expected", [
    ("## ping_sweep", "ping_sweep"),
    ("## The sweep inventory (`sysops.fleet.sweep`)", "the-sweep-inventory-sysopsfleetsweep"),
    ("### Security model: who runs what, who owns what, what root trusts",
     "security-model-who-runs-what-who-owns-what-what-root-trusts"),
    ("### Metrics for Prometheus (`watcher_textfile_dir`)", "metrics-for-prometheus-watcher_textfile_dir"),
    ("### The watcher role's molecule scenarios", "the-watcher-roles-molecule-scenarios"),
    ("## The fleet: `playbooks/site.yml` and `fleet_report`", "the-fleet-playbookssiteyml-and-fleet_report"),
    ("## See [the docs](docs/x.md) **now**", "see-the-docs-now"),
])
def test_heading_ids_are_githubs(heading, expected, tmp_path):
    page = tmp_path / "page.md"
    page.write_text(heading + "\n")
    assert expected in anchors(str(page))


def test_the_checker_finds_every_kind_of_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## Count mode: loss\n\n## Twice\n\n## Twice\n\n<a id=\"kept\"></a>\n\n"
        "```sh\n# not a heading\n[not a link](nowhere.md)\n```\n\nBack to [the start](../README.md#start).\n")
    (tmp_path / "CHANGELOG.rst").write_text("Changelog\n")
    (tmp_path / "README.md").write_text(
        "# Start\n\n"
        "[ok](docs/guide.md) [ok](docs/guide.md#count-mode-loss) [ok](docs/guide.md#twice-1) [ok](docs/guide.md#kept)\n"
        "[ok](#start) [ok](CHANGELOG.rst) [ok](docs/) [ok](https://example.com/x.md#nowhere) `[code](gone.md)`\n"
        "[missing file](docs/gone.md)\n"
        "[missing anchor](docs/guide.md#count-mode)\n"
        "[missing here](#quick-start)\n"
        "[heading in a code block](docs/guide.md#not-a-heading)\n"
        "[third twice](docs/guide.md#twice-2)\n"
        "[anchor into rst](CHANGELOG.rst#changelog)\n"
        "[outside](../elsewhere.md)\n")
    files = [str(tmp_path / "README.md"), str(tmp_path / "docs" / "guide.md")]
    problems = broken_links(files, str(tmp_path))
    assert [p.split(": ")[0] + ": " + p.split(": ")[1] for p in problems] == [
        "README.md:5: docs/gone.md",
        "README.md:6: docs/guide.md#count-mode",
        "README.md:7: #quick-start",
        "README.md:8: docs/guide.md#not-a-heading",
        "README.md:9: docs/guide.md#twice-2",
        "README.md:10: CHANGELOG.rst#changelog",
        "README.md:11: ../elsewhere.md",
    ], problems
