"""End-to-end runs of the real training entry point on the tiny backbone (a few seconds each)."""

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from mtl import stages
from mtl import model as model_module
from mtl import train as train_module
from mtl.errors import Interrupted
from mtl.config import load_config
from mtl.errors import ConfigError, DataError, MtlError
from mtl.overlap import feature_dim
from tests.conftest import make_records, tiny_overrides, write_jsonl


def run(tiny_backbone, tiny_data, tmp_path, name, **extra):
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{"log.run_name": name, **extra}))
    return cfg, stages.run(cfg)


def scalar_tags(run_dir):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_joint_run_writes_models_metrics_and_tensorboard(tiny_backbone, tiny_data, tmp_path):
    cfg, summary = run(tiny_backbone, tiny_data, tmp_path, "joint")
    run_dir = tmp_path / "runs" / "joint"
    for item in ("config.yaml", "metrics.json", "metrics.jsonl", "best/heads.safetensors", "final/model.json",
                 "final/adapter/adapter_model.safetensors", "final/taxonomy.json", "step-000006/training"):
        assert (run_dir / item).exists(), item
    assert load_config(run_dir / "config.yaml") == cfg
    tags = scalar_tags(run_dir)
    assert {"train/loss/qc", "train/loss/qi", "train/lr", "perf/tokens_per_s", "eval/f1/qc", "eval/f1/qi",
            "eval/f1/avg", "eval/f1_by_language/qc/es", "eval/f1_by_language/qi/ja", "eval/auc/qc", "eval/ap/qi",
            "eval/auc_by_language/qc/es"} <= tags
    assert set(summary["best"]["headline"]) >= {"f1/qc", "f1/qi", "f1/avg", "f1_tuned/qc", "auc/qc", "ap/qi"}
    assert summary["steps"] == 6 and summary["tasks"] == ["qc", "qi"]
    # the held-out test split, scored once by best/ at the thresholds tuned on validation
    test = summary["test"]
    assert set(test["headline"]) >= {"test_f1/qc", "test_f1_thr/qi", "test_auc/qc", "test_f1/avg"}
    thresholds = json.loads((run_dir / "best" / "model.json").read_text())["thresholds"]
    for task in ("qc", "qi"):
        assert test["reports"][task]["at_threshold"]["threshold"] == pytest.approx(thresholds[task])
        assert 0 < test["reports"][task]["n"] < 40
    assert json.loads((run_dir / "metrics.json").read_text())["best_step"] in (3, 6)


def test_best_and_final_carry_a_model_card_naming_data_hashes_and_scores(tiny_backbone, tiny_data, tmp_path):
    from mtl.cli import main

    assert main(["train", *tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{"log.run_name": "card"})]) == 0
    run_dir = tmp_path / "runs" / "card"
    steps = {"best": json.loads((run_dir / "metrics.json").read_text())["best_step"], "final": 6}
    for folder in ("best", "final"):
        card = (run_dir / folder / "README.md").read_text()
        for key in ("qc_train", "qi_dev"):
            digest = hashlib.sha256(tiny_data[key].read_bytes()).hexdigest()
            assert f"| `data.{key}` | `{tiny_data[key]}` | `{digest}` |" in card
        assert "[config.yaml](config.yaml)" in card and "`mtl train model.backbone=" in card
        reports = json.loads((run_dir / folder / "model.json").read_text())["metrics"]
        assert f"Written by `mtl train` at step {steps[folder]} of 6" in card
        for task, r in reports.items():
            assert f"| {task.upper()} | {r['n']} | {r['f1']:.4f} |" in card
            assert f"| {r['auc']:.4f} |" in card and f"| {r['tuned']['threshold']:.3f} |" in card
        assert "| language | QC F1 | QI F1 | QC AUC | QI AUC |" in card
    assert not (run_dir / "step-000006" / "README.md").exists()


def test_training_changes_adapter_and_heads_but_not_the_backbone(tiny_backbone, tiny_data, tmp_path):
    run(tiny_backbone, tiny_data, tmp_path, "weights")
    final = tmp_path / "runs" / "weights" / "final"
    adapter = load_file(str(final / "adapter" / "adapter_model.safetensors"))
    assert all("lora_" in k for k in adapter)
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k), "lora_B starts at zero and must move"
    heads = load_file(str(final / "heads.safetensors"))
    assert set(heads) == {f"{t}_{m}.{w}" for t in ("qc", "qi") for m in ("head", "norm") for w in ("weight", "bias")}
    model_files = {p.name for p in final.rglob("*.safetensors")}
    assert model_files == {"adapter_model.safetensors", "heads.safetensors"}, "no backbone copy in a model folder"


