"""`mtl report` on synthetic run folders: event files written here with SummaryWriter, a metrics.json, a TAPT run, a
failed run and a run that never started."""

import json

import pytest
from torch.utils.tensorboard import SummaryWriter

from mtl.cli import main
from mtl.report import CURVE_PLOTS, LANGUAGE_PLOT, read_run

JOINT_EVENTS = {  # best by F1 avg: step 20
    10: {"eval/f1/qc": 0.6123, "eval/f1/qi": 0.5234, "eval/f1/avg": 0.56785, "eval/f1_by_language/qc/en": 0.7011,
         "eval/f1_by_language/qc/pl": 0.4012, "eval/f1_by_language/qi/en": 0.5511},
    20: {"eval/f1/qc": 0.6543, "eval/f1/qi": 0.5877, "eval/f1/avg": 0.621, "eval/f1_by_language/qc/en": 0.7321,
         "eval/f1_by_language/qc/pl": 0.4432, "eval/f1_by_language/qi/en": 0.6012, "perf/tokens_per_s": 250.0},
    30: {"eval/f1/qc": 0.6601, "eval/f1/qi": 0.5502, "eval/f1/avg": 0.60515, "perf/tokens_per_s": 270.0},
}
SINGLE_QC_SUMMARY = {
    "mode": "single", "tasks": ["qc"], "steps": 10, "best_step": 5,
    "best": {"headline": {"f1/qc": 0.71234, "f1_tuned/qc": 0.73456},
             "reports": {"qc": {"f1": 0.71234, "precision": 0.7, "recall": 0.72, "n": 100, "positive_rate": 0.5,
                                "threshold": 0.5, "f1_by_language": {"en": 0.75, "pl": 0.61},
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
    assert joint[3:6] == ["0.6543", "0.5877", "0.6210"]  # the evaluation at the best step (20), not the last one
    assert joint[-1] == "20"
    single = results_row(text, "single-qc")
    assert single[2] == "ok" and single[3] == "0.7123" and single[4] == "—" and single[-1] == "5"
    assert "| `joint` | 0.7321 | 0.4432 |" in text  # F1 by language at the best step
    assert "| `single-qc` | ok | 10 | " in text and "| 80 | 1.23M | 270.00M | 1030 MiB |" in text


def test_failed_and_missing_runs_are_rows_not_gaps(root, tmp_path):
    main(["report", str(root), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "report.md").read_text()
    broken = results_row(text, "broken")
    assert broken[2] == "**FAILED**: ValueError: boom at step 3" and broken[3:6] == ["—", "—", "—"]
    assert results_row(text, "never-ran")[2].startswith("**missing**")
    assert "1 ok, 1 incomplete, 1 FAILED, 1 missing" in text


def test_plots_and_tensorboard_layout_are_written(root, tmp_path):
    main(["report", str(root), "--out", str(tmp_path / "out")])
    for name in [*CURVE_PLOTS.values(), LANGUAGE_PLOT]:
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    main(["report", str(root)])  # again: the layout file is replaced, not duplicated
    assert len(list(root.glob("events.out.tfevents.*.layout"))) == 1
    assert (root / "report.md").is_file() and not list(root.glob(".*tmp*"))


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
