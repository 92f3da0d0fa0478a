import importlib.util
import json

import yaml

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("collect_real", REPO / "benchmarks" / "real" / "collect.py")
collect = importlib.util.module_from_spec(spec)
spec.loader.exec_module(collect)


def fold_runs(root, task, auc):
    """What `mtl train --fold 0,1` leaves for collect.py: the root's cv.json and each fold's config and metrics."""
    by_language = {"en": {"cv_f1_mean": 0.6, "cv_f1_std": 0.0, "cv_auc_mean": auc, "cv_auc_std": 0.0}}
    root.mkdir(parents=True)
    (root / "cv.json").write_text(json.dumps({task: {
        "cv_f1_mean": 0.6, "cv_f1_std": 0.01, "cv_auc_mean": auc, "cv_auc_std": 0.02, "folds": [0, 1],
        "by_language": by_language}}))
    for fold in (0, 1):
        run = root / f"fold-{fold}"
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump({"train": {"global_batch_size": 16}}))
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(
            {"step": step, f"eval/f1/{task}": 0.6, f"eval/auc/{task}": auc}) for step in (100, 200)) + "\n")
        report = {"auc": auc, "f1": 0.6, "at_threshold": {"f1": 0.61}, "baseline": {"f1_all_positive": 0.5}}
        (run / "metrics.json").write_text(json.dumps({"test": {"reports": {task: report}}}))


def test_collecting_one_task_keeps_the_other_tasks_figures_and_section(tmp_path):
    fold_runs(tmp_path / "qc-cv", "qc", 0.68)
    fold_runs(tmp_path / "qi-cv", "qi", 0.74)
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "commands").write_text("the qc command\nthe qi command\n")
    collect.main(["--qc", str(tmp_path / "qc-cv"), "--qi", str(tmp_path / "qi-cv"), "--out", str(out),
                  "--command-file", str(tmp_path / "commands")])
    first = (out / "curves.md").read_text(encoding="utf-8")

    fold_runs(tmp_path / "qi-cv-2", "qi", 0.77)
    collect.main(["--qi", str(tmp_path / "qi-cv-2"), "--out", str(out)])
    summary = json.loads((out / "cv.json").read_text(encoding="utf-8"))
    assert list(summary) == ["qc", "qi", "command"]
    assert summary["qc"]["cv_auc_mean"] == 0.68 and summary["qi"]["cv_auc_mean"] == 0.77
    assert summary["qi"]["test_f1_mean"] == 0.61 and summary["command"] == "the qc command\nthe qi command"
    curves = (out / "curves.md").read_text(encoding="utf-8")
    qc_section = first.split("## QI")[0]
    assert curves.startswith(qc_section) and "0.6800" in qc_section
    assert "0.7700" in curves.split("## QI")[1] and "0.7400" not in curves
    assert (out / "curves_qi.png").stat().st_size > 0


def test_every_committed_cv_json_records_the_commands_beside_it():
    """A task collected again without `--command-file` keeps the old commands: cv.json then names a run that did not
    make its figures (the QI line once kept `train.max_steps=600` beside the 1,000-step figures)."""
    folders = sorted(path.parent for path in (REPO / "benchmarks" / "real").rglob("cv.json"))
    assert folders, "no committed cv.json under benchmarks/real"
    for folder in folders:
        recorded = json.loads((folder / "cv.json").read_text(encoding="utf-8"))["command"]
        assert recorded == (folder / "COMMANDS").read_text(encoding="utf-8").strip(), folder


def test_a_fused_run_shows_the_models_own_auc_beside(tmp_path):
    fold_runs(tmp_path / "qc-cv", "qc", 0.7)
    for fold in (0, 1):
        metrics = tmp_path / "qc-cv" / f"fold-{fold}" / "metrics.jsonl"
        rows = [{**json.loads(line), "eval/auc_model/qc": 0.65} for line in metrics.read_text().splitlines()]
        metrics.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    out.mkdir()
    collect.main(["--qc", str(tmp_path / "qc-cv"), "--out", str(out)])
    curves = (out / "curves.md").read_text(encoding="utf-8")
    assert "| val AUC | val AUC, model alone |" in curves and "| 0 | 1600 | 0.6000 | 0.7000 | 0.6500 |" in curves
