"""Metrics: positive-class F1 (the competition's), precision, recall, ROC-AUC and average precision, per language,
and threshold tuning.

`F1_avg = 0.5 * F1_QC + 0.5 * F1_QI` is the headline. Scores are probabilities of the positive class; the default
decision threshold 0.5 is the argmax of a two-class softmax, which is what the paper used. F1 at a 68% positive
rate is 0.81 for a model that ranks nothing (predict everything relevant), so every report carries ROC-AUC (0.5 =
no ranking) and average precision (= the positive rate for no ranking) beside it.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (average_precision_score, f1_score, precision_recall_curve, precision_score, recall_score,
                             roc_auc_score)


def ranking_scores(labels, probs) -> dict:
    """ROC-AUC and average precision; NaN where one class is absent (neither is defined there)."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if len(labels) == 0 or labels.min() == labels.max() or not np.isfinite(probs).all():
        return {"auc": float("nan"), "ap": float("nan")}
    return {"auc": float(roc_auc_score(labels, probs)), "ap": float(average_precision_score(labels, probs))}


def classification_report(labels, probs, languages=None, threshold: float = 0.5, ranking: bool = True) -> dict:
    """F1, precision, recall and support at `threshold`, ROC-AUC and average precision of the scores (`ranking`;
    off for hard 0/1 predictions, whose AUC means little), and each per language if languages are given."""
    labels = np.asarray(labels, dtype=np.int64)
    preds = (np.asarray(probs) >= threshold).astype(np.int64)
    report = {
        "f1": float(f1_score(labels, preds, zero_division=0)),
        "precision": float(precision_score(labels, preds, zero_division=0)),
        "recall": float(recall_score(labels, preds, zero_division=0)),
        "n": int(len(labels)),
        "positive_rate": float(labels.mean()) if len(labels) else 0.0,
        "predicted_positive_rate": float(preds.mean()) if len(preds) else 0.0,
        "threshold": float(threshold),
    }
    if ranking:
        report.update(ranking_scores(labels, probs))
    if languages is not None:
        # F1 is undefined for a language with no positives and no positive predictions (2TP+FP+FN = 0); such a
        # language is left out rather than scored 0, which would drag its curve and any average down.
        languages = np.asarray(languages)
        report["f1_by_language"] = {
            str(lang): float(f1_score(labels[languages == lang], preds[languages == lang]))
            for lang in sorted(set(languages.tolist()))
            if labels[languages == lang].any() or preds[languages == lang].any()
        }
        if ranking:
            by_language = {str(lang): ranking_scores(labels[languages == lang], np.asarray(probs)[languages == lang])
                           for lang in sorted(set(languages.tolist()))}
            report["auc_by_language"] = {k: v["auc"] for k, v in by_language.items() if np.isfinite(v["auc"])}
            report["ap_by_language"] = {k: v["ap"] for k, v in by_language.items() if np.isfinite(v["ap"])}
    return report


def breakdown(labels, probs, keys, threshold: float) -> dict[str, dict]:
    """F1 at `threshold`, ROC-AUC, pairs, positive rate and wrong predictions per value of `keys` (one per pair),
    in key order."""
    labels, probs, keys = np.asarray(labels, dtype=np.int64), np.asarray(probs), np.asarray(keys, dtype=object)
    out = {}
    for key in sorted(set(keys.tolist()), key=str):
        rows = keys == key
        report = classification_report(labels[rows], probs[rows], threshold=threshold)
        errors = int(((probs[rows] >= threshold).astype(np.int64) != labels[rows]).sum())
        out[str(key)] = {"n": report["n"], "positive_rate": report["positive_rate"], "f1": report["f1"],
                         "auc": report["auc"], "errors": errors}
    return out


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


def selection_score(reports: dict[str, dict], select: str) -> float:
    """What picks the best checkpoint (`eval.select`), averaged over the evaluated tasks: `auc`, ROC-AUC, which F1 at
    a fixed threshold hides (a model that ranks nothing scores F1 0.81 by predicting everything relevant at a 68%
    positive rate); `f1`, F1 at 0.5 (the paper's argmax). -1 where a task's score is undefined.
    A report fused with a sentence encoder's rankings (`model.encoder`) is chosen by the model's own AUC
    (`auc_model`): the encoder's part is the same at every step, and on real QC fold 0 the fused AUC picked step 200
    by 0.004, a step that ranked the test split at 0.708 against 0.726 for step 1,000, the model's own best."""
    values = [reports[t].get(("auc_model" if "auc_model" in reports[t] else "auc") if select == "auc" else "f1",
                             float("nan")) for t in reports]
    return float(np.mean(values)) if values and all(np.isfinite(values)) else -1.0


