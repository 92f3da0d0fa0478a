"""The comparison report: one markdown file and PNG plots from the run folders under a log root.

    mtl report runs/compare                          # writes runs/compare/report.md and the PNGs beside it
    mtl report runs/compare --out benchmarks/compare

Reads each run's `metrics.json` (the best checkpoint's F1, steps, time, parameters), its TensorBoard event files
(the evaluation curves; the F1 figures too when a run has no `metrics.json` yet) and, when `mtl compare` made the
root, `grid.json` (which runs belong, the budget, the command and machine) and each run's `experiment.json`. A run of
the grid that failed or never ran is a row saying so, not a gap. Also writes a TensorBoard custom-scalar layout at
the root, so `tensorboard --logdir <root>` shows every run's `eval/f1/qc` on one chart (and the same for QI). A root
of per-seed or per-fold grids (`mtl compare --seeds` / `--fold 0,1,2`: ROOT/seed-S/, ROOT/fold-K/) gets one report
per grid and, at the root, the systems and runs as mean ± std over them.

Every figure is computed here from what the runs logged; nothing in the output is meant to be edited by hand.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
import typing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field, NonNegativeInt, PositiveInt
from typing_extensions import Required, TypedDict

from mtl.config import SEED_MAX, TASKS, TasksConfig, read_yaml
from mtl.errors import ConfigError, DataError, MtlError
from mtl.experiments import (EVALS_PER_STAGE, FAILED_FILE, GRID_FILE, RUN_FILE, Budget, RunSpec, budget_policy,
                             read_grid_file, replicate_grids)
from mtl.io import atomic_write_text, check_output_dir, check_schema, input_problem, read_input_bytes, read_json
from mtl.measure import DASH, cores, mib
from mtl.metrics import format_table, selection_score

log = logging.getLogger(__name__)

REPORT_FILE = "report.md"
CURVE_PLOTS = {task: f"f1_curves_{task}.png" for task in TASKS}
LANGUAGE_PLOT = "f1_by_language.png"
BRANCH_PLOT = "qc_f1_by_branch.png"
MOST_ERRORS = 8
"""Branches listed in the report's "QC by category" section."""
LAYOUT_SUFFIX = ".layout"
"""Suffix of the event file holding the custom-scalar layout at the root, so a new report replaces the old one."""
BUDGET_KEYS = ("train.mode=", "train.max_steps=", "train.eval_every=", "train.tapt_steps=")
"""Overrides that set a run's schedule rather than what it ablates (left out of the ablation table's "changes")."""
SAMPLING_KEYS = ("tasks.sampling=", "tasks.temperature=")
"""Overrides that change nothing but the task schedule: an ablation of only these repeats its compared run when the
schedules come out the same."""


@dataclass
class RunResult:
    """What the report knows about one run; F1 figures are the best checkpoint's, at threshold 0.5."""

    name: str
    status: str = "ok"
    """ok (metrics.json), incomplete (event files only: still running or killed), FAILED, missing, or unreadable (a
    file of the folder is not what the trainer writes: the message names it and says why)."""
    message: str = ""
    spec: dict = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    steps: int | None = None
    stage_steps: list[int] = field(default_factory=list)
    """Optimizer steps of every stage the model went through (TAPT: source, target; fine-tune: source run, own)."""
    best_step: int | None = None
    f1: dict[str, float] = field(default_factory=dict)
    """Per task and `avg`."""
    f1_tuned: dict[str, float] = field(default_factory=dict)
    auc: dict[str, float] = field(default_factory=dict)
    """Validation ROC-AUC per task at the best checkpoint."""
    test_f1: dict[str, float] = field(default_factory=dict)
    """Held-out test F1 of the best checkpoint at the threshold tuned on validation, per task and `avg` (empty: the
    run had no test split)."""
    test_auc: dict[str, float] = field(default_factory=dict)
    test_reports: dict = field(default_factory=dict)
    """The held-out test split's reports per task (metrics.json's `test`)."""
    f1_by_language: dict[str, dict[str, float]] = field(default_factory=dict)
    auc_by_language: dict[str, dict[str, float]] = field(default_factory=dict)
    """Validation ROC-AUC per task and language at the best checkpoint (empty: not recorded)."""
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """`eval/f1/<task>` per step, x shifted by the steps of earlier stages."""
    reports: dict = field(default_factory=dict)
    train_seconds: float | None = None
    wall_seconds: float | None = None
    resumed: bool = False
    """The wall time is the last attempt's only: it continued from a checkpoint an earlier attempt left."""
    tokens_per_s: float | None = None
    trainable: int | None = None
    total_params: int | None = None
    model_bytes: int | None = None
    unseen_languages: dict[str, list[str]] = field(default_factory=dict)
    other_load: float | None = None
    """CPU cores other processes kept busy on average during the run (None: not recorded)."""
    config: dict = field(default_factory=dict)
    """The run's saved config.yaml (TAPT: the target stage's)."""
    train_sizes: dict[str, int] = field(default_factory=dict)
    """Training pairs per task trained on."""
    sampling: dict = field(default_factory=dict)
    """Task sampling of a joint run (`tasks.sampling`, `tasks.temperature`); empty for other runs."""
    task_steps: dict[str, int] = field(default_factory=dict)
    """Optimizer steps each task got (a joint run: what its task schedule drew; TAPT: both stages)."""
    task_sequence: str = ""
    """The task of every step as the trainer recorded it (metrics.json's `schedule`)."""

    @property
    def has_figures(self) -> bool:
        return self.status in ("ok", "incomplete") and bool(self.f1)


Unit = Annotated[float, Field(ge=0, le=1)]
"""An F1, precision, rate or threshold (the report takes square roots of x (1 - x))."""
Steps = Annotated[int, Field(ge=0, le=10_000_000)]
Sampling = typing.get_type_hints(TasksConfig)["sampling"]


class Bucket(TypedDict):
    """QC pairs of one category bucket or branch (`mtl.metrics.breakdown`)."""

    n: NonNegativeInt
    f1: Unit
    auc: float
    errors: NonNegativeInt


class TaskReport(TypedDict, total=False):
    f1: Required[Unit]
    precision: Required[Unit]
    recall: Required[Unit]
    n: Required[NonNegativeInt]
    positive_rate: Unit
    threshold: Unit
    f1_by_language: dict[str, Unit]
    auc_by_language: dict[str, Unit]
    tuned: dict[str, Unit]
    baseline: dict[str, Unit]
    by_seen: dict[str, Bucket]
    by_branch: dict[str, Bucket]
    by_depth: dict[str, Bucket]


class TestReport(TypedDict, total=False):
    """What the report reads of a task's held-out test report (metrics.json's `test`)."""

    f1: Unit
    auc: float
    n: NonNegativeInt
    at_threshold: dict[str, Unit | dict[str, Unit]]
    by_seen: dict[str, Bucket]
    by_branch: dict[str, Bucket]
    by_depth: dict[str, Bucket]


class TestSplit(TypedDict, total=False):
    reports: dict[str, TestReport]


class Checkpoint(TypedDict):
    headline: dict[str, Unit]
    reports: dict[str, TaskReport]


class StageCost(TypedDict, total=False):
    """What the report reads of a TAPT source stage's metrics.json: its cost."""

    steps: NonNegativeInt | None
    train_seconds: float | None
    tokens: int | None
    task_steps: dict[str, NonNegativeInt]


class MetricsFile(StageCost, total=False):
    """What the report reads of a run's metrics.json (`mtl.train.summarize` writes it); other keys are ignored."""

    best: Required[Checkpoint]
    test: TestSplit
    tasks: list[str]
    best_step: int | None
    parameters: dict[str, int]
    tokens_per_s: float | None
    data: dict[str, list[str]]
    train_sizes: dict[str, NonNegativeInt]
    unseen_languages: dict[str, list[str]]
    schedule: Annotated[str, Field(pattern=r"^[01]*$")]


Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
Temperature = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ExperimentFile(TypedDict, total=False):
    """What the report reads of a run's experiment.json (`mtl.experiments.run_grid` writes it)."""

    spec: RunSpec
    wall_seconds: float | None
    resumed: bool
    other_load: float | None


