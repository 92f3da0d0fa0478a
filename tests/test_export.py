import importlib.util
import json
import logging
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from mtl import stages
from mtl.cli import main
from mtl.config import load_config
from mtl.data.pairs import PairTokenizer, build_pairs
from mtl.data.records import TARGET_FIELD, clean_records, read_records
from mtl.data.tasks import collate, make_task_data, qc_features
from mtl.errors import ConfigError
from mtl.export import export_model, save_tokenizer, shifted_threshold
from mtl.model import load_trained
from mtl.predict import predict_file
from mtl.taxonomy import PrefixPriors
from tests.conftest import make_records, tiny_overrides, write_jsonl

SETTINGS = {
    "stock": {"model.head_norm": "false", "taxonomy.features": "none", "model.num_layers": 1},
    "remote": {"model.pooling": "mean", "taxonomy.features": "both"},
}
"""A model the stock classifier computes (last-token pooling, no head norm, no taxonomy features, truncated to one
of the tiny backbone's two layers), and one it cannot (mean pooling, head norm, prior and node features)."""


def randomize(folder, seed: int) -> None:
    """Random LoRA and head weights, non-zero biases and thresholds off 0.5 in a saved model: a few tiny training
    steps leave LoRA B and the heads near zero, where a missed merge, a wrong pooling or a lost bias would hardly
    move a logit."""
    gen = torch.Generator().manual_seed(seed)
    for file in (folder / "adapter" / "adapter_model.safetensors", folder / "heads.safetensors"):
        state = load_file(str(file))
        for key, value in state.items():
            if "lora_" in key or key.endswith("head.weight"):
                state[key] = torch.randn(value.shape, generator=gen) * (0.1 if "lora_" in key else 1.0)
            elif key.endswith("head.bias"):
                state[key] = torch.full_like(value, 1.5 if key.startswith("qc") else -2.0)
        save_file(state, str(file))
    info = json.loads((folder / "model.json").read_text())
    info["thresholds"] = {"qc": 0.35, "qi": 0.6}
    (folder / "model.json").write_text(json.dumps(info))