def test_single_task_run_trains_and_evaluates_one_task(tiny_backbone, tiny_data, tmp_path):
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "single", **{"train.mode": "single", "train.task": "qi"})
    assert summary["tasks"] == ["qi"]
    assert set(summary["best"]["reports"]) == {"qi"}
    assert "eval/f1/qc" not in scalar_tags(tmp_path / "runs" / "single")


def test_probed_heads_start_the_run_from_a_fitted_probe(tiny_backbone, tiny_data, tmp_path, caplog, monkeypatch):
    started = {}
    original = model_module.MultiTaskClassifier.probe_heads

    def probe_and_keep(self, *args, **kwargs):
        fit = original(self, *args, **kwargs)
        started.update({t: self.head(t).weight.detach().clone() for t in fit})
        return fit

    monkeypatch.setattr(model_module.MultiTaskClassifier, "probe_heads", probe_and_keep)
    with caplog.at_level("INFO", logger="mtl.train"):
        _, summary = run(tiny_backbone, tiny_data, tmp_path, "probe", **{"model.head_init": "probe",
                                                                         "model.probe_pairs": 64})
    assert set(started) == {"qc", "qi"} and all(w.abs().sum() > 0 for w in started.values())
    assert "heads start as linear probes: cross-validated ROC-AUC qc " in caplog.text
    assert summary["steps"] == 6


def test_class_weights_give_each_class_half_of_the_pairs_total_weight():
    import numpy as np
    import pandas as pd

    from mtl.data.tasks import TaskData

    data = TaskData("qc", pd.DataFrame({"id": range(4), "label": [1, 1, 1, 0], "language": "en"}), [[2, 5, 1]] * 4)
    negative, positive = data.class_weights
    assert (negative, positive) == pytest.approx((2.0, 2 / 3))
    weights = np.where(data.labels == 1, positive, negative)
    assert weights.mean() == pytest.approx(1.0) and weights[data.labels == 1].sum() == pytest.approx(2.0)


@pytest.mark.parametrize("head_init", ["prior", "probe"])
def test_balanced_class_weights_weigh_each_class_half_of_the_loss_from_even_odds(tiny_backbone, tiny_data, tmp_path,
                                                                                  monkeypatch, head_init):
    """`train.class_weight=balanced`: every loss weights each pair by its class's weight, computed from the run's
    training pairs, and the heads start at the balanced loss's fit: a prior head at even odds, not at the positive
    rate, and a probe fitted with the same class weights."""
    from mtl.data.tasks import TaskData

    started, seen, rates = {}, [], set()
    original_init = model_module.MultiTaskClassifier.init_heads
    original_probe = model_module.MultiTaskClassifier.probe_heads
    original_loss = train_module.F.binary_cross_entropy_with_logits
    original_weights = TaskData.class_weights.func

    def init_and_keep(self, start):
        started.update(start)
        return original_init(self, start)

    def probe_and_keep(self, *args, **kwargs):
        started["probe balanced"] = kwargs.get("balanced")
        return original_probe(self, *args, **kwargs)

    def loss_and_keep(logits, labels, weight=None, **kwargs):
        seen.append((labels.detach().clone(), None if weight is None else weight.detach().clone()))
        return original_loss(logits, labels, weight=weight, **kwargs)

    def weights_and_keep(self):
        rates.add((len(self), float(self.labels.mean())))
        return original_weights(self)

    monkeypatch.setattr(model_module.MultiTaskClassifier, "init_heads", init_and_keep)
    monkeypatch.setattr(model_module.MultiTaskClassifier, "probe_heads", probe_and_keep)
    monkeypatch.setattr(train_module.F, "binary_cross_entropy_with_logits", loss_and_keep)
    monkeypatch.setattr(TaskData, "class_weights", property(weights_and_keep))
    rows = [r for i, r in enumerate(make_records("qc", 200, seed=2)) if r["label"] or i % 3 == 0]  # ~75% positive
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "balanced", **{
        "train.mode": "single", "train.task": "qc", "train.class_weight": "balanced", "model.head_init": head_init,
        "model.probe_pairs": 64, "data.qc_train": write_jsonl(tmp_path / "unbalanced.txt", rows)})
    assert summary["steps"] == 6
    assert started == ({"qc": 0.5} if head_init == "prior" else {"probe balanced": True})
    # the weights were computed on the training pairs (not the file, the dev or the test split)
    assert len(rates) == 1
    (pairs, rate), = rates
    assert pairs == summary["train_sizes"]["qc"] and 0.6 < rate < 0.9
    weights = {}
    for batch_labels, weight in seen:
        for y, w in zip(batch_labels.tolist(), weight.tolist()):
            weights.setdefault(y, set()).add(round(w, 6))
    assert weights == {0.0: {round(0.5 / (1 - rate), 6)}, 1.0: {round(0.5 / rate, 6)}}


