"""The joint model: one backbone with one shared LoRA adapter, and a `qc_head` and a `qi_head` on the pooled vector.

    pairs, folder = build_tokenizer(cfg)
    model = build_model(cfg, qc_feature_dim=7, folder=folder, arch=pairs.arch)
    logits = model(task="qc", input_ids=..., attention_mask=..., features=...)    # one logit per pair
    logits = model.forward_mixed(input_ids, attention_mask, is_qc, features)      # QC and QI rows in one batch

Pooling reads the last non-pad token for decoders (whatever the padding side), the first token or the mean for
encoders. The QC head also reads the taxonomy features (prefix priors) when `taxonomy.features` is on, the QI head
the pair's word-overlap features when `model.qi_features=overlap|overlap_binned`. Heads compute in float32 whatever
the backbone's dtype.

A saved model folder holds `adapter/` (PEFT format), `heads.safetensors`, `config.yaml`, `model.json` (tokenizer
fingerprint, thresholds, priors, shapes), `taxonomy.json` and, for `best/` and `final/`, a model card `README.md`;
`load_trained` restores it exactly, and `load_weights` swaps another folder's adapter and heads into a built model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import nn

from mtl.backbone import detect_arch, load_backbone, load_tokenizer, resolve
from mtl.config import ExperimentConfig, TASKS, load_config, save_config
from mtl.data.pairs import PairTokenizer
from mtl.dropout import use_bits_dropout
from mtl.encoder import COLUMNS, ENCODER, encoder_file
from mtl.errors import CheckpointError, ConfigError
from mtl.io import atomic_dir, atomic_write_text, check_schema, input_problem, read_json
from mtl.overlap import FEATURE_SETS, feature_set
from mtl.packing import model_inputs, path_weights, tree_masks
from mtl.taxonomy import PrefixPriors

log = logging.getLogger(__name__)

HEAD_PREFIXES = ("qc_head.", "qi_head.", "qc_norm.", "qi_norm.", "qc_nodes.")
"""State-dict keys of the task-specific parameters, saved in `heads.safetensors`."""
PROBE_CS = (0.001, 0.003, 0.01, 0.1, 1.0)
"""Inverse L2 strengths `head_init=probe` chooses from, on standardised head inputs."""


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """[batch, seq, dim] -> [batch, dim]."""
    if pooling == "last":
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask * positions).argmax(dim=1)  # last 1 in the mask, for right or left padding
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "first":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class MultiTaskClassifier(nn.Module):
    """Backbone + per task an optional LayerNorm on the pooled vector (`qc_norm`, `qi_norm`) and a linear head.

    The norm is there because Gemma's final hidden states are far from unit scale: the embedded 270M pools vectors
    of norm ~100 with a few outlier dimensions at 30-70, so an Adam step of 1e-3 on every head weight moves a logit
    by ~2 and the head swings between classes until it settles on the class prior. Normalised, the same step moves
    it by ~0.5 and the head starts at zero (`init_heads`)."""

    def __init__(self, backbone: nn.Module, hidden_size: int, pooling: str, qc_feature_dim: int, head_dropout: float,
                 head_norm: bool = False, arch: str = "decoder", qc_nodes: tuple[int, int] = (0, 0),
                 node_dim: int = 16, qi_feature_dim: int = 0):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.arch = arch
        self.hidden_size = hidden_size
        self.qc_feature_dim = qc_feature_dim
        self.qi_feature_dim = qi_feature_dim
        self.head_norm = head_norm
        self.dropout = nn.Dropout(head_dropout)
        n_nodes, self.node_slots = qc_nodes
        if n_nodes:  # the last `node_slots` feature columns are node ids (`NodeIndex.ids`), summed as embeddings
            self.qc_nodes = nn.EmbeddingBag(n_nodes + 1, node_dim, mode="sum", padding_idx=0)
            nn.init.normal_(self.qc_nodes.weight, std=0.02)
            with torch.no_grad():
                self.qc_nodes.weight[0].zero_()
        qc_inputs = hidden_size + qc_feature_dim - self.node_slots + (node_dim if n_nodes else 0)
        self.qc_head = nn.Linear(qc_inputs, 1)
        self.qi_head = nn.Linear(hidden_size + qi_feature_dim, 1)
        if head_norm:
            self.qc_norm = nn.LayerNorm(hidden_size)
            self.qi_norm = nn.LayerNorm(hidden_size)

    def head(self, task: str) -> nn.Linear:
        return {"qc": self.qc_head, "qi": self.qi_head}[task]

    def head_modules(self, task: str) -> list[nn.Module]:
        """Everything that belongs to one task alone: its norm (if any), its node embeddings (QC, if any), its head."""
        nodes = [self.qc_nodes] if task == "qc" and self.node_slots else []
        return ([getattr(self, f"{task}_norm")] if self.head_norm else []) + nodes + [self.head(task)]

    def _qc_features(self, features: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """The QC head's extra inputs: the prior columns as they are, the node-id columns as summed embeddings."""
        if features is None:
            raise ValueError("this model's qc_head reads taxonomy features: pass `features`")
        if not self.node_slots:
            return features.to(dtype)
        priors, ids = features[:, :-self.node_slots], features[:, -self.node_slots:]
        return torch.cat([priors.to(dtype), self.qc_nodes(ids.round().long()).to(dtype)], dim=-1)

    @staticmethod
    def _qi_features(features: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """The QI head's extra inputs: the overlap columns as they are."""
        if features is None:
            raise ValueError("this model's qi_head reads word-overlap features: pass `features`")
        return features.to(dtype)

    def init_heads(self, positive_rates: dict[str, float]) -> None:
        """Zero head weights and the bias at the log-odds of `positive_rates[task]` (the training positive rate, or
        0.5 under balanced class weights): the first predictions are the loss's best constant, and the head moves
        only as far as the data pulls it."""
        with torch.no_grad():
            for task, rate in positive_rates.items():
                rate = min(max(float(rate), 1e-3), 1 - 1e-3)
                self.head(task).weight.zero_()
                self.head(task).bias.fill_(float(np.log(rate / (1 - rate))))

    @torch.no_grad()
    def head_inputs(self, task: str, task_data, rows: np.ndarray, pad_id: int, batch_size: int = 32) -> np.ndarray:
        """What `task`'s head reads for these rows of a TaskData (the pooled vector, through the task's LayerNorm
        with `head_norm`, then the task's features: QC node ids as their summed embeddings), in eval mode with the
        adapter as it is: the probe's inputs, and a frozen backbone's features for `benchmarks/frozen_probe.py`."""
        from mtl.data.tasks import collate

        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        captured = []
        hook = self.head(task).register_forward_hook(lambda _m, args, _o: captured.append(args[0].float().cpu()))
        try:
            order = np.argsort(task_data.lengths[rows], kind="stable")  # little padding per batch
            for i in range(0, len(rows), batch_size):
                batch = collate(task_data, rows[order[i:i + batch_size]], pad_id)
                self(task, **model_inputs(batch, device))
        finally:
            hook.remove()
            self.train(was_training)
        x = np.empty((len(rows), captured[0].shape[1]), dtype=np.float32)
        x[order] = torch.cat(captured).numpy()
        return x

    @torch.no_grad()
    def probe_heads(self, data: dict, pad_id: int, pairs: int, seed: int, batch_size: int = 32,
                    balanced: bool = False) -> dict[str, float]:
        """Each task's head as a logistic regression on what it reads now ({task: TaskData}, training pairs):
        `head_inputs` of up to `pairs` pairs drawn with `seed` (untrained adapter: the backbone's own features);
        `balanced`: fitted with `train.class_weight=balanced`'s class weights, so that training starts at its loss's
        fit rather than spending its first steps moving the bias.
        Returns each probe's cross-validated ROC-AUC at the chosen C. sklearn's regularised fit rather than a few
        head-only SGD steps: it is exact and, on a few thousand vectors, seconds."""
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import StratifiedGroupKFold

        fit = {}
        for task, task_data in data.items():
            rng = np.random.default_rng(seed)
            rows = rng.choice(len(task_data), size=min(pairs, len(task_data)), replace=False)
            labels = task_data.labels[rows]
            if np.bincount(labels.astype(int), minlength=2).min() < 3:
                raise ConfigError(f"model.head_init=probe: {task}'s {len(rows)} probe pairs hold fewer than 3 "
                                  "of one class; raise model.probe_pairs or use model.head_init=prior")
            x = self.head_inputs(task, task_data, rows, pad_id, batch_size)
            # fitted on standardised columns, so that one C penalises a few outlier dimensions of the pooled
            # vector and a [0, 1] feature column alike; the scaling is then folded into the head's weights
            # (in float64, and a column constant up to float32 rounding is left unscaled: dividing by its ~1e-8
            # spread would give the head a weight in the thousands on it)
            x = x.astype(np.float64)
            mean, std = x.mean(axis=0), x.std(axis=0)
            std[std <= 1e-6 * np.maximum(1.0, np.abs(mean))] = 1.0
            # C chosen on folds that keep a query's pairs together. Small Cs: on real QI and QC (fold 0, 1k-8k
            # frozen vectors) the best validation AUC was at C = 0.001-0.003, and C = 0.1 lost 0.03-0.06 of it
            # (benchmarks/real/README.md, "Frozen backbone")
            groups = task_data.queries[rows] if task_data.queries is not None else np.arange(len(rows))
            folds = list(StratifiedGroupKFold(3, shuffle=True, random_state=seed).split(x, labels, groups))
            probe = LogisticRegressionCV(Cs=list(PROBE_CS), cv=folds, scoring="roc_auc", max_iter=2000,
                                         l1_ratios=(0.0,), use_legacy_attributes=False,
                                         class_weight="balanced" if balanced else None)
            probe.fit((x - mean) / std, labels)
            weight = probe.coef_[0] / std
            head = self.head(task)
            head.weight.copy_(torch.as_tensor(weight[None, :], dtype=head.weight.dtype))
            head.bias.copy_(torch.as_tensor(probe.intercept_ - weight @ mean, dtype=head.bias.dtype))
            fit[task] = float(np.asarray(probe.scores_).mean(axis=0).max())
        return fit

    def _head_input(self, task: str, pooled: torch.Tensor) -> torch.Tensor:
        head = self.head(task)
        pooled = pooled.to(head.weight.dtype)
        if self.head_norm:
            pooled = getattr(self, f"{task}_norm")(pooled)
        return self.dropout(pooled)

    def forward(self, task: str, input_ids, attention_mask=None, features=None, position_ids=None,
                subtree_end=None, pool_at=None) -> torch.Tensor:
        """One logit per pair. Padded batches (`collate`) pass `attention_mask`; prefix-tree rows (`mtl.packing.pack`)
        pass `position_ids`, `subtree_end` and `pool_at` instead. Both go through `forward`, so DDP and DeepSpeed
        see every training step."""
        if subtree_end is None:
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            pooled = pool(hidden, attention_mask, self.pooling)
        else:
            base = self.backbone.get_base_model()
            masks = tree_masks(position_ids, subtree_end, base.config, base.dtype)
            hidden = self.backbone(input_ids=input_ids, attention_mask=masks, position_ids=position_ids,
                                   use_cache=False).last_hidden_state
            if self.pooling == "mean":
                weights = path_weights(subtree_end, pool_at).to(hidden.dtype)
                pooled = torch.einsum("pw,pwd->pd", weights, hidden[pool_at[:, 0]]) / weights.sum(1, keepdim=True)
            else:
                pooled = hidden[pool_at[:, 0], pool_at[:, 1]]
        head = self.head(task)
        pooled = self._head_input(task, pooled)
        if task == "qc" and self.qc_feature_dim:
            pooled = torch.cat([pooled, self._qc_features(features, pooled.dtype)], dim=-1)
        elif task == "qi" and self.qi_feature_dim:
            pooled = torch.cat([pooled, self._qi_features(features, pooled.dtype)], dim=-1)
        return head(pooled).squeeze(-1)

    def forward_mixed(self, input_ids, attention_mask, is_qc: torch.Tensor, features=None) -> torch.Tensor:
        """One logit per row of a batch that mixes both tasks: one backbone pass, then each pooled row goes to its
        task's head, so one forward serves QC and QI. `features` [batch, max(qc_feature_dim, qi_feature_dim)] holds
        each row's task features in its first columns (QC rows' taxonomy features, QI rows' overlap features; the
        rest is ignored); logits equal `forward(task, ...)` on each task's rows alone."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = pool(hidden, attention_mask, self.pooling)
        is_qc = is_qc.to(device=pooled.device, dtype=torch.bool)
        qc_in, qi_in = self._head_input("qc", pooled[is_qc]), self._head_input("qi", pooled[~is_qc])
        if self.qc_feature_dim:
            qc_features = None if features is None else features.to(pooled.device)[is_qc, :self.qc_feature_dim]
            qc_in = torch.cat([qc_in, self._qc_features(qc_features, qc_in.dtype)], dim=-1)
        if self.qi_feature_dim:
            qi_features = None if features is None else features.to(pooled.device)[~is_qc, :self.qi_feature_dim]
            qi_in = torch.cat([qi_in, self._qi_features(qi_features, qi_in.dtype)], dim=-1)
        logits = qc_in.new_empty(pooled.shape[0])
        logits[is_qc] = self.qc_head(qc_in).squeeze(-1)
        logits[~is_qc] = self.qi_head(qi_in).squeeze(-1)
        return logits


@dataclass
class ModelInfo:
    """What a saved model needs beyond its weights; `model.json` in the model folder."""

    tokenizer_fingerprint: str
    arch: str
    pooling: str
    hidden_size: int
    qc_feature_dim: int
    tasks: list[str]
    thresholds: dict[str, float] = field(default_factory=dict)
    head_norm: bool = False
    """Whether the heads read a LayerNorm of the pooled vector (models saved before it existed did not)."""
    priors: dict | None = None
    metrics: dict = field(default_factory=dict)
    nodes: list[str] | None = None
    """The training tree's nodes whose embeddings the QC head sums (`mtl.taxonomy.NodeIndex`), if it does."""
    node_slots: int = 0
    """Node ids per path: the last `node_slots` of the `qc_feature_dim` feature columns."""
    qi_feature_dim: int = 0
    """Word-overlap columns the QI head reads (`model.qi_features=overlap|overlap_binned`; models saved before it read
    none)."""
    qi_feature_names: list[str] | None = None
    """Those columns' names in order (`mtl.overlap.FEATURE_SETS` when trained), so that a model is refused by an
    mtl whose overlap columns differ, not fed other features of the same count (None: saved before names were)."""
    encoder: str | None = None
    """The sentence encoder whose rankings are fused with the model's (`model.encoder`, `mtl.encoder`) for the tasks
    of `encoder_tasks`, its state in `encoder-<task>.npz`; None: the model's scores alone."""
    encoder_tasks: list[str] = field(default_factory=list)
    """The tasks whose scores are fused (`model.encoder_tasks` among the trained ones)."""
    fusion: dict[str, list[list[float]]] = field(default_factory=dict)
    """Per task, the [mean, std] of the model's logit and of the encoder's two columns on the validation pairs of
    the step saved (`mtl.encoder.fusion_stats`); a step-N/ checkpoint has none."""

    @property
    def prior_columns(self) -> int:
        """QC feature columns other than node ids: the prefix priors'."""
        return self.qc_feature_dim - self.node_slots

    @property
    def node_index(self):
        from mtl.taxonomy import NodeIndex

        return NodeIndex(self.nodes, self.node_slots) if self.nodes else None


def resolve_dtype(name: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def build_tokenizer(cfg: ExperimentConfig) -> tuple[PairTokenizer, Path]:
    folder = resolve(cfg.model.backbone, cfg.model.gguf_file)
    from transformers import AutoConfig

    arch = cfg.model.arch if cfg.model.arch != "auto" else detect_arch(AutoConfig.from_pretrained(str(folder)))
    return PairTokenizer(load_tokenizer(folder), arch, cfg.data.max_length, cfg.data.template), folder


def build_model(cfg: ExperimentConfig, qc_feature_dim: int, folder: Path, arch: str,
                qc_nodes: tuple[int, int] = (0, 0), node_names: list[str] | None = None,
                qi_feature_dim: int = 0) -> MultiTaskClassifier:
    """Backbone from `folder` + fresh LoRA (seeded by the caller) + fresh heads; `model.init_from` loads saved ones
    (`node_names`: this run's training-tree nodes, to which the saved node embeddings are mapped by name)."""
    backbone = load_backbone(folder, resolve_dtype(cfg.model.dtype), cfg.model.attn_implementation,
                             cfg.model.num_layers)
    model = wrap_backbone(cfg, backbone, qc_feature_dim, arch, qc_nodes, qi_feature_dim)
    if cfg.model.init_from:
        load_init_from(model, Path(cfg.model.init_from), cfg.active_tasks, node_names)
    return model


def wrap_backbone(cfg: ExperimentConfig, backbone: nn.Module, qc_feature_dim: int, arch: str,
                  qc_nodes: tuple[int, int] = (0, 0), qi_feature_dim: int = 0) -> MultiTaskClassifier:
    """A built bare backbone + fresh LoRA + fresh heads as `cfg` says: `build_model` after loading, and the way in
    for a backbone built otherwise (random weights at a released shape: `benchmarks/gpu_bench.py`)."""
    if cfg.model.gradient_checkpointing:
        backbone.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=list(cfg.lora.target_modules))
    backbone = get_peft_model(backbone, lora)
    if cfg.lora.fast_dropout:
        use_bits_dropout(backbone)
    pooling = resolve_pooling(cfg.model.pooling, arch)
    hidden = backbone.get_base_model().config.hidden_size
    return MultiTaskClassifier(backbone, hidden, pooling, qc_feature_dim, cfg.model.head_dropout, cfg.model.head_norm,
                               arch, qc_nodes, cfg.taxonomy.node_dim, qi_feature_dim)


def resolve_pooling(pooling: str, arch: str) -> str:
    """`auto` pools a decoder's last token and an encoder's first."""
    return pooling if pooling != "auto" else ("last" if arch == "decoder" else "first")


def check_warm_start(cfg: ExperimentConfig) -> ModelInfo:
    """`model.init_from`'s model.json, refused when it read its pairs in another `data.template`, its category paths
    in another `taxonomy.render` (when both train QC) or pooled them otherwise: its adapter and heads would load (the
    shapes fit) but they learned other positions and vectors."""
    folder = Path(cfg.model.init_from)
    info = read_info(folder)
    if not (folder / "config.yaml").is_file():
        raise CheckpointError(f"{folder}: incomplete model folder, config.yaml is missing")
    saved = load_config(folder / "config.yaml")
    if saved.data.template != cfg.data.template:
        raise ConfigError(f"{folder / 'config.yaml'}: field 'data.template': the model was trained on "
                          f"{saved.data.template!r} pairs, this run reads {cfg.data.template!r} pairs; warm start "
                          "with the same template")
    if "qc" in info.tasks and "qc" in cfg.active_tasks and saved.taxonomy.render != cfg.taxonomy.render:
        raise ConfigError(f"{folder / 'config.yaml'}: field 'taxonomy.render': the model read category paths "
                          f"{saved.taxonomy.render!r}, this run writes them {cfg.taxonomy.render!r}; warm start with "
                          "the same rendering")
    pooling = resolve_pooling(cfg.model.pooling, info.arch)
    if info.pooling != pooling:
        raise ConfigError(f"{folder / 'model.json'}: field 'pooling': the model's heads read {info.pooling!r} pooling, "
                          f"this run pools {pooling!r}; warm start with the same model.pooling")
    return info


def load_init_from(model: MultiTaskClassifier, folder: Path, tasks, node_names: list[str] | None = None) -> None:
    """Warm start from a saved model: its adapter, and the heads it trained that this run trains too. A one-task
    run from a model of the other task alone (TAPT's second stage) starts its head as that model's head, as the
    paper reuses one classifier head; the target head's feature columns (QC's taxonomy, QI's overlap) start at zero. Node
    embeddings are matched by node name (`node_names`, this run's tree), since another run's tree (another fold,
    another file) numbers its nodes otherwise."""
    trained = read_info(folder).tasks
    load_weights(model, folder, heads=[t for t in trained if t in tasks], node_names=node_names)
    if len(tasks) == 1 and trained == [t for t in TASKS if t != tasks[0]]:
        transfer_head(model, folder, trained[0], tasks[0])


def transfer_head(model: MultiTaskClassifier, folder: Path, source: str, target: str) -> None:
    """The target head (and its norm) start as the source's saved in `folder`: the weights on the pooled vector are
    copied, the target's feature columns (QC's taxonomy, QI's overlap features: different things) start at zero."""
    saved = load_file(str(folder / "heads.safetensors"))
    weight, bias = saved[f"{source}_head.weight"], saved[f"{source}_head.bias"]
    dst = model.head(target)
    shared = min(weight.shape[1], model.hidden_size)
    with torch.no_grad():
        dst.weight.zero_()
        dst.weight[:, :shared] = weight[:, :shared]
        dst.bias.copy_(bias)
        if model.head_norm and f"{source}_norm.weight" in saved:
            norm = getattr(model, f"{target}_norm")
            norm.weight.copy_(saved[f"{source}_norm.weight"])
            norm.bias.copy_(saved[f"{source}_norm.bias"])


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"total": total, "trainable": trainable, "bytes": nbytes}


