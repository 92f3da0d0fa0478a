"""Memory planner: what one GPU holds for a LoRA run of a config, before anything is loaded.

    mtl plan --config configs/gemma3_12b.yaml --shape configs/shapes/gemma3-12b.json --gpus 4 --gpu-memory 80

Per process: the frozen backbone in `model.dtype`, the adapters and heads (float32), their gradients and AdamW's two
moments (float32, trainable parameters only: DeepSpeed's own estimators assume every parameter trains, which
overstates a LoRA run by the optimizer state of the frozen 99%), and the activations kept for backward at
`train.micro_batch_size` x `data.max_length`. ZeRO-2 shards gradients and optimizer states over the GPUs, ZeRO-3 the
parameters too (the frozen ones included); DDP keeps everything whole.

Activations per token and layer, in the backbone's dtype, are the tensors a Gemma-style block keeps for backward:
the residual input and four norm outputs (5 h), queries and attention output (2 H d), keys and values (2 K d), the
attention projection's output (h), the MLP's gate, up, activation and product (4 i), and per LoRA-wrapped layer its
dropout-masked input (the layer's input width, float32). Attention scores are not kept (sdpa computes them in
blocks). With `model.gradient_checkpointing` only each layer's input is kept, plus one layer's tensors while it is
recomputed. The pooled vector and heads are negligible. What the estimate leaves out: allocator fragmentation,
CUDA context and library workspaces (a fixed `--overhead`, default 2 GiB), and temporary buffers inside kernels.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from mtl.config import ExperimentConfig
from mtl.errors import ConfigError
from mtl.io import read_json

GIB = 1024 ** 3
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Shape:
    """The sizes of a decoder stack the planner needs (Hugging Face config names)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int

    @classmethod
    def read(cls, path: str | Path) -> Shape:
        """From a Hugging Face `config.json` (a multimodal one's `text_config` is the text stack)."""
        config = read_json(path)  # a file, UTF-8, one JSON object: else a DataError naming it
        config = config.get("text_config", config)
        if not isinstance(config, dict):
            raise ConfigError(f"{path}: field 'text_config': expected an object, got {type(config).__name__}")

        def positive(name):
            value = config.get(name)
            return isinstance(value, int) and not isinstance(value, bool) and value >= 1

        if "head_dim" not in config and positive("hidden_size") and positive("num_attention_heads"):
            config = {**config, "head_dim": config["hidden_size"] // config["num_attention_heads"]}
        missing = [f for f in cls.__dataclass_fields__ if not positive(f)]
        if missing:
            raise ConfigError(f"{path}: field {missing[0]!r}: missing or not a positive integer")
        return cls(**{f: config[f] for f in cls.__dataclass_fields__})

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each projection of one layer."""
        h, i, q, kv = self.hidden_size, self.intermediate_size, self.num_attention_heads * self.head_dim, \
            self.num_key_value_heads * self.head_dim
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


def shape_of(cfg: ExperimentConfig, shape_file: str | None) -> Shape:
    """`shape_file`, else the backbone's own config.json (a local folder, or the embedded model once converted)."""
    if shape_file:
        return Shape.read(shape_file)
    from mtl.backbone import EMBEDDED, resolve

    folder = Path(cfg.model.backbone).expanduser()
    if cfg.model.backbone in EMBEDDED or (folder / "config.json").is_file() or cfg.model.gguf_file:
        return Shape.read(resolve(cfg.model.backbone, cfg.model.gguf_file) / "config.json")
    raise ConfigError(f"model.backbone={cfg.model.backbone!r} has no config.json here: give --shape (e.g. "
                      "configs/shapes/gemma3-12b.json)")


def count_parameters(shape: Shape, layers: int | None = None) -> int:
    """Embedding, projections and norms of a Gemma-3 text stack (tied output embedding: counted once)."""
    layers = shape.num_hidden_layers if layers is None else layers
    per_layer = sum(a * b for a, b in shape.linear_shapes().values()) + 4 * shape.hidden_size + 2 * shape.head_dim
    return shape.vocab_size * shape.hidden_size + layers * per_layer + shape.hidden_size


def plan(cfg: ExperimentConfig, shape: Shape, gpus: int, gpu_memory_gib: float, overhead_gib: float = 2.0,
         zero: int | None = None) -> dict:
    """Per-GPU bytes of each part, their total, whether it fits `gpu_memory_gib`, and the largest micro-batch that
    does. `zero`: 0 (DDP), 2 or 3; default: read from `train.deepspeed`'s file name."""
    if gpus < 1:
        raise ConfigError(f"--gpus must be at least 1, got {gpus}")
    if not (math.isfinite(gpu_memory_gib) and gpu_memory_gib > 0):
        raise ConfigError(f"--gpu-memory must be a finite number of GiB above 0, got {gpu_memory_gib}")
    if not (math.isfinite(overhead_gib) and overhead_gib >= 0):
        raise ConfigError(f"--overhead must be a finite number of GiB, at least 0, got {overhead_gib}")
    zero = stage_of(cfg) if zero is None else zero
    layers = cfg.model.num_layers or shape.num_hidden_layers
    width = 2 if cfg.model.dtype in ("bfloat16", "auto") else 4  # auto is bfloat16 on CUDA
    targets = [t for t in cfg.lora.target_modules if t in PROJECTIONS]
    lora = layers * sum(cfg.lora.r * sum(shape.linear_shapes()[t]) for t in targets)
    heads = 2 * (shape.hidden_size + 1) + 4 * shape.hidden_size  # two heads and their LayerNorms
    trainable = lora + heads
    frozen = count_parameters(shape, layers)
    shard_params, shard_states = (gpus if zero == 3 else 1), (gpus if zero >= 2 else 1)
    fixed = {"frozen weights": frozen * width / shard_params,
             "adapters and heads": trainable * 4 / shard_params,
             "gradients": trainable * 4 / shard_states,
             "optimizer states": trainable * 8 / shard_states,
             "overhead": overhead_gib * GIB}
    per_sample = activation_bytes(shape, layers, cfg.data.max_length, width, targets,
                                  cfg.model.gradient_checkpointing)
    batch = cfg.train.micro_batch_size
    parts = {**fixed, "activations": per_sample * batch}
    total = sum(parts.values())
    room = gpu_memory_gib * GIB - sum(fixed.values())
    return {"gpus": gpus, "zero": zero, "layers": layers, "dtype_bytes": width, "micro_batch_size": batch,
            "max_length": cfg.data.max_length, "gradient_checkpointing": cfg.model.gradient_checkpointing,
            "parameters": {"frozen": frozen, "trainable": trainable}, "bytes": parts, "total_bytes": total,
            "gpu_bytes": gpu_memory_gib * GIB, "fits": total <= gpu_memory_gib * GIB,
            "largest_micro_batch": max(int(room // per_sample), 0), "activation_bytes_per_sample": per_sample}


def activation_bytes(shape: Shape, layers: int, length: int, width: int, targets: list[str],
                     checkpointing: bool) -> float:
    """Bytes kept for backward per sample of `length` tokens (see the module doc)."""
    h, i, d = shape.hidden_size, shape.intermediate_size, shape.head_dim
    per_token = width * (6 * h + 2 * shape.num_attention_heads * d + 2 * shape.num_key_value_heads * d + 4 * i) + \
        4 * sum(shape.linear_shapes()[t][0] for t in targets)
    if checkpointing:
        return length * (layers * width * h + per_token)
    return length * layers * per_token


def stage_of(cfg: ExperimentConfig) -> int:
    name = Path(cfg.train.deepspeed).name if cfg.train.deepspeed else ""
    if not name:
        return 0
    if "zero3" in name or "zero_3" in name:
        return 3
    if "zero2" in name or "zero_2" in name:
        return 2
    try:
        return int(json.loads(Path(cfg.train.deepspeed).read_text()).get("zero_optimization", {}).get("stage", 0))
    except (OSError, ValueError) as err:
        raise ConfigError(f"train.deepspeed: cannot read the ZeRO stage from {cfg.train.deepspeed} ({err})") from None


def format_plan(p: dict) -> str:
    engine = {0: "DDP (nothing sharded)", 2: "ZeRO-2 (gradients, optimizer states sharded)",
              3: "ZeRO-3 (parameters, gradients, optimizer states sharded)"}[p["zero"]]
    lines = [f"Per GPU, {p['gpus']} GPU(s), {engine}; {p['layers']} layers, {p['dtype_bytes']}-byte weights, "
             f"micro-batch {p['micro_batch_size']} x {p['max_length']} tokens, gradient checkpointing "
             f"{'on' if p['gradient_checkpointing'] else 'off'}; {p['parameters']['frozen']:,} frozen and "
             f"{p['parameters']['trainable']:,} trainable parameters.", "", "| part | GiB |", "|---|---:|"]
    lines += [f"| {name} | {value / GIB:.2f} |" for name, value in p["bytes"].items()]
    verdict = "fits" if p["fits"] else "does NOT fit"
    lines += [f"| **total** | **{p['total_bytes'] / GIB:.2f}** |", "",
              f"{verdict} in {p['gpu_bytes'] / GIB:g} GiB; the largest micro-batch that fits: "
              f"{p['largest_micro_batch']} ({p['activation_bytes_per_sample'] / GIB * 1024:.1f} MiB of activations "
              "per sample)."]
    if p["largest_micro_batch"] == 0:
        lines.append("Not even one sample fits: shard more (ZeRO-3, more GPUs) or turn on gradient checkpointing.")
    return "\n".join(lines)
