"""Category paths and the category tree, plus hierarchy prior features for the query-category (QC) model.

Category paths such as ``food,grocery,flour, baking and cooking,decorations`` separate levels with a bare ``,``
while a level name may itself contain ``", "``; every function here parses paths the same way so that node ids,
group ids (used for leakage-free CV splits) and prefix features agree. Dev/test data contain paths never seen in
training, so the tree answers lookups for unseen paths (complete / partial / none) instead of failing.
"""

from __future__ import annotations

import json
import math
import re
import string
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


def group(path: str, n: int) -> str:
    """Canonical id of the first `n` levels (the whole path if it is shorter)."""
    if n < 1:
        raise ValueError(f"group level must be >= 1, got {n}")
    return join_levels(parse_path(path)[:n])


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
    def from_paths(cls, paths: Iterable[str]) -> Taxonomy:
        """Build the tree; duplicates add to counts rather than nodes."""
        g = nx.DiGraph()
        g.add_node(ROOT, name=ROOT, depth=0, count=0)
        for path in paths:
            levels = parse_path(path)
            g.nodes[ROOT]["count"] += 1
            parent = ROOT
            for d, node in enumerate(_prefixes(levels), start=1):
                if node in g:
                    g.nodes[node]["count"] += 1
                else:
                    g.add_node(node, name=levels[d - 1], depth=d, count=1)
                    g.add_edge(parent, node)
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
