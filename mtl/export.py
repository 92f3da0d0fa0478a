"""`mtl export`: a trained model folder -> per task, a Hugging Face folder that serving stacks load without mtl.

    mtl export --model runs/<run>/best --out served/          # served/qc/, served/qi/ (the tasks it trained)
    AutoModelForSequenceClassification.from_pretrained("served/qi")                          # a stock folder
    AutoModelForSequenceClassification.from_pretrained("served/qc", trust_remote_code=True)  # an mtl-head folder

Each task folder holds the backbone with the LoRA merged into its weights (truncated to `model.num_layers` where the
run was), the task head as the model's classifier, the tokenizer with mtl's pair template, `preprocess.py` +
`preprocess.json` (mtl's cleaning and text rendering, dependency-free), a README.md, and in `config.json` the
decision threshold (`mtl_threshold`) and `id2label`. The LoRA is always merged: serving needs one set of weights,
and the unmerged form (adapter + heads) is the model folder itself, which only mtl reads.

Two kinds of folder:
- **stock**, where the stock class computes mtl's model exactly: a decoder, last-token pooling, no LayerNorm on the
  pooled vector (`model.head_norm=false`), a tokenizer whose pad token is not the pair's last token. The stock
  classifier layer has no bias, so the head's bias `b` moves into the threshold: the folder's logit is mtl's logit
  minus `b`, and its threshold `sigmoid(logit(t) - b)`, so predictions equal mtl's at threshold `t` while the
  probabilities differ from mtl's (`config.json`: `mtl_head_bias`, `mtl_tuned_threshold`).
- **remote code** otherwise (mean or first pooling, head_norm, an encoder): `modeling_mtl.py` next to the weights,
  registered in `auto_map`, computes mtl's logit itself; loading needs `trust_remote_code=True`, so stacks that
  refuse remote code cannot serve it. `--stock-only` refuses such a model instead, naming the settings.

A QC head that reads taxonomy features (`taxonomy.features`: prefix priors, node embeddings) is refused: a serving
stack passes text alone. `--without-taxonomy` exports it without them, scoring every category path as one training
never saw (all feature columns zero, the value an unseen path gets), so its predictions differ from `mtl predict`'s.
A QI head that reads word-overlap features (`model.qi_features=overlap|overlap_binned`) is refused likewise, and a
model whose scores are fused with a sentence encoder's (`model.encoder=use`) always.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mtl.config import ExperimentConfig, TASKS, load_config
from mtl.data.pairs import PairTokenizer
from mtl.errors import CheckpointError, ConfigError
from mtl.io import atomic_dir, atomic_write_text, check_output_dir, input_problem
from mtl.model import ModelInfo, build_tokenizer, load_trained, read_info
from mtl.serving import modeling_mtl

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
LABEL = "relevant"
SERVING = Path(__file__).with_name("serving")
PROBES = [("red running shoes - zapatillas", "clothing, shoes & accessories > shoes > running"),
          ("сковорода", "home & garden > kitchen > cookware"), ("小麦粉 2024", "flour model 7")]
"""Pairs on which the exported tokenizer's template must give the ids mtl gives."""


@dataclass
class TaskPlan:
    """How one task exports: `kind` stock or remote, and why not stock (`reasons`, the settings)."""

    task: str
    kind: str
    reasons: list[str]


def export_model(model_dir: str | Path, out: str | Path, tasks: list[str] | None = None, without_taxonomy: bool = False,
                 stock_only: bool = False, dtype: str = "float32") -> list[dict]:
    """Write `out/<task>/` for each task (default: every task the model trained), atomically: `out` appears whole
    or not at all. The inputs are checked before the model loads, the saved tokenizer's template after. Returns one
    summary per task."""
    model_dir, out = Path(model_dir), Path(out)
    problem = input_problem(model_dir, "folder")
    if problem:
        raise CheckpointError(f"--model {model_dir}: {problem}")
    info = read_info(model_dir)
    cfg = load_config(model_dir / "config.yaml")
    check_output_dir(out)
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty; give a new or empty folder")
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    tasks = list(tasks or info.tasks)
    untrained = [t for t in tasks if t not in info.tasks]
    if untrained or not set(tasks) <= set(TASKS):
        raise ConfigError(f"--task {untrained[0] if untrained else tasks}: {model_dir} trained "
                          f"{'+'.join(info.tasks)} only")
    pairs, _ = build_tokenizer(cfg)
    plans = [plan_task(task, info, cfg, pairs, model_dir, without_taxonomy) for task in dict.fromkeys(tasks)]
    remote = [p for p in plans if p.kind == "remote"]
    if stock_only and remote:
        raise ConfigError(f"{model_dir}: the stock classifier cannot compute its {remote[0].task} model "
                          f"({', '.join(remote[0].reasons)}); export without --stock-only (remote code), or retrain "
                          "a decoder with model.pooling=last model.head_norm=false")

    model, pairs, info, cfg = load_trained(model_dir)
    backbone = model.backbone.merge_and_unload().to(DTYPES[dtype])
    summaries = []
    with atomic_dir(out) as tmp:
        for plan in plans:
            summaries.append(write_task(tmp / plan.task, plan, model, backbone, pairs, info, cfg, dtype,
                                        without_taxonomy))
            summaries[-1]["folder"] = str(out / plan.task)
    return summaries


