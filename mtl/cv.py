"""Cross-validation summaries: out-of-fold predictions and `cv.json` of a several-fold run (`--fold all`, `0,1,2`).

Each fold's model scores every validation record of its fold once, at the end (`fold-k/oof_<task>.jsonl`); here they
are gathered into `oof_<task>.jsonl` at the run root and summarised in `cv.json`:

- per fold: ROC-AUC, average precision, and F1 at a threshold tuned on the *other* folds' out-of-fold predictions
  (the fold itself never chooses the threshold it is scored at; with one fold there is no other, and the fold's
  own tuned threshold is used and named as such);
- mean and standard deviation over folds of those (`cv_f1_mean`, `cv_f1_std`, `cv_auc_mean`, `cv_auc_std`), per task
  and per language;
- the threshold tuned on all out-of-fold predictions together: what to submit with.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mtl.io import atomic_write_text
from mtl.metrics import classification_report, ranking_scores, tune_threshold

CV_FILE = "cv.json"


def read_scores(path: Path) -> dict[str, np.ndarray]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"id": np.array([r["id"] for r in rows], dtype=object), "language": np.array([r["language"] for r in rows]),
            "label": np.array([r["label"] for r in rows], dtype=np.int64),
            "score": np.array([r["score"] for r in rows], dtype=np.float64)}


def summarize_oof(by_fold: dict[int, dict[str, np.ndarray]]) -> dict:
    """cv.json's entry for one task from {fold: scores of that fold's validation records}."""
    per_fold = []
    for fold, own in by_fold.items():
        others = [s for f, s in by_fold.items() if f != fold]
        if others:
            labels = np.concatenate([s["label"] for s in others])
            threshold, _ = tune_threshold(labels, np.concatenate([s["score"] for s in others]))
            source = "other folds"
        else:
            threshold, _ = tune_threshold(own["label"], own["score"])
            source = "own fold (no other fold to tune on)"
        report = classification_report(own["label"], own["score"], own["language"], threshold=threshold)
        per_fold.append({"fold": fold, "n": report["n"], "auc": report["auc"], "ap": report["ap"], "f1": report["f1"],
                         "threshold": threshold, "threshold_from": source,
                         "f1_by_language": report["f1_by_language"], "auc_by_language": report["auc_by_language"]})
    pooled = {k: np.concatenate([s[k] for s in by_fold.values()]) for k in ("label", "score", "language")}
    threshold, f1 = tune_threshold(pooled["label"], pooled["score"])
    languages = sorted({lang for f in per_fold for lang in f["auc_by_language"]})
    return {
        "folds": [f["fold"] for f in per_fold],
        **_mean_std(per_fold, "f1", "cv_f1"), **_mean_std(per_fold, "auc", "cv_auc"), **_mean_std(per_fold, "ap", "cv_ap"),
        "by_language": {lang: {**_mean_std([{"v": f["f1_by_language"][lang]} for f in per_fold
                                            if lang in f["f1_by_language"]], "v", "cv_f1"),
                               **_mean_std([{"v": f["auc_by_language"][lang]} for f in per_fold
                                            if lang in f["auc_by_language"]], "v", "cv_auc")}
                        for lang in languages},
        "per_fold": per_fold,
        "oof_threshold": threshold, "oof_f1": f1, "oof_n": int(len(pooled["label"])),
        **{f"oof_{k}": v for k, v in ranking_scores(pooled["label"], pooled["score"]).items()},
    }


def _mean_std(rows: list[dict], key: str, name: str) -> dict:
    values = [r[key] for r in rows if r[key] == r[key]]  # NaN (undefined AUC) left out
    if not values:
        return {}
    return {f"{name}_mean": float(np.mean(values)), f"{name}_std": float(np.std(values))}


def write_cv_summary(run_dir: Path, oof_files: dict[int, dict[str, Path]]) -> dict:
    """Gather each fold's out-of-fold file into `oof_<task>.jsonl` at `run_dir` and write `cv.json`; returns
    cv.json's content. Tasks missing from some fold's files are summarised over the folds that have them."""
    summary = {}
    tasks = sorted({t for files in oof_files.values() for t in files})
    for task in tasks:
        files = {fold: files[task] for fold, files in oof_files.items() if task in files and files[task].is_file()}
        if not files:
            continue
        atomic_write_text(run_dir / f"oof_{task}.jsonl",
                          "".join(f.read_text(encoding="utf-8") for f in files.values()))
        summary[task] = summarize_oof({fold: read_scores(f) for fold, f in files.items()})
    atomic_write_text(run_dir / CV_FILE, json.dumps(summary, indent=1, ensure_ascii=False))
    return summary