def f1_avg(reports: dict[str, dict], key: str = "f1") -> float | None:
    """0.5 * QC + 0.5 * QI when both tasks were evaluated, else None."""
    if {"qc", "qi"} <= set(reports):
        return 0.5 * reports["qc"][key] + 0.5 * reports["qi"][key]
    return None


def format_table(reports: dict[str, dict], test: dict[str, dict] | None = None) -> str:
    """Markdown table, one row per task (+ avg): validation F1 at 0.5, precision, recall, AUC, AP, F1 at the
    threshold tuned on validation, the baselines and, with `test` reports, the held-out test's F1 at that threshold
    and AUC first (the figures nothing was selected or tuned on)."""
    test = test or {}
    nan = float("nan")
    head = "| task | n | " + ("test F1 | test AUC | " if test else "") + "F1 | P | R | AUC | AP | F1 (tuned thr.) | thr. | F1 all-positive | F1 majority |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for task in sorted(reports):
        r = reports[task]
        tuned, base, t = r.get("tuned", {}), r.get("baseline", {}), test.get(task)
        test_cells = ""
        if test:
            f1 = t.get("at_threshold", t)["f1"] if t else nan
            test_cells = f"{f1:.4f} | {t.get('auc', nan) if t else nan:.4f} | "
        lines.append(
            f"| {task.upper()} | {r['n']} | {test_cells}{r['f1']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} | "
            f"{r.get('auc', nan):.4f} | {r.get('ap', nan):.4f} | {tuned.get('f1', nan):.4f} | "
            f"{tuned.get('threshold', nan):.3f} | {base.get('f1_all_positive', nan):.4f} | "
            f"{base.get('f1_majority', nan):.4f} |"
        )
    avg = f1_avg(reports)
    if avg is not None:
        tuned_avg = 0.5 * sum(reports[t].get("tuned", {}).get("f1", nan) for t in ("qc", "qi"))
        test_avg = ""
        if test:
            test_avg = f"{0.5 * sum(test[t].get('at_threshold', test[t])['f1'] if t in test else nan for t in ('qc', 'qi')):.4f} | | "
        lines.append(f"| AVG | | {test_avg}{avg:.4f} | | | | | {tuned_avg:.4f} | | | |")
    return "\n".join(lines)


def format_breakdown(reports: dict[str, dict], test: dict[str, dict] | None = None, key: str = "by_seen") -> str:
    """QC pairs by one `breakdown` (default: seen path / seen group / unseen group), validation and test side by
    side; empty when no QC report carries it."""
    sides = [(name, r["qc"][key]) for name, r in (("validation", reports), ("test", test or {}))
             if "qc" in r and key in r["qc"]]
    if not sides:
        return ""
    head = "| QC pairs | " + " | ".join(f"{name} n | {name} F1 | {name} AUC" for name, _ in sides) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for bucket in dict.fromkeys(b for _, side in sides for b in side):
        cells = []
        for _, side in sides:
            b = side.get(bucket)
            cells += [str(b["n"]), f"{b['f1']:.4f}", f"{b['auc']:.4f}"] if b else ["0", "", ""]
        lines.append(f"| {bucket} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_language_table(reports: dict[str, dict]) -> str:
    """F1 per language and task, with the AUC beside it where the reports carry one."""
    languages = sorted({lang for r in reports.values() for lang in r.get("f1_by_language", {})})
    tasks = sorted(reports)
    ranked = [t for t in tasks if "auc_by_language" in reports[t]]
    header = [f"{t.upper()} F1" for t in tasks] + [f"{t.upper()} AUC" for t in ranked]
    lines = ["| language | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for lang in languages:
        cells = [f"{reports[t].get('f1_by_language', {}).get(lang, float('nan')):.4f}" for t in tasks]
        cells += [f"{reports[t]['auc_by_language'].get(lang, float('nan')):.4f}" for t in ranked]
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
