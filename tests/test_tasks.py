import json
import logging

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
    return load_config(None, [f"data.qi_train={path}", "cv.fold=0", "cv.n_folds=3", "data.dev_limit=0",
                              "data.test_fraction=0", *extra])


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


def test_a_test_split_holds_whole_queries_apart_from_train_and_validation(tmp_path):
    rows = make_records("qi", 400, seed=3)
    for i, row in enumerate(rows):  # 100 queries of 4 pairs each
        row["origin_query"] = f"query {i % 100}"
    path = write_jsonl(tmp_path / "train_QI.txt", rows)
    split = load_split(load_config(None, [f"data.qi_train={path}", "cv.fold=0", "cv.n_folds=3", "data.dev_limit=0"]),
                       "qi")
    test_queries = set(split.test["origin_query"])
    assert len(split.test) == pytest.approx(40, abs=8) and len(split.test) % 4 == 0
    assert not test_queries & set(split.train["origin_query"]) and not test_queries & set(split.val["origin_query"])
    assert len(split.train) + len(split.val) + len(split.test) == 400
    assert abs(split.test["label"].mean() - split.train["label"].mean()) < 0.15


def test_the_split_seed_alone_decides_which_records_are_scored(tmp_path):
    path = write_jsonl(tmp_path / "train_QI.txt", make_records("qi", 300, seed=3))

    def records(*extra):
        split = load_split(load_config(None, [f"data.qi_train={path}", "cv.fold=1", "cv.n_folds=3",
                                              "data.dev_limit=50", *extra]), "qi")
        return [sorted(part["id"].tolist()) for part in (split.train, split.val, split.test)]

    assert records("train.seed=1") == records("train.seed=2")
    other = records("data.split_seed=7")
    assert other[1] != records()[1] and other[2] != records()[2]


def test_a_test_file_is_used_as_given_and_no_test_split_when_the_fraction_is_0(tmp_path):
    train = write_jsonl(tmp_path / "train_QI.txt", make_records("qi", 200, seed=3))
    test = write_jsonl(tmp_path / "test_QI.txt", make_records("qi", 30, seed=9))
    given = load_split(load_config(None, [f"data.qi_train={train}", f"data.qi_test={test}", "cv.fold=0"]), "qi")
    assert len(given.test) == 30 and len(given.train) + len(given.val) == 200
    none = load_split(load_config(None, [f"data.qi_train={train}", "data.test_fraction=0", "cv.fold=0"]), "qi")
    assert none.test is None and len(none.train) + len(none.val) == 200


def test_check_inputs_refuses_an_empty_path(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError, match=r"^data.qc_train='': empty; give a file$"):
        check_inputs(load_config(None, ["data.qc_train="]))


def two_branch_qc(tmp_path, n=240):
    """Half the rows under food > grocery (one depth-2 subtree), half over 20 subtrees under toys."""
    rows = make_records("qc", n, seed=3)
    for i, row in enumerate(rows):
        row["category_path"] = "food,grocery,flour" if i % 2 else f"toys,kind {i % 20},dolls"
    return write_jsonl(tmp_path / "train_QC.txt", rows)


def test_a_qc_fold_keeps_the_split_report_and_warns_of_a_subtree_too_large_for_balanced_folds(tmp_path, caplog):
    path = two_branch_qc(tmp_path)
    cfg = load_config(None, [f"data.qc_train={path}", "cv.fold=0", "cv.n_folds=3", "data.dev_limit=0",
                             "data.test_fraction=0"])
    with caplog.at_level(logging.WARNING, logger="mtl"):
        split = load_split(cfg, "qc")
    assert split.split["folds"]["0"]["rows"] == len(split.val)
    assert sum(fold["rows"] for fold in split.split["folds"].values()) == 240
    assert split.split["largest_group"] == {"name": "food,grocery", "rows": 120, "share": 0.5}
    assert "the largest depth-2 category subtree, `food > grocery`, holds 50.0% of the 240 rows, more than a fold's " \
           "share (1/3 = 33.3%)" in caplog.text
    dev = load_config(None, [f"data.qc_train={path}", f"data.qc_dev={path}", "data.test_fraction=0"])
    assert load_split(dev, "qc").split is None


def test_a_qc_fold_column_that_splits_a_subtree_is_refused_by_the_tree_walk(tmp_path):
    source = two_branch_qc(tmp_path)
    out = tmp_path / "train_QC.random.txt"
    assert main(["-q", "split", "--input", str(source), "--output", str(out), "--strategy", "random",
                 "--n-folds", "3"]) == 0
    with pytest.raises(LeakageError, match=r"fold column leaks groups under cv.strategy=ca: \d+ category subtrees "
                                           r"\(depth 2\) have records in more than one fold, e.g. `food > grocery` in "
                                           r"folds 0, 1, 2.*--group-levels 2"):
        load_split(fold_config(out, "data.qc_train=" + str(out)), "qc")


def test_a_qc_query_split_trains_on_paths_its_validation_holds_and_its_fold_file_is_checked_by_query(tmp_path):
    source = write_jsonl(tmp_path / "train_QC.txt", make_records("qc", 300, seed=4))
    common = [f"data.qc_train={source}", "cv.fold=0", "cv.n_folds=3", "data.dev_limit=0", "data.test_fraction=0"]
    by_query = load_split(load_config(None, [*common, "cv.strategy=query"]), "qc")
    by_subtree = load_split(load_config(None, common), "qc")
    queries = {" ".join(q.lower().split()) for q in by_query.train["origin_query"]}
    assert not any(" ".join(q.lower().split()) in queries for q in by_query.val["origin_query"])
    assert by_query.val["category_path"].isin(set(by_query.train["category_path"])).mean() > 0.5
    assert not by_subtree.val["category_path"].isin(set(by_subtree.train["category_path"])).any()
    assert by_query.split["strategy"] == "query"
    out = tmp_path / "train_QC.query.txt"
    assert main(["-q", "split", "--input", str(source), "--output", str(out), "--strategy", "query",
                 "--n-folds", "3"]) == 0
    fold_file = [f"data.qc_train={out}", *common[1:]]
    assert len(load_split(load_config(None, [*fold_file, "cv.strategy=query"]), "qc").val) > 0
    with pytest.raises(LeakageError, match=r"fold column leaks groups under cv.strategy=ca: \d+ category subtrees"):
        load_split(load_config(None, fold_file), "qc")
