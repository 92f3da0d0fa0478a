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
    overrides = [f"data.qi_train={train}", "data.split_seed=7", f"data.cache_dir={tmp_path / 'cache'}"]
    out = run(["--task", "qi", "--output", str(tmp_path / "test.jsonl"), *overrides])
    written = [json.loads(line) for line in out.read_text().splitlines()]
    split = load_split(load_config(None, [*overrides, "cv.fold=1"]), "qi")
    assert sorted(r["id"] for r in written) == sorted(split.test["id"])
    assert not {r["id"] for r in written} & (set(split.train["id"]) | set(split.val_all["id"]))
    by_id = {r["id"]: r for r in rows}
    assert all(r == by_id[r["id"]] for r in written)
    other_seed = run(["--task", "qi", "--output", str(tmp_path / "other.jsonl"), *overrides, "data.split_seed=8"])
    assert other_seed.read_text() != out.read_text()


def test_a_configured_test_file_is_refused(tmp_path):
    train = write_jsonl(tmp_path / "qi.jsonl", make_records("qi", 100))
    with pytest.raises(ConfigError, match="data.qi_test is set"):
        run(["--task", "qi", "--output", str(tmp_path / "t.jsonl"), f"data.qi_train={train}", f"data.qi_test={train}"])
