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
import functools
import json
import logging
import os
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
from tqdm.auto import tqdm
from transformers import get_scheduler

from mtl.card import data_hashes, model_card
from mtl.checkpoint import latest_checkpoint, prepare_run_dir, restore_checkpoint, save_checkpoint, write_model
from mtl.config import ExperimentConfig, TASKS, flatten, to_dict
from mtl.data.records import TARGET_FIELD
from mtl.data.tasks import TaskData, collate, fit_priors, input_keys, load_splits, make_task_data
from mtl.encoder import ENCODER, PairEncoder, fuse, fusion_stats
from mtl.errors import CheckpointError, ConfigError, Interrupted, MtlError
from mtl.evaluate import predict_fused, predict_probs, task_report
from mtl.io import atomic_write_text
from mtl.logger import NullLogger, build_logger
from mtl.measure import attention_pairs, tree_attention_pairs
from mtl.optim import activate, build_optimizer
from mtl.overlap import FEATURE_SETS, feature_dim
from mtl.metrics import f1_avg, format_breakdown, format_table, ranking_scores, selection_score
from mtl.model import ModelInfo, build_model, build_tokenizer, count_parameters, read_info
from mtl.packing import TREE_BATCHINGS, model_inputs, pack, resolve_batching
from mtl.sampling import TaskStreams, shard, task_for_step
from mtl.taxonomy import NodeIndex, Taxonomy

log = logging.getLogger(__name__)


class NonFiniteLoss(MtlError):
    """A loss was NaN/inf and `train.nonfinite=stop`: nothing was applied to the weights."""


COUNTS = ("pairs", "tokens", "computed", "slots", "full_pairs", "sliding_pairs")
"""What `train_step` counts of its forward passes and `TrainState` sums over the run."""


@dataclass
class TrainState:
    """Loop counters saved in every checkpoint (with the optimizer, scheduler, sampler and RNG states). The counts
    are what the forward passes of the trained steps held and computed: the only record of them (metrics.json)."""

    step: int = 0
    best_score: float = -1.0
    best_step: int = -1
    skipped_batches: int = 0
    skipped_steps: int = 0
    train_seconds: float = 0.0
    pairs: int = 0
    tokens: int = 0
    """Tokens of the pairs trained on."""
    computed: int = 0
    """Tokens the forward passes ran on, padding excluded (fewer than `tokens` where prefix-tree rows share them)."""
    slots: int = 0
    """Rows x width of every forward pass (padding included)."""
    full_pairs: float = 0.0
    """Query-key pairs scored per full-attention layer (padding excluded); FLOPs: `benchmarks/bench.py`."""
    sliding_pairs: float = 0.0
    """The same per sliding-window layer."""
    task_steps: dict = field(default_factory=dict)
    """Optimizer steps per task (skipped ones included: they took their place in the schedule)."""
    schedule: str = ""
    """The task of every step, one character each (its index in TASKS): what a joint run's sampler drew."""

    def add_step(self, task: str, seconds: float, counts: dict) -> None:
        self.step += 1
        self.task_steps[task] = self.task_steps.get(task, 0) + 1
        self.schedule += str(TASKS.index(task))
        self.train_seconds += seconds
        for key in COUNTS:
            setattr(self, key, getattr(self, key) + counts[key])

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


def train(cfg: ExperimentConfig, run_dir: Path, resume: bool = False, tags: dict | None = None,
          resume_dir: Path | None = None) -> dict:
    """One training run into `run_dir`: set up, fit, then score and summarise the selected model. `resume_dir` is
    the folder `--resume` takes when this run is a stage of a TAPT or several-fold run (`mtl.stages`)."""
    run = setup(cfg, run_dir, resume)
    best_reports, reports = fit(run, cfg, run_dir, resume_dir or run_dir)
    return finish(run, cfg, run_dir, best_reports, reports, tags)


