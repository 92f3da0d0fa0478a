"""Task data: the training and validation sets of one task, tokenized and ready to batch.

    check_inputs(cfg)                                        # every file the run reads exists (before any work)
    splits = load_splits(cfg, ["qc", "qi"])                  # records per task: train / val (dev file or CV fold)
    data = make_task_data(splits["qc"].train, "qc", cfg, pair_tokenizer, priors, fitted_on=True)
    batch = collate(data, rows, pad_id)                     # right-padded tensors for those rows

The QC hierarchy features come from `PrefixPriors` fitted on the training records of the fold; training rows get
out-of-fold values (priors fitted on inner folds of whole queries that exclude the row's), so no row's features
carry its own label.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtl.config import TASKS, ExperimentConfig
from mtl.data.pairs import PairTokenizer, build_pairs, tokenize_pairs
from mtl.data.records import LINE, LoadReport, TARGET_FIELD, load_task_records
from mtl.errors import ConfigError, DataError, LeakageError, MtlError
from mtl.io import input_problem
from mtl.overlap import OVERLAP_FEATURES, feature_dim, feature_set, overlap_features
from mtl.splits import assign_folds, carve_test, check_split, normalise_query, split_report
from mtl.taxonomy import NodeIndex, PrefixPriors

log = logging.getLogger(__name__)


@dataclass
class TaskSplit:
    train: pd.DataFrame
    val: pd.DataFrame
    reports: list[LoadReport]
    test: pd.DataFrame | None = None
    """Held-out records scored once, by the selected model, at the threshold chosen on `val` (None: no test split)."""
    val_all: pd.DataFrame | None = None
    """All validation records, of which `val` is the `data.dev_limit` sample."""
    split: dict | None = None
    """On a CV fold: `mtl.splits.split_report` of the folds (metrics.json keeps it under `split`)."""


@dataclass
class TaskData:
    task: str
    records: pd.DataFrame
    input_ids: list[list[int]]
    features: np.ndarray | None = None
    queries: np.ndarray | None = None
    """Query id per pair (pairs with the same query side share it): `shared` batching keeps them together."""
    encoder_columns: np.ndarray | None = None
    """The sentence encoder's two rankings per pair (`model.encoder=use`, `mtl.encoder`), fused with the model's
    logit wherever these pairs are scored; None without."""
    lengths: np.ndarray = field(init=False)

    def __post_init__(self):
        self.lengths = np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)

    @functools.cached_property
    def shared_prefix(self) -> int:
        """Leading tokens every pair has (`<bos>`, and `data.template=prompt`'s opening words): the first and last
        sequence in sorted order share exactly what all of them share."""
        from mtl.packing import common_prefix  # here: mtl.packing imports this module

        sequences = [tuple(ids) for ids in self.input_ids]
        return common_prefix(min(sequences), max(sequences)) if sequences else 0

    @property
    def labels(self) -> np.ndarray:
        return self.records["label"].to_numpy(dtype=np.int64)

    @functools.cached_property
    def class_weights(self) -> tuple[float, float]:
        """(negative, positive) pair weights under which each class weighs half of the loss (`train.class_weight`):
        the inverse of each class's share, halved, so the mean weight over these pairs is 1. Cached: a run reads it
        every step, and its training pairs do not change."""
        rate = float(self.labels.mean()) if len(self) else 0.0
        if not 0 < rate < 1:
            raise ConfigError(f"train.class_weight=balanced: {self.task}'s {len(self)} training pairs are all of one "
                              "class; use train.class_weight=none")
        return 0.5 / (1 - rate), 0.5 / rate

    @property
    def languages(self) -> np.ndarray:
        return self.records["language"].to_numpy()


def collate(data: TaskData, rows, pad_id: int) -> dict:
    """Right-padded tensors for `rows` of one task. Written out rather than DataCollatorWithPadding because a batch
    also carries QC features and the row indices that error messages and prediction outputs need."""
    rows = np.asarray(rows)
    width = int(data.lengths[rows].max())
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids = data.input_ids[row]
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[i, : len(ids)] = 1
    batch = {"task": data.task, "input_ids": input_ids, "attention_mask": attention_mask,
             "rows": torch.as_tensor(rows, dtype=torch.long)}
    if "label" in data.records:
        batch["labels"] = torch.as_tensor(data.labels[rows], dtype=torch.float32)
    if data.features is not None:
        batch["features"] = torch.as_tensor(data.features[rows], dtype=torch.float32)
    return batch


def check_inputs(cfg: ExperimentConfig) -> None:
    """Every file the run will read exists, and its records load and split as the run will load and split them,
    checked before the run folder is made: a typo in a path or a bad line then fails without leaving a half-started
    run that blocks both a rerun and --resume (and a TAPT run finds bad target-task data before its first stage
    trains). The records are read twice, here and when training loads them: seconds, next to a run."""
    tasks = (cfg.train.task,) if cfg.train.mode == "single" else TASKS  # tapt trains the other task first
    for key in input_keys(cfg, tasks):
        _check_path(key, getattr(cfg.data, key.split(".")[1]), "file")
    if cfg.model.init_from:
        from mtl.model import check_warm_start

        _check_path("model.init_from", cfg.model.init_from, "folder")
        check_warm_start(cfg)
    if cfg.train.deepspeed:
        _check_path("train.deepspeed", cfg.train.deepspeed, "file")
    _check_backbone(cfg.model.backbone, cfg.model.gguf_file)
    folds = cfg.cv.folds
    first_fold = cfg if len(folds) < 2 and cfg.cv.fold != "all" else \
        dataclasses.replace(cfg, cv=dataclasses.replace(cfg.cv, fold=str(folds[0])))
    level = log.level
    log.setLevel(logging.WARNING)  # the counts are logged when the run loads the records
    try:
        for task in tasks:
            load_split(first_fold, task)
    finally:
        log.setLevel(level)


def input_keys(cfg: ExperimentConfig, tasks) -> list[str]:
    """The `data.*` keys of the files a run of `tasks` reads: the training files, the dev files without CV, and the
    test files where set."""
    keys = [f"data.{t}_train" for t in tasks] + ([f"data.{t}_dev" for t in tasks] if cfg.cv.fold == "none" else [])
    return keys + [f"data.{t}_test" for t in tasks if getattr(cfg.data, f"{t}_test")]


def _check_path(key: str, value: str, kind: str) -> None:
    if not value.strip():
        raise ConfigError(f"{key}={value!r}: empty; give a {kind}")
    problem = input_problem(Path(value).expanduser(), kind)
    if problem:
        raise ConfigError(f"{key}={value!r}: {problem}")


def _check_backbone(spec: str, gguf_file: str) -> None:
    """The cheap part of `mtl.backbone.resolve` (same cases): the path is there, without converting or loading."""
    from mtl.backbone import EMBEDDED

    if spec in EMBEDDED:
        return
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return
    if path.is_dir() and gguf_file:
        _check_path("model.gguf_file", str(path / gguf_file), "file")
        return
    if path.is_dir() and (path / "config.json").is_file():
        return
    raise ConfigError(f"model.backbone={spec!r}: expected {', '.join(EMBEDDED)}, a folder with config.json, or a "
                      ".gguf file" + ("" if path.exists() else " (no such file or folder)"))


def load_splits(cfg: ExperimentConfig, tasks) -> dict[str, TaskSplit]:
    return {task: load_split(cfg, task) for task in tasks}


def load_split(cfg: ExperimentConfig, task: str) -> TaskSplit:
    """Training, validation and test records of one task. Test: the `data.<task>_test` file, else whole queries
    carved from the training file (`data.test_fraction`) before anything else. Validation: the dev file when
    `cv.fold=none`, else fold k of the rest of the training file (its `fold` column when `mtl split` wrote one,
    otherwise the configured split computed here). `data.split_seed` draws all of it."""
    train_file = getattr(cfg.data, f"{task}_train")
    records, test, reports, read = training_records(cfg, task)
    split = None
    if cfg.cv.fold == "none":
        val, val_report = load_task_records(getattr(cfg.data, f"{task}_dev"), task, **read)
        reports.append(val_report)
        train = records
    else:
        if "fold" in records:
            folds = fold_column(records, train_file, cfg.cv.n_folds)
            if cfg.cv.strategy != "random":
                check_fold_column_leakage(records, folds, task, cfg, train_file)
        else:
            folds = assign_folds(records, task, cfg.cv.strategy, cfg.cv.n_folds, cfg.data.split_seed,
                                 cfg.cv.qc_group_levels)
        split = split_report(records, task, cfg.cv.strategy, folds, cfg.cv.qc_group_levels)
        if split["warning"]:
            log.warning("%s: %s", train_file, split["warning"])
        fold = int(cfg.cv.fold)
        if fold not in set(folds.tolist()):
            raise MtlError(f"{train_file}: no records in fold {fold} (folds present: {sorted(set(folds.tolist()))})")
        train = records[folds != fold].reset_index(drop=True)
        val = records[folds == fold].reset_index(drop=True)
    train = subsample(train, cfg.data.train_limit, cfg.data.split_seed)
    val_all, val = val, subsample(val, cfg.data.dev_limit, cfg.data.split_seed)
    for r in reports:
        log.info(r.summary())
    log.info("%s: %d training, %d validation, %s test records", task.upper(), len(train), len(val),
             "no" if test is None else len(test))
    return TaskSplit(train, val, reports, test, val_all, split)


def training_records(cfg: ExperimentConfig, task: str):
    """What every run does first: (the training file's records left for training and validation, the test records
    or None, the load reports, the read options), the test records carved as `hold_out_test` does."""
    read = dict(require_label=True, collapse_spaces=cfg.data.clean, lowercase=cfg.data.lowercase)
    records, report = load_task_records(getattr(cfg.data, f"{task}_train"), task, **read)
    reports = [report]
    records, test = hold_out_test(cfg, task, records, reports, read)
    return records, test, reports, read


def hold_out_test(cfg: ExperimentConfig, task: str, records: pd.DataFrame, reports: list, read: dict):
    """(records left for training and validation, test records or None)."""
    test_file = getattr(cfg.data, f"{task}_test")
    if test_file:
        test, test_report = load_task_records(test_file, task, **read)
        reports.append(test_report)
        return records, test
    if not cfg.data.test_fraction:
        return records, None
    mask = carve_test(records, task, cfg.data.test_fraction, cfg.data.split_seed)
    test = records[mask].reset_index(drop=True)
    rest = records[~mask].reset_index(drop=True)
    test.attrs.update(records.attrs)
    rest.attrs.update(records.attrs)
    return rest, test


def fold_column(records: pd.DataFrame, path, n_folds: int) -> np.ndarray:
    """The `fold` column written by `mtl split`, checked: a whole number in 0..n_folds-1 on every row, every fold
    used (a file split into 3 folds under cv.n_folds=5 would fail two folds into `--fold all`)."""
    folds = np.empty(len(records), dtype=np.int64)
    for i, (line, value) in enumerate(zip(records[LINE].tolist(), records["fold"].tolist())):
        fold = _fold_number(value)
        if fold is None or not 0 <= fold < n_folds:
            problem = "missing" if fold is None and _is_missing(value) else f"got {value!r}"
            raise DataError(path, line, "fold", f"must be a fold number 0..{n_folds - 1} (cv.n_folds={n_folds}); "
                                                f"{problem}"[:300])
        folds[i] = fold
    present = sorted(set(folds.tolist()))
    if len(present) != n_folds:
        raise DataError(path, None, "fold", f"holds folds {present} but cv.n_folds={n_folds}: set cv.n_folds to the "
                                            f"number of folds the file was split into, or re-split it with mtl split")
    return folds


def check_fold_column_leakage(records: pd.DataFrame, folds: np.ndarray, task: str, cfg: ExperimentConfig,
                              path) -> None:
    """A precomputed split must keep the configured strategy's groups apart (a `--strategy random` file used under
    cv.strategy=ca would report leaky, optimistic F1)."""
    try:
        check_split(records, task, cfg.cv.strategy, folds, cfg.cv.qc_group_levels)
    except LeakageError as err:
        levels = f" --group-levels {cfg.cv.qc_group_levels}" if task == "qc" and cfg.cv.strategy == "ca" else ""
        raise LeakageError(
            f"{path}: its fold column leaks groups under cv.strategy={cfg.cv.strategy}: {err}. Re-split it with "
            f"`mtl split --input FILE --output FILE --strategy {cfg.cv.strategy} --n-folds {cfg.cv.n_folds}{levels}`, "
            f"drop the fold column to split here, or set cv.strategy=random to measure the leaky baseline on purpose"
        ) from None


def _fold_number(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)  # pandas holds an int column with gaps as floats
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _is_missing(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def subsample(records: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most `limit` rows, keeping the language x label mix (deterministic for a seed)."""
    if not limit or len(records) <= limit:
        return records
    strata = records["language"].astype(str) + "|" + records["label"].astype(str)
    shuffled = records.sample(frac=1.0, random_state=seed)
    rank = shuffled.groupby(strata.loc[shuffled.index]).cumcount() / strata.loc[shuffled.index].map(strata.value_counts())
    kept = shuffled.loc[rank.sort_values(kind="stable").index[:limit]]
    out = kept.sort_index().reset_index(drop=True)
    out.attrs.update(records.attrs)
    return out


