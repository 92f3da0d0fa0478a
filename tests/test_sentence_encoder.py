import re
import zlib

import numpy as np
import pytest

from sentence_encoder import load_encoder, run
from tests.conftest import make_records, overlap_records, write_jsonl


def bag_of_words(texts):
    """A stand-in encoder: a fixed random vector per word, summed and normalised (pairs that share words agree)."""
    out = []
    for text in texts:
        v = np.zeros(32, dtype=np.float32)
        for word in text.lower().split():
            v += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(32).astype(np.float32)
        out.append(v / (np.linalg.norm(v) or 1.0))
    return np.stack(out)


def refuse(texts):
    raise AssertionError("encoded what should have been read or refused first")


def test_the_regression_learns_what_the_encoder_carries_and_reports_validation_and_test(tmp_path):
    train = write_jsonl(tmp_path / "qi.jsonl", overlap_records(600, seed=3))
    argv = ["--task", "qi", "--name", "toy", "--fold", "0", "--output-dir", str(tmp_path), f"data.qi_train={train}",
            "cv.n_folds=3", "--cache", str(tmp_path / "cache" / "vectors.npz")]
    out = run(argv, encode=bag_of_words)
    text = out.read_text()
    again = run(argv, encode=refuse).read_text()  # every text is in the cache now: nothing is encoded twice
    assert again.split("\n")[4:] == text.split("\n")[4:] and "- date: " in again and " 0 of " in again
    assert out.name == "sentence-encoder-toy.md"
    for part in ("validation", "test"):  # positive titles hold the query's word: both scores rank them first
        cosine, regression = map(float, re.search(rf"\| {part} \| [\d,]+ \| (\S+) \| (\S+) \|", text).groups())
        assert cosine > 0.95 and regression > 0.9
    assert re.search(r"C = [\d.]+ by inner 3-fold CV", text)


def test_out_of_fold_scores_are_averaged_per_language_and_a_missing_one_is_refused_before_encoding(tmp_path):
    rows = make_records("qc", 300, seed=6)
    train = write_jsonl(tmp_path / "qc.jsonl", rows)
    oof = write_jsonl(tmp_path / "oof.jsonl", [{"id": r["id"], "score": r["label"] * 0.5 + 0.25} for r in rows])
    common = ["--task", "qc", "--fold", "0", "--output-dir", str(tmp_path), f"data.qc_train={train}", "cv.n_folds=3"]
    text = run(["--name", "toy", "--oof", str(oof), *common], encode=bag_of_words).read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and "fold model" not in line]
    languages = {r["language"] for r in rows}
    mixes = {line.split(" | ")[0][2:]: line for line in table if line.count("|") == 8}
    assert set(mixes) == {"all"} | languages
    assert all(line.split(" | ")[2] == "1.0000" for line in mixes.values())  # the planted scores separate exactly

    short = write_jsonl(tmp_path / "short.jsonl", [{"id": r["id"], "score": 0.5} for r in rows[:50]])
    with pytest.raises(SystemExit, match=r"short\.jsonl: id: \d+ validation records of fold 0 have no out-of-fold"):
        run(["--name", "short", "--oof", str(short), *common], encode=refuse)


def test_the_packaged_encoder_puts_a_translation_nearer_than_another_product():
    encode = load_encoder()
    v = encode(["zapatos rojos", "red shoes", "washing machine"])
    assert v.shape == (3, 512) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
