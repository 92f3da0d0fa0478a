"""One-shot GPU benchmark: training and serving throughput of random-weight Gemma-3 stacks at the 1B and 12B shapes,
per batching, in one process sized for one call of the device tool (about 5 minutes on one H200).

    bash benchmarks/gpu.sh                      # on the GPU machine: results to $OUT, else benchmarks/results
    bash benchmarks/gpu.sh --dry-run            # the same code, tiny model, a few steps (a CPU here), a temp folder
    python benchmarks/gpu_bench.py prepare      # once, on a CPU with the embedded tokenizer: the pairs file

No weights or tokenizer travel. `prepare` writes the sample's training and dev pairs as token ids
(`gpu_pairs.jsonl.gz`): as the trainer tokenizes them (`mtl.train.load_run_data`), and as the reference pipeline of
`bench.py` does (`bench.reference_config`: the tokenizer's pair template, max_length 2048). `run` builds each backbone
from a shape file (`configs/shapes/gemma3-{1b,12b}.json`) with random weights in the trainer's dtype (bfloat16 on
CUDA) on the device itself, and wraps it with LoRA and heads as the trainer does (`mtl.model.wrap_backbone`): random
weights cost what trained ones cost.

Phases, cheapest first; after each one the results (json and md) are rewritten whole, so a run cut off at its time
limit still leaves what it measured, and none starts once `--budget` is nearly spent:

1. matmul peak in the backbone's dtype (`bench.matmul_peak`), again at the end if time is left; MFU is against the
   higher of the two;
2. per shape (1B, then 12B): build; per batching of `--batchings`, warm-up steps and then timed steps of the
   trainer's own step (`mtl.train.train_step`: accelerate's autocast and gradient accumulation, the trainer's
   optimizer, task schedule and sampler): pairs/s, tokens/s, padding, model FLOPs (`bench.model_flops` on the
   counts the step itself returns), MFU, peak memory. `reference` is the paper-style pipeline of `bench.py`: random
   batches padded to the longest pair, with the reference's token ids; one single-task model's step costs what the
   joint model's step on that task costs, so it runs through the same model. A batching this mtl does not know, or
   refuses for the model, is reported as skipped;
3. per shape, inference over the dev pairs of both tasks: `mixed` (one model, both tasks in shared length-sorted
   batches: `predict_probs_mixed`), `shared` (each task as prefix-tree rows: `predict_probs`, what `mtl predict`
   runs) and `reference` (each task in file order, padded to the longest: `bench.score_in_order`), each through the
   model without accelerate's autocast, as a saved model is served.

Token ids are Gemma-3's (262,144 entries); the dry run's tiny model takes them modulo its vocabulary, which keeps
equal prefixes equal.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import gzip
import hashlib
import json
import logging
import os
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from bench import combine_peaks, derive, flop_sizes, matmul_peak, measured, model_flops, score_in_order
from mtl.config import TASKS, load_config
from mtl.data.tasks import TaskData
from mtl.errors import ConfigError
from mtl.io import atomic_write_text
from gpu_tables import format_markdown, format_summary, phase_line
from mtl.measure import Meter, machine
from mtl.overlap import feature_dim
from mtl.packing import why_not_packable

log = logging.getLogger("benchmarks.gpu_bench")

REPO = Path(__file__).resolve().parents[1]
PAIRS_FILE = REPO / "benchmarks" / "gpu_pairs.jsonl.gz"
TINY_SHAPE = {"model_type": "gemma3_text", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
              "sliding_window": 32, "layer_types": ["sliding_attention", "full_attention"]}
"""The dry run's model: the tests' tiny Gemma-3 (tests/conftest.py)."""

SHAPES = {
    "tiny": {"config": TINY_SHAPE, "micro_batch": 8, "global_batch": 16, "eval_batch": 32, "build_seconds": 5},
    "1b": {"config": "configs/shapes/gemma3-1b.json", "micro_batch": 128, "global_batch": 256, "eval_batch": 256,
           "build_seconds": 20},
    "12b": {"config": "configs/shapes/gemma3-12b.json", "micro_batch": 64, "global_batch": 128, "eval_batch": 256,
            "build_seconds": 60},
}
"""Per shape: its config, the trainer's batch and the seconds a build must have left to start. The sample's pairs
are 10-47 tokens, so a micro-batch holds few tokens: as many pairs as the planner (`mtl.plan`) fits at the longest
pair with room to spare (12B: ~50 GiB of activations beside 24 GiB of weights on a 141 GB H200), and the 12B shape
keeps the production config's global batch of 128 (configs/gemma3_12b.yaml)."""

