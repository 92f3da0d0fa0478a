import re

from overlap_baseline import run
from tests.conftest import overlap_records, write_jsonl


def test_the_overlap_baseline_ranks_a_planted_overlap_signal_on_the_test_split(tmp_path):
    """Relevant titles contain the query's word, the others a different product's: word overlap alone ranks them."""
    train = write_jsonl(tmp_path / "qi.jsonl", overlap_records())
    out = run(["--name", "planted", "--fold", "0", "--output-dir", str(tmp_path), f"data.qi_train={train}",
               f"data.cache_dir={tmp_path / 'cache'}"])
    text = out.read_text()
    assert out.name == "overlap-planted.md" and "benchmarks/overlap_baseline.py --name planted" in text
    for model in ("logistic regression", "gradient-boosted trees"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {model} |"))
        val_auc, test_auc, test_f1, all_positive = map(float, re.findall(r"\d\.\d{4}", row))
        assert val_auc > 0.95 and test_auc > 0.95 and test_f1 > 0.9 and 0.5 < all_positive < 0.8
    binned = run(["--name", "planted-binned", "--fold", "0", "--output-dir", str(tmp_path), f"data.qi_train={train}",
                  f"data.cache_dir={tmp_path / 'cache'}", "model.qi_features=overlap_binned"]).read_text()
    assert "34 `overlap_binned` columns" in binned
