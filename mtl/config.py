"""The experiment configuration: one typed dataclass tree, loaded as defaults -> YAML -> `key=value` overrides.

    cfg = load_config("configs/mtl.yaml", ["train.lr=2e-5", "augment.translation=off"])

Unknown keys and wrong types fail before any work starts, naming the closest valid key. The resolved tree is saved
with every run (`save_config`) and loads back to an equal object.

Hand-written rather than OmegaConf: OmegaConf's structured configs reject `Literal` fields, and the closest-name
hint is what makes a typo cheap to fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mtl.errors import ConfigError

TASKS = ("qc", "qi")


@dataclass
class DataConfig:
    qc_train: str = "data/sample/train_QC.txt"
    """QC training records (JSON lines or CSV)."""
    qc_dev: str = "data/sample/dev_QC.txt"
    """QC records for validation when `cv.fold=none`."""
    qi_train: str = "data/sample/train_QI.txt"
    """QI training records."""
    qi_dev: str = "data/sample/dev_QI.txt"
    """QI records for validation when `cv.fold=none`."""
    qc_test: str = ""
    """Labelled QC records held out for the final score only (never for selection or thresholds); empty: carve
    `test_fraction` of the training file."""
    qi_test: str = ""
    """Labelled QI records held out for the final score only; empty: carve `test_fraction` of the training file."""
    test_fraction: float = 0.1
    """Share of the training file's queries carved out as the test split when no test file is given (whole
    queries, stratified by language x label, before CV folds are made; 0 = no test split)."""
    split_seed: int = 42
    """Seeds the test carve, the CV folds, the training and validation subsamples and the inner folds of the QC
    priors: runs with different `train.seed` train and score the same records."""
    clean: bool = True
    """Collapse redundant whitespace and drop rows whose query or target is empty (the paper's cleaning)."""
    lowercase: bool = True
    """Lower-case queries and targets (part of the paper's cleaning)."""
    max_length: int = 64
    """Tokens per pair after truncation (target truncated first)."""
    template: Literal["plain", "prompt"] = "plain"
    """How a decoder reads a pair (`mtl.data.pairs`): plain, `<bos> query \\n target <eos>`; prompt, the pair inside
    a question (search query, result, is the result relevant?) that ends where the model would answer, so that the
    last token's state is its judgement of the pair. The question's tokens (21 on Gemma-3) count in `max_length`.
    Encoders use their tokenizer's pair template (prompt refused)."""
    train_limit: int = 0
    """Keep at most this many training records per task, stratified sample (0 = all)."""
    dev_limit: int = 400
    """Keep at most this many validation records per task, stratified sample (0 = all; the default keeps a CPU run's
    evaluation under a minute)."""
    cache_dir: str = ".cache/mtl"
    """Where tokenized datasets are cached (converted backbones go to `$MTL_CACHE_DIR`, default `~/.cache/mtl`)."""

    def __post_init__(self):
        check("data.max_length", self.max_length, self.max_length >= 8, ">= 8")
        check("data.train_limit", self.train_limit, self.train_limit >= 0, ">= 0")
        check("data.dev_limit", self.dev_limit, self.dev_limit >= 0, ">= 0")
        check("data.test_fraction", self.test_fraction, 0 <= self.test_fraction <= 0.5, "in [0, 0.5]")


@dataclass
class AugmentConfig:
    translation: bool = True
    """Translation augmentation: the query side reads `<origin_query> - <translated_query>` where a translation exists."""


@dataclass
class TaxonomyConfig:
    features: Literal["none", "priors", "nodes", "both"] | bool = "priors"
    """What the QC head reads from the category tree of the training fold beside the pooled pair: `priors` (smoothed
    positive rate and count of each path prefix), `nodes` (a learned embedding per tree node, summed over the path's
    known ancestors-or-self: an unseen path backs off to its deepest known ancestor), `both`, or `none`. Configs of
    earlier runs said true (= priors) or false (= none)."""
    node_dim: int = 16
    """Width of the node embeddings (`features=nodes|both`)."""
    render: Literal["raw", "levels", "leaf_first"] = "levels"
    """How a category path is written for the model: as in the data, level by level (`a > b > c`), or level by level
    from the leaf up (`c < b < a`), so that the level a near-miss category differs in comes first."""
    prior_depth: int = 3
    """Prefix depths 1..prior_depth get a smoothed positive-rate and count feature."""
    prior_strength: float = 20.0
    """Pseudo-count pulling a prefix's positive rate towards the global rate (m-estimate)."""

    @property
    def priors(self) -> bool:
        return self.features in ("priors", "both")

    @property
    def nodes(self) -> bool:
        return self.features in ("nodes", "both")

    def __post_init__(self):
        if isinstance(self.features, bool):
            self.features = "priors" if self.features else "none"
        check("taxonomy.prior_depth", self.prior_depth, self.prior_depth >= 1, ">= 1")
        check("taxonomy.node_dim", self.node_dim, self.node_dim >= 1, ">= 1")
        check("taxonomy.prior_strength", self.prior_strength, math.isfinite(self.prior_strength) and self.prior_strength >= 0,
              "finite and >= 0")


@dataclass
class ModelConfig:
    backbone: str = "embedded:gemma3-270m"
    """`embedded:gemma3-270m` (installed package), a local HF folder, or a folder/file holding a `.gguf`."""
    gguf_file: str = ""
    """GGUF file name inside `backbone` when it is a folder of GGUF files."""
    arch: Literal["auto", "decoder", "encoder"] = "auto"
    """Decoder (causal LM) or encoder; `auto` reads the backbone's config."""
    pooling: Literal["auto", "last", "first", "mean"] = "auto"
    """`auto`: last non-pad token for decoders, first token for encoders."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Backbone weights' dtype (adapters and heads stay float32). `auto`: bfloat16 on CUDA (fp16 overflows on
    Gemma-3), float32 on CPU: bfloat16 trains 1.4-1.9x faster on a CPU with AVX-512 BF16 but one 270M seed in five
    did not learn (benchmarks/results/dtype-seeds-cpu-gemma3-270m.md)."""
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2", "flex_attention"] = "sdpa"
    """Attention kernel passed to transformers. flex_attention (torch's `torch.nn.attention.flex_attention`)
    skips the 128 x 128 blocks of shared and packed rows that see nothing of each other (so only rows of several
    blocks, `train.row_tokens` >= 256, have any to skip); it trains on CUDA only (torch has no flex-attention
    backward on CPU), and transformers compiles it on first use (a minute per shape on a 2-core CPU)."""
    num_layers: int = 0
    """Use only the first N transformer layers of the backbone (0 = all): fewer layers train and serve faster, and a
    middle layer's features can classify as well as the last's."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (12B on one GPU)."""
    init_from: str = ""
    """A saved model folder whose adapter and heads initialise this run (TAPT stage 2, fine-tune after joint)."""
    head_dropout: float = 0.1
    """Dropout on the pooled vector before each task head."""
    head_norm: bool = True
    """A LayerNorm per task on the pooled vector before its head (Gemma's hidden states are far from unit scale;
    see `mtl.model.MultiTaskClassifier`)."""
    head_init: Literal["prior", "random", "probe"] = "prior"
    """prior: head weights start at zero and the bias at the log-odds of the training positive rate (first loss =
    the prior's entropy; even odds under `train.class_weight=balanced`); random: nn.Linear's default initialisation;
    probe: each head starts as a logistic regression fitted on its inputs under the untrained adapter, for
    `probe_pairs` training pairs (linear probing before fine-tuning). At zero head weights no gradient reaches the
    adapter; a probed head passes one from step 1. A warm start (`init_from`) keeps the heads it loads; not under
    ZeRO-3."""
    probe_pairs: int = 1024
    """Training pairs per task that `head_init=probe` scores (one forward pass each, no gradient) and fits on."""
    qi_features: Literal["none", "overlap", "overlap_binned"] = "none"
    """overlap: the QI head also reads the pair's word-overlap features (`mtl.overlap`: shares of query words,
    word stems and character 3-grams found in the title), computed from the text alone; overlap_binned: those and
    their fixed bins (`mtl.overlap.BINNED_FEATURES`), so that a linear head can weigh a share unevenly."""
    encoder: Literal["none", "use"] = "none"
    """use: the scores of each task in `encoder_tasks` average the model's logit with two rankings from a frozen
    multilingual sentence encoder fitted on the training records (`mtl.encoder`: a regression on the query's and
    target's embeddings, and the label rate of the training pairs most like the pair), each standardised on the
    validation pairs; reports, thresholds, out-of-fold files and `mtl predict` read the fused scores, the step is
    chosen by the model's own AUC, and the model folder keeps the encoder."""
    encoder_tasks: list[str] = field(default_factory=lambda: ["qc"])
    """The tasks `encoder=use` fuses. QC only by default: on real QI (English titles) the same average ranked the
    test split below the model alone on every fold (benchmarks/real/README.md, "Labels of the nearest training
    pairs")."""

    def __post_init__(self):
        check("model.head_dropout", self.head_dropout, 0 <= self.head_dropout < 1, "in [0, 1)")
        check("model.num_layers", self.num_layers, self.num_layers >= 0, ">= 0")
        check("model.probe_pairs", self.probe_pairs, self.probe_pairs >= 2, ">= 2")
        check("model.encoder_tasks", self.encoder_tasks, set(self.encoder_tasks) <= set(TASKS),
              f"some of {', '.join(TASKS)}")


@dataclass
class LoraConfig:
    r: int = 16
    """LoRA rank."""
    alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    dropout: float = 0.05
    """Dropout on the LoRA input."""
    fast_dropout: bool = True
    """Draw LoRA dropout masks from 16 random bits per element on CPU (`mtl.dropout`: a quarter of torch's random
    draws, p rounded to 1/65536); false keeps peft's `nn.Dropout`."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """Linear layers that get an adapter (the paper's choice: attention and MLP)."""

    def __post_init__(self):
        check("lora.r", self.r, self.r >= 1, ">= 1")
        check("lora.alpha", self.alpha, self.alpha > 0, "> 0")
        check("lora.dropout", self.dropout, 0 <= self.dropout < 1, "in [0, 1)")


@dataclass
class TasksConfig:
    sampling: Literal["proportional", "temperature", "round_robin"] = "temperature"
    """Which task each optimizer step trains: by data size, by size^(1/T), or alternating."""
    temperature: float = 2.0
    """T for `temperature` sampling (1 = proportional, large = uniform)."""
    loss_weight_qc: float = 1.0
    """Weight of QC: scales QC's share of the optimizer steps (each step trains one task; see `mtl.sampling`)."""
    loss_weight_qi: float = 1.0
    """Weight of QI: scales QI's share of the optimizer steps."""

    def __post_init__(self):
        check("tasks.temperature", self.temperature, math.isfinite(self.temperature) and self.temperature > 0,
              "finite and > 0")
        for task in TASKS:
            weight = getattr(self, f"loss_weight_{task}")
            check(f"tasks.loss_weight_{task}", weight, math.isfinite(weight) and weight >= 0, "finite and >= 0")
        if self.loss_weight_qc == 0 and self.loss_weight_qi == 0:
            raise ConfigError("tasks.loss_weight_qc and tasks.loss_weight_qi are both 0: nothing would train")

    @property
    def weights(self) -> dict[str, float]:
        return {task: getattr(self, f"loss_weight_{task}") for task in TASKS}


@dataclass
class TrainConfig:
    mode: Literal["mtl", "single", "tapt"] = "mtl"
    """mtl: both tasks, one model; single: one task; tapt: the other task first, then the target task."""
    task: Literal["", "qc", "qi"] = ""
    """Target task for `single` and `tapt`."""
    max_steps: int = 160
    """Optimizer steps (for tapt: steps of the target stage)."""
    tapt_steps: int = 0
    """Steps of tapt's first stage on the other task (0 = same as max_steps)."""
    micro_batch_size: int = 16
    """Pairs per forward pass per process."""
    global_batch_size: int = 16
    """Pairs per optimizer step over all processes; accumulation is derived from it."""
    lr: float = 3e-4
    """Peak learning rate of the LoRA weights."""
    head_lr: float = 1e-3
    """Peak learning rate of the task heads (fresh weights learn faster than the adapter)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_ratio: float = 0.06
    """Fraction of steps with linear warm-up."""
    lr_schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warm-up (transformers' schedulers)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 = off)."""
    class_weight: Literal["none", "balanced"] = "none"
    """balanced: each class weighs half of a task's loss (pairs weighted by the inverse of their class's share of
    the training pairs), so a 68%-positive task no longer pulls the model toward "relevant"; the heads start at
    even odds (`prior`) or as a probe fitted with the same weights."""
    batching: Literal["auto", "shared", "packed", "bucket", "random"] = "auto"
    """shared: a query's pairs in one batch, as prefix-tree rows that compute the query once (`mtl.packing`; decoders
    with rotary positions); packed: shuffled batches, several pairs per row without padding between them, nothing
    shared (same models as shared); bucket: batches of similar length (little padding); random: shuffled batches
    padded to the longest; auto: shared where the backbone allows it (CPU and CUDA), else bucket."""
    row_tokens: int = 128
    """shared and packed batching: tokens per row (its rows are as wide as the fullest one)."""
    eval_every: int = 80
    """Evaluate (and keep the best model) every N steps and at the end (0 = only at the end)."""
    save_every: int = 0
    """Write a resumable `step-N/` checkpoint every N steps (0 = only at the end)."""
    keep_checkpoints: int = 2
    """How many `step-N/` folders to keep (oldest removed first)."""
    nonfinite: Literal["stop", "skip"] = "stop"
    """On a NaN/inf loss: stop with a message, or skip the step and count it."""
    seed: int = 42
    """Seeds data order, task schedule, LoRA init and dropout."""
    deepspeed: str = ""
    """A DeepSpeed JSON config (configs/deepspeed/zero2.json); empty = plain DDP / single process."""

    def __post_init__(self):
        check("train.max_steps", self.max_steps, self.max_steps >= 1, ">= 1")
        check("train.tapt_steps", self.tapt_steps, self.tapt_steps >= 0, ">= 0")
        check("train.micro_batch_size", self.micro_batch_size, self.micro_batch_size >= 1, ">= 1")
        check("train.global_batch_size", self.global_batch_size, self.global_batch_size >= 1, ">= 1")
        check("train.row_tokens", self.row_tokens, self.row_tokens >= 1, ">= 1")
        if self.global_batch_size % self.micro_batch_size:
            raise ConfigError(
                f"train.global_batch_size ({self.global_batch_size}) must be a multiple of "
                f"train.micro_batch_size ({self.micro_batch_size})"
            )
        for name in ("lr", "head_lr"):
            value = getattr(self, name)
            check(f"train.{name}", value, math.isfinite(value) and value > 0, "finite and > 0")
        check("train.weight_decay", self.weight_decay, math.isfinite(self.weight_decay) and self.weight_decay >= 0,
              "finite and >= 0")
        check("train.warmup_ratio", self.warmup_ratio, 0 <= self.warmup_ratio <= 1, "in [0, 1]")
        check("train.max_grad_norm", self.max_grad_norm, math.isfinite(self.max_grad_norm) and self.max_grad_norm >= 0,
              "finite and >= 0")
        check("train.eval_every", self.eval_every, self.eval_every >= 0, ">= 0")
        check("train.save_every", self.save_every, self.save_every >= 0, ">= 0")
        check("train.keep_checkpoints", self.keep_checkpoints, self.keep_checkpoints >= 1, ">= 1")


@dataclass
class CVConfig:
    fold: str = "none"
    """`none`: train on all training records, validate on the dev files; `k`: validate on fold k; `all`: one model
    per fold; `0,1,2`: one model per listed fold (`all` and lists also write out-of-fold predictions and cv.json)."""
    n_folds: int = 5
    """Number of folds."""
    strategy: Literal["ca", "random", "language", "query"] = "ca"
    """ca: query-grouped QI, category-aware QC (no leakage); random: leaky baseline; language: hold out languages;
    query: whole queries for QC too, as the test split is carved, so validation, like a test of whole queries, holds
    paths that training holds (what memory of other queries' labels on a path is worth shows there, not under ca)."""
    qc_group_levels: int = 2
    """Under ca, QC folds keep each subtree rooted at depth N of the category tree whole (a shorter path is its own
    group); under the other strategies it sets only the subtrees the split report counts."""

    def __post_init__(self):
        check("cv.n_folds", self.n_folds, self.n_folds >= 2, ">= 2")
        check("cv.qc_group_levels", self.qc_group_levels, self.qc_group_levels >= 1, ">= 1")
        self.fold = str(self.fold).replace(" ", "")
        if self.fold in ("none", "all"):
            return
        parts = self.fold.split(",")
        numbered = all(p.isascii() and p.isdigit() and int(p) < self.n_folds for p in parts)
        if not numbered or len(set(parts)) != len(parts):
            raise ConfigError(f"cv.fold must be none, all, a fold 0..{self.n_folds - 1} or a list of distinct folds "
                              f"(0,1,2), got {self.fold!r}")

    @property
    def folds(self) -> list[int]:
        """The folds a run trains one model each for: all of them, the listed ones, or the one (none: [])."""
        if self.fold == "none":
            return []
        if self.fold == "all":
            return list(range(self.n_folds))
        return [int(p) for p in self.fold.split(",")]


@dataclass
class EvalConfig:
    batch_size: int = 64
    """Pairs per forward pass in evaluation and prediction."""
    tune_threshold: bool = True
    """Tune each task's decision threshold for F1 on validation and save it with the model."""
    select: Literal["auc", "f1"] = "auc"
    """What picks the best checkpoint: validation ROC-AUC, or F1 at threshold 0.5 (the paper's argmax); averaged
    over the tasks a run evaluates."""

    def __post_init__(self):
        check("eval.batch_size", self.batch_size, self.batch_size >= 1, ">= 1")


@dataclass
class LogConfig:
    root: str = "runs"
    """Every run writes `root/<run_name>/`; TensorBoard pointed at `root` shows all runs side by side."""
    run_name: str = ""
    """Folder name of this run (empty = derived from mode, task and fold)."""
    every: int = 10
    """Log training scalars every N steps."""
    tensorboard: bool = True
    """Write TensorBoard event files (else only metrics.jsonl and the console)."""

    def __post_init__(self):
        check("log.every", self.every, self.every >= 1, ">= 1")


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    taxonomy: TaxonomyConfig = field(default_factory=TaxonomyConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self):
        if self.train.mode in ("single", "tapt") and not self.train.task:
            raise ConfigError(f"train.mode={self.train.mode} needs a target task: add --task qc or --task qi")
        if self.train.mode == "mtl" and self.train.task:
            raise ConfigError("train.task is only meaningful with --mode single or --mode tapt")

    @property
    def active_tasks(self) -> tuple[str, ...]:
        """The tasks whose heads this run trains and evaluates (tapt: the target stage)."""
        return TASKS if self.train.mode == "mtl" else (self.train.task,)


SEED_MAX = 2**32 - 1
"""Largest seed every consumer takes (numpy's and scikit-learn's `random_state` stop here; torch goes further)."""


def check_seed(key: str, value: int) -> None:
    """A seed in 0..SEED_MAX. `from_dict` applies it to every int key whose name ends in `seed`, so a new seed key
    is checked without a line of its own."""
    check(key, value, 0 <= value <= SEED_MAX, f"in 0..{SEED_MAX}")


def check(key: str, value, ok: bool, bound: str) -> None:
    """Range check of one value: refused here, before any work starts, rather than deep inside the first step."""
    if not ok:
        raise ConfigError(f"{key} must be {bound}, got {value!r}")


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, values: dict, where: str = ""):
    """Build dataclass `cls` from a nested dict, checking every key and value type."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"unknown config key {path!r}{_closest(key, names, where)}")
        kwargs[key] = _coerce(hints[key], value, path)
        if key.endswith("seed") and hints[key] is int:
            check_seed(path, kwargs[key])
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except Exception as err:  # a check that failed in an unforeseen way must still read as a config problem
        raise ConfigError(f"{where or 'config'}: {type(err).__name__}: {err}") from None


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> ExperimentConfig:
    """Defaults, then the YAML file at `path` (a delta), then `section.key=value` overrides, in that order."""
    tree = _default_tree()
    if path:
        _merge(tree, read_yaml(Path(path)), str(path))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        node: Any = {}
        leaf = node
        parts = key.strip().split(".")
        for part in parts[:-1]:
            leaf[part] = {}
            leaf = leaf[part]
        try:
            leaf[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
        except (yaml.YAMLError, RecursionError) as err:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {_one_line(err)}") from None
        _merge(tree, node, f"override {item!r}")
    try:
        return from_dict(ExperimentConfig, tree)
    except ConfigError as err:
        if path and not overrides and not str(err).startswith(str(path)):  # then the file holds the bad value
            raise ConfigError(f"{path}: {err}") from None
        raise


def read_yaml(path: Path) -> dict:
    """The YAML delta at `path`; any reason it cannot be read is a ConfigError naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    try:
        return yaml.safe_load(text) or {}
    except (yaml.YAMLError, RecursionError) as err:
        raise ConfigError(f"{path}: not valid YAML: {_one_line(err)}") from None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    from mtl.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))


