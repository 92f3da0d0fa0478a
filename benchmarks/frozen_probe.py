"""What the backbone knows before any training: each head fitted as a linear probe on a frozen backbone, scored.

    flock /tmp/mtl-heavy.lock python benchmarks/frozen_probe.py --name real-qi-fold0-overlap --task qi --fold 0 \
        --pairs 8000 --config configs/real_cpu.yaml data.qi_train=../shared/data/real_QI_train.jsonl \
        model.qi_features=overlap

The model `mtl train --mode single --task T --fold K` with the same config would start from (same records, split,
features, truncated backbone and pooling), with `model.head_init=probe` on `--pairs` training pairs and then no
training step: the head is `MultiTaskClassifier.probe_heads`' logistic regression on what it reads under the
untrained adapter. Scored like a trained run's best checkpoint: on the fold's validation sample (`data.dev_limit`)
and on the held-out test split at the threshold tuned on that validation. Writes
`benchmarks/results/frozen-<name>.md`: the bar fine-tuning has to clear to have taught the backbone anything.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed

from mtl.config import load_config
from mtl.evaluate import predict_probs
from mtl.metrics import classification_report, majority_baseline, tune_threshold
from mtl.model import build_tokenizer
from mtl.train import build_run_model, load_run_data


def run(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="names the result file")
    parser.add_argument("--task", choices=("qc", "qi"), required=True)
    parser.add_argument("--config")
    parser.add_argument("--fold", default="0")
    parser.add_argument("--pairs", type=int, default=8000, help="training pairs the probe is fitted on")
    parser.add_argument("--output-dir", default="benchmarks/results")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, [*args.overrides, "train.mode=single", f"train.task={args.task}",
                                    f"cv.fold={args.fold}", "model.head_init=probe", f"model.probe_pairs={args.pairs}"])
    if cfg.model.init_from:
        raise SystemExit("model.init_from: a warm start keeps the heads it loads and is not probed; drop it")
    started = time.time()
    pair_tokenizer, folder = build_tokenizer(cfg)
    set_seed(cfg.train.seed)
    data = load_run_data(cfg, pair_tokenizer)
    if args.task not in data.test:
        raise SystemExit("no held-out test split (data.test_fraction=0 or a test file): nothing to score")
    set_seed(cfg.train.seed)
    model = build_run_model(cfg, data, folder, pair_tokenizer.arch).to("cuda" if torch.cuda.is_available() else "cpu")
    train, val, test = data.train[args.task], data.val[args.task], data.test[args.task]
    cv_auc = model.probe_heads({args.task: train}, pair_tokenizer.pad_id, args.pairs, cfg.train.seed,
                               cfg.eval.batch_size)[args.task]
    score = lambda d: predict_probs(model, d, pair_tokenizer.pad_id, cfg.eval.batch_size, progress=False,
                                    row_tokens=cfg.train.row_tokens)
    val_probs, test_probs = score(val), score(test)
    threshold, _ = tune_threshold(val.labels, val_probs)
    val_report = classification_report(val.labels, val_probs, threshold=threshold)
    test_report = classification_report(test.labels, test_probs, threshold=threshold)
    fitted = min(args.pairs, len(train))
    lines = [f"# Frozen backbone, probed head: {args.name}", "",
             f"- command: `{shlex.join(['python', 'benchmarks/frozen_probe.py', *argv])}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {time.time() - started:.0f} s on this machine",
             f"- {args.task.upper()} head: a logistic regression on what it reads under the untrained adapter "
             f"({cfg.model.num_layers or 'all'} layers, `{cfg.model.pooling}` pooling, "
             + (f"taxonomy features `{cfg.taxonomy.features}`" if args.task == "qc" else
                f"QI features `{cfg.model.qi_features}`") + f"), fitted on {fitted:,} of fold "
             f"{args.fold}'s {len(train):,} training pairs; validation: the fold's {len(val):,}-pair sample; test: "
             f"the held-out {len(test):,} pairs at the validation-tuned threshold {threshold:.3f}", "",
             "| | probe CV AUC (training pairs) | val AUC | val F1 | test AUC | test F1 | all-positive F1 (test) |",
             "|---|---:|---:|---:|---:|---:|---:|",
             f"| frozen + probe | {cv_auc:.4f} | {val_report['auc']:.4f} | {val_report['f1']:.4f} | "
             f"{test_report['auc']:.4f} | {test_report['f1']:.4f} | "
             f"{majority_baseline(test.labels)['f1_all_positive']:.4f} |", ""]
    out = Path(args.output_dir) / f"frozen-{args.name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


if __name__ == "__main__":
    print(run(sys.argv[1:]))
