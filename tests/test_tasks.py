import json

import pytest

from mtl.cli import main
from mtl.config import load_config
from mtl.data.tasks import check_inputs, load_split
from mtl.errors import ConfigError, DataError, LeakageError
from tests.conftest import REPO, make_records, write_jsonl


def split_file(tmp_path, strategy="ca", n_folds=3):
    source = write_jsonl(tmp_path / "train_QI.txt", make_records("qi", 200, seed=3))
    out = tmp_path / f"train_QI.{strategy}.txt"
    assert main(["-q", "split", "--input", str(source), "--output", str(out), "--strategy", strategy,
                 "--n-folds", str(n_folds)]) == 0
    return out


def fold_config(path, *extra):
    return load_config(None, [f"data.qi_train={path}", "cv.fold=0", "cv.n_folds=3", "data.dev_limit=0", *extra])


def rewrite_fold(path, line, value):
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[line - 1]["fold"] = value
    write_jsonl(path, rows)


def test_a_fold_column_from_mtl_split_is_used(tmp_path):
    path = split_file(tmp_path)
    folds = [json.loads(x)["fold"] for x in path.read_text().splitlines()]
    split = load_split(fold_config(path), "qi")
    assert len(split.val) == folds.count(0) and len(split.train) == len(folds) - folds.count(0)


@pytest.mark.parametrize("value", [3, -1, 1.5, "x", True, None])
def test_a_bad_fold_value_names_file_line_and_field(tmp_path, value):
    path = split_file(tmp_path)
    rewrite_fold(path, 7, value)
    with pytest.raises(DataError) as err:
        load_split(fold_config(path), "qi")
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 7, "fold")


def test_a_fold_column_with_fewer_folds_than_configured_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"holds folds \[0, 1, 2\] but cv.n_folds=4"):
        load_split(fold_config(split_file(tmp_path), "cv.n_folds=4"), "qi")


def test_a_random_fold_column_under_a_grouped_strategy_is_refused(tmp_path):
    path = split_file(tmp_path, "random")
    with pytest.raises(LeakageError, match=r"fold column leaks groups under cv.strategy=ca.*mtl split .*--strategy ca"):
        load_split(fold_config(path), "qi")
    assert len(load_split(fold_config(path, "cv.strategy=random"), "qi").val) > 0


def test_check_inputs_accepts_the_shipped_defaults(monkeypatch):
    monkeypatch.chdir(REPO)
    check_inputs(load_config())


@pytest.mark.parametrize("override, key", [
    ("data.qi_train=nowhere/train_QI.txt", "data.qi_train"),
    ("data.qc_dev=nowhere/dev_QC.txt", "data.qc_dev"),
    ("data.qc_train=data", "data.qc_train"),
    ("model.backbone=nowhere/gemma", "model.backbone"),
    ("model.init_from=nowhere/best", "model.init_from"),
    ("train.deepspeed=nowhere/zero2.json", "train.deepspeed"),
])
def test_check_inputs_names_the_key_of_a_missing_path(monkeypatch, override, key):
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError, match=rf"^{key}="):
        check_inputs(load_config(None, [override]))


def test_check_inputs_checks_only_what_the_run_reads(monkeypatch):
    monkeypatch.chdir(REPO)
    check_inputs(load_config(None, ["train.mode=single", "train.task=qc", "data.qi_train=nowhere"]))
    check_inputs(load_config(None, ["cv.fold=0", "data.qc_dev=nowhere", "data.qi_dev=nowhere"]))
    with pytest.raises(ConfigError, match="data.qi_train"):  # tapt trains the other task first
        check_inputs(load_config(None, ["train.mode=tapt", "train.task=qc", "data.qi_train=nowhere"]))


def test_check_inputs_refuses_an_empty_path(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError, match=r"^data.qc_train='': empty; give a file$"):
        check_inputs(load_config(None, ["data.qc_train="]))