DataSection = TypedDict("DataSection", {"qc_train": str, "qi_train": str, "qc_dev": str, "qi_dev": str,
                                        "train_limit": NonNegativeInt, "dev_limit": int, "max_length": int},
                        total=False)
TrainSection = TypedDict("TrainSection", {"mode": str, "seed": Seed, "max_steps": Steps,
                                          "global_batch_size": PositiveInt, "lr": float}, total=False)
TasksSection = TypedDict("TasksSection", {"sampling": Sampling, "temperature": Temperature}, total=False)
ModelSection = TypedDict("ModelSection", {"backbone": str, "dtype": str}, total=False)
LoraSection = TypedDict("LoraSection", {"r": int}, total=False)
CVSection = TypedDict("CVSection", {"fold": str}, total=False)


class ConfigFile(TypedDict, total=False):
    """What the report reads of a run's saved config.yaml: a mapping of sections, and of their keys those the report
    shows (other keys are ignored, so configs of older and newer runs read alike)."""

    data: DataSection
    train: TrainSection
    tasks: TasksSection
    model: ModelSection
    lora: LoraSection
    cv: CVSection


def write_report(root: str | Path, out: str | Path | None = None) -> Path:
    """Read every run under `root`, write report.md and the PNGs to `out` (default: `root`) and the TensorBoard
    layout to `root` (skipped with a warning where `root` is not writable); returns the report's path. A run folder
    that cannot be read is a row saying why; a grid.json that cannot be read is a line saying why."""
    root = Path(root)
    problem = input_problem(root, "folder")
    if problem:
        raise ConfigError(f"{root}: {problem}")
    check_output_dir(out or root, "--out" if out else f"{root} (no --out given, so the report goes there)")
    out = Path(out) if out else root
    replicates = replicate_roots(root)
    if replicates and not (root / GRID_FILE).is_file():
        out.mkdir(parents=True, exist_ok=True)
        return write_replicates_report(root, out, *replicates)
    notes = []
    try:
        grid = read_grid(root)
    except MtlError as err:
        log.warning("%s; reporting the run folders found instead", err)
        grid, notes = {}, [f"**{GRID_FILE} could not be read** ({err}): the runs below are the run folders found."]
    runs = read_runs(root, grid)
    if not runs:
        raise ConfigError(f"{root}: holds no runs (folders with metrics.json, event files or {FAILED_FILE})")
    out.mkdir(parents=True, exist_ok=True)
    plot_curves(runs, out)
    plot_languages(runs, out)
    plot_branches(runs, out)
    if os.access(root, os.W_OK | os.X_OK):
        write_layout(root)
    else:
        log.warning("%s: no permission to write there, so no TensorBoard layout was written", root)
    path = out / REPORT_FILE
    text = render(root, grid, runs, notes)
    # A folder name may hold bytes that are not UTF-8 (Python holds them as surrogates): written as \udcff escapes.
    atomic_write_text(path, text.encode("utf-8", "backslashreplace").decode("utf-8"))
    log.info("wrote %s (%d runs: %s)", path, len(runs),
             ", ".join(f"{n} {s}" for s, n in Counter(r.status for r in runs.values()).items()))
    return path


def replicate_roots(root: Path) -> tuple[str, dict[int, Path]] | None:
    """(unit, {value: grid root}) of a multi-seed or multi-fold comparison (`mtl.experiments.replicate_grids`), in
    value order; None for one grid."""
    found = replicate_grids(root)
    if len(found) > 1:
        raise ConfigError(f"{root}: holds both seed-S/ and fold-K/ grids; report each kind from its own root")
    return next(((unit, dict(sorted((int(f.name[len(unit) + 1:]), f) for f in folders)))
                 for unit, folders in found.items()), None)


def write_replicates_report(root: Path, out: Path, unit: str, roots: dict[int, Path]) -> Path:
    """One full report per seed or fold (under `out/<unit>-N/`) and, at `out`, the systems over them: test F1 and
    AUC mean ± std, and whether each difference to the joint model exceeds the spread between them."""
    per_unit, grids = {}, {}
    for value, folder in roots.items():
        write_report(folder, out / folder.name)
        grids[value] = read_grid(folder)
        per_unit[value] = read_runs(folder, grids[value])
    systems = next((g["systems"] for g in grids.values() if g.get("systems")), [])
    sections = [replicates_header(root, unit, grids, per_unit), replicates_systems_table(systems, per_unit, unit),
                replicates_runs_table(per_unit, unit), replicates_ablation_table(per_unit, unit),
                f"## Per {unit}\n\n" + "\n".join(f"- {unit} {v}: [`{f.name}/{REPORT_FILE}`]({f.name}/{REPORT_FILE})"
                                                  for v, f in roots.items())]
    path = out / REPORT_FILE
    atomic_write_text(path, "\n\n".join(s for s in sections if s) + "\n")
    log.info("wrote %s (%d %ss)", path, len(roots), unit)
    return path


def replicates_header(root: Path, unit: str, grids: dict[int, dict], per_unit: dict[int, dict[str, RunResult]]) -> str:
    first = next(iter(grids.values()))
    statuses = Counter(r.status for runs in per_unit.values() for r in runs.values())
    commands = sorted({s.get("command", "") for g in grids.values() for s in g.get("sessions", [])} - {""})
    if unit == "seed":
        what = (f"{len(grids)} seeds (`train.seed` {', '.join(map(str, grids))}) under `{root}`; the data split "
                "(`data.split_seed`: test split, folds, validation sample) is the same in every seed, so seeds "
                "differ in initialisation, data order and dropout only.")
        shown = [o for o in first.get("base_overrides", []) if not o.startswith("train.seed=")]
        validated = f", validated on CV fold {first['fold']}" if first.get("fold", "none") != "none" else ""
    else:
        folds = "CV folds" if len(grids) > 1 else "CV fold"
        what = (f"{len(grids)} {folds} ({', '.join(map(str, grids))}) under `{root}`: each fold's runs train on the "
                "other folds and select their checkpoint and threshold on theirs; the held-out test split (whole "
                "queries no fold holds) is the same for every fold, so test figures differ by training records and "
                "validation as well as by a run's own noise. The ablations that name their own fold ran once, in "
                "the first fold's grid.")
        shown, validated = first.get("base_overrides", []), ""
    lines = [f"# Single vs joint vs TAPT over {unit}s: comparison report", "",
             f"Generated by `mtl report {root}` on {time.strftime('%Y-%m-%d %H:%M %Z')} from the grids of {what} "
             "F1 is positive-class F1; *test* figures are the held-out test split scored once by each run's "
             "selected model at the threshold tuned on validation.",
             "", "Commands: " + "; ".join(f"`{c}`" for c in commands) if commands else "",
             f"Machine: {first.get('sessions', [{}])[0].get('machine', '?')}", "",
             f"Base overrides (every run, besides its {unit}): "
             f"`{' '.join(shown) or 'none'}`"
             + validated + f". **Budget.** {first.get('budget', '')}", "",
             "Runs: " + ", ".join(f"{n} {s}" for s, n in statuses.items()) + "."]
    return "\n".join(line for line in lines if line is not None)


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population std of the seeds' or folds' values, as in the trainer's CV summary."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _spread(values: list[float]) -> str:
    """`mean ± std (n)`; one value alone has no spread to show."""
    if not values:
        return DASH
    if len(values) == 1:
        return f"{values[0]:.4f} (1)"
    mean, std = _mean_std(values)
    return f"{mean:.4f} ± {std:.4f} ({len(values)})"


SCORE_COLUMNS = ("F1 QC", "F1 QI", "F1 avg", "AUC QC", "AUC QI")
"""`system_scores`' columns, in order."""


