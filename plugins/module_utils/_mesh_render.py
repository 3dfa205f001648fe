# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The mesh in the fleet report: its findings as sentences, and its matrix as text and as an HTML grid.

PRIVATE to the sysops.fleet collection. Pure standard library.

The findings lead the report: each is a word (``DOWN``, ``BLIND``,
``CUT``, ``ONE-WAY``, ``LOSSY``) and a sentence naming the hosts. The
matrix follows, hosts in the mesh's order, so that the sides of a cut
are blocks (a rule is drawn between them). A mail of 500 x 500 cells is
no report, so above MATRIX_SHOWN hosts only the hosts that findings name
are drawn (the whole matrix is in the module's result, ``mesh.rows``).
Host names come from the inventory: shown as one printable line in the
text, escaped in the HTML.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import _fleet_inputs, _html, _mesh, _text

MATRIX_SHOWN = 60  # hosts drawn in the matrix; above, only those named in findings
NAMES_LISTED = 20  # names of one side or one finding's list written out; the rest counted
NAME_WIDTH = 32  # columns of a host name in the text matrix; names cut or escaped alike end in ~1, ~2, ...
LABELS = {"down": "DOWN", "blind": "BLIND", "cut": "CUT", "one_way": "ONE-WAY", "lossy": "LOSSY"}
STATUS = {"down": "crit", "cut": "crit", "blind": "warn", "one_way": "warn", "lossy": "warn"}
# cell character -> (background, ink, what it means)
CELLS = {_mesh.REACHED: ("#c8e6c9", "#1b5e20", "reached"), _mesh.LOSSY: ("#f9a825", "#1f2328", "lossy"),
         _mesh.SILENT_CELL: ("#c62828", "#ffffff", "silent"), _mesh.UNKNOWN: ("#e0e0e0", "#57606a", "not probed"),
         _mesh.SELF: ("#ffffff", "#9e9e9e", "itself")}
KEY = "row probes column: o reached, ~ lossy, x silent, ? not probed"
BLOCK_RULE = "3px solid #1f2328"


def _names(hosts: Sequence[str]) -> str:
    shown = [_fleet_inputs.shown(h) for h in hosts[:NAMES_LISTED]]
    more = len(hosts) - NAMES_LISTED
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def label(f: Mapping[str, Any]) -> str:
    """A finding's word in the report: a host silent to every prober that Ansible reached is no host down."""
    return "NO PING" if f.get("answers_ansible") else LABELS[f["kind"]]


def status(f: Mapping[str, Any]) -> str:
    return "warn" if f.get("answers_ansible") else STATUS[f["kind"]]


def sentence(f: Mapping[str, Any]) -> str:
    """What a finding says, in one line: the hosts and the evidence."""
    kind = f["kind"]
    if kind == "down" and f.get("answers_ansible"):
        return (f"{_names(f['hosts'])}: silent to all {f['probed_by']} hosts that probed it, but Ansible reached it: "
                "up, and pings to it are dropped (a firewall on it or on its way in)")
    if kind == "down":
        return f"{_names(f['hosts'])}: silent to all {f['probed_by']} hosts that probed it, and it did not sweep"
    if kind == "blind":
        alive = f" ({f['alive_elsewhere']} of them reached by another prober)" if "alive_elsewhere" in f else ""
        return (f"{_names(f['hosts'])}: reaches {f['reaches']} of the {f['probed']} hosts it probed{alive}, while "
                f"{f['reached_by']} of {f['probed_by']} reach it: its own way out is at fault")
    if kind == "cut":
        sides = " | ".join(_names(side) for side in f["sides"])
        return f"split in {len(f['sides'])}: {sides}: no host reaches one on another side, either way"
    pairs = f["pairs"]
    if f.get("maybe_blind"):
        return _untold(f)
    at = _fleet_inputs.shown(f["at"])
    froms = [p["from"] for p in pairs]
    tos = [p["to"] for p in pairs]
    if kind == "one_way":
        if set(tos) == {f["at"]}:
            return f"at {at}: {_names(froms)} cannot reach {at}, which reaches them"
        if set(froms) == {f["at"]}:
            return (f"at {at}: {at} cannot reach {_names(tos)}, which {'reaches' if len(tos) == 1 else 'reach'} it"
                    + _outlier(f))
        return f"at {at}: " + _pair_list(pairs) + " fail, the other way works"
    return (f"at {at}: {len(pairs)} {'pair loses' if len(pairs) == 1 else 'pairs lose'} {f['loss_pct']:g}% of "
            f"their probes (median): " + _pair_list(pairs, loss=True))


def _untold(f: Mapping[str, Any]) -> str:
    """A one_way that may be its prober's blindness: both causes named, neither host blamed."""
    host = _fleet_inputs.shown(f["maybe_blind"])
    tos = _names([p["to"] for p in f["pairs"]])
    one = len(f["pairs"]) == 1
    causes = (f"{host} cannot reach {tos}, which {'reaches' if one else 'reach'} it: either {host}'s own way out is "
              f"at fault (blind) or {tos} {'drops' if one else 'drop'} what {host} sends; ")
    if not f.get("alive_elsewhere"):
        return causes + (f"too few probers to tell (a third prober, or {_mesh.MIN_PEERS} hosts that another prober "
                         f"reaches, would)")
    if f["alive_elsewhere"] < _mesh.MIN_PEERS:  # the share alone would blame it: the count is too small
        return causes + (f"cannot tell which: {host} reaches {f['reaches']} of the {f['alive_elsewhere']} other "
                         f"host(s) it probed that another prober reaches, and at least {_mesh.MIN_PEERS} such hosts "
                         "are needed to blame it")
    return causes + (f"cannot tell which: {host} reaches {f['reaches']} of the {f['alive_elsewhere']} other hosts it "
                     f"probed that another prober reaches (more than half would clear it, at most "
                     f"{_mesh.BLIND_SHARE:.0%} would blame it)")


def _outlier(f: Mapping[str, Any]) -> str:
    """The evidence that a one_way is its prober's own way out: it reaches (almost) none of the hosts others reach."""
    if "alive_elsewhere" not in f:
        return ""
    return (f"; its own way out is at fault: it reaches {f['reaches']} of the {f['alive_elsewhere']} other hosts it "
            f"probed that another prober reaches")


def _pair_list(pairs: Sequence[Mapping[str, Any]], loss: bool = False) -> str:
    shown = [f"{_fleet_inputs.shown(p['from'])} -> {_fleet_inputs.shown(p['to'])}"
             + (f" {p['loss_pct']:g}%" if loss else "") for p in pairs[:NAMES_LISTED]]
    more = len(pairs) - NAMES_LISTED
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def heading(mesh: Mapping[str, Any], findings: Sequence[Any]) -> str:
    s = mesh["summary"]
    return (f"Mesh findings ({len(findings)}), {s['hosts']} hosts, {s['sweepers']} probing, "
            f"{s['pairs']} pairs measured")


def none_found(mesh: Mapping[str, Any]) -> str:
    s = mesh["summary"]
    if not s["pairs"]:
        return "none: no mesh host's sweep was passed (no pair measured)"
    return f"none: {s['reached']} of {s['pairs']} pairs answered, {s['silent']} silent, none of it a fault"


def shown_hosts(mesh: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]) -> List[int]:
    """Indexes (in the mesh's order) of the hosts the matrix draws: all, or above MATRIX_SHOWN those named."""
    order = mesh["hosts"]
    if len(order) <= MATRIX_SHOWN:
        return list(range(len(order)))
    named = {h for f in findings for h in f["hosts"]}
    return [i for i, h in enumerate(order) if h in named][:MATRIX_SHOWN]


