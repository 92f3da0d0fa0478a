"""Padding-free packing for pair classification: several tokenized pairs share a row, attention stays within each
pair, and each pair gets one logit from its own last token.

    batch = pack(data, rows, pad_id, row_length=128)
    logits = packed_logits(model, data.task, batch)     # equals model(task, **collate(data, rows)) in eval mode

Pairs are spread over rows of about `row_length` tokens (longest first onto the least-filled row); `position_ids`
restart at 0 for every pair (and for the padding at the end of a row); the masks are 4D and block-diagonal causal,
one per layer type for models that take a mapping (Gemma-3: `full_attention`, and `sliding_attention` with the
window applied to within-pair distances), so a packed pair sees exactly what it sees alone. They are built here
rather than left to transformers' detection of packed `position_ids`, which is skipped whenever the model makes a
KV cache (Gemma-3 in eval mode does). `sdpa` and `eager` kernels, decoders with last-token pooling and rotary
position embeddings (tests/test_packing.py checks packed logits against padded ones).

Rotary only: with rotary embeddings attention depends on within-pair distances alone, so a packed pair's logit is
right whatever position it starts at, and the packed-vs-padded test cannot tell whether positions restart per pair.
With absolute (learned, sinusoidal) or ALiBi-style encodings a restart bug would change the logits and no test here
covers them, so `packed_logits` refuses them.

`mtl bench` measures it against length bucketing; the trainer does not use it (benchmarks/results/ says why).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mtl.data.tasks import TaskData
from mtl.train import backward_and_step


def pack(data: TaskData, rows, pad_id: int, row_length: int) -> dict:
    """Tensors for `rows` of one task packed into ceil(tokens / row_length) rows: longest pair first, each onto the
    least-filled row, so the rows come out nearly equal and little is left to pad.

    Returns `input_ids` and `position_ids` [n_rows, width], `row` and `last` (where pair i's last token is, in the
    order of `rows`), `labels`/`features` in the order of `rows`, and `tokens` (real tokens)."""
    rows = np.asarray(rows)
    lengths = data.lengths[rows]
    fill = [0] * max(1, -(-int(lengths.sum()) // row_length))
    place = np.empty(len(rows), dtype=np.int64)
    start = np.empty(len(rows), dtype=np.int64)
    for i in np.argsort(-lengths, kind="stable"):
        target = int(np.argmin(fill))
        place[i], start[i] = target, fill[target]
        fill[target] += int(lengths[i])
    width = max(fill)
    input_ids = torch.full((len(fill), width), pad_id, dtype=torch.long)
    # Padding at a row's end counts 0, 1, ... as well: it becomes a segment of its own, so no real token attends to
    # it and no query row of the mask is empty (an all-masked row gives NaN in sdpa, which would leak into the
    # gradients through 0 * NaN).
    position_ids = torch.arange(width).repeat(len(fill), 1)
    for r, used in enumerate(fill):
        position_ids[r, used:] = torch.arange(width - used)
    for i, row in enumerate(rows):
        ids = data.input_ids[row]
        input_ids[place[i], start[i]:start[i] + len(ids)] = torch.tensor(ids, dtype=torch.long)
        position_ids[place[i], start[i]:start[i] + len(ids)] = torch.arange(len(ids))
    batch = {"task": data.task, "input_ids": input_ids, "position_ids": position_ids,
             "row": torch.as_tensor(place), "last": torch.as_tensor(start + lengths - 1),
             "rows": torch.as_tensor(rows, dtype=torch.long), "tokens": int(lengths.sum())}
    if "label" in data.records:
        batch["labels"] = torch.as_tensor(data.labels[rows], dtype=torch.float32)
    if data.features is not None:
        batch["features"] = torch.as_tensor(data.features[rows], dtype=torch.float32)
    return batch


def is_rotary(backbone) -> bool:
    """Whether `backbone` encodes positions with rotary embeddings (a `*RotaryEmbedding` module: Gemma, Llama,
    Qwen, Mistral, ...). A rotary model applied through functions only reads as not rotary: refused, never wrong."""
    return any("rotary" in type(module).__name__.lower() for module in backbone.modules())


def packed_logits(model, task: str, batch: dict) -> torch.Tensor:
    """One logit per packed pair, in the order of the rows given to `pack`: the backbone once over the packed rows,
    then the same pooling, dropout and head as `MultiTaskClassifier.forward`."""
    if model.pooling != "last":
        raise ValueError(f"packing needs last-token pooling (a decoder), this model pools {model.pooling!r}")
    base = model.backbone.get_base_model()
    if not is_rotary(base):
        raise ValueError(f"packing supports rotary position embeddings only; {type(base).__name__} encodes positions "
                         "otherwise, and packed positions are only verified for rotary models (see mtl.packing)")
    device = next(model.parameters()).device
    position_ids = batch["position_ids"].to(device)
    hidden = model.backbone(input_ids=batch["input_ids"].to(device), position_ids=position_ids,
                            attention_mask=packed_masks(position_ids, base.config, base.dtype),
                            use_cache=False).last_hidden_state
    head = model.head(task)
    pooled = model.dropout(hidden[batch["row"].to(device), batch["last"].to(device)].to(head.weight.dtype))
    if task == "qc" and model.qc_feature_dim:
        if "features" not in batch:
            raise ValueError("this model's qc_head reads taxonomy features: the batch has none")
        pooled = torch.cat([pooled, batch["features"].to(device, pooled.dtype)], dim=-1)
    return head(pooled).squeeze(-1)


def packed_masks(position_ids: torch.Tensor, config, dtype: torch.dtype):
    """Block-diagonal causal masks [rows, 1, width, width] for packed rows whose pairs start where position is 0:
    boolean (True = attend) for sdpa, additive for eager; a mapping per layer type when the model has several."""
    segment = (position_ids == 0).cumsum(-1)
    allowed = (segment[:, :, None] == segment[:, None, :]) & torch.ones(
        position_ids.shape[1], position_ids.shape[1], dtype=torch.bool, device=position_ids.device).tril()
    distance = position_ids[:, :, None] - position_ids[:, None, :]  # within a pair: query position - key position
    kinds = {"full_attention": allowed}
    if getattr(config, "sliding_window", None):
        kinds["sliding_attention"] = allowed & (distance < config.sliding_window)  # transformers' window convention
    implementation = config._attn_implementation
    if implementation not in ("sdpa", "eager"):
        raise ValueError(f"packing builds sdpa/eager masks; this model uses {implementation!r}")
    if implementation == "eager":
        kinds = {k: torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(~m, torch.finfo(dtype).min)
                 for k, m in kinds.items()}
    kinds = {k: m[:, None] for k, m in kinds.items()}
    layer_types = getattr(config, "layer_types", None)
    if not layer_types:
        return kinds["full_attention"]
    unknown = set(layer_types) - set(kinds)
    if unknown:
        raise ValueError(f"packing has no mask for layer types {sorted(unknown)}")
    return {t: kinds[t] for t in set(layer_types)}


def packed_train_step(model, data: TaskData, micro_batches, optimizer, accelerator, cfg, pad_id: int,
                      row_length: int) -> tuple[float, list[tuple[int, int]]]:
    """`mtl.train.train_step` with each micro-batch packed: forward, loss, backward, clip and step the same way.
    Returns the mean loss and the (rows, width) of every packed micro-batch (what was computed). Single process:
    the packed forward goes around the prepared model's `forward`, which DDP would need to see."""
    losses, shapes = [], []
    for rows in micro_batches:
        batch = pack(data, rows, pad_id, row_length)
        shapes.append(tuple(batch["input_ids"].shape))
        with accelerator.accumulate(model):
            logits = packed_logits(accelerator.unwrap_model(model), data.task, batch)
            loss = F.binary_cross_entropy_with_logits(logits.float(), batch["labels"].to(accelerator.device))
            backward_and_step(model, loss, optimizer, accelerator, cfg)
        losses.append(loss.detach().float())
    return float(torch.stack(losses).mean()), shapes