@dataclass
class Run:
    """What `setup` builds and `fit` trains: the prepared model and optimizer, the data, the loop's state."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    streams: TaskStreams
    state: TrainState
    data: RunData
    info: ModelInfo
    logger: object
    params: dict
    batching: str
    pad_id: int
    attention: tuple[bool, int]
    """(causal, sliding window) of the backbone: what the query-key pair counts need."""
    hashes: dict
    """{data key: (path, SHA-256)} of the files the run reads, for the model cards (main process only)."""

    def card(self, cfg: ExperimentConfig, reports: dict, role: str) -> str:
        """The model card of a folder saved now (`mtl.card`); written by the main process only."""
        if not self.accelerator.is_main_process:
            return ""
        return model_card(cfg, reports, self.hashes, self.state.step, self.state.train_seconds, role)


def setup(cfg: ExperimentConfig, run_dir: Path, resume: bool) -> Run:
    """Accelerator, data, model, optimizer and schedule, sampler, and the checkpoint's state when resuming."""
    accelerator = build_accelerator(cfg)
    if cfg.model.attn_implementation == "flex_attention" and accelerator.device.type != "cuda":
        raise ConfigError("model.attn_implementation=flex_attention trains on CUDA only (torch has no flex-attention "
                          "backward on CPU): use sdpa")
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise CheckpointError(f"{run_dir}: nothing to resume (no complete step-N/ checkpoint)")
    if accelerator.is_main_process:
        prepare_run_dir(run_dir, cfg, resume)
    set_seed(cfg.train.seed)

    with accelerator.main_process_first():  # converts the embedded backbone / writes the token cache once
        pair_tokenizer, backbone_folder = build_tokenizer(cfg)
        data = load_run_data(cfg, pair_tokenizer)
    priors = data.priors

    set_seed(cfg.train.seed)  # LoRA and head initialisation do not depend on what loading consumed
    model = build_run_model(cfg, data, backbone_folder, pair_tokenizer.arch)
    balanced = cfg.train.class_weight == "balanced"
    if balanced:
        for task_data in data.train.values():
            task_data.class_weights  # computed and cached for every step here: a one-class task fails now
    if cfg.model.head_init == "prior" and not cfg.model.init_from:
        # under balanced weights the loss's best constant prediction is even odds, not the positive rate
        model.init_heads({t: 0.5 if balanced else float(d.labels.mean()) for t, d in data.train.items()})
    if cfg.model.head_init == "probe" and not cfg.model.init_from and checkpoint is None:
        plugin = accelerator.state.deepspeed_plugin
        # ZeRO-3 builds the model partitioned, and after `prepare` DeepSpeed's fp32 copy would ignore edited heads
        if plugin is not None and plugin.zero_stage == 3:
            raise ConfigError("model.head_init=probe does not run under ZeRO-3 (the probe needs the whole model "
                              "before DeepSpeed takes it); use ZeRO-2 or model.head_init=prior")
        model.to(accelerator.device)  # before `prepare`: the whole model, as every process holds it now
        probe_auc = model.probe_heads(data.train, pair_tokenizer.pad_id, cfg.model.probe_pairs, cfg.train.seed,
                                      cfg.eval.batch_size, balanced=balanced)
        log.info("heads start as linear probes: cross-validated ROC-AUC %s",
                 ", ".join(f"{t} {a:.3f}" for t, a in probe_auc.items()))
    params = count_parameters(model)
    optimizer = build_optimizer(model, cfg.train.lr, cfg.train.head_lr, cfg.train.weight_decay)
    scheduler = get_scheduler(
        {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[cfg.train.lr_schedule],
        optimizer, num_warmup_steps=int(cfg.train.warmup_ratio * cfg.train.max_steps),
        num_training_steps=cfg.train.max_steps,
    )
    model, optimizer = accelerator.prepare(model, optimizer)

    bare = accelerator.unwrap_model(model)
    batching = resolve_batching(cfg.train.batching, bare)
    streams = TaskStreams({t: d.lengths for t, d in data.train.items()}, cfg.train.global_batch_size,
                          cfg.train.seed, batching, {t: d.queries for t, d in data.train.items()})
    state = TrainState()
    accelerator.register_for_checkpointing(scheduler, streams, state)
    if checkpoint is not None:
        restore_checkpoint(accelerator, model, checkpoint)
        log.info("resumed from %s at step %d", checkpoint, state.step)

    info = ModelInfo(pair_tokenizer.fingerprint(), pair_tokenizer.arch, bare.pooling,
                     bare.backbone.get_base_model().config.hidden_size, bare.qc_feature_dim, list(cfg.active_tasks),
                     priors=priors.to_dict() if priors else None, head_norm=cfg.model.head_norm,
                     nodes=data.nodes.nodes if data.nodes else None, node_slots=data.nodes.slots if data.nodes else 0,
                     qi_feature_dim=bare.qi_feature_dim,
                     qi_feature_names=list(FEATURE_SETS[cfg.model.qi_features]) if bare.qi_feature_dim else None,
                     encoder=ENCODER if data.encoders else None, encoder_tasks=sorted(data.encoders))
    logger = build_logger(run_dir, cfg.log.tensorboard, accelerator.is_main_process,
                          purge_step=state.step + 1 if checkpoint is not None else None)
    log.info("training %s on %s: %s trainable of %s parameters, %d process(es), %d micro-batches per step",
             "+".join(cfg.active_tasks), cfg.model.backbone, f"{params['trainable']:,}", f"{params['total']:,}",
             accelerator.num_processes, accelerator.gradient_accumulation_steps)
    attention = (pair_tokenizer.arch == "decoder", getattr(bare.backbone.get_base_model().config, "sliding_window", 0))
    hashes = data_hashes(cfg, input_keys(cfg, cfg.active_tasks)) if accelerator.is_main_process else {}
    return Run(accelerator, model, optimizer, scheduler, streams, state, data, info, logger, params, batching,
               pair_tokenizer.pad_id, (attention[0], attention[1] or 0), hashes)


def fit(run: Run, cfg: ExperimentConfig, run_dir: Path, resume_dir: Path) -> tuple[dict, dict]:
    """The loop: each step draws its task, trains one global batch of it, and at its boundary logs, validates
    (keeping the best model by `eval.select`), checkpoints, and stops on a signal. Returns the best validation
    reports (empty if resumed past them) and the last ones (empty if resumed at the last step)."""
    accelerator, state = run.accelerator, run.state
    sizes = {t: len(d) for t, d in run.data.train.items()}
    window = {"loss": {t: [] for t in cfg.active_tasks}, "tokens": 0, "seconds": 0.0}
    best_reports, reports = {}, {}
    progress = tqdm(total=cfg.train.max_steps, initial=state.step, desc="train", disable=not accelerator.is_main_process)
    with StopSignal() as stop:
        while state.step < cfg.train.max_steps:
            step_start = time.perf_counter()
            task, micro_batches = draw_step(state.step, sizes, run.streams, cfg, accelerator)
            loss, counts = train_step(run.model, run.data.train[task], micro_batches, run.optimizer, accelerator, cfg,
                                      state, run.pad_id, run.batching, run.attention)
            run.scheduler.step()
            seconds = time.perf_counter() - step_start
            state.add_step(task, seconds, counts)
            window["loss"][task].append(loss)
            window["tokens"] += counts["tokens"]
            window["seconds"] += seconds
            progress.update(1)
            progress.set_postfix(task=task, loss=f"{loss:.4f}")

            if state.step % cfg.log.every == 0 or state.step == cfg.train.max_steps:
                log_training(run.logger, window, run.scheduler, state)
            is_last = state.step == cfg.train.max_steps
            if is_last or (cfg.train.eval_every and state.step % cfg.train.eval_every == 0):
                reports = validate(run.model, run.data.val, accelerator, cfg, run.pad_id, run.logger, state.step,
                                   run.data.taxonomy)
                score = selection_score(reports, cfg.eval.select)
                if score > state.best_score:
                    state.best_score, state.best_step, best_reports = score, state.step, reports
                    card = run.card(cfg, reports, f"best/: the step with the best validation {cfg.eval.select.upper()}")
                    write_model(accelerator, run.model, run_dir / "best", cfg, run.info, reports, run.data.taxonomy,
                                card, run.data.encoders)
            if is_last or (cfg.train.save_every and state.step % cfg.train.save_every == 0):
                save_checkpoint(accelerator, run.model, run_dir, state.step, cfg, run.info, run.data.taxonomy,
                                run.data.encoders)
            if not is_last and stop.requested(accelerator):
                path = save_checkpoint(accelerator, run.model, run_dir, state.step, cfg, run.info, run.data.taxonomy,
                                       run.data.encoders)
                raise Interrupted(f"stopped at step {state.step}; checkpoint {path}; continue with "
                                  f"`mtl train --resume {resume_dir}`")
    progress.close()
    return best_reports, reports


def finish(run: Run, cfg: ExperimentConfig, run_dir: Path, best_reports: dict, reports: dict,
           tags: dict | None) -> dict:
    """`final/`, the selected model's scores on the test split and the fold's validation records, metrics.json."""
    accelerator, state = run.accelerator, run.state
    if not reports:  # resumed from the checkpoint of the last step, whose evaluation is logged already
        reports = validate(run.model, run.data.val, accelerator, cfg, run.pad_id, NullLogger(), state.step,
                           run.data.taxonomy)
    write_model(accelerator, run.model, run_dir / "final", cfg, run.info, reports, run.data.taxonomy,
                run.card(cfg, reports, "final/: the last step"), run.data.encoders)
    if not best_reports:  # resumed after the best checkpoint was written: read its metrics back
        best_reports = read_info(run_dir / "best").metrics
    test_reports, oof = score_best(run_dir, run.data, cfg, accelerator, run.pad_id)
    summary = summarize(cfg, state, best_reports, reports, run.params, run.data.splits, accelerator, tags,
                        run.batching, test_reports)
    summary["oof"] = oof
    if accelerator.is_main_process:
        atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=1))
        run.logger.log_hparams({**flatten(to_dict(cfg)), **(tags or {})}, summary["best"]["headline"])
        seen = format_breakdown(best_reports, test_reports)
        log.info("best step %d of %s:\n%s%s", state.best_step, run_dir, format_table(best_reports, test_reports),
                 f"\n\nQC by how much of the category path training saw:\n{seen}" if seen else "")
    run.logger.close()
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
    nodes: NodeIndex | None = None
    """The training tree's node ids, when the QC head embeds nodes (`taxonomy.features=nodes|both`)."""
    encoders: dict[str, PairEncoder] = field(default_factory=dict)
    """Per task, the sentence encoder fitted on its training records (`model.encoder=use`); the other splits' TaskData
    carry its columns."""


