"""What word overlap alone reaches on a QI fold: a logistic regression on `mtl.overlap`'s features, no model.

    python benchmarks/overlap_baseline.py --name real-qi-fold0 --config configs/real_cpu.yaml --fold 0 \
        data.qi_train=../shared/data/real_QI_train.jsonl

The same records, split and test carve as `mtl train --mode single --task qi --fold K` with the same config: fitted
on the fold's training records, scored on all its validation records and on the held-out test split, F1 on the test
split at the threshold that maximises F1 on all the fold's validation pairs. Writes
`benchmarks/results/overlap-<name>.md`: the bar a fine-tuned QI model with `model.qi_features=none` has to clear to
rank titles better than counting shared words, and the features' own test AUCs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mtl.config import load_config
from mtl.data.tasks import load_splits, qi_features
from mtl.metrics import classification_report, majority_baseline, tune_threshold
from mtl.overlap import OVERLAP_FEATURES


def run(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="names the result file")
    parser.add_argument("--config")
    parser.add_argument("--fold", default="0")
    parser.add_argument("--output-dir", default="benchmarks/results")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, [*args.overrides, "train.mode=single", "train.task=qi", f"cv.fold={args.fold}"])
    split = load_splits(cfg, ["qi"])["qi"]
    val, test = split.val_all if split.val_all is not None else split.val, split.test
    if test is None:
        raise SystemExit("no held-out test split (data.test_fraction=0 or a qi_test file): nothing to score")
    probe = LogisticRegression(max_iter=2000).fit(qi_features(split.train), split.train["label"])
    val_scores = probe.predict_proba(qi_features(val))[:, 1]
    test_features = qi_features(test)
    test_scores = probe.predict_proba(test_features)[:, 1]
    threshold, _ = tune_threshold(val["label"].to_numpy(), val_scores)
    y_test = test["label"].to_numpy()
    val_report = classification_report(val["label"], val_scores)
    test_report = classification_report(y_test, test_scores, threshold=threshold)
    lines = [f"# Word overlap alone: {args.name}", "",
             f"- command: `{shlex.join(['python', 'benchmarks/overlap_baseline.py', *argv])}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- a logistic regression on `mtl.overlap`'s {len(OVERLAP_FEATURES)} features, fitted on fold "
             f"{args.fold}'s {len(split.train):,} training pairs; validation: the fold's {len(val):,} pairs; test: "
             f"the held-out {len(test):,} pairs at the validation-tuned threshold {threshold:.3f}", "",
             "| | val AUC | test AUC | test F1 | all-positive F1 (test) |", "|---|---:|---:|---:|---:|",
             f"| overlap LR | {val_report['auc']:.4f} | {test_report['auc']:.4f} | {test_report['f1']:.4f} | "
             f"{majority_baseline(y_test)['f1_all_positive']:.4f} |", "",
             "Each feature alone (test ROC-AUC; below 0.5 ranks the other way): " + ", ".join(
                 f"`{name}` {roc_auc_score(y_test, test_features[:, i]):.4f}" for i, name in enumerate(OVERLAP_FEATURES)),
             ""]
    out = Path(args.output_dir) / f"overlap-{args.name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


if __name__ == "__main__":
    print(run(sys.argv[1:]))