def matrix_note(mesh: Mapping[str, Any], shown: Sequence[int]) -> str:
    total = len(mesh["hosts"])
    if len(shown) == total:
        return ""
    return (f"{len(shown)} of the {total} hosts drawn (those the findings name); every row is in the "
            f"module's result, mesh.rows")


def _side_starts(mesh: Mapping[str, Any], findings: Sequence[Mapping[str, Any]], shown: Sequence[int]) -> List[bool]:
    """For each drawn host, whether it starts a new side of the fleet-wide cut (a rule goes before it)."""
    cut = next((f for f in findings if f["kind"] == "cut" and "at" not in f), None)  # fleet-wide, not a pair's
    side_of: Dict[str, int] = {}
    if cut is not None:
        side_of = {h: i for i, side in enumerate(cut["sides"]) for h in side}
    order = mesh["hosts"]
    starts, previous = [], None
    for i in shown:
        side = side_of.get(order[i], -1)
        starts.append(previous is not None and side != previous)
        previous = side
    return starts


def text_lines(mesh: Optional[Mapping[str, Any]], findings: Sequence[Mapping[str, Any]]) -> List[str]:
    """The findings section and the matrix, as text lines (empty without a mesh)."""
    if not mesh:
        return []
    lines = [heading(mesh, findings) + ":"]
    lines += [f"  {label(f):<8} {sentence(f)}" for f in findings] or [f"  {none_found(mesh)}"]
    shown = shown_hosts(mesh, findings)
    if not shown:
        return lines + [""]
    order = mesh["hosts"]
    labels = row_labels([order[i] for i in shown])
    width = max(_text.columns(label) for label in labels)
    starts = _side_starts(mesh, findings, shown)
    lines += ["", f"Mesh ({KEY}; | and --- between the sides of a cut):"]
    note = matrix_note(mesh, shown)
    if note:
        lines.append(f"  {note}")
    for row_at, i in enumerate(shown):
        if starts[row_at]:
            lines.append("  " + " " * (width + 1) + "-" * (len(shown) + sum(starts)))
        cells = "".join(("|" if starts[col_at] else "") + mesh["rows"][i][j] for col_at, j in enumerate(shown))
        lines.append(f"  {_padded(labels[row_at], width)} {cells}")
    return lines + [""]


