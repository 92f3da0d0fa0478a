"""Prediction and scoring of submission files.

    mtl predict --model runs/mtl-.../best --input test_QC.txt --output submit_QC.txt
    mtl predict --model runs/<run>/fold-*/best --input test_QC.txt --input test_QI.txt \
        --output submit_QC.txt --output submit_QI.txt
    mtl evaluate --pred submit_QC.txt --gold dev_QC.txt

One joint model serves both tasks: the input's columns say which head to use, and a QC and a QI file can be scored
in one call, with one model load. Several models (the fold models of a CV run) make an ensemble: the backbone is
loaded once, each model's adapter and heads are loaded into it in turn, and the pairs' probabilities (or logits) are
averaged. The output is JSON lines `{"id": ..., "prediction": 0|1}` in input order with every input id exactly once,
each id as the input gives it; a row the model cannot read (empty query or title) is predicted 0 and counted. The
inputs, outputs, model folders and threshold are checked before the first model loads, so a bad call fails in
seconds rather than after a 12B load. The decision threshold is the one tuned on validation and saved with the
model; for an ensemble, the out-of-fold threshold of the run's `cv.json`; or `--threshold` (0.5: the paper's argmax).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mtl.backbone import check_device
from mtl.config import ExperimentConfig, flatten, load_config, to_dict
from mtl.cv import CV_FILE
from mtl.data.records import TARGET_FIELD, clean_records, is_blank, parse_id, read_json_lines, read_records
from mtl.data.tasks import TaskData, make_task_data, qc_features, qi_features
from mtl.encoder import PairEncoder, encoder_file
from mtl.errors import CheckpointError, ConfigError, DataError
from mtl.evaluate import predict_fused
from mtl.io import atomic_open, check_output_path, read_json
from mtl.metrics import classification_report, format_language_table, majority_baseline
from mtl.model import ModelInfo, load_trained, load_weights, read_info
from mtl.taxonomy import PrefixPriors
from mtl.translate.backends import base_language

log = logging.getLogger(__name__)

AVERAGES = ("probabilities", "logits")

SHARED_INFO = ("tokenizer_fingerprint", "arch", "tasks", "pooling", "hidden_size", "prior_columns", "head_norm",
               "encoder", "encoder_tasks")
SHARED_CONFIG = ("model.backbone", "model.gguf_file", "model.num_layers", "model.dtype", "lora.r", "lora.alpha",
                 "lora.target_modules", "data.max_length", "data.template", "data.clean", "data.lowercase",
                 "augment.translation", "taxonomy.render")
"""What the models of an ensemble must share (`model.json` fields, config keys): they run on one loaded backbone
with one LoRA layout (alpha scales the loaded weights), and the input is read and tokenized once, as the first
model's config says. Node-id columns may differ (each fold's tree has its own depth): such a model is built on its
own (`_score`)."""


@dataclass
class Job:
    """One input file and the output it gets."""

    input: Path
    output: Path
    raw: pd.DataFrame
    task: str
    head: str
    records: pd.DataFrame | None = None
    dropped: dict | None = None


def predict_file(model_dir, input_path: str | Path, output_path: str | Path, task: str | None = None,
                 threshold: str | float = "tuned", head: str | None = None, with_scores: bool = False,
                 batch_size: int = 64, device: str = "cpu", average: str = "probabilities") -> dict:
    """Score every record of `input_path` with one model folder, or an ensemble (a list of them), and write the
    submission file atomically; returns counts."""
    models = [model_dir] if isinstance(model_dir, (str, Path)) else list(model_dir)
    return predict_files(models, [input_path], [output_path], task, threshold, head, with_scores, batch_size, device,
                         average)[0]


def predict_files(model_dirs, inputs, outputs, task: str | None = None, threshold: str | float = "tuned",
                  head: str | None = None, with_scores: bool = False, batch_size: int = 64, device: str = "cpu",
                  average: str = "probabilities") -> list[dict]:
    """Score each input (one file, or a QC and a QI file) with the models of `model_dirs` (one, or an ensemble
    whose scores are averaged) and write the output at the same position; returns one summary per output."""
    _check_options(model_dirs, inputs, outputs, task, threshold, head, batch_size, average)
    check_device(device)
    for output in outputs:
        check_output_path(output, "--output", inputs=inputs)
    if len(outputs) == 2 and Path(outputs[0]).resolve() == Path(outputs[1]).resolve():
        raise ConfigError(f"--output {outputs[1]} is given twice; give one output per input")
    jobs = []
    for input_path, output_path in zip(inputs, outputs):
        raw, _ = read_records(input_path, task)
        jobs.append(Job(Path(input_path), Path(output_path), raw, raw.attrs["task"], head or raw.attrs["task"]))
    if len(jobs) == 2 and jobs[0].task == jobs[1].task:
        raise ConfigError(f"--input {jobs[0].input} and --input {jobs[1].input} are both {jobs[0].task.upper()} "
                          "files; give one QC and one QI file")
    models = [Path(m) for m in model_dirs]
    infos, cfgs = check_ensemble(models)
    for job in jobs:
        if job.head not in infos[0].tasks:
            raise CheckpointError(f"{models[0]}: trained for {'+'.join(infos[0].tasks)}, its {job.head}_head is "
                                  f"untrained; pass --head {infos[0].tasks[0]} to score {job.task.upper()} pairs "
                                  "with it (transfer)")
        if job.head != job.task and job.head in infos[0].encoder_tasks:
            raise ConfigError(f"{models[0]}: its scores are fused with a sentence encoder fitted on {job.head.upper()} "
                              f"pairs (model.encoder={cfgs[0].model.encoder}): it scores no {job.task.upper()} pairs "
                              "(transfer); retrain with model.encoder=none")
        if job.head in infos[0].encoder_tasks:
            missing = [str(m) for m, info in zip(models, infos) if job.head not in info.fusion]
            if missing:
                raise CheckpointError(f"{missing[0]}: no fusion statistics for {job.head} in model.json (a step "
                                      "checkpoint keeps none): predict with best/ or final/")
    cuts = [choose_threshold(threshold, models, infos, job.head) for job in jobs]
    for job in jobs:
        job.records, job.dropped = _clean(job, cfgs[0])

    scores = _score(models, infos, jobs, device, batch_size, average)
    return [_write(job, probs, *cut, with_scores, len(models), average) for job, probs, cut in zip(jobs, scores, cuts)]


def _check_options(model_dirs, inputs, outputs, task, threshold, head, batch_size, average) -> None:
    if not model_dirs:
        raise ConfigError("--model: give at least one model folder")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if threshold != "tuned" and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                 or not 0 <= threshold <= 1):
        raise ConfigError(f"--threshold must be 'tuned' or a number in [0, 1], got {threshold!r}")
    if average not in AVERAGES:
        raise ConfigError(f"--average must be one of {', '.join(AVERAGES)}, got {average!r}")
    if len(inputs) != len(outputs) or not 1 <= len(inputs) <= 2:
        raise ConfigError(f"--input given {len(inputs)} times and --output {len(outputs)}: give one or two inputs "
                          "(a QC and a QI file) and one output for each, in the same order")
    if len(inputs) == 2 and (task or head):
        raise ConfigError(f"--{'task' if task else 'head'} applies to one --input; with two, each file's columns "
                          "say its task")


def check_ensemble(models: list[Path]) -> tuple[list[ModelInfo], list[ExperimentConfig]]:
    """Each model folder's `model.json` and config; several models must agree on `SHARED_INFO` and
    `SHARED_CONFIG`, and the one that does not (against what most of them have) is named."""
    infos = [read_info(m) for m in models]
    cfgs = [load_config(m / "config.yaml") for m in models]
    rows = [{**{k: repr(getattr(info, k)) for k in SHARED_INFO},
             **{k: repr(flatten(to_dict(cfg))[k]) for k in SHARED_CONFIG}} for info, cfg in zip(infos, cfgs)]
    for key in SHARED_INFO + SHARED_CONFIG:
        values = [row[key] for row in rows]
        common = Counter(values).most_common(1)[0][0]
        odd = next((i for i, value in enumerate(values) if value != common), None)
        if odd is not None:
            raise CheckpointError(f"{models[odd]}: {key} is {values[odd]} where the ensemble's other models have "
                                  f"{common}; an ensemble's models must share backbone, tokenizer, tasks, LoRA "
                                  "layout and input settings")
    return infos, cfgs


def choose_threshold(threshold, models: list[Path], infos: list[ModelInfo], head: str) -> tuple[float, str]:
    """(threshold, where it comes from): `--threshold`; else one model's own tuned threshold; else, for an
    ensemble, the out-of-fold threshold of its run's cv.json."""
    if threshold != "tuned":
        return float(threshold), "--threshold"
    if len(models) == 1:
        if head in infos[0].thresholds:
            return infos[0].thresholds[head], f"{models[0] / 'model.json'}"
        return 0.5, "0.5 (none saved with the model)"
    return oof_threshold(models, head)


