"""Category paths and the category tree, plus hierarchy prior features for the query-category (QC) model.

Category paths such as ``food,grocery,flour, baking and cooking,decorations`` separate levels with a bare ``,``
while a level name may itself contain ``", "``; every function here parses paths the same way so that node ids,
the subtrees the category-aware CV split keeps whole (`Taxonomy.subtree_roots`) and prefix features agree. Dev/test
data contain paths never seen in training, so the tree answers lookups for unseen paths (complete / partial / none)
instead of failing.
`inspect_tree` reports what the tree holds (branches, names holding ", ", near-duplicate names, prefix paths) for
`mtl taxonomy`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import string
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import networkx as nx
import numpy as np

from mtl.errors import DataError, MtlError
from mtl.io import atomic_write_text

ROOT = ""
SEEN_BUCKETS = ("seen path", "seen group", "unseen group")
"""QC pairs by how much of their category path training saw (`Taxonomy.seen`)."""

# A level separator is a comma NOT followed by a space; ", " belongs inside a level name.
_LEVEL_SEP = re.compile(r",(?! )")
_EDGE_CHARS = string.whitespace + ","


def parse_path(path: str) -> list[str]:
    """Levels of a category path: outer whitespace and edge commas stripped, empty levels (stray commas) dropped."""
    if not isinstance(path, str):
        raise ValueError(f"category path must be a string, got {type(path).__name__}: {path!r}")
    # A comma at a level's edge can only be a stray separator (e.g. a trailing ", "): real names carry ", " inside.
    levels = [level.strip(_EDGE_CHARS) for level in _LEVEL_SEP.split(path)]
    levels = [level for level in levels if level]
    if not levels:
        raise ValueError(f"empty category path: {path!r}")
    return levels


def join_levels(levels: Sequence[str]) -> str:
    """Canonical id of a path or prefix."""
    return ",".join(levels)


def render_levels(path: str, sep: str = " > ") -> str:
    """Human-readable path whose level boundaries stay visible even when names contain ", "."""
    return sep.join(parse_path(path))


def _prefixes(levels: Sequence[str]) -> list[str]:
    return [join_levels(levels[:d]) for d in range(1, len(levels) + 1)]


class UnknownCategoryError(MtlError, KeyError):
    """A category path is not a node of the taxonomy."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class PathMatch:
    """Where a (possibly unseen) path meets the tree."""

    kind: Literal["complete", "partial", "none"]
    depth: int
    node: str