def save_model(model: MultiTaskClassifier, folder: str | Path, cfg: ExperimentConfig, info: ModelInfo,
               taxonomy=None, state_dict: dict | None = None, card: str = "", encoders: dict | None = None) -> None:
    """Write a model folder atomically. `state_dict` comes from `accelerator.get_state_dict` under ZeRO-3, where
    parameters are sharded across processes; `card`, the folder's README.md (`mtl.card`), if any; `encoders`, each
    task's `mtl.encoder.PairEncoder` (`model.encoder=use`)."""
    state_dict = model.state_dict() if state_dict is None else state_dict
    heads = {k: v.detach().float().cpu().contiguous() for k, v in state_dict.items() if k.startswith(HEAD_PREFIXES)}
    backbone_state = {k[len("backbone."):]: v for k, v in state_dict.items() if k.startswith("backbone.")}
    with atomic_dir(folder) as tmp:
        model.backbone.save_pretrained(str(tmp / "adapter"), state_dict=backbone_state)
        save_file(heads, str(tmp / "heads.safetensors"))
        save_config(cfg, tmp / "config.yaml")
        atomic_write_text(tmp / "model.json", json.dumps(info.__dict__, indent=1, ensure_ascii=False))
        if taxonomy is not None:
            taxonomy.save(tmp / "taxonomy.json")
        if card:
            atomic_write_text(tmp / "README.md", card)
        for task, encoder in (encoders or {}).items():
            encoder.save(encoder_file(tmp, task))


