"""`mtl report` on synthetic run folders: event files written here with SummaryWriter, a metrics.json, a TAPT run, a
failed run and a run that never started."""

import json
import logging
import os
import re
from pathlib import Path

import pytest
import yaml
from torch.utils.tensorboard import SummaryWriter

from mtl.cli import main
from mtl.errors import ConfigError
from mtl.report import (CURVE_PLOTS, LANGUAGE_PLOT, RunResult, read_grid, read_run, read_runs, render,
                        system_scores, write_report)

JOINT_EVENTS = {  # best by F1 avg: step 20
    10: {"eval/f1/qc": 0.6123, "eval/f1/qi": 0.5234, "eval/f1/avg": 0.56785, "eval/f1_by_language/qc/en": 0.7011,
         "eval/f1_by_language/qc/pl": 0.4012, "eval/f1_by_language/qi/en": 0.5511},
    20: {"eval/f1/qc": 0.6543, "eval/f1/qi": 0.5877, "eval/f1/avg": 0.621, "eval/f1_by_language/qc/en": 0.7321,
         "eval/f1_by_language/qc/pl": 0.4432, "eval/f1_by_language/qi/en": 0.6012, "perf/tokens_per_s": 250.0,
         "eval/auc/qc": 0.7012, "eval/auc_by_language/qc/en": 0.7345, "eval/auc_by_language/qc/pl": 0.6543},
    30: {"eval/f1/qc": 0.6601, "eval/f1/qi": 0.5502, "eval/f1/avg": 0.60515, "perf/tokens_per_s": 270.0},
}
SINGLE_QC_SUMMARY = {
    "mode": "single", "tasks": ["qc"], "steps": 10, "best_step": 5,
    "best": {"headline": {"f1/qc": 0.71234, "f1_tuned/qc": 0.73456},
             "reports": {"qc": {"f1": 0.71234, "precision": 0.7, "recall": 0.72, "n": 100, "positive_rate": 0.5,
                                "threshold": 0.5, "f1_by_language": {"en": 0.75, "pl": 0.61},
                                "auc": 0.8123, "auc_by_language": {"en": 0.8234, "pl": 0.7789},
                                "tuned": {"f1": 0.73456, "precision": 0.7, "recall": 0.8, "threshold": 0.41}}}},
    "train_seconds": 12.5, "tokens": 1000, "tokens_per_s": 80.0,
    "parameters": {"trainable": 1_234_567, "total": 270_000_000, "bytes": 1_080_000_000},
}


def write_events(folder, by_step):
    writer = SummaryWriter(str(folder))
    for step, scalars in by_step.items():
        for name, value in scalars.items():
            writer.add_scalar(name, value, step)
    writer.close()


