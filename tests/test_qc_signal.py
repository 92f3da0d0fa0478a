import re

import pandas as pd
import pytest

from qc_signal import query_agreement, run
from tests.conftest import make_records, write_jsonl


def test_a_label_planted_in_the_query_alone_is_found_there_and_not_in_the_path(tmp_path):
    rows = make_records("qc", 600, seed=4)
    for row in rows:  # the label: whether the query names a brand; the path is whatever make_records drew
        row["label"] = int(row["origin_query"].endswith(" nike"))
    train = write_jsonl(tmp_path / "qc.jsonl", rows)
    out = run(["--name", "planted", "--fold", "0", "--output-dir", str(tmp_path), f"data.qc_train={train}",
               "cv.n_folds=3", f"data.cache_dir={tmp_path / 'cache'}"])
    text = out.read_text()
    assert out.name == "qc-signal-planted.md" and "benchmarks/qc_signal.py --name planted" in text
    auc = {}
    for inputs in ("query alone", "path alone", "query and path, side by side"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {inputs} |"))
        auc[inputs] = tuple(map(float, re.findall(r"\d\.\d{4}", row)))[:2]
    assert min(auc["query alone"]) > 0.95 and min(auc["query and path, side by side"]) > 0.95
    assert max(auc["path alone"]) < 0.75
    assert re.search(r"100\.0% share their label; 100\.0% of the [\d,]+ whose paths part", text)


def test_query_agreement_counts_same_query_row_pairs_against_independent_labels():
    records = pd.DataFrame({"origin_query": ["a", "A", "a ", "b", " B", "c"], "label": [1, 1, 0, 1, 1, 0],
                            "category_path": ["x,1", "y,1", "x,2", "x,3", "x,4", "y,5"]})
    agreement = query_agreement(records)
    assert agreement["pairs"] == 4  # three pairs of "a" (one agrees) and one of "b" (agrees); "c" has no pair
    assert agreement["agree"] == pytest.approx(0.5)
    assert agreement["pairs_apart"] == 2 and agreement["agree_apart"] == pytest.approx(0.5)  # a's x-y pairs
    assert agreement["independent"] == pytest.approx((4 / 6) ** 2 + (2 / 6) ** 2)
