import numpy as np
import pytest

from mtl.metrics import (breakdown, classification_report, f1_avg, format_breakdown, majority_baseline,
                         tune_threshold)


def test_positive_class_f1_precision_recall():
    report = classification_report([1, 1, 0, 0], [0.9, 0.2, 0.7, 0.1])
    assert report["precision"] == 0.5 and report["recall"] == 0.5 and report["f1"] == 0.5


def test_f1_by_language():
    report = classification_report([1, 0, 1, 1], [0.9, 0.1, 0.2, 0.8], ["en", "en", "es", "es"])
    assert report["f1_by_language"] == {"en": 1.0, "es": pytest.approx(2 / 3)}


def test_language_without_positives_or_positive_predictions_has_no_f1():
    report = classification_report([1, 0, 0, 0, 0], [0.9, 0.1, 0.2, 0.3, 0.8], ["en", "fr", "fr", "es", "es"])
    assert report["f1_by_language"] == {"en": 1.0, "es": 0.0}, "fr: F1 undefined; es: a false positive scores 0"


def test_tuned_threshold_finds_the_f1_optimum():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.45])
    threshold, f1 = tune_threshold(labels, probs)
    assert threshold == pytest.approx(0.35) and f1 == 1.0
    assert classification_report(labels, probs)["f1"] == 0.0


def test_baselines():
    base = majority_baseline([1, 0, 0, 0])
    assert base["majority_class"] == 0 and base["f1_majority"] == 0.0
    assert base["f1_all_positive"] == pytest.approx(0.4)


def test_f1_avg_needs_both_tasks():
    assert f1_avg({"qc": {"f1": 0.8}, "qi": {"f1": 0.6}}) == pytest.approx(0.7)
    assert f1_avg({"qc": {"f1": 0.8}}) is None


def test_breakdown_scores_each_group_of_pairs_on_its_own():
    labels = [1, 0, 1, 1, 0, 0]
    probs = [0.9, 0.2, 0.4, 0.8, 0.7, 0.1]
    keys = ["b", "b", "b", "a", "a", "a"]
    out = breakdown(labels, probs, keys, threshold=0.5)
    assert list(out) == ["a", "b"]
    assert out["a"] == {"n": 3, "positive_rate": 1 / 3, "f1": 2 / 3, "auc": 1.0, "errors": 1}  # 0.7 is a false positive
    assert out["b"]["f1"] == 2 / 3 and out["b"]["errors"] == 1 and out["b"]["auc"] == 1.0  # 0.4 is missed at 0.5
    assert breakdown(labels, probs, keys, threshold=0.3)["b"]["errors"] == 0


def test_format_breakdown_puts_validation_and_test_side_by_side():
    val = {"qc": {"by_seen": {"seen path": {"n": 4, "f1": 0.5, "auc": 0.75}}}}
    test = {"qc": {"by_seen": {"seen path": {"n": 2, "f1": 1.0, "auc": 1.0},
                               "unseen group": {"n": 3, "f1": 0.0, "auc": 0.5}}}}
    table = format_breakdown(val, test)
    assert "| seen path | 4 | 0.5000 | 0.7500 | 2 | 1.0000 | 1.0000 |" in table
    assert "| unseen group | 0 |  |  | 3 | 0.0000 | 0.5000 |" in table
    assert format_breakdown({"qi": {}}) == ""