@pytest.mark.parametrize("head_init", ["prior", "probe"])
def test_balanced_class_weights_refuse_a_task_of_one_class_before_any_step(tiny_backbone, tiny_data, tmp_path,
                                                                           head_init):
    rows = [dict(r, label=1) for r in make_records("qc", 40, seed=3)]
    with pytest.raises(ConfigError, match="all of one class"):
        run(tiny_backbone, tiny_data, tmp_path, "one-class", **{
            "train.mode": "single", "train.task": "qc", "train.class_weight": "balanced", "model.head_init": head_init,
            "data.qc_train": write_jsonl(tmp_path / "one.txt", rows)})
    assert not list((tmp_path / "runs" / "one-class").glob("step-*"))


def test_qc_reports_say_how_much_of_each_category_path_training_saw(tiny_backbone, tiny_data, tmp_path):
    dev = make_records("qc", 40, seed=5)
    for i, row in enumerate(dev[:16]):  # a new leaf under a known level-2 group, and a new top-level branch
        row["category_path"] = "electronics,phones,feature phones" if i < 8 else "toys,dolls"
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "seen", **{"train.mode": "single", "train.task": "qc",
                                                                   "data.qc_dev": write_jsonl(tmp_path / "dev.txt",
                                                                                              dev)})
    by_seen = summary["best"]["reports"]["qc"]["by_seen"]
    assert {k: v["n"] for k, v in by_seen.items()} == {"seen path": 24, "seen group": 8, "unseen group": 8}
    branches = summary["best"]["reports"]["qc"]["by_branch"]
    assert branches["toys"]["n"] == 8 and sum(b["n"] for b in branches.values()) == 40
    assert sum(b["n"] for b in summary["test"]["reports"]["qc"]["by_seen"].values()) == \
        summary["test"]["reports"]["qc"]["n"]  # the test split is carved from training: its paths are all known


@pytest.mark.parametrize("features", ["none", "priors", "nodes", "both"])
def test_each_taxonomy_feature_mode_trains_and_predicts_as_it_trained(tiny_backbone, tiny_data, tmp_path, features):
    from mtl.evaluate import predict_probs
    from mtl.model import load_trained
    from mtl.predict import predict_file

    _, summary = run(tiny_backbone, tiny_data, tmp_path, features, **{"train.mode": "single", "train.task": "qc",
                                                                     "taxonomy.features": features})
    best = tmp_path / "runs" / features / "best"
    info = json.loads((best / "model.json").read_text())
    assert (info["priors"] is not None) == (features in ("priors", "both"))
    assert (info["nodes"] is not None) == (features in ("nodes", "both"))
    assert info["qc_feature_dim"] == {"none": 0, "priors": 7, "nodes": 3, "both": 10}[features]
    heads = load_file(str(best / "heads.safetensors"))
    assert ("qc_nodes.weight" in heads) == (features in ("nodes", "both"))
    if "qc_nodes.weight" in heads:  # the embeddings trained, and id 0 (padding) stayed zero
        assert heads["qc_nodes.weight"][1:].abs().sum() > 0 and not heads["qc_nodes.weight"][0].any()
    # mtl predict rebuilds the features from model.json and scores the dev file as the run's validation did
    out = tmp_path / f"pred-{features}.txt"
    predict_file(best, tiny_data["qc_dev"], out, with_scores=True, threshold=0.5)
    scores = [json.loads(line)["score"] for line in out.read_text().splitlines()]
    model, pairs, saved, cfg = load_trained(best)
    from mtl.data.tasks import load_split, make_task_data
    from mtl.taxonomy import PrefixPriors

    split = load_split(cfg, "qc")
    priors = PrefixPriors.from_dict(saved.priors) if saved.priors else None
    data = make_task_data(split.val, "qc", cfg, pairs, priors, nodes=saved.node_index)
    expected = predict_probs(model, data, pairs.pad_id, 32)
    assert scores == pytest.approx([round(float(p), 6) for p in expected], abs=2e-6)


def test_a_saved_config_with_a_boolean_taxonomy_flag_still_loads(tmp_path):
    for old, mode in (("true", "priors"), ("false", "none")):
        path = tmp_path / f"{old}.yaml"
        path.write_text(f"taxonomy:\n  features: {old}\n")
        assert load_config(path).taxonomy.features == mode


