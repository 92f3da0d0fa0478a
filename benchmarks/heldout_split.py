"""Write the held-out test records a run carves from its training file, so a fold ensemble can be scored on them.

    python benchmarks/heldout_split.py --task qi --output runs/data/qi_test.jsonl --config runs/real/qi-cv/config.yaml
    mtl predict --model runs/real/qi-cv/fold-*/best --input runs/data/qi_test.jsonl --output qi_pred.jsonl --with-scores
    mtl evaluate --pred qi_pred.jsonl --gold runs/data/qi_test.jsonl

Each fold's run scores its own model on this split (`metrics.json`, `test`), but a submission is the folds' models
averaged (`mtl predict` with several `--model`s), which no run scores. The records are the ones training holds out
under the same config and overrides (`data.test_fraction` of whole queries, drawn by `data.split_seed`, carved by
training's own `mtl.data.tasks.training_records`): give the run's saved `config.yaml`, or a split of another seed or
fraction scores the models on rows they trained on. Written back as their file held them, from the training file:
keep it out of the repository as you keep the data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl.config import load_config
from mtl.data.records import write_records
from mtl.data.tasks import training_records
from mtl.errors import ConfigError
from mtl.io import check_output_path


def run(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("qc", "qi"), required=True)
    parser.add_argument("--output", required=True, help="JSON lines or CSV, by the suffix")
    parser.add_argument("--config")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    if getattr(cfg.data, f"{args.task}_test"):
        raise ConfigError(f"data.{args.task}_test is set: the test records are that file, nothing is carved")
    check_output_path(args.output, inputs=[getattr(cfg.data, f"{args.task}_train")])
    _, test, _, _ = training_records(cfg, args.task)  # no folds: they come after the carve and need not fit the file
    if test is None:
        raise ConfigError("data.test_fraction=0: training holds out no test records")
    write_records(test, args.output)
    return Path(args.output)


if __name__ == "__main__":
    print(run(sys.argv[1:]))
