"""The comparison grid: run names and budgets as data, and a small grid on the tiny backbone with a failing run."""

import json
from pathlib import Path

import pytest
import torch

from mtl.config import load_config
from mtl.errors import ConfigError
from mtl.experiments import (FAILED_FILE, Budget, RunSpec, build_grid, grid_folds, plan, run_config, run_folds, run_grid,
                             run_seeds)
from mtl.report import read_events, write_report
from tests.conftest import tiny_overrides

MAIN = ["single-qc", "single-qi", "tapt-qi-to-qc", "tapt-qc-to-qi", "joint", "joint-ft-qc", "joint-ft-qi",
        "transfer-qc-to-qi", "transfer-qi-to-qc"]
ABLATIONS = ["joint-no-translation", "joint-no-taxonomy", "joint-taxonomy-nodes", "joint-taxonomy-both",
             "joint-sampling-proportional", "joint-sampling-round-robin",
             "joint-cv-ca-fold0", "joint-cv-random-fold0", "joint-langout-fold0", "single-qc-langout-fold0",
             "single-qi-langout-fold0"]
SHARED_KEYS = ("train.seed", "train.global_batch_size", "train.micro_batch_size", "train.lr", "data.", "model.backbone",
               "cv.n_folds", "lora.")
"""What every run of the grid must share: no spec may override these."""


def test_grid_names_in_run_order():
    assert [s.name for s in plan("main")] == MAIN
    assert [s.name for s in plan("ablations")] == ABLATIONS
    assert [s.name for s in plan("all")] == MAIN + ABLATIONS
    assert [s.name for s in plan("all", only=["joint", "single-qi"])] == ["single-qi", "joint"]
    with pytest.raises(ConfigError, match="no run named jiont"):
        plan("main", only=["jiont"])


def test_budget_follows_train_max_steps():
    by_name = {s.name: dict(o.split("=", 1) for o in s.overrides) for s in plan("all", ["train.max_steps=96"])}
    assert by_name["single-qc"]["train.max_steps"] == "48" and by_name["single-qc-langout-fold0"]["train.max_steps"] == "48"
    assert by_name["joint"]["train.max_steps"] == "96" and by_name["joint-no-taxonomy"]["train.max_steps"] == "96"
    assert by_name["tapt-qi-to-qc"]["train.tapt_steps"] == by_name["tapt-qi-to-qc"]["train.max_steps"] == "24"
    assert by_name["joint-ft-qi"]["train.max_steps"] == "12"
    assert by_name["joint"]["train.eval_every"] == "24" and by_name["single-qc"]["train.eval_every"] == "12"
    assert Budget(8).per_task == 4 and Budget(8).tapt_stage == 2 and Budget(8).finetune == 1


def test_every_spec_is_a_valid_config_sharing_seed_data_and_batch(tmp_path):
    base = ["train.seed=7", "train.global_batch_size=32", "train.lr=1e-4", "data.dev_limit=5", "data.qc_train=a.txt",
            "lora.r=8", "train.max_steps=96"]
    for spec in build_grid("all", Budget(96)):
        assert not [o for o in spec.overrides if o.startswith(SHARED_KEYS)], spec.name
        if spec.kind != "train":  # fine-tunes and transfers need their source run's folder (the small grid runs them)
            continue
        cfg = run_config(spec, tmp_path, base, None)
        # The base overrides reach every run as resolved for it, and no spec undoes them.
        assert (cfg.train.seed, cfg.train.global_batch_size, cfg.train.lr, cfg.data.dev_limit, cfg.data.qc_train,
                cfg.lora.r) == (7, 32, 1e-4, 5, "a.txt", 8), spec.name
        assert (cfg.log.root, cfg.log.run_name) == (str(tmp_path), spec.name)


def test_grid_controlled_keys_cannot_be_base_overrides(tmp_path):
    with pytest.raises(ConfigError, match="train.mode is set by the grid"):
        plan("main", ["train.mode=single"])
    run_grid([], tmp_path, ["train.seed=1"])
    with pytest.raises(ConfigError, match="holds a grid run"):  # a resumed grid must not mix base configs
        run_grid([], tmp_path, ["train.seed=2"])


