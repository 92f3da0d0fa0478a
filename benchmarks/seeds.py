"""Does every seed learn? One recipe trained once per seed; a table of what each run's metrics.json says.

    flock /tmp/mtl-heavy.lock python benchmarks/seeds.py --name sample-float32 --seeds 1,2,3,4,5 \
        --config configs/mtl.yaml
    flock /tmp/mtl-heavy.lock python benchmarks/seeds.py --name real-qc-fold0-recipe --seeds 1,2,3 \
        --config configs/real_cpu.yaml --mode single --task qc --fold 0 data.qc_train=../shared/data/real_QC_train.jsonl

Runs `mtl train` for each `train.seed` under `--root/<name>/seed-S` (a complete run is skipped and an interrupted one
resumed, once its config.yaml is found to hold this recipe) and writes `benchmarks/results/seeds-<name>.md`: per seed
and task the best checkpoint's validation ROC-AUC, F1 and share predicted relevant, the held-out test F1 and AUC, mean
and std over seeds, and whether the seed learned: validation AUC >= 0.70 and neither 0% nor 100% predicted relevant.
Beside it, `seeds-<name>.json` keeps each seed's scores and the resolved config (file and overrides; the seed and
`log.*` aside), written as each seed ends, so a later call with the same config (any `--seeds`) adds seeds without
retraining those whose run folders are gone (a CPU session can afford a seed or two of a real-data recipe, and its
runs may not outlive it); the table lists every seed recorded there. A file written before the config was kept can be
re-tabled, not extended.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from mtl.cli import flag_overrides, main as mtl_main
from mtl.io import atomic_write_text

LEARNED_AUC = 0.70


def learned(report: dict) -> bool:
    share = report.get("predicted_positive_rate", float("nan"))
    return report.get("auc", 0.0) >= LEARNED_AUC and 0.0 < share < 1.0


def table(name: str, runs: dict[int, dict], command: str) -> str:
    tasks = sorted({t for s in runs.values() for t in s["best"]["reports"]})
    lines = [f"# Seeds: {name}", "", f"- command: `{command}` (the table: every seed recorded for this recipe in "
             f"seeds-{name}.json, {', '.join(map(str, sorted(runs)))})",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- learned: validation ROC-AUC >= {LEARNED_AUC} and neither 0% nor 100% predicted relevant (at the "
             "threshold 0.5), on the best checkpoint; test: the held-out test split at the threshold tuned on "
             "validation", ""]
    header = ["seed"] + [f"{t.upper()} {c}" for t in tasks for c in
                         ("val AUC", "val F1", "predicted relevant", "test AUC", "test F1", "learned")]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    columns = {}
    for seed, summary in runs.items():
        cells = [str(seed)]
        for task in tasks:
            val = summary["best"]["reports"][task]
            test = summary.get("test", {}).get("reports", {}).get(task, {})
            values = {"val AUC": val.get("auc"), "val F1": val["f1"],
                      "predicted relevant": val.get("predicted_positive_rate"), "test AUC": test.get("auc"),
                      "test F1": test.get("at_threshold", test).get("f1")}
            for key, value in values.items():
                columns.setdefault((task, key), []).append(value)
                cells.append("—" if value is None else f"{value:.4f}")
            columns.setdefault((task, "learned"), []).append(learned(val))
            cells.append("yes" if learned(val) else "**no**")
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["mean ± std"]
    for task in tasks:
        for key in ("val AUC", "val F1", "predicted relevant", "test AUC", "test F1"):
            values = [v for v in columns[(task, key)] if v is not None]
            cells.append(f"{np.mean(values):.4f} ± {np.std(values):.4f}" if values else "—")
        cells.append(f"{sum(columns[(task, 'learned')])} of {len(runs)}")
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The command line; `gpu_real.py` reads its job lines with it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="names the runs' folder and the result file")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--root", default="runs/seeds")
    parser.add_argument("--output-dir", default="benchmarks/results")
    parser.add_argument("--config")
    parser.add_argument("--mode", default="mtl")
    parser.add_argument("--task")
    parser.add_argument("--fold")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    return parser


def run(argv: list[str]) -> Path:
    args = build_parser().parse_args(argv)
    out = Path(args.output_dir) / f"seeds-{args.name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    recipe = [args.config, args.mode, args.task, args.fold, *args.overrides]
    config = {"mode": args.mode, "task": args.task, "fold": args.fold, **resolved(args.config, args.overrides)}
    recorded, legacy = read_recorded(out.with_suffix(".json"), recipe, config)
    # What `mtl train` below resolves; `config` above is the older record of the same recipe (flags beside the file's
    # config), kept because the committed seeds-*.json files compare against that form.
    trains = resolved(args.config, [*args.overrides, *flag_overrides(args.mode, args.task, args.fold)])
    for seed in [int(s) for s in args.seeds.split(",")]:
        run_dir = Path(args.root) / args.name / f"seed-{seed}"
        check_run_folder(run_dir, trains)
        if not (run_dir / "metrics.json").is_file():
            if str(seed) in recorded:
                continue
            if legacy:
                raise SystemExit(f"{out.with_suffix('.json')}: recorded before seeds.py kept the resolved config, so "
                                 "whether the config file still gives the same recipe cannot be checked: use another "
                                 f"--name to train seed {seed}")
            command = ["-q", "train", "--mode", args.mode, *(["--task", args.task] if args.task else []),
                       *(["--fold", args.fold] if args.fold else []), *(["--config", args.config] if args.config else []),
                       *args.overrides, f"train.seed={seed}", f"log.root={run_dir.parent}", f"log.run_name={run_dir.name}"]
            if run_dir.exists() and any(run_dir.glob("step-*")):
                command = ["-q", "train", "--resume", str(run_dir)]
            status = mtl_main(command)
            if status:
                raise SystemExit(f"seed {seed}: mtl train exited with {status}")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        recorded[str(seed)] = {part: {"reports": metrics.get(part, {}).get("reports", {})} for part in ("best", "test")}
        # Written after every seed: a session that ends during the next one keeps this one.
        recorded = dict(sorted(recorded.items(), key=lambda item: int(item[0])))
        kept = {"recipe": recipe, **({} if legacy else {"config": config}), "seeds": recorded}
        atomic_write_text(out.with_suffix(".json"), json.dumps(kept, indent=1) + "\n")
    runs = {int(seed): scores for seed, scores in recorded.items()}
    atomic_write_text(out, table(args.name, runs, shlex.join(["python", "benchmarks/seeds.py", *argv])))
    return out


def resolved(config_file: str | None, overrides: list[str]) -> dict:
    """The config a seed trains with, flattened, less what differs between the seeds of one recipe (the seed, where
    runs are logged). The recipe is this, not the command line: a config file edited since (the real-data recipe
    gained a probed head and 1,000 steps) would otherwise add seeds of another recipe to the same table."""
    from mtl.config import flatten, load_config, to_dict

    flat = flatten(to_dict(load_config(config_file, list(overrides))))
    kept = {k: v for k, v in flat.items() if k != "train.seed" and not k.startswith("log.")}
    return json.loads(json.dumps(kept, default=str))  # as the json file will give it back (tuples as lists)


def check_run_folder(run_dir: Path, trains: dict) -> None:
    """Refuse a run folder left by another recipe under the same --name: its metrics.json would be tabled, or its
    checkpoint resumed, as a seed of this one."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    from mtl.errors import MtlError

    try:
        kept = resolved(str(saved), [])
    except MtlError as err:
        raise SystemExit(f"{saved}: cannot be read as a config ({err}): use another --name or --root") from err
    differ = sorted(k for k in {**trains, **kept} if kept.get(k) != trains.get(k))
    if differ:
        raise SystemExit(f"{saved}: that run was trained with another config ({', '.join(differ[:5])} differ): "
                         "use another --name or --root")


def read_recorded(path: Path, recipe: list, config: dict) -> tuple[dict, bool]:
    """(seed -> scores, legacy) from an earlier call's `seeds-<name>.json`; refused if that call trained another
    recipe. Legacy: the file predates the resolved config, so only its command line can be compared."""
    if not path.is_file():
        return {}, False
    saved = json.loads(path.read_text(encoding="utf-8"))
    if "config" in saved:
        differ = sorted(k for k in {**saved["config"], **config} if saved["config"].get(k) != config.get(k))
        if differ:
            raise SystemExit(f"{path}: its seeds were trained with another config ({', '.join(differ[:5])} differ): "
                             "use another --name")
        return saved["seeds"], False
    if saved.get("recipe") != recipe:
        raise SystemExit(f"{path}: its seeds were trained with {saved.get('recipe')}, not {recipe}: use another --name")
    return saved["seeds"], True


if __name__ == "__main__":
    print(run(sys.argv[1:]))
