"""Training: one loop for the joint model and the single-task baselines; TAPT and CV folds are runs of that loop.

    python -m mtl train                                   # joint QC+QI model on the embedded sample
    python -m mtl train --mode single --task qc           # the paper's per-task baseline
    python -m mtl train --mode tapt --task qc             # QI first, then QC from those weights
    torchrun --nproc_per_node 8 -m mtl train train.deepspeed=configs/deepspeed/zero2.json

Each optimizer step trains one task (the schedule in `mtl.sampling`); every process draws the same global batch of
that task and takes its share of micro-batches. accelerate handles devices, DDP/DeepSpeed, mixed precision and
gradient accumulation; the loop below is the whole recipe.

A run folder `log.root/<run>/` holds config.yaml, metrics.jsonl, metrics.json, TensorBoard events, `best/` and
`final/` model folders and resumable `step-N/` checkpoints. SIGINT/SIGTERM checkpoint at the next step boundary and
exit; `mtl train --resume <run>` continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.state import AcceleratorState
from accelerate.utils import DeepSpeedPlugin, DistributedType, set_seed
from safetensors.torch import load_file
from tqdm.auto import tqdm
from transformers import get_scheduler

from mtl.config import ExperimentConfig, TASKS, save_config, to_dict
from mtl.data.tasks import TaskData, check_inputs, collate, fit_priors, load_splits, make_task_data
from mtl.errors import CheckpointError, ConfigError, MtlError
from mtl.evaluate import predict_probs, task_report
from mtl.io import atomic_write_text
from mtl.logger import NullLogger, build_logger
from mtl.optim import activate, build_optimizer
from mtl.metrics import f1_avg, format_table, selection_score
from mtl.model import ModelInfo, build_model, build_tokenizer, count_parameters, save_model
from mtl.packing import model_inputs, pack, resolve_batching
from mtl.sampling import TaskStreams, shard, task_for_step
from mtl.taxonomy import Taxonomy

log = logging.getLogger(__name__)


class Interrupted(MtlError):
    """Training stopped on SIGINT/SIGTERM after writing a checkpoint."""


class NonFiniteLoss(MtlError):
    """A loss was NaN/inf and `train.nonfinite=stop`: nothing was applied to the weights."""


@dataclass
class TrainState:
    """Loop counters saved in every checkpoint (with the optimizer, scheduler, sampler and RNG states)."""

    step: int = 0
    best_score: float = -1.0
    best_step: int = -1
    skipped_batches: int = 0
    skipped_steps: int = 0
    train_seconds: float = 0.0
    tokens: int = 0
    task_steps: dict = field(default_factory=dict)
    """Optimizer steps per task (skipped ones included: they took their place in the schedule)."""

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


def run(cfg: ExperimentConfig, resume: bool = False) -> dict:
    """Dispatch on `cv.fold` and `train.mode`; returns the run's summary metrics (also in metrics.json)."""
    run_dir = Path(cfg.log.root) / cfg.log.run_name
    check_inputs(cfg)
    several_folds = len(cfg.cv.folds) > 1 or cfg.cv.fold == "all"
    composite = several_folds or cfg.train.mode == "tapt"
    if composite and is_main_rank():  # its stages write their own folders; this one records the whole run
        prepare_run_dir(run_dir, cfg, resume)
    with process_group_without_launcher(cfg):
        if several_folds:
            return run_all_folds(cfg, run_dir, resume)
        if cfg.train.mode == "tapt":
            return run_tapt(cfg, run_dir, resume)
        return train(cfg, run_dir, resume)


def is_main_rank() -> bool:
    """Rank 0 before any accelerator exists (torchrun sets RANK; a plain process is rank 0)."""
    return int(os.environ.get("RANK", "0")) == 0


def stage_resumable(stage_dir: Path, resume: bool) -> bool:
    """Inside a resumed TAPT or all-folds run: continue a stage from its checkpoint, or restart a stage that was
    cut off before its first checkpoint (there is nothing in it to continue)."""
    if not resume or not stage_dir.exists():
        return False
    if latest_checkpoint(stage_dir) is not None:
        return True
    if is_main_rank():
        log.warning("%s stopped before its first checkpoint: starting that stage again", stage_dir)
        shutil.rmtree(stage_dir)
    return False