@pytest.mark.parametrize("qi_features", ["none", "overlap"])
def test_tapt_stage_two_starts_from_stage_one(tiny_backbone, tiny_data, tmp_path, monkeypatch, qi_features):
    """The QC head starts from the QI head's weights on the pooled vector; its taxonomy-feature columns at zero,
    whatever feature columns the QI head had (overlap weights mean nothing to a prior column)."""
    built = []
    original = model_module.transfer_head

    def spy(model, folder, source, target):
        original(model, folder, source, target)
        built.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})

    monkeypatch.setattr(model_module, "transfer_head", spy)
    run(tiny_backbone, tiny_data, tmp_path, "tapt", **{"train.mode": "tapt", "train.task": "qc",
                                                       "model.qi_features": qi_features})
    stage1 = tmp_path / "runs" / "tapt" / "source-qi" / "final"
    assert (tmp_path / "runs" / "tapt" / "target-qc" / "final").is_dir()
    (start,) = built
    adapter = load_file(str(stage1 / "adapter" / "adapter_model.safetensors"))
    for key, saved in adapter.items():  # PEFT files drop the adapter name that the live module carries
        assert torch.equal(start["backbone." + key.replace(".weight", ".default.weight")], saved), key
    heads = load_file(str(stage1 / "heads.safetensors"))
    assert heads["qi_head.weight"].shape[1] == 64 + feature_dim(qi_features)
    assert torch.equal(start["qc_head.weight"][:, :64], heads["qi_head.weight"][:, :64])
    assert (start["qc_head.weight"][:, 64:] == 0).all(), "taxonomy-feature weights have no QI counterpart"
    assert torch.equal(start["qc_head.bias"], heads["qi_head.bias"])


def test_tapt_from_qc_with_taxonomy_features_into_qi(tiny_backbone, tiny_data, tmp_path):
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "tapt-qi", **{"train.mode": "tapt", "train.task": "qi"})
    source = json.loads((tmp_path / "runs" / "tapt-qi" / "source-qc" / "final" / "model.json").read_text())
    assert source["qc_feature_dim"] > 0 and summary["tasks"] == ["qi"]
    target_heads = load_file(str(tmp_path / "runs" / "tapt-qi" / "target-qi" / "final" / "heads.safetensors"))
    assert target_heads["qi_head.weight"].shape == (1, 64)


def test_cross_validation_fold_trains_on_the_other_folds(tiny_backbone, tiny_data, tmp_path):
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "fold", **{"cv.fold": "1", "cv.n_folds": 4})
    assert 20 < summary["best"]["reports"]["qi"]["n"] < 60
    # metrics.json keeps what the split did: per fold its rows, groups and positive rate, and the largest group
    for task, split in summary["split"].items():
        assert sorted(split["folds"]) == ["0", "1", "2", "3"]
        rows = sum(f["rows"] for f in split["folds"].values())
        assert rows == summary["train_sizes"][task] + split["folds"]["1"]["rows"]
        assert split["unit"] == {"qc": "depth-2 category subtree", "qi": "query"}[task]
        assert all(f["overlap"] == 0.0 for f in split["folds"].values())


def test_a_new_run_refuses_a_folder_that_holds_a_run(tiny_backbone, tiny_data, tmp_path):
    run(tiny_backbone, tiny_data, tmp_path, "twice")
    with pytest.raises(ConfigError, match="already holds a run"):
        run(tiny_backbone, tiny_data, tmp_path, "twice")


def test_a_run_that_failed_while_loading_its_data_can_be_started_again(tiny_backbone, tiny_data, tmp_path):
    bad = tmp_path / "bad_QI.txt"
    bad.write_text('{"id": 1, "language": "en"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="bad_QI.txt:1"):
        run(tiny_backbone, tiny_data, tmp_path, "retry", **{"data.qi_train": bad})
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "retry")
    assert summary["steps"] == 6


def test_a_missing_data_file_is_refused_before_the_run_folder_is_made(tiny_backbone, tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="data.qc_dev"):
        run(tiny_backbone, tiny_data, tmp_path, "typo", **{"data.qc_dev": tmp_path / "nowhere.txt"})
    assert not (tmp_path / "runs" / "typo").exists()


@pytest.mark.parametrize("batching", ["shared", "bucket"])
def test_resumed_run_ends_with_the_metrics_of_an_uninterrupted_run(tiny_backbone, tiny_data, tmp_path, monkeypatch,
                                                                   batching):
    _, straight = run(tiny_backbone, tiny_data, tmp_path, "straight", **{"train.batching": batching})
    assert straight["batching"] == batching

    calls = {"n": 0}

    def stop_after_three(self, accelerator):
        calls["n"] += 1
        return calls["n"] == 3

    monkeypatch.setattr(train_module.StopSignal, "requested", stop_after_three)
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path,
                                           **{"log.run_name": "stopped", "train.batching": batching}))
    with pytest.raises(Interrupted, match="stopped at step 3"):
        stages.run(cfg)
    assert (tmp_path / "runs" / "stopped" / "step-000003" / "training").is_dir()
    resumed = stages.run(cfg, resume=True)
    assert resumed["steps"] == 6
    assert resumed["best"]["headline"] == pytest.approx(straight["best"]["headline"], abs=1e-6)
    assert resumed["final"]["headline"] == pytest.approx(straight["final"]["headline"], abs=1e-6)


