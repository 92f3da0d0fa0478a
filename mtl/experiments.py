"""The comparison grid: the paper's per-task and TAPT schedules, the joint model, and the ablations, run side by side.

    mtl compare --grid main                          # single QC/QI, TAPT both ways, joint, joint + fine-tune, transfer
    mtl compare --grid all data.dev_limit=300        # + ablations; key=value overrides apply to every run
    mtl compare --dry-run                            # print the runs and their overrides, run nothing
    mtl report runs/compare                          # then: report.md + plots (mtl.report)

The grid is plain data: a list of `RunSpec` (name, kind, config overrides). Every run gets the same base config
(seed, data, folds, global batch) plus its own overrides, and `run_grid` runs them one after another in this process
under one log root. A run that raises leaves a `FAILED` file (the error) in its folder and the grid goes on; a run
with a `metrics.json` is complete and skipped, so an interrupted grid continues where it stopped.

Budget: the unit is `B = train.max_steps` of the base config (160 by default) optimizer steps of
`train.global_batch_size` pairs, i.e. the joint model's run. Every system gets B/2 steps per task it serves, except
joint + fine-tune, which adds B/8 per task on top of the joint run (see `budget_policy`); evaluation happens 4 times
per training stage so that best-checkpoint selection has the same number of candidates in every run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

from pydantic import PositiveInt
from typing_extensions import TypedDict

from mtl.config import TASKS, ExperimentConfig, load_config
from mtl.errors import ConfigError, MtlError
from mtl.io import atomic_dir, atomic_write_text, check_schema, read_json
from mtl.measure import Meter, machine, machine_line

log = logging.getLogger(__name__)

GRIDS = ("main", "ablations", "all")
EVALS_PER_STAGE = 4
GRID_FILE = "grid.json"
"""At the log root: the specs, base overrides, budget and the sessions (command, machine, dates) that ran them."""
FAILED_FILE = "FAILED"
"""In a run folder: the error of a run that raised (first line: the message)."""
RUN_FILE = "experiment.json"
"""In a completed run folder: the spec, wall time, the CPU cores other processes kept busy during the run, the
languages validation has that training lacks, the training pairs per task and the optimizer steps each task got."""

CONTROLLED_KEYS = ("train.mode", "train.task", "train.tapt_steps", "train.eval_every", "model.init_from",
                   "cv.fold", "cv.strategy", "log.root", "log.run_name")
"""Set by the grid per run; a base override of one of them would silently lose to the run's own value."""


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid. `kind`: `train` runs `mtl.stages.run` with `overrides`; `finetune` is a train run
    initialised from the best model of run `source`; `transfer` scores the best model of run `source` on the other
    task's validation records with its own head (zero-shot cross-task transfer), training nothing."""

    name: str
    kind: Literal["train", "finetune", "transfer"]
    overrides: tuple[str, ...] = ()
    about: str = ""
    group: Literal["main", "ablations"] = "main"
    source: str = ""
    task: str = ""
    baseline: str = ""
    """The run an ablation is compared with in the report (its deltas)."""


class Session(TypedDict, total=False):
    command: str
    machine: str
    started: str
    finished: str


class GridFile(TypedDict, total=False):
    """grid.json: what `record_session` writes and `read_grid_file` checks."""

    specs: list[RunSpec]
    systems: list[tuple[str, str, str]]
    base_overrides: list[str]
    config_file: str
    budget: str
    budget_steps: PositiveInt
    sessions: list[Session]