def fit_priors(cfg: ExperimentConfig, qc_train: pd.DataFrame) -> PrefixPriors | None:
    if not cfg.taxonomy.priors:
        return None
    return PrefixPriors.fit(qc_train["category_path"].tolist(), qc_train["label"].tolist(),
                            depth=cfg.taxonomy.prior_depth, strength=cfg.taxonomy.prior_strength)


def make_task_data(records: pd.DataFrame, task: str, cfg: ExperimentConfig, pair_tokenizer: PairTokenizer,
                   priors: PrefixPriors | None = None, fitted_on: bool = False,
                   nodes: NodeIndex | None = None) -> TaskData:
    """QC features: the prefix priors' columns, then the node ids (`NodeIndex.ids`), of whichever is given.
    `fitted_on`: these are the records `priors` were fitted on (the training split), which get out-of-fold priors;
    other records get the priors' features as they are. Node ids carry no label, so every split reads them alike."""
    pairs = build_pairs(records, task, cfg.augment.translation, cfg.taxonomy.render)
    input_ids = tokenize_pairs(pairs, pair_tokenizer, cfg.data.cache_dir)
    queries = pd.factorize(pairs["text_a"])[0]
    features = None
    if task == "qc":
        paths = records[TARGET_FIELD["qc"]].tolist()
        # inner folds by the query as the splits compare it, not by `text_a`: with translation on, one query
        # with two translations would otherwise be two groups and read its own labels
        prior_features = priors.out_of_fold_features(paths, records["label"].tolist(),
                                                     records["origin_query"].map(normalise_query).tolist(),
                                                     seed=cfg.data.split_seed) if priors is not None and fitted_on else None
        features = qc_features(paths, priors, nodes, prior_features)
    elif cfg.model.qi_features != "none":
        features = qi_features(records, width=feature_dim(cfg.model.qi_features))
    return TaskData(task, records, input_ids, features, queries=queries)


def qi_features(records: pd.DataFrame, task: str = "qi", width: int = len(OVERLAP_FEATURES)) -> np.ndarray:
    """The QI head's `width` feature columns (`model.qi_features=overlap|overlap_binned`, `mtl.overlap`): the
    original query's word overlap with the title, the same with translation augmentation on or off (the translation
    is not read). For QC records (`task="qc"`: a QI head scoring them, zero-shot) the category path stands in for the
    title."""
    columns = feature_set(width)
    if columns == "none":
        raise ValueError("qi_features(width=0): a head without word-overlap columns reads none")
    return overlap_features(records["origin_query"].tolist(), records[TARGET_FIELD[task]].tolist(),
                            binned=columns == "overlap_binned")


def qc_features(paths, priors: PrefixPriors | None, nodes: NodeIndex | None, prior_features=None):
    """The QC head's feature columns: the priors' (or `prior_features` computed otherwise), then the node ids; None
    when the head reads neither. One layout for training, validation and `mtl predict`."""
    parts = ([priors.features(paths) if prior_features is None else prior_features] if priors is not None else []) + \
        ([nodes.ids(paths)] if nodes is not None else [])
    return np.concatenate(parts, axis=1).astype(np.float32) if parts else None