@contextlib.contextmanager
def process_group_without_launcher(cfg: ExperimentConfig):
    """DeepSpeed needs a process group even for one process; started without torchrun, give it the environment
    torchrun would have set, and restore the environment afterwards so that child processes and later
    non-DeepSpeed runs do not see a launcher that is not there. The group itself stays up: deepspeed.comm caches
    it process-wide, and a later DeepSpeed run in this process reuses it."""
    if not cfg.train.deepspeed or "WORLD_SIZE" in os.environ:
        yield
        return
    names = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    try:
        yield
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_tapt(cfg: ExperimentConfig, run_dir: Path, resume: bool, resume_dir: Path | None = None) -> dict:
    """The paper's schedule: stage 1 trains on the other task, stage 2 fine-tunes on the target task starting from
    stage 1's `final/` (adapter and the trained head, copied into the target head)."""
    target = cfg.train.task
    source = next(t for t in TASKS if t != target)
    source_dir, target_dir = run_dir / f"source-{source}", run_dir / f"target-{target}"

    stage1 = copy.deepcopy(cfg)
    stage1.train.mode, stage1.train.task = "single", source
    stage1.train.max_steps = cfg.train.tapt_steps or cfg.train.max_steps
    if not (source_dir / "metrics.json").is_file():
        train(stage1, source_dir, stage_resumable(source_dir, resume), tags={"tapt_stage": f"source-{source}"},
              resume_dir=resume_dir or run_dir)

    stage2 = copy.deepcopy(cfg)
    stage2.train.mode, stage2.train.task = "single", target
    stage2.model.init_from = str(source_dir / "final")
    summary = train(stage2, target_dir, stage_resumable(target_dir, resume), head_from=source,
                    tags={"tapt_stage": f"target-{target}"}, resume_dir=resume_dir or run_dir)
    atomic_write_text(run_dir / "metrics.json", json.dumps({**summary, "mode": "tapt"}, indent=1))
    return summary


def run_all_folds(cfg: ExperimentConfig, run_dir: Path, resume: bool) -> dict:
    """One model per fold of `cv.fold` (all, or the listed ones) in turn (`fold-k/`), then the mean and standard
    deviation of each headline figure, the out-of-fold predictions (`oof_<task>.jsonl`: every validation record of
    the folds, scored by the model that did not train on it) and `cv.json` (`mtl.cv.summarize_oof`)."""
    from mtl.cv import write_cv_summary

    per_fold = []
    for fold in cfg.cv.folds:
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.cv.fold = str(fold)
        fold_dir = run_dir / f"fold-{fold}"
        if (fold_dir / "metrics.json").is_file():
            summary = json.loads((fold_dir / "metrics.json").read_text())
            if cfg.train.mode == "tapt":  # a TAPT fold's own metrics.json records the whole fold
                summary = json.loads((fold_dir / f"target-{cfg.train.task}" / "metrics.json").read_text())
            per_fold.append(summary)
            continue
        if cfg.train.mode == "tapt":
            if is_main_rank():
                fold_dir.mkdir(parents=True, exist_ok=True)
            per_fold.append(run_tapt(fold_cfg, fold_dir, resume, resume_dir=run_dir))
        else:
            per_fold.append(train(fold_cfg, fold_dir, stage_resumable(fold_dir, resume), resume_dir=run_dir))
    cv = {}
    for part in ("best", "test"):
        headlines = [s.get(part, {}).get("headline", {}) for s in per_fold]
        for key in sorted(set.intersection(*(set(h) for h in headlines))):
            cv[key] = {"mean": float(np.mean([h[key] for h in headlines])),
                       "std": float(np.std([h[key] for h in headlines]))}
    summary = {"mode": cfg.train.mode, "folds": len(per_fold), "cv": cv}
    if is_main_rank():
        stage = f"target-{cfg.train.task}" if cfg.train.mode == "tapt" else ""
        oof_files = {fold: {t: run_dir / f"fold-{fold}" / stage / path for t, path in s.get("oof", {}).items()}
                     for fold, s in zip(cfg.cv.folds, per_fold)}
        summary["oof"] = write_cv_summary(run_dir, oof_files)
        atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=1))
    return summary


