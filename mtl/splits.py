"""Cross-validation splits: a fold number per record, grouped so validation never sees a training group.

- `ca` (the paper's split): QI grouped by query text, stratified by language x label; QC grouped by the first N
  category levels ("category-aware"), stratified by language x top-level category x label.
- `language`: whole languages held out per fold, to measure zero-shot languages.
- `random`: stratified by language x label, ungrouped. Leaky on purpose: it shows the optimism such a split reports.

    mtl split --input data/sample/train_QI.txt --output runs/splits/train_QI.folds.txt --strategy ca

The leakage check runs after every grouped split and raises if a group sits in more than one fold.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold

from mtl.errors import ConfigError, LeakageError, MtlError
from mtl.taxonomy import join_levels, parse_path


def normalise_query(query: str) -> str:
    return " ".join(str(query).lower().split())


def split_groups(records: pd.DataFrame, task: str, strategy: str, qc_group_levels: int = 2) -> pd.Series:
    """The unit that must not straddle folds: language (language split), category group (QC), query (QI).

    Query and category text are compared lower-cased with collapsed spaces: training reads them cleaned that way, so
    two spellings that clean to the same text are one group."""
    if qc_group_levels < 1:
        raise ConfigError(f"QC group levels must be >= 1, got {qc_group_levels}")
    if strategy == "language":
        return records["language"].astype(str)
    if task == "qc":
        return records["category_path"].map(lambda p: _safe_group(p, qc_group_levels))
    return records["origin_query"].map(normalise_query)


def strata(records: pd.DataFrame, task: str) -> pd.Series:
    """Language x label (x top-level category for QC): the mix each fold should keep."""
    parts = records["language"].astype(str) + "|" + records["label"].astype(str)
    if task == "qc":
        parts = parts + "|" + records["category_path"].map(lambda p: _safe_group(p, 1))
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
    if strategy != "random":
        check_leakage(groups, folds)
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
        f"{len(y)} rows in {n_groups} {'category groups' if task == 'qc' else 'queries'}"
    facts = f"{rows}, and the largest {stratum} stratum has {largest} row{'s' if largest != 1 else ''}"
    needs = "a stratum with a row per fold" if strategy == "random" else \
        "a group per fold and a stratum with a row per fold"
    advice = f"use at most {limit} folds" if limit >= 2 else "there are too few rows to split"
    if strategy == "ca" and task == "qc" and n_groups < n_folds:
        advice += " (or group by more category levels)"
    raise MtlError(f"{task} {strategy} split into {n_folds} folds: {facts}; the split needs {needs}, so {advice}")


def check_leakage(groups: pd.Series, folds: np.ndarray) -> None:
    """Raise LeakageError naming groups that appear in more than one fold."""
    folds_per_group = pd.Series(folds, index=groups.index).groupby(groups.values).nunique()
    leaked = folds_per_group[folds_per_group > 1]
    if len(leaked):
        examples = ", ".join(repr(g) for g in leaked.index[:5])
        raise LeakageError(f"{len(leaked)} groups appear in more than one fold, e.g. {examples}")


def overlap_report(records: pd.DataFrame, task: str, folds: np.ndarray, qc_group_levels: int = 2) -> dict:
    """Share of each fold's validation rows whose query (QI) / category group (QC) also occurs in its training folds:
    0 for a clean grouped split, large for the random split."""
    groups = split_groups(records, task, "ca", qc_group_levels).to_numpy()
    shares = {}
    for fold in np.unique(folds):
        seen = set(groups[folds != fold])
        val = groups[folds == fold]
        shares[int(fold)] = float(np.mean([g in seen for g in val])) if len(val) else 0.0
    return shares


def fold_summary(records: pd.DataFrame, folds: np.ndarray) -> pd.DataFrame:
    """Rows, positive rate and language count per fold: what `mtl split` prints."""
    frame = pd.DataFrame({"fold": folds, "label": records["label"].to_numpy(), "language": records["language"].to_numpy()})
    return frame.groupby("fold").agg(rows=("label", "size"), positive_rate=("label", "mean"),
                                     languages=("language", "nunique"))


def _safe_group(path: str, n: int) -> str:
    """Category group of a path; an unparsable (empty) path forms its own group rather than failing the split."""
    try:
        levels = parse_path(normalise_query(path))
    except ValueError:
        return ""
    return join_levels(levels[:n])