def test_non_finite_loss_stops_before_touching_the_weights(tiny_backbone, tiny_data, tmp_path, monkeypatch):
    real = train_module.F.binary_cross_entropy_with_logits
    calls = {"n": 0}

    def nan_on_fourth(logits, labels, **kwargs):
        calls["n"] += 1
        loss = real(logits, labels, **kwargs)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(train_module.F, "binary_cross_entropy_with_logits", nan_on_fourth)
    with pytest.raises(train_module.NonFiniteLoss, match=r"step 4, task (qc|qi), record ids \["):
        run(tiny_backbone, tiny_data, tmp_path, "nan", **{"train.save_every": 3})
    heads = load_file(str(tmp_path / "runs" / "nan" / "step-000003" / "heads.safetensors"))
    assert all(torch.isfinite(v).all() for v in heads.values())


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "ddp"])
def test_non_finite_loss_can_be_skipped_and_counted(tiny_backbone, tiny_data, tmp_path, monkeypatch, request,
                                                    wrapped):
    if wrapped:
        request.getfixturevalue("one_process_torchrun")
    real = train_module.F.binary_cross_entropy_with_logits
    calls = {"n": 0}

    def nan_on_second(logits, labels, **kwargs):
        calls["n"] += 1
        return real(logits, labels, **kwargs) * (float("nan") if calls["n"] == 2 else 1.0)

    monkeypatch.setattr(train_module.F, "binary_cross_entropy_with_logits", nan_on_second)
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "skip", **{"train.nonfinite": "skip"})
    assert summary["skipped_batches"] == 1 and summary["skipped_steps"] == 1 and summary["steps"] == 6
    assert summary["distributed"] == ("MULTI_CPU" if wrapped else "NO")
    heads = load_file(str(tmp_path / "runs" / "skip" / "final" / "heads.safetensors"))
    assert all(torch.isfinite(v).all() for v in heads.values())


@pytest.mark.parametrize("engine", ["plain", "zero2"])
def test_a_skipped_step_moves_no_weight_and_no_optimizer_state(tiny_backbone, tiny_data, tmp_path, monkeypatch,
                                                                engine):
    """A zeroed gradient would still move every weight along Adam's momentum and advance its step count: a skipped
    step must skip the optimizer step itself (under DeepSpeed too, whose engine steps inside backward)."""
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    real = train_module.F.binary_cross_entropy_with_logits
    calls = {"n": 0}

    def nan_on_third(logits, labels, **kwargs):
        calls["n"] += 1
        return real(logits, labels, **kwargs) * (float("nan") if calls["n"] == 3 else 1.0)

    snapshots = []
    original = train_module.train_step

    def recording_step(model, data, micro_batches, optimizer, *args, **kwargs):
        def state():
            weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            steps = [float(s["step"]) for s in optimizer.optimizer.state.values() if "step" in s] \
                if engine == "plain" else []
            return weights, steps
        before = state()
        out = original(model, data, micro_batches, optimizer, *args, **kwargs)
        snapshots.append((before, state()))
        return out

    monkeypatch.setattr(train_module.F, "binary_cross_entropy_with_logits", nan_on_third)
    monkeypatch.setattr(train_module, "train_step", recording_step)
    extra = {"train.nonfinite": "skip", "tasks.sampling": "round_robin", "train.eval_every": 0}
    if engine == "zero2":
        extra["train.deepspeed"] = str(Path(__file__).resolve().parents[1] / "configs" / "deepspeed" / "zero2.json")
    _, summary = run(tiny_backbone, tiny_data, tmp_path, f"skip-{engine}", **extra)
    assert summary["skipped_steps"] == 1
    (before, after), (before_next, after_next) = snapshots[2], snapshots[3]
    for name, value in before[0].items():
        assert torch.equal(after[0][name], value), f"{name} moved on the skipped step"
    assert after[1] == before[1], "the optimizer state advanced on the skipped step"
    assert any(not torch.equal(after_next[0][n], v) for n, v in before_next[0].items()), "the next step trains"


def test_an_encoder_backbone_trains_with_first_token_pooling(tiny_data, tmp_path):
    from tests.conftest import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "bert")
    _, summary = run(encoder, tiny_data, tmp_path, "encoder", **{"lora.target_modules": "query,key,value,dense"})
    info = json.loads((tmp_path / "runs" / "encoder" / "final" / "model.json").read_text())
    assert (info["arch"], info["pooling"], info["hidden_size"]) == ("encoder", "first", 32)
    assert summary["batching"] == "bucket"  # auto: prefix-tree rows need a decoder
    assert summary["computed_tokens"] == summary["tokens"] < summary["token_slots"]  # padded: padding is not computed
    assert summary["attention_pairs"]["full"] == summary["attention_pairs"]["sliding"] > summary["tokens"]  # L² each
    assert summary["steps"] == 6 and 0 <= summary["final"]["headline"]["f1/avg"] <= 1


