# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read an HTML page into a small tree (stdlib html.parser) and list what would break it in a mail client.

``mail_problems(page)`` is the rule book of the reports' HTML: an HTML5
document with its charset; nothing that runs or loads (no script, style
sheet, image, frame, form, event handler, ``url(...)``); no presentational
attributes HTML5 dropped; every table a data table with a header row of
``th`` (or a layout table marked ``role="presentation"``); every cell with
its own inline style, aligned as its column's header; and tags that nest
and close as written. An empty list is a page that passes.
"""

import html.parser
import re
from typing import Dict, List, Optional

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
FORBIDDEN = {"script", "style", "link", "iframe", "frame", "object", "embed", "img", "svg", "math", "form", "input",
             "button", "base", "video", "audio", "source", "canvas", "noscript", "template"}
OBSOLETE = {"align", "bgcolor", "border", "cellpadding", "cellspacing", "width", "height", "valign", "face", "color",
            "background", "nowrap"}
LOADS = re.compile(r"url\s*\(|@import|expression\s*\(|javascript:", re.IGNORECASE)


class Node:
    """An element: tag, attributes, children (nodes and text) and its parent."""

    def __init__(self, tag: str, attrs: Dict[str, Optional[str]], parent: Optional["Node"] = None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: List[object] = []

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    @property
    def style(self) -> Dict[str, str]:
        """The inline style as property -> value (the last one wins, as in CSS)."""
        found = {}
        for declaration in (self.attrs.get("style") or "").split(";"):
            name, sep, value = declaration.partition(":")
            if sep:
                found[name.strip().lower()] = value.strip()
        return found

    def find_all(self, tag: str) -> List["Node"]:
        out = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag:
                    out.append(child)
                out.extend(child.find_all(tag))
        return out

    def elements(self) -> List["Node"]:
        out = []
        for child in self.children:
            if isinstance(child, Node):
                out.append(child)
                out.extend(child.elements())
        return out

    def kids(self, tag: str) -> List["Node"]:
        return [c for c in self.children if isinstance(c, Node) and c.tag == tag]

    def ancestor(self, tag: str) -> Optional["Node"]:
        node = self.parent
        while node is not None and node.tag != tag:
            node = node.parent
        return node


class _Builder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.here = self.root
        self.errors: List[str] = []
        self.doctype: Optional[str] = None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.here)
        self.here.children.append(node)
        if tag not in VOID:
            self.here = node

    def handle_startendtag(self, tag, attrs):
        self.here.children.append(Node(tag, dict(attrs), self.here))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if self.here.tag != tag:
            self.errors.append(f"</{tag}> closes <{self.here.tag}>")
            node = self.here
            while node is not None and node.tag != tag:
                node = node.parent
            if node is None:
                return
            self.here = node
        self.here = self.here.parent or self.root

    def handle_data(self, data):
        self.here.children.append(data)


def parse(page: str):
    """The document's root node, its doctype and the tags that did not nest or close as written."""
    builder = _Builder()
    builder.feed(page)
    builder.close()
    if builder.here is not builder.root:
        builder.errors.append(f"<{builder.here.tag}> is never closed")
    return builder.root, builder.doctype, builder.errors


def header_of(cell: Node) -> Optional[Node]:
    """The ``th`` over a body cell (colspans counted), or None for a cell of a layout table."""
    table = cell.ancestor("table")
    row = cell.parent
    if table is None or row is None or table.attrs.get("role") == "presentation":
        return None
    heads = [th for thead in table.kids("thead")[:1] for th in thead.find_all("th")]
    column = 0
    for sibling in row.kids("td"):
        if sibling is cell:
            break
        column += int(sibling.attrs.get("colspan") or 1)
    return heads[column] if column < len(heads) else None


def mail_problems(page: str) -> List[str]:
    """Everything in *page* that breaks the rules above; empty when it is fine."""
    root, doctype, problems = parse(page)
    problems = list(problems)
    if not page.startswith("<!DOCTYPE html>") or (doctype or "").lower() != "doctype html":
        problems.append("the page does not start with <!DOCTYPE html>")
    htmls = root.kids("html")
    if len(htmls) != 1 or not htmls[0].attrs.get("lang"):
        problems.append("one <html lang=...> element expected")
        return problems
    head = htmls[0].kids("head")
    first = [c for c in head[0].children if isinstance(c, Node)][:1] if head else []
    if not first or first[0].tag != "meta" or (first[0].attrs.get("charset") or "").lower() != "utf-8":
        problems.append("<head> must start with <meta charset=\"utf-8\">")
    if not head or not [t for t in head[0].kids("title") if t.text.strip()]:
        problems.append("no <title>")
    if len(htmls[0].kids("body")) != 1:
        problems.append("one <body> expected")
    for node in root.elements():
        where = f"<{node.tag}>"
        if node.tag in FORBIDDEN:
            problems.append(f"{where} runs or loads something, or is not for mail")
        for name, value in node.attrs.items():
            if name.startswith("on") or name in ("src", "href", "srcset", "action", "formaction", "background"):
                problems.append(f"{where} has {name}=: nothing may run or load")
            elif name in OBSOLETE:
                problems.append(f"{where} has the presentational attribute {name}= (obsolete in HTML5)")
            if value and LOADS.search(value):
                problems.append(f"{where} {name}= loads or runs something: {value[:80]}")
        if node.tag in ("td", "th") and not node.attrs.get("style"):
            problems.append(f"{where} without an inline style: {node.text[:40]!r}")
    for table in root.find_all("table"):
        if table.attrs.get("role") == "presentation":
            if table.find_all("th"):
                problems.append("a layout table (role=presentation) with header cells")
            continue
        heads = table.kids("thead")
        if len(heads) != 1 or len(heads[0].kids("tr")) != 1 or not heads[0].find_all("th") or \
                heads[0].find_all("td"):
            problems.append(f"a data table without one header row of <th>: {table.text[:60]!r}")
            continue
        for body in table.kids("tbody"):
            for tr in body.kids("tr"):
                width = sum(int(td.attrs.get("colspan") or 1) for td in tr.kids("td"))
                if width != len(heads[0].find_all("th")):
                    problems.append(f"a row of {width} columns under {len(heads[0].find_all('th'))} headers")
                for td in tr.kids("td"):
                    th = header_of(td)
                    if th is not None and int(td.attrs.get("colspan") or 1) == 1 and \
                            td.style.get("text-align") != th.style.get("text-align"):
                        problems.append(f"{td.text[:30]!r} is aligned {td.style.get('text-align')}, its column "
                                        f"{th.text!r} {th.style.get('text-align')}")
    return problems


def rows(table: Node) -> List[Node]:
    return [tr for body in table.kids("tbody") for tr in body.kids("tr")]


def headers(table: Node) -> List[str]:
    return [th.text for th in table.kids("thead")[0].find_all("th")]


def table_after(root: Node, heading_start: str) -> Node:
    """The first data table after the heading whose text starts with *heading_start*."""
    seen = False
    for node in root.elements():
        if node.tag in ("h1", "h2") and node.text.startswith(heading_start):
            seen = True
        elif seen and node.tag == "table" and node.attrs.get("role") != "presentation":
            return node
    raise AssertionError(f"no table after a heading {heading_start!r}")