TARGETS = {"train_mfu": 0.35, "inference_pairs_per_s": 500.0, "train_pairs_per_s_vs_reference": 2.0}
"""Issue #19's targets, for the 12B shape (a run without it checks them on its last shape, which says so)."""



def prepare(out: Path, backbone: str) -> dict:
    """Tokenize the sample's training and dev pairs for ours and for the reference into `out` (gzip'd JSON lines: a
    header, then one pair per line). Deterministic: the same files give the same bytes."""
    from bench import REFERENCE_MAX_LENGTH, reference_config
    from mtl.model import build_tokenizer
    from mtl.train import load_run_data

    with tempfile.TemporaryDirectory(prefix="gpu-pairs-") as tmp:
        cfg = load_config(None, [f"model.backbone={backbone}", "data.dev_limit=0", f"data.cache_dir={tmp}"])
        pairs, _ = build_tokenizer(cfg)
        ours = load_run_data(cfg, pairs)
        reference = {}
        for task in TASKS:
            ref_cfg = reference_config(cfg, task, 1, Path(tmp))
            ref_pairs, _ = build_tokenizer(ref_cfg)
            reference[task] = load_run_data(ref_cfg, ref_pairs)
    rows, counts = [], {}
    for split in ("train", "val"):
        for task in TASKS:
            data, ref = getattr(ours, split)[task], getattr(reference[task], split)[task]
            if not np.array_equal(data.records["id"].to_numpy(), ref.records["id"].to_numpy()):
                raise RuntimeError(f"{task} {split}: the reference's records differ from ours")
            for i in range(len(data)):
                row = {"task": task, "split": split, "id": int(data.records["id"].iloc[i]),
                       "language": str(data.languages[i]), "label": int(data.labels[i]),
                       "query": int(data.queries[i]), "ids": list(data.input_ids[i]), "ref_ids": list(ref.input_ids[i])}
                if data.features is not None:
                    row["features"] = [float(f"{x:.6g}") for x in data.features[i]]
                rows.append(row)
            counts[f"{task}_{split}"] = len(data)
    tokenizer = pairs.tokenizer
    header = {"format": 1, "made_by": "python benchmarks/gpu_bench.py prepare", "backbone": backbone,
              "tokenizer_fingerprint": pairs.fingerprint(), "vocab_size": len(tokenizer), "pad_id": pairs.pad_id,
              "reference_max_length": REFERENCE_MAX_LENGTH, "max_length": cfg.data.max_length,
              "qc_feature_dim": ours.priors.n_features if ours.priors else 0, "pairs": counts,
              **({"qi_feature_dim": feature_dim(cfg.model.qi_features)} if cfg.model.qi_features != "none" else {}),
              "data": {k: {"path": getattr(cfg.data, k), "sha256": _sha256(REPO / getattr(cfg.data, k))}
                       for k in ("qc_train", "qi_train", "qc_dev", "qi_dev")}}
    text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in [header, *rows])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(text.encode("utf-8"))
    return header


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_pairs(path: Path, vocab_size: int, dev_limit: int = 0) -> tuple[dict, dict]:
    """The pairs file as `TaskData`: {"ours" | "reference": {"train" | "val": {task: TaskData}}}, and its header.
    Ids at or past `vocab_size` are taken modulo it (the dry run's tiny vocabulary); `dev_limit` keeps the first
    that many dev pairs per task (0: all)."""
    import pandas as pd

    with gzip.open(path, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        rows = [json.loads(line) for line in f]
    out = {"ours": {"train": {}, "val": {}}, "reference": {"train": {}, "val": {}}}
    for split in ("train", "val"):
        for task in TASKS:
            part = [r for r in rows if r["task"] == task and r["split"] == split]
            if split == "val" and dev_limit:
                part = part[:dev_limit]
            records = pd.DataFrame({"id": [r["id"] for r in part], "language": [r["language"] for r in part],
                                    "label": [r["label"] for r in part]})
            features = np.array([r["features"] for r in part], dtype=np.float32) if "features" in part[0] else None
            queries = np.array([r["query"] for r in part])
            for side, key in (("ours", "ids"), ("reference", "ref_ids")):
                ids = [[t % vocab_size for t in r[key]] for r in part]
                out[side][split][task] = TaskData(task, records, ids, features, queries=queries)
    return out, header



class Budget:
    """Wall seconds left to the run: a phase starts only if what it may take fits."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def allows(self, seconds: float) -> bool:
        return self.left() >= seconds

    def says(self) -> str:
        return f"{max(self.left(), 0):.0f} s left"


class Results:
    """The run's figures, rewritten whole to `<name>.json` and `<name>.md` after every phase."""

    def __init__(self, output_dir: Path, name: str, data: dict):
        self.md, self.json, self.data = output_dir / f"{name}.md", output_dir / f"{name}.json", data
        self.start = time.monotonic()

    def write(self) -> None:
        self.data["wall_seconds"] = time.monotonic() - self.start
        update_derived(self.data)
        atomic_write_text(self.json, json.dumps(self.data, indent=1, ensure_ascii=False) + "\n")
        atomic_write_text(self.md, format_markdown(self.data))


def run(args: argparse.Namespace) -> int:
    started = datetime.datetime.now(datetime.timezone.utc)
    budget = Budget(args.budget)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.steps = args.steps or (3 if args.dry_run else 30)
    args.warmup = (1 if args.dry_run else 2) if args.warmup is None else args.warmup
    shapes = args.shapes.split(",") if args.shapes else (["tiny"] if args.dry_run else ["1b", "12b"])
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        raise ConfigError(f"--shapes: unknown {unknown}; known: {', '.join(SHAPES)}")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    name = args.name or ("bench-gpu-dry-run" if args.dry_run else f"bench-gpu-{_slug(_device_name(device))}")
    base = load_config(None, ["model.dtype=auto", "train.nonfinite=skip", "log.tensorboard=false",
                              *args.overrides])
    from mtl.model import resolve_dtype

    dtype = resolve_dtype(base.model.dtype)
    results = Results(output_dir, name, {
        "command": args.command_line, "date": started.isoformat(timespec="seconds"), "wall_seconds": 0.0,
        "dry_run": args.dry_run, "device": device, "gpu": _device_name(device) if device == "cuda" else None,
        "dtype": str(dtype).removeprefix("torch."), "budget_seconds": args.budget, "machine": machine(),
        "pairs_file": {"path": _relative(args.pairs)}, "setup": {
            "batchings": args.batchings.split(","), "inference": args.inference.split(","), "steps": args.steps,
            "warmup_steps": args.warmup, "seconds_per_phase": args.seconds_per_phase,
            "row_tokens": base.train.row_tokens, "lora_r": base.lora.r, "lora_targets": list(base.lora.target_modules),
            "attn_implementation": base.model.attn_implementation,
            "gradient_checkpointing": base.model.gradient_checkpointing, "overrides": args.overrides},
        "matmul_peak": None, "shapes": {}, "targets_shape": "12b" if "12b" in shapes else shapes[-1], "targets": {},
        "skipped": [],
    })
    peak_size = args.peak_size or (8192 if device == "cuda" else 256)
    peak_start = matmul_peak(dtype, device, peak_size, 5)
    results.data["matmul_peak"] = {**combine_peaks(peak_start, peak_start), "end": None}
    results.write()
    log.info("matmul peak: %.2f TFLOP/s (%s, %d³)", peak_start["flops_per_s"] / 1e12, results.data["dtype"], peak_size)

    for shape in shapes:
        run_shape(shape, base, args, device, budget, results)
    if budget.allows(10):
        results.data["matmul_peak"] = combine_peaks(peak_start, matmul_peak(dtype, device, peak_size, 5))
    else:
        results.data["skipped"].append("matmul peak at the end: no time left")
    results.write()
    print(format_summary(results.data))
    print(f"wrote {results.md} and {results.json}")
    return 0


def run_shape(shape: str, base, args, device: str, budget: Budget, results: Results) -> None:
    """Build one shape's model and measure every batching and serving mode on it, writing after each phase."""
    spec = SHAPES[shape]
    entry = results.data["shapes"].setdefault(shape, {"training": {}, "inference": {}})
    if not budget.allows(spec["build_seconds"] + args.seconds_per_phase):
        results.data["skipped"].append(f"shape {shape}: {budget.says()}")
        results.write()
        return
    config = spec["config"] if isinstance(spec["config"], dict) else json.loads((REPO / spec["config"]).read_text())
    data, header = read_pairs(args.pairs, config["vocab_size"], args.dev_limit)
    results.data["pairs_file"].update({k: header[k] for k in ("backbone", "tokenizer_fingerprint", "pairs", "data")})
    cfg = derive(base, {"train.micro_batch_size": args.micro_batch or spec["micro_batch"],
                        "train.global_batch_size": args.global_batch or spec["global_batch"],
                        "eval.batch_size": args.eval_batch or spec["eval_batch"]})
    started = time.monotonic()
    try:
        model, accelerator = build(cfg, config, header, data["ours"]["train"], device)
    except Exception as err:  # a failed shape must not cost the run: the next one may still fit
        entry["error"] = _error(err)
        results.write()
        return
    entry.update(describe(cfg, config, model, time.monotonic() - started, data))
    pad_id = header["pad_id"] % config["vocab_size"]
    results.write()
    log.info("%s: built in %.1f s, %s parameters", shape, entry["build_seconds"], f"{entry['parameters']['total']:,}")

    for batching in args.batchings.split(","):
        if not budget.allows(args.seconds_per_phase + 10):
            entry["training"][batching] = {"skipped": budget.says()}
            continue
        entry["training"][batching] = train_phase(model, accelerator, cfg, data, batching, pad_id, args, device,
                                                  budget)
        results.write()
        log.info("%s train %s: %s", shape, batching, phase_line(entry["training"][batching]))

    model = accelerator.unwrap_model(model, keep_fp32_wrapper=False)  # served as a saved model is: no autocast
    accelerator.free_memory()
    for mode in args.inference.split(","):
        if not budget.allows(args.seconds_per_phase + 10):
            entry["inference"][mode] = {"skipped": budget.says()}
            continue
        entry["inference"][mode] = serve_phase(model, cfg, data, mode, pad_id, device)
        results.write()
        log.info("%s inference %s: %s", shape, mode, phase_line(entry["inference"][mode]))
    del model, accelerator
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def build(cfg, config: dict, header: dict, train: dict, device: str):
    """A random-weight Gemma-3 text stack of `config` built on `device` in the trainer's dtype, wrapped with LoRA and
    heads as the trainer wraps a loaded one, heads at the class prior, prepared by the trainer's accelerator."""
    from transformers import AutoModel

    from mtl.model import resolve_dtype, wrap_backbone
    from mtl.train import build_accelerator

    accelerator = build_accelerator(cfg)
    torch.manual_seed(cfg.train.seed)
    with torch.device(device):  # weights are drawn where they live: a 12B stack never passes through host memory
        backbone = AutoModel.from_config(backbone_config(config, header["pad_id"]),
                                         dtype=resolve_dtype(cfg.model.dtype),
                                         attn_implementation=cfg.model.attn_implementation)
    model = wrap_backbone(cfg, backbone.to(device), header["qc_feature_dim"], "decoder",
                          qi_feature_dim=header.get("qi_feature_dim", 0))
    model.init_heads({t: float(d.labels.mean()) for t, d in train.items()})
    return accelerator.prepare(model), accelerator


def backbone_config(config: dict, pad_id: int):
    """The Hugging Face config of a shape (its `model_type` picks the class: Gemma3TextConfig)."""
    from transformers import AutoConfig

    return AutoConfig.for_model(**{**config, "pad_token_id": pad_id % config["vocab_size"]})


def describe(cfg, config: dict, model, seconds: float, data: dict) -> dict:
    """What a shape's figures depend on: its sizes, the trainer's batch, FLOP model sizes and the memory planner's
    estimate for the longest pair of the data (to set against the measured peaks)."""
    from mtl.model import count_parameters
    from mtl.plan import GIB, Shape, plan

    bare = model.module if hasattr(model, "module") else model
    longest = max(int(d.lengths.max()) for side in data.values() for d in side["train"].values())
    shape = Shape(**{f: config.get(f) for f in Shape.__dataclass_fields__})
    estimate = plan(derive(cfg, {"data.max_length": longest}), shape, gpus=1, gpu_memory_gib=1e6, overhead_gib=0)
    return {"config": {k: v for k, v in config.items() if k != "layer_types"}, "build_seconds": seconds,
            "parameters": count_parameters(bare), "flop_sizes": flop_sizes(bare, causal=True),
            "micro_batch_size": cfg.train.micro_batch_size, "global_batch_size": cfg.train.global_batch_size,
            "eval_batch_size": cfg.eval.batch_size, "longest_pair": longest,
            "planner_estimate_gib": {"total": estimate["total_bytes"] / GIB,
                                     **{k: v / GIB for k, v in estimate["bytes"].items()}}}


def train_phase(model, accelerator, cfg, data: dict, batching: str, pad_id: int, args, device: str,
                budget: Budget) -> dict:
    """Warm-up steps, then timed steps of the trainer's `train_step` with `batching`, until `args.steps` or the
    phase's seconds run out. `reference` is random batches of the reference's token ids."""
    from mtl.optim import build_optimizer
    from mtl.packing import resolve_batching
    from mtl.sampling import TaskStreams
    from mtl.train import TrainState, draw_step, train_step

    side, name = ("reference", "random") if batching == "reference" else ("ours", batching)
    try:
        cfg = derive(cfg, {"train.batching": name})
        bare = accelerator.unwrap_model(model)
        resolved = resolve_batching(name, bare)
    except ConfigError as err:  # a batching this mtl does not know, or refuses for this model
        return {"skipped": str(err)}
    train = data[side]["train"]
    started = time.monotonic()
    try:
        optimizer = build_optimizer(bare, cfg.train.lr, cfg.train.head_lr, cfg.train.weight_decay)
        model, optimizer = accelerator.prepare(model, optimizer)
        streams = TaskStreams({t: d.lengths for t, d in train.items()}, cfg.train.global_batch_size,
                              cfg.train.seed, resolved, {t: d.queries for t, d in train.items()})
        sizes = {t: len(d) for t, d in train.items()}
        attention = (True, getattr(bare.backbone.get_base_model().config, "sliding_window", 0) or 0)

        def step(index: int, state: TrainState) -> None:
            task, micro_batches = draw_step(index, sizes, streams, cfg, accelerator)
            step_start = time.perf_counter()
            _, counts = train_step(model, train[task], micro_batches, optimizer, accelerator, cfg, state, pad_id,
                                   resolved, attention)
            state.add_step(task, time.perf_counter() - step_start, counts)

        with Meter(device) as meter:
            warm = TrainState()
            for index in range(args.warmup):
                step(index, warm)
            _sync(device)
            state, start = TrainState(), time.perf_counter()
            cap = min(args.seconds_per_phase, budget.left() - 10)
            while state.step < args.steps and (state.step == 0 or time.perf_counter() - start < cap):
                step(args.warmup + state.step, state)
            _sync(device)
            seconds = time.perf_counter() - start
        flops = model_flops(state.computed, state.full_pairs, state.sliding_pairs, flop_sizes(bare, causal=True))
        out = measured(state.step, state.pairs, state.tokens, state.computed, state.slots, seconds, flops, meter, {})
        out.pop("f1")
        out.update({"batching": resolved, "token_ids": side, "warmup_steps": args.warmup,
                    "skipped_batches": state.skipped_batches + warm.skipped_batches,
                    "phase_seconds": time.monotonic() - started})
        return out
    except Exception as err:  # out of memory, say: record it and go on to the next phase
        return {"error": _error(err), "phase_seconds": time.monotonic() - started}
    finally:
        optimizer = None  # this frame's reference too, so that the collection below frees AdamW's states
        accelerator.free_memory()
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()


def serve_phase(model, cfg, data: dict, mode: str, pad_id: int, device: str) -> dict:
    """Pairs/s of scoring both tasks' dev pairs in one serving mode, after one warm-up batch per task."""
    from mtl.evaluate import predict_probs, predict_probs_mixed

    side = "reference" if mode == "reference" else "ours"
    val = data[side]["val"]
    batch = cfg.eval.batch_size

    def score(parts: dict) -> None:
        if mode == "mixed":
            predict_probs_mixed(model, parts, pad_id, batch, progress=False)
        elif mode == "shared":
            for d in parts.values():
                predict_probs(model, d, pad_id, batch, progress=False, row_tokens=cfg.train.row_tokens)
        else:
            for d in parts.values():
                score_in_order(model, d, pad_id, batch)

    if mode not in ("mixed", "shared", "reference"):
        return {"skipped": f"unknown serving mode {mode!r}: mixed, shared or reference"}
    if mode == "shared" and why_not_packable(model):  # predict_probs would fall back to padded batches unsaid
        return {"skipped": f"shared rows: this model {why_not_packable(model)}"}
    started = time.monotonic()
    try:
        with Meter(device) as meter:
            score({t: _head(d, batch) for t, d in val.items()})
            _sync(device)
            start = time.perf_counter()
            score(val)
            _sync(device)
            seconds = time.perf_counter() - start
        pairs, tokens = sum(len(d) for d in val.values()), sum(int(d.lengths.sum()) for d in val.values())
        return {"token_ids": side, "pairs": pairs, "tokens": tokens, "seconds": seconds, "pairs_per_s": pairs / seconds,
                "tokens_per_s": tokens / seconds, "peak_memory_bytes": meter.bytes,
                "phase_seconds": time.monotonic() - started}
    except Exception as err:
        return {"error": _error(err), "phase_seconds": time.monotonic() - started}
    finally:
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()


def _head(data: TaskData, n: int) -> TaskData:
    """The first `n` pairs of `data` (the warm-up)."""
    n = min(n, len(data))
    features = None if data.features is None else data.features[:n]
    queries = None if data.queries is None else data.queries[:n]
    return TaskData(data.task, data.records.iloc[:n], data.input_ids[:n], features, queries=queries)



def update_derived(r: dict) -> None:
    """MFU against the best peak measured so far, and the targets on the shapes measured so far."""
    peak = (r.get("matmul_peak") or {}).get("flops_per_s")
    for entry in r["shapes"].values():
        for p in entry.get("training", {}).values():
            if "flops_per_s" in p and peak:
                p["mfu"] = p["flops_per_s"] / peak
    entry = r["shapes"].get(r["targets_shape"], {})
    train = {k: p for k, p in entry.get("training", {}).items() if "mfu" in p}
    ours = {k: p for k, p in train.items() if k != "reference"}
    serve = {k: p for k, p in entry.get("inference", {}).items() if "pairs_per_s" in p and k != "reference"}
    reference = train.get("reference", {}).get("examples_per_s")
    candidates = {  # (each candidate's value, ...) per target; none while nothing it needs is measured
        "train_mfu": {k: p["mfu"] for k, p in ours.items()},
        "inference_pairs_per_s": {k: p["pairs_per_s"] for k, p in serve.items()},
        "train_pairs_per_s_vs_reference": {k: p["examples_per_s"] / reference for k, p in ours.items()}
        if reference else {},
    }
    r["targets"] = {}
    for key, target in TARGETS.items():
        values = candidates[key]
        best = max(values, key=values.get) if values else None
        r["targets"][key] = {"target": target, "best": best, "value": values[best] if best else None,
                             "met": values[best] >= target if best else None}


def _error(err: Exception) -> dict:
    log.error("%s", "".join(traceback.format_exception(err)))
    return {"type": type(err).__name__, "message": str(err).splitlines()[0][:300] if str(err) else type(err).__name__}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else "cpu"


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python benchmarks/gpu_bench.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", parents=[common],
                            help="tokenize the sample's pairs into the pairs file (CPU, once)")
    p.add_argument("--out", type=Path, default=PAIRS_FILE, help="default: %(default)s")
    p.add_argument("--backbone", default="embedded:gemma3-270m", help="whose tokenizer (default: %(default)s)")
    r = commands.add_parser("run", parents=[common], help="measure (bash benchmarks/gpu.sh runs this)")
    r.add_argument("--dry-run", action="store_true",
                   help="the tiny model, a few steps, on whatever device there is (a CPU here)")
    r.add_argument("--shapes", help=f"comma-separated, of {', '.join(SHAPES)} (default: 1b,12b; dry run: tiny)")
    r.add_argument("--batchings", default="reference,bucket,shared,packed",
                   help="training batchings in order; `reference` is the paper-style pipeline (default: %(default)s)")
    r.add_argument("--inference", default="mixed,shared,reference", help="serving modes (default: %(default)s)")
    r.add_argument("--budget", type=float, default=280.0, help="seconds; no phase starts past it (default: "
                                                               "%(default)s)")
    r.add_argument("--steps", type=int, default=0, help="timed steps per batching at most (default: 30; dry run: 3)")
    r.add_argument("--warmup", type=int, help="untimed steps first (default: 2; dry run: 1)")
    r.add_argument("--seconds-per-phase", type=float, default=20.0,
                   help="timed seconds per batching at most; a phase starts only with this much time left "
                        "(default: %(default)s)")
    r.add_argument("--micro-batch", type=int, default=0, help="pairs per forward pass (default: per shape)")
    r.add_argument("--global-batch", type=int, default=0, help="pairs per optimizer step (default: per shape)")
    r.add_argument("--eval-batch", type=int, default=0, help="pairs per serving batch (default: per shape)")
    r.add_argument("--dev-limit", type=int, default=0, help="dev pairs per task to serve (default: all)")
    r.add_argument("--peak-size", type=int, default=0, help="matmul side (default: 8192 on CUDA, 256 on a CPU)")
    r.add_argument("--pairs", type=Path, default=PAIRS_FILE, help="default: %(default)s")
    r.add_argument("--output-dir", default=os.environ.get("OUT") or "benchmarks/results",
                   help="default: $OUT, else benchmarks/results")
    r.add_argument("--name", help="file name stem (default: bench-gpu-<device>, bench-gpu-dry-run)")
    r.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (lora.r=8, ...)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/gpu_bench.py ARGS`; the results record that command line, whoever calls this."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.command_line = shlex.join(["python", "benchmarks/gpu_bench.py", *argv])
    try:
        if args.command == "prepare":
            header = prepare(args.out, args.backbone)
            print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.2f} MiB): {header['pairs']}")
            return 0
        return run(args)
    except ConfigError as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