@pytest.fixture(scope="module")
def models(tiny_backbone, tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    for seed, (name, extra) in enumerate(SETTINGS.items()):
        stages.run(load_config(None, tiny_overrides(tiny_backbone, tiny_data, root, **{
            "log.run_name": name, "train.max_steps": 2, "train.eval_every": 2, **extra})))
        randomize(root / "runs" / name / "best", seed)
    return {name: root / "runs" / name / "best" for name in SETTINGS}


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    summaries = {"stock": export_model(models["stock"], root / "stock"),
                 "remote": export_model(models["remote"], root / "remote", without_taxonomy=True)}
    return root, summaries


@pytest.fixture(scope="module")
def test_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-inputs")
    files = {}
    for task in ("qc", "qi"):
        rows = make_records(task, 48, seed=11, with_label=False)
        rows[0]["origin_query"] = "  RED   Running SHOES  "
        rows[1]["translated_query"] = rows[1]["origin_query"].upper()
        rows[2]["origin_query"] = "\u200b "  # unreadable: mtl predicts 0 without the model
        files[task] = write_jsonl(root / f"test_{task.upper()}.txt", rows)
    return files


def load_preprocess(folder):
    spec = importlib.util.spec_from_file_location(f"preprocess_{abs(hash(str(folder)))}", folder / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def served_logits(folder, path, task, **load):
    """Logits of an exported folder loaded by plain transformers on `preprocess.pair` texts, tokenized by its
    tokenizer (None for pairs mtl does not score), and the rows."""
    raw, _ = read_records(path, task)
    preprocess = load_preprocess(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), **load).eval()
    inputs = [preprocess.pair(q, t, tq) for q, t, tq in
              zip(raw["origin_query"], raw[TARGET_FIELD[task]], raw["translated_query"])]
    readable = [x for x in inputs if x is not None]
    batch = tokenizer([x["text"] for x in readable], [x["text_pair"] for x in readable], padding=True,
                      return_tensors="pt")
    with torch.no_grad():
        logits = iter(model(**batch).logits.squeeze(-1).tolist())
    return [None if x is None else next(logits) for x in inputs], model, inputs


def mtl_logits(model_dir, path, task, features_of: str = "unseen"):
    """mtl's own logits on the readable rows, QC pairs reading the taxonomy features of an unseen path (all zero)
    or, with `features_of="path"`, their own path's as `mtl predict` does."""
    model, pairs, info, cfg = load_trained(model_dir)
    raw, _ = read_records(path, task)
    records, _ = clean_records(raw, cfg.data.clean, cfg.data.lowercase)
    data = make_task_data(records, task, cfg, pairs)
    batch = collate(data, np.arange(len(data)), pairs.pad_id)
    features = None
    if task == "qc" and info.qc_feature_dim:
        priors = PrefixPriors.from_dict(info.priors) if info.priors else None
        features = torch.zeros(len(data), info.qc_feature_dim) if features_of == "unseen" else \
            torch.as_tensor(qc_features(records[TARGET_FIELD["qc"]].tolist(), priors, info.node_index))
    with torch.no_grad():
        return model(task, batch["input_ids"], batch["attention_mask"], features=features).tolist()


@pytest.mark.parametrize("task", ["qc", "qi"])
def test_a_stock_export_predicts_as_mtl_predict_in_plain_transformers(models, exported, test_files, tmp_path, task):
    root, summaries = exported
    folder = root / "stock" / task
    logits, model, _ = served_logits(folder, test_files[task], task)
    assert type(model).__name__ == "Gemma3TextForSequenceClassification"
    assert not (folder / "modeling_mtl.py").exists() and model.config.num_hidden_layers == 1

    predict_file(models["stock"], test_files[task], tmp_path / "submit.txt")
    expected = [json.loads(line)["prediction"] for line in (tmp_path / "submit.txt").read_text().splitlines()]
    threshold = model.config.mtl_threshold
    served = [0 if z is None else int(1 / (1 + math.exp(-z)) >= threshold) for z in logits]
    assert served == expected and 0 < sum(expected) < len(expected) - 1

    bias = model.config.mtl_head_bias
    assert bias == pytest.approx(1.5 if task == "qc" else -2.0)
    assert model.config.mtl_tuned_threshold == (0.35 if task == "qc" else 0.6)
    assert threshold == pytest.approx(shifted_threshold(model.config.mtl_tuned_threshold, bias))
    readable = [z for z in logits if z is not None]
    assert np.allclose(np.add(readable, bias), mtl_logits(models["stock"], test_files[task], task), atol=1e-4)
    assert np.std(readable) > 1


def test_a_stock_export_runs_in_a_text_classification_pipeline(models, exported, test_files):
    folder = exported[0] / "stock" / "qi"
    logits, _, inputs = served_logits(folder, test_files["qi"], "qi")
    classify = pipeline("text-classification", model=str(folder))
    out = classify([x for x in inputs if x is not None][:6])
    assert [o["label"] for o in out] == ["relevant"] * 6
    expected = [1 / (1 + math.exp(-z)) for z in logits if z is not None][:6]
    assert [o["score"] for o in out] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("task", ["qc", "qi"])
def test_a_remote_code_export_gives_mtls_logits(models, exported, test_files, tmp_path, task):
    """Mean pooling and head norm through modeling_mtl.py; QC without taxonomy features scores every path as
    unseen (its features zero), QI as mtl predict does."""
    folder = exported[0] / "remote" / task
    logits, model, _ = served_logits(folder, test_files[task], task, trust_remote_code=True)
    assert type(model).__name__ == "MtlForSequenceClassification" and (folder / "modeling_mtl.py").is_file()
    assert model.config.mtl_head_bias == 0 and model.config.mtl_threshold == (0.35 if task == "qc" else 0.6)
    readable = [z for z in logits if z is not None]
    assert np.allclose(readable, mtl_logits(models["remote"], test_files[task], task), atol=1e-4)
    assert np.std(readable) > 1
    assert model.config.mtl_without_taxonomy == (task == "qc")
    if task == "qi":
        predict_file(models["remote"], test_files[task], tmp_path / "submit.txt")
        expected = [json.loads(line)["prediction"] for line in (tmp_path / "submit.txt").read_text().splitlines()]
        served = [0 if z is None else int(1 / (1 + math.exp(-z)) >= 0.6) for z in logits]
        assert served == expected and 0 < sum(expected)


def test_without_taxonomy_the_qc_export_differs_from_mtl_predict(models, exported, test_files):
    logits, _, _ = served_logits(exported[0] / "remote" / "qc", test_files["qc"], "qc", trust_remote_code=True)
    readable = [z for z in logits if z is not None]
    with_features = mtl_logits(models["remote"], test_files["qc"], "qc", features_of="path")
    assert np.abs(np.subtract(readable, with_features)).max() > 0.1


@pytest.mark.parametrize("task", ["qc", "qi"])
def test_preprocess_renders_and_encodes_as_mtl(models, exported, tmp_path, task):
    """preprocess.py, copied beside the model without mtl, gives mtl's texts, drops and token ids (truncation too)."""
    folder = exported[0] / "stock" / task
    rows = make_records(task, 30, seed=12, with_label=False)
    rows[0]["origin_query"], rows[1]["origin_query"] = "  Sneakers\tNIKE  ", " \u200d"
    rows[2][TARGET_FIELD[task]] = " , ," if task == "qc" else " "
    rows[3][TARGET_FIELD[task]] = ("a, b and c,Dd,  e e " if task == "qc" else "long title " * 60)
    rows[4]["translated_query"] = rows[4]["origin_query"]
    raw, _ = read_records(write_jsonl(tmp_path / "in.txt", rows), task)
    model, pairs, _, cfg = load_trained(models["stock"])
    records, _ = clean_records(raw, cfg.data.clean, cfg.data.lowercase)
    expected = build_pairs(records, task, cfg.augment.translation, cfg.taxonomy.render)
    preprocess = load_preprocess(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    args = list(zip(raw["origin_query"], raw[TARGET_FIELD[task]], raw["translated_query"]))
    texts = [preprocess.pair(*a) for a in args]
    assert [t is not None for t in texts] == raw["id"].isin(records["id"]).tolist()
    assert preprocess.pair("nike shoes", None) is None  # a JSON null: mtl reads it as empty and predicts 0
    kept = [t for t in texts if t is not None]
    assert [t["text"] for t in kept] == expected["text_a"].tolist()
    assert [t["text_pair"] for t in kept] == expected["text_b"].tolist()
    ids = pairs.encode(expected["text_a"].tolist(), expected["text_b"].tolist())
    assert [preprocess.encode(tokenizer, *a) for a in args if preprocess.pair(*a)] == ids
    if task == "qi":
        assert max(map(len, ids)) == cfg.data.max_length
    short = [i for i, row in enumerate(ids) if len(row) < cfg.data.max_length]
    assert [tokenizer(kept[i]["text"], kept[i]["text_pair"])["input_ids"] for i in short] == [ids[i] for i in short]


def test_a_saved_tokenizer_reproduces_the_prompt_template(tiny_backbone, tmp_path):
    pairs = PairTokenizer(AutoTokenizer.from_pretrained(str(tiny_backbone)), "decoder", 96, template="prompt")
    save_tokenizer(pairs, tmp_path)
    a, b = ["zapatos nike: air", "pan"], ["shoes > sneakers", "Tefal pan 24cm\nResult:"]
    assert AutoTokenizer.from_pretrained(str(tmp_path))(a, b)["input_ids"] == pairs.encode(a, b)


def test_a_qc_head_with_taxonomy_features_is_refused_before_the_model_loads(models, tmp_path, monkeypatch):
    monkeypatch.setattr("mtl.export.load_trained", lambda *a, **k: pytest.fail("model loaded first"))
    with pytest.raises(ConfigError, match=r"reads taxonomy features \(taxonomy.features=both\).*--without-taxonomy"):
        export_model(models["remote"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_stock_only_refuses_a_model_the_stock_class_cannot_compute(models, tmp_path, monkeypatch):
    monkeypatch.setattr("mtl.export.load_trained", lambda *a, **k: pytest.fail("model loaded first"))
    with pytest.raises(ConfigError, match=r"model.pooling=mean, model.head_norm=true.*model.head_norm=false"):
        export_model(models["remote"], tmp_path / "out", tasks=["qi"], stock_only=True)
    assert not (tmp_path / "out").exists()


def test_a_remote_code_folder_says_so_where_a_loader_looks(exported):
    folder = exported[0] / "remote" / "qi"
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["MtlForSequenceClassification"]
    assert config["auto_map"] == {"AutoConfig": "modeling_mtl.MtlConfig",
                                  "AutoModelForSequenceClassification": "modeling_mtl.MtlForSequenceClassification"}
    assert "trust_remote_code=True" in (folder / "README.md").read_text()
    # Without trust_remote_code transformers refuses the folder rather than loading a stock class with a random head.
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoModelForSequenceClassification.from_pretrained(str(folder))


def test_export_refuses_bad_paths_naming_them_and_keeps_what_is_there(models, tmp_path, caplog):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with caplog.at_level(logging.ERROR):
        assert main(["export", "--model", str(models["stock"]), "--out", str(taken)]) == 2
        assert main(["export", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
        assert main(["export", "--model", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert f"--out {taken} exists and is not empty" in caplog.text
    assert f"--model {tmp_path / 'nope'}: folder not found" in caplog.text
    assert f"{tmp_path}: not a saved mtl model" in caplog.text
    assert (taken / "keep.txt").read_text() == "mine" and not (tmp_path / "o").exists()


def test_the_export_command_writes_one_task_and_says_what_it_wrote(models, tmp_path, capsys):
    assert main(["export", "--model", str(models["stock"]), "--out", str(tmp_path / "served"), "--task", "qi"]) == 0
    assert sorted(p.name for p in (tmp_path / "served").iterdir()) == ["qi"]
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocess.py", "preprocess.json",
            "README.md"} <= {p.name for p in (tmp_path / "served" / "qi").iterdir()}
    assert f"{tmp_path / 'served' / 'qi'}: QI, stock" in capsys.readouterr().out


@pytest.mark.parametrize("threshold, bias", [(0.35, 1.5), (0.6, -2.0), (0.02, 3.0), (0.97, -1.0)])
def test_the_shifted_threshold_decides_as_mtl_does(threshold, bias):
    logits = np.linspace(-8, 8, 1601)
    mtl = 1 / (1 + np.exp(-(logits + bias))) >= threshold
    served = 1 / (1 + np.exp(-logits)) >= shifted_threshold(threshold, bias)
    near = np.abs(logits + bias - math.log(threshold / (1 - threshold))) < 1e-6
    assert (mtl == served)[~near].all() and mtl.any() and not mtl.all()


def test_the_shifted_threshold_keeps_always_and_never():
    assert shifted_threshold(0.0, 3.0) == 0.0 and shifted_threshold(1.0, -1.0) == 1.0


def test_an_encoder_model_exports_as_remote_code_with_mtls_logits(tiny_data, test_files, tmp_path):
    """A BERT-style backbone (first-token pooling, bidirectional) has no stock pair-classifier mtl can match, so it
    goes out as remote code; its logits and decisions must still be mtl's."""
    from tests.conftest import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "bert")
    stages.run(load_config(None, tiny_overrides(encoder, tiny_data, tmp_path, **{
        "log.run_name": "encoder", "train.max_steps": 2, "train.eval_every": 2, "taxonomy.features": "none",
        "lora.target_modules": "query,key,value,dense"})))
    model_dir = tmp_path / "runs" / "encoder" / "best"
    randomize(model_dir, 3)
    # A random tiny BERT's first token varies little between pairs: thresholds at the mean logit split the decisions.
    info = json.loads((model_dir / "model.json").read_text())
    info["thresholds"] = {task: float(1 / (1 + np.exp(-np.mean(mtl_logits(model_dir, test_files[task], task)))))
                          for task in ("qc", "qi")}
    (model_dir / "model.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="--stock-only"):
        export_model(model_dir, tmp_path / "stock", stock_only=True)
    export_model(model_dir, tmp_path / "served")
    for task in ("qc", "qi"):
        folder = tmp_path / "served" / task
        logits, model, _ = served_logits(folder, test_files[task], task, trust_remote_code=True)
        assert type(model).__name__ == "MtlForSequenceClassification"
        readable = [z for z in logits if z is not None]
        assert np.allclose(readable, mtl_logits(model_dir, test_files[task], task), atol=1e-4)
        predict_file(model_dir, test_files[task], tmp_path / f"submit_{task}.txt")
        expected = [json.loads(line)["prediction"]
                    for line in (tmp_path / f"submit_{task}.txt").read_text().splitlines()]
        threshold = model.config.mtl_threshold
        assert [0 if z is None else int(1 / (1 + math.exp(-z)) >= threshold) for z in logits] == expected
        assert 0 < sum(expected) < len(expected) - 1
