import hashlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mtl.encoder import COLUMNS, ENCODER, PairEncoder, embed, encoder_file, fuse, fusion_stats
from mtl.errors import CheckpointError, ConfigError


def fake_encode(texts):
    """Unit vectors drawn from each text's hash: the same text always gets the same vector, others near-orthogonal."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        v = np.random.default_rng(seed).normal(size=64)
        rows.append(v / np.linalg.norm(v))
    return np.array(rows, dtype=np.float32)


def pairs(n_queries=60, per_query=5, seed=0):
    """(queries, targets, query index per row): each query paired with `per_query` of 20 targets."""
    rng = np.random.default_rng(seed)
    queries, targets, index = [], [], []
    for i in range(n_queries):
        for j in rng.choice(20, size=per_query, replace=False):
            queries.append(f"query {i}")
            targets.append(f"target {j}")
            index.append(i)
    return queries, targets, np.array(index)


def test_a_pair_is_not_its_own_neighbour_once_fitted_elsewhere():
    """Random labels: scoring the records it was fitted on, the neighbour rate reads each row's own label (its nearest
    pair is itself), which is why a run fits on training records and scores only the others; on new queries the
    same labels rank nothing."""
    queries, targets, index = pairs()
    labels = np.random.default_rng(1).integers(0, 2, size=len(queries))
    encoder = PairEncoder.fit(queries, targets, labels, encode=fake_encode)
    assert roc_auc_score(labels, encoder.columns(queries, targets, encode=fake_encode)[:, 1]) > 0.9
    new_q = [q.replace("query", "new query") for q in queries]
    new_labels = np.random.default_rng(2).integers(0, 2, size=len(queries))
    assert abs(roc_auc_score(new_labels, encoder.columns(new_q, targets, encode=fake_encode)[:, 1]) - 0.5) < 0.1


def test_columns_rank_a_label_the_embeddings_carry():
    """A label set by the target alone (half of the targets relevant): both columns rank new queries' pairs."""
    queries, targets, index = pairs(seed=2)
    relevant = {f"target {j}" for j in range(10)}
    labels = np.array([t in relevant for t in targets], dtype=int)
    encoder = PairEncoder.fit(queries, targets, labels, encode=fake_encode)
    new_q, new_t, _ = pairs(n_queries=10, seed=3)
    new_q = [q.replace("query", "new query") for q in new_q]
    new_labels = np.array([t in relevant for t in new_t], dtype=int)
    columns = encoder.columns(new_q, new_t, encode=fake_encode)
    assert columns.shape == (len(new_q), len(COLUMNS)) and columns.dtype == np.float32
    assert roc_auc_score(new_labels, columns[:, 0]) > 0.9 and roc_auc_score(new_labels, columns[:, 1]) > 0.9


def test_fusion_averages_standardised_rankings_on_the_models_scale():
    """Each part counts by its rank on the validation pairs, not its units; a part's scale changes nothing; the
    result keeps the model's mean and is the model's own logit where the columns sit at their means."""
    rng = np.random.default_rng(0)
    logits, columns = rng.normal(1.0, 3.0, size=500), rng.normal(size=(500, 2)) * [10.0, 0.1]
    stats = fusion_stats(logits, columns)
    assert np.allclose([m for m, _ in stats], [logits.mean(), *columns.mean(axis=0)])
    fused = fuse(logits, columns, stats, as_logits=True)
    expected = logits.mean() + logits.std() * np.mean([(logits - logits.mean()) / logits.std(),
                                                       *((columns - columns.mean(0)) / columns.std(0)).T], axis=0)
    assert np.allclose(fused, expected) and np.isclose(fused.mean(), logits.mean())
    rescaled = columns * [0.5, 40.0] + 7.0
    assert np.allclose(fuse(logits, rescaled, fusion_stats(logits, rescaled), as_logits=True), fused)
    at_means = fuse(logits, np.tile(columns.mean(axis=0), (500, 1)), stats, as_logits=True)
    assert np.allclose(at_means, logits.mean() + (logits - logits.mean()) / 3)
    assert np.allclose(fuse(logits, columns, stats), 1 / (1 + np.exp(-fused)))