def load_weights(model: MultiTaskClassifier, folder: Path, heads=TASKS, node_names: list[str] | None = None) -> None:
    """Load a saved adapter and the given heads into `model`, refusing anything that does not fit exactly; with
    `node_names` (a warm start) the saved node embeddings are first mapped onto those nodes (`remap_nodes`)."""
    adapter_file, heads_file = folder / "adapter" / "adapter_model.safetensors", folder / "heads.safetensors"
    for file in (adapter_file, heads_file):
        if not file.is_file():
            raise CheckpointError(f"{folder}: incomplete model folder, {file.name} is missing")
    result = set_peft_model_state_dict(model.backbone, load_file(str(adapter_file)))
    missing = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or missing:
        raise CheckpointError(
            f"{folder}: adapter does not fit this backbone/LoRA config "
            f"(unexpected {result.unexpected_keys[:3]}, missing {missing[:3]})"
        )
    saved = load_file(str(heads_file))
    for task in heads:
        if task == "qc" and model.node_slots:
            weight = saved.get("qc_nodes.weight")
            if weight is not None and node_names is not None:
                weight = remap_nodes(weight, read_info(folder).nodes or [], node_names, model.qc_nodes.weight)
            if weight is None or weight.shape != model.qc_nodes.weight.shape:
                raise CheckpointError(f"{folder}: no qc_nodes of shape {tuple(model.qc_nodes.weight.shape)} (the model "
                                      "was saved with other taxonomy.features or another training tree)")
            with torch.no_grad():
                model.qc_nodes.weight.copy_(weight)
        if model.head_norm:
            norm = getattr(model, f"{task}_norm")
            weight, bias = saved.get(f"{task}_norm.weight"), saved.get(f"{task}_norm.bias")
            if weight is None or weight.shape != norm.weight.shape:
                raise CheckpointError(f"{folder}: no {task}_norm of shape {tuple(norm.weight.shape)} (the model was "
                                      "saved without model.head_norm)")
            with torch.no_grad():
                norm.weight.copy_(weight)
                norm.bias.copy_(bias)
        head = model.head(task)
        weight, bias = saved.get(f"{task}_head.weight"), saved.get(f"{task}_head.bias")
        if weight is None or weight.shape != head.weight.shape:
            raise CheckpointError(
                f"{folder}: {task}_head has shape {None if weight is None else tuple(weight.shape)}, this model "
                f"expects {tuple(head.weight.shape)} (taxonomy.features, model.qi_features or the backbone differ)"
            )
        with torch.no_grad():
            head.weight.copy_(weight)
            head.bias.copy_(bias)


