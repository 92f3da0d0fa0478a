"""The real-data recipe's figures: learning curves and cross-validation, from the fold runs the trainer wrote.

    python benchmarks/real/collect.py --qc runs/real/qc-cv --qi runs/real/qi-cv --command-file benchmarks/real/COMMANDS

Reads each root's `cv.json` (written by `mtl train --fold 0,1,2`: per fold AUC and F1 at a threshold tuned on the
other folds) and each fold's `metrics.jsonl` (validation F1 and AUC during training), and writes into this folder:
`cv.json` ({task: {cv_f1_mean, cv_f1_std, cv_auc_mean, cv_auc_std, ...}, command}), `curves_<task>.png` (F1 and AUC
against training pairs seen, one line per fold) and `curves.md` (the same as a table, and the CV figures per
language). A task left out (`--qi` alone, say) keeps its figures and section from the files already there. Nothing
here trains or scores: it reads what the trainer measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
TASKS = ("qc", "qi")


def fold_dirs(root: Path, folds: list[int]) -> list[Path]:
    """The folds the root's cv.json summarises (a fold still training is left out)."""
    return [root / f"fold-{k}" for k in folds]


def curves(root: Path, task: str, folds: list[int]) -> dict[int, list[tuple[int, float, float]]]:
    """{fold: [(pairs seen, validation F1, validation AUC, the model's own AUC where the scores are fused with a
    sentence encoder's (`model.encoder`), else None)]} from each fold's metrics.jsonl."""
    out = {}
    for fold_dir in fold_dirs(root, folds):
        run_dir = fold_dir / f"target-{task}" if (fold_dir / f"target-{task}").is_dir() else fold_dir
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
        batch = config["train"]["global_batch_size"]
        points = []
        for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if f"eval/auc/{task}" in row:
                points.append((row["step"] * batch, row[f"eval/f1/{task}"], row[f"eval/auc/{task}"],
                               row.get(f"eval/auc_model/{task}")))
        out[int(fold_dir.name.split("-")[1])] = sorted(dict((p[0], p) for p in points).values())
    return out


