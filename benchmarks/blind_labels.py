"""A reader blind to the labels, beside a trained model, on the same validation pairs of one fold.

    # a sheet of fold K's validation pairs, --per-language of each language, without their labels
    python benchmarks/blind_labels.py draw --task qc --config configs/real_cpu.yaml --fold 0 --per-language 30 \
        --sheet /tmp/sheet.tsv --records /tmp/sheet.jsonl data.qc_train=../shared/data/real_QC_train.jsonl
    # the reader writes `id<TAB>judgment` (1 = surely not relevant ... 5 = surely relevant) for every sheet row
    mtl predict --model runs/real/qc-cv/fold-0/best --input /tmp/sheet.jsonl --output /tmp/pred.jsonl --with-scores
    python benchmarks/blind_labels.py score --task qc --name real-qc-fold0 --config configs/real_cpu.yaml --fold 0 \
        --sheet /tmp/sheet.tsv --judgments benchmarks/results/blind-real-qc-fold0.tsv --predictions /tmp/pred.jsonl \
        --model "runs/real/qc-cv/fold-0/best" data.qc_train=../shared/data/real_QC_train.jsonl

Why: a model stuck near one AUC may be short of knowledge (brands, products, what a category holds) or the labels
may not say more than that. A reader who knows much more than the model, judging each pair from its text alone,
points to one or the other: if the reader ranks the pairs far better, the model likely lacks knowledge; if not, the
labels carry something no reading of the pair gives (how they were made: clicks, a rater's scale). The sheet holds no
label, so the reader cannot see one; `score` joins the judgments to the gold labels and to the model's scores on the
same pairs. The sheet and records hold the data: write them outside the repository. The judgments file holds record
ids and the reader's judgments only.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import bootstrap
from sklearn.metrics import f1_score, roc_auc_score

from mtl.data.records import TARGET_FIELD
from mtl.io import atomic_write_text
from mtl.metrics import classification_report, majority_baseline, ranking_scores
from mtl.predict import read_predictions
from overlap_baseline import fold_records, rank_average

SEED = 0


def draw(records: pd.DataFrame, per_language: int, seed: int = SEED) -> pd.DataFrame:
    """`per_language` rows of each language (all of a language that has fewer), in a shuffled order, so the reader
    meets no run of one language or label."""
    picks = [group.sample(min(per_language, len(group)), random_state=seed)
             for _, group in records.groupby("language", sort=True)]
    return pd.concat(picks).sample(frac=1.0, random_state=seed)


HEADER = "id\tjudgment"


def read_judgments(path: Path) -> pd.DataFrame:
    """`id<TAB>judgment` lines after the header `HEADER`, a judgment an integer 1-5: columns judgment and line (its
    number in the file), indexed by id. One bad line stops with its number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise SystemExit(f"{path}:1: header: want {HEADER!r}, got {(lines or [''])[0][:80]!r}")
    out = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != 2 or fields[1] not in {"1", "2", "3", "4", "5"}:
            raise SystemExit(f"{path}:{number}: judgment: want `id<TAB>1-5`, got {line[:80]!r}")
        if fields[0] in out:
            raise SystemExit(f"{path}:{number}: id: {fields[0]} judged twice (first on line {out[fields[0]][1]})")
        out[fields[0]] = (int(fields[1]), number)
    return pd.DataFrame.from_dict(out, orient="index", columns=["judgment", "line"])


def auc_difference(labels, reader, model) -> tuple[float, float, float]:
    """Reader's AUC less the model's on the same pairs, with a 95% paired bootstrap interval."""
    def statistic(y, a, b):
        return roc_auc_score(y, a) - roc_auc_score(y, b) if 0 < y.sum() < len(y) else np.nan

    # A resample that holds one class has no AUC; its NaN makes the interval NaN, reported as such, not hidden.
    result = bootstrap((np.asarray(labels), np.asarray(reader), np.asarray(model)), statistic, paired=True,
                       vectorized=False, n_resamples=2000, method="percentile", random_state=SEED)
    return statistic(*map(np.asarray, (labels, reader, model))), *result.confidence_interval


def row(name: str, frame: pd.DataFrame) -> str:
    """One table row: the reader's and the model's ranking and F1 on these pairs (AUC NaN where one class)."""
    y = frame["label"].to_numpy()
    reader = classification_report(y, frame["judgment"].to_numpy(), threshold=3)
    model = classification_report(y, frame["score"].to_numpy())
    model_f1 = f1_score(y, frame["prediction"], zero_division=0)
    agree = float(((frame["judgment"] >= 3) == (y == 1)).mean())
    both_auc = ranking_scores(y, rank_average(frame["judgment"], frame["score"], 0.5))["auc"]
    return (f"| {name} | {len(frame)} | {y.mean():.2f} | {reader['auc']:.3f} | {model['auc']:.3f} | {both_auc:.3f} | "
            f"{reader['f1']:.3f} | {model_f1:.3f} | {majority_baseline(y)['f1_all_positive']:.3f} | "
            f"{(frame['judgment'] >= 3).mean():.2f} | {agree:.2f} |")


