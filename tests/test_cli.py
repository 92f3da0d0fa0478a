import json
import logging
import re

import pytest

from mtl.cli import build_parser, main
from mtl.errors import MtlError
from tests.conftest import make_records, write_jsonl

COMMANDS = ["split", "train", "predict", "export", "evaluate", "translate", "taxonomy", "compare", "report", "plan"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: mtl {command}" in text and len(text) > 300


def test_all_commands_are_registered():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(subparsers.choices) == sorted(COMMANDS)


def test_split_writes_input_records_plus_folds(tmp_path, capsys):
    rows = make_records("qi", 200, seed=3)
    source = write_jsonl(tmp_path / "train_QI.txt", rows)
    assert main(["split", "--input", str(source), "--output", str(tmp_path / "folds.txt"), "--n-folds", "3"]) == 0
    out = [json.loads(line) for line in (tmp_path / "folds.txt").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "fold"} for r in out] == rows
    assert {r["fold"] for r in out} == {0, 1, 2}
    by_query = {}
    for r in out:
        by_query.setdefault(r["origin_query"].lower(), set()).add(r["fold"])
    assert all(len(folds) == 1 for folds in by_query.values())
    assert "fold 0: 0.0%" in capsys.readouterr().out


def test_bad_input_exits_2_naming_file_line_and_field(tmp_path, caplog):
    source = write_jsonl(tmp_path / "bad.txt", make_records("qc", 3))
    lines = source.read_text().splitlines()
    lines[1] = lines[1].replace('"label": 0', '"label": "maybe"').replace('"label": 1', '"label": "maybe"')
    source.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.ERROR):
        code = main(["split", "--input", str(source), "--output", str(tmp_path / "out.txt")])
    assert code == 2
    assert f"{source}:2: field 'label': must be 0 or 1, got 'maybe'" in caplog.text
    assert not (tmp_path / "out.txt").exists()


def test_train_refuses_single_mode_without_a_task(caplog, monkeypatch):
    monkeypatch.setattr("mtl.stages.run", lambda *a, **k: pytest.fail("training started"))
    with caplog.at_level(logging.ERROR):
        assert main(["train", "--mode", "single"]) == 2
    assert "needs a target task" in caplog.text


