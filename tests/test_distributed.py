"""Two CPU processes (torchrun, gloo) train the same model as one process: same global batches, same schedule."""

import json
import subprocess
import sys

import pytest

from tests.conftest import child_env, tiny_overrides

# Dropout off: with it on, each process draws its own masks and the runs differ by design.
DETERMINISTIC = {"lora.dropout": 0.0, "model.head_dropout": 0.0, "train.max_steps": 8, "train.eval_every": 0,
                 "train.micro_batch_size": 4, "train.global_batch_size": 8, "log.every": 1}


def launch(command, tmp_path):
    env = child_env(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def losses(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(d["step"], d.get("train/loss/qc", d.get("train/loss/qi"))) for d in lines if "train/lr" in d]


def test_two_processes_match_one(tiny_backbone, tiny_data, tmp_path):
    overrides = tiny_overrides(tiny_backbone, tiny_data, tmp_path, **DETERMINISTIC)
    launch([sys.executable, "-m", "mtl", "-q", "train", *overrides, "log.run_name=one"], tmp_path)
    launch([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mtl", "-q",
            "train", *overrides, "log.run_name=two"], tmp_path)
    one, two = (json.loads((tmp_path / "runs" / n / "metrics.json").read_text()) for n in ("one", "two"))
    assert one["processes"] == 1 and two["processes"] == 2
    assert [s for s, _ in losses(tmp_path / "runs" / "one")] == [s for s, _ in losses(tmp_path / "runs" / "two")]
    for (_, a), (_, b) in zip(losses(tmp_path / "runs" / "one"), losses(tmp_path / "runs" / "two")):
        assert a == pytest.approx(b, rel=1e-3, abs=1e-4)
    for key, value in one["final"]["headline"].items():
        assert two["final"]["headline"][key] == pytest.approx(value, abs=0.02), key