def test_a_grid_on_a_cv_fold_validates_every_run_there_but_the_ablations_that_name_their_own(tmp_path):
    specs = plan("all", ["train.max_steps=8"], fold="2")
    for spec in specs:
        if spec.kind != "train":
            continue
        cfg = run_config(spec, tmp_path, ["train.max_steps=8"], None, fold="2")
        assert cfg.cv.fold == ("0" if "fold0" in spec.name else "2"), spec.name
    with pytest.raises(ConfigError, match="cv.fold"):
        plan("main", fold="9")


def test_a_fold_list_runs_the_grid_once_per_fold_under_its_own_root(tmp_path):
    assert grid_folds("1") == [] and grid_folds("none") == []
    assert grid_folds("all", None, ["cv.n_folds=3"]) == ["0", "1", "2"]
    run_folds([], tmp_path, grid_folds("0, 2"), ["train.max_steps=8"])
    for fold in ("0", "2"):
        grid = json.loads((tmp_path / f"fold-{fold}" / "grid.json").read_text())
        assert grid["base_overrides"] == ["train.max_steps=8"] and grid["fold"] == fold
    assert not (tmp_path / "fold-1").exists() and not (tmp_path / "grid.json").exists()


def test_a_fold_grid_continues_alone_and_refuses_another_fold_or_a_mixed_root(tmp_path):
    run_folds([], tmp_path, ["0", "1"], ["train.max_steps=8"])
    run_grid([], tmp_path / "fold-0", ["train.max_steps=8"], fold="0")  # one fold's grid, continued on its own
    with pytest.raises(ConfigError, match="fold 0 of a multi-fold comparison; this call validates on --fold 1"):
        run_grid([], tmp_path / "fold-0", ["train.max_steps=8"], fold="1")
    with pytest.raises(ConfigError, match="holds per-fold grids"):
        run_grid([], tmp_path, ["train.max_steps=8"])
    with pytest.raises(ConfigError, match="holds fold-N/: a per-seed comparison needs a root of its own"):
        run_seeds([], tmp_path, [1], ["train.max_steps=8"])
    run_grid([], tmp_path / "single", ["train.max_steps=8"])
    with pytest.raises(ConfigError, match="holds grid.json: a per-fold comparison"):
        run_folds([], tmp_path / "single", ["0", "1"], ["train.max_steps=8"])


def test_a_fold_grid_that_cannot_resume_is_refused_before_any_fold_runs(tmp_path):
    run_grid([], tmp_path / "fold-1", ["train.max_steps=16"], fold="1")
    with pytest.raises(ConfigError, match="fold-1 holds a grid run with"):
        run_folds([], tmp_path, ["0", "1"], ["train.max_steps=8"])
    assert not (tmp_path / "fold-0").exists()


def test_a_run_that_names_its_fold_runs_only_in_the_first_folds_grid(tmp_path, monkeypatch):
    ran = {}
    monkeypatch.setattr("mtl.experiments.run_grid",
                        lambda specs, root, *a, **k: ran.setdefault(Path(root).name, [s.name for s in specs]) and {})
    specs = plan("all", ["train.max_steps=8"])
    run_folds(specs, tmp_path, ["2", "3"], ["train.max_steps=8"])
    pinned = {s.name for s in specs if any(o.startswith("cv.fold=") for o in s.overrides)}
    assert pinned and pinned <= set(ran["fold-2"]) and not pinned & set(ran["fold-3"])
    assert set(ran["fold-2"]) - pinned == set(ran["fold-3"])


def test_seeds_run_the_grid_once_per_seed_under_its_own_root(tmp_path):
    run_seeds([], tmp_path, [3, 5], ["train.max_steps=8"], fold="1")
    for seed in (3, 5):
        grid = json.loads((tmp_path / f"seed-{seed}" / "grid.json").read_text())
        assert grid["base_overrides"] == ["train.max_steps=8", f"train.seed={seed}"] and grid["fold"] == "1"


