"""Write the held-out test records a run carves from its training file, so a fold ensemble can be scored on them.

    python benchmarks/heldout_split.py --task qi --output runs/data/qi_test.jsonl --config configs/real_cpu.yaml \
        data.qi_train=../shared/data/real_QI_train.jsonl
    mtl predict --model runs/real/qi-cv/fold-*/best --input runs/data/qi_test.jsonl --output qi_pred.jsonl --with-scores
    mtl evaluate --pred qi_pred.jsonl --gold runs/data/qi_test.jsonl

Each fold's run scores its own model on this split (`metrics.json`, `test`), but a submission is the folds' models
averaged (`mtl predict` with several `--model`s), which no run scores. The records are the ones training holds out
with the same config (`data.test_fraction` of whole queries, drawn by `data.split_seed`; `mtl.data.tasks.load_split`
carves them, so they cannot drift from what training left out), written back as their file held them. Written from
the training file: keep it out of the repository as you keep the data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl.config import load_config
from mtl.data.records import write_records
from mtl.data.tasks import load_split
from mtl.errors import ConfigError


def run(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("qc", "qi"), required=True)
    parser.add_argument("--output", required=True, help="JSON lines or CSV, by the suffix")
    parser.add_argument("--config")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    # fold 0 only so that load_split reads the training file without a dev file; the test carve precedes the folds
    cfg = load_config(args.config, [*args.overrides, "cv.fold=0"])
    if getattr(cfg.data, f"{args.task}_test"):
        raise ConfigError(f"data.{args.task}_test is set: the test records are that file, nothing is carved")
    test = load_split(cfg, args.task).test
    if test is None:
        raise ConfigError("data.test_fraction=0: training holds out no test records")
    write_records(test, args.output)
    return Path(args.output)


if __name__ == "__main__":
    print(run(sys.argv[1:]))
