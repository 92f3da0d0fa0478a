"""DeepSpeed ZeRO through accelerate, on CPU in one process: trains, checkpoints only trainable state, resumes, and
trains the same weights as a run without DeepSpeed.

ZeRO-2 runs in the main suite (about a minute: DeepSpeed on CPU is slow per step and builds a comm op once), and
ZeRO-3 and the plain path against it; the ZeRO-3 resume is behind the slow marker.
"""

import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mtl import stages
from mtl.config import load_config
from tests.conftest import tiny_overrides

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "deepspeed"


@pytest.mark.parametrize("stage", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_zero_run_checkpoints_and_resumes_to_the_same_weights(tiny_backbone, tiny_data, tmp_path, stage, monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)  # started as without torchrun
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{
        "log.run_name": f"zero{stage}", "train.deepspeed": str(CONFIGS / f"zero{stage}.json"),
        "train.max_steps": 4, "train.eval_every": 2, "train.save_every": 2, "train.keep_checkpoints": 3}))
    stages.run(cfg)
    assert "WORLD_SIZE" not in os.environ and "MASTER_PORT" not in os.environ, \
        "the launcher environment must not outlive the run (child processes would try to join its group)"
    run_dir = tmp_path / "runs" / f"zero{stage}"
    training_state = run_dir / "step-000002" / "training"
    assert (training_state / "latest").is_file(), "DeepSpeed's own checkpoint layout"
    assert sum(f.stat().st_size for f in training_state.rglob("*") if f.is_file()) < 5_000_000, \
        "frozen backbone weights must not be in the checkpoint"

    straight_weights = final_weights(run_dir)
    for item in ("step-000004", "final", "metrics.json"):
        shutil.rmtree(run_dir / item) if (run_dir / item).is_dir() else (run_dir / item).unlink()
    stages.run(cfg, resume=True)
    resumed_weights = final_weights(run_dir)
    assert straight_weights.keys() == resumed_weights.keys()
    for name, value in straight_weights.items():
        # An Adam update is ~1e-3 here (lr): a lost or repeated step, or other dropout masks, are far outside this.
        torch.testing.assert_close(resumed_weights[name], value, rtol=0, atol=5e-5, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("micro_batch_size", [8, 4])  # 4: two micro-batches per step (accumulation)
def test_zero2_zero3_and_plain_runs_train_the_same_weights(tiny_backbone, tiny_data, tmp_path, monkeypatch,
                                                          micro_batch_size):
    """Round robin: every step leaves the other task's head without a gradient. Plain AdamW leaves that head and
    its optimizer state alone; ZeRO hands it a zero gradient, on which AdamW would move it along its momentum
    (`mtl.optim` steps only the active groups), and ZeRO-3 gave it its previous gradient again
    (`mtl.train.clear_zero3_gradient_buffer`)."""
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    weights = {}
    for stage in ("plain", 2, 3):
        cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{
            "log.run_name": f"zero{stage}", "train.max_steps": 6, "train.eval_every": 0,
            "tasks.sampling": "round_robin", "train.micro_batch_size": micro_batch_size,
            **({} if stage == "plain" else {"train.deepspeed": str(CONFIGS / f"zero{stage}.json")})}))
        stages.run(cfg)
        weights[stage] = final_weights(tmp_path / "runs" / f"zero{stage}")
    for stage in (2, 3):
        assert weights[stage].keys() == weights["plain"].keys()
        for name, value in weights["plain"].items():
            torch.testing.assert_close(weights[stage][name], value, rtol=0, atol=5e-5,
                                       msg=lambda m: f"ZeRO-{stage} {name}: {m}")


def final_weights(run_dir: Path) -> dict:
    final = run_dir / "final"
    return {**load_file(str(final / "adapter" / "adapter_model.safetensors")),
            **load_file(str(final / "heads.safetensors"))}