def _default_tree() -> dict:
    """The defaults as a plain dict; built field by field so no cross-field check runs on a partial tree."""

    def tree(cls):
        out = {}
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            out[f.name] = tree(type(default)) if dataclasses.is_dataclass(default) else default
        return out

    return tree(ExperimentConfig)


def _merge(base: dict, delta: dict, origin: str, where: str = "") -> None:
    if not isinstance(delta, dict):
        raise ConfigError(f"{origin}: {where or 'top level'} must be a mapping")
    for key, value in delta.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in base:
            raise ConfigError(f"{origin}: unknown config key {path!r}{_closest(str(key), list(base), where)}")
        if isinstance(base[key], dict):
            _merge(base[key], value, origin, path)
        else:
            base[key] = value


def _closest(key: str, names: list[str], where: str) -> str:
    match = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    if not match:
        return f" (valid keys: {', '.join(names)})"
    return f"; did you mean {(where + '.' if where else '') + match[0]!r}?"


def _coerce(hint, value, path: str):
    """Check `value` against the type hint; conversions: int or numeric string -> float, int -> str for `fold`."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(repr(c) for c in choices)}")
        return value
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(option, value, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: {value!r} does not match {hint}")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        # PyYAML reads `2e-5` (no dot) as a string: accept any literal float() accepts.
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{path}: expected a number, got {value!r}") from None
    if hint is str and path.endswith("fold") and isinstance(value, int):
        return str(value)
    if hint is type(None) and value is None:
        return None
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    if hint is str:
        try:  # what a path or name must survive: file names are bytes (an undecodable byte of argv is fine)
            value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ConfigError(f"{path}: {value!r} holds a lone UTF-16 surrogate: not text") from None
    return value


def flatten(tree: dict, prefix: str = "") -> dict:
    """A nested config dict as {"section.key": value} (lists joined by commas), as TensorBoard's hparams take it."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value if not isinstance(value, list) else ",".join(map(str, value))
    return out
