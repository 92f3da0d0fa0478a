"""The synthetic sample keeps the real data's shape (issue #19) and what it exists to exercise."""

import importlib.util
import json
import sys

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("make_sample_data", REPO / "scripts" / "make_sample_data.py")
make_sample_data = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(make_sample_data)


def read(name):
    return [json.loads(line) for line in (REPO / "data" / "sample" / name).read_text(encoding="utf-8").splitlines()]


def test_the_sample_has_the_real_pairs_per_query_and_positive_rates():
    table = make_sample_data.shape_table(REPO / "data" / "sample")
    rows = {line.split("|")[1].strip(" `"): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines()[2:]}
    qc, qi = rows["train_QC.txt"], rows["train_QI.txt"]
    assert 1.05 < float(qc[2].split()[0]) < 1.2 and qc[2].endswith("(5)")
    assert 5.8 < float(qi[2].split()[0]) < 6.8
    assert abs(float(qc[5].rstrip("%")) - 68) < 2 and abs(float(qi[5].rstrip("%")) - 46) < 2
    assert 14 < float(qc[3]) < 18 and 17 < float(qi[3]) < 21 and 54 < float(qc[4]) < 64 and 64 < float(qi[4]) < 74


def test_polish_is_dev_only_and_no_query_crosses_files():
    for task in ("QC", "QI"):
        files = {name: read(f"{name}_{task}.txt") for name in ("train", "dev", "test")}
        assert [any(r["language"] == "pl" for r in rows) for rows in files.values()] == [False, True, False]
        queries = {name: {(r["language"], " ".join(r["origin_query"].lower().split())) for r in rows
                          if r["origin_query"].strip()} for name, rows in files.items()}
        assert not queries["train"] & queries["dev"] and not queries["train"] & queries["test"]
        assert any("translated_query" in r and r["translated_query"] != r["origin_query"] for r in files["train"])
