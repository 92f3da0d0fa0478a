import numpy as np
import pytest

from mtl.metrics import classification_report, f1_avg, majority_baseline, tune_threshold


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