def test_train_with_a_missing_config_file_exits_2_naming_it(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("mtl.stages.run", lambda *a, **k: pytest.fail("training started"))
    with caplog.at_level(logging.ERROR):
        assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert f"{tmp_path / 'missing.yaml'}: config file not found" in caplog.text


def test_split_keeps_ids_and_fields_as_given(tmp_path):
    rows = make_records("qi", 60, seed=3)
    for i, row in enumerate(rows):
        row["id"] = [f"{i:04d}", str(100 + i), i][i % 3]
        if i % 2:
            row["meta"] = {"n": i}
        if i % 4 == 0:
            del row["translated_query"]
    source = write_jsonl(tmp_path / "in.txt", rows)
    assert main(["split", "--input", str(source), "--output", str(tmp_path / "out.txt"), "--n-folds", "3"]) == 0
    lines = (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()
    out = [json.loads(line, parse_constant=pytest.fail) for line in lines]
    assert [{k: v for k, v in r.items() if k != "fold"} for r in out] == rows


@pytest.mark.parametrize("strategy, expected", [
    ("ca", "leakage check passed: each of {} queries is in exactly one of 3 folds"),
    ("random", "leakage check: not run"),
])
def test_split_says_whether_the_leakage_check_passed(tmp_path, capsys, strategy, expected):
    rows = make_records("qi", 200, seed=3)
    source = write_jsonl(tmp_path / "in.txt", rows)
    main(["split", "--input", str(source), "--output", str(tmp_path / "out.txt"), "--n-folds", "3",
          "--strategy", strategy])
    queries = {" ".join(r["origin_query"].lower().split()) for r in rows}
    assert expected.format(len(queries)) in capsys.readouterr().out


def test_qc_split_prints_fold_sizes_groups_and_the_largest_subtree(tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.txt", make_records("qc", 200, seed=3))
    assert main(["split", "--input", str(source), "--output", str(tmp_path / "out.txt"), "--n-folds", "2",
                 "--group-levels", "1"]) == 0
    out = capsys.readouterr().out
    assert "rows  positive_rate  languages  groups  largest_group_share" in out
    assert "4 depth-1 category subtrees; the largest, `" in out
    assert "leakage check passed: each of 4 depth-1 category subtrees is in exactly one of 2 folds" in out


def test_a_qc_query_split_is_checked_by_query_and_reports_how_many_validation_subtrees_training_holds(tmp_path,
                                                                                                   capsys):
    rows = make_records("qc", 200, seed=3)
    source = write_jsonl(tmp_path / "in.txt", rows)
    assert main(["split", "--input", str(source), "--output", str(tmp_path / "out.txt"), "--n-folds", "2",
                 "--group-levels", "1", "--strategy", "query"]) == 0
    out = capsys.readouterr().out
    queries = {" ".join(r["origin_query"].lower().split()) for r in rows}
    assert f"leakage check passed: each of {len(queries)} queries is in exactly one of 2 folds" in out
    assert "depth-1 category subtrees; the largest, `" in out  # named as under ca, not as a raw path
    shares = [float(s) for s in re.findall(r"fold \d: ([\d.]+)%", out.split("also occurs in training folds:")[1])]
    assert len(shares) == 2 and min(shares) > 50  # four subtrees over two folds of whole queries: most are shared


@pytest.mark.parametrize("args, message", [
    (["--n-folds", "1"], "--n-folds must be at least 2, got 1"),
    (["--group-levels", "0"], "--group-levels must be at least 1, got 0"),
    (["--output", "{tmp}"], "is a folder"),
    (["--output", "{tmp}/in.txt/out.txt"], "is a file, so no folder can be made there"),
    (["--output", "{tmp}/in.txt"], "is the input file"),
    (["--seed", "-1"], "--seed must be in 0..4294967295, got -1"),
    (["--seed", "99999999999"], "--seed must be in 0..4294967295, got 99999999999"),
    (["--output", "{tmp}/loop/out.txt"], "cannot resolve the path: Symlink loop"),
])
def test_split_refuses_bad_options_before_reading(tmp_path, caplog, monkeypatch, args, message):
    monkeypatch.setattr("mtl.data.records.read_records", lambda *a, **k: pytest.fail("input read"))
    source = write_jsonl(tmp_path / "in.txt", make_records("qi", 20))
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    argv = ["split", "--input", str(source), "--output", str(tmp_path / "out.txt")]
    argv += [a.format(tmp=tmp_path) for a in args]
    with caplog.at_level(logging.ERROR):
        assert main(argv) == 2
    assert message in caplog.text


def test_resume_refuses_a_different_backbone(tmp_path, caplog):
    from mtl.config import load_config, save_config

    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    save_config(load_config(), run / "config.yaml")
    with caplog.at_level(logging.ERROR):
        assert main(["train", "--resume", str(run), "model.backbone=/elsewhere"]) == 2
    assert "cannot change model.backbone" in caplog.text


def test_split_of_too_few_rows_exits_2_saying_what_fold_count_works(tmp_path, caplog):
    source = write_jsonl(tmp_path / "in.txt", make_records("qi", 4, seed=1))
    with caplog.at_level(logging.ERROR):
        assert main(["split", "--input", str(source), "--output", str(tmp_path / "out.txt"), "--n-folds", "3"]) == 2
    assert "qi ca split into 3 folds: 4 rows in 3 queries" in caplog.text and "so use at most 2 folds" in caplog.text
    assert not (tmp_path / "out.txt").exists()


def capture_train_config(monkeypatch) -> dict:
    seen = {}

    def fake_run(cfg, resume=False):
        seen["cfg"] = cfg
        raise MtlError("stopped before training")

    monkeypatch.setattr("mtl.stages.run", fake_run)
    return seen


def test_overrides_may_come_before_and_after_options(monkeypatch):
    seen = capture_train_config(monkeypatch)
    assert main(["train", "data.qc_train=x.jsonl", "--fold", "0", "train.max_steps=10", "--mode", "single",
                 "train.lr=1e-3", "--task", "qc", "train.max_steps=20"]) == 2
    cfg = seen["cfg"]
    assert (cfg.data.qc_train, cfg.cv.fold, cfg.train.mode, cfg.train.task) == ("x.jsonl", "0", "single", "qc")
    assert (cfg.train.max_steps, cfg.train.lr) == (20, 1e-3)


@pytest.mark.parametrize("argv", [
    ["train", "train.lr=1e-3", "--fold", "0", "stray"],
    ["train", "train.lr=1e-3", "--fold", "0", "--bogus"],
    ["split", "--input", "a", "--output", "b", "train.lr=1e-3"],
])
def test_arguments_that_are_not_overrides_are_still_refused(argv, monkeypatch, capsys):
    capture_train_config(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert f"unrecognized arguments: {argv[-1]}" in capsys.readouterr().err


def test_compare_refuses_seeds_with_several_folds(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("mtl.experiments.run_grid", lambda *a, **k: pytest.fail("a grid started"))
    with caplog.at_level(logging.ERROR):
        assert main(["compare", "--root", str(tmp_path / "g"), "--seeds", "1,2", "--fold", "0,1"]) == 2
    assert "--seeds with several folds (--fold 0,1)" in caplog.text and not (tmp_path / "g").exists()