def build_run_model(cfg: ExperimentConfig, data: RunData, folder: Path, arch: str):
    """The model a run on `data` starts from: its heads as wide as the features this data and config give them."""
    nodes = data.nodes
    qc_dim = (data.priors.n_features if data.priors else 0) + (nodes.slots if nodes else 0)
    return build_model(cfg, qc_dim, folder, arch, (len(nodes.nodes), nodes.slots) if nodes else (0, 0),
                       nodes.nodes if nodes else None, feature_dim(cfg.model.qi_features))


def load_run_data(cfg: ExperimentConfig, pair_tokenizer) -> RunData:
    """file -> records -> (train, val) split -> pairs -> token ids, per active task. The taxonomy and the QC prefix
    priors are fitted on this run's training records only."""
    tasks = cfg.active_tasks
    splits = load_splits(cfg, tasks)
    qc_train = splits["qc"].train if "qc" in tasks else None
    taxonomy = Taxonomy.from_paths(qc_train["category_path"]) if qc_train is not None else None
    priors = fit_priors(cfg, qc_train) if qc_train is not None else None
    nodes = NodeIndex.from_taxonomy(taxonomy) if taxonomy is not None and cfg.taxonomy.nodes else None
    data = functools.partial(make_task_data, cfg=cfg, pair_tokenizer=pair_tokenizer, priors=priors, nodes=nodes)
    encoders = {}
    if cfg.model.encoder != "none":
        for t in [t for t in tasks if t in cfg.model.encoder_tasks]:
            train = splits[t].train
            encoders[t] = PairEncoder.fit(train["origin_query"].tolist(), train[TARGET_FIELD[t]].tolist(),
                                          train["label"].tolist(), cache_dir=cfg.data.cache_dir)
            log.info("%s: sentence encoder fitted on %d training records", t, len(train))

    def scored(records, task):
        """TaskData of records the run scores (not trains on): with the encoder's columns, if any."""
        out = data(records, task)
        if task in encoders:
            out.encoder_columns = encoders[task].columns(records["origin_query"].tolist(),
                                                         records[TARGET_FIELD[task]].tolist(),
                                                         cache_dir=cfg.data.cache_dir)
        return out

    return RunData(
        splits, taxonomy, priors,
        train={t: data(splits[t].train, t, fitted_on=True) for t in tasks},
        val={t: scored(splits[t].val, t) for t in tasks},
        test={t: scored(splits[t].test, t) for t in tasks if splits[t].test is not None},
        val_all={t: scored(splits[t].val_all, t) for t in tasks if cfg.cv.fold != "none"},
        nodes=nodes, encoders=encoders,
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
            probs, own = predict_fused(model, task_data, pad_id, cfg.eval.batch_size, info.fusion.get(task),
                                       row_tokens=cfg.train.row_tokens)
            reports[task] = task_report(task_data, probs, tune=False, threshold=info.thresholds.get(task, 0.5),
                                        taxonomy=data.taxonomy, group_levels=cfg.cv.qc_group_levels)
            if own is not None:
                reports[task]["auc_model"] = ranking_scores(task_data.labels, own)["auc"]
        for task, task_data in data.val_all.items():
            probs, _ = predict_fused(model, task_data, pad_id, cfg.eval.batch_size, info.fusion.get(task),
                                     row_tokens=cfg.train.row_tokens)
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


def draw_step(step: int, sizes: dict[str, int], streams: TaskStreams, cfg: ExperimentConfig,
              accelerator: Accelerator) -> tuple[str, list]:
    """Step `step`'s task (`tasks.sampling`) and this process's micro-batches of that task's next global batch."""
    task = task_for_step(step, sizes, cfg.tasks.sampling, cfg.tasks.temperature, cfg.train.seed, cfg.tasks.weights)
    return task, shard(streams.next(task), cfg.train.micro_batch_size, accelerator.process_index,
                       accelerator.num_processes)


def train_step(model, data: TaskData, micro_batches, optimizer, accelerator, cfg, state, pad_id, batching: str,
               attention: tuple[bool, int] = (True, 0)) -> tuple[float, dict]:
    """One optimizer step on one task: forward/backward each micro-batch, then clip and step (accelerate applies
    the update only after the last micro-batch). Returns the global batch's mean loss and what its forward passes
    held (`COUNTS`); `attention`: (causal, sliding window) of the backbone, for the query-key pairs."""
    losses, skipped = [], False
    counts = dict.fromkeys(COUNTS, 0)
    balanced = data.class_weights if cfg.train.class_weight == "balanced" else None
    clear_zero3_gradient_buffer(model)
    activate(optimizer, data.task)
    for rows in micro_batches:
        lengths = data.lengths[rows]
        if batching in TREE_BATCHINGS:
            batch = pack(data, rows, pad_id, cfg.train.row_tokens, share=batching == "shared")
            computed, slots = batch["computed"], batch["input_ids"].numel()
            attended = tree_attention_pairs(batch["position_ids"], batch["used"], attention[1])
        else:
            batch = collate(data, rows, pad_id)
            computed, slots = int(lengths.sum()), len(rows) * int(lengths.max())
            attended = attention_pairs(lengths, *attention)
        for key, value in zip(COUNTS, (len(rows), int(lengths.sum()), computed, slots, *attended)):
            counts[key] += value
        with accelerator.accumulate(model):
            logits = model(task=data.task, **model_inputs(batch, accelerator.device))
            labels = batch["labels"].to(accelerator.device)
            weight = None if balanced is None else balanced[0] + (balanced[1] - balanced[0]) * labels
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels, weight=weight)
            if not finite_everywhere(loss, accelerator):
                loss = handle_nonfinite(accelerator.unwrap_model(model), data, rows, state, cfg)
                activate(optimizer, None)  # the whole step is skipped: DeepSpeed steps inside backward, so before it
                skipped = True
            backward_and_step(model, loss, optimizer, accelerator, cfg)
        losses.append(loss.detach().float())
    state.skipped_steps += skipped
    mean_loss = torch.stack(losses).mean()
    if accelerator.num_processes > 1:  # each process saw its own micro-batches: log the global batch's figures
        mean_loss = accelerator.reduce(mean_loss.to(accelerator.device), reduction="mean")
        totals = accelerator.reduce(torch.tensor(list(counts.values()), dtype=torch.float64,
                                                 device=accelerator.device), reduction="sum")
        counts = {k: type(counts[k])(v) for k, v in zip(counts, totals.tolist())}
    return float(mean_loss), counts


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


