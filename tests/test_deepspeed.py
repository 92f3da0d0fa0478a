"""DeepSpeed ZeRO through accelerate, on CPU in one process: trains, checkpoints only trainable state, resumes.

ZeRO-2 runs in the main suite (about a minute: DeepSpeed on CPU is slow per step and builds a comm op once);
ZeRO-3 is behind the slow marker.
"""

import os
import shutil
from pathlib import Path

import pytest

from mtl import train as train_module
from mtl.config import load_config
from tests.conftest import tiny_overrides

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "deepspeed"


@pytest.mark.parametrize("stage", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_zero_run_checkpoints_and_resumes_to_the_same_metrics(tiny_backbone, tiny_data, tmp_path, stage, monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)  # started as without torchrun
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{
        "log.run_name": f"zero{stage}", "train.deepspeed": str(CONFIGS / f"zero{stage}.json"),
        "train.max_steps": 4, "train.eval_every": 2, "train.save_every": 2, "train.keep_checkpoints": 3}))
    straight = train_module.run(cfg)
    assert "WORLD_SIZE" not in os.environ and "MASTER_PORT" not in os.environ, \
        "the launcher environment must not outlive the run (child processes would try to join its group)"
    run_dir = tmp_path / "runs" / f"zero{stage}"
    training_state = run_dir / "step-000002" / "training"
    assert (training_state / "latest").is_file(), "DeepSpeed's own checkpoint layout"
    assert sum(f.stat().st_size for f in training_state.rglob("*") if f.is_file()) < 5_000_000, \
        "frozen backbone weights must not be in the checkpoint"

    for item in ("step-000004", "final", "metrics.json"):
        shutil.rmtree(run_dir / item) if (run_dir / item).is_dir() else (run_dir / item).unlink()
    resumed = train_module.run(cfg, resume=True)
    assert resumed["final"]["headline"] == pytest.approx(straight["final"]["headline"], abs=1e-6)
