import re

from frozen_probe import run
from tests.conftest import overlap_records, write_jsonl


def test_a_probed_head_on_a_frozen_backbone_ranks_the_test_split_by_what_its_features_carry(tiny_backbone, tmp_path):
    """Relevant titles contain the query's word: a random backbone's pooled vector knows nothing of it, the overlap
    columns beside it do, so the probe (fitted on standardised columns) ranks the held-out test split by them."""
    train = write_jsonl(tmp_path / "qi.jsonl", overlap_records())
    out = run(["--name", "planted", "--task", "qi", "--fold", "0", "--pairs", "200", "--output-dir", str(tmp_path),
               f"model.backbone={tiny_backbone}", "lora.r=4", "lora.alpha=8", f"data.qi_train={train}",
               f"data.cache_dir={tmp_path / 'cache'}", "model.qi_features=overlap"])
    text = out.read_text()
    assert out.name == "frozen-planted.md" and "benchmarks/frozen_probe.py --name planted" in text
    assert "fitted on 200 of fold 0's" in text
    row = next(line for line in text.splitlines() if line.startswith("| frozen + probe"))
    cv_auc, val_auc, val_f1, test_auc, test_f1, all_positive = map(float, re.findall(r"\d\.\d{4}", row))
    assert cv_auc > 0.9 and val_auc > 0.9 and test_auc > 0.9 and test_f1 > 0.85 and 0.5 < all_positive < 0.8