def train(cfg: ExperimentConfig, run_dir: Path, resume: bool = False, head_from: str | None = None,
          tags: dict | None = None, resume_dir: Path | None = None) -> dict:
    """One training run into `run_dir`. `resume_dir` is the folder `--resume` takes when this run is a stage of a
    TAPT or all-folds run."""
    accelerator = build_accelerator(cfg)
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise CheckpointError(f"{run_dir}: nothing to resume (no complete step-N/ checkpoint)")
    if accelerator.is_main_process:
        prepare_run_dir(run_dir, cfg, resume)
    set_seed(cfg.train.seed)

    with accelerator.main_process_first():  # converts the embedded backbone / writes the token cache once
        pair_tokenizer, backbone_folder = build_tokenizer(cfg)
        data = load_run_data(cfg, pair_tokenizer)
    tasks, splits, taxonomy, priors = cfg.active_tasks, data.splits, data.taxonomy, data.priors
    train_data, val_data = data.train, data.val

    set_seed(cfg.train.seed)  # LoRA and head initialisation do not depend on what loading consumed
    model = build_model(cfg, priors.n_features if priors else 0, backbone_folder, pair_tokenizer.arch)
    if cfg.model.head_init == "prior" and not cfg.model.init_from:
        model.init_heads({t: float(d.labels.mean()) for t, d in train_data.items()})
    if head_from:
        transfer_head(model, Path(cfg.model.init_from), head_from, tasks[0])
    params = count_parameters(model)
    optimizer = build_optimizer(model, cfg.train.lr, cfg.train.head_lr, cfg.train.weight_decay)
    scheduler = get_scheduler(
        {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[cfg.train.lr_schedule],
        optimizer, num_warmup_steps=int(cfg.train.warmup_ratio * cfg.train.max_steps),
        num_training_steps=cfg.train.max_steps,
    )
    model, optimizer = accelerator.prepare(model, optimizer)

    batching = resolve_batching(cfg.train.batching, accelerator.unwrap_model(model))
    streams = TaskStreams({t: d.lengths for t, d in train_data.items()}, cfg.train.global_batch_size,
                          cfg.train.seed, batching, {t: d.queries for t, d in train_data.items()})
    state = TrainState()
    accelerator.register_for_checkpointing(scheduler, streams, state)
    if checkpoint is not None:
        restore_checkpoint(accelerator, model, checkpoint)
        log.info("resumed from %s at step %d", checkpoint, state.step)

    info = ModelInfo(pair_tokenizer.fingerprint(), pair_tokenizer.arch, accelerator.unwrap_model(model).pooling,
                     accelerator.unwrap_model(model).backbone.get_base_model().config.hidden_size,
                     priors.n_features if priors else 0, list(tasks), priors=priors.to_dict() if priors else None,
                     head_norm=cfg.model.head_norm)
    logger = build_logger(run_dir, cfg.log.tensorboard, accelerator.is_main_process,
                          purge_step=state.step + 1 if checkpoint is not None else None)
    sizes = {t: len(d) for t, d in train_data.items()}
    weights = cfg.tasks.weights
    pad_id = pair_tokenizer.pad_id
    log.info("training %s on %s: %s trainable of %s parameters, %d process(es), %d micro-batches per step",
             "+".join(tasks), cfg.model.backbone, f"{params['trainable']:,}", f"{params['total']:,}",
             accelerator.num_processes, accelerator.gradient_accumulation_steps)

    window = {"loss": {t: [] for t in tasks}, "tokens": 0, "seconds": 0.0}
    best_reports, reports = {}, {}
    progress = tqdm(total=cfg.train.max_steps, initial=state.step, desc="train", disable=not accelerator.is_main_process)
    with StopSignal() as stop:
        while state.step < cfg.train.max_steps:
            step_start = time.perf_counter()
            task = task_for_step(state.step, sizes, cfg.tasks.sampling, cfg.tasks.temperature, cfg.train.seed,
                                 weights)
            micro_batches = shard(streams.next(task), cfg.train.micro_batch_size, accelerator.process_index,
                                  accelerator.num_processes)
            loss, tokens = train_step(model, train_data[task], micro_batches, optimizer, accelerator, cfg, state,
                                      pad_id, batching)
            scheduler.step()
            state.step += 1
            state.task_steps[task] = state.task_steps.get(task, 0) + 1
            seconds = time.perf_counter() - step_start
            state.train_seconds += seconds
            state.tokens += tokens
            window["loss"][task].append(loss)
            window["tokens"] += tokens
            window["seconds"] += seconds
            progress.update(1)
            progress.set_postfix(task=task, loss=f"{loss:.4f}")

            if state.step % cfg.log.every == 0 or state.step == cfg.train.max_steps:
                log_training(logger, window, scheduler, state)
            is_last = state.step == cfg.train.max_steps
            if is_last or (cfg.train.eval_every and state.step % cfg.train.eval_every == 0):
                reports = validate(model, val_data, accelerator, cfg, pad_id, logger, state.step)
                score = selection_score(reports, cfg.eval.select)
                if score > state.best_score:
                    state.best_score, state.best_step, best_reports = score, state.step, reports
                    write_model(accelerator, model, run_dir / "best", cfg, info, reports, taxonomy)
            if is_last or (cfg.train.save_every and state.step % cfg.train.save_every == 0):
                save_checkpoint(accelerator, model, run_dir, state.step, cfg, info, taxonomy)
            if not is_last and stop.requested(accelerator):
                path = save_checkpoint(accelerator, model, run_dir, state.step, cfg, info, taxonomy)
                raise Interrupted(f"stopped at step {state.step}; checkpoint {path}; continue with "
                                  f"`mtl train --resume {resume_dir or run_dir}`")
    progress.close()

    if not reports:  # resumed from the checkpoint of the last step, whose evaluation is logged already
        reports = validate(model, val_data, accelerator, cfg, pad_id, NullLogger(), state.step)
    write_model(accelerator, model, run_dir / "final", cfg, info, reports, taxonomy)
    if not best_reports:  # resumed after the best checkpoint was written: read its metrics back
        best_reports = json.loads((run_dir / "best" / "model.json").read_text())["metrics"]
    test_reports, oof = score_best(run_dir, data, cfg, accelerator, pad_id)
    summary = summarize(cfg, state, best_reports, reports, params, splits, accelerator, tags, batching, test_reports)
    summary["oof"] = oof
    if accelerator.is_main_process:
        atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=1))
        logger.log_hparams({**flatten(to_dict(cfg)), **(tags or {})}, summary["best"]["headline"])
        log.info("best step %d of %s:\n%s", state.best_step, run_dir, format_table(best_reports, test_reports))
    logger.close()
    accelerator.wait_for_everyone()
    return summary


