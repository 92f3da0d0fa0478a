import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gpu_bench
from gpu_bench import PAIRS_FILE, main
from tests.conftest import REPO, child_env

FAST = ["--steps", "2", "--warmup", "1", "--dev-limit", "32", "--seconds-per-phase", "10"]


def read(out: Path, name: str = "dry") -> tuple[dict, str]:
    return json.loads((out / f"{name}.json").read_text()), (out / f"{name}.md").read_text()


def test_dry_run_measures_each_batching_through_the_trainers_step_and_skips_what_mtl_does_not_know(tmp_path):
    out = tmp_path / "results"
    argv = ["run", "--dry-run", "--batchings", "reference,bucket,shared,nosuch", "--inference", "mixed,reference",
            "--output-dir", str(out), "--name", "dry", *FAST]
    assert main(argv) == 0
    r, md = read(out)
    assert r["command"] == "python benchmarks/gpu_bench.py " + " ".join(argv) and r["dry_run"] is True
    assert r["device"] == "cpu" and r["gpu"] is None and r["dtype"] == "float32" and r["machine"]["torch"]
    peak = r["matmul_peak"]
    assert peak["flops_per_s"] == max(peak["start"]["flops_per_s"], peak["end"]["flops_per_s"]) > 0
    assert r["pairs_file"]["path"] == "benchmarks/gpu_pairs.jsonl.gz"
    assert r["pairs_file"]["backbone"] == "embedded:gemma3-270m"

    tiny = r["shapes"]["tiny"]
    assert tiny["parameters"]["trainable"] < tiny["parameters"]["total"]
    assert tiny["flop_sizes"]["lora_params"] > 0 and tiny["planner_estimate_gib"]["total"] > 0
    train = tiny["training"]
    for name in ("reference", "bucket", "shared"):
        p = train[name]
        assert p["steps"] == 2 and p["examples"] == 2 * tiny["global_batch_size"]
        assert p["tokens_per_s"] > 0 and p["examples_per_s"] > 0 and p["peak_memory_bytes"] > 0
        assert 0 <= p["padding_fraction"] < 1 and p["model_flops"] > 0
        assert p["mfu"] == pytest.approx(p["flops_per_s"] / peak["flops_per_s"])
    assert (train["reference"]["batching"], train["reference"]["token_ids"]) == ("random", "reference")
    assert (train["bucket"]["batching"], train["bucket"]["token_ids"]) == ("bucket", "ours")
    assert train["reference"]["padding_fraction"] > train["bucket"]["padding_fraction"]
    assert train["shared"]["computed_tokens"] < train["shared"]["tokens"]  # a query's prefix computed once
    assert "nosuch" in train["nosuch"]["skipped"]
    serve = tiny["inference"]
    assert serve["mixed"]["pairs"] == serve["reference"]["pairs"] == 64 and serve["mixed"]["pairs_per_s"] > 0
    assert serve["reference"]["token_ids"] == "reference"

    # Without the 12B shape the targets are checked on the last shape, and the table says whose they are.
    assert r["targets_shape"] == "tiny" and set(r["targets"]) == set(gpu_bench.TARGETS)
    mfu = r["targets"]["train_mfu"]
    assert mfu["best"] in ("bucket", "shared") and mfu["value"] == train[mfu["best"]]["mfu"]
    assert "## Targets (tiny shape: set for 12b)" in md and "| nosuch | skipped: " in md
    assert "| training | steps | pairs/s |" in md and "| mixed | 64 |" in md


def test_results_are_on_disk_after_each_phase_so_a_run_cut_off_keeps_them(tmp_path, monkeypatch):
    def cut_off(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gpu_bench, "serve_phase", cut_off)
    out = tmp_path / "results"
    with pytest.raises(KeyboardInterrupt):
        main(["run", "--dry-run", "--batchings", "bucket", "--inference", "mixed", "--output-dir", str(out),
              "--name", "dry", *FAST])
    r, md = read(out)
    assert r["shapes"]["tiny"]["training"]["bucket"]["tokens_per_s"] > 0 and r["shapes"]["tiny"]["inference"] == {}
    assert r["matmul_peak"]["end"] is None and "end (not measured)" in md
    assert "| bucket | 2 |" in md


