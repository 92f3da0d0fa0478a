"""Throughput benchmark: this project's training and serving pipeline against a reference-style one (the paper's).

    python benchmarks/bench.py                                   # embedded Gemma-3 270M, sample data, this device
    flock /tmp/mtl-heavy.lock python benchmarks/bench.py         # on a shared machine (timings need it to themselves)
    python benchmarks/bench.py --steps-per-task 3 model.backbone=/path/to/tiny   # any backbone / data: key=value

Writes benchmarks/results/<name>.md (the tables, also printed) and <name>.json (every figure). It serves nothing in
the library, so it lives here rather than in `mtl`; its measuring helpers are `mtl.measure`, which the comparison
grid shares.

One process, one run, phases in this order:

1. matmul peak: the best of a few `torch.matmul` of two large square matrices in the backbone's dtype
   (FLOPs = 2·m·n·k), measured here so MFU is against this machine's own ceiling; measured again after the last
   phase, and MFU uses the higher of the two (other work during one measurement would lower the peak and inflate
   MFU), with the other load during each;
2. ours: the joint model trained by the project's trainer (`mtl.train.train`; `train.batching=auto` is `shared`
   on a rotary decoder) for 2·N optimizer steps, then its F1 on the dev subset;
3. other batchings: the same with each of `shared` (prefix-tree rows, `mtl.packing`), `packed` (several pairs per
   row, nothing merged) and `bucket` that ours is not (the tree batchings only where the model allows them);
4. reference: what the paper's code does, run through the same trainer: one single-task model per task for N steps
   each, random batches padded to the longest pair, `max_length` 2048 (truncation only), the pair as the tokenizer's
   own pair template (`<bos>A<bos>B` for the Gemma GGUF tokenizer), no taxonomy features, peft's own LoRA dropout
   (ours draws its masks with `mtl.dropout`); same backbone, LoRA rank, targets and dropout rate, optimizer, batch
   size, data and dev subset;
5. inference: pairs/s on the dev subset of both tasks through the one joint model (`load_trained` +
   `predict_probs_mixed`: QC and QI pairs sorted by length together into shared batches, one backbone pass per
   batch and each row to its task's head), and through the two reference models (each task's batches in file
   order through its own model, both models in memory, as two separately served single-task models are);
6. memory: parameter bytes of the joint model vs the two single-task models.

Both sides see the same pairs per task (2·N joint steps ≈ N per task), so their F1 is comparable.

Training FLOPs (model FLOPs: tokens computed, padding excluded, so padding shows up as lost MFU), for a pair of L
tokens in a padded batch:

    L·(4·N_frozen + 6·N_lora) + Σ_layers 12·d_attn·P(L)

N_frozen: weights of the backbone's linear layers (embeddings are a lookup and cost nothing); N_lora: adapter
weights; d_attn = heads × head_dim; P(L): query-key pairs a layer scores, L(L+1)/2 when causal (fewer inside a
sliding window), L² for an encoder. Forward costs 2 FLOPs per weight per token and 4·d_attn per query-key pair
(QKᵀ and AV). Backward computes activation gradients everywhere (2 per weight per token, twice the forward for
attention), so that the adapters of earlier layers get their gradients, but weight gradients only for LoRA
(2 per weight per token): the frozen base gets none. Norms, softmax, activations, rotary, dropout, the heads and the
optimizer are left out (< 1% of the FLOPs here). Prefix-tree rows compute each shared token once: T tree nodes
cost T·(4·N_frozen + 6·N_lora), and a node at depth k scores k + 1 keys (its ancestors and itself). The trainer
counts the tokens computed and the query-key pairs of every forward pass it runs (`mtl.train.TrainState`); this
benchmark puts its counts through the formula.

Tokens/s counts the tokens of the pairs trained on (as each pipeline formats them), whether or not a shared prefix
computed some of them once, so it is a rate of data, like pairs/s; "computed" is what the forward passes ran on.

Peak memory is per phase (`mtl.measure.Meter`: the allocator's peak on CUDA, the process's peak RSS on a CPU).
Each phase also records the CPU cores other processes kept busy meanwhile: timings are only comparable when that is
near 0.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench_tables import format_markdown
from mtl.cli import EPILOG_OVERRIDES, parse_args, run_command
from mtl.config import ExperimentConfig, TASKS, from_dict, load_config, to_dict
from mtl.data.tasks import TaskData, collate
from mtl.errors import ConfigError
from mtl.evaluate import predict_probs_mixed
from mtl.io import atomic_write_text
from mtl.measure import Meter, machine
from mtl.metrics import f1_avg
from mtl.model import build_model, build_tokenizer, count_parameters, load_trained, resolve_dtype
from mtl.train import load_run_data, train
from mtl.packing import TREE_BATCHINGS, is_rotary, resolve_batching, why_not_packable

log = logging.getLogger("benchmarks.bench")

COMPARED_BATCHINGS = ("shared", "packed", "bucket")
"""The trainer's batchings the joint model is trained with (`random` is the reference's)."""

REFERENCE_MAX_LENGTH = 2048
"""The paper's max_length: truncation only, batches are padded to their longest pair."""


