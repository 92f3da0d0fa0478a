import dataclasses
import json
import logging
import re
import shutil

import pytest

from mtl import stages
from mtl.config import load_config
from mtl.errors import CheckpointError, ConfigError, DataError
from mtl.cli import main
from mtl.data.pairs import PROMPT
from mtl.model import ModelInfo, read_info
from mtl.predict import evaluate_files, predict_file, predict_files, read_predictions
from tests.conftest import make_records, tiny_overrides, write_jsonl


@pytest.fixture(scope="module")
def trained(tiny_backbone, tiny_data, tmp_path_factory):
    """A joint model and a QI-only model trained for a few steps on the tiny data."""
    root = tmp_path_factory.mktemp("predict")
    for name, extra in (("joint", {}), ("qi-only", {"train.mode": "single", "train.task": "qi"})):
        stages.run(load_config(None, tiny_overrides(tiny_backbone, tiny_data, root,
                                                          **{"log.run_name": name, **extra})))
    return root / "runs"


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("task", ["qc", "qi"])
def test_one_joint_model_predicts_every_id_once_in_input_order(trained, tmp_path, task):
    rows = make_records(task, 40, seed=9, with_label=False)
    rows[5]["origin_query"] = "   "
    source = write_jsonl(tmp_path / f"test_{task}.txt", rows)
    summary = predict_file(trained / "joint" / "best", source, tmp_path / "submit.txt")
    out = read_jsonl(tmp_path / "submit.txt")
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    assert all(r["prediction"] in (0, 1) for r in out)
    assert out[5]["prediction"] == 0 and summary["defaulted_to_0"] == 1
    assert summary["task"] == task


def test_threshold_choice_changes_predictions_consistently(trained, tmp_path):
    source = write_jsonl(tmp_path / "test.txt", make_records("qi", 60, seed=10, with_label=False))
    predict_file(trained / "joint" / "best", source, tmp_path / "low.txt", threshold=0.0, with_scores=True)
    predict_file(trained / "joint" / "best", source, tmp_path / "high.txt", threshold=1.0)
    low, high = read_jsonl(tmp_path / "low.txt"), read_jsonl(tmp_path / "high.txt")
    assert all(r["prediction"] == 1 and 0 <= r["score"] <= 1 for r in low)
    assert all(r["prediction"] == 0 for r in high)