def replicates_systems_table(systems: list, per_unit: dict[int, dict[str, RunResult]], unit: str) -> str:
    """Per system, test F1 and AUC mean ± std over seeds or folds, and each system's paired difference to the
    joint model."""
    if not systems:
        return ""
    scores = {label: {value: system_scores(runs, qc, qi) for value, runs in per_unit.items()}
              for label, qc, qi in systems}
    columns = range(len(SCORE_COLUMNS))
    rows = [[label, *(_spread([v[i] for v in scores[label].values() if v[i] is not None]) for i in columns)]
            for label, _, _ in systems]
    text = (f"## Systems over {unit}s\n\nTest F1 and ROC-AUC (validation figures for runs without a test split), "
            f"mean ± standard deviation over {unit}s (number of {unit}s with a figure).\n\n"
            + markdown_table(["system", *SCORE_COLUMNS], rows))
    reference = next((label for label, qc, qi in systems if qc == qi), None)
    if reference is None:
        return text
    lines, task_rows = [], []
    for label, _, _ in systems:
        if label == reference:
            continue
        by_column = [paired_scores(scores[reference], scores[label], i) for i in columns]
        paired, ref_values, other_values = by_column[2]
        if paired:
            verdict = exceeds_spread(paired, ref_values, other_values, unit)
            lines.append(f"- {reference} minus {label}: F1 avg {_spread(paired)}, per {unit} "
                         f"{', '.join(f'{d:+.4f}' for d in paired)}: **{verdict}**")
        per_task = [by_column[i] for i in (0, 1, 3, 4)]
        if any(column[0] for column in per_task):
            task_rows.append([label, *(f"{_spread(d)}: {exceeds_spread(d, a, b, unit)}" if d else DASH
                                       for d, a, b in per_task)])
    if not lines and not task_rows:
        return text
    same = "same seed, same data" if unit == "seed" else "same fold: same training and validation records"
    return (text + f"\n\nPaired by {unit} ({same}), the joint model minus each other system. A "
            f"difference *exceeds the {unit} spread* when every {unit} has the same sign and the mean is larger "
            f"than the standard deviation of either system over {unit}s; otherwise it is within noise.\n\n"
            + "\n".join(lines)
            + (f"\n\nPer task, by the same rule ({reference} minus each system, test F1 and AUC):\n\n"
               + markdown_table([f"{reference} minus", "F1 QC", "F1 QI", "AUC QC", "AUC QI"], task_rows)
               if task_rows else ""))


def paired_scores(reference: dict[int, tuple], other: dict[int, tuple], column: int) -> tuple[list, list, list]:
    """Of one score column: the per-seed (or per-fold) differences reference minus other (where both have a
    figure), and each system's values over its seeds (folds)."""
    paired = [reference[s][column] - other[s][column] for s in reference
              if s in other and reference[s][column] is not None and other[s][column] is not None]
    return (paired, [v[column] for v in reference.values() if v[column] is not None],
            [v[column] for v in other.values() if v[column] is not None])


def exceeds_spread(paired: list[float], a: list[float], b: list[float], unit: str = "seed") -> str:
    """The headline's verdict on one paired difference over seeds or folds."""
    mean = sum(paired) / len(paired)
    spread = max(_mean_std(x)[1] for x in (a, b))
    same_sign = all(d > 0 for d in paired) or all(d < 0 for d in paired)
    if len(paired) < 2:
        return f"one {unit}: no spread to compare with"
    if same_sign and abs(mean) > spread:
        return f"{'better' if mean > 0 else 'worse'}, beyond the {unit} spread (±{spread:.4f})"
    return f"within the {unit} spread (±{spread:.4f})"


def replicates_runs_table(per_unit: dict[int, dict[str, RunResult]], unit: str) -> str:
    names = list(dict.fromkeys(n for runs in per_unit.values() for n in runs))
    rows = []
    for name in names:
        runs = [r[name] for r in per_unit.values() if name in r and r[name].has_figures]
        rows.append([f"`{name}`", str(len(runs)),
                     *(_spread([r.test_f1[k] for r in runs if k in r.test_f1]) for k in ("qc", "qi", "avg")),
                     *(_spread([r.test_auc[k] for r in runs if k in r.test_auc]) for k in TASKS),
                     _spread([r.f1["avg"] for r in runs if "avg" in r.f1])])
    return (f"## Runs over {unit}s\n\nEach run's test F1 and AUC, mean ± std over the {unit}s that completed it "
            "(validation F1 avg beside).\n\n"
            + markdown_table(["run", f"{unit}s", "test F1 QC", "test F1 QI", "test F1 avg", "test AUC QC",
                              "test AUC QI", "val F1 avg"], rows))


def replicates_ablation_table(per_unit: dict[int, dict[str, RunResult]], unit: str) -> str:
    """Each ablation minus the run it is compared with, paired by seed or fold, on the held-out test split: one
    switch's effect with the spread it has to beat."""
    names = list(dict.fromkeys(n for runs in per_unit.values() for n, r in runs.items()
                               if r.spec.get("group") == "ablations" and r.spec.get("baseline")))
    columns = [("test_f1", "qc"), ("test_auc", "qc"), ("test_f1", "qi"), ("test_auc", "qi"), ("test_f1", "avg")]
    rows = []
    for name in names:
        baseline = next(r[name].spec["baseline"] for r in per_unit.values() if name in r)
        pairs = [(runs[name], runs[baseline]) for runs in per_unit.values()
                 if name in runs and baseline in runs and runs[name].has_figures and runs[baseline].has_figures]
        cells = []
        for field_name, key in columns:
            values = [(getattr(a, field_name).get(key), getattr(b, field_name).get(key)) for a, b in pairs]
            values = [(a, b) for a, b in values if a is not None and b is not None]
            if not values:
                cells.append(DASH)
                continue
            paired = [a - b for a, b in values]
            cells.append(f"{_spread(paired)}: "
                         f"{exceeds_spread(paired, [a for a, _ in values], [b for _, b in values], unit)}")
        if any(c != DASH for c in cells):
            rows.append([f"`{name}`", f"`{baseline}`", str(len(pairs)), *cells])
    if not rows:
        return ""
    return (f"## Ablations over {unit}s\n\nEach ablation minus the run it changes one switch of, paired by {unit}, "
            f"on the held-out test split (mean ± std of the differences over the {unit}s where both have a figure). "
            f"A difference exceeds the {unit} spread when every {unit} has the same sign and the mean is larger than "
            f"the standard deviation of either run over those {unit}s; \"better\" means the ablation scores higher. "
            "Runs without a test split have no row.\n\n"
            + markdown_table(["run", "minus", f"{unit}s", "Δ test F1 QC", "Δ test AUC QC", "Δ test F1 QI",
                              "Δ test AUC QI", "Δ test F1 avg"], rows))


def read_grid(root: Path) -> dict:
    """grid.json checked against GridFile, or {} when the root has none."""
    return read_grid_file(root / GRID_FILE) if input_problem(root / GRID_FILE) != "file not found" else {}


def read_runs(root: Path, grid: dict) -> dict[str, RunResult]:
    """The grid's runs in grid order (those never started become `missing`), then any other run folder."""
    specs = {s["name"]: s for s in grid.get("specs", [])}
    names = list(specs)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if folder.name not in specs and _looks_like_run(folder):
            names.append(folder.name)
    runs = {name: read_run(root / name, specs.get(name, {})) for name in names}
    for run in runs.values():  # a fine-tune's model went through its source run's steps first
        source = runs.get(run.spec.get("source", ""))
        if run.spec.get("kind") == "finetune" and source and source.steps is not None:
            run.stage_steps = [source.steps, *run.stage_steps]
            run.curves = {t: [(s + source.steps, v) for s, v in c] for t, c in run.curves.items()}
    return runs


def read_run(run_dir: Path, spec: dict | None = None) -> RunResult:
    """What the report knows about one run folder; one it cannot read (a file that is not what the trainer
    writes) is status `unreadable`, with the file and the reason as its message."""
    try:
        return _read_run(run_dir, spec)
    except MtlError as err:
        return RunResult(run_dir.name, status="unreadable", message=str(err), spec=spec or {})