def oof_threshold(models: list[Path], task: str) -> tuple[float, str]:
    """The out-of-fold threshold of `task` in the cv.json of the CV run whose fold models `models` are: the first
    cv.json above each model folder, the same for all, each model under one of its `fold-k/` folders. The ensemble's
    averaged scores are not the single fold models' scores it was tuned on, but it is the one threshold tuned on
    records no model trained on."""
    found = {m: next((p for p in (m.resolve(), *m.resolve().parents) if (p / CV_FILE).is_file()), None)
             for m in models}
    lost = next((m for m, root in found.items() if root is None), None)
    if lost is not None:
        raise ConfigError(f"--model {lost}: no {CV_FILE} in any folder above it, so no out-of-fold threshold for "
                          "an ensemble; pass --threshold")
    roots = list(dict.fromkeys(found.values()))
    if len(roots) > 1:
        a, b = (next(m for m, root in found.items() if root == r) for r in roots[:2])
        raise ConfigError(f"--model {a} and {b} are under different CV runs ({roots[0] / CV_FILE}, "
                          f"{roots[1] / CV_FILE}); pass --threshold")
    path = roots[0] / CV_FILE
    entry = read_json(path).get(task)
    value = entry.get("oof_threshold") if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{path}: field '{task}.oof_threshold': missing or not a number in [0, 1]; pass --threshold")
    folds = [f"fold-{k}" for k in entry.get("folds", [])]
    used = {m: m.resolve().relative_to(roots[0]).parts[:1] for m in models}
    outside = next((m for m, part in used.items() if not part or part[0] not in folds), None)
    if outside is not None:
        raise ConfigError(f"--model {outside}: not under a fold folder of {path} ({', '.join(folds) or 'none'} for "
                          f"{task}); pass --threshold")
    missing = sorted(set(folds) - {part[0] for part in used.values()})
    if missing:
        log.warning("the ensemble leaves out %s of %s: its out-of-fold threshold was tuned on all %d folds",
                    ", ".join(missing), path, len(folds))
    return float(value), f"{path} ({task}.oof_threshold)"