def test_shared_batching_trains_on_prefix_tree_rows_through_ddp(tiny_backbone, tiny_data, tmp_path, monkeypatch,
                                                                 one_process_torchrun):
    """A one-process torchrun: the packed forward must go through DDP's forward."""
    packed = []
    real_pack = train_module.pack
    monkeypatch.setattr(train_module, "pack", lambda *a, **k: packed.append(real_pack(*a, **k)) or packed[-1])
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "shared")  # auto: shared on a rotary decoder
    assert summary["distributed"] == "MULTI_CPU" and summary["steps"] == 6 and summary["batching"] == "shared"
    assert len(packed) == 6 and summary["tokens"] == sum(p["tokens"] for p in packed)
    assert summary["computed_tokens"] == sum(p["computed"] for p in packed) < summary["tokens"]  # queries repeat
    assert summary["token_slots"] == sum(p["input_ids"].numel() for p in packed)
    assert summary["pairs"] == 6 * 8 and len(summary["schedule"]) == 6
    adapter = load_file(str(tmp_path / "runs" / "shared" / "final" / "adapter" / "adapter_model.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)


def test_packed_batching_trains_on_packed_rows(tiny_backbone, tiny_data, tmp_path, monkeypatch):
    """metrics.json counts what packed rows held: every token computed once, the rows' slots, and each pair's own
    causal query-key pairs (what padded batches of the same pairs score)."""
    from mtl.measure import attention_pairs

    packed = []
    real_pack = train_module.pack
    monkeypatch.setattr(train_module, "pack", lambda *a, **k: packed.append(real_pack(*a, **k)) or packed[-1])
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "packed", **{"train.batching": "packed"})
    assert summary["batching"] == "packed" and summary["steps"] == 6 and len(packed) == 6
    assert summary["computed_tokens"] == summary["tokens"] == sum(p["tokens"] for p in packed)
    assert summary["token_slots"] == sum(p["input_ids"].numel() for p in packed)
    lengths = [int(n) for p in packed for r, n in enumerate(p["used"]) for n in
               torch.unique_consecutive(p["subtree_end"][r, :n], return_counts=True)[1]]
    assert len(lengths) == summary["pairs"] == 6 * 8 and sum(lengths) == summary["tokens"]
    full, sliding = attention_pairs(lengths, True, 32)
    assert summary["attention_pairs"] == {"full": full, "sliding": sliding}
    adapter = load_file(str(tmp_path / "runs" / "packed" / "final" / "adapter" / "adapter_model.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)


@pytest.mark.parametrize("batching", ["shared", "packed"])
def test_tree_batchings_refuse_an_encoder(tiny_data, tmp_path, batching):
    from tests.conftest import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "bert")
    with pytest.raises(ConfigError, match=f"train.batching={batching} needs a decoder pooling its last token or its "
                                          "mean"):
        run(encoder, tiny_data, tmp_path, "encoder", **{"lora.target_modules": "query,key,value,dense",
                                                         "train.batching": batching})


def test_gradient_checkpointing_still_trains_the_adapter(tiny_backbone, tiny_data, tmp_path):
    run(tiny_backbone, tiny_data, tmp_path, "ckpt", **{"model.gradient_checkpointing": True})
    adapter = load_file(str(tmp_path / "runs" / "ckpt" / "final" / "adapter" / "adapter_model.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)


def test_all_folds_report_mean_and_spread_and_out_of_fold_predictions(tiny_backbone, tiny_data, tmp_path):
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "cv", **{"cv.fold": "all", "cv.n_folds": 2,
                                                                  "data.dev_limit": 16})
    root = tmp_path / "runs" / "cv"
    assert summary["folds"] == 2
    assert {"f1/qc", "f1/qi", "f1/avg", "auc/qc", "test_f1/qc", "test_auc/qi"} <= set(summary["cv"])
    per_fold = [json.loads((root / f"fold-{k}" / "metrics.json").read_text()) for k in (0, 1)]
    mean = sum(s["best"]["headline"]["f1/avg"] for s in per_fold) / 2
    assert summary["cv"]["f1/avg"]["mean"] == pytest.approx(mean)
    # every record left after the test carve is scored once, by the fold model that did not train on it (all of
    # the fold, not the dev_limit sample validated on during training)
    split = train_module.load_splits(load_config(root / "fold-0" / "config.yaml"), ["qi"])["qi"]
    oof = [json.loads(line) for line in (root / "oof_qi.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in oof) == sorted(split.train["id"].tolist() + split.val_all["id"].tolist())
    assert {r["id"] for r in oof if r["fold"] == 0} == set(split.val_all["id"].tolist())
    cv = json.loads((root / "cv.json").read_text())
    for task in ("qc", "qi"):
        folds = cv[task]["per_fold"]
        assert [f["fold"] for f in folds] == [0, 1] and all(f["threshold_from"] == "other folds" for f in folds)
        assert cv[task]["cv_auc_mean"] == pytest.approx(sum(f["auc"] for f in folds) / 2)
        assert 0 <= cv[task]["oof_threshold"] <= 1 and cv[task]["oof_n"] == sum(f["n"] for f in folds)


def test_listed_folds_train_one_model_each(tiny_backbone, tiny_data, tmp_path):
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "some", **{"cv.fold": "2,0", "cv.n_folds": 3,
                                                                    "train.mode": "single", "train.task": "qc"})
    root = tmp_path / "runs" / "some"
    assert summary["folds"] == 2 and sorted(p.name for p in root.glob("fold-*")) == ["fold-0", "fold-2"]
    assert [f["fold"] for f in json.loads((root / "cv.json").read_text())["qc"]["per_fold"]] == [2, 0]


def test_a_zero_loss_weight_leaves_that_task_untrained(tiny_backbone, tiny_data, tmp_path):
    """Weights scale a task's share of the steps: with weight 0 QC gets none, so its head keeps its initial values
    while QI still learns."""
    _, summary = run(tiny_backbone, tiny_data, tmp_path, "weighted", **{"tasks.loss_weight_qc": 0.0})
    run(tiny_backbone, tiny_data, tmp_path, "untrained", **{"train.max_steps": 1, "tasks.sampling": "round_robin",
                                                            "tasks.loss_weight_qc": 0.0})
    weighted = load_file(str(tmp_path / "runs" / "weighted" / "final" / "heads.safetensors"))
    initial = load_file(str(tmp_path / "runs" / "untrained" / "final" / "heads.safetensors"))
    assert torch.equal(weighted["qc_head.weight"], initial["qc_head.weight"])
    assert not torch.equal(weighted["qi_head.weight"], initial["qi_head.weight"])
    assert summary["task_steps"] == {"qi": 6}


@pytest.mark.parametrize("sampling", ["round_robin", "temperature"])
def test_loss_weights_set_each_task_share_of_the_shared_adapter_updates(tiny_backbone, tiny_data, tmp_path,
                                                                        monkeypatch, sampling):
    """A weight must scale its task's share of the updates of the shared adapter under Adam: the steps whose
    gradient reaches the adapter follow the weights (1:3), and every step runs at the scheduler's learning rate
    (a rate scaled per task would be undone by Adam's momentum)."""
    seen = []
    original = train_module.train_step

    def recording_step(model, data, micro_batches, optimizer, *args, **kwargs):
        lora = next(p for n, p in model.named_parameters() if "lora_B" in n)
        before = lora.detach().clone()
        out = original(model, data, micro_batches, optimizer, *args, **kwargs)
        rates = {g["task"]: g["lr"] for g in optimizer.param_groups}
        seen.append((data.task, not torch.equal(before, lora.detach()), rates))
        return out

    monkeypatch.setattr(train_module, "train_step", recording_step)
    steps = 40 if sampling == "temperature" else 8
    _, summary = run(tiny_backbone, tiny_data, tmp_path, f"w-{sampling}", **{
        "tasks.loss_weight_qc": 1.0, "tasks.loss_weight_qi": 3.0, "tasks.sampling": sampling,
        "train.max_steps": steps, "train.eval_every": 0, "train.warmup_ratio": 0.0, "train.lr_schedule": "constant"})
    # heads start at zero: a task's first step sends no gradient to the adapter; once both have had one, every
    # step moves it
    start = max(next(i for i, s in enumerate(seen) if s[0] == task) for task in ("qc", "qi")) + 1
    assert not seen[0][1] and all(changed for _, changed, _ in seen[start:]), seen
    trained = Counter(task for task, _, _ in seen)
    if sampling == "round_robin":
        assert [task for task, _, _ in seen] == ["qi", "qc", "qi", "qi"] * 2
    assert trained["qc"] / steps == pytest.approx(0.25, abs=0.1)
    assert summary["task_steps"] == dict(trained)
    assert all(rates[""] == 1e-3 for _, _, rates in seen), "the adapter's rate does not depend on the task"


def test_an_interrupted_tapt_run_resumes_from_its_own_folder(tiny_backbone, tiny_data, tmp_path, monkeypatch):
    """`--resume` takes the TAPT run's folder (not a stage's): the interrupted stage continues, the next one runs."""
    _, straight = run(tiny_backbone, tiny_data, tmp_path, "tapt-straight", **{"train.mode": "tapt", "train.task": "qc"})
    calls = {"n": 0}

    def stop_after_two(self, accelerator):
        calls["n"] += 1
        return calls["n"] == 2

    monkeypatch.setattr(train_module.StopSignal, "requested", stop_after_two)
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{
        "log.run_name": "tapt-stopped", "train.mode": "tapt", "train.task": "qc"}))
    top = tmp_path / "runs" / "tapt-stopped"
    with pytest.raises(Interrupted, match=f"--resume {top}`"):
        stages.run(cfg)
    assert load_config(top / "config.yaml") == cfg and not (top / "target-qc").exists()
    monkeypatch.undo()
    resumed = stages.run(cfg, resume=True)
    assert (top / "target-qc" / "final").is_dir() and (top / "metrics.json").is_file()
    assert resumed["best"]["headline"] == pytest.approx(straight["best"]["headline"], abs=1e-6)


def test_a_resumed_run_logs_each_step_once(tiny_backbone, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module.StopSignal, "requested", lambda self, accelerator: True)
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{"log.run_name": "relog",
                                                                                   "log.every": 1}))
    with pytest.raises(Interrupted, match="stopped at step 1"):
        stages.run(cfg)
    run_dir = tmp_path / "runs" / "relog"
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as file:  # what a crash after step 1 leaves behind
        file.write(json.dumps({"step": 2, "train/loss/qc": 9.0}) + "\n")
    with SummaryWriter(str(run_dir)) as writer:
        writer.add_scalar("train/lr", 9.0, 2)
    monkeypatch.undo()
    stages.run(cfg, resume=True)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "train/lr" in json.loads(line) or "train/loss/qc" in json.loads(line)]
    assert steps == [1, 2, 3, 4, 5, 6]
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert [e.step for e in events.Scalars("train/lr")] == [1, 2, 3, 4, 5, 6]
    assert 9.0 not in [e.value for e in events.Scalars("train/lr")]