class Taxonomy:
    """Category tree: a networkx DiGraph ROOT -> level 1 -> level 2 ..., node ids are canonical prefix strings.

    Node attributes: ``name`` (the level's own name), ``depth`` (ROOT = 0), ``count`` (paths through the node).
    """

    def __init__(self, graph: nx.DiGraph):
        self.graph = graph

    @classmethod
    def from_paths(cls, paths: Iterable[str], labels: Iterable[int] | None = None) -> Taxonomy:
        """Build the tree; duplicates add to counts rather than nodes. With `labels` (0/1, one per path) every node
        also counts its ``positives``, so a branch's positive rate is read off its node."""
        g = nx.DiGraph()
        g.add_node(ROOT, name=ROOT, depth=0, count=0)
        pairs = ((path, None) for path in paths) if labels is None else zip(paths, labels, strict=True)
        for path, label in pairs:
            levels = parse_path(path)
            positive = None if label is None else _binary(label)
            parent = ROOT
            for d, node in enumerate([ROOT, *_prefixes(levels)]):
                if node not in g:
                    g.add_node(node, name=levels[d - 1], depth=d, count=0)
                    g.add_edge(parent, node)
                attrs = g.nodes[node]
                attrs["count"] += 1
                if positive is not None:
                    attrs["positives"] = attrs.get("positives", 0) + positive
                parent = node
        return cls(g)

    def _node(self, path: str) -> str:
        node = join_levels(parse_path(path))
        if node not in self.graph:
            raise UnknownCategoryError(f"unknown category path {path!r} (not in the taxonomy)")
        return node

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            return join_levels(parse_path(path)) in self.graph
        except ValueError:
            return False

    def __len__(self) -> int:
        return self.graph.number_of_nodes() - 1

    def depth(self, path: str) -> int:
        """Number of levels; works for unseen paths."""
        return len(parse_path(path))

    def ancestors(self, path: str) -> list[str]:
        """Prefix ids from level 1 down to the parent (neither ROOT nor the path itself)."""
        return _prefixes(parse_path(self._node(path)))[:-1]

    def children(self, path: str) -> list[str]:
        """Sorted child ids; ``children(ROOT)`` lists the level-1 categories."""
        node = ROOT if path == ROOT else self._node(path)
        return sorted(self.graph.successors(node))

    def siblings(self, path: str) -> list[str]:
        node = self._node(path)
        (parent,) = self.graph.predecessors(node)
        return sorted(c for c in self.graph.successors(parent) if c != node)

    def is_leaf(self, path: str) -> bool:
        return self.graph.out_degree(self._node(path)) == 0

    def is_internal(self, path: str) -> bool:
        return not self.is_leaf(path)

    def leaves(self) -> list[str]:
        return sorted(n for n in self.graph if n != ROOT and self.graph.out_degree(n) == 0)

    def subtree_roots(self, depth: int) -> dict[str, str]:
        """Each node's ancestor at `depth`, or the node itself when it is no deeper: the subtrees the category-aware
        CV split keeps whole (ROOT maps to itself)."""
        if depth < 1:
            raise ValueError(f"subtree depth must be >= 1, got {depth}")
        g = self.graph
        roots = {node: node for node, d in g.nodes(data="depth") if d <= depth}
        for node in [node for node, d in g.nodes(data="depth") if d == depth]:
            roots.update(dict.fromkeys(nx.descendants(g, node), node))
        return roots

    def path_rows(self) -> dict[str, int]:
        """Rows whose path ends at each node, for the nodes some path ends at (an internal node may be one): a node's
        count less its children's, as every row through a child passes through the node."""
        g = self.graph
        rows = {node: g.nodes[node]["count"] - sum(g.nodes[c]["count"] for c in g.successors(node))
                for node in g if node != ROOT}
        return {node: n for node, n in rows.items() if n > 0}

    def lookup(self, path: str) -> PathMatch:
        """How deep a (possibly unseen) path reaches into the tree."""
        prefixes = _prefixes(parse_path(path))
        depth, node = 0, ROOT
        for prefix in prefixes:
            if prefix not in self.graph:
                break
            depth, node = depth + 1, prefix
        kind = "complete" if depth == len(prefixes) else "partial" if depth else "none"
        return PathMatch(kind=kind, depth=depth, node=node)

    def seen(self, path: str, group_levels: int) -> str:
        """Which of three buckets a path falls in against this (training) tree: `seen path`, `seen group` (unseen
        path whose first `group_levels` levels are a known node: the category-aware split's unit), `unseen group`."""
        levels = parse_path(path)
        match = self.lookup(path)
        if match.kind == "complete":
            return SEEN_BUCKETS[0]
        return SEEN_BUCKETS[1] if match.depth >= min(group_levels, len(levels)) else SEEN_BUCKETS[2]

    def save(self, file: str | Path) -> None:
        """Node-link JSON, written atomically so a crash never leaves a truncated taxonomy."""
        data = nx.node_link_data(self.graph, edges="edges")
        atomic_write_text(file, json.dumps(data, ensure_ascii=False))

    @classmethod
    def load(cls, file: str | Path) -> Taxonomy:
        try:
            data = json.loads(Path(file).read_text(encoding="utf-8"))
            graph = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(file, None, None, f"not a taxonomy node-link JSON file: {e}") from e
        if ROOT not in graph:
            raise DataError(file, None, None, "taxonomy has no root node")
        return cls(graph)