def validate(model, val_data: dict[str, TaskData], accelerator, cfg, pad_id, logger, step, taxonomy=None) -> dict:
    """Each task's report on its validation pairs. With the sentence encoder's columns, of the fused scores: the
    standardisation is measured on these pairs (`fusion_stats`, in the report as `fusion`) and the model's own AUC
    is kept beside (`auc_model`)."""
    reports = {}
    for task, data in val_data.items():
        scores = predict_probs(model, data, pad_id, cfg.eval.batch_size, accelerator, row_tokens=cfg.train.row_tokens,
                               as_logits=data.encoder_columns is not None)
        stats = fusion_stats(scores, data.encoder_columns) if data.encoder_columns is not None else None
        reports[task] = task_report(data, fuse(scores, data.encoder_columns, stats) if stats else scores,
                                    tune=cfg.eval.tune_threshold, taxonomy=taxonomy,
                                    group_levels=cfg.cv.qc_group_levels)
        if stats:
            reports[task]["fusion"] = stats
            reports[task]["auc_model"] = ranking_scores(data.labels, scores)["auc"]
    scalars = eval_scalars(reports)
    logger.log(scalars, step)
    log.info("step %d: %s", step, ", ".join(f"{k}={v:.4f}" for k, v in scalars.items()
                                             if k.startswith(("eval/f1/", "eval/auc/", "eval/auc_model/"))))
    return reports


