"""Where a QC label's signal lies: in the query alone, in the category path alone, or in the pair.

    python benchmarks/qc_signal.py --name real-qc-fold0 --config configs/real_cpu.yaml --fold 0 \
        data.qc_train=../shared/data/real_QC_train.jsonl

The same records, split and test carve as `mtl train --mode single --task qc --fold K` with the same config.
Character n-gram TF-IDF and a logistic regression on the query alone, on the path alone, and on both side by side
(no feature of the two together, so it cannot score a match): if the query alone ranks nearly as well as a model of
the pair, much of a label is a property of the query (a brand the taxonomy does not sell, a query too vague for any
path), which a model must know rather than match. Beside it, how often rows of one query share their label (also
where their paths part at the top level), against what labels drawn independently of the query would share. Writes
`benchmarks/results/qc-signal-<name>.md`.
"""

from __future__ import annotations

import shlex
import sys
import time
from itertools import combinations
from pathlib import Path

import pandas as pd
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from mtl.metrics import majority_baseline
from mtl.splits import normalise_query
from mtl.taxonomy import parse_path
from overlap_baseline import fold_records, scored

INPUTS = {"query alone": ("origin_query",), "path alone": ("category_path",),
          "query and path, side by side": ("origin_query", "category_path")}


def ngram_model(train: pd.DataFrame, columns: tuple[str, ...]):
    """A scorer fitted on `train`: character 2-4-grams within words per column, one logistic regression on all."""
    vectorisers = [TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True).fit(train[c])
                   for c in columns]

    def features(frame: pd.DataFrame):
        return hstack([v.transform(frame[c]) for v, c in zip(vectorisers, columns)]).tocsr()

    model = LogisticRegression(max_iter=3000).fit(features(train), train["label"])
    return lambda frame: model.predict_proba(features(frame))[:, 1]


def query_agreement(records: pd.DataFrame) -> dict:
    """Over queries with two or more rows: the share of same-query row pairs whose labels agree, the same over the
    pairs whose paths part at the top level (unlike paths: a shared label there is the query's), and that share if
    each label were drawn at the records' positive rate independently of its query."""
    rate = records["label"].mean()
    agree = total = agree_apart = apart = 0
    tops = records["category_path"].map(lambda path: parse_path(path)[0])
    for _, group in records.assign(top=tops).groupby(records["origin_query"].map(normalise_query)):
        for (label_a, top_a), (label_b, top_b) in combinations(zip(group["label"], group["top"]), 2):
            total += 1
            agree += label_a == label_b
            if top_a != top_b:
                apart += 1
                agree_apart += label_a == label_b
    return {"pairs": total, "agree": agree / total if total else float("nan"), "pairs_apart": apart,
            "agree_apart": agree_apart / apart if apart else float("nan"), "independent": rate ** 2 + (1 - rate) ** 2}


def run(argv: list[str]) -> Path:
    args, _, split, val, test = fold_records(argv, "qc", __doc__.splitlines()[0])
    rows = []
    for name, columns in INPUTS.items():
        score = ngram_model(split.train, columns)
        val_scores, test_scores = score(val), score(test)
        val_report, test_report, _ = scored(val["label"], val_scores, test["label"], test_scores)
        rows.append(f"| {name} | {val_report['auc']:.4f} | {test_report['auc']:.4f} | {test_report['f1']:.4f} |")
    tunable = pd.concat([split.train, val])
    agreement = query_agreement(tunable)
    all_positive = majority_baseline(test["label"])["f1_all_positive"]
    lines = [f"# QC: query, path or pair: {args.name}", "",
             f"- command: `{shlex.join(['python', 'benchmarks/qc_signal.py', *argv])}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- character 2-4-gram TF-IDF + logistic regression fitted on fold {args.fold}'s {len(split.train):,} "
             f"training pairs; validation: the fold's {len(val):,} pairs; test: the held-out {len(test):,} pairs at "
             f"the validation-tuned threshold (all-positive F1 {all_positive:.4f})",
             "", "| inputs | val AUC | test AUC | test F1 |", "|---|---:|---:|---:|", *rows, "",
             f"Rows of one query (training and validation records, {agreement['pairs']:,} same-query pairs of rows): "
             f"{agreement['agree']:.1%} share their label; {agreement['agree_apart']:.1%} of the "
             f"{agreement['pairs_apart']:,} whose paths part at the top level; {agreement['independent']:.1%} would, "
             "were labels drawn independently of the query at the same positive rate.", ""]
    out = Path(args.output_dir) / f"qc-signal-{args.name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


if __name__ == "__main__":
    print(run(sys.argv[1:]))