_NOTE = re.compile(r"\(([^()]*)\)$")
"""A trailing parenthesised note of a level name, once full-width brackets are ASCII: `pumps(do not post ...)`."""


def name_key(name: str) -> tuple[str, str | None]:
    """(base, note) of a level name, to spot spellings of one name: NFKC (full-width `（）` become `()`, a no-break
    space a space), case-folded, whitespace collapsed, and a trailing parenthesised note split off (None if none)."""
    text = " ".join(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold()).split())
    found = _NOTE.search(text)
    if found is None or found.start() == 0:
        return text, None
    return text[: found.start()].rstrip(), " ".join(found.group(1).split()) or None


def near_duplicate_names(taxonomy: Taxonomy) -> list[dict]:
    """Groups of level names that differ only in case, whitespace, full- or half-width forms, or a trailing note one
    spelling has and another lacks (`pumps`, `Pumps（do not post in this category）`): the model reads them as
    different names, though they may be one category; where each spelling occurs (parent, depth, rows) tells. Two
    notes that differ (`wigs(for white)`, `wigs(for black)`) make different categories, so those spellings are
    linked only through a spelling without a note. Groups with two spellings under one parent come first, then by
    rows."""
    g = taxonomy.graph
    where: dict[str, list[str]] = defaultdict(list)
    for node, name in g.nodes(data="name"):
        if node != ROOT:
            where[name].append(node)
    keys = {name: name_key(name) for name in where}
    by_base: dict[str, list[str]] = defaultdict(list)
    for name, (base, _) in keys.items():
        by_base[base].append(name)
    links = nx.Graph()
    for names in by_base.values():
        for a, b in itertools.combinations(names, 2):
            if keys[a][1] == keys[b][1] or keys[a][1] is None or keys[b][1] is None:
                links.add_edge(a, b)
    groups = []
    for component in nx.connected_components(links):
        spellings, under = [], defaultdict(set)
        for name in sorted(component):
            occurs = []
            for node in sorted(where[name]):
                (parent,) = g.predecessors(node)
                under[parent].add(name)
                occurs.append({"parent": parent, "depth": g.nodes[node]["depth"], "rows": g.nodes[node]["count"]})
            spellings.append({"name": name, "rows": sum(o["rows"] for o in occurs), "occurs": occurs})
        groups.append({"name": keys[spellings[0]["name"]][0], "rows": sum(s["rows"] for s in spellings),
                       "same_parent": any(len(names) > 1 for names in under.values()), "spellings": spellings})
    return sorted(groups, key=lambda grp: (not grp["same_parent"], -grp["rows"], grp["name"]))