def _clean(job: Job, cfg: ExperimentConfig) -> tuple[pd.DataFrame, dict]:
    records, dropped = clean_records(job.raw, cfg.data.clean, cfg.data.lowercase)
    if len(records) < len(job.raw):
        log.warning("%s: %d of %d rows have an empty query or target and are predicted 0 (%s)", job.input,
                    len(job.raw) - len(records), len(job.raw),
                    ", ".join(f"{n} with {why}" for why, n in dropped.items() if n))
    if cfg.augment.translation:
        _warn_untranslated(records, job.input)
    return records, dropped


def _score(models: list[Path], infos: list[ModelInfo], jobs: list[Job], device: str, batch_size: int,
           average: str) -> list[np.ndarray]:
    """Each job's P(relevant) per record, averaged over the models (loaded here: the slow part, after every check).
    The first model is loaded whole; each further one loads its adapter and heads into the same backbone
    (`load_weights`), so an ensemble costs one backbone in memory and one load."""
    scores = [[] for _ in jobs]
    if not any(len(job.records) for job in jobs):
        return [np.zeros(0) for _ in jobs]
    model = data = pad_id = loaded = None
    for number, (folder, info) in enumerate(zip(models, infos), 1):
        if model is None or (info.nodes, info.node_slots, info.qi_feature_dim) != loaded:
            # A model with node embeddings has its own training tree's node list: its `qc_nodes` and `qc_head`
            # shapes differ from another fold's, so it is built afresh rather than loaded into the last one (so is
            # one whose QI head reads other features).
            model, pair_tokenizer, _, cfg = load_trained(folder, device)
            pad_id, loaded = pair_tokenizer.pad_id, (info.nodes, info.node_slots, info.qi_feature_dim)
            data = [make_task_data(job.records, job.task, cfg, pair_tokenizer) if len(job.records) else None
                    for job in jobs]
        else:
            load_weights(model, folder)
        if len(models) > 1:
            log.info("scoring with model %d of %d: %s", number, len(models), folder)
        for job, task_data, out in zip(jobs, data, scores):
            if task_data is not None:
                task_data = _with_features(task_data, info)
                if job.task in info.encoder_tasks:  # each fold model fuses with the encoder it was trained beside
                    task_data = dataclasses.replace(task_data, encoder_columns=PairEncoder.load(
                        encoder_file(folder, job.task)).columns(job.records["origin_query"].tolist(),
                                                                job.records[TARGET_FIELD[job.task]].tolist(),
                                                                cache_dir=cfg.data.cache_dir))
                out.append(predict_fused(model, task_data, pad_id, batch_size, info.fusion.get(job.task),
                                         head=job.head, as_logits=average == "logits")[0])
    return [_mean(out, average) for out in scores]