def plan_task(task: str, info: ModelInfo, cfg: ExperimentConfig, pairs: PairTokenizer, model_dir: Path,
              without_taxonomy: bool) -> TaskPlan:
    """Stock where the stock class computes this task's logit (up to the head's bias), else remote; a QC head
    reading taxonomy features is refused unless `without_taxonomy`, a model fused with a sentence encoder always
    (the exported head would score without it)."""
    if task in info.encoder_tasks:
        raise ConfigError(f"{model_dir}: its {task.upper()} scores are fused with a sentence encoder's (model.encoder="
                          f"{cfg.model.encoder}), which a serving stack cannot compute; retrain with "
                          "model.encoder=none to export it")
    if task == "qc" and info.qc_feature_dim and not without_taxonomy:
        raise ConfigError(f"{model_dir}: the QC head reads taxonomy features (taxonomy.features="
                          f"{cfg.taxonomy.features}), which a serving stack cannot pass; --without-taxonomy exports it "
                          "scoring every category path as unseen (predictions differ from mtl predict's), --task qi "
                          "leaves QC out, or retrain with taxonomy.features=none")
    if task == "qi" and info.qi_feature_dim:
        raise ConfigError(f"{model_dir}: the QI head reads word-overlap features (model.qi_features="
                          f"{cfg.model.qi_features}), which a serving stack cannot pass; --task qc leaves QI out, or "
                          "retrain with model.qi_features=none")
    reasons = []
    if info.arch != "decoder":
        reasons.append("an encoder backbone (its stock class pools through a pooler layer)")
    elif stock_class(cfg) is None:
        reasons.append("a backbone whose stock classifier pools its own way")
    if info.pooling != "last":
        reasons.append(f"model.pooling={info.pooling}")
    if info.head_norm:
        reasons.append("model.head_norm=true")
    if info.arch == "decoder" and pairs.suffix and pairs.suffix[-1] == pairs.pad_id:
        reasons.append("a tokenizer that pads with the pair's last token, which the stock class skips when pooling")
    return TaskPlan(task, "remote" if reasons else "stock", reasons)


def stock_class(cfg: ExperimentConfig):
    """The backbone's stock sequence classifier if it is transformers' generic one (the last non-pad token through
    a bias-free linear `score`), else None."""
    from transformers import AutoConfig
    from transformers.modeling_layers import GenericForSequenceClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    from mtl.backbone import resolve, text_config

    config = text_config(AutoConfig.from_pretrained(str(resolve(cfg.model.backbone, cfg.model.gguf_file))))
    cls = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING.get(type(config), None)
    return cls if cls is not None and issubclass(cls, GenericForSequenceClassification) else None


