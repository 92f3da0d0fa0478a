"""Scoring a task's pairs with a model, and the per-task report (F1 at 0.5 and at a tuned threshold, baselines,
F1 per language). Used by training (validation), `mtl predict` and `mtl evaluate`."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from mtl.data.tasks import TaskData, collate
from mtl.metrics import classification_report, majority_baseline, tune_threshold


@torch.no_grad()
def predict_probs(model, data: TaskData, pad_id: int, batch_size: int, accelerator=None, head: str | None = None,
                  progress: bool = True) -> np.ndarray:
    """P(relevant) for every pair of `data`, in row order, using `head` (default: the task's own head).

    Batches are cut from rows sorted by length (little padding). With several processes, each scores every
    N-th batch and the results are gathered; the batch list is padded to a multiple of N so every process runs the
    same number of forward passes (ZeRO-3 gathers parameters collectively and would hang otherwise).
    """
    head = head or data.task
    order = np.argsort(data.lengths, kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    world, rank = (accelerator.num_processes, accelerator.process_index) if accelerator else (1, 0)
    padded = batches + [batches[-1]] * ((-len(batches)) % world)
    mine = list(range(rank, len(padded), world))
    device = accelerator.device if accelerator else next(model.parameters()).device
    was_training = model.training
    model.eval()
    scored = []
    for i in tqdm(mine, desc=f"eval {data.task}", disable=not progress or rank != 0, leave=False):
        batch = collate(data, padded[i], pad_id)
        features = batch.get("features")
        if head == "qc" and features is None and _qc_feature_dim(model):
            features = torch.zeros(len(padded[i]), _qc_feature_dim(model))
        logits = model(task=head, input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device),
                       features=None if features is None else features.to(device))
        if i < len(batches):
            scored.append((padded[i], torch.sigmoid(logits.float()).cpu().numpy()))
    if was_training:
        model.train()
    if world > 1:
        from accelerate.utils import gather_object

        scored = gather_object(scored)
    probs = np.full(len(data), np.nan, dtype=np.float64)
    for rows, p in scored:
        probs[rows] = p
    return probs


def task_report(data: TaskData, probs: np.ndarray, tune: bool = True) -> dict:
    """Metrics at 0.5 (the paper's argmax), at the F1-tuned threshold, and of the trivial baselines."""
    report = classification_report(data.labels, probs, data.languages, threshold=0.5)
    report["baseline"] = majority_baseline(data.labels)
    if tune:
        threshold, _ = tune_threshold(data.labels, probs)
        tuned = classification_report(data.labels, probs, data.languages, threshold=threshold)
        report["tuned"] = {k: tuned[k] for k in ("f1", "precision", "recall", "threshold")}
    return report


def _qc_feature_dim(model) -> int:
    inner = getattr(model, "module", model)  # DDP / DeepSpeed wrap the model
    return getattr(inner, "qc_feature_dim", 0)