def row_labels(hosts: Sequence[str]) -> List[str]:
    """The text matrix's row names: each shown and cut to NAME_WIDTH columns, names that read alike told apart.

    Two long names that share their first NAME_WIDTH columns would read
    as one host twice (web-frontend-eu-west-1a-000001-prod, ...-000002-prod),
    and so would a name holding a line break beside one holding a backslash
    and an n (both shown ``a\\nb``). A label that another row also has ends
    in the smallest ~N that no other row has (as in PROGRA~1), unless it is
    the host's very name (short and printable), which is never changed.
    """
    shown = [_fleet_inputs.shown(host) for host in hosts]
    cut = [_cut(text, NAME_WIDTH) for text in shown]
    alike = Counter(cut)
    kept = [alike[label] == 1 or label == host for label, host in zip(cut, hosts)]
    taken = {label for label, keep in zip(cut, kept) if keep}
    labels = []
    for text, label, keep in zip(shown, cut, kept):
        if not keep:
            number = 1
            while _numbered(text, number) in taken:
                number += 1
            label = _numbered(text, number)
            taken.add(label)
        labels.append(label)
    return labels


def _numbered(text: str, number: int) -> str:
    return _cut(text, NAME_WIDTH - len(f"~{number}")) + f"~{number}"


def _cut(text: str, width: int) -> str:
    """The longest start of *text* that takes at most *width* columns (``_text.columns``)."""
    if _text.columns(text) <= width:
        return text
    end = min(len(text), width)
    while _text.columns(text[:end]) > width:
        end -= 1
    return text[:end]


def _padded(label: str, width: int) -> str:
    return label + " " * (width - _text.columns(label))


def _finding_rows(findings: Sequence[Mapping[str, Any]]) -> List[_html.Row]:
    return [_html.Row([_html.badge(status(f), label(f)), sentence(f)], status=status(f))
            for f in findings]


FINDING_COLUMNS = (_html.Column("Finding"), _html.Column("Hosts and evidence", min_width=320))


def html_parts(mesh: Optional[Mapping[str, Any]], findings: Sequence[Mapping[str, Any]]) -> List[str]:
    """The findings table and the matrix grid, as HTML (nothing without a mesh)."""
    if not mesh:
        return []
    parts = [_html.heading(heading(mesh, findings)),
             _html.table(FINDING_COLUMNS, _finding_rows(findings), empty=none_found(mesh)[0].upper()
                         + none_found(mesh)[1:] + ".")]
    shown = shown_hosts(mesh, findings)
    if shown:
        parts += [_html.heading("Mesh: who reaches whom"), _html.paragraph(KEY[0].upper() + KEY[1:] + ".", muted=True)]
        note = matrix_note(mesh, shown)
        if note:
            parts.append(_html.paragraph(note, muted=True))
        parts.append(grid(mesh, findings, shown))
    return parts


def _cell(char: str, a: str, b: str, loss: Optional[float], rules: str) -> str:
    background, ink, meaning = CELLS.get(char, CELLS[_mesh.UNKNOWN])
    if loss is not None and char in (_mesh.REACHED, _mesh.LOSSY):
        meaning += f", {loss:g}% lost"
    title = _html.esc(f"{a} -> {b}: {meaning}")
    return (f'<td data-cell="{_html.esc(char)}" title="{title}" style="width:14px;height:14px;padding:0;'
            f'text-align:center;{_html.MONO};font-size:9px;line-height:14px;background:{background};color:{ink};'
            f'border:1px solid #ffffff{rules}">{_html.esc(char)}</td>')


def grid(mesh: Mapping[str, Any], findings: Sequence[Mapping[str, Any]], shown: Sequence[int]) -> str:
    """The matrix as a table of coloured cells, rows and columns numbered, rules between the sides of a cut."""
    order, rows, loss = mesh["hosts"], mesh["rows"], mesh.get("loss") or {}
    starts = _side_starts(mesh, findings, shown)
    head_style = f"padding:0 3px;{_html.FONT};font-size:10px;color:{_html.MUTED};font-weight:normal"
    head = "".join(f'<th scope="col" title="{_html.esc(order[j])}" style="{head_style}'
                   f'{";border-left:" + BLOCK_RULE if starts[k] else ""}">{k + 1}</th>' for k, j in enumerate(shown))
    body = []
    for r, i in enumerate(shown):
        a = order[i]
        top = ";border-top:" + BLOCK_RULE if starts[r] else ""
        cells = "".join(_cell(rows[i][j], a, order[j], loss.get(a, {}).get(order[j]),
                              top + (";border-left:" + BLOCK_RULE if starts[c] else ""))
                        for c, j in enumerate(shown))
        body.append(f'<tr data-host="{_html.esc(a)}"><th scope="row" style="{head_style};text-align:left;'
                    f'white-space:nowrap{top}">{r + 1} {_html.esc(a)}</th>{cells}</tr>')
    return _html.Safe(f'<div style="overflow-x:auto"><table class="mesh" style="border-collapse:collapse;'
                      f'margin:0 0 6px 0"><thead><tr><th></th>{head}</tr></thead>\n<tbody>'
                      + "\n".join(body) + "</tbody></table></div>\n")
