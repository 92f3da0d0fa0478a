"""Run folders and checkpoints: `best/`, `final/` and resumable `step-N/` folders, written so that a folder is
complete or absent, and read back on `--resume`."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from accelerate.utils import DistributedType

from mtl.config import ExperimentConfig, save_config
from mtl.errors import ConfigError
from mtl.model import ModelInfo, save_model


def prepare_run_dir(run_dir: Path, cfg: ExperimentConfig, resume: bool) -> None:
    """A new run needs a folder with no run in it (so runs are never mixed); one holding only the config of a run
    that failed while loading its data is taken over. Stale `*.tmp` from a crash are removed."""
    if not resume and run_dir.exists() and any(p.name != "config.yaml" for p in run_dir.iterdir()):
        raise ConfigError(f"{run_dir} already holds a run: use --resume {run_dir} or another log.run_name")
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob("*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    save_config(cfg, run_dir / "config.yaml")


def write_model(accelerator, model, folder: Path, cfg, info: ModelInfo, reports: dict, taxonomy,
                card: str = "", encoders: dict | None = None) -> None:
    """Save a model folder with the thresholds tuned on validation (`best/`, `final/`), its model card and, with
    `model.encoder=use`, each task's encoder state and the validation standardisation its scores are fused by."""
    state_dict = accelerator.get_state_dict(model)  # collective under ZeRO-3: every process must call it
    if accelerator.is_main_process:
        info = copy.deepcopy(info)
        info.thresholds = {t: r.get("tuned", {}).get("threshold", 0.5) for t, r in reports.items()}
        info.fusion = {t: r["fusion"] for t, r in reports.items() if "fusion" in r}
        info.metrics = reports
        save_model(accelerator.unwrap_model(model), folder, cfg, info, taxonomy, state_dict, card, encoders)
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator, model, run_dir: Path, step: int, cfg, info: ModelInfo, taxonomy,
                    encoders: dict | None = None) -> Path:
    """`step-N/` = a model folder + `training/` (optimizer, scheduler, sampler, loop counters, RNG of every process).
    Written under `step-N.tmp/` and renamed when complete, so a checkpoint is complete or absent."""
    final, tmp = run_dir / f"step-{step:06d}", run_dir / f"step-{step:06d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    write_model(accelerator, model, tmp, cfg, info, {}, taxonomy, encoders=encoders)
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