def test_small_grid_records_a_failure_goes_on_and_resumes(tiny_backbone, tiny_data, tmp_path):
    base = tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{"train.max_steps": 4, "data.dev_limit": 32})
    base = [o for o in base if not o.startswith(("log.root=", "train.eval_every="))]
    wanted = {"single-qc", "joint", "joint-ft-qi", "transfer-qc-to-qi"}
    broken = RunSpec("broken", "train", ("train.mode=single", "train.task=qi", "data.qi_train=/nowhere/train_QI.txt"))
    specs = [s for s in plan("main", base) if s.name in wanted]
    specs.insert(1, broken)
    root = tmp_path / "grid"

    statuses = run_grid(specs, root, base)
    assert statuses["broken"].startswith("FAILED") and "/nowhere/train_QI.txt" in statuses["broken"]
    assert (root / "broken" / FAILED_FILE).read_text().startswith(
        "ConfigError: data.qi_train='/nowhere/train_QI.txt': file not found")
    assert {n: s for n, s in statuses.items() if n != "broken"} == dict.fromkeys(
        ["single-qc", "joint", "joint-ft-qi", "transfer-qc-to-qi"], "ok")
    assert load_config(root / "joint-ft-qi" / "config.yaml").model.init_from == str(root / ".init" / "joint-ft-qi")
    facts = {name: json.loads((root / name / "experiment.json").read_text()) for name in wanted}
    summaries = {name: json.loads((root / name / "metrics.json").read_text()) for name in wanted}
    joint = summaries["joint"]
    assert set(joint["train_sizes"]) == {"qc", "qi"} and all(130 < n < 160 for n in joint["train_sizes"].values())
    assert len(joint["schedule"]) == 4
    assert joint["task_steps"] == {t: joint["schedule"].count(str(i)) for i, t in enumerate(("qc", "qi"))
                                   if str(i) in joint["schedule"]}
    assert summaries["single-qc"]["task_steps"] == {"qc": 2} and summaries["joint-ft-qi"]["task_steps"] == {"qi": 1}
    assert summaries["transfer-qc-to-qi"]["task_steps"] == {}
    for name, fact in facts.items():  # other processes' CPU use during each run (Linux: /proc/stat)
        assert fact["other_load"] is None or fact["other_load"] >= 0, name

    again = run_grid(specs, root, base)
    assert again["broken"].startswith("FAILED")
    assert {s for n, s in again.items() if n != "broken"} == {"skipped"}

    text = write_report(root).read_text()
    assert "| `broken` |  | **FAILED**: " in text
    transfer = json.loads((root / "transfer-qc-to-qi" / "metrics.json").read_text())
    assert transfer["mode"] == "transfer" and set(transfer["best"]["reports"]) == {"qi"}
    assert f"| {transfer['best']['headline']['f1/qi']:.4f} |" in text
    # the transfer logs what a training run's evaluation logs (AUC beside F1), and the report shows its AUC per
    # language: how the other task's head ranks this task's pairs, language by language
    logged = read_events(root / "transfer-qc-to-qi").scalars
    assert logged["eval/auc/qi"] == [(0, pytest.approx(transfer["best"]["reports"]["qi"]["auc"]))]
    qi_auc = text.split("### QI: ROC-AUC\n", 1)[1].split("\n#", 1)[0]
    row = next(line for line in qi_auc.splitlines() if line.startswith("| `transfer-qc-to-qi` |"))
    by_language = transfer["best"]["reports"]["qi"]["auc_by_language"]
    assert by_language and all(f"| {auc:.4f} |" in row for auc in by_language.values())
    # and scores the target task's test split, as the trained runs do, at the threshold tuned on validation
    test = transfer["test"]["reports"]["qi"]
    assert test["n"] == joint["test"]["reports"]["qi"]["n"] > 0
    assert test["at_threshold"]["threshold"] == transfer["best"]["reports"]["qi"]["tuned"]["threshold"]
    section = text.split("## Zero-shot transfer across tasks", 1)[1].split("\n## ", 1)[0]
    assert f"| `transfer-qc-to-qi` | test ({test['n']}) | {test['auc']:.4f} |" in section
    assert "| `joint-ft-qi` | ok | 4+1 |" in text
    cost = text.split("## Cost", 1)[1].split("\n## ", 1)[0]
    joint_cost = next(line for line in cost.splitlines() if line.startswith("| `joint` |"))
    other_load = joint_cost.split("|")[7].strip()
    assert other_load == f"{facts['joint']['other_load']:.2f} cores" or facts["joint"]["other_load"] is None
    steps = joint["task_steps"]
    assert f"task schedule gave it {steps['qc']} QC and {steps['qi']} QI steps" in text


