"""The optimizer: AdamW with one parameter group for the shared adapter and one per task head, of which only the
groups a step trains take an update.

A step trains one task. Without DeepSpeed the other head gets no gradient and torch's AdamW leaves it alone; ZeRO
hands it a zero gradient instead, and AdamW would still move it along its old momentum, decay its moments and
advance its step count. So each step names its active groups (`activate`) and the optimizer steps only those, on
every engine: the idle head's weights and optimizer state stay exactly as they were. A skipped step (a non-finite
loss under `train.nonfinite=skip`) activates no group, so nothing moves and no state advances.

The groups are filtered by torch's own optimizer step hooks rather than a subclass: DeepSpeed's ZeRO refuses an
optimizer whose type is not one it knows, and it steps the base optimizer group by group (ZeRO-1/2) or sub-group
by sub-group (ZeRO-3), both through `optimizer.step()`, where the hooks run.
"""

from __future__ import annotations

import torch

from mtl.model import HEAD_PREFIXES


def build_optimizer(model, lr: float, head_lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over trainable weights only: the adapter at `lr`, each task's freshly initialised head (and norm) at
    `head_lr` in a group of its own (`group["task"]`; the adapter's is "")."""
    groups = {"": []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            task = name.split("_", 1)[0] if name.startswith(HEAD_PREFIXES) else ""
            groups.setdefault(task, []).append(param)
    optimizer = torch.optim.AdamW([
        {"params": params, "task": task, "active": True,
         "lr": lr if task == "" else head_lr, "weight_decay": weight_decay if task == "" else 0.0}
        for task, params in sorted(groups.items())
    ])
    optimizer.register_step_pre_hook(_keep_active_groups)
    optimizer.register_step_post_hook(_restore_groups)
    return optimizer


def activate(optimizer, task: str | None) -> None:
    """The next `step()` updates the adapter and `task`'s head only; `None`: it updates nothing."""
    for group in optimizer.param_groups:
        group["active"] = task is not None and group.get("task", "") in ("", task)


def _keep_active_groups(optimizer, args, kwargs) -> None:
    optimizer._all_param_groups = optimizer.param_groups
    optimizer.param_groups = [g for g in optimizer.param_groups if g.get("active", True)]


def _restore_groups(optimizer, args, kwargs) -> None:
    optimizer.param_groups = optimizer.__dict__.pop("_all_param_groups", optimizer.param_groups)
