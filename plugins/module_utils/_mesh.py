# -*- coding: utf-8 -*-
# Copyright (c) sysops.fleet contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The reachability mesh: every host's sweep of the others, read as a matrix, and the fault in it named.

PRIVATE to the sysops.fleet collection. Pure standard library.

When every host of a fleet probes every other (Pingmesh, SIGCOMM 2015),
"down" stops being the only answer: the matrix of who reaches whom tells a
dead host from a sweeper that lost its own network, a network split in
two, a firewall that blocks one direction and a lossy link. This room
reads the matrix and names what it shows, by these rules, applied in this
order (a pair explained by an earlier finding gives no later one):

``down``
    Every host that probed it found it silent, at least one of those
    probers reaches some other host (so the silence is not the prober's
    own blindness), and it did not sweep. A host that swept is up whatever
    it reached, even with a sweep that probed no mesh host: cut off alone
    (nobody reaches it, and it reaches nobody or probed nobody) it is one
    side of a ``cut``; reaching others while nobody reaches it, its way in
    is blocked: ``one_way``. ``swept`` says which hosts swept, for the
    fleet report's address lists to agree.
``blind``
    Not down, it probed at least MIN_PEERS hosts that are not down and
    reached at most BLIND_SHARE of them, and at most BLIND_SHARE of the
    hosts it probed that reach it (at least one: a host that reaches those
    that reach it has a working way out, and its silence on the others is
    a cut), while strictly more than half of at least MIN_PEERS such hosts
    that probed it reach it (a tie is not "most": no finding from it).
    With one such host probing it (two probers), that one must reach it
    and it must have reached at most BLIND_SHARE of at least MIN_PEERS
    hosts it probed that another prober reaches (``alive_elsewhere``).
``cut``
    The sweeping hosts that are neither down nor blind fall into groups:
    hosts joined by any pair that works in either direction are one group
    (the connected components of the mutual-reach graph, joined by working
    one-way links). With two or more groups, where every two groups have a
    measured pair between them and every such pair fails, the cut names
    every side. Groups with no pair measured between them are one group:
    nothing says they are cut. Inside a group, hosts whose pair fails in
    both directions are a cut between them (one host and the hosts it
    cannot reach either way, grouped as below).
``one_way``
    A cannot reach B while B reaches A. That reads the same whether B
    drops what A sends or A's own way out fails, so where the pair is
    placed depends on A's view of the other hosts it probed that another
    prober reaches (``alive_elsewhere``, not counting the hosts of its
    one_way pairs). A reaches strictly more than half of them: its way out
    works, and the pairs are grouped at the host they share: the host in
    the most such pairs takes all of its pairs (a tie goes to the host that
    is the unreached one in more of them, then to the name), and so on. A
    firewall that drops what comes in from everyone is one finding at that
    host. A reaches at most BLIND_SHARE of at least MIN_PEERS of them: its
    view is the outlier, and its pairs are one finding at A. Between the
    two, or with fewer such hosts, the matrix cannot tell: its pairs are
    one finding at nobody (``at`` None, ``maybe_blind`` A), no host blamed.
    Both carry ``reaches`` and ``alive_elsewhere``, the evidence.
``lossy``
    In count mode, a pair that works but lost at least LOSSY_PCT percent
    of its probes, grouped as ``one_way`` pairs are: a host whose link
    loses is one finding at that host.

