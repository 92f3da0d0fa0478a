import re

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lm_pmi import path_logprobs, run
from tests.conftest import build_tiny_backbone, make_records, write_jsonl


def test_batched_path_logprobs_equal_each_pair_scored_alone_and_the_leaf_is_the_last_level(tmp_path):
    folder = build_tiny_backbone(tmp_path / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prefixes = ["Search query: red running shoes for men\nCategory: ", "Search query: \nCategory: "]
    paths = ["sports,shoes,running shoes", "home & garden,kitchen"]
    total, leaf = path_logprobs(model, tokenizer, prefixes, paths)
    for k, (prefix, path) in enumerate(zip(prefixes, paths)):  # one unpadded sequence, every position's logits
        head = tokenizer(prefix)["input_ids"]
        ids = head + tokenizer(path, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        picked = np.array([logp[i - 1, ids[i]].item() for i in range(len(head), len(ids))])
        leaf_ids = tokenizer(path[path.rfind(",") + 1:], add_special_tokens=False)["input_ids"]
        assert abs(total[k] - picked.sum()) < 1e-4
        assert leaf[k] < 0 and abs(leaf[k] - picked[-len(leaf_ids):].sum()) < 1e-4


def test_the_report_scores_validation_and_test_and_mixes_with_the_fold_model(tmp_path):
    folder = build_tiny_backbone(tmp_path / "tiny")
    rows = make_records("qc", 300, seed=6)
    train = write_jsonl(tmp_path / "qc.jsonl", rows)
    oof = write_jsonl(tmp_path / "oof.jsonl", [{"id": r["id"], "score": r["label"] * 0.5 + 0.25} for r in rows])
    out = run(["--name", "tiny", "--fold", "0", "--output-dir", str(tmp_path), "--oof", str(oof),
               f"data.qc_train={train}", "cv.n_folds=3", f"data.cache_dir={tmp_path / 'cache'}",
               f"model.backbone={folder}"])
    text = out.read_text()
    assert out.name == "lm-pmi-tiny.md" and re.search(r"\| validation \| [\d,]+ \| 0\.\d{4} \| 0\.\d{4} \|", text)
    assert re.search(r"\| test \| [\d,]+ \| 0\.\d{4} \|", text)
    assert "the model alone AUC 1.0000" in text  # the planted scores separate the labels exactly
    assert re.search(r"\| 0\.25 \| [01]\.\d{4} \|", text) and re.search(r"\| 0\.5 \| [01]\.\d{4} \|", text)