def _read_run(run_dir: Path, spec: dict | None) -> RunResult:
    run = RunResult(run_dir.name, spec=spec or {})
    if not run_dir.is_dir():
        run.status, run.message = "missing", "never ran (no run folder)"
        return run
    source_stage = next(iter(sorted(run_dir.glob("source-*"))), None)
    offset = 0
    if source_stage:  # TAPT: the target stage is the model; its curves continue after the source stage's steps
        target_stage = next(iter(sorted(run_dir.glob("target-*"))), None)
        offset = _read_json(source_stage / "metrics.json", StageCost).get("steps") or \
            read_events(source_stage).last_step or 0
        run.stage_steps = [offset]
        events = read_events(target_stage) if target_stage else Events()
    else:
        events = read_events(run_dir)
    scalars = events.scalars
    run.curves = {t: [(s + offset, v) for s, v in scalars[f"eval/f1/{t}"]] for t in TASKS if f"eval/f1/{t}" in scalars}

    experiment = _read_json(run_dir / RUN_FILE, ExperimentFile)
    run.spec = run.spec or experiment.get("spec", {})
    run.wall_seconds = experiment.get("wall_seconds")
    run.resumed = bool(experiment.get("resumed"))
    run.other_load = experiment.get("other_load")
    run.config = _read_config(run_dir)
    summary = _read_json(run_dir / "metrics.json", MetricsFile)
    run.train_sizes, run.unseen_languages = summary.get("train_sizes") or {}, summary.get("unseen_languages") or {}
    run.task_steps, run.task_sequence = dict(summary.get("task_steps") or {}), summary.get("schedule") or ""
    if source_stage:
        run.task_steps.update(_read_json(source_stage / "metrics.json", StageCost).get("task_steps") or {})
    tasks = run.config.get("tasks", {})
    if run.config.get("train", {}).get("mode") == "mtl" and {"sampling", "temperature"} <= set(tasks):
        run.sampling = {"sampling": tasks["sampling"], "temperature": tasks["temperature"]}
    if (run_dir / FAILED_FILE).exists():
        run.status = "FAILED"
        text = read_input_bytes(run_dir / FAILED_FILE).decode("utf-8", errors="replace")
        run.message = next(iter(text.strip().splitlines()), f"(empty {FAILED_FILE} file)")[:300]
        return run
    if summary:
        from_summary(run, summary, source_stage)
    elif scalars:
        run.status, run.message = "incomplete", "no metrics.json: best evaluation so far, from the event files"
        from_events(run, events)
    else:
        run.status, run.message = "incomplete", "no metrics.json and no evaluation logged"
    run.stage_steps = run.stage_steps + ([run.steps] if run.steps is not None else [])
    if run.wall_seconds is None:
        run.wall_seconds = events.wall_span
    return run


def from_summary(run: RunResult, summary: dict, source_stage: Path | None) -> None:
    """Figures of a finished run from its metrics.json (for TAPT, the target stage's, plus the source's cost)."""
    best = summary["best"]
    run.tasks = list(summary.get("tasks") or best["reports"])
    run.reports = best["reports"]
    run.f1 = {k.split("/", 1)[1]: v for k, v in best["headline"].items() if k.startswith("f1/")}
    run.f1_tuned = {k.split("/", 1)[1]: v for k, v in best["headline"].items() if k.startswith("f1_tuned/")}
    run.f1_by_language = {t: r.get("f1_by_language", {}) for t, r in best["reports"].items()}
    run.auc_by_language = {t: r["auc_by_language"] for t, r in best["reports"].items() if r.get("auc_by_language")}
    run.auc = {t: r["auc"] for t, r in best["reports"].items() if "auc" in r}
    test = summary.get("test", {}).get("reports", {})
    run.test_f1 = {t: r.get("at_threshold", r)["f1"] for t, r in test.items()}
    if set(TASKS) <= set(run.test_f1):
        run.test_f1["avg"] = 0.5 * (run.test_f1["qc"] + run.test_f1["qi"])
    run.test_auc = {t: r["auc"] for t, r in test.items() if "auc" in r}
    run.test_reports = test
    run.steps, run.best_step = summary.get("steps"), summary.get("best_step")
    params = summary.get("parameters", {})
    run.trainable, run.total_params, run.model_bytes = params.get("trainable"), params.get("total"), params.get("bytes")
    seconds, tokens = summary.get("train_seconds"), summary.get("tokens")
    if source_stage:  # TAPT's cost is both stages'
        source = _read_json(source_stage / "metrics.json", StageCost)
        seconds = (seconds or 0.0) + (source.get("train_seconds") or 0.0)
        tokens = (tokens or 0) + (source.get("tokens") or 0)
    if summary.get("steps"):  # a transfer run trains nothing: no training time or throughput to show
        run.train_seconds = seconds
        run.tokens_per_s = tokens / seconds if tokens and seconds else summary.get("tokens_per_s")


def from_events(run: RunResult, events: Events) -> None:
    """Figures from the event files alone: the best evaluation by the trainer's own rule (`selection_score` with
    the run's `eval.select`; the first of equal scores)."""
    scalars = events.scalars
    run.tasks = [t for t in TASKS if f"eval/f1/{t}" in scalars]
    if not run.tasks:
        return
    select = run.config.get("eval", {}).get("select", "f1")
    steps = sorted({s for t in run.tasks for s, _ in scalars[f"eval/f1/{t}"]})
    by_step = {step: {t: {k: dict(scalars.get(f"eval/{k}/{t}", [])).get(step, float("nan")) for k in ("f1", "auc")}
                      for t in run.tasks} for step in steps}
    best_step = max(steps, key=lambda step: (selection_score(by_step[step], select), -step))
    at_best = {name: dict(points).get(best_step) for name, points in scalars.items()}
    run.best_step, run.steps = best_step, events.last_step
    run.f1 = {t: at_best[f"eval/f1/{t}"] for t in run.tasks}
    if len(run.tasks) == 2:
        run.f1["avg"] = at_best.get("eval/f1/avg", 0.5 * (run.f1["qc"] + run.f1["qi"]))
    run.f1_tuned = {t: at_best[f"eval/f1_tuned/{t}"] for t in run.tasks if at_best.get(f"eval/f1_tuned/{t}") is not None}
    run.auc = {t: at_best[f"eval/auc/{t}"] for t in run.tasks if at_best.get(f"eval/auc/{t}") is not None}
    for name, value in at_best.items():
        for prefix, into in (("eval/f1_by_language/", run.f1_by_language),
                             ("eval/auc_by_language/", run.auc_by_language)):
            if name.startswith(prefix) and value is not None:
                _, _, task, lang = name.split("/", 3)
                into.setdefault(task, {})[lang] = value
    rates = [v for _, v in scalars.get("perf/tokens_per_s", [])]
    run.tokens_per_s = sum(rates) / len(rates) if rates else None


@dataclass
class Events:
    """The scalars of the event files directly in one folder: {tag: [(step, value)]} sorted by step (a step logged
    twice, as after a resume, keeps its last value), and the seconds between the first and last event."""

    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    wall_span: float | None = None

    @property
    def last_step(self) -> int | None:
        steps = [s for tag, points in self.scalars.items() if not tag.startswith("hparam/") for s, _ in points]
        return max(steps) if steps else None


def read_events(folder: Path) -> Events:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # one INFO line per event file read otherwise
    if not any(folder.glob("events.out.tfevents.*")):
        return Events()
    accumulator = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
    accumulator.Reload()
    scalars, times = {}, []
    for tag in accumulator.Tags()["scalars"]:
        points = accumulator.Scalars(tag)
        scalars[tag] = sorted({e.step: e.value for e in points}.items())
        times += [e.wall_time for e in points]
    return Events(scalars, max(times) - min(times) if times else None)


def render(root: Path, grid: dict, runs: dict[str, RunResult], notes=()) -> str:
    sections = [header(root, grid, runs, notes), results_table(runs)]
    if grid.get("systems"):
        sections += [systems_table(grid["systems"], runs), limitations_section(runs)]
    sections += [cost_table(runs), language_section(runs), zero_shot_section(runs), transfer_section(runs),
                 category_section(runs),
                 ablation_section(runs), plots_section(runs), details_section(runs)]
    return "\n\n".join(s for s in sections if s) + "\n"