def write_task(folder: Path, plan: TaskPlan, model, backbone, pairs: PairTokenizer, info: ModelInfo,
               cfg: ExperimentConfig, dtype: str, without_taxonomy: bool) -> dict:
    head = model.head(plan.task)
    hidden = backbone.config.hidden_size
    weight, bias = head.weight.detach()[:, :hidden].float(), float(head.bias.detach())
    tuned = info.thresholds.get(plan.task, 0.5)
    threshold = shifted_threshold(tuned, bias) if plan.kind == "stock" else tuned
    config = copy.deepcopy(backbone.config)
    config.num_labels = 1
    config.id2label, config.label2id = {0: LABEL}, {LABEL: 0}
    config.pad_token_id = pairs.pad_id
    config.dtype = DTYPES[dtype]
    extra = {"mtl_task": plan.task, "mtl_threshold": threshold, "mtl_tuned_threshold": tuned,
             "mtl_head_bias": bias if plan.kind == "stock" else 0.0,
             "mtl_without_taxonomy": bool(plan.task == "qc" and info.qc_feature_dim and without_taxonomy)}
    if plan.kind == "stock":
        classifier = _stock(config, extra, backbone, weight.to(DTYPES[dtype]))
    else:
        norm = getattr(model, f"{plan.task}_norm") if info.head_norm else None
        classifier = _remote(config, extra, info, backbone, norm, weight, bias)
    classifier.save_pretrained(str(folder))
    save_tokenizer(pairs, folder)
    save_preprocess(folder, plan.task, cfg, pairs)
    atomic_write_text(folder / "README.md", export_card(plan, extra, cfg, info))
    return {"task": plan.task, "kind": plan.kind, "reasons": plan.reasons, **extra}


def shifted_threshold(threshold: float, bias: float) -> float:
    """The threshold on sigmoid(w·h) that decides as `threshold` on sigmoid(w·h + bias) does."""
    if threshold <= 0 or threshold >= 1:
        return float(threshold)
    return 1 / (1 + math.exp(-(math.log(threshold / (1 - threshold)) - bias)))


def _stock(config, extra: dict, backbone, weight: torch.Tensor):
    from transformers import AutoModelForSequenceClassification

    for key, value in extra.items():
        setattr(config, key, value)
    with torch.device("meta"):  # the backbone is the merged one: build the classifier without a second copy
        classifier = AutoModelForSequenceClassification.from_config(config)
    setattr(classifier, classifier.base_model_prefix, backbone)
    classifier.score = nn.Linear(weight.shape[1], 1, bias=False, dtype=weight.dtype)
    with torch.no_grad():
        classifier.score.weight.copy_(weight)
    return classifier


def _remote(config, extra: dict, info: ModelInfo, backbone, norm, weight: torch.Tensor, bias: float):
    labels = {"num_labels": 1, "id2label": config.id2label, "label2id": config.label2id}
    config = modeling_mtl.MtlConfig(backbone=config.to_dict(), mtl_pooling=info.pooling, mtl_head_norm=info.head_norm,
                                    pad_token_id=config.pad_token_id, dtype=config.dtype, **labels, **extra)
    with torch.device("meta"):
        classifier = modeling_mtl.MtlForSequenceClassification(config)
    classifier.model = backbone
    classifier.mtl_head = nn.Linear(weight.shape[1], 1)
    with torch.no_grad():
        classifier.mtl_head.weight.copy_(weight)
        classifier.mtl_head.bias.fill_(bias)
    classifier.mtl_norm = copy.deepcopy(norm).float() if norm is not None else nn.Identity()
    config.register_for_auto_class()  # with the next line: copies modeling_mtl.py and sets auto_map for both
    classifier.register_for_auto_class("AutoModelForSequenceClassification")
    return classifier


