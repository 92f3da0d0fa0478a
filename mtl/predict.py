"""Prediction and scoring of submission files.

    mtl predict --model runs/mtl-.../best --input test_QC.txt --output submit_QC.txt
    mtl evaluate --pred submit_QC.txt --gold dev_QC.txt

One joint model serves both tasks: the input's columns say which head to use. The output is JSON lines
`{"id": ..., "prediction": 0|1}` in input order with every input id exactly once, each id as the input gives it; a
row the model cannot read (empty query or title) is predicted 0 and counted. The input and output are checked before
the model loads, so a bad file fails in seconds rather than after a 12B load. The decision threshold is the one
tuned on validation and saved with the model, or 0.5 (`--threshold 0.5`, the paper's argmax).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.backbone import check_device
from mtl.config import load_config
from mtl.data.records import clean_records, is_blank, parse_id, read_json_lines, read_records
from mtl.data.tasks import make_task_data
from mtl.errors import CheckpointError, ConfigError, DataError
from mtl.evaluate import predict_probs
from mtl.io import atomic_open, check_output_path
from mtl.metrics import classification_report, format_language_table, majority_baseline
from mtl.model import load_trained, read_info
from mtl.taxonomy import PrefixPriors
from mtl.translate.backends import base_language

log = logging.getLogger(__name__)


def predict_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path, task: str | None = None,
                 threshold: str | float = "tuned", head: str | None = None, with_scores: bool = False,
                 batch_size: int = 64, device: str = "cpu") -> dict:
    """Score every record of `input_path` and write the submission file atomically; returns counts."""
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if threshold != "tuned" and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                 or not 0 <= threshold <= 1):
        raise ConfigError(f"--threshold must be 'tuned' or a number in [0, 1], got {threshold!r}")
    check_device(device)
    check_output_path(output_path, "--output", inputs=[input_path])
    raw, _ = read_records(input_path, task)
    task = raw.attrs["task"]
    head = head or task
    info = read_info(model_dir)
    if head not in info.tasks:
        raise CheckpointError(f"{model_dir}: trained for {'+'.join(info.tasks)}, its {head}_head is untrained; "
                              f"pass --head {info.tasks[0]} to score {task.upper()} pairs with it (transfer)")
    cfg = load_config(Path(model_dir) / "config.yaml")
    records, dropped = clean_records(raw, cfg.data.clean, cfg.data.lowercase)
    if len(records) < len(raw):
        log.warning("%s: %d of %d rows have an empty query or target and are predicted 0 (%s)", input_path,
                    len(raw) - len(records), len(raw), ", ".join(f"{n} with {why}" for why, n in dropped.items() if n))
    if cfg.augment.translation:
        _warn_untranslated(records, input_path)

    probs = np.zeros(0)
    if len(records):
        probs = _score(model_dir, records, task, head, device, batch_size)
    cut = info.thresholds.get(head, 0.5) if threshold == "tuned" else float(threshold)

    score_by_id = dict(zip(records["id"].map(str), probs))
    with atomic_open(output_path) as f:
        for record_id in raw["id"]:
            score = score_by_id.get(str(record_id))
            row = {"id": _plain(record_id), "prediction": int(score is not None and score >= cut)}
            if with_scores:
                row["score"] = None if score is None else round(float(score), 6)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {"task": task, "head": head, "threshold": cut, "rows": len(raw), "scored": len(records),
               "defaulted_to_0": len(raw) - len(records), "dropped": dropped,
               "positive_rate": float(np.mean(probs >= cut)) if len(probs) else 0.0}
    log.info("wrote %s: %s", output_path, summary)
    return summary


def _score(model_dir, records: pd.DataFrame, task: str, head: str, device: str, batch_size: int) -> np.ndarray:
    """P(relevant) per record with the saved model (loaded here: the slow part, after every input check)."""
    model, pair_tokenizer, info, cfg = load_trained(model_dir, device)
    priors = PrefixPriors.from_dict(info.priors) if info.priors and task == "qc" else None
    data = make_task_data(records, task, cfg, pair_tokenizer, priors, nodes=info.node_index if task == "qc" else None)
    return predict_probs(model, data, pair_tokenizer.pad_id, batch_size, head=head)


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