def test_no_phase_starts_past_the_budget(tmp_path):
    out = tmp_path / "results"
    assert main(["run", "--dry-run", "--budget", "0", "--output-dir", str(out), "--name", "dry"]) == 0
    r, md = read(out)
    assert r["skipped"] == ["shape tiny: 0 s left", "matmul peak at the end: no time left"]
    assert all(t["best"] is None for t in r["targets"].values()) and "not measured" in md


def test_the_pairs_file_holds_ours_and_the_references_token_ids():
    with gzip.open(PAIRS_FILE, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        rows = [json.loads(line) for line in f]
    assert PAIRS_FILE.stat().st_size < 2 * 2**20
    assert sum(header["pairs"].values()) == len(rows) and header["qc_feature_dim"] > 0
    bos = 2
    for row in rows:
        assert row["ids"][0] == bos and row["ids"].count(bos) == 1  # <bos> query \n target <eos>
        assert row["ref_ids"][0] == bos and row["ref_ids"].count(bos) == 2  # the tokenizer's <bos>A<bos>B
        assert max(row["ids"]) < header["vocab_size"]
        assert ("features" in row) == (row["task"] == "qc")
        assert row["task"] != "qc" or len(row["features"]) == header["qc_feature_dim"]


@pytest.mark.parametrize("shape", ["1b", "12b"])
def test_the_shapes_build_the_released_gemma3_text_stacks(shape):
    """On the meta device (no memory): the parameter counts configs/shapes/README.md gives for each."""
    import torch
    from transformers import AutoModel

    config = json.loads((REPO / gpu_bench.SHAPES[shape]["config"]).read_text())
    with torch.device("meta"):
        model = AutoModel.from_config(gpu_bench.backbone_config(config, pad_id=0), dtype=torch.bfloat16)
    assert type(model).__name__ == "Gemma3TextModel"
    assert sum(p.numel() for p in model.parameters()) == {"1b": 999_885_952, "12b": 11_766_034_176}[shape]
    assert model.config.layer_types == config["layer_types"] and model.config.sliding_window == config["sliding_window"]


def test_runs_without_datasets_gguf_deepspeed_or_pydantic(tmp_path):
    """The GPU machine has none of them: hidden here, the dry run must not need them."""
    script = textwrap.dedent("""
        import importlib.machinery, runpy, sys
        HIDDEN = {"datasets", "gguf", "deepspeed", "pydantic"}
        class Hide(importlib.machinery.PathFinder):
            @classmethod
            def find_spec(cls, name, path=None, target=None):
                return None if name.split(".")[0] in HIDDEN else super().find_spec(name, path, target)
        sys.meta_path = [Hide if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
        sys.argv = ["benchmarks/gpu_bench.py", *sys.argv[1:]]
        try:
            runpy.run_path("benchmarks/gpu_bench.py", run_name="__main__")
        finally:
            print("HIDDEN LOADED:", sorted(m for m in sys.modules if m.split(".")[0] in HIDDEN))
    """)
    out = tmp_path / "results"
    result = subprocess.run([sys.executable, "-c", script, "run", "--dry-run", "--batchings", "bucket", "--inference",
                             "mixed", "--output-dir", str(out), "--name", "dry", "-q", *FAST],
                            cwd=REPO, env=child_env(PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "benchmarks")])),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HIDDEN LOADED: []" in result.stdout
    assert read(out)[0]["shapes"]["tiny"]["training"]["bucket"]["steps"] == 2


@pytest.mark.slow
def test_gpu_sh_dry_run_end_to_end():
    result = subprocess.run(["bash", "benchmarks/gpu.sh", "--dry-run", "-q"], cwd=REPO, env=child_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = Path(result.stdout.strip().splitlines()[-1].split()[2])
    r, _ = read(out, "bench-gpu-dry-run")
    assert (out / "gpu-bench.log").is_file()
    assert {"reference", "bucket", "shared", "packed"} == set(r["shapes"]["tiny"]["training"])
    assert {"mixed", "shared", "reference"} == set(r["shapes"]["tiny"]["inference"])


@pytest.mark.slow
def test_prepare_rebuilds_the_committed_pairs_file_byte_for_byte(tmp_path):
    out = tmp_path / "pairs.jsonl.gz"
    assert main(["prepare", "--out", str(out)]) == 0
    assert out.read_bytes() == PAIRS_FILE.read_bytes()
