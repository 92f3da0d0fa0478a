"""Scoring a task's pairs with a model, and the per-task report (F1 at 0.5 and at a tuned threshold, baselines,
F1 per language). Used by training (validation), `mtl predict` and `mtl evaluate`; `predict_probs_mixed` scores
both tasks in shared batches (one backbone pass per batch), as `benchmarks/bench.py` serves the joint model."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from mtl.data.tasks import TaskData, collate, qi_features
from mtl.encoder import fuse
from mtl.errors import CheckpointError
from mtl.metrics import breakdown, classification_report, majority_baseline, tune_threshold
from mtl.packing import model_inputs, pack, why_not_packable
from mtl.taxonomy import parse_path


@torch.no_grad()
def predict_probs(model, data: TaskData, pad_id: int, batch_size: int, accelerator=None, head: str | None = None,
                  progress: bool = True, row_tokens: int = 128, as_logits: bool = False) -> np.ndarray:
    """P(relevant) for every pair of `data`, in row order, using `head` (default: the task's own head); its logit
    instead with `as_logits` (an ensemble that averages logits needs them unsquashed).

    On a model whose logits prefix-tree rows reproduce (`mtl.packing.why_not_packable`: a rotary decoder pooling
    its last token), a batch holds whole queries, scored as prefix-tree rows of about `row_tokens` tokens that
    compute each query once (`mtl.packing.pack`), as training's shared batching does; otherwise batches are cut
    from rows sorted by length (little padding). With several processes, each scores every N-th batch and the
    results are gathered; the batch list is padded to a multiple of N so every process runs the same number of
    forward passes (ZeRO-3 gathers parameters collectively and would hang otherwise).
    """
    head = head or data.task
    shared = data.queries is not None and why_not_packable(getattr(model, "module", model)) is None
    order = np.lexsort((data.lengths, data.queries)) if shared else np.argsort(data.lengths, kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    padded, mine, rank, world = _share(batches, accelerator)
    device = accelerator.device if accelerator else next(model.parameters()).device
    features = _head_features(data, head, _feature_dim(model, head))
    was_training = model.training
    model.eval()
    scored = []
    for i in tqdm(mine, desc=f"eval {data.task}", disable=not progress or rank != 0, leave=False):
        rows = padded[i]
        batch = pack(data, rows, pad_id, row_tokens) if shared else collate(data, rows, pad_id)
        inputs = model_inputs(batch, device)
        if features is not None:
            inputs["features"] = torch.as_tensor(features[rows], device=device)
        logits = model(task=head, **inputs)
        if i < len(batches):
            scored.append((rows, (logits.float() if as_logits else torch.sigmoid(logits.float())).cpu().numpy()))
    if was_training:
        model.train()
    if world > 1:
        from accelerate.utils import gather_object

        scored = gather_object(scored)
    probs = np.full(len(data), np.nan, dtype=np.float64)
    for rows, p in scored:
        probs[rows] = p
    return probs


def predict_fused(model, data: TaskData, pad_id: int, batch_size: int, stats: list | None, head: str | None = None,
                  row_tokens: int = 128, as_logits: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(`predict_probs` of a saved model on `data`, the model's own logits or None): its own scores where `data`
    carries no sentence-encoder columns, else fused with them by `stats` (the validation standardisation the model
    folder keeps, `mtl.encoder.fuse`). What a run's test and out-of-fold scores and `mtl predict` share."""
    if data.encoder_columns is None:
        return predict_probs(model, data, pad_id, batch_size, head=head, row_tokens=row_tokens,
                             as_logits=as_logits), None
    if stats is None:
        raise CheckpointError("a model trained with model.encoder keeps no fusion statistics for "
                              f"{data.task} (a step checkpoint): score with best/ or final/")
    logits = predict_probs(model, data, pad_id, batch_size, head=head, row_tokens=row_tokens, as_logits=True)
    return fuse(logits, data.encoder_columns, stats, as_logits=as_logits), logits


@torch.no_grad()
def predict_probs_mixed(model, data: dict[str, TaskData], pad_id: int, batch_size: int, accelerator=None,
                        progress: bool = True) -> dict[str, np.ndarray]:
    """P(relevant) for every pair of every task in `data` ({task: TaskData}), each task's in its row order, with
    batches that mix the tasks: all pairs sorted by length, cut into batches, and each batch scored by one backbone
    pass (`MultiTaskClassifier.forward_mixed`), which is how one joint model serves QC and QI together. Pairs
    without their head's features read what they read in `predict_probs`. Sharded over processes like it."""
    tasks = list(data)
    task_of = np.concatenate([np.full(len(data[t]), i) for i, t in enumerate(tasks)])
    row_of = np.concatenate([np.arange(len(data[t])) for t in tasks])
    lengths = np.concatenate([data[t].lengths for t in tasks])
    order = np.argsort(lengths, kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    padded, mine, rank, world = _share(batches, accelerator)
    inner = getattr(model, "module", model)  # DDP / DeepSpeed wrap the model; eval needs no gradient sync
    device = accelerator.device if accelerator else next(model.parameters()).device
    feature_dim = max(_feature_dim(model, "qc"), _feature_dim(model, "qi"))
    own = {t: _head_features(data[t], t, _feature_dim(model, t)) for t in tasks}  # where the batch's own are missing
    was_training = model.training
    model.eval()
    scored = []
    for i in tqdm(mine, desc="eval " + "+".join(tasks), disable=not progress or rank != 0, leave=False):
        items = padded[i]
        width = int(lengths[items].max())
        input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), width), dtype=torch.long)
        features = torch.zeros(len(items), feature_dim)
        for j, item in enumerate(items):
            task_data, row = data[tasks[task_of[item]]], row_of[item]
            ids = task_data.input_ids[row]
            input_ids[j, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[j, :len(ids)] = 1
            width = _feature_dim(model, task_data.task)
            if width:  # each row's task features in its first columns
                source = own[task_data.task] if own[task_data.task] is not None else task_data.features
                features[j, :width] = torch.as_tensor(source[row], dtype=torch.float32)
        is_qc = torch.tensor([tasks[task_of[item]] == "qc" for item in items])
        logits = inner.forward_mixed(input_ids.to(device), attention_mask.to(device), is_qc.to(device),
                                     features.to(device) if feature_dim else None)
        if i < len(batches):
            scored.append((items, torch.sigmoid(logits.float()).cpu().numpy()))
    if was_training:
        model.train()
    if world > 1:
        from accelerate.utils import gather_object

        scored = gather_object(scored)
    probs = {t: np.full(len(data[t]), np.nan, dtype=np.float64) for t in tasks}
    for items, p in scored:
        for item, value in zip(items, p):
            probs[tasks[task_of[item]]][row_of[item]] = value
    return probs


def task_report(data: TaskData, probs: np.ndarray, tune: bool = True, threshold: float | None = None,
                taxonomy=None, group_levels: int = 2) -> dict:
    """Metrics at 0.5 (the paper's argmax), at the threshold tuned for F1 on these records (`tune`), at a
    `threshold` chosen elsewhere (`at_threshold`: the test split at the validation's threshold), and of the
    trivial baselines. QC with the training `taxonomy`: also by how much of each path training saw (`by_seen`), by
    top-level branch and by path depth, at `threshold` (else 0.5)."""
    report = classification_report(data.labels, probs, data.languages, threshold=0.5)
    report["baseline"] = majority_baseline(data.labels)
    if threshold is not None:
        chosen = classification_report(data.labels, probs, data.languages, threshold=threshold)
        report["at_threshold"] = {k: chosen[k] for k in ("f1", "precision", "recall", "threshold",
                                                          "predicted_positive_rate", "f1_by_language")}
    if tune:
        threshold, _ = tune_threshold(data.labels, probs)
        tuned = classification_report(data.labels, probs, data.languages, threshold=threshold)
        report["tuned"] = {k: tuned[k] for k in ("f1", "precision", "recall", "threshold")}
    if taxonomy is not None and data.task == "qc":
        paths = data.records["category_path"].tolist()
        cut = report.get("at_threshold", report)["threshold"]
        report["by_seen"] = breakdown(data.labels, probs, [taxonomy.seen(p, group_levels) for p in paths], cut)
        report["by_branch"] = breakdown(data.labels, probs, [parse_path(p)[0] for p in paths], cut)
        report["by_depth"] = breakdown(data.labels, probs, [len(parse_path(p)) for p in paths], cut)
    return report


def _share(batches: list, accelerator) -> tuple[list, list[int], int, int]:
    """(batches padded to a multiple of the process count, the indices this process scores, rank, world): every
    process runs the same number of forward passes (ZeRO-3 gathers parameters collectively and would hang
    otherwise); the repeated batches are scored and dropped."""
    world, rank = (accelerator.num_processes, accelerator.process_index) if accelerator else (1, 0)
    padded = batches + [batches[-1]] * ((-len(batches)) % world)
    return padded, list(range(rank, len(padded), world)), rank, world


def _head_features(data: TaskData, head: str, width: int) -> np.ndarray | None:
    """What `head` reads beside the pooled vector for `data`'s pairs where their batches do not carry it (None: the
    head reads nothing, or the pairs' own features). A QC head reads zeros where it has no taxonomy features (every
    path as one its priors never saw): for QC pairs made without them, and for QI pairs. A QI head on QC pairs
    (zero-shot) reads the overlap of query and category path; on QI pairs it needs their overlap features, since
    zeros there (no word in common, a query of no words) are no neutral value."""
    if not width or (head == data.task and data.features is not None):
        return None
    if head == "qi" and data.task == "qi":
        raise ValueError("this model's qi_head reads word-overlap features and these QI pairs have none "
                         "(make_task_data with the model's model.qi_features)")
    if head == "qi":
        return qi_features(data.records, data.task, width)
    return np.zeros((len(data), width), dtype=np.float32)


def _feature_dim(model, task: str) -> int:
    inner = getattr(model, "module", model)  # DDP / DeepSpeed wrap the model
    return getattr(inner, f"{task}_feature_dim", 0)