@dataclass
class RunData:
    """Everything a run reads from its files: records per split, the taxonomy and QC priors of the training fold,
    and the tokenized training and validation sets per task."""

    splits: dict
    taxonomy: Taxonomy | None
    priors: object
    train: dict[str, TaskData]
    val: dict[str, TaskData]
    test: dict[str, TaskData]
    val_all: dict[str, TaskData]
    """On a CV fold: every validation record of the fold (`val` may be a `data.dev_limit` sample of it)."""


def load_run_data(cfg: ExperimentConfig, pair_tokenizer) -> RunData:
    """file -> records -> (train, val) split -> pairs -> token ids, per active task. The taxonomy and the QC prefix
    priors are fitted on this run's training records only."""
    tasks = cfg.active_tasks
    splits = load_splits(cfg, tasks)
    qc_train = splits["qc"].train if "qc" in tasks else None
    taxonomy = Taxonomy.from_paths(qc_train["category_path"]) if qc_train is not None else None
    priors = fit_priors(cfg, qc_train) if qc_train is not None else None
    return RunData(
        splits, taxonomy, priors,
        train={t: make_task_data(splits[t].train, t, cfg, pair_tokenizer, priors, fitted_on=True) for t in tasks},
        val={t: make_task_data(splits[t].val, t, cfg, pair_tokenizer, priors) for t in tasks},
        test={t: make_task_data(splits[t].test, t, cfg, pair_tokenizer, priors) for t in tasks
              if splits[t].test is not None},
        val_all={t: make_task_data(splits[t].val_all, t, cfg, pair_tokenizer, priors) for t in tasks
                 if cfg.cv.fold != "none"},
    )


