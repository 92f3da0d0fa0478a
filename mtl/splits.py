"""Cross-validation splits: a fold number per record, grouped so validation never sees a training group.

- `ca` (the paper's split): QI grouped by query text, stratified by language x label; QC grouped by the subtrees
  rooted at depth N of the file's category tree ("category-aware": a category N levels down and everything below it
  go to one fold), stratified by language x top-level category x label.
- `language`: whole languages held out per fold, to measure zero-shot languages.
- `random`: stratified by language x label, ungrouped. Leaky on purpose: it shows the optimism such a split reports.
- `query`: both tasks grouped by query text, as the held-out test split is carved, stratified as `ca`: a QC fold then
  holds paths its training folds hold, as a test of whole queries does.

    mtl split --input data/sample/train_QI.txt --output runs/splits/train_QI.folds.txt --strategy ca

The leakage check runs after every grouped split and raises if a group sits in more than one fold (for QC CA it walks
the tree). `split_report` says what came out: per fold its rows, groups and positive rate, and the largest group's
share of the file, with a warning when that group alone is more than a fold's share.
"""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold

from mtl.errors import ConfigError, LeakageError, MtlError
from mtl.taxonomy import ROOT, Taxonomy, join_levels, parse_path, render_levels


def normalise_query(query: str) -> str:
    return " ".join(str(query).lower().split())


def split_groups(records: pd.DataFrame, task: str, strategy: str, qc_group_levels: int = 2) -> pd.Series:
    """The unit that must not straddle folds: language (language split), query (query split, and QI under ca),
    category subtree (QC under ca).

    Query and category text are compared lower-cased with collapsed spaces: training reads them cleaned that way, so
    two spellings that clean to the same text are one group."""
    if qc_group_levels < 1:
        raise ConfigError(f"QC group levels must be >= 1, got {qc_group_levels}")
    if strategy == "language":
        return records["language"].astype(str)
    if task == "qc" and strategy != "query":
        return category_groups(records, qc_group_levels)
    return records["origin_query"].map(normalise_query)


def category_nodes(records: pd.DataFrame) -> pd.Series:
    """Each record's node in the category tree: its path as training reads it (lower-cased, spaces collapsed), or
    ROOT for a path with no level (raw rows that `mtl split` reads and training drops), which form one group."""
    return records["category_path"].map(_node)


def category_tree(nodes: pd.Series) -> Taxonomy:
    """The tree of the records' paths, structure only (no labels): built from the whole file being split, so every
    record's subtree is known before any fold exists."""
    return Taxonomy.from_paths(node for node in nodes.unique() if node != ROOT)


def category_groups(records: pd.DataFrame, levels: int) -> pd.Series:
    """Each record's subtree root: its path's ancestor at depth `levels` of the file's tree (a shallower path is its
    own group)."""
    nodes = category_nodes(records)
    return nodes.map(category_tree(nodes).subtree_roots(levels))


def strata(records: pd.DataFrame, task: str) -> pd.Series:
    """Language x label (x top-level category for QC): the mix each fold should keep."""
    parts = records["language"].astype(str) + "|" + records["label"].astype(str)
    if task == "qc":
        parts = parts + "|" + category_groups(records, 1)
    return parts


def assign_folds(records: pd.DataFrame, task: str, strategy: str = "ca", n_folds: int = 5, seed: int = 42,
                 qc_group_levels: int = 2) -> np.ndarray:
    """Fold index per record (0..n_folds-1), checked for leakage when the strategy is grouped."""
    if n_folds < 2:
        raise ConfigError(f"a split needs at least 2 folds, got {n_folds}")
    if "label" not in records:
        raise MtlError("splitting needs labelled records (a 'label' field)")
    y = strata(records, task)
    groups = split_groups(records, task, strategy, qc_group_levels)
    check_fold_count(y, groups, task, strategy, n_folds)
    if strategy == "random":
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    elif strategy == "language":
        splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)

    folds = np.full(len(records), -1, dtype=np.int64)
    with warnings.catch_warnings():
        # Rare language x label strata (fewer members than folds) are expected in real data and harmless here.
        warnings.filterwarnings("ignore", message="The least populated class")
        split_groups_arg = None if strategy == "random" else groups
        for fold, (_, val_idx) in enumerate(splitter.split(np.zeros(len(records)), y, split_groups_arg)):
            folds[val_idx] = fold
    empty = [k for k in range(n_folds) if not (folds == k).any()]
    if empty:
        raise MtlError(f"{task} {strategy} split: folds {empty} of {n_folds} came out empty ({len(records)} rows, "
                       f"{groups.nunique()} groups); use fewer folds")
    check_split(records, task, strategy, folds, qc_group_levels)
    return folds


