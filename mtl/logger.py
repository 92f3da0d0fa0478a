"""Metric loggers: one small interface, TensorBoard and a JSON-lines file behind it.

Scalars are slash-namespaced and keyed by optimizer step, with the same names in every mode so runs under one log
root line up in TensorBoard: `train/loss/qc`, `train/loss/qi`, `train/lr`, `perf/tokens_per_s`, `eval/f1/qc`,
`eval/f1/qi`, `eval/f1/avg`, `eval/auc/<task>`, `eval/ap/<task>`, `eval/f1_by_language/<task>/<lang>`,
`eval/auc_by_language/<task>/<lang>`. Only the main process logs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Protocol

from mtl.io import atomic_write_text

class MetricLogger(Protocol):
    def log(self, scalars: dict[str, float], step: int) -> None: ...

    def log_hparams(self, hparams: dict, metrics: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class JsonlLogger:
    """Appends `{"step": s, "name": value, ...}` lines to metrics.jsonl: greppable without TensorBoard (`mtl report`
    reads the event files and metrics.json).

    `purge_step` (a resumed run): lines logged at that step or later by the interrupted run are dropped first, since
    the resumed run logs those steps again; like SummaryWriter's `purge_step`."""

    def __init__(self, path: str | Path, purge_step: int | None = None):
        path = Path(path)
        if purge_step is not None and path.is_file():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                    if json.loads(line).get("step", -1) < purge_step]
            atomic_write_text(path, "".join(kept))
        self.file = open(path, "a", encoding="utf-8")

    def log(self, scalars, step):
        self.file.write(json.dumps({"step": step, **scalars}) + "\n")
        self.file.flush()

    def log_hparams(self, hparams, metrics):
        self.file.write(json.dumps({"hparams": hparams, "final": metrics}) + "\n")
        self.file.flush()

    def close(self):
        self.file.close()


class TensorBoardLogger:
    def __init__(self, log_dir: str | Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def log(self, scalars, step):
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def log_hparams(self, hparams, metrics):
        # SummaryWriter.add_hparams writes into a new sub-folder, which TensorBoard shows as a separate run;
        # writing the three summaries into this run's own file keeps hparams and curves together.
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in hparams.items()}
        clean = {f"hparam/{k}": v for k, v in metrics.items() if v is not None and math.isfinite(v)}
        for summary in hparams_summary(flat, clean):
            self.writer.file_writer.add_summary(summary)
        for name, value in clean.items():
            self.writer.add_scalar(name, value, 0)
        self.writer.flush()

    def close(self):
        self.writer.close()


class MultiLogger:
    def __init__(self, loggers: list[MetricLogger]):
        self.loggers = loggers

    def log(self, scalars, step):
        for logger in self.loggers:
            logger.log(scalars, step)

    def log_hparams(self, hparams, metrics):
        for logger in self.loggers:
            logger.log_hparams(hparams, metrics)

    def close(self):
        for logger in self.loggers:
            logger.close()


class NullLogger:
    """What non-main processes get."""

    def log(self, scalars, step):
        pass

    def log_hparams(self, hparams, metrics):
        pass

    def close(self):
        pass


def build_logger(run_dir: Path, tensorboard: bool, is_main: bool, purge_step: int | None = None) -> MetricLogger:
    """`purge_step`: the first step a resumed run will log; what the interrupted run logged from there on is
    dropped, so no step appears twice."""
    if not is_main:
        return NullLogger()
    loggers: list[MetricLogger] = [JsonlLogger(run_dir / "metrics.jsonl", purge_step)]
    if tensorboard:
        loggers.append(TensorBoardLogger(run_dir, purge_step))
    return MultiLogger(loggers)