def header(root: Path, grid: dict, runs: dict[str, RunResult], notes=()) -> str:
    lines = ["# Single vs joint vs TAPT: comparison report", "",
             f"Generated by `mtl report {root}` on {time.strftime('%Y-%m-%d %H:%M %Z')} from the run folders under "
             f"`{root}`: every figure below is what the runs logged (metrics.json, TensorBoard event files), "
             "nothing is edited by hand. F1 is positive-class F1 of the best checkpoint at threshold 0.5 (the "
             "paper's argmax); F1 avg = 0.5 F1 QC + 0.5 F1 QI."]
    lines += [line for note in notes for line in ("", note)]
    for number, session in enumerate(grid.get("sessions", []), start=1):
        lines += ["", f"Session {number}: `{session.get('command') or 'mtl compare'}`",
                  f"- machine: {session.get('machine', '?')}",
                  f"- started {session.get('started', '?')}, "
                  + (f"finished {session['finished']}" if "finished" in session else "did not finish (interrupted "
                     "or still running)")]
    if grid:
        lines += ["", f"Base overrides (every run): `{' '.join(grid.get('base_overrides', [])) or 'none'}`"
                  + (f", config file `{grid['config_file']}`" if grid.get("config_file") else ""),
                  "", f"**Budget.** {budget_text(grid, runs)}"]
    setup = _setup_line(root, runs)
    if setup:
        lines += ["", setup]
    counts = Counter(r.status for r in runs.values())
    lines += ["", "Runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "."]
    return "\n".join(lines)


def budget_text(grid: dict, runs: dict[str, RunResult]) -> str:
    """grid.json's budget paragraph, rewritten with the steps per task the joint run's schedule actually drew."""
    joint = runs.get("joint")
    if not (joint and set(joint.task_steps) == set(TASKS) and joint.sampling and grid.get("budget_steps")
            and joint.config.get("train", {}).get("global_batch_size")):
        return grid.get("budget", "")
    return budget_policy(Budget(grid["budget_steps"]), joint.config["train"]["global_batch_size"], joint.task_steps,
                         _sampling(joint.sampling))


def results_table(runs: dict[str, RunResult]) -> str:
    rows = []
    for run in runs.values():
        status = run.status if run.status == "ok" else f"**{run.status}**: {run.message}"
        rows.append([f"`{run.name}`", run.spec.get("about", ""), status,
                     *(_num(run.test_f1.get(k)) for k in ("qc", "qi", "avg")),
                     *(_num(run.test_auc.get(k)) for k in TASKS),
                     _f1(run, "qc"), _f1(run, "qi"), _f1(run, "avg"), *(_num(run.auc.get(k)) for k in TASKS),
                     _steps(run), DASH if run.best_step is None else str(run.best_step)])
    return ("## Results\n\nBest checkpoint of each run. *Test*: the held-out test split (whole queries carved from "
            "the training files before any fold, or the test files), scored once by the selected model at the "
            "threshold tuned on validation: nothing was selected or tuned on it, so these are the figures to "
            "compare. *Val*: the validation records (the dev files, or the CV fold the run names) at threshold 0.5, "
            "on which the best checkpoint was selected, so slightly optimistic. Transfer rows score one task's "
            "model on the other task's records, zero-shot: validation, and test at the threshold tuned on "
            "validation.\n\n"
            + markdown_table(["run", "what", "status", "test F1 QC", "test F1 QI", "test F1 avg", "test AUC QC",
                              "test AUC QI", "val F1 QC", "val F1 QI", "val F1 avg", "val AUC QC", "val AUC QI",
                              "steps", "best step (last stage)"], rows))


def systems_table(systems: list, runs: dict[str, RunResult]) -> str:
    """Does one model beat the per-task models and TAPT? Each system answers both tasks with its runs' models."""
    rows = []
    for label, qc_run, qi_run in systems:
        f1_qc, f1_qi, avg, auc_qc, auc_qi = system_scores(runs, qc_run, qi_run)
        models = {qc_run, qi_run}
        memory = [runs[m].model_bytes for m in models if m in runs and runs[m].model_bytes]
        steps = _system_steps(models, runs)
        rows.append([label, f"`{qc_run}`", f"`{qi_run}`", _num(f1_qc), _num(f1_qi), f"**{_num(avg)}**",
                     _num(auc_qc), _num(auc_qi), str(len(models)),
                     mib(sum(memory)) if len(memory) == len(models) else DASH,
                     DASH if steps is None else str(steps)])
    return ("## Systems: what serves both tasks\n\nThe question: does one joint model beat the paper's per-task "
            "models and its TAPT schedule? Each row answers QC and QI with the named runs' models, scored on the "
            "held-out test split (validation figures where a run has none). *Models* is how "
            "many fine-tuned copies of the backbone must be served; *training steps* counts every optimizer step "
            "that went into them (a shared source run once).\n\n"
            + markdown_table(["system", "QC from", "QI from", "F1 QC", "F1 QI", "F1 avg", "AUC QC", "AUC QI",
                              "models", "model memory", "training steps"], rows)
            + systems_deltas(systems, runs))


def systems_deltas(systems: list, runs: dict[str, RunResult]) -> str:
    """The one-model system minus each other system, per task and on average, and a rough noise scale."""
    def scores(qc_run, qi_run):
        return dict(zip(("qc", "qi", "avg"), system_scores(runs, qc_run, qi_run)[:3]))

    reference = next((s for s in systems if s[1] == s[2]), None)
    if reference is None or None in scores(*reference[1:]).values():
        return ""
    mine = scores(*reference[1:])
    lines = []
    for label, qc_run, qi_run in systems:
        if (label, qc_run, qi_run) == tuple(reference):
            continue
        other = scores(qc_run, qi_run)
        cells = [f"{k.upper() if k != 'avg' else 'avg'} {_num(mine[k] - other[k], signed=True)}"
                 if other[k] is not None else f"{k} {DASH}" for k in ("qc", "qi", "avg")]
        lines.append(f"- vs {label}: " + ", ".join(cells))
    noise = []
    for task in TASKS:
        report = runs[reference[1]].reports.get(task, {})
        positives = report.get("n", 0) * report.get("positive_rate", 0)
        if positives:
            f1 = report["f1"]
            noise.append(f"{task.upper()} ±{math.sqrt(f1 * (1 - f1) / positives):.3f} "
                         f"({positives:.0f} positives of {report['n']} pairs)")
    text = f"\n\n{reference[0]} (`{reference[1]}`) minus each other system, F1:\n\n" + "\n".join(lines)
    if noise:
        text += ("\n\nScale of sampling noise on these validation records (one seed): one rough standard error of "
                 "F1, sqrt(F1 (1 - F1) / positives), is " + ", ".join(noise) + ".")
    return text


def system_scores(runs: dict[str, RunResult], qc_run: str, qi_run: str) -> tuple:
    """(F1 QC, F1 QI, F1 avg, AUC QC, AUC QI) of a system (`SCORE_COLUMNS`): test figures when both runs have a
    test split, else validation figures."""
    qc, qi = runs.get(qc_run), runs.get(qi_run)
    if not (qc and qc.has_figures and qi and qi.has_figures):
        return None, None, None, None, None
    test = "qc" in qc.test_f1 and "qi" in qi.test_f1
    f1_qc = qc.test_f1["qc"] if test else qc.f1.get("qc")
    f1_qi = qi.test_f1["qi"] if test else qi.f1.get("qi")
    avg = 0.5 * (f1_qc + f1_qi) if f1_qc is not None and f1_qi is not None else None
    auc_qc, auc_qi = (qc.test_auc.get("qc"), qi.test_auc.get("qi")) if test else (qc.auc.get("qc"), qi.auc.get("qi"))
    return f1_qc, f1_qi, avg, auc_qc, auc_qi


def limitations_section(runs: dict[str, RunResult]) -> str:
    """What the Systems comparison does not control for."""
    return ("## Limitations of the comparison\n\n"
            "- **One checkpoint for both tasks.** The joint model keeps the single checkpoint with the best F1 avg "
            "and answers QC and QI with it, while the per-task systems (per-task models, TAPT, joint + fine-tune) "
            "keep the best checkpoint of each task separately. That is a structural edge for the per-task systems: "
            "the joint model's F1 QC is read at the step best for the average, not necessarily the step best for "
            "QC (likewise QI).\n"
            f"- **Selection on validation, scores on test.** Each training stage picks its best of {EVALS_PER_STAGE} "
            "evaluations on its validation records and tunes its threshold there; the test columns come from "
            "records that took no part in either. One seed per run unless the report says otherwise: read "
            "differences against the seed spread (`mtl compare --seeds`) or the fold spread (`--fold 0,1,2`).")


def cost_table(runs: dict[str, RunResult]) -> str:
    rows = []
    for run in runs.values():
        if run.status in ("missing",):
            continue
        wall = _duration(run.wall_seconds) + (" (resumed: last attempt only)" if run.resumed else "")
        rows.append([f"`{run.name}`", run.status, _steps(run), wall,
                     _duration(run.train_seconds), _num(run.tokens_per_s, 0), cores(run.other_load),
                     _count_params(run.trainable), _count_params(run.total_params), mib(run.model_bytes)])
    return ("## Cost\n\n*Wall time* is the whole run (loading, training, evaluation, saving); *train time* and "
            "*tokens/s* count optimizer steps only (for TAPT both stages; a fine-tune's own steps). *Other load* is "
            "the CPU cores other processes kept busy on average during the run (/proc/stat minus the grid's own "
            f"process; {DASH} where the run did not record it): the timings of a run whose other load is well "
            "above 0 were slowed down by other work and are not comparable with the rest. *Model memory* is the "
            "weights of backbone + adapter + heads as loaded for training.\n\n"
            + markdown_table(["run", "status", "steps", "wall time", "train time", "tokens/s", "other load",
                              "trainable params", "total params", "model memory"], rows))


def language_section(runs: dict[str, RunResult]) -> str:
    """F1 per language, then ROC-AUC per language (what ranks, whatever the threshold), per task."""
    parts = ["## F1 and ROC-AUC by language\n\nBest checkpoint; F1 at threshold 0.5. Languages missing from a run's "
             f"validation records are {DASH}. See also `{LANGUAGE_PLOT}`."]
    for task in TASKS:
        for label, attr in (("F1", "f1_by_language"), ("ROC-AUC", "auc_by_language")):
            with_task = [r for r in runs.values() if r.has_figures and task in getattr(r, attr)]
            if not with_task:
                continue
            languages = sorted({lang for r in with_task for lang in getattr(r, attr)[task]})
            rows = [[f"`{r.name}`", *(_num(getattr(r, attr)[task].get(lang)) for lang in languages)]
                    for r in with_task]
            parts.append(f"### {task.upper()}: {label}\n\n" + markdown_table(["run", *languages], rows))
    return "\n\n".join(parts)


def zero_shot_section(runs: dict[str, RunResult]) -> str:
    """F1 and ROC-AUC on validation languages that the run's training records never had."""
    rows = []
    for run in runs.values():
        if not run.has_figures or not any(run.unseen_languages.get(t) for t in run.tasks):
            continue
        cells = []
        for task in TASKS:
            unseen = run.unseen_languages.get(task, [])
            by_language = run.f1_by_language.get(task, {})
            if not unseen or task not in run.f1:
                cells.append(DASH)
                continue
            auc_by_language = run.auc_by_language.get(task, {})
            text = ", ".join(f"{lang} {_num(by_language.get(lang))} / {_num(auc_by_language.get(lang))}"
                             for lang in unseen)
            if set(unseen) == set(by_language):  # the whole validation set is zero-shot: its F1 is too
                text += f"; all: **{_num(run.f1[task])} / {_num(run.auc.get(task))}**"
            cells.append(text)
        rows.append([f"`{run.name}`", *cells])
    if not rows:
        return ""
    return ("## Zero-shot languages\n\nF1 / ROC-AUC on validation languages absent from the run's training records: "
            "the dev files' languages that training lacks, and under the language split (`*-langout-fold0`) every "
            "validation language (so the run's whole F1 is zero-shot). For the joint model the held-out languages "
            "are absent from both tasks' training records.\n\n"
            + markdown_table(["run", "QC: language F1 / AUC", "QI: language F1 / AUC"], rows))


def transfer_section(runs: dict[str, RunResult]) -> str:
    """ROC-AUC by language of each zero-shot transfer beside the run trained on its target task: what training on
    the other task alone gives each language (QC is multilingual, QI English-only in the real data)."""
    parts = []
    for run in runs.values():
        if run.spec.get("kind") != "transfer" or not run.has_figures:
            continue
        task = run.spec.get("task") or run.tasks[0]
        trained = runs.get(f"single-{task}")
        rows, languages = [], set()
        for split in ("test", "val"):
            for other in (run, trained):
                if other is None or not other.has_figures:
                    continue
                report = (other.test_reports if split == "test" else other.reports).get(task)
                if report and "auc" in report:
                    languages |= set(report.get("auc_by_language", {}))
                    rows.append((f"`{other.name}`", f"{split} ({report['n']})", report))
        if not rows:
            continue
        ordered = sorted(languages)
        table = [[name, split, _num(report["auc"]), *(_num(report.get("auc_by_language", {}).get(lang))
                                                      for lang in ordered)] for name, split, report in rows]
        head = next(t for t in TASKS if t != task).upper()
        parts.append(f"### {task.upper()} pairs scored by `{run.spec.get('source')}`'s {head} head\n\n"
                     + markdown_table(["run", "records", "all", *ordered], table))
    if not parts:
        return ""
    return ("## Zero-shot transfer across tasks\n\nROC-AUC of one task's model scoring the other task's pairs with "
            "its own head (nothing trained on them), beside the run trained on that task, per language, on the same "
            "records (how many in brackets); 0.5 is chance. AUC rather than F1: the head's scores are calibrated "
            "for the other task.\n\n"
            + "\n\n".join(parts))


def ablation_section(runs: dict[str, RunResult]) -> str:
    ablations = [r for r in runs.values() if r.spec.get("group") == "ablations"]
    if not ablations:
        return ""
    rows = []
    for run in ablations:
        baseline = runs.get(run.spec.get("baseline", ""))
        delta = None
        if baseline and baseline.has_figures and run.has_figures and "avg" in run.f1 and "avg" in baseline.f1:
            delta = run.f1["avg"] - baseline.f1["avg"]
        changes = [o for o in run.spec.get("overrides", []) if not o.startswith(BUDGET_KEYS)]
        note, same_training = schedule_note(run, baseline, changes)
        status = "" if run.status == "ok" else f" (**{run.status}**)"
        test_delta = None
        if baseline and "avg" in run.test_f1 and "avg" in baseline.test_f1:
            test_delta = run.test_f1["avg"] - baseline.test_f1["avg"]
        rows.append([f"`{run.name}`{status}", " ".join(f"`{c}`" for c in changes) or DASH,
                     f"`{run.spec['baseline']}`" if run.spec.get("baseline") else DASH,
                     _task_steps(run), _f1(run, "qc"), _f1(run, "qi"), _f1(run, "avg"),
                     DASH if same_training else _num(delta, signed=True),
                     _pair(run.auc), _num(run.test_f1.get("avg")),
                     DASH if same_training else _num(test_delta, signed=True), _pair(run.test_auc), note])
    text = ("## Ablations\n\nThe `joint-*` rows change one switch of the joint model at the joint budget (the "
            "`*-fold0` runs validate on fold 0 of the training files instead of the dev files); *Δ avg* is F1 avg "
            "minus the compared run's. `joint-cv-random-fold0` vs `joint-cv-ca-fold0` is the optimism of a leaky "
            "random split: a query (QI) or category group (QC) can sit in training and validation at once. The "
            "`*-langout-fold0` runs validate on languages held out of training and have no compared run: "
            "`joint-langout-fold0` is the joint model at the joint budget, `single-*-langout-fold0` the per-task "
            "models at the per-task budget, to be read side by side. *Task steps* are the optimizer steps each task "
            "got (QC/QI), as the run's task schedule drew them. F1 and AUC are validation's at the best checkpoint "
            "(F1 at 0.5); the *test* columns score the held-out test split (F1 at the threshold tuned on "
            "validation), where the runs had one: validation F1 at 0.5 moves with the threshold's luck, so read the "
            "AUCs and the test columns before a Δ.\n\n"
            + markdown_table(["run", "changes", "compared with", "task steps (QC/QI)", "F1 QC", "F1 QI", "F1 avg",
                              "Δ avg", "AUC QC/QI", "test F1 avg", "test Δ avg", "test AUC QC/QI", "note"], rows))
    ca, random_split, joint = runs.get("joint-cv-ca-fold0"), runs.get("joint-cv-random-fold0"), runs.get("joint")
    if all(r and r.has_figures and "avg" in r.f1 for r in (ca, random_split, joint)):
        text += (f"\n\nF1 avg as each split reports it: random fold 0 {_num(random_split.f1['avg'])}, "
                 f"category-aware fold 0 {_num(ca.f1['avg'])}, the dev files (`joint`) {_num(joint.f1['avg'])}; "
                 f"random minus category-aware: {_num(random_split.f1['avg'] - ca.f1['avg'], signed=True)}.")
    return text


def schedule_note(run: RunResult, baseline: RunResult | None, changes: list[str]) -> tuple[str, bool]:
    """A note on how the run's task schedule compares with its baseline's (both as their trainers recorded them),
    and whether the two runs trained identically: an ablation that changes only the task sampling and draws the
    same task at every step repeats its baseline, so its Δ is no finding."""
    if not (baseline and run.sampling and baseline.sampling and run.task_sequence and baseline.task_sequence):
        return "", False
    mine, theirs = run.task_sequence, baseline.task_sequence
    differing = sum(a != b for a, b in zip(mine, theirs)) + abs(len(mine) - len(theirs))
    if differing:
        return f"task schedule differs from `{baseline.name}`'s at {differing} of {len(mine)} steps", False
    same_training = bool(changes) and all(c.startswith(SAMPLING_KEYS) for c in changes)
    if not same_training:
        return f"same task schedule as `{baseline.name}`", False
    sizes = run.train_sizes
    counts = " / ".join(f"{sizes[t]} {t.upper()}" for t in TASKS if t in sizes)
    low, high = (min(sizes.values()), max(sizes.values())) if sizes else (0, 0)
    why = ("" if not sizes else
           f": the task sizes are equal ({counts} training pairs)" if low == high else
           f": the task sizes are nearly equal ({counts} training pairs)" if high - low <= 0.02 * high else
           f" with {counts} training pairs")
    return (f"same task schedule as `{baseline.name}` on this data{why}, so {_sampling(run.sampling)} and "
            f"{_sampling(baseline.sampling)} sampling draw the same task at all {len(mine)} steps and this run "
            f"repeats `{baseline.name}`'s training: no Δ to read"), True


def category_reports(run: RunResult) -> tuple[str, dict]:
    """The QC report the category analysis reads: the held-out test split's where there is one, else validation's."""
    test = run.test_reports.get("qc", {})
    if "by_seen" in test:
        return "test", test
    return "validation", run.reports.get("qc", {}) if "by_seen" in run.reports.get("qc", {}) else {}


def category_section(runs: dict[str, RunResult]) -> str:
    """QC by how much of each category path training saw, the top-level branches with the most errors, and F1 by
    path depth."""
    shown = {name: category_reports(run) for name, run in runs.items() if run.has_figures}
    shown = {name: (side, report) for name, (side, report) in shown.items() if report}
    if not shown:
        return ""
    buckets = list(dict.fromkeys(b for _, report in shown.values() for b in report["by_seen"]))
    rows = [[f"`{name}`", side, *(_bucket_cell(report["by_seen"].get(b)) for b in buckets)]
            for name, (side, report) in shown.items()]
    name, (side, report) = next(((n, v) for n, v in shown.items() if n == "joint"), next(iter(shown.items())))
    worst = sorted(report["by_branch"].items(), key=lambda kv: -kv[1]["errors"])[:MOST_ERRORS]
    branch_rows = _bucket_rows(worst)
    depth_rows = _bucket_rows(sorted(report.get("by_depth", {}).items(), key=lambda kv: int(kv[0])))
    by_depth = (f"\n\nBy path depth (levels in the category path), `{name}` on the same records.\n\n"
                + markdown_table(["depth", "pairs", "errors", "F1", "AUC"], depth_rows)) if depth_rows else ""
    return ("## QC by category\n\nF1 / ROC-AUC (pairs) of QC pairs by how much of their category path the run's "
            "training fold saw: the whole path, only its group (the first `cv.qc_group_levels` levels, the unit a "
            "category-aware fold holds out), or not even that. Under category-aware CV every validation pair is in the "
            "last bucket by design; the test split (whole queries) and the dev files show the others.\n\n"
            + markdown_table(["run", "scored on", *buckets], rows)
            + f"\n\nTop-level branches with the most wrong predictions, `{name}` on its {side} records (F1 at its "
            f"threshold); every branch in `{BRANCH_PLOT}`.\n\n"
            + markdown_table(["branch", "pairs", "errors", "F1", "AUC"], branch_rows)
            + f"\n\n![QC F1 by branch]({BRANCH_PLOT})" + by_depth)


def _bucket_rows(buckets) -> list[list[str]]:
    """Table rows (key, pairs, errors, F1, AUC) of (key, `Bucket`) items, in their order."""
    return [[key, str(b["n"]), str(b["errors"]), _num(b["f1"]), _num(b["auc"])] for key, b in buckets]


def _bucket_cell(bucket: dict | None) -> str:
    return DASH if not bucket else f"{_num(bucket['f1'])} / {_num(bucket['auc'])} ({bucket['n']})"


def plots_section(runs: dict[str, RunResult]) -> str:
    images = [f"![F1 {t.upper()} during training]({CURVE_PLOTS[t]})" for t in TASKS]
    return ("## Plots\n\nEvaluation F1 (threshold 0.5) per run against the optimizer steps the model has been "
            "through, earlier stages included (TAPT's first stage, the joint run before a fine-tune); left: the "
            "main grid, right: the ablations (fold-0 and language-split runs validate on other records). "
            "`tensorboard --logdir <root>`, CUSTOM SCALARS tab, shows the same curves live.\n\n"
            + "\n\n".join(images) + f"\n\n![F1 by language]({LANGUAGE_PLOT})")


def details_section(runs: dict[str, RunResult]) -> str:
    parts = []
    for run in runs.values():
        if run.status == "ok" and run.reports:
            parts.append(f"**`{run.name}`** (best step {run.best_step}):\n\n{format_table(run.reports)}")
    if not parts:
        return ""
    return ("## Per-run detail\n\nPrecision, recall, the tuned threshold and the trivial baselines (always "
            "positive, majority class) on the same records.\n\n<details><summary>tables</summary>\n\n"
            + "\n\n".join(parts) + "\n\n</details>")


def plot_curves(runs: dict[str, RunResult], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    for task in TASKS:
        fig, axes = plt.subplots(1, 2, figsize=(14, 5), sharey=True)
        baselines = {r.spec.get("baseline") for r in runs.values() if r.spec.get("group") == "ablations"}
        for ax, group in zip(axes, ("main", "ablations")):
            for run in runs.values():
                points = run.curves.get(task, [])
                is_reference = group == "ablations" and run.name in baselines
                if run.status == "FAILED" or len(points) < 2 or \
                        ((run.spec.get("group") or "main") != group and not is_reference):
                    continue
                steps, values = zip(*points)
                style = {"color": "black", "linewidth": 2.5, "zorder": 3} if is_reference else {}
                ax.plot(steps, values, marker="o", markersize=3, label=run.name + (" (reference)" if is_reference
                        else ""), linestyle="--" if "fold0" in run.name else "-", **style)
            ax.set_title(f"{task.upper()}: {group}")
            ax.set_xlabel("optimizer steps (incl. earlier stages)")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=8)
        axes[0].set_ylabel(f"eval F1 {task.upper()} (threshold 0.5)")
        fig.tight_layout()
        _save_figure(fig, out / CURVE_PLOTS[task])
        plt.close(fig)


def plot_languages(runs: dict[str, RunResult], out: Path) -> None:
    """Grouped bars per language, one panel per task: the main grid's runs (ablations validate elsewhere)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(len(TASKS), 1, figsize=(16, 9))
    for ax, task in zip(axes, TASKS):
        shown = [r for r in runs.values() if r.has_figures and task in r.f1_by_language
                 and (r.spec.get("group") or "main") == "main"]
        languages = sorted({lang for r in shown for lang in r.f1_by_language[task]})
        width = 0.8 / max(len(shown), 1)
        for i, run in enumerate(shown):
            values = [run.f1_by_language[task].get(lang, np.nan) for lang in languages]
            ax.bar(np.arange(len(languages)) + i * width - 0.4 + width / 2, values, width, label=run.name)
        ax.set_xticks(np.arange(len(languages)), languages)
        ax.set_ylabel(f"F1 {task.upper()}")
        ax.set_ylim(0, 1.15)  # headroom for the legend above the bars
        ax.grid(axis="y", alpha=0.3)
        if shown:
            ax.legend(fontsize=7, ncol=len(shown), loc="upper center")
    axes[0].set_title("F1 by language, best checkpoint, threshold 0.5")
    fig.tight_layout()
    _save_figure(fig, out / LANGUAGE_PLOT)
    plt.close(fig)


def plot_branches(runs: dict[str, RunResult], out: Path) -> None:
    """Sorted bars of QC F1 per top-level branch for the run the category section lists (joint when it has one)."""
    shown = {name: category_reports(run) for name, run in runs.items() if run.has_figures}
    shown = {name: v for name, v in shown.items() if v[1]}
    if not shown:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = "joint" if "joint" in shown else next(iter(shown))
    side, report = shown[name]
    branches = sorted(report["by_branch"].items(), key=lambda kv: kv[1]["f1"])
    fig, ax = plt.subplots(figsize=(9, max(3, 0.28 * len(branches))))
    ax.barh([b for b, _ in branches], [v["f1"] for _, v in branches])
    for y, (_, v) in enumerate(branches):
        ax.text(v["f1"], y, f" {v['n']} pairs", va="center", fontsize=7)
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("F1")
    ax.set_title(f"QC F1 by top-level branch: {name}, {side} records")
    fig.tight_layout()
    _save_figure(fig, out / BRANCH_PLOT)
    plt.close(fig)


def write_layout(root: Path) -> None:
    """A custom-scalar layout event file at the root: one chart per task holding that scalar of every run. Written
    in a temporary folder and moved in, then older layout files are removed."""
    from torch.utils.tensorboard import SummaryWriter

    charts = {f"F1 {t.upper()} (all runs)": ["Multiline", [rf"^eval/f1/{t}$"]] for t in TASKS}
    charts["F1 avg (joint runs)"] = ["Multiline", [r"^eval/f1/avg$"]]
    charts.update({f"train loss {t.upper()} (all runs)": ["Multiline", [rf"^train/loss/{t}$"]] for t in TASKS})
    charts["tokens/s (all runs)"] = ["Multiline", [r"^perf/tokens_per_s$"]]
    old = list(root.glob(f"events.out.tfevents.*{LAYOUT_SUFFIX}"))
    tmp = Path(tempfile.mkdtemp(prefix=".layout.", dir=root))
    try:
        writer = SummaryWriter(log_dir=str(tmp), filename_suffix=LAYOUT_SUFFIX)
        writer.add_custom_scalars({"single vs joint vs TAPT": charts})
        writer.close()
        (written,) = tmp.glob("events.out.tfevents.*")
        os.replace(written, root / written.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for file in old:
        if file.exists() and file.name != written.name:
            file.unlink()


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _save_figure(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=110)
    os.replace(tmp, path)


def _looks_like_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("metrics.json", "config.yaml", FAILED_FILE, RUN_FILE)) or \
        any(folder.glob("events.out.tfevents.*")) or any(folder.glob("target-*"))


def _read_json(path: Path, schema) -> dict:
    """A JSON file of a run folder or root checked against its schema, or {} when there is none (a DataError
    naming the file when it cannot be read)."""
    if input_problem(path) == "file not found":
        return {}
    data = read_json(path)
    check_schema(data, schema, path)
    return data


def _read_config(run_dir: Path) -> dict:
    """The run's saved config (TAPT: the target stage's) as a tree, checked for the keys the report reads."""
    config_file = _config_file(run_dir)
    if config_file is None:
        return {}
    try:
        config = read_yaml(config_file)
    except ConfigError as err:
        raise DataError(config_file, None, None, str(err).removeprefix(f"{config_file}: ")) from None
    if not isinstance(config, dict):
        raise DataError(config_file, None, None, f"expected a mapping of config sections, got {type(config).__name__}")
    check_schema(config, ConfigFile, config_file)
    return config


def _system_steps(models: set[str], runs: dict[str, RunResult]) -> int | None:
    """Optimizer steps behind a system's models, a source run shared by several of them counted once."""
    own = {}
    for name in models:
        run = runs.get(name)
        if not run or not run.has_figures or not run.stage_steps:
            return None
        source = run.spec.get("source") if run.spec.get("kind") == "finetune" else ""
        if source:
            own[source] = run.stage_steps[0]
            own[name] = sum(run.stage_steps[1:])
        else:
            own[name] = sum(run.stage_steps)
    return sum(own.values())