@pytest.mark.parametrize("mode, bad_key", [("mtl", "data.qi_train"), ("tapt", "data.qc_dev")])
def test_bad_data_is_refused_before_the_run_folder_is_made(tiny_backbone, tiny_data, tmp_path, mode, bad_key):
    """Found by reading the records before any folder is made; for TAPT also the target task's (QC), before the
    first stage (QI) trains."""
    bad = tmp_path / "bad.txt"
    bad.write_text('{"id": 1, "language": "en", "label": 0, "label": 1}\n', encoding="utf-8")
    extra = {bad_key: bad, "train.mode": mode, "train.task": "qc" if mode == "tapt" else ""}
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **extra))
    with pytest.raises(DataError, match="bad.txt:1: field 'label': appears twice in one object"):
        stages.run(cfg)
    assert not (tmp_path / "runs").exists()


def test_a_fold_the_training_file_cannot_fill_is_refused_before_the_run_folder_is_made(tiny_backbone, tiny_data,
                                                                                       tmp_path):
    few = tmp_path / "few_QI.txt"
    few.write_text("".join(line + "\n" for line in tiny_data["qi_train"].read_text().splitlines()[:4]))
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{"cv.fold": "all",
                                                                                  "train.mode": "single",
                                                                                  "train.task": "qi",
                                                                                  "data.qi_train": few,
                                                                                  "data.test_fraction": 0}))
    with pytest.raises(MtlError, match="qi ca split into 5 folds: 4 rows in"):
        stages.run(cfg)
    assert not (tmp_path / "runs").exists()