def remap_nodes(saved: torch.Tensor, saved_nodes: list[str], nodes: list[str], fresh: torch.Tensor) -> torch.Tensor:
    """Node embeddings for `nodes` (row i + 1 is `nodes[i]`, row 0 padding): a node the saved model knew gets its
    saved row, found by name, and any other keeps its row of `fresh`."""
    if len(saved) != len(saved_nodes) + 1:
        return saved  # inconsistent with its own model.json: left to load_weights' shape check
    out = fresh.detach().clone().to(saved.dtype)
    index = {node: i + 1 for i, node in enumerate(saved_nodes)}
    for i, node in enumerate(nodes):
        if node in index:
            out[i + 1] = saved[index[node]]
    return out


def read_info(folder: str | Path) -> ModelInfo:
    """A model folder's `model.json`, checked against `ModelInfo` before anything else reads it: the fields without
    a default are required, the others optional, each of its annotated type (`check_schema`: no "0.5" for 0.5), no
    other key; thresholds in [0, 1], tasks among TASKS, priors that fit `qc_feature_dim`, and word-overlap columns
    named as this mtl computes them."""
    path = Path(folder) / "model.json"
    problem = input_problem(path)
    if problem:
        raise CheckpointError(f"{folder}: not a saved mtl model (no model.json)" if problem == "file not found"
                              else f"{path}: {problem}")
    raw = read_json(path)
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(ModelInfo)})
    if unknown:
        raise CheckpointError(f"{path}: field {unknown[0]!r}: unknown; model.json holds the fields of "
                              f"{__name__}.ModelInfo (a newer mtl may have written it)")
    info = check_schema(raw, ModelInfo, path)
    if not info.tasks or not set(info.tasks) <= set(TASKS):
        raise CheckpointError(f"{path}: field 'tasks': must be some of {', '.join(TASKS)}, got {info.tasks!r}")
    for task, threshold in info.thresholds.items():
        if task not in TASKS or not 0 <= threshold <= 1:
            raise CheckpointError(f"{path}: field 'thresholds': must map {' or '.join(TASKS)} to a number in [0, 1], "
                                  f"got {task!r}: {threshold!r}")
    if info.qc_feature_dim < 0:
        raise CheckpointError(f"{path}: field 'qc_feature_dim': must be >= 0, got {info.qc_feature_dim}")
    if info.encoder not in (None, ENCODER):
        raise CheckpointError(f"{path}: field 'encoder': the model's scores are fused with {info.encoder!r}, this "
                              f"mtl encodes with {ENCODER!r}: retrain it")
    if (info.encoder is None) != (not info.encoder_tasks) or not set(info.encoder_tasks) <= set(info.tasks):
        raise CheckpointError(f"{path}: field 'encoder_tasks': must be some of the trained tasks where 'encoder' is "
                              f"set and empty where it is not, got {info.encoder_tasks!r} with {info.encoder!r}")
    for task, stats in info.fusion.items():
        if task not in info.encoder_tasks or len(stats) != len(COLUMNS) + 1 or \
                any(len(pair) != 2 or not pair[1] > 0 for pair in stats):
            raise CheckpointError(f"{path}: field 'fusion': {task!r} must map a task of 'encoder_tasks' to "
                                  f"{len(COLUMNS) + 1} [mean, std > 0] pairs, got {stats!r}")
    for task in info.encoder_tasks:
        if not encoder_file(folder, task).is_file():
            raise CheckpointError(f"{folder}: incomplete model folder, {encoder_file(folder, task).name} is missing")
    widths = sorted(len(names) for names in FEATURE_SETS.values())
    if info.qi_feature_dim not in widths:
        raise CheckpointError(f"{path}: field 'qi_feature_dim': must be one of {widths} (the word-overlap feature "
                              f"sets), got {info.qi_feature_dim}")
    expected = FEATURE_SETS[feature_set(info.qi_feature_dim)]
    if info.qi_feature_names is not None and tuple(info.qi_feature_names) != expected:
        raise CheckpointError(f"{path}: field 'qi_feature_names': the QI head reads {info.qi_feature_names}, but "
                              f"this mtl computes {list(expected) if expected else 'none'}: retrain it")
    if (info.nodes is None) != (info.node_slots == 0) or info.node_slots < 0 or info.node_slots > info.qc_feature_dim:
        raise CheckpointError(f"{path}: fields 'nodes' and 'node_slots' disagree ({len(info.nodes or [])} nodes, "
                              f"{info.node_slots} slots of qc_feature_dim {info.qc_feature_dim})")
    if info.priors is not None:
        priors = check_schema(info.priors, PrefixPriors, path, "priors.")
        if priors.depth < 1 or priors.n_features != info.qc_feature_dim - info.node_slots or \
                any(len(c) != 2 for c in priors.counts.values()):
            raise CheckpointError(f"{path}: field 'priors': depth {priors.depth} and counts do not fit qc_feature_dim "
                                  f"{info.qc_feature_dim}")
    return info


def load_trained(folder: str | Path, device: str | torch.device = "cpu"):
    """A saved model ready for inference: (model in eval mode, PairTokenizer, ModelInfo, config)."""
    folder = Path(folder)
    info = read_info(folder)
    cfg = load_config(folder / "config.yaml")
    cfg.model.init_from = ""
    cfg.model.head_norm = info.head_norm
    if cfg.model.attn_implementation == "flex_attention" and torch.device(device).type != "cuda":
        cfg.model.attn_implementation = "sdpa"  # the same masks; flex would compile a kernel per row width on CPU
    pairs, backbone_folder = build_tokenizer(cfg)
    if pairs.fingerprint() != info.tokenizer_fingerprint:
        raise CheckpointError(
            f"{folder}: the backbone's tokenizer ({cfg.model.backbone}) is not the one this model was trained with "
            "(fingerprint differs): its token ids would mean something else"
        )
    model = build_model(cfg, info.qc_feature_dim, backbone_folder, pairs.arch, (len(info.nodes or []), info.node_slots),
                        qi_feature_dim=info.qi_feature_dim)
    load_weights(model, folder)
    return model.to(device).eval(), pairs, info, cfg