@dataclass
class BenchOptions:
    steps_per_task: int = 80
    """Optimizer steps of each reference single-task model; the joint and packed models train twice as many."""
    compare_steps: int = -1
    """Optimizer steps of the joint model with each other batching (-1: as many as ours; 0: skip them)."""
    peak_size: int = 0
    """Side of the square matrices of the matmul peak (0: 2048 on CPU, 8192 on CUDA)."""
    peak_reps: int = 5
    """Timed matmuls of the peak; the fastest counts."""
    work_dir: str = ""
    """Where the benchmark's training runs are written (empty: a temporary folder, removed afterwards)."""

    def __post_init__(self):
        if self.steps_per_task < 1:
            raise ConfigError(f"--steps-per-task must be >= 1, got {self.steps_per_task}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench.py", epilog=EPILOG_OVERRIDES,
        description="In one process: the machine's matmul peak; the joint model trained by the trainer for 2N steps "
                    "(tokens/s, pairs/s, padding, MFU, peak memory, F1 on the dev subset); the same with each "
                    "other batching (bucket, shared prefix-tree rows, packed rows); the paper-style reference (one "
                    "model per task, N steps each, random batches padded to the longest, max_length 2048, the "
                    "tokenizer's own pair template); inference pairs/s per task and parameter memory of one joint "
                    "model vs two single-task models. Writes NAME.md and NAME.json under --output-dir. Give it the "
                    "machine to itself: on a shared machine wrap it in `flock /tmp/mtl-heavy.lock`.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--config", help="YAML delta on the defaults (backbone, data, batch)")
    parser.add_argument("--steps-per-task", type=int, default=80,
                        help="steps of each reference model; the joint model trains twice as many (default: "
                             "%(default)s)")
    parser.add_argument("--compare-steps", type=int, default=-1,
                        help="steps of the joint model with each other batching (bucket, shared, packed; default: "
                             "as many as ours; 0 skips them)")
    parser.add_argument("--peak-size", type=int, default=0, help="matmul side for the peak (default: 2048 on CPU, "
                                                                 "8192 on CUDA)")
    parser.add_argument("--output-dir", default="benchmarks/results", help="default: %(default)s")
    parser.add_argument("--name", help="file name stem (default: bench-<device>-<backbone>-<dtype>)")
    parser.add_argument("--work-dir", help="keep the benchmark's training runs here (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    parser.set_defaults(func=bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/bench.py ARGS`, with ARGS `argv` (default: this process's): that command line is what the
    results record, whoever calls this."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(build_parser(), argv)
    args.command_line = shlex.join(["python", "benchmarks/bench.py", *argv])
    return run_command(args)


def bench(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    options = BenchOptions(steps_per_task=args.steps_per_task, compare_steps=args.compare_steps,
                           peak_size=args.peak_size, work_dir=args.work_dir or "")
    results = run_benchmark(cfg, options, args.command_line)
    md, js = write_results(results, args.output_dir, args.name or default_name(cfg))
    print(md.read_text(encoding="utf-8"))
    print(f"wrote {md} and {js}")
    return 0


def run_benchmark(cfg: ExperimentConfig, options: BenchOptions, command: str) -> dict:
    """Run every phase and return the results (what `write_results` writes)."""
    if cfg.train.mode != "mtl" or cfg.cv.fold != "none":
        raise ConfigError("the benchmark measures the joint model on the dev files: leave train.mode=mtl and "
                          "cv.fold=none")
    if options.work_dir:
        return _run(cfg, options, command, Path(options.work_dir))
    with tempfile.TemporaryDirectory(prefix="mtl-bench-") as tmp:
        return _run(cfg, options, command, Path(tmp))


def _run(cfg: ExperimentConfig, options: BenchOptions, command: str, work: Path) -> dict:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = resolve_dtype(cfg.model.dtype)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()

    peak_size = options.peak_size or (8192 if device == "cuda" else 2048)
    peak_start = matmul_peak(dtype, device, peak_size, options.peak_reps)
    plan, training, data = train_pipelines(cfg, options, work, device)
    inference = {
        "ours": serve({t: work / "ours" / "final" for t in TASKS}, data["ours"], device, cfg.eval.batch_size, "mixed"),
        "reference": serve({t: work / f"reference-{t}" / "final" for t in TASKS},
                           {"val": {t: data["reference"][t]["val"][t] for t in TASKS}}, device, cfg.eval.batch_size,
                           "in_order"),
    }
    peak = combine_peaks(peak_start, matmul_peak(dtype, device, peak_size, options.peak_reps))
    for p in (training["ours"], *training["others"].values(), *training["reference"].values()):
        p["mfu"] = p["flops_per_s"] / peak["flops_per_s"]
    ours, ref = training["ours"], training["reference"]["total"]
    memory = {"joint_model_bytes": inference["ours"]["parameter_bytes"],
              "two_models_bytes": inference["reference"]["parameter_bytes"]}
    results = {
        "command": command, "date": started.isoformat(timespec="seconds"),
        "wall_seconds": (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(),
        "machine": machine(),
        # Other processes on the machine slow every phase down: the 1/5/15-minute load averages before and after
        # the run (the benchmark itself adds about one per busy core) say whether it had the machine to itself.
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "device": device, "dtype": str(dtype).removeprefix("torch."),
        # The same key on every device: the GPU's name, or null on a CPU-only run (no GPU figure measured).
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "backbone": cfg.model.backbone, "setup": setup_facts(cfg, options, plan),
        "matmul_peak": peak, "flop_model": plan["counts"], "training": training, "inference": inference,
        "memory": {**memory, "ratio": memory["two_models_bytes"] / memory["joint_model_bytes"]},
        "ratios": {
            "train_tokens_per_s": ours["tokens_per_s"] / ref["tokens_per_s"],
            "train_examples_per_s": ours["examples_per_s"] / ref["examples_per_s"],
            "inference_pairs_per_s": inference["ours"]["pairs_per_s"] / inference["reference"]["pairs_per_s"],
        },
    }
    results["targets"] = {
        "train_tokens_per_s_at_least_2x": results["ratios"]["train_tokens_per_s"] >= 2.0,
        "padding_under_10pct": ours["padding_fraction"] < 0.10,
        "f1_avg_equal_or_better": ours["f1"].get("test_avg", ours["f1"]["avg"]) >=
        ref["f1"].get("test_avg", ref["f1"]["avg"]),
    }
    if training["others"]:
        results["batching"] = batching_verdict(ours, training["others"], plan)
    return results


def train_pipelines(cfg: ExperimentConfig, options: BenchOptions, work: Path, device: str) -> tuple[dict, dict, dict]:
    """Phases 2-4 of the module doc: ours, ours with each other batching, the reference. Returns the plan (the FLOP
    model's sizes, ours' batching, the others and their steps), each pipeline's figures, and the task data each side
    used."""
    ours_cfg = derive(cfg, {"train.max_steps": 2 * options.steps_per_task, "train.eval_every": 0,
                            "train.save_every": 0, "log.tensorboard": False, "log.root": str(work),
                            "log.run_name": "ours"})
    ref_cfgs = {t: reference_config(cfg, t, options.steps_per_task, work) for t in TASKS}  # checked before training
    ours_data = load_task_data(ours_cfg)
    counts, batching, batching_refused = model_facts(ours_cfg, ours_data)
    # The batching the trainer would pick, made explicit so the results name what ran.
    ours_cfg = derive(ours_cfg, {"train.batching": batching})
    others = [b for b in COMPARED_BATCHINGS if b != batching]
    if batching_refused:
        log.warning("shared and packed batching %s: their runs are skipped", batching_refused)
        others = [b for b in others if b not in TREE_BATCHINGS]
    compare_steps = 2 * options.steps_per_task if options.compare_steps < 0 else options.compare_steps
    others = others if compare_steps else []
    training = {"ours": train_with_trainer(ours_cfg, counts, device), "others": {}}
    for other in others:
        other_cfg = derive(ours_cfg, {"train.batching": other, "train.max_steps": compare_steps,
                                      "log.run_name": f"ours-{other}"})
        training["others"][other] = train_with_trainer(other_cfg, counts, device)
    ref_data = {t: load_task_data(c) for t, c in ref_cfgs.items()}
    reference = {t: train_with_trainer(c, counts, device) for t, c in ref_cfgs.items()}
    training["reference"] = {**reference, "total": combine(reference)}
    plan = {"counts": counts, "batching": batching, "others": others, "compare_steps": compare_steps}
    return plan, training, {"ours": ours_data, "reference": ref_data}


def setup_facts(cfg: ExperimentConfig, options: BenchOptions, plan: dict) -> dict:
    """What both sides were run with, for the results' header."""
    return {"steps_per_task": options.steps_per_task, "joint_steps": 2 * options.steps_per_task,
            "compare_steps": plan["compare_steps"], "other_batchings": plan["others"],
            "row_tokens": cfg.train.row_tokens, "global_batch_size": cfg.train.global_batch_size,
            "micro_batch_size": cfg.train.micro_batch_size, "max_length": cfg.data.max_length,
            "reference_max_length": REFERENCE_MAX_LENGTH, "batching": plan["batching"], "lora_r": cfg.lora.r,
            "lora_targets": list(cfg.lora.target_modules), "lora_dropout": cfg.lora.dropout,
            "fast_dropout": cfg.lora.fast_dropout,
            "data": {k: getattr(cfg.data, k) for k in ("qc_train", "qi_train", "qc_dev", "qi_dev")},
            "dev_limit": cfg.data.dev_limit, "train_limit": cfg.data.train_limit, "template": cfg.data.template}


def batching_verdict(ours: dict, others: dict[str, dict], plan: dict) -> dict:
    """Each other batching against ours: tokens/s gained and F1 avg changed."""
    compared = {}
    for name, other in others.items():
        gain = other["tokens_per_s"] / ours["tokens_per_s"] - 1
        f1_change = other["f1"]["avg"] - ours["f1"]["avg"]
        compared[name] = {"tokens_per_s_gain": gain, "f1_avg_change": f1_change,
                          "verdict": f"{name} batching: {gain:+.1%} tokens/s and {f1_change:+.4f} F1 avg vs "
                                     f"{plan['batching']}"}
    return {"ours": plan["batching"], "others": compared}


def derive(cfg: ExperimentConfig, changes: dict) -> ExperimentConfig:
    """A copy of `cfg` with dotted-key changes, rebuilt through `from_dict` so its cross-field checks run again."""
    tree = copy.deepcopy(to_dict(cfg))
    for key, value in changes.items():
        section, name = key.split(".")
        tree[section][name] = value
    return from_dict(ExperimentConfig, tree)


def reference_config(cfg: ExperimentConfig, task: str, steps: int, work: Path) -> ExperimentConfig:
    """The paper's pipeline for one task, expressed in this project's config so the same trainer runs it."""
    return derive(cfg, {
        "train.mode": "single", "train.task": task, "train.max_steps": steps, "train.eval_every": 0,
        "train.save_every": 0, "train.batching": "random", "log.tensorboard": False,
        "data.max_length": REFERENCE_MAX_LENGTH,
        # PairTokenizer's encoder path is the tokenizer's own pair template with truncation: exactly what the
        # paper's code feeds its decoder. Pooling must then be set to the decoder's last token explicitly.
        "model.arch": "encoder", "model.pooling": "last", "data.template": "plain",
        "taxonomy.features": False,
        "lora.fast_dropout": False,  # the paper's code uses peft's own dropout
        "log.root": str(work), "log.run_name": f"reference-{task}",
    })


def load_task_data(cfg: ExperimentConfig) -> dict:
    """Training and validation `TaskData` as the trainer loads them for `cfg` (`mtl.train.load_run_data`; token ids
    come from the tokenization cache the trainer fills or reads)."""
    pair_tokenizer, folder = build_tokenizer(cfg)
    data = load_run_data(cfg, pair_tokenizer)
    return {"pairs": pair_tokenizer, "folder": folder, "priors": data.priors, "train": data.train, "val": data.val}


def matmul_peak(dtype: torch.dtype, device: str, size: int, reps: int) -> dict:
    """The machine's achievable matmul FLOP/s in `dtype`: the fastest of `reps` square matmuls after a warm-up,
    with the CPU cores other processes kept busy meanwhile (other work lowers the peak and so inflates MFU)."""
    with Meter(device) as meter:
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        torch.matmul(a, b)
        best = float("inf")
        for _ in range(reps):
            _sync(device)
            start = time.perf_counter()
            torch.matmul(a, b)
            _sync(device)
            best = min(best, time.perf_counter() - start)
        del a, b
    log.info("matmul peak: %.1f GFLOP/s (%s)", 2 * size ** 3 / best / 1e9, dtype)
    return {"dtype": str(dtype).removeprefix("torch."), "size": size, "reps": reps, "seconds": best,
            "flops_per_s": 2 * size ** 3 / best, "threads": torch.get_num_threads(), "other_load": meter.other_load}


def combine_peaks(start: dict, end: dict) -> dict:
    """The peak MFU is measured against: the higher of the run's first and last measurement (both kept), so other
    work on the machine during one of them cannot lower the ceiling and inflate MFU unless it hit both."""
    best = max(start, end, key=lambda p: p["flops_per_s"])
    return {"dtype": start["dtype"], "size": start["size"], "reps": start["reps"],
            "flops_per_s": best["flops_per_s"], "used": "start" if best is start else "end",
            "start": start, "end": end}


def model_facts(cfg: ExperimentConfig, data: dict) -> tuple[dict, str, str | None]:
    """Read off a freshly built model (backbone + LoRA as configured): the sizes the FLOP formula needs, the
    batching the trainer resolves `train.batching` to, and why shared batching is refused for it (None if not)."""
    model = build_model(cfg, data["priors"].n_features if data["priors"] else 0, data["folder"], data["pairs"].arch)
    batching, refused = resolve_batching(cfg.train.batching, model), why_not_packable(model)
    counts = flop_sizes(model, data["pairs"].arch == "decoder")
    del model
    return counts, batching, refused


def flop_sizes(model, causal: bool) -> dict:
    """What `model_flops` needs of a built model (backbone + LoRA): its linear weights, frozen and LoRA, and the
    attention layers' width, kinds and window."""
    frozen = lora = 0
    for name, module in model.backbone.named_modules():
        if isinstance(module, torch.nn.Linear):
            n = sum(p.numel() for p in module.parameters(recurse=False))
            if "lora_" in name:
                lora += n
            else:
                frozen += n
    config = model.backbone.get_base_model().config
    layers = config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    layer_types = getattr(config, "layer_types", None) or ["full_attention"] * layers
    position_encoding = "rotary" if is_rotary(model.backbone.get_base_model()) else "other"
    return {"formula": "L*(4*frozen_linear_params + 6*lora_params) + sum_layers 12*attention_width*P(L)",
            "frozen_linear_params": frozen, "lora_params": lora, "layers": layers,
            "attention_width": config.num_attention_heads * head_dim,
            "sliding_window": getattr(config, "sliding_window", None) or 0,
            "sliding_layers": sum(t == "sliding_attention" for t in layer_types[:layers]),
            "causal": causal, "position_encoding": position_encoding}


def model_flops(tokens: float, full_pairs: float, sliding_pairs: float, counts: dict) -> float:
    """Linear layers on `tokens`, plus attention over the query-key pairs of full and sliding-window layers."""
    linear = tokens * (4 * counts["frozen_linear_params"] + 6 * counts["lora_params"])
    n_sliding = counts["sliding_layers"]
    pairs = (counts["layers"] - n_sliding) * full_pairs + n_sliding * sliding_pairs
    return float(linear + 12 * counts["attention_width"] * pairs)


def train_with_trainer(cfg: ExperimentConfig, counts: dict, device: str) -> dict:
    """Run the project's trainer on `cfg` and read what it measured (its own training time, evaluation and
    checkpointing excluded; the pairs, tokens, computed tokens, slots and attention pairs of its forward passes);
    FLOPs are those counts through `model_flops`."""

    log.info("training %s (%d steps, %s batches)", cfg.log.run_name, cfg.train.max_steps, cfg.train.batching)
    run_dir = Path(cfg.log.root) / cfg.log.run_name
    with Meter(device) as meter:
        summary = train(cfg, run_dir)
    attended = summary["attention_pairs"]
    flops = model_flops(summary["computed_tokens"], attended["full"], attended["sliding"], counts)
    figures = measured(summary["steps"], summary["pairs"], summary["tokens"], summary["computed_tokens"],
                       summary["token_slots"], summary["train_seconds"], flops, meter, f1_of(summary))
    return {**figures, "start_tokens_per_s": start_windows(run_dir / "metrics.jsonl")}


def start_windows(log_file: Path, windows: int = 2) -> dict[int, float]:
    """Tokens/s of the trainer's first logged windows (`log.every` steps each), keyed by their last step: a slow
    start shows here and is averaged away in the whole run's figure."""
    rates = {}
    for line in log_file.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "perf/tokens_per_s" in record and len(rates) < windows:
            rates[record["step"]] = record["perf/tokens_per_s"]
    return rates


def measured(steps: int, pairs: int, real: int, computed: int, slots: int, seconds: float, flops: float, meter,
             f1: dict) -> dict:
    """One pipeline's figures; `mfu` is filled in at the end of the run, once the last matmul peak is measured.
    `real`: the pairs' tokens; `computed`: the tokens the forward passes ran on besides padding (fewer than `real`
    where prefix-tree rows shared them); `slots`: rows x width of every forward pass."""
    return {"steps": steps, "examples": pairs, "tokens": real, "computed_tokens": computed, "token_slots": slots,
            "padding_fraction": 1 - computed / slots, "shared_fraction": 1 - computed / real,
            "train_seconds": seconds,
            "tokens_per_s": real / seconds, "examples_per_s": pairs / seconds,
            "model_flops": flops, "flops_per_s": flops / seconds, "mfu": None,
            "peak_memory_bytes": meter.bytes, "other_load": meter.other_load, "f1": f1}


def combine(parts: dict[str, dict]) -> dict:
    """The reference's two single-task runs as one pipeline: sums over both, F1 of each task from its own model."""
    total = {k: sum(p[k] for p in parts.values())
             for k in ("steps", "examples", "tokens", "computed_tokens", "token_slots", "train_seconds",
                       "model_flops")}
    f1 = {}
    for part in parts.values():
        f1.update(part["f1"])
    f1 = average(f1)
    loads = [(p["other_load"], p["train_seconds"]) for p in parts.values()]
    meter = Meter("cpu")
    meter.bytes = max(p["peak_memory_bytes"] for p in parts.values())
    meter.other_load = None if any(x is None for x, _ in loads) else \
        sum(x * t for x, t in loads) / sum(t for _, t in loads)
    return measured(total["steps"], total["examples"], total["tokens"], total["computed_tokens"], total["token_slots"],
                    total["train_seconds"], total["model_flops"], meter, f1)


def f1_of(summary: dict) -> dict:
    """Validation F1 (on the dev subset) at 0.5, the paper's argmax, and at the threshold tuned there, per task and
    averaged; and `test_*`: the held-out test split's F1 at that tuned threshold, which nothing was tuned on."""
    reports, test = summary["final"]["reports"], summary.get("test", {}).get("reports", {})
    out = {}
    for task, report in reports.items():
        out[task] = report["f1"]
        out[f"{task}_tuned"] = report.get("tuned", {}).get("f1", report["f1"])
        if task in test:
            out[f"test_{task}"] = test[task].get("at_threshold", test[task])["f1"]
    return average(out)


def average(f1: dict) -> dict:
    """Add the task averages of whatever `f1` holds for both tasks."""
    for key, qc, qi in (("avg", "qc", "qi"), ("avg_tuned", "qc_tuned", "qi_tuned"), ("test_avg", "test_qc", "test_qi")):
        if qc in f1 and qi in f1:
            f1[key] = 0.5 * (f1[qc] + f1[qi])
    return f1


def serve(model_dirs: dict[str, Path], data: dict, device: str, batch_size: int, batching: str) -> dict:
    """Load the model(s) in `model_dirs` and score each task's dev pairs. `mixed`: one joint model (one folder
    for both tasks) scores both tasks' pairs in shared length-sorted batches, one backbone pass per batch
    (`predict_probs_mixed`), so there is no per-task time; `in_order`: each task's pairs through its own model in
    batches cut in file order (a plain DataLoader, the reference)."""
    with Meter(device) as meter:
        loaded = {folder: load_trained(folder, device) for folder in dict.fromkeys(model_dirs.values())}
        parameter_bytes = sum(count_parameters(m[0])["bytes"] for m in loaded.values())
        per_task, seconds, pairs = {}, 0.0, 0
        if batching == "mixed":
            (folder,) = set(model_dirs.values())
            model, pair_tokenizer = loaded[folder][0], loaded[folder][1]
            start = time.perf_counter()
            predict_probs_mixed(model, {t: data["val"][t] for t in model_dirs}, pair_tokenizer.pad_id, batch_size,
                                progress=False)
            _sync(device)
            seconds = time.perf_counter() - start
            per_task = {t: {"pairs": len(data["val"][t])} for t in model_dirs}
            pairs = sum(p["pairs"] for p in per_task.values())
        else:
            for task, folder in model_dirs.items():
                model, pair_tokenizer = loaded[folder][0], loaded[folder][1]
                task_data = data["val"][task]
                start = time.perf_counter()
                score_in_order(model, task_data, pair_tokenizer.pad_id, batch_size)
                _sync(device)
                elapsed = time.perf_counter() - start
                per_task[task] = {"pairs": len(task_data), "seconds": elapsed, "pairs_per_s": len(task_data) / elapsed}
                seconds += elapsed
                pairs += len(task_data)
        del loaded
    return {"models": len(set(model_dirs.values())), "batching": batching, "parameter_bytes": parameter_bytes,
            "tasks": per_task, "seconds": seconds, "pairs_per_s": pairs / seconds, "peak_memory_bytes": meter.bytes,
            "other_load": meter.other_load}


@torch.no_grad()
def score_in_order(model, data: TaskData, pad_id: int, batch_size: int) -> np.ndarray:
    """P(relevant) with batches cut in file order, each padded to its longest pair (no length sorting)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(data), batch_size):
        batch = collate(data, np.arange(start, min(start + batch_size, len(data))), pad_id)
        features = batch.get("features")
        logits = model(task=data.task, input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device),
                       features=None if features is None else features.to(device))
        out.append(torch.sigmoid(logits.float()).cpu().numpy())
    return np.concatenate(out)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def write_results(results: dict, output_dir: str | Path, name: str) -> tuple[Path, Path]:
    """`<name>.md` (the tables) and `<name>.json` (every figure) under `output_dir`."""
    output_dir = Path(output_dir)
    md, js = output_dir / f"{name}.md", output_dir / f"{name}.json"
    atomic_write_text(js, json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(md, format_markdown(results))
    return md, js


def default_name(cfg: ExperimentConfig) -> str:
    """bench-<device>-<backbone>-<dtype>: runs in another dtype (bfloat16 on a CPU with native bf16 dot products)
    land beside the float32 ones instead of replacing them."""
    backbone = cfg.model.backbone.split(":", 1)[1] if cfg.model.backbone.startswith("embedded:") else \
        Path(cfg.model.backbone).name
    dtype = str(resolve_dtype(cfg.model.dtype)).removeprefix("torch.")
    return f"bench-{'cuda' if torch.cuda.is_available() else 'cpu'}-{backbone}-{dtype}"


if __name__ == "__main__":
    sys.exit(main())
