"""What word overlap alone reaches on a QI fold: a logistic regression (and trees) on `mtl.overlap`'s columns.

    python benchmarks/overlap_baseline.py --name real-qi-fold0 --config configs/real_cpu.yaml --fold 0 \
        data.qi_train=../shared/data/real_QI_train.jsonl [model.qi_features=overlap_binned]

The same records, split and test carve as `mtl train --mode single --task qi --fold K` with the same config: fitted
on the fold's training records, scored on all its validation records and on the held-out test split, F1 on the test
split at the threshold that maximises F1 on all the fold's validation pairs. Writes
`benchmarks/results/overlap-<name>.md`: the bar a fine-tuned QI model with `model.qi_features=none` has to clear to
rank titles better than counting shared words, and the features' own test AUCs. The columns are
`model.qi_features`' (`overlap` when it is none); gradient-boosted trees on the same columns show what a head that
could weigh each column unevenly would find in them.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mtl.config import load_config
from mtl.data.tasks import load_splits, qi_features
from mtl.metrics import classification_report, majority_baseline, ranking_scores, tune_threshold
from mtl.overlap import OVERLAP_FEATURES, feature_dim


def fold_records(argv: list[str], task: str, description: str, need_test: bool = True):
    """A fold baseline's command line (`--name`, `--config`, `--fold`, `--output-dir`, overrides) and the records
    `mtl train --mode single --task <task> --fold K` would read: (args, config, split, validation, test), validation
    being all the fold's validation records; with `need_test`, a config that carves no test split is refused. Shared
    with `qc_signal.py`, `blind_labels.py` (validation only) and `lm_pmi.py`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--name", required=True, help="names the result file")
    parser.add_argument("--config")
    parser.add_argument("--fold", default="0")
    parser.add_argument("--output-dir", default="benchmarks/results")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    cfg = load_config(args.config,
                      [*args.overrides, "train.mode=single", f"train.task={task}", f"cv.fold={args.fold}"])
    split = load_splits(cfg, [task])[task]
    val, test = split.val_all if split.val_all is not None else split.val, split.test
    if test is None and need_test:
        raise SystemExit(f"no held-out test split (data.test_fraction=0 or a {task}_test file): nothing to score")
    return args, cfg, split, val, test


def scores_beside(path: str | None, records: pd.DataFrame, what: str, kind: str) -> pd.DataFrame | None:
    """`records`' id, language and label with a fold model's score from `path` (jsonl of id and score: its
    `oof_<task>.jsonl` or `mtl predict --with-scores` output), in `records`' order; every record must have exactly
    one. Shared with `lm_pmi.py` and `sentence_encoder.py`, which check it before their minutes of scoring."""
    if path is None:
        return None
    scored = pd.read_json(path, lines=True)[["id", "score"]]
    if scored["id"].duplicated().any():
        raise SystemExit(f"{path}: id: {scored['id'][scored['id'].duplicated()].iloc[0]} is scored twice")
    frame = records[["id", "language", "label"]].merge(scored, on="id", how="left")
    if frame["score"].isna().any():
        missing = frame["id"][frame["score"].isna()]
        raise SystemExit(f"{path}: id: no {kind} score for {len(missing)} of the {len(frame)} {what} (the first: "
                         f"id {missing.iloc[0]})")
    return frame


def rank_average(model_scores, other_scores, weight: float) -> np.ndarray:
    """Ranks of two scorings averaged, `weight` on the other's: no scale to fit, so nothing is tuned on the pairs."""
    return (1 - weight) * rankdata(model_scores) + weight * rankdata(other_scores)


def auc_cell(labels, scores, column: str = "auc") -> str:
    """`mtl.metrics.ranking_scores`' AUC (or `column="ap"`) as a table cell; n/a where one class is absent."""
    value = ranking_scores(labels, scores)[column]
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def scored(y_val, val_scores, y_test, test_scores) -> tuple[dict, dict, float]:
    """Validation report (at 0.5) and test report at the threshold that maximises F1 on validation, and it."""
    threshold, _ = tune_threshold(np.asarray(y_val), val_scores)
    return (classification_report(y_val, val_scores),
            classification_report(y_test, test_scores, threshold=threshold), threshold)


def run(argv: list[str]) -> Path:
    args, cfg, split, val, test = fold_records(argv, "qi", __doc__.splitlines()[0])
    columns = cfg.model.qi_features if cfg.model.qi_features != "none" else "overlap"
    width = feature_dim(columns)
    train_features, val_features, test_features = (qi_features(d, width=width) for d in (split.train, val, test))
    y_test = test["label"].to_numpy()
    rows = []
    # trees: what the columns hold when a share may count unevenly, which a linear head cannot do with raw columns
    for name, model in (("logistic regression", LogisticRegression(max_iter=2000)),
                        ("gradient-boosted trees", HistGradientBoostingClassifier(random_state=0))):
        model.fit(train_features, split.train["label"])
        val_scores = model.predict_proba(val_features)[:, 1]
        test_scores = model.predict_proba(test_features)[:, 1]
        val_report, test_report, threshold = scored(val["label"], val_scores, y_test, test_scores)
        rows.append(f"| {name} | {val_report['auc']:.4f} | {test_report['auc']:.4f} | {test_report['f1']:.4f} | "
                    f"{threshold:.3f} | {majority_baseline(y_test)['f1_all_positive']:.4f} |")
    lines = [f"# Word overlap alone: {args.name}", "",
             f"- command: `{shlex.join(['python', 'benchmarks/overlap_baseline.py', *argv])}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- `mtl.overlap`'s {width} `{columns}` columns, each model "
             f"fitted on fold {args.fold}'s {len(split.train):,} training pairs; validation: the fold's {len(val):,} "
             f"pairs; test: the held-out {len(test):,} pairs at the validation-tuned threshold", "",
             "| model on the columns | val AUC | test AUC | test F1 | threshold | all-positive F1 (test) |",
             "|---|---:|---:|---:|---:|---:|", *rows, "",
             "Each feature alone (test ROC-AUC; below 0.5 ranks the other way): " + ", ".join(
                 f"`{name}` {roc_auc_score(y_test, test_features[:, i]):.4f}" for i, name in enumerate(OVERLAP_FEATURES)),
             ""]
    out = Path(args.output_dir) / f"overlap-{args.name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


if __name__ == "__main__":
    print(run(sys.argv[1:]))