@dataclass(frozen=True)
class Budget:
    """Optimizer steps per stage, all derived from the joint run's `train.max_steps`."""

    joint: int

    @property
    def per_task(self) -> int:
        return max(1, self.joint // len(TASKS))

    @property
    def tapt_stage(self) -> int:
        return max(1, self.per_task // 2)

    @property
    def finetune(self) -> int:
        return max(1, self.joint // 8)


def eval_every(steps: int) -> int:
    return max(1, steps // EVALS_PER_STAGE)


def single(task: str, steps: int) -> tuple[str, ...]:
    return ("train.mode=single", f"train.task={task}", f"train.max_steps={steps}", f"train.eval_every={eval_every(steps)}")


def joint(steps: int) -> tuple[str, ...]:
    return ("train.mode=mtl", f"train.max_steps={steps}", f"train.eval_every={eval_every(steps)}")


def build_grid(which: str, budget: Budget) -> list[RunSpec]:
    """The runs of `main`, `ablations` or `all`, in the order they run (a run's source comes before it)."""
    if which not in GRIDS:
        raise ConfigError(f"--grid must be one of {', '.join(GRIDS)}, got {which!r}")
    b = budget
    main = [
        RunSpec("single-qc", "train", single("qc", b.per_task), "the paper's per-task QC model"),
        RunSpec("single-qi", "train", single("qi", b.per_task), "the paper's per-task QI model"),
        RunSpec("tapt-qi-to-qc", "train",
                ("train.mode=tapt", "train.task=qc", f"train.tapt_steps={b.tapt_stage}",
                 f"train.max_steps={b.tapt_stage}", f"train.eval_every={eval_every(b.tapt_stage)}"),
                "the paper's TAPT for QC: QI first, then QC from those weights"),
        RunSpec("tapt-qc-to-qi", "train",
                ("train.mode=tapt", "train.task=qi", f"train.tapt_steps={b.tapt_stage}",
                 f"train.max_steps={b.tapt_stage}", f"train.eval_every={eval_every(b.tapt_stage)}"),
                "the paper's TAPT for QI: QC first, then QI"),
        RunSpec("joint", "train", joint(b.joint), "one model, shared LoRA, both heads (mtl)"),
        RunSpec("joint-ft-qc", "finetune", single("qc", b.finetune), "joint, then a short QC-only fine-tune",
                source="joint", task="qc"),
        RunSpec("joint-ft-qi", "finetune", single("qi", b.finetune), "joint, then a short QI-only fine-tune",
                source="joint", task="qi"),
        RunSpec("transfer-qc-to-qi", "transfer", (), "single-qc's model (QC head) scoring QI pairs, zero-shot",
                source="single-qc", task="qi"),
        RunSpec("transfer-qi-to-qc", "transfer", (), "single-qi's model (QI head) scoring QC pairs, zero-shot",
                source="single-qi", task="qc"),
    ]
    fold0 = ("cv.fold=0",)
    ablations = [
        RunSpec("joint-no-translation", "train", joint(b.joint) + ("augment.translation=off",),
                "joint without translation augmentation", "ablations", baseline="joint"),
        RunSpec("joint-no-taxonomy", "train", joint(b.joint) + ("taxonomy.features=none",),
                "joint without taxonomy features on the QC head", "ablations", baseline="joint"),
        RunSpec("joint-taxonomy-nodes", "train", joint(b.joint) + ("taxonomy.features=nodes",),
                "joint, the QC head reads learned tree-node embeddings instead of prefix priors", "ablations",
                baseline="joint"),
        RunSpec("joint-taxonomy-both", "train", joint(b.joint) + ("taxonomy.features=both",),
                "joint, the QC head reads prefix priors and tree-node embeddings", "ablations", baseline="joint"),
        RunSpec("joint-sampling-proportional", "train", joint(b.joint) + ("tasks.sampling=proportional",),
                "joint, tasks sampled by data size", "ablations", baseline="joint"),
        RunSpec("joint-sampling-round-robin", "train", joint(b.joint) + ("tasks.sampling=round_robin",),
                "joint, tasks alternating", "ablations", baseline="joint"),
        RunSpec("joint-cv-ca-fold0", "train", joint(b.joint) + fold0 + ("cv.strategy=ca",),
                "joint, validated on fold 0 of the category-aware, query-grouped split", "ablations"),
        RunSpec("joint-cv-random-fold0", "train", joint(b.joint) + fold0 + ("cv.strategy=random",),
                "joint, validated on fold 0 of the leaky random split", "ablations", baseline="joint-cv-ca-fold0"),
        RunSpec("joint-langout-fold0", "train", joint(b.joint) + fold0 + ("cv.strategy=language",),
                "joint, validated on languages held out of training (language split, fold 0)", "ablations"),
        RunSpec("single-qc-langout-fold0", "train", single("qc", b.per_task) + fold0 + ("cv.strategy=language",),
                "single QC, validated on held-out languages", "ablations"),
        RunSpec("single-qi-langout-fold0", "train", single("qi", b.per_task) + fold0 + ("cv.strategy=language",),
                "single QI, validated on held-out languages", "ablations"),
    ]
    return {"main": main, "ablations": ablations, "all": main + ablations}[which]


SYSTEMS = (
    ("per-task models (paper baseline)", "single-qc", "single-qi"),
    ("TAPT per task (paper)", "tapt-qi-to-qc", "tapt-qc-to-qi"),
    ("joint model (mtl)", "joint", "joint"),
    ("joint + per-task fine-tune", "joint-ft-qc", "joint-ft-qi"),
)
"""What serves both tasks: (system, run answering QC, run answering QI). The report's answer to "does one model
beat the paper's per-task models and its TAPT schedule" is this table's F1 avg."""


def budget_policy(budget: Budget, global_batch: int, joint_task_steps: dict[str, int] | None = None,
                  sampling: str = "") -> str:
    """The budget paragraph of grid.json and the report; with the joint run's realised steps per task (known once
    it has run: its task schedule draws them) it says how many each task got rather than the average."""
    b = budget
    if joint_task_steps:
        realised = (f"its {sampling + ' ' if sampling else ''}task schedule gave it "
                    + " and ".join(f"{joint_task_steps.get(t, 0)} {t.upper()}" for t in TASKS) + " steps")
    else:
        realised = f"its task schedule decides how many of each task (on average {b.per_task})"
    return (
        f"Budget unit: optimizer steps of {global_batch} pairs. Every system gets {b.per_task} steps per task it "
        f"serves (half the joint run's {b.joint}): a per-task model trains {b.per_task} steps; the joint "
        f"model serves both tasks and trains {b.joint}: {realised}. TAPT splits "
        f"its task's budget between the two stages ({b.tapt_stage} steps on the other task, then {b.tapt_stage} on "
        f"the target) rather than giving each stage the full budget: that keeps TAPT's compute equal to the "
        f"per-task model's, so TAPT vs single measures whether spending half the budget on the other task first "
        f"pays, not what twice the compute buys. The fine-tunes after joint add {b.finetune} steps per task on top "
        f"of the joint run (the one system that spends more). Each training stage is evaluated "
        f"{EVALS_PER_STAGE} times (every quarter of its steps) and keeps its best checkpoint, so every run picks "
        f"from the same number of candidates. Same seed, data files, validation records and folds everywhere."
    )


def plan(which: str, base_overrides: list[str] = (), config_file: str | None = None,
         only: list[str] = (), fold: str = "none") -> list[RunSpec]:
    """The specs `run_grid` would run for `--grid which` on this base config (`only`: just those names)."""
    check_base_overrides(list(base_overrides))
    base = load_config(config_file, [*base_overrides, f"cv.fold={fold}"])
    specs = build_grid(which, Budget(base.train.max_steps))
    unknown = sorted(set(only) - {s.name for s in specs})
    if unknown:
        raise ConfigError(f"no run named {', '.join(unknown)} in grid {which!r}: {', '.join(s.name for s in specs)}")
    return [s for s in specs if not only or s.name in only]


REPLICATE_UNITS = ("seed", "fold")
"""What a multi-grid comparison repeats: `--seeds` writes ROOT/seed-S/, `--fold K1,K2,...` ROOT/fold-K/ (the report
reads the same layout: `mtl.report.replicate_roots`)."""


def grid_folds(fold: str, config_file: str | None = None, base_overrides: list[str] = ()) -> list[str]:
    """`mtl compare --fold`: a list (`0,1,2`) or `all` is one grid per fold, these folds; one fold or `none` is one
    grid ([]). Folds as `cv.fold` spells them (`01` -> `1`), so that ROOT/fold-K/ is one folder per fold."""
    fold = str(fold).replace(" ", "")
    if fold == "all":
        return [str(k) for k in range(load_config(config_file, list(base_overrides)).cv.n_folds)]
    return [str(int(part)) for part in fold.split(",")] if "," in fold else []


def replicate_grids(root: str | Path) -> dict[str, list[Path]]:
    """{unit: [ROOT/<unit>-N folders holding a grid.json]} for the units found."""
    found = {}
    for unit in REPLICATE_UNITS:
        folders = [f for f in Path(root).glob(f"{unit}-*")
                   if f.is_dir() and f.name[len(unit) + 1:].isdigit() and (f / GRID_FILE).is_file()]
        if folders:
            found[unit] = sorted(folders)
    return found


def check_layout(root: str | Path, unit: str | None, fold: str = "none") -> None:
    """Refuse a root that would mix one grid (`unit` None) with per-seed or per-fold grids, or grids of the other
    unit, before anything trains: its report would read one of them and silently drop the others. A grid in a
    folder named fold-K must validate on fold K (it continues that fold of a multi-fold comparison)."""
    root = Path(root)
    held = replicate_grids(root)
    if unit is None:
        if held:
            kinds = " and ".join(f"{u}-N/" for u in held)
            raise ConfigError(f"{root} holds per-{'/'.join(held)} grids ({kinds}): continue them with the same "
                              "--seeds or --fold list, or one of them with --root ROOT/<unit>-N, or use another --root")
        name = root.name
        if name.startswith("fold-") and name[5:].isdigit() and str(fold) != str(int(name[5:])):
            raise ConfigError(f"{root} is the grid of fold {int(name[5:])} of a multi-fold comparison; this call "
                              f"validates on --fold {fold}: give --fold {int(name[5:])} or another --root")
        return
    clash = [f"{u}-N/" for u in held if u != unit] + ([GRID_FILE] if (root / GRID_FILE).is_file() else [])
    if clash:
        raise ConfigError(f"{root} holds {' and '.join(clash)}: a per-{unit} comparison needs a root of its own")


def check_resumable(root: Path, base_overrides: list[str], config_file: str | None, budget: Budget,
                    fold: str) -> dict:
    """The setup a grid records; raises if `root` holds a grid of another one. A resumed grid must use the same
    base config, budget and fold: a run is only comparable with the others if they differ in the spec's own
    overrides alone."""
    path = root / GRID_FILE
    grid = read_grid_file(path) if path.exists() else {}
    setup = {"base_overrides": list(base_overrides), "config_file": config_file or "", "budget_steps": budget.joint,
             "fold": fold}
    if grid:
        grid.setdefault("fold", "none")  # grids recorded before --fold existed validated on the dev files
    if grid and {k: grid.get(k) for k in setup} != setup:
        raise ConfigError(f"{root} holds a grid run with {({k: grid.get(k) for k in setup})}; this call has {setup}. "
                          "Use another --root, or the same overrides to continue it")
    return setup


def fold_root(root: str | Path, fold: str) -> Path:
    """Where the grid of one fold of a multi-fold comparison lives (`mtl compare --fold 0,1,2`)."""
    return Path(root) / f"fold-{fold}"


def pinned_fold(spec: RunSpec) -> str | None:
    """The CV fold a spec validates on whatever the grid's (the fold-0 ablations), or None."""
    return next((o.split("=", 1)[1] for o in spec.overrides if o.startswith("cv.fold=")), None)


def run_folds(specs: list[RunSpec], root: str | Path, folds: list[str], base_overrides: list[str] = (),
              config_file: str | None = None, command: str = "", lock: str | Path | None = None) -> dict[str, str]:
    """The whole grid once per CV fold, each under `fold_root(root, fold)` and validated on that fold, fold after
    fold: the spread over folds is what one model against two has to beat on real data, where a run's own seed
    noise is not the only noise (the fold decides the training records and the checkpoint chosen). A spec that
    pins its own fold (the fold-0 ablations) runs once, in the first fold's grid: elsewhere it would repeat the
    same run and fake a spread of 0. A grid of one fold run on its own with `--root ROOT/fold-K --fold K` (the
    same base) continues into the same folder. Every fold's grid is checked before the first run."""
    check_layout(root, "fold")
    base = load_config(config_file, list(base_overrides))
    for fold in folds:
        check_resumable(fold_root(root, fold), list(base_overrides), config_file, Budget(base.train.max_steps), fold)
    statuses = {}
    for i, fold in enumerate(folds):
        mine = [s for s in specs if i == 0 or pinned_fold(s) is None]
        done = run_grid(mine, fold_root(root, fold), base_overrides, config_file, command, lock, fold)
        statuses.update({f"fold-{fold}/{name}": status for name, status in done.items()})
    return statuses


def seed_root(root: str | Path, seed: int) -> Path:
    """Where the grid of one seed of a multi-seed comparison lives (`mtl compare --seeds`)."""
    return Path(root) / f"seed-{seed}"


def run_seeds(specs: list[RunSpec], root: str | Path, seeds: list[int], base_overrides: list[str] = (),
              config_file: str | None = None, command: str = "", lock: str | Path | None = None,
              fold: str = "none") -> dict[str, str]:
    """The whole grid once per seed (`train.seed`), each under `seed_root(root, seed)`, seed after seed; the data
    split stays the same (`data.split_seed`), so the seeds differ only in initialisation, order and dropout. Every
    seed's grid is checked before the first run."""
    check_layout(root, "seed")
    for seed in seeds:
        overrides = [*base_overrides, f"train.seed={seed}"]
        base = load_config(config_file, overrides)
        check_resumable(seed_root(root, seed), overrides, config_file, Budget(base.train.max_steps), fold)
    statuses = {}
    for seed in seeds:
        done = run_grid(specs, seed_root(root, seed), [*base_overrides, f"train.seed={seed}"], config_file, command,
                        lock, fold)
        statuses.update({f"seed-{seed}/{name}": status for name, status in done.items()})
    return statuses


def run_grid(specs: list[RunSpec], root: str | Path, base_overrides: list[str] = (), config_file: str | None = None,
             command: str = "", lock: str | Path | None = None, fold: str = "none") -> dict[str, str]:
    """Run each spec under `root` in order; returns {name: status} with status `ok`, `skipped` (already complete)
    or `FAILED: <message>`. With `lock`, each run holds an exclusive flock on that file (the one `flock(1)` takes),
    so runs never overlap with other jobs on the machine that take it, and those jobs can slip in between runs.
    `fold`: validate on that CV fold of the training files instead of the dev files."""
    import torch

    from mtl.errors import Interrupted

    root = Path(root)
    base_overrides = list(base_overrides)
    check_base_overrides(base_overrides)
    base = load_config(config_file, base_overrides)
    budget = Budget(base.train.max_steps)
    check_layout(root, None, fold)
    record_session(root, specs, base_overrides, config_file, budget, base, command, fold)

    statuses = {}
    for spec in specs:
        run_dir = root / spec.name
        if is_complete(run_dir):
            log.info("%s: complete, skipped", spec.name)
            statuses[spec.name] = "skipped"
            continue
        with exclusive(lock):
            log.info("%s: starting (%s)", spec.name, spec.about)
            started = time.time()
            # A resumed run's wall time below is this attempt's only; the report says so rather than add them up.
            resumed = has_checkpoint(run_dir)
            try:
                cfg = run_config(spec, root, base_overrides, config_file, fold)
                (run_dir / FAILED_FILE).unlink(missing_ok=True)
                # Other processes' CPU use during the run: its timings are only comparable with the others' when
                # this is near 0 (the lock keeps the grid's own jobs apart, not everything else on the machine).
                with Meter("cuda" if torch.cuda.is_available() else "cpu") as meter:
                    execute(spec, cfg, root)
            except Interrupted:  # a signal: the user wants the grid to stop; the run resumes from its checkpoint
                raise
            except Exception as err:  # noqa: BLE001 - any error in one run must not cost the rest of the grid
                statuses[spec.name] = mark_failed(run_dir, err)
                continue
            seconds = time.time() - started
        atomic_write_text(run_dir / RUN_FILE, json.dumps(
            {"spec": asdict(spec), "wall_seconds": seconds, "resumed": resumed, "finished": timestamp(),
             "other_load": meter.other_load, "peak_memory_bytes": meter.bytes}, indent=1))
        statuses[spec.name] = "ok"
        log.info("%s: done in %.0f s", spec.name, seconds)
    update_grid_file(root, finished=timestamp())
    return statuses


@contextlib.contextmanager
def exclusive(lock: str | Path | None):
    if not lock:
        yield
        return
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for the lock %s (another job holds it)", lock)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_base_overrides(overrides: list[str]) -> None:
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in CONTROLLED_KEYS:
            raise ConfigError(f"{key} is set by the grid for each run and cannot be a base override; the budget is "
                              f"train.max_steps (the joint run's steps, per-task runs get half)")


def run_config(spec: RunSpec, root: Path, base_overrides: list[str], config_file: str | None,
               fold: str = "none") -> ExperimentConfig:
    """The base config + the spec's overrides; a transfer's config is its source run's (the model it scores).
    `fold`: the CV fold every run validates on unless its spec names one (`none`: the dev files)."""
    overrides = [*base_overrides, *spec.overrides, f"log.root={root}", f"log.run_name={spec.name}"]
    if fold != "none" and not any(o.startswith("cv.fold=") for o in spec.overrides):
        overrides.insert(len(base_overrides), f"cv.fold={fold}")
    if spec.kind == "finetune":
        overrides.append(f"model.init_from={finetune_init(root, spec)}")
    if spec.kind == "transfer":
        saved = root / spec.source / "config.yaml"
        if not saved.is_file():
            raise MtlError(f"source run {spec.source} has no config.yaml under {root}: run it first")
        return load_config(saved)
    return load_config(config_file, overrides)


def execute(spec: RunSpec, cfg: ExperimentConfig, root: Path) -> None:
    from mtl import stages

    run_dir = root / spec.name
    if spec.kind == "transfer":
        shutil.rmtree(run_dir, ignore_errors=True)
        evaluate_transfer(root / spec.source, spec.task, run_dir)
        return
    stages.run(cfg, resume=prepare_resume(run_dir, cfg))


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run starts from what an earlier attempt left: a checkpoint `latest_checkpoint` would take, in the
    run folder or a stage's (a TAPT stage, a CV fold, a TAPT stage within a fold)."""
    from mtl.checkpoint import latest_checkpoint

    folders = [run_dir, *run_dir.glob("*"), *run_dir.glob("*/*")] if run_dir.is_dir() else []
    return any(latest_checkpoint(d) is not None for d in folders if d.is_dir())


def prepare_resume(run_dir: Path, cfg: ExperimentConfig) -> bool:
    """Keep what an interrupted run can resume from (a complete `step-N/`, a finished TAPT stage) and clear the
    rest, so the run starts over cleanly rather than tripping over a half-written folder. Returns `resume`."""
    from mtl.checkpoint import latest_checkpoint

    if cfg.train.mode == "tapt":
        return True  # a resumed TAPT run continues each stage from its checkpoint, restarts one that has none
    if run_dir.exists() and latest_checkpoint(run_dir) is not None:
        return True
    shutil.rmtree(run_dir, ignore_errors=True)
    return False


def finetune_init(root: Path, spec: RunSpec) -> Path:
    """The source run's best model reduced to its adapter and the fine-tuned task's head (with its norm and, for QC,
    its node embeddings), written under `root/.init/<run>/`. Only that head is needed, and loading all of them would
    fail for QI: a joint qc_head has taxonomy-feature columns that a QI-only model does not build."""
    from safetensors.torch import load_file, save_file

    source = root / spec.source / "best"
    if not (root / spec.source / "metrics.json").is_file():
        raise MtlError(f"source run {spec.source} did not complete under {root}: nothing to fine-tune")
    info = json.loads((source / "model.json").read_text(encoding="utf-8"))
    if spec.task not in info["tasks"]:
        raise MtlError(f"{source} did not train a {spec.task} head")
    target = root / ".init" / spec.name
    with atomic_dir(target) as tmp:
        shutil.copytree(source / "adapter", tmp / "adapter")
        heads = load_file(str(source / "heads.safetensors"))
        save_file({k: v for k, v in heads.items()
                   if k.startswith((f"{spec.task}_head.", f"{spec.task}_norm.", f"{spec.task}_nodes."))},
                  str(tmp / "heads.safetensors"))
        for name in ("config.yaml", "taxonomy.json", f"encoder-{spec.task}.npz"):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        kept = {"tasks": [spec.task]}
        if info.get("encoder_tasks"):  # a joint model's other task is not in the folder
            kept["encoder_tasks"] = [t for t in info["encoder_tasks"] if t == spec.task]
            kept["encoder"] = info["encoder"] if kept["encoder_tasks"] else None
            kept["fusion"] = {t: v for t, v in info.get("fusion", {}).items() if t == spec.task}
        atomic_write_text(tmp / "model.json", json.dumps({**info, **kept}, indent=1, ensure_ascii=False))
    return target


def evaluate_transfer(source_run: Path, task: str, run_dir: Path) -> dict:
    """Score `task`'s validation records (the ones that task's own runs validate on) with the source run's best
    model and its own head: zero-shot cross-task transfer. Its held-out test split too, at the threshold tuned on
    those validation records, as a trained run's is scored (the source model never saw either). Writes metrics.json
    and TensorBoard scalars at step 0 in the same shape as a trained run, so the report reads it like one."""
    import torch

    from mtl.data.tasks import load_split, make_task_data
    from mtl.evaluate import predict_probs, task_report
    from mtl.logger import build_logger
    from mtl.model import count_parameters, load_trained, read_info
    from mtl.train import TrainState, eval_scalars, summarize

    if not (source_run / "metrics.json").is_file():
        raise MtlError(f"source run {source_run.name} did not complete: nothing to transfer")
    info = read_info(source_run / "best")
    if info.encoder_tasks:
        raise ConfigError(f"{source_run / 'best'}: its scores are fused with a sentence encoder fitted on its own "
                          "task (model.encoder): zero-shot transfer to the other task is not measured with it")
    model, pair_tokenizer, info, cfg = load_trained(source_run / "best", "cuda" if torch.cuda.is_available() else "cpu")
    (head,) = info.tasks
    split = load_split(cfg, task)  # the other task's validation records as its runs see them (same fold, sample)
    data = make_task_data(split.val, task, cfg, pair_tokenizer)  # no taxonomy features: a QC head reads zeros
    probs = predict_probs(model, data, pair_tokenizer.pad_id, cfg.eval.batch_size, head=head)
    reports = {task: task_report(data, probs, tune=cfg.eval.tune_threshold)}
    test_reports = {}
    if split.test is not None:
        test = make_task_data(split.test, task, cfg, pair_tokenizer)
        threshold = reports[task].get("tuned", {}).get("threshold", 0.5)
        test_reports[task] = task_report(test, predict_probs(model, test, pair_tokenizer.pad_id, cfg.eval.batch_size,
                                                             head=head), tune=False, threshold=threshold)

    run_dir.mkdir(parents=True, exist_ok=True)
    logger = build_logger(run_dir, cfg.log.tensorboard, is_main=True)
    logger.log(eval_scalars(reports), 0)
    logger.close()

    cfg.train.mode, cfg.train.task = "single", task
    nothing_trained = TrainState(best_step=0)
    summary = summarize(cfg, nothing_trained, reports, reports, count_parameters(model), {task: split},
                        SimpleNamespace(num_processes=1, distributed_type="NO"),
                        {"transfer": f"{head}_head on {task}", "source": source_run.name}, batching=None,
                        test=test_reports)
    summary["mode"] = "transfer"
    summary["train_sizes"], summary["unseen_languages"] = {}, {task: []}  # trained on the other task, elsewhere
    summary["parameters"]["trainable"] = 0
    atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=1))
    return summary


def is_complete(run_dir: Path) -> bool:
    return (run_dir / "metrics.json").is_file() and (run_dir / RUN_FILE).is_file()


def mark_failed(run_dir: Path, err: BaseException) -> str:
    message = f"{type(err).__name__}: {err}".strip()
    log.error("%s: FAILED: %s", run_dir.name, message)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / FAILED_FILE, message + "\n\n" + traceback.format_exc())
    return f"FAILED: {message.splitlines()[0]}"


def record_session(root: Path, specs: list[RunSpec], base_overrides: list[str], config_file: str | None,
                   budget: Budget, base: ExperimentConfig, command: str, fold: str = "none") -> None:
    """Write or extend grid.json (`check_resumable` first)."""
    setup = check_resumable(root, base_overrides, config_file, budget, fold)
    path = root / GRID_FILE
    grid = read_grid_file(path) if path.exists() else {}
    if grid:
        grid.setdefault("fold", "none")
    known = {s["name"]: s for s in grid.get("specs", [])}
    known.update({s.name: asdict(s) for s in specs})
    grid.update(setup)
    grid["specs"] = list(known.values())
    grid["systems"] = [list(s) for s in SYSTEMS]
    grid["budget"] = budget_policy(budget, base.train.global_batch_size)
    grid.setdefault("sessions", []).append({"command": command, "machine": machine_line(machine()),
                                            "started": timestamp()})
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(grid, indent=1, ensure_ascii=False))


def read_grid_file(path: Path) -> dict:
    """grid.json checked against GridFile (a DataError naming it otherwise)."""
    grid = read_json(path)
    check_schema(grid, GridFile, path)
    return grid


def update_grid_file(root: Path, **session) -> None:
    path = root / GRID_FILE
    grid = read_grid_file(path)
    grid["sessions"][-1].update(session)
    atomic_write_text(path, json.dumps(grid, indent=1, ensure_ascii=False))


def timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")