def score_best(run_dir: Path, data: RunData, cfg: ExperimentConfig, accelerator, pad_id) -> tuple[dict, dict]:
    """Score with the selected model, loaded from `best/` as `mtl predict` loads it: the held-out test records at
    the threshold chosen on validation (and at 0.5), the figures nothing was selected or tuned on; and, on a CV
    fold, every validation record of the fold (not only the `data.dev_limit` sample evaluated during training),
    written to `oof.jsonl` for the out-of-fold summary of a several-fold run. Returns (test reports, {task: oof
    file name}). On the main process only; the others wait."""
    from mtl.model import load_trained

    reports, oof = {}, {}
    if (data.test or data.val_all) and accelerator.is_main_process:
        with without_zero3_init(accelerator):
            model, _, info, _ = load_trained(run_dir / "best", accelerator.device)
        for task, task_data in data.test.items():
            probs = predict_probs(model, task_data, pad_id, cfg.eval.batch_size, row_tokens=cfg.train.row_tokens)
            reports[task] = task_report(task_data, probs, tune=False, threshold=info.thresholds.get(task, 0.5))
        for task, task_data in data.val_all.items():
            probs = predict_probs(model, task_data, pad_id, cfg.eval.batch_size, row_tokens=cfg.train.row_tokens)
            oof[task] = f"oof_{task}.jsonl"
            write_scores(run_dir / oof[task], task_data, probs, fold=int(cfg.cv.fold))
        del model
    accelerator.wait_for_everyone()
    return reports, oof


def write_scores(path: Path, data: TaskData, probs: np.ndarray, **extra) -> None:
    """One JSON line per record: id, language, label, P(relevant) (and `extra` fields)."""
    rows = zip(data.records["id"].tolist(), data.languages.tolist(), data.labels.tolist(), probs.tolist())
    atomic_write_text(path, "".join(json.dumps({"id": i, "language": lang, "label": label, "score": p, **extra},
                                               ensure_ascii=False) + "\n" for i, lang, label, p in rows))


@contextlib.contextmanager
def without_zero3_init(accelerator):
    """Build a model whole while a ZeRO-3 run is set up: transformers partitions every model it builds while
    accelerate's DeepSpeed config is registered with it (`HfDeepSpeedConfig`, held by the plugin as `dschf`)."""
    from transformers.integrations.deepspeed import set_hf_deepspeed_config, unset_hf_deepspeed_config

    held = getattr(accelerator.state.deepspeed_plugin, "dschf", None) if accelerator.state.deepspeed_plugin else None
    if held is None:
        yield
        return
    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        set_hf_deepspeed_config(held)


def train_step(model, data: TaskData, micro_batches, optimizer, accelerator, cfg, state, pad_id, batching: str):
    """One optimizer step on one task: forward/backward each micro-batch, then clip and step (accelerate applies
    the update only after the last micro-batch). Returns the global batch's mean loss and its pairs' token count
    (what the pairs hold, whether padded batches or prefix-tree rows computed them)."""
    losses, tokens, skipped = [], 0, False
    clear_zero3_gradient_buffer(model)
    activate(optimizer, data.task)
    for rows in micro_batches:
        if batching == "shared":
            batch = pack(data, rows, pad_id, cfg.train.row_tokens)
        else:
            batch = collate(data, rows, pad_id)
        tokens += int(data.lengths[rows].sum())
        with accelerator.accumulate(model):
            logits = model(task=data.task, **model_inputs(batch, accelerator.device))
            loss = F.binary_cross_entropy_with_logits(logits.float(), batch["labels"].to(accelerator.device))
            if not finite_everywhere(loss, accelerator):
                loss = handle_nonfinite(accelerator.unwrap_model(model), data, rows, state, cfg)
                activate(optimizer, None)  # the whole step is skipped: DeepSpeed steps inside backward, so before it
                skipped = True
            backward_and_step(model, loss, optimizer, accelerator, cfg)
        losses.append(loss.detach().float())
    state.skipped_steps += skipped
    mean_loss, tokens = torch.stack(losses).mean(), torch.tensor(float(tokens))
    if accelerator.num_processes > 1:  # each process saw its own micro-batches: log the global batch's figures
        mean_loss = accelerator.reduce(mean_loss.to(accelerator.device), reduction="mean")
        tokens = accelerator.reduce(tokens.to(accelerator.device), reduction="sum")
    return float(mean_loss), int(tokens.item())


def clear_zero3_gradient_buffer(model) -> None:
    """Zero DeepSpeed ZeRO-3's gradient buffer before a step's first backward.

    ZeRO-3 (deepspeed 0.19.8) steps every trainable parameter on its slot of a flat gradient buffer, and a slot is
    only written when its parameter gets a gradient. The head of the task a step does not train gets none, so it
    was updated with its last step's gradient again, which also counted in the clipping norm (found because a
    resumed run, starting from a fresh buffer, ended elsewhere). Zeroed, it gets a zero gradient, as under ZeRO-2.
    Other engines have no such buffer; this does nothing there."""
    buffer = getattr(getattr(model, "optimizer", None), "grad_partitions_flat_buffer", None)
    if buffer is not None:
        buffer.zero_()


