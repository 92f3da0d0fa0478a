import json
import lzma
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize
from safetensors.numpy import load_file

import mtl.data.tasks
import gpu_real
from gpu_real import assemble, data_files, fill, guard_tokens, hf_name, read_jobs, run_jobs, stash_parts

REPO = Path(__file__).resolve().parents[1]

HIDDEN, VOCAB = 32, 12
CONFIG = {"model_type": "gemma3_text", "hidden_size": HIDDEN, "num_hidden_layers": 3, "vocab_size": VOCAB,
          "layer_types": ["sliding_attention", "sliding_attention", "full_attention"]}


def write_part(folder, tensors: dict, rows: list[int], embedding: np.ndarray, first: bool = False) -> dict:
    """A part as `pack` writes one: GGUF-style raw blocks (Q8_0 matrices, F32 norms) and the carried rows."""
    folder.mkdir()
    arrays, meta = {}, {"tensors": {}}
    for name, values in tensors.items():
        qtype = Q.F32 if values.ndim == 1 else Q.Q8_0
        arrays[name] = quantize(values, qtype)
        meta["tensors"][name] = {"type": int(qtype), "shape": list(reversed(values.shape))}
    arrays["token_embd.ids"] = np.array(rows, dtype=np.int64)
    arrays["token_embd.rows"] = quantize(embedding, Q.Q8_0)[rows]
    meta["tensors"]["token_embd.weight"] = {"type": int(Q.Q8_0), "shape": [HIDDEN, VOCAB]}
    np.savez(folder / "blocks.npz", **arrays)
    if first:
        meta["config"] = CONFIG
        for name in ("tokenizer.json", "tokenizer_config.json"):
            with lzma.open(folder / f"{name}.xz", "wb") as f:
                f.write(json.dumps({"name": name}).encode())
    (folder / "meta.json").write_text(json.dumps(meta))
    return {name: dequantize(arrays[name], Q.F32 if v.ndim == 1 else Q.Q8_0) for name, v in tensors.items()}


def layer(i: int, rng) -> dict:
    return {f"blk.{i}.attn_q.weight": rng.normal(size=(64, HIDDEN)).astype(np.float32),
            f"blk.{i}.ffn_down.weight": rng.normal(size=(HIDDEN, 64)).astype(np.float32),
            f"blk.{i}.attn_norm.weight": rng.normal(size=HIDDEN).astype(np.float32)}


def test_parts_assemble_into_the_dequantized_weights_norms_less_one_and_only_carried_rows(tmp_path):
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(VOCAB, HIDDEN)).astype(np.float32)
    first = write_part(tmp_path / "part1", {**layer(0, rng), "output_norm.weight": np.ones(HIDDEN, np.float32) * 2},
                       [1, 5, 7], embedding, first=True)
    second = write_part(tmp_path / "part2", {**layer(1, rng), **layer(2, rng)}, [9], embedding)
    only_third = write_part(tmp_path / "part3", layer(4, rng), [], embedding)  # layer 3 missing: 4 is not reached

    ids, held, total = assemble([tmp_path / "part1", tmp_path / "part2", tmp_path / "part3"], tmp_path / "backbone")
    state = load_file(str(tmp_path / "backbone" / "model.safetensors"))
    config = json.loads((tmp_path / "backbone" / "config.json").read_text())

    assert ids == {1, 5, 7, 9} and (held, total) == (3, 3)
    assert config["num_hidden_layers"] == 3 and config["layer_types"] == CONFIG["layer_types"]
    assert not any(k.startswith("model.layers.4.") for k in state) and "blk.4.attn_q.weight" in only_third
    np.testing.assert_array_equal(state["model.layers.0.self_attn.q_proj.weight"], first["blk.0.attn_q.weight"])
    np.testing.assert_array_equal(state["model.layers.2.mlp.down_proj.weight"], second["blk.2.ffn_down.weight"])
    np.testing.assert_array_equal(state["model.layers.1.input_layernorm.weight"],
                                  second["blk.1.attn_norm.weight"] - 1)
    np.testing.assert_array_equal(state["model.norm.weight"], np.ones(HIDDEN))
    carried = dequantize(quantize(embedding, Q.Q8_0), Q.Q8_0)
    np.testing.assert_array_equal(state["model.embed_tokens.weight"][[1, 5, 7, 9]], carried[[1, 5, 7, 9]])
    assert not state["model.embed_tokens.weight"][[0, 2, 3, 4, 6, 8, 10, 11]].any()
    assert json.loads((tmp_path / "backbone" / "tokenizer.json").read_text()) == {"name": "tokenizer.json"}

    with pytest.raises(SystemExit, match="exactly one part must be packed with --first"):
        assemble([tmp_path / "part2"], tmp_path / "other")


