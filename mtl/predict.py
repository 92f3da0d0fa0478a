"""Prediction and scoring of submission files.

    mtl predict --model runs/mtl-.../best --input test_QC.txt --output submit_QC.txt
    mtl evaluate --pred submit_QC.txt --gold dev_QC.txt

One joint model serves both tasks: the input's columns say which head to use. The output is JSON lines
`{"id": ..., "prediction": 0|1}` in input order with every input id exactly once; a row the model cannot read (empty
query or title) is predicted 0 and counted. The decision threshold is the one tuned on validation and saved with the
model, or 0.5 (`--threshold 0.5`, the paper's argmax).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mtl.data.records import clean_records, read_records
from mtl.data.tasks import make_task_data
from mtl.errors import CheckpointError, DataError
from mtl.evaluate import predict_probs
from mtl.io import atomic_open
from mtl.metrics import classification_report, format_language_table, format_table
from mtl.model import load_trained
from mtl.taxonomy import PrefixPriors

log = logging.getLogger(__name__)


def predict_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path, task: str | None = None,
                 threshold: str | float = "tuned", head: str | None = None, with_scores: bool = False,
                 batch_size: int = 64, device: str = "cpu") -> dict:
    """Score every record of `input_path` and write the submission file atomically; returns counts."""
    model, pair_tokenizer, info, cfg = load_trained(model_dir, device)
    raw, _ = read_records(input_path, task)
    task = raw.attrs["task"]
    head = head or task
    if head not in info.tasks:
        raise CheckpointError(f"{model_dir}: trained for {'+'.join(info.tasks)}, its {head}_head is untrained; "
                              f"pass --head {info.tasks[0]} to score {task.upper()} pairs with it (transfer)")
    records, dropped = clean_records(raw, cfg.data.clean, cfg.data.lowercase)
    priors = PrefixPriors.from_dict(info.priors) if info.priors and task == "qc" else None
    data = make_task_data(records, task, cfg, pair_tokenizer, priors)
    probs = predict_probs(model, data, pair_tokenizer.pad_id, batch_size, head=head)
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


def read_predictions(path: str | Path) -> pd.DataFrame:
    """A submission file: JSON lines with `id` and `prediction` (0/1); duplicate ids are an error."""
    rows, seen = [], {}
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(path, number, None, f"not valid JSON: {err.msg}") from None
            for field in ("id", "prediction"):
                if not isinstance(obj, dict) or field not in obj:
                    raise DataError(path, number, field, "missing")
            if obj["prediction"] not in (0, 1):
                raise DataError(path, number, "prediction", f"must be 0 or 1, got {obj['prediction']!r}")
            key = str(obj["id"])
            if key in seen:
                raise DataError(path, number, "id", f"duplicate id {obj['id']!r} (first on line {seen[key]})")
            seen[key] = number
            rows.append((key, int(obj["prediction"])))
    return pd.DataFrame(rows, columns=["id", "prediction"])


def evaluate_files(pred_path: str | Path, gold_path: str | Path) -> tuple[dict, str]:
    """Metrics of a submission against labelled records; every gold id must be predicted exactly once."""
    gold, _ = read_records(gold_path, require_label=True)
    task = gold.attrs["task"]
    preds = read_predictions(pred_path).set_index("id")["prediction"]
    gold_ids = gold["id"].map(str)
    missing = gold_ids[~gold_ids.isin(preds.index)]
    if len(missing):
        raise DataError(pred_path, None, "id", f"{len(missing)} ids of {gold_path} have no prediction, e.g. "
                                               f"{missing.iloc[:3].tolist()}")
    extra = preds.index.difference(gold_ids)
    if len(extra):
        raise DataError(pred_path, None, "id", f"{len(extra)} ids are not in {gold_path}, e.g. {list(extra[:3])}")
    report = classification_report(gold["label"].to_numpy(), preds.loc[gold_ids].to_numpy(), gold["language"])
    reports = {task: report}
    return reports, format_table(reports) + "\n\n" + format_language_table(reports)


def _plain(value):
    return value.item() if hasattr(value, "item") else value