def score(args, argv: list[str], val: pd.DataFrame) -> Path:
    """The table of `blind-<name>.md`: every sheet row judged, and nothing else, or it stops naming the row."""
    judged = read_judgments(Path(args.judgments))
    sheet = pd.read_csv(args.sheet, sep="\t", dtype=str, keep_default_na=False)
    unjudged = [(n, i) for n, i in enumerate(sheet["id"], start=2) if i not in judged.index]
    if unjudged:
        raise SystemExit(f"{args.sheet}:{unjudged[0][0]}: id: {unjudged[0][1]} not judged in {args.judgments}")
    val = val.assign(id=val["id"].astype(str)).set_index("id")
    on_sheet = set(sheet["id"])
    for i, line in judged["line"].items():
        if i not in on_sheet or i not in val.index:
            raise SystemExit(f"{args.judgments}:{line}: id: {i} is not a row of {args.sheet} "
                             f"(a validation record of fold {args.fold})")
    predictions = read_predictions(args.predictions).set_index("id")
    if judged.index.difference(predictions.index).size:
        raise SystemExit(f"{args.predictions}: id: {judged.index.difference(predictions.index)[0]} not predicted")
    frame = val.loc[judged.index, ["language", "label"]].join(judged["judgment"])
    frame = frame.join(predictions[["prediction", "score"]])
    if frame["score"].isna().any():
        raise SystemExit(f"{args.predictions}: score: missing (predict with --with-scores)")
    diff, low, high = auc_difference(frame["label"], frame["judgment"], frame["score"])
    header = ["| pairs | n | positive | reader AUC | model AUC | both AUC | reader F1 | model F1 | all-positive F1 | "
              "reader says relevant | reader agrees with label |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [row("all", frame)]
    rows += [row(language, group) for language, group in frame.groupby("language", sort=True)]
    counts = frame.groupby("judgment")["label"].agg(["size", "mean"])
    lines = [f"# A reader blind to the labels, beside the model: {args.name}", "",
             f"- command: `{shlex.join(['python', 'benchmarks/blind_labels.py', *argv])}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- {len(frame)} of fold {args.fold}'s {len(val):,} validation pairs (`draw`, seed {SEED}); judgments "
             f"1-5 in `{args.judgments}`; the model's scores from `{args.predictions}`"
             + (f" ({args.model})" if args.model else ""),
             "- reader F1: judgment >= 3 counts as relevant (a fixed rule); model F1: its predictions at the threshold "
             "it serves (`mtl predict`'s default: tuned on the fold's `data.dev_limit` validation sample, which holds "
             "some of these pairs); both: the mean of the two ranks",
             "",
             *header, *rows, "",
             f"Reader's AUC less the model's: {diff:+.3f} (95% paired bootstrap interval {low:+.3f} to {high:+.3f}).",
             "", "| judgment | pairs | share labelled relevant |", "|---:|---:|---:|",
             *(f"| {j} | {int(c['size'])} | {c['mean']:.2f} |" for j, c in counts.iterrows()), ""]
    out = Path(args.output_dir) / f"blind-{args.name}.md"
    atomic_write_text(out, "\n".join(lines))
    return out


def main(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("draw", "score"))
    parser.add_argument("--task", choices=("qc", "qi"), required=True)
    parser.add_argument("--per-language", type=int, default=30, help="draw: pairs of each language")
    parser.add_argument("--sheet", help="the reader's sheet (TSV: id, language, query, path or title): draw writes "
                        "it, score checks that every row of it, and nothing else, was judged")
    parser.add_argument("--records", help="draw: the same rows as records, labels included, for `mtl predict`")
    parser.add_argument("--judgments", help="score: `id<TAB>1-5` per line after a header")
    parser.add_argument("--predictions", help="score: `mtl predict --with-scores` output over the records")
    parser.add_argument("--model", help="score: which model made the predictions, recorded with the figures")
    args, rest = parser.parse_known_args(argv)
    fold_args, _, _, val, _ = fold_records(["--name", "blind", *rest], args.task, __doc__.splitlines()[0],
                                           need_test=False)
    args.name, args.fold, args.output_dir = fold_args.name, fold_args.fold, fold_args.output_dir
    if args.command == "score":
        if not (args.judgments and args.predictions and args.sheet):
            parser.error("score needs --sheet, --judgments and --predictions")
        return score(args, argv, val)
    if not (args.sheet and args.records):
        parser.error("draw needs --sheet and --records")
    sheet = draw(val, args.per_language)
    text = TARGET_FIELD[args.task]
    tsv = sheet[["id", "language", "origin_query", text]].replace({"\t": " ", "\n": " "}, regex=True)
    atomic_write_text(Path(args.sheet), tsv.to_csv(sep="\t", index=False))
    atomic_write_text(Path(args.records), sheet.to_json(orient="records", lines=True, force_ascii=False))
    return Path(args.sheet)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
