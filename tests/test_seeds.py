import json
import shutil
from pathlib import Path

import pytest

import seeds


def fake_train(calls):
    """Stands in for `mtl train`: writes the metrics.json a finished run would, its validation AUC set by the seed."""
    def train(argv):
        seed = int(next(a for a in argv if a.startswith("train.seed=")).split("=")[1])
        root = next(a for a in argv if a.startswith("log.root=")).split("=", 1)[1]
        name = next(a for a in argv if a.startswith("log.run_name=")).split("=", 1)[1]
        calls.append(seed)
        report = {"auc": 0.55 + seed / 10, "f1": 0.7, "predicted_positive_rate": 0.5}
        folder = Path(root) / name
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({
            "best": {"reports": {"qi": report}}, "test": {"reports": {"qi": {**report, "at_threshold": report}}},
            "curve": [1, 2, 3]}))
        return 0
    return train


def test_seeds_whose_runs_are_gone_come_back_from_the_json_and_only_new_seeds_train(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(seeds, "mtl_main", fake_train(calls))
    argv = ["--name", "x", "--root", str(tmp_path / "runs"), "--output-dir", str(tmp_path / "out"), "--mode", "single",
            "--task", "qi", "model.qi_features=overlap"]
    seeds.run([*argv, "--seeds", "1,2"])
    shutil.rmtree(tmp_path / "runs")
    out = seeds.run([*argv, "--seeds", "1,2,3"])
    assert calls == [1, 2, 3]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[1] for row in rows[:3]] == ["0.6500", "0.7500", "0.8500"]
    assert "2 of 3" in rows[3]
    assert "curve" not in (tmp_path / "out" / "seeds-x.json").read_text()
    rows = [line for line in seeds.run([*argv, "--seeds", "2"]).read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 3 + 1 and calls == [1, 2, 3]  # every recorded seed, none retrained


def test_a_seed_that_fails_leaves_the_seeds_before_it_recorded(tmp_path, monkeypatch):
    train = fake_train([])
    monkeypatch.setattr(seeds, "mtl_main", lambda argv: 1 if "train.seed=2" in argv else train(argv))
    argv = ["--name", "x", "--root", str(tmp_path / "runs"), "--output-dir", str(tmp_path), "--seeds", "1,2"]
    with pytest.raises(SystemExit, match="seed 2: mtl train exited with 1"):
        seeds.run(argv)
    assert list(json.loads((tmp_path / "seeds-x.json").read_text())["seeds"]) == ["1"]


def test_a_recorded_seed_of_another_recipe_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "mtl_main", fake_train([]))
    argv = ["--name", "x", "--root", str(tmp_path / "runs"), "--output-dir", str(tmp_path), "--seeds", "1"]
    seeds.run(argv)
    with pytest.raises(SystemExit, match="seeds-x.json: its seeds were trained with .*use another --name"):
        seeds.run([*argv, "train.lr=1e-4"])


def test_a_config_file_edited_since_the_recorded_seeds_is_refused_though_the_command_is_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "mtl_main", fake_train([]))
    config = tmp_path / "recipe.yaml"
    config.write_text("train:\n  max_steps: 600\n")
    argv = ["--name", "x", "--root", str(tmp_path / "runs"), "--output-dir", str(tmp_path), "--config", str(config)]
    seeds.run([*argv, "--seeds", "1"])
    seeds.run([*argv, "--seeds", "1,2", "train.max_steps=600"])  # the same config, spelt out: seed 2 joins
    assert list(json.loads((tmp_path / "seeds-x.json").read_text())["seeds"]) == ["1", "2"]
    config.write_text("train:\n  max_steps: 1000\n")
    with pytest.raises(SystemExit, match=r"seeds-x.json: its seeds were trained with another config \(train.max_steps"):
        seeds.run([*argv, "--seeds", "3"])


def test_a_file_recorded_before_the_config_was_kept_is_retabled_but_not_extended(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(seeds, "mtl_main", fake_train(calls))
    argv = ["--name", "x", "--root", str(tmp_path / "runs"), "--output-dir", str(tmp_path)]
    seeds.run([*argv, "--seeds", "1"])
    path = tmp_path / "seeds-x.json"
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "config"}))
    shutil.rmtree(tmp_path / "runs")
    assert "| 1 |" in seeds.run([*argv, "--seeds", "1"]).read_text()
    with pytest.raises(SystemExit, match="recorded before seeds.py kept the resolved config"):
        seeds.run([*argv, "--seeds", "1,2"])
    assert calls == [1]


def test_a_run_folder_of_another_recipe_is_refused_though_no_json_records_it(tmp_path, monkeypatch):
    from mtl.config import load_config, save_config

    calls = []
    train = fake_train(calls)

    def train_and_save_config(argv):
        """As `mtl train` does: the run folder keeps the config it trained with, flags applied."""
        flags = {"--mode": "train.mode", "--task": "train.task", "--fold": "cv.fold"}
        pairs = [f"{flags[a]}={b}" for a, b in zip(argv, argv[1:]) if a in flags]
        status = train(argv)
        root = next(a for a in argv if a.startswith("log.root=")).split("=", 1)[1]
        name = next(a for a in argv if a.startswith("log.run_name=")).split("=", 1)[1]
        save_config(load_config(None, [a for a in argv if "=" in a and not a.startswith("-")] + pairs),
                    Path(root) / name / "config.yaml")
        return status

    monkeypatch.setattr(seeds, "mtl_main", train_and_save_config)
    argv = ["--name", "x", "--root", str(tmp_path / "runs"), "--output-dir", str(tmp_path), "--seeds", "1",
            "--mode", "single", "--task", "qi", "--fold", "0"]
    seeds.run(argv)
    seeds.run(argv)  # the same recipe: the complete run is taken as it is
    assert calls == [1]
    (tmp_path / "seeds-x.json").unlink()
    with pytest.raises(SystemExit, match=r"seed-1/config.yaml: that run was trained with another config \(train.lr"):
        seeds.run([*argv, "train.lr=1e-4"])
    with pytest.raises(SystemExit, match=r"another config \(cv.fold"):
        seeds.run([*argv[:-2], "--fold", "1"])
    assert calls == [1]
