import re
import zlib

import numpy as np
import pandas as pd
import pytest

from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from overlap_baseline import fold_records, rank_average
from mtl.encoder import use_encoder
from sentence_encoder import embed, mix_table, neighbour_labels, run
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
    assert "| en |" not in text  # one language: no per-language rows
    assert out.name == "sentence-encoder-toy.md"
    for part in ("validation", "test"):  # positive titles hold the query's word: both scores rank them first
        cosine, regression = map(float, re.search(rf"\| {part} \| [\d,]+ \| (\S+) \| (\S+) \|", text).groups())
        assert cosine > 0.95 and regression > 0.9
    assert re.search(r"C = [\d.]+ \(of [\d., ]+\) by an inner 3-fold CV split as the outer folds", text)
    validation, test = (int(re.search(rf"\| {part} \| ([\d,]+) \|", text).group(1).replace(",", ""))
                        for part in ("validation", "test"))
    assert f"over {600 - validation - test:,} training records" in text  # the regression sees the rest, no more


def test_the_fold_model_is_averaged_per_language_on_validation_and_test_and_bad_score_files_are_refused_first(
        tmp_path):
    rows = make_records("qc", 300, seed=6)
    train = write_jsonl(tmp_path / "qc.jsonl", rows)
    planted = [{"id": r["id"], "score": r["label"] * 0.5 + 0.25} for r in rows]  # separates the labels exactly
    oof = write_jsonl(tmp_path / "oof.jsonl", planted)
    common = ["--task", "qc", "--fold", "0", "--output-dir", str(tmp_path), f"data.qc_train={train}", "cv.n_folds=3"]
    text = run(["--name", "toy", "--oof", str(oof), "--test-predictions", str(oof), *common],
               encode=bag_of_words).read_text()
    sections = text.split("Beside the fold model's scores")[1:]
    assert [s.split("AUC on the ")[1].split(" pairs")[0] for s in sections] == ["validation", "test"]
    for section in sections:
        mixes = {line.split(" | ")[0][2:]: line for line in section.splitlines() if line.count("|") == 10
                 and line.startswith("| ") and "fold model" not in line}
        held = {"path in training", "path not in training"}
        assert {"all"} | held <= set(mixes) and set(mixes) - {"all"} - held <= {r["language"] for r in rows}
        assert mixes["all"].split(" | ")[2] == "1.0000"  # n/a below only where a subset holds one class
        assert all(line.split(" | ")[2] in ("1.0000", "n/a") for line in mixes.values())
    _, _, split, val, test = fold_records(["--name", "toy", *common[2:]], "qc", "")
    for part, frame in (("validation", val), ("test", test)):
        n_held = int(frame["category_path"].isin(set(split.train["category_path"])).sum())
        assert re.search(rf"\| {part}, path in training \| {n_held:,} \|", text)
        assert re.search(rf"\| {part}, path not in training \| {len(frame) - n_held:,} \|", text)
        # whole category subtrees are held out: no validation path is in training, while the test split's are
        assert (n_held > 0) == (part == "test")

    short = write_jsonl(tmp_path / "short.jsonl", planted[:50])
    with pytest.raises(SystemExit, match=r"short\.jsonl: id: no out-of-fold score for \d+ of the \d+ validation "
                                         r"records of fold 0 \(the first: id \d+\)"):
        run(["--name", "short", "--oof", str(short), *common], encode=refuse)
    with pytest.raises(SystemExit, match=r"short\.jsonl: id: no predicted score for \d+ of the \d+ test records"):
        run(["--name", "short", "--test-predictions", str(short), *common], encode=refuse)
    twice = write_jsonl(tmp_path / "twice.jsonl", planted + planted[:1])
    with pytest.raises(SystemExit, match=rf"twice\.jsonl: id: {planted[0]['id']} is scored twice"):
        run(["--name", "twice", "--oof", str(twice), *common], encode=refuse)