def test_a_qc_fine_tune_of_a_joint_model_with_node_embeddings_starts_from_them(tiny_backbone, tiny_data, tmp_path):
    from safetensors.torch import load_file

    base = tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{"train.max_steps": 4, "data.dev_limit": 32,
                                                                  "taxonomy.features": "nodes"})
    base = [o for o in base if not o.startswith(("log.root=", "train.eval_every="))]
    specs = [s for s in plan("main", base) if s.name in ("joint", "joint-ft-qc")]
    root = tmp_path / "grid"
    assert run_grid(specs, root, base) == {"joint": "ok", "joint-ft-qc": "ok"}
    init = load_file(str(root / ".init" / "joint-ft-qc" / "heads.safetensors"))
    joint = load_file(str(root / "joint" / "best" / "heads.safetensors"))
    assert set(init) == {k for k in joint if k.startswith("qc_")} and "qc_nodes.weight" in init
    assert torch.equal(init["qc_nodes.weight"], joint["qc_nodes.weight"])


def test_a_run_resumed_from_an_earlier_attempts_checkpoint_says_its_wall_time_is_that_attempts(tmp_path, monkeypatch):
    import mtl.experiments as experiments

    def finish_the_run(spec, cfg, root):  # stands in for training: what a finished run leaves
        summary = {"mode": "single", "tasks": ["qc"], "steps": 8, "best_step": 8, "train_seconds": 30.0,
                   "best": {"headline": {"f1/qc": 0.7}, "reports": {"qc": {"f1": 0.7, "precision": 0.7,
                                                                          "recall": 0.7, "n": 10}}}}
        (root / spec.name / "metrics.json").write_text(json.dumps(summary))

    monkeypatch.setattr(experiments, "execute", finish_the_run)
    names = ("fresh", "half-saved", "again", "tapt-stage", "fold-stage", "step-less")
    specs = [RunSpec(name, "train", ("train.mode=single", "train.task=qc")) for name in names]
    (tmp_path / "fresh").mkdir()
    (tmp_path / "half-saved" / "step-000004.tmp" / "training").mkdir(parents=True)  # killed while saving: restarts
    (tmp_path / "again" / "step-000004" / "training").mkdir(parents=True)
    (tmp_path / "tapt-stage" / "source-qi" / "step-000004" / "training").mkdir(parents=True)
    (tmp_path / "fold-stage" / "fold-1" / "target-qc" / "step-000004" / "training").mkdir(parents=True)
    (tmp_path / "step-less" / "source-qi" / "step-000004").mkdir(parents=True)  # no training/: not a checkpoint
    assert set(run_grid(specs, tmp_path, ["train.max_steps=8"]).values()) == {"ok"}
    assert [json.loads((tmp_path / s.name / "experiment.json").read_text())["resumed"] for s in specs] == \
        [False, False, True, True, True, False]
    cost = write_report(tmp_path).read_text().split("## Cost", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line.split("|")[4].strip() for line in cost.splitlines() if "| ok |" in line}
    assert rows["`again`"].endswith(" (resumed: last attempt only)") and "resumed" not in rows["`fresh`"]