def backward_and_step(model, loss: torch.Tensor, optimizer, accelerator, cfg: ExperimentConfig) -> None:
    """Backward one micro-batch's loss, then clip and step: inside `accelerator.accumulate` the clip and the update
    take effect only on the last micro-batch of the step."""
    accelerator.backward(loss)
    if accelerator.sync_gradients and cfg.train.max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), cfg.train.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def finite_everywhere(loss: torch.Tensor, accelerator) -> bool:
    """All processes must agree to skip or stop, or they would wait on each other's gradients forever."""
    finite = torch.isfinite(loss.detach()).float().reshape(1)
    if accelerator.num_processes > 1:
        finite = accelerator.reduce(finite.to(accelerator.device), reduction="sum") / accelerator.num_processes
    return bool(finite.item() == 1.0)


def handle_nonfinite(model, data: TaskData, rows, state: TrainState, cfg) -> torch.Tensor:
    """stop: raise before anything reaches the weights. skip: count it and return a loss whose gradient is exactly
    zero for every weight this task's forward used, so DDP/DeepSpeed still see the backward pass they expect (the
    other task's head is left out: DDP has already marked it unused)."""
    ids = data.records["id"].to_numpy()[np.asarray(rows)].tolist()
    where = f"step {state.step + 1}, task {data.task}, record ids {ids[:8]}{' ...' if len(ids) > 8 else ''}"
    if cfg.train.nonfinite == "stop":
        raise NonFiniteLoss(f"non-finite loss at {where}; weights are untouched since the last step. Lower "
                            "train.lr, check those records, or set train.nonfinite=skip")
    state.skipped_batches += 1
    log.warning("skipping a batch with a non-finite loss at %s (%d skipped so far)", where, state.skipped_batches)
    other_head = {id(p) for task in TASKS if task != data.task for m in model.head_modules(task) for p in m.parameters()}
    return sum((p * 0).sum() for p in model.parameters() if p.requires_grad and id(p) not in other_head)


def validate(model, val_data: dict[str, TaskData], accelerator, cfg, pad_id, logger, step) -> dict:
    reports = {}
    for task, data in val_data.items():
        probs = predict_probs(model, data, pad_id, cfg.eval.batch_size, accelerator, row_tokens=cfg.train.row_tokens)
        reports[task] = task_report(data, probs, tune=cfg.eval.tune_threshold)
    scalars = {}
    for task, r in reports.items():
        scalars.update({f"eval/f1/{task}": r["f1"], f"eval/precision/{task}": r["precision"],
                        f"eval/recall/{task}": r["recall"], f"eval/auc/{task}": r["auc"], f"eval/ap/{task}": r["ap"],
                        f"eval/predicted_positive/{task}": r["predicted_positive_rate"]})
        if "tuned" in r:
            scalars[f"eval/f1_tuned/{task}"] = r["tuned"]["f1"]
        scalars.update({f"eval/f1_by_language/{task}/{lang}": v for lang, v in r["f1_by_language"].items()})
        scalars.update({f"eval/auc_by_language/{task}/{lang}": v for lang, v in r["auc_by_language"].items()})
    if f1_avg(reports) is not None:
        scalars["eval/f1/avg"] = f1_avg(reports)
    logger.log(scalars, step)
    log.info("step %d: %s", step, ", ".join(f"{k}={v:.4f}" for k, v in scalars.items()
                                             if k.startswith(("eval/f1/", "eval/auc/"))))
    return reports


def log_training(logger, window: dict, scheduler, state: TrainState) -> None:
    """Losses are unweighted (`tasks.loss_weight_*` scales steps, not losses), so runs with other weights compare."""
    scalars = {f"train/loss/{t}": float(np.mean(v)) for t, v in window["loss"].items() if v}
    scalars.update({"train/lr": scheduler.get_last_lr()[0],
                    "perf/tokens_per_s": window["tokens"] / max(window["seconds"], 1e-9)})  # training time only, not eval
    logger.log(scalars, state.step)
    window.update({"loss": {t: [] for t in window["loss"]}, "tokens": 0, "seconds": 0.0})


