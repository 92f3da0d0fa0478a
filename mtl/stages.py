"""Stages of a run: what `mtl train` dispatches on (`cv.fold`, `train.mode`) before the training loop runs.

A plain run is one call of `mtl.train.train`; TAPT is two (the other task, then the target task from its weights);
several CV folds are one per fold, followed by the out-of-fold summary (`mtl.cv`). A stage that finished (its
`metrics.json` exists) is not trained again, and a stage cut off mid-way continues from its checkpoint, so
`mtl train --resume <run>` resumes a composite run too.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
from accelerate.state import AcceleratorState

from mtl.checkpoint import latest_checkpoint, prepare_run_dir
from mtl.config import ExperimentConfig, TASKS
from mtl.data.tasks import check_inputs
from mtl.io import atomic_write_text
from mtl.train import train

log = logging.getLogger(__name__)


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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_tapt(cfg: ExperimentConfig, run_dir: Path, resume: bool, resume_dir: Path | None = None) -> dict:
    """The paper's schedule: stage 1 trains on the other task, stage 2 fine-tunes on the target task starting from
    stage 1's `final/` (its adapter, and its head copied into the target head: `mtl.model.build_model`)."""
    target = cfg.train.task
    source = next(t for t in TASKS if t != target)
    source_dir, target_dir = run_dir / f"source-{source}", run_dir / f"target-{target}"

    stage1 = copy.deepcopy(cfg)
    stage1.train.mode, stage1.train.task = "single", source
    stage1.train.max_steps = cfg.train.tapt_steps or cfg.train.max_steps
    stage1.model.encoder = "none"  # stage 2 takes only stage 1's weights: no encoder to fit for it
    if not (source_dir / "metrics.json").is_file():
        train(stage1, source_dir, stage_resumable(source_dir, resume), tags={"tapt_stage": f"source-{source}"},
              resume_dir=resume_dir or run_dir)

    stage2 = copy.deepcopy(cfg)
    stage2.train.mode, stage2.train.task = "single", target
    stage2.model.init_from = str(source_dir / "final")
    summary = train(stage2, target_dir, stage_resumable(target_dir, resume), tags={"tapt_stage": f"target-{target}"},
                    resume_dir=resume_dir or run_dir)
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