def results_row(text, run):
    section = text.split("## Results", 1)[1].split("\n## ", 1)[0]
    line = next(line for line in section.splitlines() if line.startswith(f"| `{run}` |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "runs"
    write_events(root / "joint", JOINT_EVENTS)
    write_events(root / "single-qc", {5: {"eval/f1/qc": 0.71234}, 10: {"eval/f1/qc": 0.70001}})
    (root / "single-qc" / "metrics.json").write_text(json.dumps(SINGLE_QC_SUMMARY))
    (root / "broken").mkdir()
    (root / "broken" / "FAILED").write_text("ValueError: boom at step 3\n\nTraceback ...")
    specs = [{"name": n, "kind": "train", "overrides": [], "about": "", "group": "main", "source": "", "task": "",
              "baseline": ""} for n in ("single-qc", "joint", "broken", "never-ran")]
    (root / "grid.json").write_text(json.dumps({"specs": specs, "base_overrides": [], "budget": "B",
                                                "sessions": [{"command": "mtl compare", "machine": "test box"}]}))
    return root


def test_table_values_are_the_logged_values(root, tmp_path):
    out = tmp_path / "out"
    assert main(["report", str(root), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()

    joint = results_row(text, "joint")
    assert joint[2].startswith("**incomplete**")  # event files only: no metrics.json yet
    assert joint[3:6] == ["—", "—", "—"]  # no test split in the event files
    assert joint[8:11] == ["0.6543", "0.5877", "0.6210"]  # the evaluation at the best step (20), not the last one
    assert joint[-1] == "20"
    single = results_row(text, "single-qc")
    assert single[2] == "ok" and single[8] == "0.7123" and single[9] == "—" and single[-1] == "5"
    qc_f1, qc_auc = (text.split(f"### QC: {m}\n", 1)[1].split("\n#", 1)[0] for m in ("F1", "ROC-AUC"))
    assert "| `joint` | 0.7321 | 0.4432 |" in qc_f1  # F1 by language at the best step
    assert "| `joint` | 0.7345 | 0.6543 |" in qc_auc and "| `single-qc` | 0.8234 | 0.7789 |" in qc_auc
    assert "### QI: ROC-AUC" not in text, "no run recorded QI's AUC by language: no table"
    # Cost: tokens/s, then other load (not recorded by this run: a dash), then the parameters.
    assert "| `single-qc` | ok | 10 | " in text and "| 80 | — | 1.23M | 270.00M | 1030 MiB |" in text


def test_failed_and_missing_runs_are_rows_not_gaps(root, tmp_path):
    main(["report", str(root), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "report.md").read_text()
    broken = results_row(text, "broken")
    assert broken[2] == "**FAILED**: ValueError: boom at step 3" and broken[3:6] == ["—", "—", "—"]
    assert results_row(text, "never-ran")[2].startswith("**missing**")
    assert "1 ok, 1 incomplete, 1 FAILED, 1 missing" in text


def read_layout(path):
    """The custom-scalar layout stored in a layout event file: {chart title: [tag regexes]}."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.custom_scalar import layout_pb2

    for event in EventFileLoader(str(path)).Load():
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "custom_scalars":
                layout = layout_pb2.Layout.FromString(value.tensor.string_val[0])
                return {chart.title: list(chart.multiline.tag) for category in layout.category
                        for chart in category.chart}
    raise AssertionError(f"{path} holds no custom-scalar layout")


def test_plots_and_tensorboard_layout_are_written(root, tmp_path):
    main(["report", str(root), "--out", str(tmp_path / "out")])
    for name in [*CURVE_PLOTS.values(), LANGUAGE_PLOT]:
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    main(["report", str(root)])  # again: the layout file is replaced, not duplicated
    (layout_file,) = root.glob("events.out.tfevents.*.layout")
    assert (root / "report.md").is_file() and not list(root.glob(".*tmp*"))

    charts = read_layout(layout_file)
    assert charts["F1 QC (all runs)"] == ["^eval/f1/qc$"] and charts["F1 QI (all runs)"] == ["^eval/f1/qi$"]
    assert charts["F1 avg (joint runs)"] == ["^eval/f1/avg$"]
    assert charts["train loss QC (all runs)"] == ["^train/loss/qc$"]
    # Each regex matches the tag the runs log, and only that one.
    assert [t for t in JOINT_EVENTS[20] if any(re.search(r, t) for r in charts["F1 QC (all runs)"])] == ["eval/f1/qc"]


def test_tapt_curves_continue_after_the_first_stage(tmp_path):
    run_dir = tmp_path / "tapt-qi-to-qc"
    (run_dir / "source-qi").mkdir(parents=True)
    (run_dir / "source-qi" / "metrics.json").write_text(json.dumps({"steps": 40, "train_seconds": 10.0, "tokens": 500}))
    write_events(run_dir / "target-qc", {10: {"eval/f1/qc": 0.5}, 20: {"eval/f1/qc": 0.6}})
    (run_dir / "metrics.json").write_text(json.dumps({**SINGLE_QC_SUMMARY, "steps": 20, "mode": "tapt"}))
    run = read_run(run_dir)
    assert run.curves["qc"] == [(50, 0.5), (60, pytest.approx(0.6))]
    assert run.stage_steps == [40, 20]
    assert run.train_seconds == 22.5 and run.tokens_per_s == 1500 / 22.5


def joint_summary(f1_qc, f1_qi, n=300, positive_rate=0.4, data=None):
    reports = {t: {"f1": f, "precision": f, "recall": f, "n": n, "positive_rate": positive_rate, "threshold": 0.5,
                   "f1_by_language": {"en": f}} for t, f in (("qc", f1_qc), ("qi", f1_qi))}
    return {"mode": "mtl", "tasks": ["qc", "qi"], "steps": 160, "best_step": 160, "train_seconds": 100.0,
            "tokens": 10_000, "parameters": {"trainable": 1, "total": 2, "bytes": 3},
            "best": {"headline": {"f1/qc": f1_qc, "f1/qi": f1_qi, "f1/avg": 0.5 * (f1_qc + f1_qi)}, "reports": reports},
            "data": data or {}}


SAMPLE_SIZES = {"qc": 2995, "qi": 2992}
"""The embedded sample's training sets: near-equal, so proportional and temperature sampling draw alike."""


def sampling_grid(root):
    """`joint` (temperature, T=2) and two sampling ablations with metrics, config and experiment files; the first
    two drew the same task at every step (as their trainers recorded it), round robin alternated."""
    ablation = {"kind": "train", "about": "", "group": "ablations", "source": "", "task": "", "baseline": "joint"}
    specs = [{"name": "joint", "kind": "train", "overrides": ["train.mode=mtl", "train.max_steps=160"], "about": "",
              "group": "main", "source": "", "task": "", "baseline": ""},
             {**ablation, "name": "joint-sampling-proportional",
              "overrides": ["train.mode=mtl", "train.max_steps=160", "tasks.sampling=proportional"]},
             {**ablation, "name": "joint-sampling-round-robin",
              "overrides": ["train.mode=mtl", "train.max_steps=160", "tasks.sampling=round_robin"]}]
    runs = {"joint": ("temperature", (0.85, 0.90), 0.0),
            "joint-sampling-proportional": ("proportional", (0.85, 0.90), 1.6),
            "joint-sampling-round-robin": ("round_robin", (0.87, 0.88), None)}
    for name, (sampling, f1, other_load) in runs.items():
        folder = root / name
        folder.mkdir(parents=True)
        config = {"model": {"backbone": "tiny", "dtype": "auto"}, "lora": {"r": 4}, "cv": {"fold": "none"},
                  "data": {"qc_train": "train_QC.txt", "qi_train": "train_QI.txt", "qc_dev": "dev_QC.txt",
                           "qi_dev": "dev_QI.txt", "train_limit": 0, "dev_limit": 300, "max_length": 64},
                  "train": {"mode": "mtl", "global_batch_size": 16, "lr": 3e-4, "seed": 42, "max_steps": 160},
                  "tasks": {"sampling": sampling, "temperature": 2.0}}
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        data = {"qc": ["train_QC.txt: 3000 QC records, dropped 5 with empty query", "dev_QC.txt: 300 QC records"],
                "qi": ["train_QI.txt: 2992 QI records", "dev_QI.txt: 300 QI records"]}
        sequence = "01" * 80 if sampling == "round_robin" else "0" * 85 + "1" * 75
        steps = {t: sequence.count(str(i)) for i, t in enumerate(("qc", "qi"))}
        summary = {**joint_summary(*f1, data=data), "train_sizes": SAMPLE_SIZES, "task_steps": steps,
                   "schedule": sequence}
        (folder / "metrics.json").write_text(json.dumps(summary))
        experiment = {"spec": next(s for s in specs if s["name"] == name), "wall_seconds": 120.0,
                      "other_load": other_load}
        (folder / "experiment.json").write_text(json.dumps(experiment))
    grid = {"specs": specs, "base_overrides": [], "budget_steps": 160, "budget": "as planned",
            "systems": [["joint model (mtl)", "joint", "joint"]], "sessions": [{"command": "mtl compare"}]}
    (root / "grid.json").write_text(json.dumps(grid))
    return root


def ablation_row(text, run):
    section = text.split("## Ablations", 1)[1].split("\n## ", 1)[0]
    line = next(line for line in section.splitlines() if line.startswith(f"| `{run}` |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_a_sampling_ablation_with_the_same_task_schedule_says_so(tmp_path):
    root = sampling_grid(tmp_path / "runs")
    assert main(["report", str(root)]) == 0
    text = (root / "report.md").read_text()

    proportional = ablation_row(text, "joint-sampling-proportional")
    assert proportional[3] == "85/75"  # realised steps per task
    assert proportional[7] == proportional[10] == "—"  # no Δ: the same training as `joint`
    assert proportional[12].startswith("same task schedule as `joint` on this data: the task sizes are nearly equal "
                                      "(2995 QC / 2992 QI training pairs)")
    round_robin = ablation_row(text, "joint-sampling-round-robin")
    assert round_robin[3] == "80/80" and round_robin[7] == "+0.0000"
    assert round_robin[12] == "task schedule differs from `joint`'s at 79 of 160 steps"  # 42 + 37
    assert "the joint model serves both tasks and trains 160: its `temperature` (T=2.0) task schedule gave it 85 QC " \
           "and 75 QI steps" in text
    assert "; `joint` samples tasks by `temperature` (T=2.0)." in text


def test_ablation_rows_carry_validation_auc_and_the_test_split_beside_validation_f1(tmp_path):
    root = sampling_grid(tmp_path / "runs")
    for run, (auc_qc, auc_qi, f1_qc, f1_qi) in {"joint": (0.70, 0.75, 0.80, 0.68),
                                                 "joint-sampling-round-robin": (0.72, 0.74, 0.82, 0.67)}.items():
        summary = json.loads((root / run / "metrics.json").read_text())
        for task, auc in (("qc", auc_qc), ("qi", auc_qi)):
            summary["best"]["reports"][task]["auc"] = auc
        summary["test"] = {"reports": {t: {"f1": 0.5, "auc": auc - 0.02, "at_threshold": {"f1": f1}}
                                       for t, auc, f1 in (("qc", auc_qc, f1_qc), ("qi", auc_qi, f1_qi))}}
        (root / run / "metrics.json").write_text(json.dumps(summary))
    assert main(["report", str(root)]) == 0
    text = (root / "report.md").read_text()
    row = ablation_row(text, "joint-sampling-round-robin")
    assert row[8:12] == ["0.720/0.740", "0.7450", "+0.0050", "0.700/0.720"]
    assert ablation_row(text, "joint-sampling-proportional")[8:12] == ["—", "—", "—", "—"]


def test_the_setup_line_names_dev_files_only_where_they_validated(tmp_path):
    root = sampling_grid(tmp_path / "runs")
    main(["report", str(root)])
    assert "data `train_QC.txt`, `train_QI.txt` (dev `dev_QC.txt`, `dev_QI.txt`; train_limit 0" in \
        (root / "report.md").read_text()
    for run in ("joint", "joint-sampling-proportional", "joint-sampling-round-robin"):
        config = yaml.safe_load((root / run / "config.yaml").read_text())
        config["cv"] = {"fold": "2", "strategy": "ca"}
        (root / run / "config.yaml").write_text(yaml.safe_dump(config))
    main(["report", str(root)])
    text = (root / "report.md").read_text()
    assert "data `train_QC.txt`, `train_QI.txt` (validation: CV fold 2 of them, ca split; train_limit 0" in text
    assert "dev_QC.txt`," not in text


def test_report_states_noise_positives_limitations_and_other_load(tmp_path):
    root = sampling_grid(tmp_path / "runs")
    main(["report", str(root)])
    text = (root / "report.md").read_text()
    assert "QC ±0.033 (120 positives of 300 pairs)" in text  # sqrt(0.85 * 0.15 / 120)
    limitations = text.split("## Limitations of the comparison", 1)[1].split("\n## ", 1)[0]
    assert "keeps the single checkpoint with the best F1 avg" in limitations
    assert "records that took no part in either" in limitations
    cost = text.split("## Cost", 1)[1].split("\n## ", 1)[0]
    assert "| `joint-sampling-proportional` | ok | 160 | 2m 00s | 1m 40s | 100 | 1.60 cores |" in cost
    assert "| `joint-sampling-round-robin` | ok | 160 | 2m 00s | 1m 40s | 100 | — |" in cost
    assert "well above 0 were slowed down" in cost


def seed_grid(root, seed, joint_test, single_test, ablation_test=None, test_auc=None, fold=None):
    """A grid of one seed: a joint run and the two per-task runs with held-out test figures in metrics.json, and
    with `ablation_test` an ablation of the joint run. Test AUC 0.7 unless `test_auc` ({run: AUC}) names it.
    `fold`: instead, the grid of that fold of a multi-fold comparison (no seed override, validated on the fold)."""
    specs = []
    runs = [("joint", ["qc", "qi"], joint_test), ("single-qc", ["qc"], {"qc": single_test[0]}),
            ("single-qi", ["qi"], {"qi": single_test[1]})]
    if ablation_test:
        runs.append(("joint-no-taxonomy", ["qc", "qi"], ablation_test))
    for name, tasks, test in runs:
        reports = {t: {"f1": 0.5, "precision": 0.5, "recall": 0.5, "n": 10, "positive_rate": 0.5, "auc": 0.6}
                   for t in tasks}
        test_reports = {t: {"f1": 0.1, "auc": (test_auc or {}).get(name, 0.7), "n": 10,
                            "at_threshold": {"f1": f1, "threshold": 0.4}}
                        for t, f1 in test.items()}
        (root / name).mkdir(parents=True)
        (root / name / "metrics.json").write_text(json.dumps({
            "mode": "mtl" if len(tasks) == 2 else "single", "tasks": tasks, "steps": 4, "best_step": 4,
            "best": {"headline": {f"f1/{t}": 0.5 for t in tasks}, "reports": reports},
            "test": {"headline": {}, "reports": test_reports}}))
        ablation = name == "joint-no-taxonomy"
        specs.append({"name": name, "kind": "train", "overrides": ["taxonomy.features=none"] if ablation else [],
                      "about": "", "group": "ablations" if ablation else "main", "source": "", "task": "",
                      "baseline": "joint" if ablation else ""})
    (root / "grid.json").write_text(json.dumps({
        "specs": specs, "base_overrides": [] if fold else [f"train.seed={seed}"], "budget": "B", "fold": fold or "none",
        "systems": [["per-task models (paper baseline)", "single-qc", "single-qi"], ["joint model (mtl)", "joint", "joint"]],
        "sessions": [{"command": f"mtl compare --seeds 1,2,3", "machine": "test box"}]}))


def test_a_multi_seed_report_gives_test_f1_mean_and_std_and_says_what_exceeds_the_spread(tmp_path):
    root = tmp_path / "runs"
    # joint test F1 avg per seed: 0.80, 0.82, 0.84; per-task: 0.70, 0.71, 0.72 -> joint better in every seed
    for seed, (joint, single) in enumerate([(0.80, 0.70), (0.82, 0.71), (0.84, 0.72)], start=1):
        seed_grid(root / f"seed-{seed}", seed, {"qc": joint, "qi": joint}, (single, single))
    assert main(["report", str(root)]) == 0
    text = (root / "report.md").read_text()
    systems = text.split("## Systems over seeds", 1)[1].split("\n## ", 1)[0]
    assert "| joint model (mtl) | 0.8200 ± 0.0163 (3) | 0.8200 ± 0.0163 (3) | 0.8200 ± 0.0163 (3) |" in systems
    assert "| per-task models (paper baseline) | 0.7100 ± 0.0082 (3)" in systems
    assert "Base overrides (every run, besides its seed): `none`" in text
    assert "+0.1000, +0.1100, +0.1200: **better, beyond the seed spread (±0.0163)**" in systems
    assert ("| per-task models (paper baseline) | 0.1100 ± 0.0082 (3): better, beyond the seed spread (±0.0163) | "
            "0.1100 ± 0.0082 (3): better, beyond the seed spread (±0.0163) |") in systems
    for seed in (1, 2, 3):
        assert (root / f"seed-{seed}" / "report.md").is_file()
        row = results_row((root / f"seed-{seed}" / "report.md").read_text(), "joint")
        assert row[3] == f"{0.78 + 0.02 * seed:.4f}" and row[6] == "0.7000"  # test F1 QC, test AUC QC


def test_a_difference_smaller_than_the_seed_spread_is_called_noise(tmp_path):
    root = tmp_path / "runs"
    for seed, (joint, single) in enumerate([(0.80, 0.70), (0.70, 0.80), (0.90, 0.85)], start=1):
        seed_grid(root / f"seed-{seed}", seed, {"qc": joint, "qi": joint}, (single, single))
    main(["report", str(root)])
    assert "**within the seed spread" in (root / "report.md").read_text()


def test_the_per_task_verdicts_read_each_task_on_its_own(tmp_path):
    root = tmp_path / "runs"
    # against per-task F1 0.70: joint QI better in every seed (+0.10, +0.12, +0.14), QC noisy (+0.10, -0.10, +0.05)
    for seed, (qc, qi) in enumerate([(0.80, 0.80), (0.60, 0.82), (0.75, 0.84)], start=1):
        seed_grid(root / f"seed-{seed}", seed, {"qc": qc, "qi": qi}, (0.70, 0.70))
    main(["report", str(root)])
    systems = (root / "report.md").read_text().split("## Systems over seeds", 1)[1].split("\n## ", 1)[0]
    row = [line for line in systems.splitlines() if line.startswith("| per-task models")][-1]  # the minus table
    qc_cell, qi_cell, qc_auc, qi_auc = row.strip("| ").split(" | ")[1:]
    assert qc_cell.startswith("0.0167 ± ") and "within the seed spread" in qc_cell
    assert qi_cell.startswith("0.1200 ± 0.0163 (3): better, beyond the seed spread")
    assert qc_auc == qi_auc == "0.0000 ± 0.0000 (3): within the seed spread (±0.0000)"  # every run's AUC is 0.7


def test_a_multi_fold_report_pairs_by_fold_and_reads_auc_beside_f1(tmp_path):
    """`mtl compare --fold 0,1,2` leaves ROOT/fold-K/ grids: the same tables over folds, AUC verdicts included."""
    root = tmp_path / "runs"
    # F1: joint 0.80 / 0.70 / 0.90 against per-task 0.70 / 0.80 / 0.85 (noise); AUC: joint +0.05 on every fold
    for fold, (joint, single) in enumerate([(0.80, 0.70), (0.70, 0.80), (0.90, 0.85)]):
        auc = {"joint": 0.75 + 0.01 * fold, "single-qc": 0.70 + 0.01 * fold, "single-qi": 0.70 + 0.01 * fold}
        seed_grid(root / f"fold-{fold}", 1, {"qc": joint, "qi": joint}, (single, single), test_auc=auc,
                  fold=str(fold))
    assert main(["report", str(root)]) == 0
    text = (root / "report.md").read_text()
    assert text.startswith("# Single vs joint vs TAPT over folds") and "3 CV folds (0, 1, 2)" in text
    assert "Base overrides (every run, besides its fold): `none`." in text
    systems = text.split("## Systems over folds", 1)[1].split("\n## ", 1)[0]
    assert "| joint model (mtl) | 0.8000 ± 0.0816 (3) | 0.8000 ± 0.0816 (3) | 0.8000 ± 0.0816 (3) | " \
           "0.7600 ± 0.0082 (3) | 0.7600 ± 0.0082 (3) |" in systems
    assert "Paired by fold (same fold: same training and validation records)" in systems
    row = [line for line in systems.splitlines() if line.startswith("| per-task models")][-1]
    f1_qc, _, auc_qc, auc_qi = row.strip("| ").split(" | ")[1:]
    assert "within the fold spread" in f1_qc
    assert auc_qc == auc_qi == "0.0500 ± 0.0000 (3): better, beyond the fold spread (±0.0082)"
    assert "## Runs over folds" in text and "- fold 2: [`fold-2/report.md`](fold-2/report.md)" in text
    assert (root / "fold-1" / "report.md").is_file()


def test_a_report_over_the_first_fold_alone_shows_its_figures_without_a_spread(tmp_path):
    """A fold grid in progress (only fold-0/ so far): one value per cell, not a standard deviation of 0."""
    root = tmp_path / "runs"
    seed_grid(root / "fold-0", 1, {"qc": 0.8, "qi": 0.6}, (0.7, 0.7), fold="0")
    assert main(["report", str(root)]) == 0
    text = (root / "report.md").read_text()
    assert "from the grids of 1 CV fold (0)" in text
    systems = text.split("## Systems over folds", 1)[1].split("\n## ", 1)[0]
    assert "| joint model (mtl) | 0.8000 (1) | 0.6000 (1) | 0.7000 (1) | 0.7000 (1) | 0.7000 (1) |" in systems
    assert "±" not in systems.split("Paired by fold")[0].split("\n\n", 2)[2]
    assert "one fold: no spread to compare with" in systems


def test_the_systems_table_of_one_grid_gives_auc_beside_f1(tmp_path):
    root = tmp_path / "runs"
    seed_grid(root, 1, {"qc": 0.8, "qi": 0.9}, (0.7, 0.6),
              test_auc={"joint": 0.81, "single-qc": 0.72, "single-qi": 0.63})
    write_report(root)
    systems = (root / "report.md").read_text().split("## Systems", 1)[1].split("\n## ", 1)[0]
    assert "| joint model (mtl) | `joint` | `joint` | 0.8000 | 0.9000 | **0.8500** | 0.8100 | 0.8100 | 1 |" in systems
    assert ("| per-task models (paper baseline) | `single-qc` | `single-qi` | 0.7000 | 0.6000 | **0.6500** | 0.7200 | "
            "0.6300 | 2 |") in systems


def test_a_system_without_a_test_split_on_both_runs_is_scored_on_validation_f1_and_auc():
    """Test figures of one run beside validation figures of the other would not be one system's scores."""
    qc = RunResult("single-qc", f1={"qc": 0.7}, auc={"qc": 0.71}, test_f1={"qc": 0.6}, test_auc={"qc": 0.61})
    qi = RunResult("single-qi", f1={"qi": 0.8}, auc={"qi": 0.81})
    assert system_scores({"single-qc": qc, "single-qi": qi}, "single-qc", "single-qi") == \
        pytest.approx((0.7, 0.8, 0.75, 0.71, 0.81))
    qi.test_f1, qi.test_auc = {"qi": 0.95}, {"qi": 0.91}
    assert system_scores({"single-qc": qc, "single-qi": qi}, "single-qc", "single-qi") == \
        pytest.approx((0.6, 0.95, 0.775, 0.61, 0.91))
    assert system_scores({"single-qc": qc}, "single-qc", "single-qi") == (None,) * 5


def test_a_root_with_seed_and_fold_grids_is_refused(tmp_path):
    root = tmp_path / "runs"
    seed_grid(root / "seed-1", 1, {"qc": 0.8, "qi": 0.8}, (0.7, 0.7))
    seed_grid(root / "fold-0", 1, {"qc": 0.8, "qi": 0.8}, (0.7, 0.7))
    with pytest.raises(ConfigError, match="both seed-S/ and fold-K/ grids"):
        write_report(root)


def test_the_seeds_report_pairs_each_ablation_with_its_compared_run(tmp_path):
    root = tmp_path / "runs"
    # ablation minus joint: QC -0.05, -0.06, -0.04 (beyond the ablation's spread 0.0216); QI +0.02, -0.02, 0 (noise)
    for seed, (joint, qc, qi) in enumerate([(0.80, 0.75, 0.82), (0.82, 0.76, 0.80), (0.84, 0.80, 0.84)], start=1):
        seed_grid(root / f"seed-{seed}", seed, {"qc": joint, "qi": joint}, (0.7, 0.7), {"qc": qc, "qi": qi})
    main(["report", str(root)])
    section = (root / "report.md").read_text().split("## Ablations over seeds", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| `joint-no-taxonomy` |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["`joint-no-taxonomy`", "`joint`", "3"]
    assert cells[3] == "-0.0500 ± 0.0082 (3): worse, beyond the seed spread (±0.0216)"
    assert cells[4].startswith("0.0000 ± 0.0000 (3): within")  # every run's test AUC is 0.7
    assert cells[5].startswith("0.0000 ± 0.0163 (3): within the seed spread")
    assert cells[7].startswith("-0.0250 ± ")


SPEC = {"name": "bad", "kind": "train", "overrides": [], "about": "", "group": "main", "source": "", "task": "",
        "baseline": ""}


@pytest.mark.parametrize("name, content, message", [
    ("metrics.json", json.dumps(SINGLE_QC_SUMMARY)[:50], "bad/metrics.json:1: not valid JSON"),
    ("metrics.json", "[]", "bad/metrics.json: expected a JSON object, got array"),
    ("metrics.json", json.dumps({**SINGLE_QC_SUMMARY, "steps": "10"}), "bad/metrics.json: field 'steps'"),
    ("metrics.json", json.dumps(SINGLE_QC_SUMMARY).replace("0.71234", '"0.71"'),
     "bad/metrics.json: field 'best.headline.f1/qc': input should be a valid number"),
    ("metrics.json", json.dumps({"steps": 3}), "bad/metrics.json: field 'best': missing"),
    ("config.yaml", "- 1\n- 2\n", "bad/config.yaml: expected a mapping of config sections, got list"),
    ("config.yaml", "train: [\n", "bad/config.yaml: not valid YAML"),
    ("config.yaml", "train: 5\n", "bad/config.yaml: field 'train': input should be an object, got 5"),
    ("experiment.json", "{", "bad/experiment.json:1: not valid JSON"),
    ("experiment.json", json.dumps({"spec": {**SPEC, "kind": "zzz"}}), "bad/experiment.json: field 'spec.kind'"),
    ("metrics.json", json.dumps({**SINGLE_QC_SUMMARY, "schedule": "0x1"}), "bad/metrics.json: field 'schedule'"),
], ids=["truncated metrics", "metrics list", "steps string", "f1 string", "no best", "config list",
        "config invalid", "config section int", "experiment truncated", "unknown kind", "bad schedule"])
def test_a_run_folder_the_report_cannot_read_is_a_row_saying_why(root, tmp_path, name, content, message):
    (root / "bad").mkdir()
    (root / "bad" / name).write_text(content)
    if name != "metrics.json":
        (root / "bad" / "metrics.json").write_text(json.dumps(SINGLE_QC_SUMMARY))
    text = render(root, read_grid(root), read_runs(root, read_grid(root)))  # what write_report writes, less the plots
    status = results_row(text, "bad")[2]
    assert status.startswith("**unreadable**: ") and message in status, status
    assert results_row(text, "single-qc")[8] == "0.7123"  # the other runs are reported as before (val F1 QC)


def test_an_empty_failed_file_and_a_truncated_metrics_json_are_rows_of_the_written_report(root, tmp_path):
    (root / "broken" / "FAILED").write_text("")
    (root / "cut").mkdir()
    (root / "cut" / "metrics.json").write_text(json.dumps(SINGLE_QC_SUMMARY)[:50])
    assert main(["report", str(root), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert results_row(text, "broken")[2] == "**FAILED**: (empty FAILED file)"
    assert results_row(text, "cut")[2].startswith(f"**unreadable**: {root / 'cut' / 'metrics.json'}:1: not valid JSON")


@pytest.mark.parametrize("content, message", [
    ("{", "grid.json:1: not valid JSON"),
    ("[]", "grid.json: expected a JSON object, got array"),
    (json.dumps({"specs": [{"name": 3}]}), "grid.json: field 'specs.0.name': input should be a valid string"),
    (json.dumps({"systems": [["joint"]]}), "grid.json: field 'systems.0.1': missing"),
])
def test_a_grid_json_the_report_cannot_read_is_a_line_saying_why(root, tmp_path, caplog, content, message):
    (root / "grid.json").write_text(content)
    assert main(["report", str(root), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "**grid.json could not be read**" in text and message in text
    assert [row[0] for row in (results_row(text, n) for n in ("broken", "joint", "single-qc"))] == \
        ["`broken`", "`joint`", "`single-qc`"]


@pytest.mark.parametrize("out, message", [
    ("{tmp}/file.md", "--out {tmp}/file.md is a file; give a folder"),
    ("{tmp}/file.md/sub", "--out {tmp}/file.md/sub: {tmp}/file.md is a file, so no folder can be made there"),
    ("{tmp}/loop", "--out {tmp}/loop: cannot resolve the path: Symlink loop"),
])
def test_an_out_folder_that_cannot_be_written_is_refused_before_reading(root, tmp_path, caplog, out, message):
    (tmp_path / "file.md").write_text("keep")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with caplog.at_level(logging.ERROR):
        assert main(["report", str(root), "--out", out.format(tmp=tmp_path)]) == 2
    assert message.format(tmp=tmp_path) in caplog.text
    assert (tmp_path / "file.md").read_text() == "keep"


def test_a_read_only_root_without_out_is_refused_and_with_out_skips_the_layout(root, tmp_path, caplog, monkeypatch):
    real_access = os.access
    monkeypatch.setattr("mtl.io.os.access", lambda p, mode: False if Path(p) == root and mode & os.W_OK
                        else real_access(p, mode))
    with caplog.at_level(logging.WARNING):
        assert main(["report", str(root)]) == 2
        assert f"no permission to write in {root}" in caplog.text
        assert main(["report", str(root), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.md").is_file() and not list(root.glob("events.out.tfevents.*.layout"))
    assert "so no TensorBoard layout was written" in caplog.text


def test_a_run_folder_name_that_is_not_utf8_is_escaped_in_the_report(root, tmp_path):
    folder = os.fsencode(root) + b"/run-\xff"
    os.mkdir(folder)
    with open(folder + b"/FAILED", "w") as f:
        f.write("boom\n")
    assert main(["report", str(root), "--out", str(tmp_path / "out")]) == 0
    assert "| `run-\\udcff` |" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")


def test_the_report_breaks_qc_down_by_category_from_the_test_split(root, tmp_path):
    bucket = {"seen path": {"n": 40, "f1": 0.9, "auc": 0.8, "errors": 4},
              "unseen group": {"n": 10, "f1": 0.5, "auc": 0.6, "errors": 5}}
    branches = {"food": {"n": 30, "f1": 0.8, "auc": 0.7, "errors": 6}, "toys": {"n": 20, "f1": 0.6, "auc": 0.5,
                                                                             "errors": 9}}
    summary = {**SINGLE_QC_SUMMARY, "test": {"headline": {}, "reports": {"qc": {
        "f1": 0.7, "auc": 0.75, "n": 50, "at_threshold": {"f1": 0.72, "threshold": 0.4},
        "by_seen": bucket, "by_branch": branches,
        "by_depth": {"10": {"n": 5, "f1": 0.4, "auc": 0.5, "errors": 3}, "2": {"n": 45, "f1": 0.8, "auc": 0.7,
                                                                           "errors": 12}}}}}}
    (root / "single-qc" / "metrics.json").write_text(json.dumps(summary))
    assert main(["report", str(root), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    section = text.split("## QC by category", 1)[1].split("\n## ", 1)[0]
    assert "| `single-qc` | test | 0.9000 / 0.8000 (40) | 0.5000 / 0.6000 (10) |" in section
    assert section.index("| toys | 20 | 9 |") < section.index("| food | 30 | 6 |")  # most errors first
    assert section.index("| 2 | 45 | 12 | 0.8000 | 0.7000 |") < section.index("| 10 | 5 | 3 | 0.4000 | 0.5000 |")
    assert (tmp_path / "out" / "qc_f1_by_branch.png").is_file()