Pairs with a down or blind host give no ``cut``, ``one_way`` or
``lossy`` finding: one fault at a time is located exactly, and a second
fault on the pairs of a down or blind host is not told apart from it.
Partial data (a host that did not sweep, an address nobody probed, a pair
measured one way only) gives no finding from what was not measured.
"""

from __future__ import annotations

import bisect
import heapq
import ipaddress
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

BLIND_SHARE = 0.2  # a blind sweeper reaches at most this share of the live hosts it probed
MIN_PEERS = 2  # hosts probed (or probing) before a host can be called blind
LOSSY_PCT = 20.0  # a working pair that lost at least this share of its probes (count mode) is lossy
SILENT = 100.0  # loss of a pair whose probes all went unanswered
KINDS = ("down", "blind", "cut", "one_way", "lossy")
# One character per cell of ``rows``: what the row's host saw of the column's host.
REACHED, LOSSY, SILENT_CELL, UNKNOWN, SELF = "o", "~", "x", "?", "-"

Seen = Dict[str, Dict[str, float]]  # prober -> probed host -> loss in percent (SILENT: no answer)
Pair = Tuple[str, str]  # (from, to)


def observe(sweeps: Mapping[str, Mapping[str, Any]], addresses: Mapping[str, str]) -> Seen:
    """Who saw whom, from each mesh host's checked sweep (``_fleet_inputs.check_sweeps``).

    Only sweepers that are mesh hosts (keys of *addresses*) count, and of
    their results only the mesh's addresses; a host's probe of itself is
    not a pair. An address both alive and dead in one result is alive.
    Loss comes from count mode's ``stats``; a plain sweep gives 0 or 100.
    """
    host_at = {address: host for host, address in addresses.items()}
    seen: Seen = {}
    for sweeper in swept(sweeps, addresses):
        result = sweeps[sweeper]
        row: Dict[str, float] = {}
        loss = result.get("loss") or {}
        for address in result["dead"]:
            host = host_at.get(address)
            if host is not None and host != sweeper:
                row[host] = SILENT
        for address in result["alive"]:
            host = host_at.get(address)
            if host is not None and host != sweeper:
                row[host] = min(float(loss.get(address, 0.0)), SILENT - 1e-9)
        seen[sweeper] = row
    return seen


def peers(hosts: Sequence[str], me: str, bound: int) -> List[str]:
    """The hosts *me* probes: all the others, or with more than *bound* its *bound* neighbours on a ring.

    The ring is the hosts sorted by name; a host probes the bound // 2
    hosts before it and the rest after it, so every pair probed is probed
    both ways (one_way needs both) and every host is probed by *bound*
    others (down needs witnesses). A host not in *hosts* probes them all,
    up to *bound*.
    """
    ring = sorted(set(hosts))
    if me not in ring:
        return ring[:max(0, bound)]
    others = len(ring) - 1
    if bound >= others:
        return [h for h in ring if h != me]
    at = ring.index(me)
    before = bound // 2
    return [ring[(at + step) % len(ring)] for step in list(range(-before, 0)) + list(range(1, bound - before + 1))]


class _Matrix:
    """The observations with the counts the rules ask for, computed once (500 hosts: 250,000 pairs)."""

    def __init__(self, hosts: Sequence[str], seen: Seen, reached: Iterable[str] = ()):
        self.hosts = list(hosts)
        self.seen = seen
        self.reached = set(reached)  # hosts Ansible reached: up, whoever pings them
        self.column: Dict[str, Dict[str, float]] = {h: {} for h in self.hosts}
        for prober, row in seen.items():
            for probed, loss in row.items():
                self.column.setdefault(probed, {})[prober] = loss
        self.reaches = {prober: sum(1 for loss in row.values() if loss < SILENT) for prober, row in seen.items()}


def swept(sweeps: Mapping[str, Any], addresses: Mapping[str, str]) -> Set[str]:
    """The mesh hosts whose sweep was passed (the rows of ``observe``): up, whatever they reached.

    The mesh never calls them ``down``, and the fleet report never lists
    their addresses as down: they ran their sweep.
    """
    return {sweeper for sweeper in sweeps if sweeper in addresses}


def _down(m: _Matrix) -> Dict[str, Dict[str, Any]]:
    """Hosts nobody reaches, seen so by a prober that reaches others, that did not sweep (a sweep proves it up)."""
    found = {}
    for host in m.hosts:
        witnesses = m.column.get(host, {})
        if not witnesses or any(loss < SILENT for loss in witnesses.values()):
            continue
        if not any(m.reaches.get(w, 0) for w in witnesses):
            continue  # every prober is silent on everyone: it may be them, not this host
        if host in m.seen:
            continue  # it ran its sweep (even one that probed no host): up, its way in blocked or cut off
        found[host] = {"kind": "down", "hosts": [host], "probed_by": len(witnesses)}
        if host in m.reached:  # Ansible reached it this run: up, and pings to it are dropped on their way in
            found[host]["answers_ansible"] = True
    return found


def _blind(m: _Matrix, down: Set[str]) -> Dict[str, Dict[str, Any]]:
    """Sweepers that reach (almost) none of the live hosts they probed while most of those that probe them reach them.

    It must also fail (almost) all of the hosts that reach it: one that
    reaches those has a working way out, and its silence on the others is
    theirs or a cut's. With fewer than MIN_PEERS hosts probing it (two
    probers: one witness), the one witness that reaches it cannot tell its
    silence from the other prober dropping what it sends; the silence on
    hosts that another prober reaches can (``_alive_elsewhere``).
    """
    found = {}
    for host, row in m.seen.items():
        if host in down:
            continue
        probed = [loss for other, loss in row.items() if other not in down]
        witnesses = [loss for other, loss in m.column.get(host, {}).items() if other not in down]
        reaches = sum(1 for loss in probed if loss < SILENT)
        reached_by = sum(1 for loss in witnesses if loss < SILENT)
        if len(probed) < MIN_PEERS or reaches > BLIND_SHARE * len(probed) or 2 * reached_by <= len(witnesses):
            continue
        back = [row[w] for w, loss in m.column.get(host, {}).items() if w not in down and loss < SILENT and w in row]
        if not back or sum(1 for loss in back if loss < SILENT) > BLIND_SHARE * len(back):
            continue
        finding = {"kind": "blind", "hosts": [host], "reaches": reaches, "probed": len(probed),
                   "reached_by": reached_by, "probed_by": len(witnesses)}
        if len(witnesses) < MIN_PEERS:
            alive = _alive_elsewhere(m, host, down)
            if len(alive) < MIN_PEERS or sum(1 for loss in alive if loss < SILENT) > BLIND_SHARE * len(alive):
                continue
            finding["alive_elsewhere"] = len(alive)
        found[host] = finding
    return found


def _alive_elsewhere(m: _Matrix, host: str, down: Set[str]) -> List[float]:
    """What *host* saw of the hosts it probed that another prober reaches: those answer, so silence is its own."""
    return [loss for other, loss in m.seen[host].items() if other not in down
            and any(by != host and seen_loss < SILENT for by, seen_loss in m.column.get(other, {}).items())]


def _views(m: _Matrix, excluded: Set[str]) -> Dict[str, Tuple[str, int, int]]:
    """Each sweeper with one_way pairs from it whose way out is not shown to work: ``outlier`` or ``untold``.

    Its silence on a host that reaches it is its own way out or that host
    dropping what it sends. The other hosts it probed that another prober
    reaches (not those of its one_way pairs) decide: reaching more than half
    of them, its way out works (it is left out here); reaching at most
    BLIND_SHARE of at least MIN_PEERS of them, its view is the outlier;
    else the matrix cannot tell. Each with (what, reached, of how many).
    """
    reached_by = {probed: sum(1 for loss in probers.values() if loss < SILENT) for probed, probers in m.column.items()}
    found = {}
    for host, row in m.seen.items():
        if host in excluded:
            continue
        back = m.column.get(host, {})
        unreached = {other for other, loss in row.items()
                     if loss >= SILENT and back.get(other, SILENT) < SILENT and other not in excluded}
        if not unreached:
            continue
        elsewhere = [loss < SILENT for other, loss in row.items() if other not in unreached and other not in excluded
                     and reached_by.get(other, 0) > (loss < SILENT)]
        reached = sum(elsewhere)
        if 2 * reached > len(elsewhere):
            continue
        outlier = len(elsewhere) >= MIN_PEERS and reached <= BLIND_SHARE * len(elsewhere)
        found[host] = ("outlier" if outlier else "untold", reached, len(elsewhere))
    return found


class _Groups:
    """Union-find over host names: hosts joined by a working pair, or by knowing nothing between them."""

    def __init__(self, hosts: Iterable[str]):
        self.parent = {h: h for h in hosts}

    def find(self, host: str) -> str:
        root = host
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[host] != root:
            self.parent[host], host = root, self.parent[host]
        return root

    def join(self, a: str, b: str) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def members(self) -> List[List[str]]:
        found: Dict[str, List[str]] = {}
        for host in sorted(self.parent):
            found.setdefault(self.find(host), []).append(host)
        return sorted(found.values(), key=lambda side: (-len(side), side[0]))


class _Blocks:
    """The groups of ``groups`` while those with no measured pair between them are joined, one join at a time.

    A group with a measured pair to every other group keeps that for good
    (a joined group has the pairs of both), so it is set aside once; a join
    looks only at measured pairs. That keeps the joining near-linear in the
    measured pairs where trying every pair of groups after each join was
    cubic in the groups (800 hosts with most pairs unmeasured: a minute).
    """

    def __init__(self, sides: List[List[str]], seen: Seen):
        self.members = {i: list(side) for i, side in enumerate(sides)}
        self.first = {i: side[0] for i, side in enumerate(sides)}
        self.near: Dict[int, Set[int]] = {i: set() for i in self.members}  # groups with a pair measured to it
        block_of = {h: i for i, side in enumerate(sides) for h in side}
        for a, i in block_of.items():
            for b in seen[a]:
                j = block_of.get(b, i)
                if j != i:
                    self.near[i].add(j)
                    self.near[j].add(i)
        self.order = sorted(self._key(i) for i in self.members)  # largest first, then by first host
        self.open = list(self.order)  # heap of groups that may lack a measured pair to another

    def _key(self, i: int) -> Tuple[int, str, int]:
        return (-len(self.members[i]), self.first[i], i)

    def _first_open(self) -> Optional[int]:
        """The first group in order that lacks a measured pair to some other group; None when none does."""
        while self.open:
            key = self.open[0]
            i = key[2]
            if i in self.members and key == self._key(i) and len(self.near[i]) < len(self.members) - 1:
                return i
            heapq.heappop(self.open)  # joined since, or measured to every group (and stays so)
        return None

    def _join(self, i: int, j: int) -> None:
        for k in (i, j):
            del self.order[bisect.bisect_left(self.order, self._key(k))]
        keep, gone = (i, j) if len(self.near[i]) >= len(self.near[j]) else (j, i)
        for k in self.near[gone]:
            self.near[k].discard(gone)
            self.near[k].add(keep)
        self.near[keep] |= self.near.pop(gone)
        self.members[keep] += self.members.pop(gone)
        self.first[keep] = min(self.first[keep], self.first.pop(gone))
        bisect.insort(self.order, self._key(keep))
        heapq.heappush(self.open, self._key(keep))

    def joined(self) -> List[List[str]]:
        """Join the first open group to the first group in order it has no measured pair to, until none is open."""
        while True:
            i = self._first_open()
            if i is None:
                return [sorted(self.members[key[2]]) for key in self.order]
            near = self.near[i]
            self._join(i, next(key[2] for key in self.order if key[2] != i and key[2] not in near))


def groups(m: _Matrix, excluded: Set[str]) -> List[List[str]]:
    """The sweeping hosts (not *excluded*) in groups that reach each other inside, largest first.

    Two groups with no pair measured between them are joined: without a
    measurement there is no evidence of a cut. Which two first matters
    when there are several (a joined group may have a pair measured to a
    group neither part had): the first group in order (largest first, then
    by first host) that lacks a measured pair to another, with the first
    such group in order, until every two groups have one.
    """
    nodes = [h for h in m.hosts if h in m.seen and h not in excluded]
    union = _Groups(nodes)
    node_set = set(nodes)
    for a in nodes:
        for b, loss in m.seen[a].items():
            if loss < SILENT and b in node_set:
                union.join(a, b)
    return _Blocks(union.members(), m.seen).joined()


def _grouped(pairs: Iterable[Pair]) -> List[Tuple[str, List[Pair]]]:
    """Pairs gathered at the host they share: the host in most pairs first (ties: unreached more often, then name)."""
    remaining = set(pairs)
    count: Dict[str, int] = {}
    as_target: Dict[str, int] = {}
    by_host: Dict[str, Set[Pair]] = {}
    for a, b in remaining:
        for host in (a, b):
            count[host] = count.get(host, 0) + 1
            by_host.setdefault(host, set()).add((a, b))
        as_target[b] = as_target.get(b, 0) + 1
    found = []
    while remaining:
        at = min((h for h in count if count[h] > 0), key=lambda h: (-count[h], -as_target.get(h, 0), h))
        taken = sorted(p for p in by_host[at] if p in remaining)
        for a, b in taken:
            remaining.discard((a, b))
            for host in (a, b):
                count[host] -= 1
            as_target[b] -= 1
        found.append((at, taken))
    return found


def _pair_findings(m: _Matrix, excluded: Set[str], sides: List[List[str]], lossy_pct: float,
                   views: Mapping[str, Tuple[str, int, int]]
                   ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Inside each group: pairs failing both ways (cut), one way (one_way), and working but lossy.

    The one_way pairs from a host whose way out is not shown to work
    (``_views``) are one finding of their own: at that host when its view
    is the outlier, else at nobody (``at`` None, ``maybe_blind`` that host).
    """
    side_of = {h: i for i, side in enumerate(sides) for h in side}
    both: Set[Pair] = set()
    one: List[Pair] = []
    own: Dict[str, List[Pair]] = {}
    lossy: Dict[Pair, float] = {}
    for a, row in m.seen.items():
        if a in excluded or a not in side_of:
            continue
        mine = side_of[a]
        for b, loss in row.items():
            if loss == 0.0 or side_of.get(b, mine) != mine or b in excluded:
                continue
            back = m.seen.get(b, {}).get(a)
            if loss >= SILENT and back is not None and b in side_of:
                if back >= SILENT:
                    both.add((min(a, b), max(a, b)))
                else:
                    (own.setdefault(a, []) if a in views else one).append((a, b))
            elif lossy_pct <= loss < SILENT:
                lossy[(a, b)] = loss
    cuts = [{"kind": "cut", "hosts": sorted({at} | {h for p in taken for h in p}), "at": at,
             "sides": [[at], sorted({h for p in taken for h in p} - {at})]} for at, taken in _grouped(both)]
    one_way = [{"kind": "one_way", "hosts": sorted({h for p in taken for h in p}), "at": at,
                "pairs": [{"from": a, "to": b} for a, b in taken]} for at, taken in _grouped(one)]
    one_way += [_own_view(a, sorted(taken), views[a]) for a, taken in own.items()]
    lossy_found = []
    for at, taken in _grouped(lossy):
        losses = sorted(lossy[p] for p in taken)
        lossy_found.append({"kind": "lossy", "hosts": sorted({h for p in taken for h in p}), "at": at,
                            "loss_pct": round(losses[len(losses) // 2], 3),
                            "pairs": [{"from": a, "to": b, "loss_pct": round(lossy[(a, b)], 3)} for a, b in taken]})
    return cuts, one_way, lossy_found


def _own_view(host: str, taken: List[Pair], view: Tuple[str, int, int]) -> Dict[str, Any]:
    """The one_way pairs of a host whose way out is not shown to work: at it (outlier), or at nobody (untold)."""
    what, reached, elsewhere = view
    finding: Dict[str, Any] = {"kind": "one_way", "hosts": sorted({host} | {b for unused, b in taken}),
                               "at": host if what == "outlier" else None}
    if what != "outlier":
        finding["maybe_blind"] = host
    finding.update({"pairs": [{"from": a, "to": b} for a, b in taken], "reaches": reached,
                    "alive_elsewhere": elsewhere})
    return finding


def findings(hosts: Sequence[str], seen: Seen, lossy_pct: float = LOSSY_PCT, reached: Iterable[str] = ()
             ) -> Dict[str, Any]:
    """The findings and the host order that shows them (cut sides as blocks), by the rules of this module.

    A host silent to every prober that Ansible reached (*reached*) is no host down: its ``down`` finding
    says ``answers_ansible`` (pings to it are dropped), and the report keeps its address off "down".
    """
    m = _Matrix(hosts, seen, reached)
    down = _down(m)
    blind = _blind(m, set(down))
    excluded = set(down) | set(blind)
    views = _views(m, excluded)
    sides = groups(m, excluded)
    found: List[Dict[str, Any]] = [down[h] for h in sorted(down)] + [blind[h] for h in sorted(blind)]
    if len(sides) > 1:
        found.append({"kind": "cut", "hosts": sorted(h for side in sides for h in side), "sides": sides})
    pair_cuts, one_way, lossy = _pair_findings(m, excluded, sides, lossy_pct, views)
    found += sorted(pair_cuts, key=_order) + sorted(one_way, key=_order) + sorted(lossy, key=_order)
    placed = [h for side in sides for h in side]
    placed_set = set(placed)
    rest = sorted(h for h in m.hosts if h not in placed_set and h not in down)
    return {"findings": found, "order": placed + rest + sorted(down)}


def _order(finding: Mapping[str, Any]) -> Tuple[Any, ...]:
    return (finding.get("at") or "", finding["hosts"])


def rows(order: Sequence[str], seen: Seen, lossy_pct: float = LOSSY_PCT) -> List[str]:
    """The matrix as one string per host of *order*: a character per host of *order* (REACHED, LOSSY, ...).

    Strings, not nested lists: Ansible spends its time per value of a
    result, and 500 hosts make 250,000 cells but 500 strings.
    """
    lines = []
    for a in order:
        row = seen.get(a)
        cells = []
        for b in order:
            loss = None if row is None else row.get(b)
            if a == b:
                cells.append(SELF)
            elif loss is None:
                cells.append(UNKNOWN)
            elif loss >= SILENT:
                cells.append(SILENT_CELL)
            else:
                cells.append(LOSSY if loss >= lossy_pct else REACHED)
        lines.append("".join(cells))
    return lines


def mesh(sweeps: Mapping[str, Mapping[str, Any]], addresses: Mapping[str, str],
         lossy_pct: float = LOSSY_PCT, reached: Iterable[str] = ()) -> Dict[str, Any]:
    """The module's ``mesh`` (hosts in block order, addresses, rows, loss, summary) and ``findings``; *reached*:
    the hosts Ansible reached this run (``findings``)."""
    seen = observe(sweeps, addresses)
    hosts = sorted(addresses)
    read = findings(hosts, seen, lossy_pct, reached)
    order = read["order"]
    loss = {a: {b: round(v, 3) for b, v in sorted(row.items()) if 0 < v < SILENT} for a, row in sorted(seen.items())}
    pairs = sum(len(row) for row in seen.values())
    silent = sum(1 for row in seen.values() for v in row.values() if v >= SILENT)
    summary = {"hosts": len(hosts), "sweepers": len(seen), "pairs": pairs, "reached": pairs - silent,
               "silent": silent, "lossy": sum(1 for row in seen.values() for v in row.values() if lossy_pct <= v < SILENT),
               "findings": len(read["findings"])}
    return {"mesh": {"hosts": order, "addresses": {h: addresses[h] for h in order},
                     "rows": rows(order, seen, lossy_pct), "loss": {a: row for a, row in loss.items() if row},
                     "lossy_pct": lossy_pct, "summary": summary},
            "findings": read["findings"]}


def address_of(host_vars: Mapping[str, Any]) -> Optional[str]:
    """The address the others probe for a host: ``fleet_mesh_address``, else ``ansible_host`` when it is an IP
    address, else the address of its default IPv4 (then IPv6) route from its facts; None when it has none.

    A name is never looked up here (the controller's resolver may see
    another answer than the hosts do): set ``fleet_mesh_address``.
    """
    chosen = host_vars.get("fleet_mesh_address")
    if chosen:
        return str(chosen)
    given = host_vars.get("ansible_host")
    if isinstance(given, str):
        try:
            return str(ipaddress.ip_address(given))
        except ValueError:
            pass
    facts = host_vars.get("ansible_facts") or {}
    for key in ("default_ipv4", "default_ipv6"):
        found = (facts.get(key) or {}).get("address") if isinstance(facts.get(key), Mapping) else None
        if found:
            return str(found)
    return None


def _lost_some(value: Any) -> bool:
    """Whether a loss_pct says some but not all probes were lost; text that is no number is kept for fleet_report
    to name (a loss given as text, "50", raised TypeError here: an outside tester's finding)."""
    if isinstance(value, bool) or value is None or value == "":
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return True
    return 0 < number < SILENT


def trimmed(result: Mapping[str, Any]) -> Dict[str, Any]:
    """What fleet_report reads of a mesh sweep: its ranges, names, and the loss of the pairs that lost some.

    A 500-host mesh is 250,000 addresses: as lists with count mode's
    round-trip statistics, 28 MB of JSON that Ansible templates and the
    module parses; as ranges (a few per sweeper) and the loss of the few
    pairs that lost, a few hundred kilobytes.
    """
    stats = result.get("stats") or {}
    lost = {address: {"loss_pct": entry["loss_pct"]} for address, entry in stats.items()
            if isinstance(entry, Mapping) and _lost_some(entry.get("loss_pct"))}
    return {"alive_ranges": list(result.get("alive_ranges") or []),
            "dead_ranges": list(result.get("dead_ranges") or []),
            "names": dict(result.get("names") or {}), "stats": lost}


def joined(own: Mapping[str, Mapping[str, Any]], meshed: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """Sweeper -> one result: a host's own sweep (its ``sweep_targets``) and its mesh sweep (``trimmed``).

    fleet_report takes one result per sweeper; a sweeper that is also a
    mesh host has two. Both always carry ``alive_ranges`` and
    ``dead_ranges``; the lists would be missing from a large own sweep.
    An address alive in either is alive (``_fleet.merge_sweeps`` and
    ``observe`` read it so). The mesh sweep's loss is kept.
    """
    found: Dict[str, Any] = {name: dict(result) for name, result in own.items()}
    for name, result in meshed.items():
        mesh_part = trimmed(result)
        if name not in found:
            found[name] = mesh_part
            continue
        mine = found[name]
        found[name] = {"alive_ranges": list(mine.get("alive_ranges") or []) + mesh_part["alive_ranges"],
                       "dead_ranges": list(mine.get("dead_ranges") or []) + mesh_part["dead_ranges"],
                       "names": dict(mine.get("names") or {}, **mesh_part["names"]), "stats": mesh_part["stats"]}
    return found