def save_tokenizer(pairs: PairTokenizer, folder: Path) -> None:
    """The tokenizer, right-padded, cutting at `data.max_length`; for decoders with mtl's pair template as its
    post-processor (`<bos> query \\n target <eos>`, or `data.template=prompt`'s question), checked on reload against
    mtl's own ids."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = pairs.tokenizer
    if pairs.arch == "decoder":
        from tokenizers import Tokenizer, processors

        backend = Tokenizer.from_str(tok.backend_tokenizer.to_str())
        # Pieces named by id, not by token: the template parser splits a name at ":" and reads "$..." as a sequence,
        # and a prompt's tokens hold both.
        prefix, sep, suffix = ([f"<mtl-id-{i}>" for i in ids] for ids in (pairs.prefix, pairs.sep, pairs.suffix))
        specials = dict(zip(prefix + sep + suffix, pairs.prefix + pairs.sep + pairs.suffix))
        backend.post_processor = processors.TemplateProcessing(
            single=[*prefix, "$A", *suffix], pair=[*prefix, "$A", *sep, "$B:1", *suffix],
            special_tokens=list(specials.items()))
        # A generic fast tokenizer: a model-specific class may rebuild its post-processor on load.
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=tok.bos_token, eos_token=tok.eos_token,
                                      unk_token=tok.unk_token, pad_token=tok.convert_ids_to_tokens(pairs.pad_id),
                                      padding_side="right", model_input_names=["input_ids", "attention_mask"])
    else:
        tok = copy.deepcopy(tok)
    tok.padding_side, tok.model_max_length = "right", pairs.max_length
    tok.save_pretrained(str(folder))
    saved = AutoTokenizer.from_pretrained(str(folder))
    a, b = zip(*PROBES)
    kwargs = {"truncation": True} if pairs.arch == "encoder" else {}
    if saved(list(a), list(b), **kwargs)["input_ids"] != pairs.encode(list(a), list(b)):
        raise CheckpointError(f"{folder}: the saved tokenizer does not reproduce mtl's pair template; serve with "
                              "preprocess.encode")


def save_preprocess(folder: Path, task: str, cfg: ExperimentConfig, pairs: PairTokenizer) -> None:
    """`preprocess.py` (copied unchanged) and the settings it reads, `preprocess.json`."""
    settings = {"task": task, "clean": cfg.data.clean, "lowercase": cfg.data.lowercase,
                "translation": bool(cfg.augment.translation), "render": cfg.taxonomy.render, "arch": pairs.arch,
                "template": pairs.template, "max_length": pairs.max_length}
    if pairs.arch == "decoder":
        settings.update(prefix=pairs.prefix, separator_ids=pairs.sep, suffix=pairs.suffix,
                        separator=pairs.tokenizer.decode(pairs.sep))
    atomic_write_text(folder / "preprocess.json", json.dumps(settings, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(folder / "preprocess.py", (SERVING / "preprocess.py").read_text(encoding="utf-8"))


def export_card(plan: TaskPlan, extra: dict, cfg: ExperimentConfig, info: ModelInfo) -> str:
    """README.md of an exported task folder: how to load and call it, and where it differs from `mtl predict`."""
    remote = plan.kind == "remote"
    load = f"AutoModelForSequenceClassification.from_pretrained(folder{', trust_remote_code=True' if remote else ''})"
    layers = f" (its first {cfg.model.num_layers} layers)" if cfg.model.num_layers else ""
    lines = [
        f"# mtl {plan.task.upper()} model, exported for serving",
        "",
        f"Exported by `mtl export` from a `{cfg.model.backbone}` model (train.mode={cfg.train.mode}); the LoRA adapter "
        f"is merged into the backbone's weights{layers}.",
        "",
        f"- Load: `{load}`; one logit per pair, label `{LABEL}`.",
        "- Input: `preprocess.pair(query, target, translated_query)` (`preprocess.py`, standard library only) gives "
        "the pipeline's `{\"text\", \"text_pair\"}` with mtl's cleaning, translation and category rendering; the "
        "tokenizer's template then yields mtl's token ids for pairs within "
        f"{cfg.data.max_length} tokens (`preprocess.encode` for any length). `None`: mtl predicts 0 unread.",
        f"- Decision: relevant iff sigmoid(logit) >= `mtl_threshold` = {extra['mtl_threshold']:.6g} (config.json).",
    ]
    if remote:
        lines.append(f"- Remote code: `modeling_mtl.py` computes the logit as mtl does ({', '.join(plan.reasons)}); "
                     "a serving stack that refuses remote code cannot serve this folder (its config's model type, "
                     "`mtl_pair_classifier`, makes transformers refuse it without trust_remote_code). Logits, "
                     "probabilities and predictions equal `mtl predict`'s; the threshold is the tuned one.")
    else:
        lines.append(f"- Stock classifier, no bias: the head's bias ({extra['mtl_head_bias']:.6g}, `mtl_head_bias`) "
                     "is not in the logit but in the threshold, so predictions equal `mtl predict`'s while the "
                     f"probabilities are shifted: mtl's logit = this logit + mtl_head_bias, and mtl's tuned "
                     f"threshold {extra['mtl_tuned_threshold']:.6g} (`mtl_tuned_threshold`) applies to mtl's.")
    if extra["mtl_without_taxonomy"]:
        lines.append(f"- Without taxonomy features: the QC head was trained with taxonomy.features="
                     f"{cfg.taxonomy.features}; here every category path is scored as one training never saw, so "
                     "predictions differ from `mtl predict`'s.")
    if info.thresholds.get(plan.task) is None:
        lines.append("- No tuned threshold was saved with the model: 0.5 on mtl's probability.")
    return "\n".join(lines) + "\n"
