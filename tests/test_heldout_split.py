import json

import pytest

from heldout_split import run
from mtl.config import load_config
from mtl.data.tasks import load_split
from mtl.errors import ConfigError
from tests.conftest import make_records, write_jsonl


def test_the_written_split_is_the_test_split_training_holds_out(tmp_path):
    rows = make_records("qi", 300, seed=3)
    for row in rows:  # training reads queries lower-cased with single spaces; the file keeps what it held
        row["origin_query"] = row["origin_query"].upper().replace(" ", "  ")
    train = write_jsonl(tmp_path / "qi.jsonl", rows)
    overrides = [f"data.qi_train={train}", "data.split_seed=7"]
    out = run(["--task", "qi", "--output", str(tmp_path / "test.jsonl"), *overrides])
    written = [json.loads(line) for line in out.read_text().splitlines()]
    split = load_split(load_config(None, [*overrides, "cv.fold=1"]), "qi")
    assert sorted(r["id"] for r in written) == sorted(split.test["id"])
    by_id = {r["id"]: r for r in rows}
    assert all(r == by_id[r["id"]] for r in written)
    other_seed = run(["--task", "qi", "--output", str(tmp_path / "other.jsonl"), *overrides, "data.split_seed=8"])
    assert other_seed.read_text() != out.read_text()


def test_a_file_too_small_for_the_configured_folds_still_gives_its_test_split(tmp_path):
    """A run trained with dev files never splits its training file into folds; writing its test split must not either
    (these records' 4 category groups cannot fill the default 5 QC folds)."""
    train = write_jsonl(tmp_path / "qc.jsonl", make_records("qc", 300))
    out = run(["--task", "qc", "--output", str(tmp_path / "test.jsonl"), f"data.qc_train={train}"])
    split = load_split(load_config(None, [f"data.qc_train={train}", "cv.fold=0", "cv.n_folds=3"]), "qc")
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == sorted(split.test["id"])


def test_nothing_to_carve_and_the_training_file_as_output_are_refused(tmp_path):
    train = write_jsonl(tmp_path / "qi.jsonl", make_records("qi", 100))
    before = train.read_text()
    out = str(tmp_path / "t.jsonl")
    with pytest.raises(ConfigError, match="data.qi_test is set"):
        run(["--task", "qi", "--output", out, f"data.qi_train={train}", f"data.qi_test={train}"])
    with pytest.raises(ConfigError, match="test_fraction=0"):
        run(["--task", "qi", "--output", out, f"data.qi_train={train}", "data.test_fraction=0"])
    with pytest.raises(ConfigError, match="is the input file"):
        run(["--task", "qi", "--output", str(train), f"data.qi_train={train}"])
    assert train.read_text() == before and not (tmp_path / "t.jsonl").exists()