def inspect_tree(taxonomy: Taxonomy, examples: int = 5) -> dict:
    """Facts about the tree that bear on what the QC model and its prefix priors read: size and depth, the
    top-level branches (their rows and, when the tree counts labels, positive rates), paths whose level names hold
    ", ", near-duplicate level names, names not in Unicode NFKC form (full-width brackets or commas, no-break
    spaces) and paths that end at an internal node. Lists of examples keep the first `examples` items, the most rows
    first; paths are canonical ids (`parse_path` reads them)."""
    g = taxonomy.graph
    ends = taxonomy.path_rows()
    labelled = "positives" in g.nodes[ROOT]
    depth = nx.get_node_attributes(g, "depth")
    path_depths = Counter(depth[node] for node in ends)
    by_rows = sorted(ends, key=lambda node: (-ends[node], node))

    branches = []
    for top in g.successors(ROOT):
        subtree = nx.descendants(g, top) | {top}
        attrs = g.nodes[top]
        branch = {"category": attrs["name"], "paths": sum(node in ends for node in subtree), "nodes": len(subtree),
                  "rows": attrs["count"]}
        if labelled:
            branch["positives"] = attrs["positives"]
            branch["positive_rate"] = attrs["positives"] / attrs["count"]
        branches.append(branch)
    branches.sort(key=lambda b: (-b["rows"], b["category"]))

    comma_nodes = [node for node, name in g.nodes(data="name") if ", " in name]
    below_comma = set(comma_nodes).union(*(nx.descendants(g, node) for node in comma_nodes))
    comma_paths = [node for node in by_rows if node in below_comma]
    prefix_paths = [node for node in by_rows if g.out_degree(node) > 0]
    near = near_duplicate_names(taxonomy)
    name_rows: Counter[str] = Counter()
    for node, attrs in g.nodes(data=True):
        if node != ROOT:
            name_rows[attrs["name"]] += attrs["count"]
    odd = sorted((name for name in name_rows if unicodedata.normalize("NFKC", name) != name),
                 key=lambda name: (-name_rows[name], name))
    return {
        "rows": g.nodes[ROOT]["count"],
        "positive_rate": g.nodes[ROOT]["positives"] / g.nodes[ROOT]["count"] if labelled else None,
        "paths": len(ends),
        "nodes": len(taxonomy),
        "nodes_per_depth": dict(sorted(Counter(d for node, d in depth.items() if node != ROOT).items())),
        "path_depth": {"min": min(path_depths, default=0), "max": max(path_depths, default=0),
                       "mean": sum(d * n for d, n in path_depths.items()) / max(len(ends), 1),
                       "paths_per_depth": dict(sorted(path_depths.items()))},
        "branches": branches,
        "comma_names": {"names": len({g.nodes[node]["name"] for node in comma_nodes}), "paths": len(comma_paths),
                        "rows": sum(ends[node] for node in comma_paths),
                        "examples": [{"path": node, "rows": ends[node]} for node in comma_paths[:examples]]},
        "near_duplicates": {"groups": len(near), "names": sum(len(grp["spellings"]) for grp in near),
                            "same_parent": sum(grp["same_parent"] for grp in near), "examples": near[:examples]},
        "unnormalised_names": {"names": len(odd), "examples": [{"name": name, "rows": name_rows[name]}
                                                               for name in odd[:examples]]},
        "prefix_paths": {"paths": len(prefix_paths), "rows": sum(ends[node] for node in prefix_paths),
                         "examples": [{"path": node, "rows": ends[node],
                                       "longer_paths": sum(d in ends for d in nx.descendants(g, node))}
                                      for node in prefix_paths[:examples]]},
    }