def _f1(run: RunResult, key: str, tuned: bool = False) -> str:
    if not run.has_figures:
        return DASH
    values = run.f1_tuned if tuned else run.f1
    if tuned and key == "avg":
        return _num(0.5 * (values["qc"] + values["qi"])) if {"qc", "qi"} <= set(values) else DASH
    return _num(values.get(key))


def _steps(run: RunResult) -> str:
    if run.spec.get("kind") == "transfer":
        return "0"
    return "+".join(str(s) for s in run.stage_steps) if run.stage_steps else DASH


def _pair(values: dict[str, float]) -> str:
    """QC/QI figures in one cell (— for a task the run did not score)."""
    return "/".join(_num(values.get(t), 3) for t in TASKS) if values else DASH


def _num(value, digits: int = 4, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _duration(seconds) -> str:
    if seconds is None:
        return DASH
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{seconds:.1f}s"


def _count_params(n) -> str:
    return DASH if n is None else f"{n / 1e6:.2f}M"


def _setup_line(root: Path, runs: dict[str, RunResult]) -> str:
    """Backbone, data and batch of the first run with a saved config (the grid's shared base config), and the
    `joint` run's task sampling, which the sampling ablations are compared against."""
    for run in sorted(runs.values(), key=lambda r: r.name != "joint"):
        cfg = run.config
        try:
            data, train, tasks = cfg["data"], cfg["train"], cfg["tasks"]
            sampling = _sampling({"sampling": tasks["sampling"], "temperature": tasks["temperature"]})
            # Dev files are read only without a CV fold; with one, validation is the fold's records.
            fold = cfg.get("cv", {}).get("fold", "none")
            validation = (f"dev `{data['qc_dev']}`, `{data['qi_dev']}`" if fold == "none"
                          else f"validation: CV fold {fold} of them, {cfg['cv'].get('strategy', '?')} split")
            return (f"Setup (from `{_config_file(root / run.name).relative_to(root)}`): backbone "
                    f"`{cfg['model']['backbone']}` ({cfg['model']['dtype']}), LoRA r={cfg['lora']['r']}, data "
                    f"`{data['qc_train']}`, `{data['qi_train']}` ({validation}; "
                    f"train_limit {data['train_limit']}, dev_limit {data['dev_limit']}, max_length "
                    f"{data['max_length']}), global batch {train['global_batch_size']}, lr {train['lr']}, seed "
                    f"{train['seed']}" + (f"; `{run.name}` samples tasks by {sampling}" if train["mode"] == "mtl"
                                          else "") + ".")
        except KeyError:  # a config without one of these keys (an older or hand-made run): try the next run
            continue
    return ""


def _config_file(folder: Path) -> Path | None:
    """A run's saved config: its own, or for TAPT the target stage's."""
    return next((f for f in (folder / "config.yaml", *sorted(folder.glob("target-*/config.yaml"))) if f.is_file()),
                None)


def _sampling(schedule: dict) -> str:
    """`temperature` (T=2.0), `proportional`, `round_robin`."""
    name = f"`{schedule['sampling']}`"
    return f"{name} (T={schedule['temperature']})" if schedule["sampling"] == "temperature" else name


def _task_steps(run: RunResult) -> str:
    if not run.task_steps:
        return DASH
    return "/".join(str(run.task_steps[t]) if t in run.task_steps else DASH for t in TASKS)
