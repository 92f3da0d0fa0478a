import json
import shlex

import pytest

from bench import default_name, main
from mtl.config import load_config
from tests.conftest import tiny_overrides


def test_bench_runs_end_to_end_and_writes_its_tables(tiny_backbone, tiny_data, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--steps-per-task", "1", "--peak-size", "256", "--output-dir", str(out), "--name", "tiny",
            "--work-dir", str(tmp_path / "work"),
            *tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{"data.dev_limit": 16, "log.every": 1})]
    code = main(argv)
    assert code == 0
    results = json.loads((out / "tiny.json").read_text())
    table = (out / "tiny.md").read_text()
    assert "| **ours / reference** |" in table and "## Inference and memory" in table
    assert table in capsys.readouterr().out

    # What was invoked, with the arguments main() was given (not this process's, which are pytest's).
    assert results["command"] == shlex.join(["python", "benchmarks/bench.py", *argv])
    assert f"- command: `{results['command']}`" in table
    assert {"cpu", "cpu_cores", "torch"} <= set(results["machine"]) and results["date"]
    peak = results["matmul_peak"]
    assert peak["flops_per_s"] == max(peak["start"]["flops_per_s"], peak["end"]["flops_per_s"]) > 0
    assert peak["used"] in ("start", "end") and peak[peak["used"]]["flops_per_s"] == peak["flops_per_s"]
    assert {"other_load"} <= set(peak["start"]) and {"other_load"} <= set(peak["end"])
    assert "the higher of the run's start" in table and "(other load " in table
    training = results["training"]
    pipelines = [training["ours"], *training["others"].values(), training["reference"]["qc"],
                 training["reference"]["qi"], training["reference"]["total"]]
    for p in pipelines:
        assert 0 <= p["padding_fraction"] < 1
        assert p["tokens"] > 0 and p["tokens_per_s"] > 0 and p["examples_per_s"] > 0 and 0 < p["mfu"]
        assert p["peak_memory_bytes"] > 0
        assert p["mfu"] == pytest.approx(p["flops_per_s"] / peak["flops_per_s"])  # against the higher peak
    assert training["ours"]["steps"] == 2 and training["reference"]["total"]["steps"] == 2
    # auto batching shares prefixes on the tiny decoder (its data repeats queries); the others pack and bucket.
    assert results["setup"]["batching"] == "shared" and results["setup"]["other_batchings"] == ["packed", "bucket"]
    packed, bucket = training["others"]["packed"], training["others"]["bucket"]
    assert training["ours"]["shared_fraction"] > 0 == packed["shared_fraction"] == bucket["shared_fraction"]
    assert training["ours"]["model_flops"] < packed["model_flops"]
    assert packed["padding_fraction"] < bucket["padding_fraction"]
    assert [c["verdict"].split(":")[0] for c in results["batching"]["others"].values()] == \
        ["packed batching", "bucket batching"]
    assert "| ours: joint model, packed batching: rows of 128 tokens, pairs not merged |" in table
    assert "- batching: packed batching: " in table and "- batching: bucket batching: " in table
    for key in ("qc", "qi", "avg", "avg_tuned", "test_qc", "test_qi", "test_avg"):
        assert 0 <= training["ours"]["f1"][key] <= 1 and 0 <= training["reference"]["total"]["f1"][key] <= 1
    # The held-out test split leads: the trainer scored it with the model it trained, at the tuned threshold.
    summary = json.loads((tmp_path / "work" / "ours" / "metrics.json").read_text())
    assert training["ours"]["f1"]["test_qc"] == summary["test"]["reports"]["qc"]["at_threshold"]["f1"]
    assert f"{training['ours']['f1']['test_avg']:.4f} on the test split vs" in table
    assert summary["computed_tokens"] == training["ours"]["computed_tokens"] < training["ours"]["tokens"]
    # Start-up: the trainer's own first logged windows (log.every=1 here: steps 1 and 2), as it logged them.
    logged = [json.loads(line) for line in (tmp_path / "work" / "ours" / "metrics.jsonl").read_text().splitlines()]
    first = {str(r["step"]): r["perf/tokens_per_s"] for r in logged if "perf/tokens_per_s" in r}
    assert {str(k): v for k, v in training["ours"]["start_tokens_per_s"].items()} == first and len(first) == 2
    assert "## Start-up" in table and "| run | steps to 1 | steps to 2 | whole run |" in table
    assert all(r > 0 for r in results["ratios"].values())
    ours, reference = results["inference"]["ours"], results["inference"]["reference"]
    assert ours["models"] == 1 and reference["models"] == 2
    # One pass over mixed batches serves both tasks: one time for both, none per task.
    assert ours["batching"] == "mixed" and reference["batching"] == "in_order"
    assert ours["pairs_per_s"] == pytest.approx((ours["tasks"]["qc"]["pairs"] + ours["tasks"]["qi"]["pairs"])
                                                / ours["seconds"])
    assert "seconds" not in ours["tasks"]["qc"] and reference["tasks"]["qc"]["seconds"] > 0
    assert "| mixed | mixed |" in table
    # One backbone serves both tasks; the reference holds two.
    assert 1.9 < results["memory"]["ratio"] < 2.1
    assert set(results["targets"]) == {"train_tokens_per_s_at_least_2x", "padding_under_10pct",
                                       "f1_avg_equal_or_better"}
    # The same schema on every device: the GPU's name, or null where there is none.
    if results["device"] == "cuda":
        assert isinstance(results["gpu"], str) and results["gpu"]
    else:
        assert results["gpu"] is None and "- GPU: none" in table


def test_result_names_carry_the_dtype_so_runs_in_two_dtypes_keep_both_files():
    float32 = default_name(load_config(None, ["model.dtype=float32"]))
    bfloat16 = default_name(load_config(None, ["model.dtype=bfloat16"]))
    assert float32.endswith("-gemma3-270m-float32") and bfloat16 == float32.removesuffix("float32") + "bfloat16"


def test_help_names_the_script_and_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python benchmarks/bench.py")
    for option in ("--config", "--steps-per-task", "--compare-steps", "--peak-size", "--output-dir", "--name",
                   "--work-dir", "key=value"):
        assert option in text


def test_a_bad_option_exits_2_with_its_message(caplog):
    assert main(["--steps-per-task", "0", "model.dtype=float32"]) == 2
    assert "--steps-per-task must be >= 1, got 0" in caplog.text