def format_inspection(facts: dict, title: str = "the category tree") -> str:
    """`inspect_tree`'s facts as markdown. Levels are shown joined by " > " so that names holding ", " stay
    readable, and invisible whitespace in a name (a no-break space) as its escape."""
    depth = facts["path_depth"]
    rate = "" if facts["positive_rate"] is None else f", {facts['positive_rate']:.1%} positive"
    lines = [
        f"# {title}", "",
        f"- rows: {facts['rows']}{rate}"
        + (f" ({facts['rows_without_category']} more without a category level, left out)"
           if facts.get("rows_without_category") else ""),
        f"- distinct paths: {facts['paths']}; nodes: {facts['nodes']} ("
        + ", ".join(f"depth {d}: {n}" for d, n in facts["nodes_per_depth"].items()) + ")",
        f"- path depth: min {depth['min']}, max {depth['max']}, mean {depth['mean']:.2f} ("
        + ", ".join(f"{n} paths of depth {d}" for d, n in depth["paths_per_depth"].items()) + ")",
        "", f"## Top-level branches ({len(facts['branches'])}, by rows)", "",
    ]
    labelled = facts["positive_rate"] is not None
    lines += ["| category | paths | nodes | rows |" + (" positive rate |" if labelled else ""),
              "|---|---:|---:|---:|" + ("---:|" if labelled else "")]
    for b in facts["branches"]:
        lines.append(f"| {_cell(b['category'])} | {b['paths']} | {b['nodes']} | {b['rows']} |"
                     + (f" {b['positive_rate']:.1%} |" if labelled else ""))
    comma = facts["comma_names"]
    lines += ["", '## Level names containing ", "', "",
              f'{_count(comma["paths"], "path")} ({_count(comma["rows"], "row")}) have a level whose name contains '
              f'", " ({_count(comma["names"], "such name")}); each is one level, not two.', ""]
    lines += [f"- {_path(e['path'])} ({_count(e['rows'], 'row')})" for e in comma["examples"]]
    near = facts["near_duplicates"]
    lines += ["", "## Near-duplicate level names", "",
              f"{_count(near['groups'], 'group')} of names equal up to case, whitespace, full-width forms or a "
              f"trailing note ({_count(near['names'], 'spelling')}; {near['same_parent']} with two spellings under "
              "one parent).", ""]
    for grp in near["examples"]:
        lines.append(f"- `{grp['name']}` ({_count(grp['rows'], 'row')}"
                     + (", same parent" if grp["same_parent"] else "") + "):")
        for s in grp["spellings"]:
            places = "; ".join(f"under {_path(o['parent'])}, depth {o['depth']}, {_count(o['rows'], 'row')}"
                               for o in s["occurs"])
            lines.append(f"  - `{_shown(s['name'])}`: {places}")
    odd = facts["unnormalised_names"]
    lines += ["", f"{_count(odd['names'], 'level name')} not in Unicode NFKC form (full-width brackets or commas, "
                  "no-break spaces)" + (":" if odd["examples"] else "."), ""]
    lines += [f"- `{_shown(e['name'])}` ({_count(e['rows'], 'row')})" for e in odd["examples"]]
    prefix = facts["prefix_paths"]
    lines += ["", "## Paths that are prefixes of other paths", "",
              f"{_count(prefix['paths'], 'path')} ({_count(prefix['rows'], 'row')}) end at a category that has "
              "subcategories.", ""]
    lines += [f"- {_path(e['path'])} ({_count(e['rows'], 'row')}; {_count(e['longer_paths'], 'longer path')} below)"
              for e in prefix["examples"]]
    return "\n".join(lines) + "\n"


def _shown(name: str) -> str:
    return "".join(c if c == " " or (c.isprintable() and not c.isspace()) else c.encode("unicode_escape").decode()
                   for c in name)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _cell(name: str) -> str:
    return _shown(name).replace("|", "\\|")


def _path(node: str) -> str:
    return "(top level)" if node == ROOT else f"`{_shown(render_levels(node))}`"


@dataclass
class NodeIndex:
    """Ids of the training tree's nodes for the QC head's node embeddings (`taxonomy.features=nodes|both`): id i + 1
    is `nodes[i]`, 0 is padding. A path reads the ids of its prefixes that the tree knows, so an unseen path backs
    off to its deepest known ancestor and paths that share ancestors share their embeddings. Saved with the model
    (`ModelInfo.nodes`), so `mtl predict` maps paths exactly as training did."""

    nodes: list[str]
    slots: int
    """Ids per path: the training tree's depth (no known node lies deeper)."""

    @classmethod
    def from_taxonomy(cls, taxonomy: Taxonomy) -> NodeIndex:
        nodes = sorted(n for n in taxonomy.graph if n != ROOT)
        depth = max((taxonomy.graph.nodes[n]["depth"] for n in nodes), default=1)
        return cls(nodes, depth)

    def ids(self, paths: Sequence[str]) -> np.ndarray:
        """[paths, slots] float32 (the QC features travel as one float tensor; ids are exact in float32 far beyond
        any tree's size), each row the known prefixes' ids from level 1 down, zero-padded."""
        index = {node: i + 1 for i, node in enumerate(self.nodes)}
        out = np.zeros((len(paths), self.slots), dtype=np.float32)
        for row, path in enumerate(paths):
            for slot, prefix in enumerate(_prefixes(parse_path(path))[: self.slots]):
                if prefix not in index:
                    break
                out[row, slot] = index[prefix]
        return out


