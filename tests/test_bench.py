import json

from mtl.cli import main
from tests.conftest import tiny_overrides


def test_bench_runs_end_to_end_and_writes_its_tables(tiny_backbone, tiny_data, tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["bench", "--steps-per-task", "1", "--peak-size", "256", "--output-dir", str(out), "--name", "tiny",
                 "--work-dir", str(tmp_path / "work"), "--invoked-as", "mtl bench (test)",
                 *tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{"data.dev_limit": 16})])
    assert code == 0
    results = json.loads((out / "tiny.json").read_text())
    table = (out / "tiny.md").read_text()
    assert "| **ours / reference** |" in table and "## Inference and memory" in table
    assert table in capsys.readouterr().out

    assert results["command"] == "mtl bench (test)"
    assert {"cpu", "cpu_cores", "torch"} <= set(results["machine"]) and results["date"]
    assert results["matmul_peak"]["flops_per_s"] > 0
    training = results["training"]
    pipelines = [training["ours"], training["packed"], training["reference"]["qc"], training["reference"]["qi"],
                 training["reference"]["total"]]
    for p in pipelines:
        assert 0 <= p["padding_fraction"] < 1
        assert p["tokens"] > 0 and p["tokens_per_s"] > 0 and p["examples_per_s"] > 0 and 0 < p["mfu"]
        assert p["peak_memory_bytes"] > 0
    assert training["ours"]["steps"] == 2 and training["reference"]["total"]["steps"] == 2
    assert training["packed"]["padding_fraction"] <= training["reference"]["total"]["padding_fraction"]
    for key in ("qc", "qi", "avg", "avg_tuned"):
        assert 0 <= training["ours"]["f1"][key] <= 1 and 0 <= training["reference"]["total"]["f1"][key] <= 1
    assert all(r > 0 for r in results["ratios"].values())
    assert results["inference"]["ours"]["models"] == 1 and results["inference"]["reference"]["models"] == 2
    # One backbone serves both tasks; the reference holds two.
    assert 1.9 < results["memory"]["ratio"] < 2.1
    assert set(results["targets"]) == {"train_tokens_per_s_at_least_2x", "padding_under_10pct",
                                       "f1_avg_equal_or_better"}
    assert "gpu" in results  # CPU run: says that no GPU figure was measured