def build_accelerator(cfg: ExperimentConfig) -> Accelerator:
    from mtl.model import resolve_dtype

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.train.global_batch_size % (cfg.train.micro_batch_size * world):
        raise ConfigError(f"train.global_batch_size={cfg.train.global_batch_size} is not a multiple of "
                          f"micro_batch_size x processes = {cfg.train.micro_batch_size} x {world}")
    accumulation = cfg.train.global_batch_size // (cfg.train.micro_batch_size * world)
    deepspeed = None
    if cfg.train.deepspeed:
        if not Path(cfg.train.deepspeed).is_file():
            raise ConfigError(f"train.deepspeed: no such file {cfg.train.deepspeed}")
        deepspeed = DeepSpeedPlugin(hf_ds_config=cfg.train.deepspeed, gradient_accumulation_steps=accumulation,
                                    gradient_clipping=cfg.train.max_grad_norm or None)
    # accelerate keeps one process-wide state and refuses a second Accelerator with other plugins; TAPT stages,
    # CV folds and experiment grids train several models in one process, so each starts from a clean state (the
    # process group, if any, is reused: PartialState only creates one when none exists).
    AcceleratorState._reset_state(reset_partial_state=True)
    if deepspeed is None:
        os.environ.pop("ACCELERATE_USE_DEEPSPEED", None)
    accelerator = Accelerator(
        # Without CUDA, accelerate treats torchrun's processes as MULTI_CPU (gloo) only with cpu=True, but with
        # cpu=True it silently drops DeepSpeed; DeepSpeed brings its own CPU backend.
        cpu=not torch.cuda.is_available() and deepspeed is None,
        mixed_precision="bf16" if resolve_dtype(cfg.model.dtype) == torch.bfloat16 else "no",
        gradient_accumulation_steps=accumulation,
        deepspeed_plugin=deepspeed,
        # A QC step leaves qi_head without a gradient (and vice versa); DDP must be told to expect that.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    if deepspeed is not None:
        if accelerator.distributed_type != DistributedType.DEEPSPEED:
            raise ConfigError(f"train.deepspeed is set but accelerate runs {accelerator.distributed_type}: "
                              "DeepSpeed did not engage")
        # The loop feeds batches itself (no DataLoader for accelerate to read the size from).
        deepspeed.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.train.micro_batch_size
    return accelerator


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def transfer_head(model, folder: Path, source: str, target: str) -> None:
    """TAPT: the target head starts as the source head saved in `folder` (the paper reuses one classifier head).
    Columns for QC's taxonomy features, which the other head lacks, start at zero (QI -> QC) or are dropped."""
    saved = load_file(str(folder / "heads.safetensors"))
    weight, bias = saved[f"{source}_head.weight"], saved[f"{source}_head.bias"]
    dst = model.head(target)
    shared = min(weight.shape[1], dst.weight.shape[1])
    with torch.no_grad():
        dst.weight.zero_()
        dst.weight[:, :shared] = weight[:, :shared]
        dst.bias.copy_(bias)
        if model.head_norm and f"{source}_norm.weight" in saved:
            norm = getattr(model, f"{target}_norm")
            norm.weight.copy_(saved[f"{source}_norm.weight"])
            norm.bias.copy_(saved[f"{source}_norm.bias"])


def write_model(accelerator, model, folder: Path, cfg, info: ModelInfo, reports: dict, taxonomy) -> None:
    """Save a model folder with the thresholds tuned on validation (`best/`, `final/`)."""
    state_dict = accelerator.get_state_dict(model)  # collective under ZeRO-3: every process must call it
    if accelerator.is_main_process:
        info = copy.deepcopy(info)
        info.thresholds = {t: r.get("tuned", {}).get("threshold", 0.5) for t, r in reports.items()}
        info.metrics = reports
        save_model(accelerator.unwrap_model(model), folder, cfg, info, taxonomy, state_dict)
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator, model, run_dir: Path, step: int, cfg, info: ModelInfo, taxonomy) -> Path:
    """`step-N/` = a model folder + `training/` (optimizer, scheduler, sampler, loop counters, RNG of every process).
    Written under `step-N.tmp/` and renamed when complete, so a checkpoint is complete or absent."""
    final, tmp = run_dir / f"step-{step:06d}", run_dir / f"step-{step:06d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    write_model(accelerator, model, tmp, cfg, info, {}, taxonomy)
    handle = accelerator.register_save_state_pre_hook(lambda models, weights, output_dir: weights.clear())
    try:  # the frozen backbone is not saved: it is whatever `model.backbone` points at
        if accelerator.distributed_type == DistributedType.DEEPSPEED:
            accelerator.save_state(str(tmp / "training"), exclude_frozen_parameters=True)
        else:
            accelerator.save_state(str(tmp / "training"))
    finally:
        handle.remove()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        old = sorted(run_dir.glob("step-[0-9]*[0-9]"))[: -cfg.train.keep_checkpoints]
        for folder in old:
            shutil.rmtree(folder, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    complete = sorted(p for p in run_dir.glob("step-[0-9]*[0-9]") if (p / "training").is_dir())
    return complete[-1] if complete else None


def restore_checkpoint(accelerator, model, checkpoint: Path) -> None:
    from mtl.model import load_weights

    if accelerator.distributed_type != DistributedType.DEEPSPEED:  # DeepSpeed's own checkpoint holds them
        load_weights(accelerator.unwrap_model(model), checkpoint)
    handle = accelerator.register_load_state_pre_hook(lambda models, input_dir: models.clear())
    try:
        if accelerator.distributed_type == DistributedType.DEEPSPEED:
            accelerator.load_state(str(checkpoint / "training"), load_module_strict=False)
        else:
            accelerator.load_state(str(checkpoint / "training"))
    finally:
        handle.remove()


def prepare_run_dir(run_dir: Path, cfg: ExperimentConfig, resume: bool) -> None:
    """A new run needs a folder with no run in it (so runs are never mixed); one holding only the config of a run
    that failed while loading its data is taken over. Stale `*.tmp` from a crash are removed."""
    if not resume and run_dir.exists() and any(p.name != "config.yaml" for p in run_dir.iterdir()):
        raise ConfigError(f"{run_dir} already holds a run: use --resume {run_dir} or another log.run_name")
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob("*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    save_config(cfg, run_dir / "config.yaml")


def summarize(cfg, state: TrainState, best: dict, last: dict, params: dict, splits, accelerator, tags,
              batching: str | None, test: dict | None = None) -> dict:
    """What metrics.json holds; `batching` is what the run resolved `train.batching` to (None: nothing trained).
    `test`: the best model's reports on the held-out test split, whose headline leads when there is one."""
    def headline(reports, prefix=""):
        out = {f"{prefix}f1/{t}": r["f1"] for t, r in reports.items()}
        out.update({f"{prefix}f1_tuned/{t}": r["tuned"]["f1"] for t, r in reports.items() if "tuned" in r})
        out.update({f"{prefix}f1_thr/{t}": r["at_threshold"]["f1"] for t, r in reports.items() if "at_threshold" in r})
        out.update({f"{prefix}{k}/{t}": r[k] for t, r in reports.items() for k in ("auc", "ap") if k in r})
        if f1_avg(reports) is not None:
            out[f"{prefix}f1/avg"] = f1_avg(reports)
        return out

    test = test or {}
    return {
        "mode": cfg.train.mode, "tasks": list(cfg.active_tasks), "tags": tags or {},
        "steps": state.step, "best_step": state.best_step,
        "test": {"headline": headline(test, "test_"), "reports": test},
        "best": {"headline": headline(best), "reports": best},
        "final": {"headline": headline(last), "reports": last},
        "train_seconds": state.train_seconds, "batching": batching,
        "tokens": state.tokens, "tokens_per_s": state.tokens / max(state.train_seconds, 1e-9),
        "skipped_batches": state.skipped_batches, "skipped_steps": state.skipped_steps,
        "task_steps": dict(state.task_steps),
        "parameters": params, "processes": accelerator.num_processes,
        "distributed": str(accelerator.distributed_type).split(".")[-1],
        "data": {t: [r.summary() for r in s.reports] for t, s in splits.items()},
    }


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value if not isinstance(value, list) else ",".join(map(str, value))
    return out


class StopSignal:
    """SIGINT/SIGTERM set a flag that the loop reads at step boundaries; a second signal interrupts at once."""

    def __init__(self):
        self.flag = False
        self.previous = {}

    def _handle(self, signum, frame):
        self.flag = True
        log.warning("received signal %d: checkpointing after this step (send again to abort now)", signum)
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def requested(self, accelerator) -> bool:
        """Agreed by all processes (a signal may reach only some of them)."""
        flag = torch.tensor([float(self.flag)], device=accelerator.device)
        if accelerator.num_processes > 1:
            flag = accelerator.reduce(flag, reduction="sum")
        return bool(flag.item() > 0)