def test_duplicate_input_ids_are_refused_before_the_model_loads(trained, tmp_path, monkeypatch):
    monkeypatch.setattr("mtl.predict.load_trained", lambda *a, **k: pytest.fail("model loaded first"))
    rows = make_records("qi", 4, seed=1, with_label=False)
    rows[3]["id"] = rows[0]["id"]
    source = write_jsonl(tmp_path / "dup.txt", rows)
    with pytest.raises(DataError, match="dup.txt:4: field 'id': duplicate id"):
        predict_file(trained / "joint" / "best", source, tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


def test_predictions_carry_the_ids_exactly_as_given(trained, tmp_path):
    rows = make_records("qi", 3, seed=1, with_label=False)
    for row, given in zip(rows, ["100", "0042", 7]):
        row["id"] = given
    predict_file(trained / "joint" / "best", write_jsonl(tmp_path / "in.txt", rows), tmp_path / "out.txt")
    assert [r["id"] for r in read_jsonl(tmp_path / "out.txt")] == ["100", "0042", 7]


def test_a_file_with_nothing_readable_gets_a_0_for_every_id(trained, tmp_path, caplog):
    rows = make_records("qc", 3, seed=1, with_label=False)
    for row in rows:
        row["origin_query"] = " "
    with caplog.at_level(logging.WARNING):
        summary = predict_file(trained / "joint" / "best", write_jsonl(tmp_path / "in.txt", rows), tmp_path / "out.txt")
    assert read_jsonl(tmp_path / "out.txt") == [{"id": r["id"], "prediction": 0} for r in rows]
    assert summary["defaulted_to_0"] == 3 and "3 of 3 rows have an empty query or target" in caplog.text


def test_rows_that_show_no_query_or_category_are_predicted_0_and_counted(trained, tmp_path):
    rows = make_records("qc", 6, seed=1, with_label=False)
    rows[1]["category_path"], rows[4]["origin_query"] = " , ,", "\u200b\u200d"
    summary = predict_file(trained / "joint" / "best", write_jsonl(tmp_path / "in.txt", rows), tmp_path / "out.txt")
    out = read_jsonl(tmp_path / "out.txt")
    assert [r["id"] for r in out] == [r["id"] for r in rows] and out[1]["prediction"] == out[4]["prediction"] == 0
    assert summary["defaulted_to_0"] == 2
    assert summary["dropped"] == {"an empty query": 1, "an empty category_path": 1}


def test_untranslated_non_english_rows_are_counted_in_a_warning(trained, tmp_path, caplog):
    rows = make_records("qi", 20, seed=1, with_label=False)
    untranslated = sum(r["language"] != "en" for r in rows[:5])
    for row in rows[:5]:
        del row["translated_query"]
    with caplog.at_level(logging.WARNING):
        predict_file(trained / "joint" / "best", write_jsonl(tmp_path / "in.txt", rows), tmp_path / "out.txt")
    assert untranslated and f": {untranslated} of" in caplog.text and "no translated_query" in caplog.text


def test_a_single_task_model_refuses_the_other_task_unless_asked(trained, tmp_path):
    source = write_jsonl(tmp_path / "qc.txt", make_records("qc", 10, seed=1, with_label=False))
    with pytest.raises(CheckpointError, match="trained for qi, its qc_head is untrained"):
        predict_file(trained / "qi-only" / "best", source, tmp_path / "out.txt")
    summary = predict_file(trained / "qi-only" / "best", source, tmp_path / "out.txt", head="qi")
    assert summary["head"] == "qi" and len(read_jsonl(tmp_path / "out.txt")) == 10


def test_a_model_whose_tokenizer_changed_is_refused(trained, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained / "joint" / "best", copy)
    info = json.loads((copy / "model.json").read_text())
    info["tokenizer_fingerprint"] = "0" * 16
    (copy / "model.json").write_text(json.dumps(info))
    source = write_jsonl(tmp_path / "qi.txt", make_records("qi", 4, seed=1, with_label=False))
    with pytest.raises(CheckpointError, match="not the one this model was trained with"):
        predict_file(copy, source, tmp_path / "out.txt")


@pytest.fixture(scope="module")
def cv_run(tiny_backbone, tiny_data, tmp_path_factory):
    """A 2-fold CV run of the joint model: fold-0/best and fold-1/best, and cv.json at the run root."""
    root = tmp_path_factory.mktemp("cv")
    stages.run(load_config(None, tiny_overrides(tiny_backbone, tiny_data, root, **{
        "log.run_name": "cv", "cv.fold": "all", "cv.n_folds": 2, "data.dev_limit": 16})))
    return root / "runs" / "cv"


def scores(path):
    return [r["score"] for r in read_jsonl(path)]


def test_an_ensemble_of_one_model_twice_scores_exactly_as_that_model(trained, tmp_path):
    source = write_jsonl(tmp_path / "qi.txt", make_records("qi", 30, seed=11, with_label=False))
    best = trained / "joint" / "best"
    predict_file(best, source, tmp_path / "one.txt", threshold=0.5, with_scores=True)
    summary = predict_file([best, best], source, tmp_path / "two.txt", threshold=0.5, with_scores=True)
    assert summary["models"] == 2
    assert read_jsonl(tmp_path / "two.txt") == read_jsonl(tmp_path / "one.txt")


@pytest.mark.parametrize("task", ["qc", "qi"])
def test_an_ensemble_averages_its_models_probabilities_on_one_loaded_backbone(cv_run, tmp_path, monkeypatch, task):
    """QC too: each fold's model reads the QC prefix priors it was trained with."""
    import mtl.predict

    source = write_jsonl(tmp_path / "in.txt", make_records(task, 40, seed=12, with_label=False))
    folds = [cv_run / "fold-0" / "best", cv_run / "fold-1" / "best"]
    for k, fold in enumerate(folds):
        predict_file(fold, source, tmp_path / f"fold{k}.txt", with_scores=True)
    a, b = scores(tmp_path / "fold0.txt"), scores(tmp_path / "fold1.txt")
    assert max(abs(x - y) for x, y in zip(a, b)) > 1e-3, "the fold models must differ for the mean to mean much"
    loads = []
    original = mtl.predict.load_trained
    monkeypatch.setattr("mtl.predict.load_trained", lambda *args, **kw: loads.append(args) or original(*args, **kw))
    summary = predict_file(folds, source, tmp_path / "ensemble.txt", with_scores=True)
    assert summary["models"] == 2 and len(loads) == 1
    assert scores(tmp_path / "ensemble.txt") == pytest.approx([(x + y) / 2 for x, y in zip(a, b)], abs=2e-6)
    predict_file(folds, source, tmp_path / "logits.txt", with_scores=True, average="logits")
    for x, y, z in zip(a, b, scores(tmp_path / "logits.txt")):
        assert min(x, y) - 1e-6 <= z <= max(x, y) + 1e-6


def test_a_fold_model_predicts_its_out_of_fold_scores(cv_run, tmp_path):
    """The scores the OOF threshold in cv.json was tuned on are the scores `mtl predict` gives those records."""
    from mtl.data.tasks import load_splits

    records = load_splits(load_config(cv_run / "fold-1" / "config.yaml"), ["qc"])["qc"].val_all
    source = write_jsonl(tmp_path / "qc.txt", records.drop(columns="label").to_dict("records"))
    predict_file(cv_run / "fold-1" / "best", source, tmp_path / "out.txt", with_scores=True)
    oof = {r["id"]: r["score"] for r in read_jsonl(cv_run / "fold-1" / "oof_qc.jsonl")}
    assert [r["score"] for r in read_jsonl(tmp_path / "out.txt")] == pytest.approx(
        [oof[i] for i in records["id"]], abs=1e-6)


def test_qc_pairs_read_the_priors_saved_with_the_model(cv_run, tmp_path):
    """As the trainer scores them. (A fold's own validation categories are unseen by its priors under
    category-aware CV and read zeros, so records drawn from all categories are scored here.)"""
    from mtl.data.records import clean_records, read_records
    from mtl.data.tasks import make_task_data
    from mtl.evaluate import predict_probs
    from mtl.model import load_trained
    from mtl.taxonomy import PrefixPriors

    source = write_jsonl(tmp_path / "qc.txt", make_records("qc", 30, seed=16, with_label=False))
    predict_file(cv_run / "fold-1" / "best", source, tmp_path / "out.txt", with_scores=True)
    model, pairs, info, cfg = load_trained(cv_run / "fold-1" / "best")
    records, _ = clean_records(read_records(source)[0], cfg.data.clean, cfg.data.lowercase)
    data = make_task_data(records, "qc", cfg, pairs, PrefixPriors.from_dict(info.priors))
    assert data.features.any()
    assert scores(tmp_path / "out.txt") == pytest.approx(predict_probs(model, data, pairs.pad_id, 64), abs=1e-6)


def test_an_ensemble_thresholds_at_the_out_of_fold_threshold_of_its_cv_json(cv_run, tmp_path, caplog):
    run = tmp_path / "run"
    shutil.copytree(cv_run, run)
    cv = json.loads((run / "cv.json").read_text())
    cv["qi"]["oof_threshold"] = 0.4321
    (run / "cv.json").write_text(json.dumps(cv))
    source = write_jsonl(tmp_path / "qi.txt", make_records("qi", 40, seed=13, with_label=False))
    folds = [run / "fold-0" / "best", run / "fold-1" / "best"]
    summary = predict_file(folds, source, tmp_path / "out.txt", with_scores=True)
    assert summary["threshold"] == 0.4321 and str(run / "cv.json") in summary["threshold_from"]
    assert all(r["prediction"] == int(r["score"] >= 0.4321) for r in read_jsonl(tmp_path / "out.txt"))
    assert predict_file(folds, source, tmp_path / "out.txt", threshold=0.7)["threshold"] == 0.7
    with caplog.at_level(logging.WARNING):
        predict_file([folds[0], folds[0]], source, tmp_path / "out.txt")
    assert "leaves out fold-1" in caplog.text
    (run / "cv.json").unlink()
    with pytest.raises(ConfigError, match="fold-0/best: no cv.json in any folder above it.*pass --threshold"):
        predict_file(folds, source, tmp_path / "out.txt")


def test_fold_models_of_different_runs_need_a_threshold(cv_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(cv_run, other)
    source = write_jsonl(tmp_path / "qi.txt", make_records("qi", 4, seed=13, with_label=False))
    with pytest.raises(ConfigError, match="are under different CV runs .*pass --threshold"):
        predict_file([cv_run / "fold-0" / "best", other / "fold-1" / "best"], source, tmp_path / "out.txt")


def copy_with(folder, tmp_path, name, **config):
    """A copy of a model folder whose config.yaml sets `config` ({"lora.alpha": 4}, ...)."""
    from mtl.config import save_config

    copy = tmp_path / name
    shutil.copytree(folder, copy)
    cfg = load_config(copy / "config.yaml", [f"{k}={v}" for k, v in config.items()])
    save_config(cfg, copy / "config.yaml")
    return copy


@pytest.mark.parametrize("odd, message", [
    ("qi-only", r"qi-only/best: tasks is \['qi'\] where the ensemble's other models have \['qc', 'qi'\]"),
    ("alpha", r"alpha: lora.alpha is 4 where the ensemble's other models have 8"),
    ("backbone", r"backbone: model.backbone is '/elsewhere' where the ensemble's other models have"),
])
def test_an_ensemble_of_models_that_do_not_match_is_refused_naming_the_odd_one(trained, tmp_path, no_model_load,
                                                                              caplog, odd, message):
    joint = trained / "joint" / "best"
    folder = {"qi-only": lambda: trained / "qi-only" / "best",
              "alpha": lambda: copy_with(joint, tmp_path, "alpha", **{"lora.alpha": 4}),
              "backbone": lambda: copy_with(joint, tmp_path, "backbone", **{"model.backbone": "/elsewhere"})}[odd]()
    source = write_jsonl(tmp_path / "qi.txt", make_records("qi", 4, seed=1, with_label=False))
    with caplog.at_level(logging.ERROR):
        assert main(["predict", "--model", str(joint), str(folder), "--model", str(joint), "--input", str(source),
                     "--output", str(tmp_path / "out.txt"), "--threshold", "0.5"]) == 2
    assert re.search(message, caplog.text) and caplog.text.count(str(folder)) == 1
    assert not (tmp_path / "out.txt").exists()


def test_a_qc_and_a_qi_file_are_scored_in_one_call(trained, tmp_path, capsys):
    qc = write_jsonl(tmp_path / "test_QC.txt", make_records("qc", 25, seed=14, with_label=False))
    qi = write_jsonl(tmp_path / "test_QI.txt", make_records("qi", 35, seed=15, with_label=False))
    best = str(trained / "joint" / "best")
    assert main(["predict", "--model", best, "--input", str(qc), "--input", str(qi), "--output",
                 str(tmp_path / "submit_QC.txt"), "--output", str(tmp_path / "submit_QI.txt"), "--with-scores"]) == 0
    for task, source in (("QC", qc), ("QI", qi)):
        both = read_jsonl(tmp_path / f"submit_{task}.txt")
        assert [r["id"] for r in both] == [r["id"] for r in read_jsonl(source)]
        predict_file(best, source, tmp_path / f"alone_{task}.txt", with_scores=True)
        assert both == read_jsonl(tmp_path / f"alone_{task}.txt")
    printed = capsys.readouterr().out
    assert "25 QC rows" in printed and "35 QI rows" in printed and "1 model" in printed


def test_two_inputs_of_one_task_are_refused(trained, tmp_path, no_model_load):
    a = write_jsonl(tmp_path / "a.txt", make_records("qi", 3, seed=1, with_label=False))
    b = write_jsonl(tmp_path / "b.txt", make_records("qi", 3, seed=2, with_label=False))
    with pytest.raises(ConfigError, match="a.txt and --input .*b.txt are both QI files; give one QC and one QI"):
        predict_files([trained / "joint" / "best"], [a, b], [tmp_path / "x.txt", tmp_path / "y.txt"])
    with pytest.raises(ConfigError, match="--input given 2 times and --output 1"):
        predict_files([trained / "joint" / "best"], [a, b], [tmp_path / "x.txt"])
    assert not (tmp_path / "x.txt").exists()


def test_evaluate_scores_a_submission_against_gold(tmp_path):
    gold = write_jsonl(tmp_path / "dev.txt", [
        {"id": 1, "language": "en", "origin_query": "a", "item_title": "x", "label": 1},
        {"id": 2, "language": "es", "origin_query": "b", "item_title": "y", "label": 0},
        {"id": 3, "language": "es", "origin_query": "c", "item_title": "z", "label": 1}])
    pred = write_jsonl(tmp_path / "pred.txt", [{"id": 3, "prediction": 0}, {"id": 1, "prediction": 1},
                                               {"id": 2, "prediction": 1}])
    reports, table = evaluate_files(pred, gold)
    assert reports["qi"]["precision"] == 0.5 and reports["qi"]["recall"] == 0.5
    assert reports["qi"]["f1_by_language"] == {"en": 1.0, "es": 0.0}
    assert "| QI | 3 | 0.5000 |" in table


def test_evaluate_refuses_missing_and_unknown_ids(tmp_path):
    gold = write_jsonl(tmp_path / "dev.txt", [{"id": 1, "language": "en", "origin_query": "a", "item_title": "x",
                                               "label": 1}])
    with pytest.raises(DataError, match="1 ids of .* have no prediction"):
        evaluate_files(write_jsonl(tmp_path / "p1.txt", [{"id": 2, "prediction": 1}]), gold)


def test_submission_with_a_bad_prediction_names_the_line(tmp_path):
    path = write_jsonl(tmp_path / "p.txt", [{"id": 1, "prediction": 1}, {"id": 2, "prediction": "yes"}])
    with pytest.raises(DataError, match="p.txt:2: field 'prediction': must be 0 or 1"):
        read_predictions(path)


def test_evaluate_table_shows_gold_baselines_and_no_nan(tmp_path):
    gold = write_jsonl(tmp_path / "dev.txt", [
        {"id": i, "language": "en", "origin_query": "a", "item_title": "x", "label": int(i < 3)} for i in range(4)])
    pred = write_jsonl(tmp_path / "pred.txt", [{"id": i, "prediction": 1} for i in range(4)])
    reports, table = evaluate_files(pred, gold)
    assert reports["qi"]["baseline"] == {"majority_class": 1, "f1_majority": 6 / 7, "f1_all_positive": 6 / 7}
    assert "| QI | 4 | 0.8571 | 0.7500 | 1.0000 | — | — | 0.8571 | 0.8571 |" in table  # hard predictions rank nothing
    assert "nan" not in table and "auc" not in reports["qi"]


def test_evaluate_gives_auc_and_ap_when_every_prediction_carries_its_score(tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels, scores = [1, 0, 1, 0, 1, 0], [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]
    gold = write_jsonl(tmp_path / "dev.txt", [{"id": i, "language": "en" if i < 3 else "es", "origin_query": "a",
                                               "item_title": "x", "label": y} for i, y in enumerate(labels)])
    pred = write_jsonl(tmp_path / "pred.txt", [{"id": i, "prediction": int(s >= 0.5), "score": s}
                                               for i, s in enumerate(scores)])
    reports, table = evaluate_files(pred, gold)
    report = reports["qi"]
    assert report["auc"] == pytest.approx(roc_auc_score(labels, scores)) and report["auc"] != 0.5
    assert report["ap"] == pytest.approx(average_precision_score(labels, scores))
    assert report["auc_by_language"] == {"en": 0.5, "es": 0.5}  # en: 1, 0, 1 scored .9 .8 .7
    assert f"| {report['auc']:.4f} | {report['ap']:.4f} |" in table and "ES AUC" not in table
    assert "QI AUC" in table  # the language table gains the AUC column
    rows = [{"id": i, "prediction": int(s >= 0.5), "score": s if i else None} for i, s in enumerate(scores)]
    reports, _ = evaluate_files(write_jsonl(tmp_path / "some.txt", rows), gold)
    assert "auc" not in reports["qi"]  # one pair without a score: no ranking figures at all


def test_a_score_outside_0_1_names_the_line(tmp_path):
    path = write_jsonl(tmp_path / "p.txt", [{"id": 1, "prediction": 1, "score": 0.2}, {"id": 2, "prediction": 1,
                                                                                        "score": 1.5}])
    with pytest.raises(DataError, match="p.txt:2: field 'score': must be a number in \\[0, 1\\] or null"):
        read_predictions(path)


@pytest.mark.parametrize("content, message", [
    (None, r"pred.txt: file not found"),
    ('{"id": 1, "prediction": 1}\n{"id": 2, "prediction": "\xe9"}\n'.encode("latin-1"), r"pred.txt:2: not valid UTF-8"),
    (b'{"id": 1, "prediction": 1}\n{"id": ' + b"9" * 5000 + b', "prediction": 1}\n', r"pred.txt:2: not valid JSON"),
    (b'{"id": true, "prediction": 1}\n', r"pred.txt:1: field 'id': expected an integer or string id"),
], ids=["missing", "latin-1", "5000-digit id", "boolean id"])
def test_an_unreadable_submission_names_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "pred.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_predictions(path)


INFO = {"tokenizer_fingerprint": "abc", "arch": "decoder", "pooling": "last", "hidden_size": 64, "qc_feature_dim": 7,
        "tasks": ["qc", "qi"], "thresholds": {"qc": 0.4, "qi": 0.5},
        "priors": {"depth": 3, "strength": 20.0, "global_rate": 0.4, "counts": {"a": [3, 1]}}, "metrics": {}}


def model_folder(tmp_path, model_json: str | bytes | None = None):
    """A model folder with a model.json and config.yaml and no weights: enough for what predict checks first."""
    from mtl.config import load_config, save_config

    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    text = json.dumps(INFO) if model_json is None else model_json
    (folder / "model.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    save_config(load_config(), folder / "config.yaml")
    return folder


@pytest.fixture
def no_model_load(monkeypatch):
    monkeypatch.setattr("mtl.predict.load_trained", lambda *a, **k: pytest.fail("the model was loaded"))


def predict_argv(tmp_path, model, *extra):
    source = write_jsonl(tmp_path / "test.txt", make_records("qi", 5, seed=1, with_label=False))
    return ["predict", "--model", str(model), "--input", str(source), "--output", str(tmp_path / "out.txt"), *extra]


@pytest.mark.parametrize("threshold", ["nan", "inf", "5", "-1", "1.001", "1e400"])
def test_a_threshold_outside_0_1_is_refused_before_the_model_loads(tmp_path, no_model_load, caplog, threshold):
    with caplog.at_level(logging.ERROR):
        assert main(predict_argv(tmp_path, model_folder(tmp_path), "--threshold", threshold)) == 2
    assert "--threshold must be 'tuned' or a number in [0, 1], got" in caplog.text
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("device, message", [
    ("bogus", "--device 'bogus': not a device; use cpu, cuda or cuda:N"),
    ("meta", "--device 'meta': only cpu and cuda devices are supported"),
])
def test_a_device_that_cannot_run_is_refused_before_the_model_loads(tmp_path, no_model_load, caplog, device, message):
    with caplog.at_level(logging.ERROR):
        assert main(predict_argv(tmp_path, model_folder(tmp_path), "--device", device)) == 2
    assert message in caplog.text


@pytest.mark.parametrize("model_json, message", [
    ("{not json", "model.json:1: not valid JSON"),
    ("[1, 2]", "model.json: expected a JSON object, got array"),
    (b'{"arch": "\xff"}', "model.json:1: not valid UTF-8"),
    (json.dumps({k: v for k, v in INFO.items() if k != "arch"}), "model.json: field 'arch': missing"),
    (json.dumps({**INFO, "extra": 1}), "model.json: field 'extra': unknown"),
    (json.dumps({**INFO, "thresholds": {"qi": "0.5"}}), "field 'thresholds.qi': input should be a valid number"),
    (json.dumps({**INFO, "thresholds": {"qi": 5}}), "field 'thresholds': must map qc or qi to a number in [0, 1]"),
    (json.dumps({**INFO, "tasks": "qc"}), "field 'tasks': input should be a valid array, got 'qc'"),
    (json.dumps({**INFO, "tasks": ["qc", "xx"]}), "field 'tasks': must be some of qc, qi"),
    (json.dumps({**INFO, "hidden_size": True}), "field 'hidden_size': input should be a valid integer"),
    (json.dumps({**INFO, "priors": {"depth": 3}}), "field 'priors.strength': missing"),
    (json.dumps({**INFO, "qc_feature_dim": 5}), "field 'priors': depth 3 and counts do not fit qc_feature_dim 5"),
    (json.dumps(INFO)[:-1] + ', "arch": "encoder"}', "field 'arch': appears twice in one object"),
    (json.dumps({**INFO, "qi_feature_dim": 3}), "field 'qi_feature_dim': must be one of [0, 5, 34] (the word-overlap feature sets), got 3"),
    (json.dumps({**INFO, "qi_feature_dim": 5,
                 "qi_feature_names": ["word_share", "stem_share", "trigram_share", "query_words", "last_word"]}),
     "field 'qi_feature_names': the QI head reads ['word_share', 'stem_share', 'trigram_share', 'query_words', "
     "'last_word'], but this mtl computes ['word_share', 'stem_share', 'trigram_share', 'last_word', 'query_words']"),
], ids=["invalid JSON", "a list", "bad UTF-8", "missing key", "extra key", "threshold as a string",
        "threshold 5", "tasks as a string", "unknown task", "bool for int", "priors incomplete", "priors misfit",
        "duplicate key", "overlap misfit", "overlap columns renamed"])
def test_an_invalid_model_json_is_refused_before_the_model_loads(tmp_path, no_model_load, caplog, model_json,
                                                                 message):
    with caplog.at_level(logging.ERROR):
        assert main(predict_argv(tmp_path, model_folder(tmp_path, model_json))) == 2
    assert message in caplog.text
    assert not (tmp_path / "out.txt").exists()


def test_model_json_requires_the_model_info_fields_without_defaults_and_no_others(tmp_path):
    """The schema is ModelInfo itself: a field added to it joins the check with no change here."""
    for field in dataclasses.fields(ModelInfo):
        folder = model_folder(tmp_path, json.dumps({k: v for k, v in INFO.items() if k != field.name}))
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            with pytest.raises(DataError, match=f"model.json: field '{field.name}': missing"):
                read_info(folder)
        else:
            default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
            assert getattr(read_info(folder), field.name) == default


def test_a_model_folder_that_is_a_symlink_loop_is_refused(tmp_path, no_model_load, caplog):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with caplog.at_level(logging.ERROR):
        assert main(predict_argv(tmp_path, tmp_path / "loop")) == 2
    assert "loop/model.json: cannot read: a symbolic link loop" in caplog.text


def test_an_ensemble_of_node_embedding_folds_builds_each_fold_model_on_its_own_tree(tiny_backbone, tiny_data,
                                                                                   tmp_path, monkeypatch):
    """Category-aware folds train on different category trees, so each fold's node list, `qc_nodes` and `qc_head`
    differ in shape: each fold model is built whole, and reads its own node ids."""
    import mtl.predict

    stages.run(load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{
        "log.run_name": "nodes", "cv.fold": "all", "cv.n_folds": 2, "data.dev_limit": 16,
        "taxonomy.features": "both", "train.mode": "single", "train.task": "qc"})))
    folds = [tmp_path / "runs" / "nodes" / f"fold-{k}" / "best" for k in (0, 1)]
    nodes = [json.loads((f / "model.json").read_text())["nodes"] for f in folds]
    assert nodes[0] != nodes[1]
    source = write_jsonl(tmp_path / "qc.txt", make_records("qc", 30, seed=17, with_label=False))
    for k, fold in enumerate(folds):
        predict_file(fold, source, tmp_path / f"fold{k}.txt", with_scores=True)
    loads = []
    original = mtl.predict.load_trained
    monkeypatch.setattr("mtl.predict.load_trained", lambda *args, **kw: loads.append(args) or original(*args, **kw))
    predict_file(folds, source, tmp_path / "both.txt", with_scores=True)
    assert len(loads) == 2
    a, b = scores(tmp_path / "fold0.txt"), scores(tmp_path / "fold1.txt")
    assert scores(tmp_path / "both.txt") == pytest.approx([(x + y) / 2 for x, y in zip(a, b)], abs=2e-6)

    # A deeper tree gives a fold more node-id columns; its scores do not change (the extra slot reads padding).
    deeper = tmp_path / "deeper"
    shutil.copytree(folds[1], deeper)
    info = json.loads((deeper / "model.json").read_text())
    info.update(node_slots=info["node_slots"] + 1, qc_feature_dim=info["qc_feature_dim"] + 1)
    (deeper / "model.json").write_text(json.dumps(info))
    predict_file([folds[0], deeper], source, tmp_path / "deeper.txt", threshold=0.5, with_scores=True)
    assert scores(tmp_path / "deeper.txt") == pytest.approx(scores(tmp_path / "both.txt"), abs=2e-6)


def test_a_flex_attention_model_is_scored_with_sdpa_off_cuda(trained, tmp_path):
    """flex_attention trains on CUDA only; the same model read on CPU runs sdpa on the same masks (flex would compile
    a kernel per row width there)."""
    from mtl.model import load_trained

    folder = tmp_path / "flex"
    shutil.copytree(trained / "joint" / "best", folder)
    config = (folder / "config.yaml").read_text()
    assert "attn_implementation: sdpa" in config
    (folder / "config.yaml").write_text(config.replace("attn_implementation: sdpa", "attn_implementation: flex_attention"))
    model, _, _, cfg = load_trained(folder)
    assert cfg.model.attn_implementation == "sdpa"
    assert model.backbone.get_base_model().config._attn_implementation == "sdpa"


@pytest.mark.parametrize("qi_features", ["overlap", "overlap_binned"])
def test_a_qi_head_with_overlap_features_learns_them_and_predict_reads_them_as_training_did(tiny_backbone, tiny_data,
                                                                                          tmp_path, qi_features):
    """`model.qi_features=overlap|overlap_binned`: the QI head has a column per overlap feature, training moves the
    raw ones from zero, `mtl predict` computes them from the text and reproduces the fold's out-of-fold scores, and
    `mtl export` refuses the head (a serving stack passes text alone)."""
    from safetensors.torch import load_file

    from mtl.data.tasks import load_splits
    from mtl.export import export_model
    from mtl.overlap import FEATURE_SETS, OVERLAP_FEATURES

    stages.run(load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{
        "log.run_name": "overlap", "cv.fold": "1", "cv.n_folds": 2, "data.dev_limit": 16, "train.mode": "single",
        "train.task": "qi", "model.qi_features": qi_features})))
    fold = tmp_path / "runs" / "overlap"  # one fold: its run folder
    info = read_info(fold / "best")
    names = FEATURE_SETS[qi_features]
    assert info.qi_feature_dim == len(names) and info.qi_feature_names == list(names)
    weight = load_file(str(fold / "best" / "heads.safetensors"))["qi_head.weight"]
    assert weight.shape[1] == info.hidden_size + len(names)
    assert weight[0, info.hidden_size:info.hidden_size + len(OVERLAP_FEATURES)].abs().min() > 0
    records = load_splits(load_config(fold / "config.yaml"), ["qi"])["qi"].val_all
    source = write_jsonl(tmp_path / "qi.txt", records.drop(columns="label").to_dict("records"))
    predict_file(fold / "best", source, tmp_path / "out.txt", with_scores=True)
    oof = {r["id"]: r["score"] for r in read_jsonl(fold / "oof_qi.jsonl")}
    assert scores(tmp_path / "out.txt") == pytest.approx([oof[i] for i in records["id"]], abs=1e-6)
    with pytest.raises(ConfigError, match=rf"reads word-overlap features \(model.qi_features={qi_features}\)"):
        export_model(fold / "best", tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_a_model_trained_on_the_prompt_template_predicts_through_it(tiny_backbone, tiny_data, tmp_path):
    """`data.template=prompt` travels with the model: `mtl predict` rebuilds the prompt from the saved config and
    reproduces the fold's out-of-fold scores, which the plain template's ids would not."""
    from mtl.data.tasks import load_splits
    from mtl.model import load_trained

    stages.run(load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{
        "log.run_name": "prompt", "cv.fold": "1", "cv.n_folds": 2, "data.dev_limit": 16, "train.mode": "single",
        "train.task": "qi", "data.template": "prompt", "data.max_length": 128, "model.pooling": "last"})))
    fold = tmp_path / "runs" / "prompt"
    _, pairs, _, cfg = load_trained(fold / "best")
    assert cfg.data.template == "prompt" and pairs.suffix == pairs.tokenizer.encode(PROMPT[2], add_special_tokens=False)
    records = load_splits(load_config(fold / "config.yaml"), ["qi"])["qi"].val_all
    source = write_jsonl(tmp_path / "qi.txt", records.drop(columns="label").to_dict("records"))
    predict_file(fold / "best", source, tmp_path / "out.txt", with_scores=True)
    oof = {r["id"]: r["score"] for r in read_jsonl(fold / "oof_qi.jsonl")}
    assert scores(tmp_path / "out.txt") == pytest.approx([oof[i] for i in records["id"]], abs=1e-6)