def test_the_subsets_are_the_pairs_the_mask_names_and_all_three_is_the_mean_of_the_three_rankings():
    rng = np.random.default_rng(1)
    n = 400
    label = rng.integers(0, 2, n)
    held = np.arange(n) < 250
    frame = pd.DataFrame({"id": range(n), "language": np.where(np.arange(n) % 2, "en", "es"), "label": label,
                          "score": np.where(held, label, 1 - label) + rng.random(n) * 0.1,  # right on held rows only
                          "encoder": rng.random(n), "neighbours": rng.random(n)})
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in mix_table(frame, held, "path", "test", "x.jsonl")
            if line.startswith("| ") and "fold model" not in line}
    assert rows["path in training"][1] == "250" and rows["path not in training"][1] == "150"
    assert (rows["path in training"][2], rows["path not in training"][2]) == ("1.0000", "0.0000")
    three = (rankdata(frame["score"]) + rankdata(frame["encoder"]) + rankdata(frame["neighbours"])) / 3
    assert rows["all"][-1] == f"{roc_auc_score(label, three):.4f} |"
    assert rows["path in training"][-1] == f"{roc_auc_score(label[held], three[held]):.4f} |"
    assert rows["es"][1] == "200" and rows["all"][4] == f"{roc_auc_score(label, frame['neighbours']):.4f}"


def test_the_rank_average_weighs_the_other_s_ranks_as_told():
    model, encoder = np.array([0.9, 0.1, 0.5, 0.3]), np.array([0.2, 0.4, 0.8, 0.6])
    assert np.allclose(rank_average(model, encoder, 0.25), 0.75 * rankdata(model) + 0.25 * rankdata(encoder))
    assert np.array_equal(np.argsort(rank_average(model, encoder, 1.0)), np.argsort(encoder))


def test_neighbours_vote_where_query_and_target_both_agree_and_chunks_change_nothing():
    basis = np.eye(4, dtype=np.float32)
    train_q, train_t, train_y = basis[[0, 1, 0]], basis[[2, 3, 3]], np.array([1, 0, 0])
    q, t = basis[[0, 1, 0, 1]], basis[[2, 3, 3, 2]]
    voted = neighbour_labels(q, t, train_q, train_t, train_y, k=2, sharpness=30.0)
    # (q0, t2) meets its own positive training pair; (q1, t3) and (q0, t3) their negatives, though (q0, t3) shares
    # a query with the positive; (q1, t2) shares one side with two training pairs and both sides with none, so every
    # training pair is as near as another (likeness 0) and any two of the three may vote
    assert voted[0] > 0.99 and voted[1] < 0.01 and voted[2] < 0.01
    assert voted[3] in (0.0, 0.5) and np.isclose(
        neighbour_labels(q[3:], t[3:], train_q, train_t, train_y, k=3, sharpness=30.0)[0], 1 / 3)
    rng = np.random.default_rng(0)
    many = rng.standard_normal((50, 8)).astype(np.float32), rng.standard_normal((50, 8)).astype(np.float32)
    train = rng.standard_normal((30, 8)).astype(np.float32), rng.standard_normal((30, 8)).astype(np.float32)
    labels = rng.integers(0, 2, 30)
    assert np.allclose(neighbour_labels(*many, *train, labels, k=5, chunk=7),
                       neighbour_labels(*many, *train, labels, k=5, chunk=1000))
    assert np.allclose(neighbour_labels(*many, *train, labels, k=500, sharpness=0.0), labels.mean())


def test_a_cache_is_extended_with_what_it_lacks_and_one_from_another_encoder_is_refused(tmp_path):
    cache = tmp_path / "vectors.npz"
    first, encoded = embed(bag_of_words, ["red shoes", "drill"], cache)
    seen = []
    both, encoded_now = embed(lambda texts: seen.extend(texts) or bag_of_words(texts), ["drill", "lamp", "red shoes"],
                              cache)
    assert (encoded, encoded_now, seen) == (2, 1, ["lamp"]) and set(both) == {"red shoes", "drill", "lamp"}
    assert np.array_equal(both["drill"], first["drill"]) and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(SystemExit, match=r"vectors\.npz: encoder: filled by 'universal-sentence-encoder-multilingual"
                                         r"-v3', this run encodes with 'other'"):
        embed(refuse, ["drill"], cache, tag="other")
    np.savez(cache, texts=np.array(["drill"]), vectors=np.zeros((1, 32)))  # a cache from before caches were named
    with pytest.raises(SystemExit, match=r"vectors\.npz: encoder: filled by 'an unnamed encoder'"):
        embed(refuse, ["drill"], cache)


def test_the_packaged_encoder_puts_a_translation_nearer_than_another_product():
    encode = use_encoder()
    v = encode(["zapatos rojos", "red shoes", "washing machine"])
    assert v.shape == (3, 512) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