def test_a_saved_encoder_scores_as_the_fitted_one_and_bad_files_are_refused(tmp_path):
    queries, targets, index = pairs(seed=4)
    labels = np.random.default_rng(5).integers(0, 2, size=len(queries))
    encoder = PairEncoder.fit(queries, targets, labels, encode=fake_encode)
    path = encoder_file(tmp_path, "qc")
    encoder.save(path)
    loaded = PairEncoder.load(path)
    new_q, new_t = ["query 3", "unseen query"], ["target 1", "unseen target"]
    # the bank is kept in float16: the loaded encoder is the saved one exactly, the fitted one to float16 precision
    assert np.array_equal(loaded.columns(new_q, new_t, encode=fake_encode),
                          PairEncoder.load(path).columns(new_q, new_t, encode=fake_encode))
    assert np.allclose(loaded.columns(new_q, new_t, encode=fake_encode),
                       encoder.columns(new_q, new_t, encode=fake_encode), atol=1e-2)
    with pytest.raises(CheckpointError, match=r"encoder-qi.npz is missing"):
        PairEncoder.load(encoder_file(tmp_path, "qi"))
    with np.load(path) as f:
        arrays = dict(f)
    np.savez(tmp_path / "other.npz", **{**arrays, "encoder": np.array("another-encoder")})
    with pytest.raises(CheckpointError, match=r"other.npz: field 'encoder': filled by 'another-encoder'"):
        PairEncoder.load(tmp_path / "other.npz")
    np.savez(tmp_path / "short.npz", **{**arrays, "labels": arrays["labels"][:-1]})
    with pytest.raises(CheckpointError, match=r"short.npz: the saved arrays do not fit together"):
        PairEncoder.load(tmp_path / "short.npz")
    np.savez(tmp_path / "partial.npz", **{k: v for k, v in arrays.items() if k != "coef"})
    with pytest.raises(CheckpointError, match=r"partial.npz: not a saved sentence-encoder state"):
        PairEncoder.load(tmp_path / "partial.npz")


def test_embed_encodes_a_set_of_texts_once_per_cache(tmp_path):
    calls = []

    def counting(texts):
        calls.append(list(texts))
        return fake_encode(texts)

    first = embed(["b", "a", "b"], counting, tmp_path)
    assert sorted(first) == ["a", "b"] and calls == [["a", "b"]]

    def refusing(texts):
        raise AssertionError("encoded again")

    again = embed(["a", "b"], refusing, tmp_path)
    assert all(np.array_equal(first[t], again[t]) for t in "ab")
    known = embed(["a", "c"], counting, None, known={"a": first["a"]})
    assert calls[-1] == ["c"] and np.array_equal(known["a"], first["a"])
    assert ENCODER in str(np.load(next((tmp_path / "encoded").glob("*.npz")))["encoder"])


def test_fit_refuses_one_class():
    queries, targets, _ = pairs(n_queries=4)
    with pytest.raises(ConfigError, match="one class only"):
        PairEncoder.fit(queries, targets, np.ones(len(queries), dtype=int), encode=fake_encode)