def held_out(root: Path, task: str, folds: list[int]) -> dict[int, dict]:
    """{fold: the held-out test split's report} from each fold's metrics.json (its best model, scored once)."""
    out = {}
    for fold_dir in fold_dirs(root, folds):
        run_dir = fold_dir / f"target-{task}" if (fold_dir / f"target-{task}").is_dir() else fold_dir
        summary = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        report = summary.get("test", {}).get("reports", {}).get(task)
        if report:
            out[int(fold_dir.name.split("-")[1])] = report
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def plot(task: str, by_fold: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for fold, points in by_fold.items():
        pairs = [p[0] for p in points]
        axes[0].plot(pairs, [p[1] for p in points], marker="o", label=f"fold {fold}")
        axes[1].plot(pairs, [p[2] for p in points], marker="o", label=f"fold {fold}")
    for ax, name in zip(axes, ("F1 (threshold 0.5)", "ROC-AUC")):
        ax.set_xlabel("training pairs seen")
        ax.set_ylabel(f"validation {name}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{task.upper()}: validation during training (real data, category-aware CV)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(task: str, by_fold: dict, cv: dict, test: dict[int, dict]) -> str:
    fused = any(p[3] is not None for points in by_fold.values() for p in points)
    note = ["Scores fused with the sentence encoder's rankings (`model.encoder=use`); the step is chosen by the "
            "model's own AUC.", ""] if fused else []
    lines = [f"## {task.upper()}", "", *note, "| fold | pairs seen | val F1 (0.5) | val AUC |"
             + (" val AUC, model alone |" if fused else ""), "|---|---:|---:|---:|" + ("---:|" if fused else "")]
    for fold, points in by_fold.items():
        lines += [f"| {fold} | {p[0]} | {p[1]:.4f} | {p[2]:.4f} |" + (f" {p[3]:.4f} |" if fused else "")
                  for p in points]
    lines += ["", f"Out-of-fold, every validation record of the folds (F1 at a threshold tuned on the other folds): "
              f"F1 {cv['cv_f1_mean']:.4f} ± {cv['cv_f1_std']:.4f}, ROC-AUC {cv['cv_auc_mean']:.4f} ± "
              f"{cv['cv_auc_std']:.4f} over folds {cv['folds']}.", "",
              "| language | F1 | ROC-AUC |", "|---|---:|---:|"]
    if test:
        f1 = mean_std([r.get("at_threshold", r)["f1"] for r in test.values()])
        auc = mean_std([r["auc"] for r in test.values()])
        lines[-5:-5] = ["", f"Held-out test split (whole queries no fold sees), each fold's model at its validation "
                        f"threshold: F1 {f1[0]:.4f} ± {f1[1]:.4f}, ROC-AUC {auc[0]:.4f} ± {auc[1]:.4f} over "
                        f"{len(test)} folds' models; all-positive F1 "
                        f"{test[min(test)].get('baseline', {}).get('f1_all_positive', float('nan')):.4f}."]
    for lang, values in cv["by_language"].items():
        lines.append(f"| {lang} | {values.get('cv_f1_mean', float('nan')):.4f} ± {values.get('cv_f1_std', 0):.4f} | "
                     f"{values.get('cv_auc_mean', float('nan')):.4f} ± {values.get('cv_auc_std', 0):.4f} |")
    return "\n".join(lines)


def kept(args: argparse.Namespace) -> tuple[dict, dict[str, str]]:
    """The figures and curves.md section of each task not collected this time, and the commands (replaced only by a
    `--command-file`), from the files already in `--out`.

    A task's fold runs take hours and its run folders need not outlive the session that made them, so collecting
    one task again must not drop the other's committed figures."""
    summary, sections = {"command": ""}, {}
    skip = {task for task in TASKS if getattr(args, task) is None}
    if skip and (args.out / "cv.json").exists():
        old = json.loads((args.out / "cv.json").read_text(encoding="utf-8"))
        summary = {"command": old.get("command", ""), **{task: old[task] for task in skip if task in old}}
    if skip and (args.out / "curves.md").exists():
        for part in (args.out / "curves.md").read_text(encoding="utf-8").split("\n## ")[1:]:
            task = part.split("\n", 1)[0].strip().lower()
            if task in skip:
                sections[task] = "## " + part.rstrip("\n")
    return summary, sections


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qc", type=Path, help="root of the QC fold runs")
    parser.add_argument("--qi", type=Path, help="root of the QI fold runs")
    parser.add_argument("--command-file", type=Path, help="the commands that made the runs (recorded in cv.json)")
    parser.add_argument("--out", type=Path, default=HERE, help="where cv.json, curves.md and the plots go")
    args = parser.parse_args(argv)
    summary, sections = kept(args)
    for task, root in (("qc", args.qc), ("qi", args.qi)):
        if root is None:
            continue
        cv = json.loads((root / "cv.json").read_text(encoding="utf-8"))[task]
        keep = ("cv_f1_mean", "cv_f1_std", "cv_auc_mean", "cv_auc_std", "cv_ap_mean", "cv_ap_std", "folds",
                "oof_threshold", "oof_f1", "oof_auc", "by_language")
        summary[task] = {k: cv[k] for k in keep if k in cv}
        by_fold, test = curves(root, task, cv["folds"]), held_out(root, task, cv["folds"])
        if test:
            summary[task].update(zip(("test_f1_mean", "test_f1_std"),
                                     mean_std([r.get("at_threshold", r)["f1"] for r in test.values()])))
            summary[task].update(zip(("test_auc_mean", "test_auc_std"), mean_std([r["auc"] for r in test.values()])))
        plot(task, by_fold, args.out / f"curves_{task}.png")
        sections[task] = table(task, by_fold, cv, test) + f"\n\n![{task}](curves_{task}.png)"
    if args.command_file:
        summary["command"] = args.command_file.read_text(encoding="utf-8").strip()
    summary = {**{task: summary[task] for task in TASKS if task in summary}, "command": summary["command"]}
    (args.out / "cv.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    (args.out / "curves.md").write_text("# Real data: learning curves and cross-validation\n\n"
                                    + "\n\n".join(sections[t] for t in TASKS if t in sections) + "\n",
                                    encoding="utf-8")


if __name__ == "__main__":
    main()