def _with_features(data: TaskData, info: ModelInfo) -> TaskData:
    """QC pairs read the taxonomy features of the model that scores them (its prefix priors, then its node ids):
    each fold's model fitted its own on its own training tree. QI pairs read word-overlap features where that
    model's QI head does."""
    if data.task == "qi":
        return dataclasses.replace(data, features=qi_features(data.records, width=info.qi_feature_dim)
                                   if info.qi_feature_dim else None)
    if not (info.priors or info.nodes):
        return data
    priors = PrefixPriors.from_dict(info.priors) if info.priors else None
    return dataclasses.replace(data, features=qc_features(data.records[TARGET_FIELD["qc"]].tolist(), priors,
                                                          info.node_index))


def _mean(scores: list[np.ndarray], average: str) -> np.ndarray:
    if not scores:
        return np.zeros(0)
    mean = np.mean(scores, axis=0)
    return torch.sigmoid(torch.from_numpy(mean)).numpy() if average == "logits" else mean


def _write(job: Job, probs: np.ndarray, cut: float, source: str, with_scores: bool, models: int,
           average: str) -> dict:
    score_by_id = dict(zip(job.records["id"].map(str), probs))
    with atomic_open(job.output) as f:
        for record_id in job.raw["id"]:
            score = score_by_id.get(str(record_id))
            row = {"id": _plain(record_id), "prediction": int(score is not None and score >= cut)}
            if with_scores:
                row["score"] = None if score is None else round(float(score), 6)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {"task": job.task, "head": job.head, "models": models, "average": average,
               "threshold": cut, "threshold_from": source, "rows": len(job.raw), "scored": len(job.records),
               "defaulted_to_0": len(job.raw) - len(job.records), "dropped": job.dropped,
               "positive_rate": float(np.mean(probs >= cut)) if len(probs) else 0.0}
    log.info("wrote %s: %s", job.output, summary)
    return summary