def test_a_fused_run_reports_predicts_and_refuses_as_its_folder_says(tiny_backbone, tiny_data, tmp_path):
    """`model.encoder=use` on a joint CV fold (the real encoder), QC fused and QI not (the default
    `model.encoder_tasks`): validation reports QC's fused scores with the model's own AUC beside; best/ keeps QC's
    encoder and validation standardisation; `mtl predict` recomputes the columns and reproduces the fold's
    out-of-fold scores of both tasks; for QC a step checkpoint, its head on QI pairs and `mtl export` are refused; a
    fine-tune's starting folder keeps its task's encoder."""
    import json
    import shutil

    from mtl import stages
    from mtl.config import load_config
    from mtl.data.tasks import load_splits
    from mtl.experiments import RunSpec, evaluate_transfer, finetune_init
    from mtl.export import export_model
    from mtl.model import read_info
    from mtl.predict import predict_file
    from tests.conftest import tiny_overrides, write_jsonl

    stages.run(load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **{
        "log.run_name": "encoder", "cv.fold": "1", "cv.n_folds": 2, "data.dev_limit": 16, "train.mode": "mtl",
        "model.encoder": "use", "train.save_every": 3})))
    fold = tmp_path / "runs" / "encoder"
    info = read_info(fold / "best")
    assert info.encoder == ENCODER and info.encoder_tasks == ["qc"] and list(info.fusion) == ["qc"]
    report = info.metrics["qc"]
    assert report["fusion"] == info.fusion["qc"] and len(info.fusion["qc"]) == len(COLUMNS) + 1
    assert 0 <= report["auc_model"] <= 1 and "auc_model" not in info.metrics["qi"]
    assert PairEncoder.load(encoder_file(fold / "final", "qc")).labels.size > 0
    assert not encoder_file(fold / "best", "qi").exists()
    metrics = [json.loads(line) for line in (fold / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/auc_model/qc" in row for row in metrics)
    cfg = load_config(fold / "config.yaml")
    for task in ("qc", "qi"):
        records = load_splits(cfg, [task])[task].val_all
        source = write_jsonl(tmp_path / f"{task}.txt", records.drop(columns="label").to_dict("records"))
        predict_file(fold / "best", source, tmp_path / f"{task}-out.txt", with_scores=True)
        oof = {r["id"]: r["score"] for r in map(json.loads, (fold / f"oof_{task}.jsonl").read_text().splitlines())}
        predicted = [json.loads(line)["score"] for line in (tmp_path / f"{task}-out.txt").read_text().splitlines()]
        assert predicted == pytest.approx([oof[i] for i in records["id"]], abs=1e-6)
    step = sorted(fold.glob("step-*"))[0]
    assert read_info(step).fusion == {}
    with pytest.raises(CheckpointError, match=r"no fusion statistics for qc in model.json \(a step checkpoint"):
        predict_file(step, tmp_path / "qc.txt", tmp_path / "step.txt")
    with pytest.raises(ConfigError, match=r"fused with a sentence encoder fitted on QC pairs .* scores no QI pairs"):
        predict_file(fold / "best", tmp_path / "qi.txt", tmp_path / "cross.txt", head="qc")
    with pytest.raises(ConfigError, match=r"its QC scores are fused with a sentence encoder's \(model.encoder=use\)"):
        export_model(fold / "best", tmp_path / "export")
    assert not any((tmp_path / name).exists() for name in ("step.txt", "cross.txt", "export"))
    start = finetune_init(tmp_path / "runs", RunSpec("ft-qc", "finetune", source="encoder", task="qc"))
    assert read_info(start).encoder_tasks == ["qc"] and PairEncoder.load(encoder_file(start, "qc")).labels.size
    assert read_info(finetune_init(tmp_path / "runs", RunSpec("ft-qi", "finetune", source="encoder", task="qi"))
                     ).encoder_tasks == []
    single = tmp_path / "single-qc"  # a QC-only run, as the fine-tune's start is: its head transfers to no QI pair
    shutil.copytree(start, single / "best")
    shutil.copy2(fold / "metrics.json", single / "metrics.json")
    with pytest.raises(ConfigError, match=r"zero-shot transfer to the other task is not measured with it"):
        evaluate_transfer(single, "qi", tmp_path / "transfer")

    broken = tmp_path / "broken"
    shutil.copytree(fold / "best", broken)
    encoder_file(broken, "qc").unlink()
    with pytest.raises(CheckpointError, match=r"broken: incomplete model folder, encoder-qc.npz is missing"):
        read_info(broken)
    shutil.copy2(encoder_file(fold / "best", "qc"), encoder_file(broken, "qc"))
    raw = json.loads((broken / "model.json").read_text())
    for change, message in (
            ({"encoder": "another-encoder"}, r"field 'encoder': the model's scores are fused with 'another-encoder'"),
            ({"fusion": {"qc": [[0.0, 1.0]]}}, r"field 'fusion': 'qc' must map"),
            ({"fusion": {"qc": [[0.0, 1.0], [0.0, 0.0], [0.0, 1.0]]}}, r"field 'fusion': 'qc' must map"),
            ({"fusion": {**raw["fusion"], "qi": raw["fusion"]["qc"]}}, r"field 'fusion': 'qi' must map a task of"),
            ({"encoder": None}, r"field 'encoder_tasks': must be some of the trained tasks"),
            ({"encoder_tasks": ["qc", "xx"]}, r"field 'encoder_tasks'")):
        (broken / "model.json").write_text(json.dumps({**raw, **change}))
        with pytest.raises(CheckpointError, match=message):
            read_info(broken)


def test_a_fused_report_is_selected_by_the_models_own_auc():
    from mtl.metrics import selection_score

    fused = {"qc": {"auc": 0.76, "auc_model": 0.70, "f1": 0.8}, "qi": {"auc": 0.70, "f1": 0.6}}
    assert selection_score(fused, "auc") == pytest.approx(0.70) and selection_score(fused, "f1") == pytest.approx(0.7)