@dataclass
class PrefixPriors:
    """Smoothed positive rate and count per category prefix (depth 1..depth), fitted on training records only.

    Used as numeric QC features; fitting on the training fold only (never across folds) avoids leakage.
    """

    depth: int
    strength: float
    global_rate: float
    counts: dict[str, list[int]]

    @classmethod
    def fit(cls, paths: Sequence[str], labels: Sequence[int], depth: int = 3, strength: float = 20.0) -> PrefixPriors:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        if not paths:
            raise ValueError("cannot fit prefix priors on zero records")
        if depth < 1 or strength < 0:
            raise ValueError(f"need depth >= 1 and strength >= 0, got depth={depth}, strength={strength}")
        counts: dict[str, list[int]] = {}
        n_pos = 0
        for path, label in zip(paths, labels):
            label = _binary(label)
            n_pos += label
            for prefix in _prefixes(parse_path(path)[:depth]):
                c = counts.setdefault(prefix, [0, 0])
                c[0] += 1
                c[1] += label
        return cls(depth=depth, strength=float(strength), global_rate=n_pos / len(paths), counts=counts)

    @property
    def n_features(self) -> int:
        return 2 * self.depth + 1

    def _rate(self, n: int, pos: int) -> float:
        if n + self.strength == 0:
            return self.global_rate
        return (pos + self.strength * self.global_rate) / (n + self.strength)

    def features(self, paths: Sequence[str]) -> np.ndarray:
        """float32 [len(paths), n_features]: rate deltas, log counts, matched fraction.

        Only for rows these priors were not fitted on (validation, test, prediction): a training row's own label is
        in its prefixes' counts. Training rows take `out_of_fold_features` instead."""
        out = np.zeros((len(paths), self.n_features), dtype=np.float32)
        for i, path in enumerate(paths):
            levels = parse_path(path)[: self.depth]
            matched = 0
            for d, prefix in enumerate(_prefixes(levels)):
                n, pos = self.counts.get(prefix, (0, 0))
                if n > 0 and matched == d:
                    matched += 1
                out[i, d] = self._rate(n, pos) - self.global_rate
                out[i, self.depth + d] = math.log1p(n) / 10
            out[i, -1] = matched / len(levels)
        return out

    def out_of_fold_features(self, paths: Sequence[str], labels: Sequence[int], groups: Sequence,
                             n_folds: int = 5, seed: int = 0) -> np.ndarray:
        """Features of the training rows these priors were fitted on, each from priors fitted on the other inner
        folds only (target statistics out of fold). Inner folds are drawn by `groups` (the query), so a row's own
        label never reaches its features while its category's other queries do.

        Leaving only the row itself out would not do: on a path with n rows of which p positive, a positive then
        reads (p - 1) / (n - 1) and a negative p / (n - 1), so within a path the feature is a function of the
        row's own label and a model reads the label off it (train AUC 1.0 on random labels)."""
        from sklearn.model_selection import GroupKFold

        groups = np.asarray(groups)
        n_splits = min(n_folds, len(set(groups.tolist())))
        out = np.zeros((len(paths), self.n_features), dtype=np.float32)
        if n_splits < 2:  # one group: nothing to hold out against, so no statistics at all
            inner = PrefixPriors(self.depth, self.strength, self.global_rate, {})
            return inner.features(paths)
        folds = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for fit_rows, score_rows in folds.split(np.zeros(len(paths)), groups=groups):
            inner = PrefixPriors.fit([paths[i] for i in fit_rows], [labels[i] for i in fit_rows],
                                     depth=self.depth, strength=self.strength)
            out[score_rows] = inner.features([paths[i] for i in score_rows])
        return out

    def to_dict(self) -> dict:
        return {"depth": self.depth, "strength": self.strength, "global_rate": self.global_rate,
                "counts": {k: list(v) for k, v in self.counts.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> PrefixPriors:
        return cls(depth=int(d["depth"]), strength=float(d["strength"]), global_rate=float(d["global_rate"]),
                   counts={str(k): [int(v[0]), int(v[1])] for k, v in d["counts"].items()})


def _binary(label: int) -> int:
    if label not in (0, 1):
        raise ValueError(f"labels must be 0 or 1, got {label!r}")
    return int(label)