def test_a_token_whose_row_did_not_travel_stops_tokenizing(monkeypatch):
    monkeypatch.setattr(mtl.data.tasks, "tokenize_pairs", mtl.data.tasks.tokenize_pairs)  # restored after the test

    class Pairs:
        def encode(self, text_a, text_b):
            return [[1, len(a), len(b)] for a, b in zip(text_a, text_b)]

    guard_tokens({1, 2})
    pairs = pd.DataFrame({"text_a": ["ab", "abc"], "text_b": ["x", "xy"]})
    with pytest.raises(SystemExit, match=r"token ids \[3\]"):
        mtl.data.tasks.tokenize_pairs(pairs, Pairs(), None)
    assert mtl.data.tasks.tokenize_pairs(pairs.iloc[:1], Pairs(), None) == [[1, 2, 1]]
    with pytest.raises(SystemExit, match=r"token ids \[40\]"):
        mtl.data.tasks.tokenize_pairs(pd.DataFrame({"text_a": ["a" * 40], "text_b": ["x"]}), Pairs(), None)


def test_job_lines_name_their_data_files_and_take_the_backbone_and_data_folders(tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("# a comment\n\n--name a --seeds 1,2 data.qc_train={data}/qc.jsonl model.backbone={backbone}\n"
                    "--name b data.qi_train={data}/qi.jsonl data.qc_train={data}/qc.jsonl\n")
    lines = read_jobs(jobs)
    assert [line[1] for line in lines] == ["a", "b"]
    assert data_files(lines) == ["qc.jsonl", "qi.jsonl"]
    assert fill(lines[0], "/b", "/d")[-2:] == ["data.qc_train=/d/qc.jsonl", "model.backbone=/b"]


def test_gguf_names_map_to_the_converted_folders_and_unknown_ones_are_refused():
    assert hf_name("blk.11.ffn_norm.weight") == ("model.layers.11.pre_feedforward_layernorm.weight", True)
    assert hf_name("blk.0.attn_output.weight") == ("model.layers.0.self_attn.o_proj.weight", False)
    assert hf_name("output_norm.weight") == ("model.norm.weight", True)
    with pytest.raises(ValueError, match="unexpected GGUF tensor"):
        hf_name("blk.0.ffn_gate_inp.weight")


class FakeSeed:
    """A launched seed that writes its run's metrics.json (or fails) and ends after a poll or two."""

    def __init__(self, runs: Path, args: list[str], fails: bool, launched: list):
        name, seed = args[args.index("--name") + 1], args[-1]
        launched.append(seed)
        self.exitcode, self.polls = (1 if fails else 0), int(seed) % 2
        if not fails:
            report = {"auc": 0.7 + int(seed) / 100, "f1": 0.8, "predicted_positive_rate": 0.6}
            path = runs / name / f"seed-{seed}" / "metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps({"train_seconds": 1.5, "steps": 2, "best_step": 2, "pairs": 32,
                                        "best": {"reports": {"qc": report}}, "test": {"reports": {"qc": report}}}))

    def is_alive(self) -> bool:
        self.polls -= 1
        return self.polls >= 0


def job(seeds: str, *overrides: str, name: str = "t") -> list[str]:
    return ["--name", name, "--seeds", seeds, "--config", str(REPO / "configs" / "mtl.yaml"), *overrides]


def test_run_jobs_tables_every_seed_that_ends_and_does_not_retrain_recorded_ones(tmp_path):
    runs, launched = tmp_path / "runs", []
    launch = lambda args: FakeSeed(runs, args, fails=args[-1] == "2", launched=launched)  # noqa: E731
    record = run_jobs([job("1,2,3")], tmp_path, runs, 600, 2, launch, (18, 18), {})
    assert launched == ["1", "2", "3"]
    assert set(record["jobs"][0]["seeds"]) == {"1", "2", "3"}
    assert record["jobs"][0]["seeds"]["2"] == {"error": "no metrics.json (exit code 1)"}
    table = (tmp_path / "seeds-t.md").read_text()
    assert "| 1 | 0.7100 |" in table and "| 3 | 0.7300 |" in table and "| 2 |" not in table
    assert json.loads((tmp_path / "gpu-real.json").read_text())["jobs"][0]["args"] == job("1,2,3")

    launched.clear()
    record = run_jobs([job("1,2,3,4")], tmp_path, runs, 600, 2, launch, (18, 18), {})
    assert launched == ["2", "4"] and record["jobs"][0]["recorded_earlier"] == ["1", "3"]
    assert "| 4 | 0.7400 |" in (tmp_path / "seeds-t.md").read_text()

    launched.clear()  # a table of another recipe under the same name is refused before anything trains
    record = run_jobs([job("5", "train.max_steps=7")], tmp_path, runs, 600, 1, launch, (18, 18), {})
    assert launched == [] and "another config" in record["jobs"][0]["error"]