def carve_test(records: pd.DataFrame, task: str, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the held-out test rows: about `fraction` of the queries, whole (a query's pairs all on one
    side), stratified by language x label. Made before any CV fold, so no fold, threshold or selection sees it."""
    groups = records["origin_query"].map(normalise_query)
    n_splits = max(2, round(1 / fraction))
    if groups.nunique() < n_splits:
        raise MtlError(f"{task}: {groups.nunique()} queries cannot give a test split of {fraction:g}; lower "
                       f"data.test_fraction (0 = none) or give data.{task}_test")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    y = records["language"].astype(str) + "|" + records["label"].astype(str)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        _, test_rows = next(splitter.split(np.zeros(len(records)), y, groups))
    mask = np.zeros(len(records), dtype=bool)
    mask[test_rows] = True
    return mask


def check_fold_count(y: pd.Series, groups: pd.Series, task: str, strategy: str, n_folds: int) -> None:
    """Refuse a fold count the split cannot fill, saying how many rows and groups there are and which fold count
    works: grouped splits need a group per fold, stratified ones (ca, random) a language x label stratum with a row
    per fold (scikit-learn's own limits, checked here to say so in the data's terms)."""
    n_groups = int(groups.nunique())
    if strategy == "language":
        if n_groups < n_folds:
            advice = f"use at most {n_groups} folds" if n_groups >= 2 else "it needs at least 2 languages"
            raise MtlError(f"language split: {n_groups} languages cannot fill {n_folds} folds; {advice}")
        return
    largest = int(y.value_counts().max()) if len(y) else 0
    limit = largest if strategy == "random" else min(largest, n_groups)
    if limit >= n_folds:
        return
    stratum = "language x label" + (" x top category" if task == "qc" else "")
    rows = f"{len(y)} rows" if strategy == "random" else \
        f"{len(y)} rows in {n_groups} {'category groups' if task == 'qc' and strategy == 'ca' else 'queries'}"
    facts = f"{rows}, and the largest {stratum} stratum has {largest} row{'s' if largest != 1 else ''}"
    needs = "a stratum with a row per fold" if strategy == "random" else \
        "a group per fold and a stratum with a row per fold"
    advice = f"use at most {limit} folds" if limit >= 2 else "there are too few rows to split"
    if strategy == "ca" and task == "qc" and n_groups < n_folds:
        advice += " (or group by more category levels)"
    raise MtlError(f"{task} {strategy} split into {n_folds} folds: {facts}; the split needs {needs}, so {advice}")


def check_split(records: pd.DataFrame, task: str, strategy: str, folds: np.ndarray, qc_group_levels: int = 2) -> None:
    """Raise LeakageError if a grouped split lets one group into two folds: for QC under `ca` by walking the category
    tree (`check_category_leakage`), otherwise by the group labels. The random split is leaky on purpose."""
    if strategy == "random":
        return
    if task == "qc" and strategy == "ca":
        check_category_leakage(category_nodes(records), folds, qc_group_levels)
    else:
        check_leakage(split_groups(records, task, strategy, qc_group_levels), folds)


def check_leakage(groups: pd.Series, folds: np.ndarray) -> None:
    """Raise LeakageError naming groups that appear in more than one fold."""
    folds_per_group = pd.Series(folds, index=groups.index).groupby(groups.values).nunique()
    leaked = folds_per_group[folds_per_group > 1]
    if len(leaked):
        examples = ", ".join(repr(g) for g in leaked.index[:5])
        raise LeakageError(f"{len(leaked)} groups appear in more than one fold, e.g. {examples}")


def check_category_leakage(nodes: pd.Series, folds: np.ndarray, levels: int) -> None:
    """Raise LeakageError unless every subtree rooted at depth `levels` of the records' category tree (that node and
    all below it) has all its records in one fold, and so has every path shallower than `levels` (its own group).
    It rebuilds the tree from the records' paths and walks it rather than trusting the group labels the split was
    given, so a wrong grouping fails too."""
    g = category_tree(nodes).graph
    folds_at = pd.Series(folds).groupby(nodes.to_numpy()).agg(lambda f: set(f.tolist())).to_dict()
    leaked = []
    for node, depth in g.nodes(data="depth"):
        if depth > levels:
            continue
        members = nx.descendants(g, node) | {node} if depth == levels else {node}
        spread = set().union(*(folds_at.get(m, set()) for m in members))
        if len(spread) > 1:
            leaked.append((node, sorted(spread)))
    if leaked:
        examples = "; ".join(f"{_subtree(node)} in folds {', '.join(map(str, spread))}"
                             for node, spread in sorted(leaked)[:5])
        raise LeakageError(f"{len(leaked)} category subtrees (depth {levels}) have records in more than one fold, "
                           f"e.g. {examples}")


def overlap_report(records: pd.DataFrame, task: str, folds: np.ndarray, qc_group_levels: int = 2) -> dict:
    """Share of each fold's validation rows whose query (QI) / category subtree (QC) also occurs in its training
    folds: 0 for a clean `ca` split, large for the random split and for a QC query split (whose unit is the query)."""
    return _overlap(split_groups(records, task, "ca", qc_group_levels).to_numpy(), folds)


def _overlap(groups: np.ndarray, folds: np.ndarray) -> dict:
    shares = {}
    for fold in np.unique(folds):
        seen = set(groups[folds != fold])
        val = groups[folds == fold]
        shares[int(fold)] = float(np.mean([g in seen for g in val])) if len(val) else 0.0
    return shares


def fold_summary(records: pd.DataFrame, folds: np.ndarray, groups: pd.Series) -> pd.DataFrame:
    """Per fold: rows, positive rate, languages, groups (the split's unit) and the share of all rows that the
    fold's largest group holds."""
    frame = pd.DataFrame({"fold": folds, "label": records["label"].to_numpy(),
                          "language": records["language"].to_numpy(), "group": groups.to_numpy()})
    largest = frame.groupby(["fold", "group"]).size().groupby(level="fold").max() / len(frame)
    summary = frame.groupby("fold").agg(rows=("label", "size"), positive_rate=("label", "mean"),
                                        languages=("language", "nunique"), groups=("group", "nunique"))
    return summary.assign(largest_group_share=largest)


def split_report(records: pd.DataFrame, task: str, strategy: str, folds: np.ndarray,
                 qc_group_levels: int = 2) -> dict:
    """What a split did, JSON-ready, for `mtl split` to print and a CV run to keep in metrics.json (`split`): per fold
    `fold_summary` and the overlap with the training folds (`overlap_report`); the file's largest group (the
    random and query splits are reported in `ca` groups, for comparison: under `query` a QC fold's overlap is the share
    of its rows whose category subtree training holds); and `warning`, set when under `ca` that group holds more
    than 1/n_folds of the rows, so its fold is bound to be larger than the others (a language split's folds are
    languages, unequal by design)."""
    by_language = strategy == "language"
    groups = split_groups(records, task, "language" if by_language else "ca", qc_group_levels)
    unit = "language" if by_language else {"qc": f"depth-{qc_group_levels} category subtree", "qi": "query"}[task]
    sizes = groups.value_counts()
    n_folds = int(len(np.unique(folds)))
    name, rows = str(sizes.index[0]), int(sizes.iloc[0])
    share = rows / len(records)
    summary = fold_summary(records, folds, groups)
    summary["overlap"] = pd.Series(_overlap(groups.to_numpy(), folds))
    warning = None
    if strategy == "ca" and share > 1 / n_folds:
        advice = "use fewer folds" + (" or group by more category levels (cv.qc_group_levels, --group-levels)"
                                      if task == "qc" else "")
        warning = (f"{task.upper()} {strategy} split: the largest {unit}, {_group_name(name, task, strategy)}, holds "
                   f"{share:.1%} of the {len(records)} rows, more than a fold's share (1/{n_folds} = "
                   f"{1 / n_folds:.1%}): its fold is bound to be larger than the others; {advice}")
    return {
        "task": task, "strategy": strategy, "n_folds": n_folds, "rows": len(records), "unit": unit,
        "groups": int(len(sizes)), "largest_group": {"name": name, "rows": rows, "share": share},
        "folds": {str(fold): row for fold, row in summary.to_dict(orient="index").items()},
        "warning": warning,
    }


def format_split_report(report: dict) -> str:
    """`split_report` as `mtl split` prints it: the fold table, the largest group, the overlap per fold."""
    table = pd.DataFrame.from_dict(report["folds"], orient="index").rename_axis("fold").drop(columns="overlap")
    largest = report["largest_group"]
    name = _group_name(largest["name"], report["task"], report["strategy"])
    overlap = ", ".join(f"fold {k}: {v['overlap']:.1%}" for k, v in report["folds"].items())
    return "\n".join([
        table.to_string(float_format=lambda x: f"{x:.3f}"),
        f"{report['groups']} {plural(report['unit'])}; the largest, {name}, holds {largest['rows']} rows "
        f"({largest['share']:.1%} of the file)",
        f"validation rows whose {report['unit']} also occurs in training folds: {overlap}",
    ])


def plural(unit: str) -> str:
    return "queries" if unit == "query" else unit + "s"


def _group_name(name: str, task: str, strategy: str) -> str:
    return _subtree(name) if task == "qc" and strategy != "language" else repr(name)


def _subtree(node: str) -> str:
    return "(no category)" if node == ROOT else "`" + render_levels(node) + "`"


def _node(path: str) -> str:
    try:
        return join_levels(parse_path(normalise_query(path)))
    except ValueError:
        return ROOT
