"""Task data: the training and validation sets of one task, tokenized and ready to batch.

    splits = load_splits(cfg, ["qc", "qi"])                  # records per task: train / val (dev file or CV fold)
    data = make_task_data(splits["qc"].train, "qc", cfg, pair_tokenizer, priors, leave_one_out=True)
    batch = collate(data, rows, pad_id)                     # right-padded tensors for those rows

The QC hierarchy features come from `PrefixPriors` fitted on the training records of the fold; training rows get
leave-one-out values so no row sees its own label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from mtl.config import ExperimentConfig
from mtl.data.pairs import PairTokenizer, build_pairs, tokenize_pairs
from mtl.data.records import LoadReport, TARGET_FIELD, load_task_records
from mtl.errors import MtlError
from mtl.splits import assign_folds
from mtl.taxonomy import PrefixPriors

log = logging.getLogger(__name__)


@dataclass
class TaskSplit:
    train: pd.DataFrame
    val: pd.DataFrame
    reports: list[LoadReport]


@dataclass
class TaskData:
    task: str
    records: pd.DataFrame
    input_ids: list[list[int]]
    features: np.ndarray | None = None
    lengths: np.ndarray = field(init=False)

    def __post_init__(self):
        self.lengths = np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def labels(self) -> np.ndarray:
        return self.records["label"].to_numpy(dtype=np.int64)

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


def load_splits(cfg: ExperimentConfig, tasks) -> dict[str, TaskSplit]:
    return {task: load_split(cfg, task) for task in tasks}


def load_split(cfg: ExperimentConfig, task: str) -> TaskSplit:
    """Training and validation records of one task: the dev file when `cv.fold=none`, else fold k of the training
    file (its `fold` column when `mtl split` wrote one, otherwise the configured split computed here)."""
    read = dict(require_label=True, collapse_spaces=cfg.data.clean, lowercase=cfg.data.lowercase)
    train_file = getattr(cfg.data, f"{task}_train")
    records, report = load_task_records(train_file, task, **read)
    reports = [report]
    if cfg.cv.fold == "none":
        val, val_report = load_task_records(getattr(cfg.data, f"{task}_dev"), task, **read)
        reports.append(val_report)
        train = records
    else:
        if "fold" in records:
            folds = records["fold"].to_numpy(dtype=np.int64)
        else:
            folds = assign_folds(records, task, cfg.cv.strategy, cfg.cv.n_folds, cfg.train.seed, cfg.cv.qc_group_levels)
        fold = int(cfg.cv.fold)
        if fold not in set(folds.tolist()):
            raise MtlError(f"{train_file}: no records in fold {fold} (folds present: {sorted(set(folds.tolist()))})")
        train = records[folds != fold].reset_index(drop=True)
        val = records[folds == fold].reset_index(drop=True)
    train = subsample(train, cfg.data.train_limit, cfg.train.seed)
    val = subsample(val, cfg.data.dev_limit, cfg.train.seed)
    for r in reports:
        log.info(r.summary())
    log.info("%s: %d training, %d validation records", task.upper(), len(train), len(val))
    return TaskSplit(train, val, reports)


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
    if not cfg.taxonomy.features:
        return None
    return PrefixPriors.fit(qc_train["category_path"].tolist(), qc_train["label"].tolist(),
                            depth=cfg.taxonomy.prior_depth, strength=cfg.taxonomy.prior_strength)


def make_task_data(records: pd.DataFrame, task: str, cfg: ExperimentConfig, pair_tokenizer: PairTokenizer,
                   priors: PrefixPriors | None = None, leave_one_out: bool = False) -> TaskData:
    pairs = build_pairs(records, task, cfg.augment.translation, cfg.taxonomy.render)
    input_ids = tokenize_pairs(pairs, pair_tokenizer, cfg.data.cache_dir)
    features = None
    if task == "qc" and priors is not None:
        paths = records[TARGET_FIELD["qc"]].tolist()
        labels = records["label"].tolist() if leave_one_out else None
        features = priors.features(paths, labels)
    return TaskData(task, records, input_ids, features)
