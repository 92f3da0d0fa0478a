"""The model card: `README.md` in every `best/` and `final/` model folder, so a folder found on its own says what
made it. Written from what the trainer already holds (its config, the validation reports of the saved step, its step
counter and training time, the SHA-256 of the data files it read); nothing is measured for it."""

from __future__ import annotations

import functools
import hashlib
import shlex
from pathlib import Path

from mtl.config import ExperimentConfig, flatten, to_dict
from mtl.metrics import format_language_table, format_table

COMMAND: list[str] | None = None
"""The command line of this `mtl` process, as `mtl.cli.main` received it; None when training was started from Python."""

KEY_SETTINGS = ("train.mode", "train.task", "model.init_from", "train.max_steps", "train.global_batch_size",
                "train.lr", "train.seed", "tasks.sampling", "data.max_length", "data.template", "data.train_limit",
                "augment.translation", "taxonomy.features", "cv.fold", "cv.strategy", "model.dtype", "model.num_layers",
                "model.pooling", "model.qi_features", "model.encoder", "lora.r", "eval.select", "taxonomy.render")
"""The settings the card repeats (empty ones left out); config.yaml beside it has them all."""


def sha256(path: str | Path) -> str:
    """A file's SHA-256, hashed once per content version (path, size, mtime): the folds and stages of a run, and
    the runs of a grid, read the same files."""
    path = Path(path).expanduser().resolve()
    stat = path.stat()
    return _sha256(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def data_hashes(cfg: ExperimentConfig, keys: list[str]) -> dict[str, tuple[str, str]]:
    """{config key: (path, SHA-256)} of the data files a run reads."""
    files = flatten(to_dict(cfg))
    return {key: (files[key], sha256(files[key])) for key in keys}


def model_card(cfg: ExperimentConfig, reports: dict, hashes: dict[str, tuple[str, str]], step: int, seconds: float,
               role: str) -> str:
    """README.md of a model folder saved at `step` after `seconds` of training steps; `reports`: its validation
    reports (`mtl.evaluate.task_report`); `role`: why this step was saved."""
    settings = flatten(to_dict(cfg))
    command = (f"`{shlex.join(COMMAND)}` (the arguments of the `mtl` process)" if COMMAND
               else "unknown (not started from the `mtl` command line)")
    lines = [
        f"# mtl model: {'+'.join(t.upper() for t in cfg.active_tasks)}, train.mode={cfg.train.mode}",
        "",
        f"Written by `mtl train` at step {step} of {cfg.train.max_steps} ({role}), from what the run recorded.",
        "",
        f"- Backbone: `{cfg.model.backbone}`{f' ({cfg.model.gguf_file})' if cfg.model.gguf_file else ''}, frozen; "
        f"this folder holds a LoRA adapter (r={cfg.lora.r}, alpha={cfg.lora.alpha}) and the task heads. Score "
        "with `mtl predict --model <this folder>`; `mtl export` writes it as Hugging Face folders for serving.",
        f"- Training: {step} steps, {seconds:.0f} s of training steps (evaluation and saving not counted).",
        f"- Command: {command}.",
        "- Config: [config.yaml](config.yaml). Key settings: "
        + ", ".join(f"`{k}={settings[k]}`" for k in KEY_SETTINGS if settings[k] != ""),
        "",
        "## Data",
        "",
        "| config key | file | SHA-256 |",
        "|---|---|---|",
        *(f"| `{key}` | `{path}` | `{digest}` |" for key, (path, digest) in hashes.items()),
        "",
        f"## Validation at step {step}",
        "",
        "F1 at 0.5, ROC-AUC, and F1 at the threshold tuned on these records (`thr.`, saved in model.json and used by "
        "`mtl predict`):",
        "",
        format_table(reports),
        "",
        "F1 (at 0.5) and ROC-AUC per language:",
        "",
        format_language_table(reports),
    ]
    return "\n".join(lines) + "\n"
