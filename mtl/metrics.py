"""Metrics: positive-class F1 (the competition's), precision, recall, per-language F1, and threshold tuning.

`F1_avg = 0.5 * F1_QC + 0.5 * F1_QI` is the headline. Scores are probabilities of the positive class; the default
decision threshold 0.5 is the argmax of a two-class softmax, which is what the paper used.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, precision_recall_curve, precision_score, recall_score


def classification_report(labels, probs, languages=None, threshold: float = 0.5) -> dict:
    """F1, precision, recall and support at `threshold`, and F1 per language if languages are given."""
    labels = np.asarray(labels, dtype=np.int64)
    preds = (np.asarray(probs) >= threshold).astype(np.int64)
    report = {
        "f1": float(f1_score(labels, preds, zero_division=0)),
        "precision": float(precision_score(labels, preds, zero_division=0)),
        "recall": float(recall_score(labels, preds, zero_division=0)),
        "n": int(len(labels)),
        "positive_rate": float(labels.mean()) if len(labels) else 0.0,
        "threshold": float(threshold),
    }
    if languages is not None:
        # F1 is undefined for a language with no positives and no positive predictions (2TP+FP+FN = 0); such a
        # language is left out rather than scored 0, which would drag its curve and any average down.
        languages = np.asarray(languages)
        report["f1_by_language"] = {
            str(lang): float(f1_score(labels[languages == lang], preds[languages == lang]))
            for lang in sorted(set(languages.tolist()))
            if labels[languages == lang].any() or preds[languages == lang].any()
        }
    return report


def tune_threshold(labels, probs) -> tuple[float, float]:
    """The threshold that maximises F1 on these labels, and that F1. Ties go to the threshold closest to 0.5."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.sum() == 0:
        return 0.5, 0.0
    precision, recall, thresholds = precision_recall_curve(labels, np.asarray(probs, dtype=np.float64))
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)[:-1]
    best = np.flatnonzero(np.isclose(f1, f1.max()))
    pick = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    return float(thresholds[pick]), float(f1[pick])


def majority_baseline(labels) -> dict:
    """F1 of predicting the majority class for every row, and of predicting positive for every row."""
    labels = np.asarray(labels, dtype=np.int64)
    majority = int(labels.mean() >= 0.5)
    return {
        "majority_class": majority,
        "f1_majority": float(f1_score(labels, np.full_like(labels, majority), zero_division=0)),
        "f1_all_positive": float(f1_score(labels, np.ones_like(labels), zero_division=0)),
    }


def f1_avg(reports: dict[str, dict], key: str = "f1") -> float | None:
    """0.5 * QC + 0.5 * QI when both tasks were evaluated, else None."""
    if {"qc", "qi"} <= set(reports):
        return 0.5 * reports["qc"][key] + 0.5 * reports["qi"][key]
    return None


def format_table(reports: dict[str, dict]) -> str:
    """Markdown table, one row per task (+ avg), columns at 0.5 and at the tuned threshold, baselines."""
    lines = ["| task | n | F1 | P | R | F1 (tuned thr.) | thr. | F1 all-positive | F1 majority |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task in sorted(reports):
        r = reports[task]
        tuned = r.get("tuned", {})
        base = r.get("baseline", {})
        lines.append(
            f"| {task.upper()} | {r['n']} | {r['f1']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} | "
            f"{tuned.get('f1', float('nan')):.4f} | {tuned.get('threshold', float('nan')):.3f} | "
            f"{base.get('f1_all_positive', float('nan')):.4f} | {base.get('f1_majority', float('nan')):.4f} |"
        )
    avg = f1_avg(reports)
    if avg is not None:
        tuned_avg = 0.5 * sum(reports[t].get("tuned", {}).get("f1", float("nan")) for t in ("qc", "qi"))
        lines.append(f"| AVG | | {avg:.4f} | | | {tuned_avg:.4f} | | | |")
    return "\n".join(lines)


def format_language_table(reports: dict[str, dict]) -> str:
    languages = sorted({lang for r in reports.values() for lang in r.get("f1_by_language", {})})
    tasks = sorted(reports)
    lines = ["| language | " + " | ".join(t.upper() for t in tasks) + " |", "|---|" + "---|" * len(tasks)]
    for lang in languages:
        cells = [f"{reports[t].get('f1_by_language', {}).get(lang, float('nan')):.4f}" for t in tasks]
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