def eval_scalars(reports: dict) -> dict[str, float]:
    """The TensorBoard scalars of one evaluation ({task: task_report}): what a training run logs at each evaluation
    and a zero-shot transfer run (`mtl.experiments.evaluate_transfer`) at step 0."""
    scalars = {}
    for task, r in reports.items():
        scalars.update({f"eval/f1/{task}": r["f1"], f"eval/precision/{task}": r["precision"],
                        f"eval/recall/{task}": r["recall"], f"eval/auc/{task}": r["auc"], f"eval/ap/{task}": r["ap"],
                        f"eval/predicted_positive/{task}": r["predicted_positive_rate"]})
        if "tuned" in r:
            scalars[f"eval/f1_tuned/{task}"] = r["tuned"]["f1"]
        if "auc_model" in r:  # fused with the sentence encoder: the model's own ranking beside
            scalars[f"eval/auc_model/{task}"] = r["auc_model"]
        scalars.update({f"eval/f1_by_language/{task}/{lang}": v for lang, v in r["f1_by_language"].items()})
        scalars.update({f"eval/auc_by_language/{task}/{lang}": v for lang, v in r["auc_by_language"].items()})
        for bucket, b in r.get("by_seen", {}).items():
            scalars.update({f"eval/f1_by_seen/{task}/{bucket}": b["f1"], f"eval/auc_by_seen/{task}/{bucket}": b["auc"]})
    if f1_avg(reports) is not None:
        scalars["eval/f1/avg"] = f1_avg(reports)
    return scalars


def log_training(logger, window: dict, scheduler, state: TrainState) -> None:
    """Losses are not scaled by `tasks.loss_weight_*` (it scales steps), so runs with other task weights compare;
    under `train.class_weight=balanced` they are the class-weighted loss, which a run without it does not log."""
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
        "pairs": state.pairs, "tokens": state.tokens, "computed_tokens": state.computed,
        "token_slots": state.slots, "attention_pairs": {"full": state.full_pairs, "sliding": state.sliding_pairs},
        "tokens_per_s": state.tokens / max(state.train_seconds, 1e-9),
        "schedule": state.schedule,
        "skipped_batches": state.skipped_batches, "skipped_steps": state.skipped_steps,
        "task_steps": dict(state.task_steps),
        "train_sizes": {t: len(s.train) for t, s in splits.items()},
        "unseen_languages": {t: sorted(set(s.val["language"]) - set(s.train["language"])) for t, s in splits.items()},
        "parameters": params, "processes": accelerator.num_processes,
        "distributed": str(accelerator.distributed_type).split(".")[-1],
        "data": {t: [r.summary() for r in s.reports] for t, s in splits.items()},
        "split": {t: s.split for t, s in splits.items() if s.split is not None},
    }


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