def test_a_file_left_empty_by_cleaning_is_refused_before_the_run_folder_is_made(tiny_backbone, tiny_data, tmp_path):
    blank = tmp_path / "blank_QI.txt"
    blank.write_text("".join(json.dumps({"id": i, "language": "en", "origin_query": "\u200b", "item_title": "t",
                                         "label": i % 2}) + "\n" for i in range(3)), encoding="utf-8")
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{"data.qi_dev": blank}))
    with pytest.raises(DataError, match=r"blank_QI.txt: no usable records: all 3 were dropped \(3 with an empty query\)"):
        stages.run(cfg)
    assert not (tmp_path / "runs").exists()


def test_a_warm_start_from_a_model_reading_pairs_otherwise_is_refused(tiny_backbone, tiny_data, tmp_path):
    qc_last = {"train.max_steps": 2, "train.mode": "single", "train.task": "qc", "model.pooling": "last"}
    run(tiny_backbone, tiny_data, tmp_path, "source", **qc_last)
    saved = tmp_path / "runs" / "source" / "final"
    for key, value, message in (("data.template", "prompt", "field 'data.template': the model was trained on 'plain'"),
                                ("model.pooling", "mean", "field 'pooling': the model's heads read 'last'"),
                                ("taxonomy.render", "leaf_first", "field 'taxonomy.render': the model read")):
        with pytest.raises(ConfigError, match=message):
            run(tiny_backbone, tiny_data, tmp_path, f"warm-{value}",
                **{**qc_last, "data.max_length": 96, "model.init_from": str(saved), key: value})
        assert not (tmp_path / "runs" / f"warm-{value}").exists()
    run(tiny_backbone, tiny_data, tmp_path, "warm-same", **{**qc_last, "model.init_from": str(saved)})
    assert (tmp_path / "runs" / "warm-same" / "final" / "model.json").is_file()