def _warn_untranslated(records: pd.DataFrame, path) -> None:
    """The model learned to read `<query> - <translation>`; a non-English row without one gets the query alone."""
    english = records["language"].map(base_language) == "en"
    missing = int((~english & records["translated_query"].map(is_blank)).sum())
    if missing:
        log.warning("%s: %d of %d non-English rows have no translated_query; the model was trained with "
                    "augment.translation on and reads their query alone (fill it with `mtl translate`)", path,
                    missing, int((~english).sum()))


def read_predictions(path: str | Path) -> pd.DataFrame:
    """A submission file: JSON lines with `id` and `prediction` (0/1), and optionally `score` (P(relevant) in [0, 1]
    or null, as `mtl predict --with-scores` writes it; NaN in the frame where absent); duplicate ids are an error."""
    path = Path(path)
    rows, seen = [], {}
    for number, obj in read_json_lines(path):
        for field in ("id", "prediction"):
            if field not in obj:
                raise DataError(path, number, field, "missing")
        key = str(parse_id(obj["id"], path, number))
        prediction = obj["prediction"]
        if isinstance(prediction, bool) or prediction not in (0, 1):
            raise DataError(path, number, "prediction", f"must be 0 or 1, got {prediction!r}"[:200])
        score = obj.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))
                                  or not 0 <= score <= 1):
            raise DataError(path, number, "score", f"must be a number in [0, 1] or null, got {score!r}"[:200])
        if key in seen:
            raise DataError(path, number, "id", f"duplicate id {obj['id']!r} (first on line {seen[key]})")
        seen[key] = number
        rows.append((key, int(prediction), float("nan") if score is None else float(score)))
    return pd.DataFrame(rows, columns=["id", "prediction", "score"])


def evaluate_files(pred_path: str | Path, gold_path: str | Path) -> tuple[dict, str]:
    """Metrics of a submission against labelled records; every gold id must be predicted exactly once. Ids match by
    their text, so a submission may write 7 where the gold file has "7"."""
    gold, _ = read_records(gold_path, require_label=True)
    task = gold.attrs["task"]
    submission = read_predictions(pred_path).set_index("id")
    preds = submission["prediction"]
    gold_ids = gold["id"].map(str)
    missing = gold_ids[~gold_ids.isin(preds.index)]
    if len(missing):
        raise DataError(pred_path, None, "id", f"{len(missing)} ids of {gold_path} have no prediction, e.g. "
                                               f"{missing.iloc[:3].tolist()}")
    extra = preds.index.difference(gold_ids)
    if len(extra):
        raise DataError(pred_path, None, "id", f"{len(extra)} ids are not in {gold_path}, e.g. {list(extra[:3])}")
    labels = gold["label"].to_numpy()
    report = classification_report(labels, preds.loc[gold_ids].to_numpy(), gold["language"], ranking=False)
    scores = submission["score"].loc[gold_ids].to_numpy()
    if np.isfinite(scores).all():  # ROC-AUC and AP need every pair's score; hard 0/1 predictions rank nothing
        ranked = classification_report(labels, scores, gold["language"], ranking=True)
        report.update({k: ranked[k] for k in ("auc", "ap", "auc_by_language", "ap_by_language")})
    report["baseline"] = majority_baseline(labels)
    reports = {task: report}
    return reports, format_evaluation(reports) + "\n\n" + format_language_table(reports)


def format_evaluation(reports: dict[str, dict]) -> str:
    """The metrics table of a submission: F1 of its hard predictions (no tuned-threshold columns: the threshold is
    the submitter's), ROC-AUC and AP where it carries every pair's score, and the gold labels' baselines."""
    lines = ["| task | n | F1 | P | R | ROC-AUC | AP | F1 all-positive | F1 majority |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task in sorted(reports):
        r, base = reports[task], reports[task]["baseline"]
        ranking = " | ".join(f"{r[k]:.4f}" if k in r else "—" for k in ("auc", "ap"))
        lines.append(f"| {task.upper()} | {r['n']} | {r['f1']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} | "
                     f"{ranking} | {base['f1_all_positive']:.4f} | {base['f1_majority']:.4f} |")
    return "\n".join(lines)


def _plain(value):
    return value.item() if hasattr(value, "item") else value