def test_run_jobs_starts_no_seed_that_may_not_fit_nor_an_all_layers_job_on_a_cut_backbone(tmp_path):
    runs, launched = tmp_path / "runs", []
    launch = lambda args: FakeSeed(runs, args, fails=False, launched=launched)  # noqa: E731
    record = run_jobs([job("1,2")], tmp_path, runs, 0.1, 1, launch, (18, 18), {})
    assert launched == ["1"]  # the first seed has no estimate; the second would take 1.2x the first's 0.5 s
    assert len(record["skipped"]) == 1 and record["skipped"][0].startswith("t seed 2: ")

    launched.clear()
    record = run_jobs([job("3"), job("4", "model.num_layers=9", name="u")], tmp_path / "cut", runs, 600, 1, launch,
                      (9, 18), {})
    assert launched == ["4"]
    assert record["jobs"][0]["error"] == "wants all 18 layers; the parts hold 9"


def test_run_jobs_gives_a_free_slot_to_the_next_job_and_tables_each_job_apart(tmp_path):
    runs, launched, record = tmp_path / "runs", [], {}
    ended_before = {}

    def launch(args):
        ended_before[args[-1]] = sum(len(entry["seeds"]) for entry in record["jobs"])
        return FakeSeed(runs, args, fails=False, launched=launched)

    jobs = [job("1,2"), job("3", "train.max_steps=7", name="u"), job("4", name="v")]
    run_jobs(jobs, tmp_path, runs, 600, 3, launch, (18, 18), record)
    assert launched == ["1", "2", "3", "4"]
    assert ended_before == {"1": 0, "2": 0, "3": 0, "4": 1}  # 3 starts beside 1 and 2; 4 waits for a free slot
    assert "| 1 | 0.7100 |" in (tmp_path / "seeds-t.md").read_text()
    assert "| 3 | 0.7300 |" in (tmp_path / "seeds-u.md").read_text()
    assert [sorted(entry["seeds"]) for entry in record["jobs"]] == [["1", "2"], ["3"], ["4"]]


class Clock:
    """Stands in for `time` in gpu_real: a sleep moves the clock, so timings are exact."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_run_jobs_estimates_a_seed_from_the_longest_running_seed_of_its_job(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_real, "time", Clock())
    runs, launched, polls = tmp_path / "runs", [], {"7": 7, "1": 1, "2": 2, "3": 0}

    def launch(args):
        seed = FakeSeed(runs, args, fails=False, launched=launched)
        seed.polls = polls[args[-1]]
        return seed

    # seed 2 starts at 1.0 s (estimate 1.0: seed 7 has run that long); seed 3 would start at 2.5 s with 2.0 s left,
    # enough for 1.2x the slowest ended seed (1.0 s) but not for seed 7, still running after 2.5 s
    record = run_jobs([job("7,1,2,3")], tmp_path, runs, 4.5, 2, launch, (18, 18), {})
    assert launched == ["7", "1", "2"] and record["skipped"] == ["t seed 3: 2 s left"]
    assert record["jobs"][0]["seeds"]["7"]["wall_seconds"] == 3.5


def test_run_jobs_refuses_a_second_line_of_one_name_and_trains_a_repeated_seed_once(tmp_path):
    runs, launched = tmp_path / "runs", []
    launch = lambda args: FakeSeed(runs, args, fails=False, launched=launched)  # noqa: E731
    record = run_jobs([job("1,1"), job("3")], tmp_path, runs, 600, 2, launch, (18, 18), {})
    assert launched == ["1"] and record["jobs"][1]["error"] == "a second job line named t"


def test_run_jobs_reads_a_line_as_seeds_py_does_and_records_one_it_refuses(tmp_path):
    runs, launched = tmp_path / "runs", []
    launch = lambda args: FakeSeed(runs, args, fails=False, launched=launched)  # noqa: E731
    config = ["--config", str(REPO / "configs" / "mtl.yaml")]
    lines = [["--name", "t", *config], ["--seeds", "9", *config], ["--name", "u", "--seeds=6,7", *config]]
    record = run_jobs(lines, tmp_path, runs, 600, 3, launch, (18, 18), {})
    assert launched == ["1", "2", "3", "4", "5", "6", "7"]  # seeds.py's default seeds, then the --seeds= form
    assert record["jobs"][1]["error"].endswith("the following arguments are required: --name")
    assert sorted(record["jobs"][0]["seeds"]) == ["1", "2", "3", "4", "5"]
    assert sorted(record["jobs"][2]["seeds"]) == ["6", "7"] and (tmp_path / "seeds-u.md").is_file()


def test_stashed_parts_are_kept_replaced_when_repacked_and_all_returned(tmp_path):
    for name, meta in (("part1", "a"), ("part2", "b")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(meta)
    stash = tmp_path / "stash"
    assert stash_parts([tmp_path / "part1"], stash) == [stash / "part1"]
    (tmp_path / "part1" / "meta.json").write_text("a, repacked")
    (tmp_path / "part1" / "extra").write_text("new")
    assert stash_parts([tmp_path / "part2", tmp_path / "part1"], stash) == [stash / "part1", stash / "part2"]
    assert (stash / "part1" / "meta.json").read_text() == "a, repacked" and (stash / "part1" / "extra").is_file()
    assert not list(stash.glob(".*"))
