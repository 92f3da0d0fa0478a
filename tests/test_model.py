import pytest
import torch
from safetensors.torch import load_file, save_file

from mtl.backbone import load_backbone
from mtl.config import load_config
from mtl.errors import CheckpointError, ConfigError
from mtl.model import HEAD_PREFIXES, ModelInfo, build_model, build_tokenizer, load_weights, pool, save_model


@pytest.fixture
def cfg(tiny_backbone, tmp_path):
    return load_config(None, [f"model.backbone={tiny_backbone}", "lora.r=4", "lora.alpha=8",
                              f"data.cache_dir={tmp_path}"])


def make_model(cfg, feature_dim=3, seed=0, qi_feature_dim=0):
    pairs, folder = build_tokenizer(cfg)
    torch.manual_seed(seed)
    return build_model(cfg, feature_dim, folder, pairs.arch, qi_feature_dim=qi_feature_dim).eval(), pairs


def batch(pairs, texts, padding_side="right"):
    ids = pairs.encode([t for t, _ in texts], [t for _, t in texts])
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), pairs.pad_id)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        span = slice(0, len(row)) if padding_side == "right" else slice(width - len(row), width)
        input_ids[i, span], mask[i, span] = torch.tensor(row), 1
    return input_ids, mask


def randomise_trainables(model, seed=1):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)


def test_only_lora_and_heads_are_new_weights(cfg, tiny_backbone):
    model, _ = make_model(cfg)
    saved = load_file(str(tiny_backbone / "model.safetensors"))
    base = {n.replace("backbone.base_model.model.", "model.").replace(".base_layer", ""): p
            for n, p in model.named_parameters()}
    new = sorted(n for n in base if n not in saved)
    assert new and all("lora_" in n or n.startswith(HEAD_PREFIXES) for n in new)
    assert {"qc_head.weight", "qi_head.weight"} <= set(new)
    for name, value in saved.items():
        if name in base:
            assert torch.equal(base[name], value), name


def test_frozen_backbone_trainable_adapter_and_heads(cfg):
    model, _ = make_model(cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or n.startswith(HEAD_PREFIXES) for n in trainable)
    assert any("lora_A" in n for n in trainable) and "qc_head.weight" in trainable


def test_a_checkpoint_missing_backbone_weights_is_refused(tiny_backbone, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for file in tiny_backbone.iterdir():
        (broken / file.name).write_bytes(file.read_bytes())
    weights = load_file(str(broken / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if "layers.1." not in k}, str(broken / "model.safetensors"),
              metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="backbone weights are not in the checkpoint"):
        load_backbone(broken, torch.float32)


def test_multimodal_gemma3_checkpoint_loads_its_language_model_only(tmp_path):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextModel

    text = dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=1, head_dim=16, sliding_window=16, layer_types=["sliding_attention", "full_attention"])
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28,
                  patch_size=14)
    multimodal = Gemma3ForConditionalGeneration(Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4))
    multimodal.save_pretrained(str(tmp_path))
    model = load_backbone(tmp_path, torch.float32)
    assert type(model) is Gemma3TextModel
    assert not any("vision" in n for n, _ in model.named_parameters())
    reference = multimodal.model.language_model.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in model.state_dict().items())


def test_forward_routes_each_task_to_its_own_head(cfg):
    model, pairs = make_model(cfg)
    input_ids, mask = batch(pairs, [("pan", "kitchen"), ("shoes", "sneakers red")])
    features = torch.zeros(2, 3)
    qc = model(task="qc", input_ids=input_ids, attention_mask=mask, features=features)
    with torch.no_grad():
        model.qi_head.weight.add_(1.0)
    assert qc.shape == (2,)
    assert torch.equal(qc, model(task="qc", input_ids=input_ids, attention_mask=mask, features=features))
    assert not torch.allclose(model(task="qi", input_ids=input_ids, attention_mask=mask), qc)


def test_qc_head_reads_the_taxonomy_features(cfg):
    model, pairs = make_model(cfg)
    input_ids, mask = batch(pairs, [("pan", "kitchen")])
    a = model(task="qc", input_ids=input_ids, attention_mask=mask, features=torch.zeros(1, 3))
    b = model(task="qc", input_ids=input_ids, attention_mask=mask, features=torch.ones(1, 3))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_padding_does_not_change_logits(cfg, padding_side):
    model, pairs = make_model(cfg)
    randomise_trainables(model)
    texts = [("pan", "kitchen"), ("zapatos nike running", "clothing > shoes > running shoes for men")]
    alone = torch.cat([model(task="qi", input_ids=i, attention_mask=m) for i, m in (batch(pairs, [t]) for t in texts)])
    input_ids, mask = batch(pairs, texts, padding_side)
    assert mask[0].sum() < mask.shape[1]
    torch.testing.assert_close(model(task="qi", input_ids=input_ids, attention_mask=mask), alone, atol=1e-5, rtol=1e-4)


def test_last_token_pooling_picks_the_last_real_token():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]])
    assert pool(hidden, mask, "last").flatten().tolist() == [1.0, 7.0]
    assert pool(hidden, mask, "mean").flatten().tolist() == [0.5, 6.0]


def test_saved_model_loads_back_with_identical_logits(cfg, tmp_path):
    model, pairs = make_model(cfg)
    randomise_trainables(model)
    info = ModelInfo(pairs.fingerprint(), pairs.arch, model.pooling, 64, 3, ["qc", "qi"])
    save_model(model, tmp_path / "saved", cfg, info)
    input_ids, mask = batch(pairs, [("pan", "kitchen"), ("обувь", "shoes")])
    features = torch.rand(2, 3)
    expected = {t: model(task=t, input_ids=input_ids, attention_mask=mask, features=features) for t in ("qc", "qi")}

    fresh, _ = make_model(cfg, seed=123)
    before = fresh(task="qc", input_ids=input_ids, attention_mask=mask, features=features)
    assert not torch.allclose(before, expected["qc"])
    load_weights(fresh, tmp_path / "saved")
    for task in ("qc", "qi"):
        assert torch.equal(fresh(task=task, input_ids=input_ids, attention_mask=mask, features=features), expected[task])


def test_heads_of_another_shape_are_refused(cfg, tmp_path):
    model, pairs = make_model(cfg, feature_dim=3)
    save_model(model, tmp_path / "saved", cfg, ModelInfo(pairs.fingerprint(), "decoder", "last", 64, 3, ["qc"]))
    other, _ = make_model(cfg, feature_dim=0)
    with pytest.raises(CheckpointError, match="qc_head has shape"):
        load_weights(other, tmp_path / "saved")


def test_incomplete_model_folder_is_refused(cfg, tmp_path):
    model, pairs = make_model(cfg)
    save_model(model, tmp_path / "saved", cfg, ModelInfo(pairs.fingerprint(), "decoder", "last", 64, 3, ["qc"]))
    (tmp_path / "saved" / "heads.safetensors").unlink()
    with pytest.raises(CheckpointError, match="heads.safetensors is missing"):
        load_weights(model, tmp_path / "saved")


def test_loss_falls_when_overfitting_32_examples(cfg):
    model, pairs = make_model(cfg, feature_dim=0)
    model.train()
    texts = [(f"query {i}", f"item {i % 7}") for i in range(32)]
    labels = torch.tensor([float(i % 2) for i in range(32)])
    input_ids, mask = batch(pairs, texts)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(task="qi", input_ids=input_ids, attention_mask=mask), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("qi_dim", [0, 5])
def test_mixed_forward_equals_per_task_forward(cfg, qi_dim):
    """With overlap features (qi_dim 5) a QI row reads the first 5 of the batch's 5 feature columns, a QC row 3."""
    model, pairs = make_model(cfg, feature_dim=3, qi_feature_dim=qi_dim)
    randomise_trainables(model)
    texts = [("pan", "kitchen"), ("zapatos nike running", "sneakers red 42"), ("обувь", "shoes"),
             ("flour", "food,grocery,flour, baking and cooking"), ("phone", "smartphone 12")]
    is_qc = torch.tensor([True, False, True, True, False])
    features = torch.rand(len(texts), max(3, qi_dim))
    input_ids, mask = batch(pairs, texts)
    mixed = model.forward_mixed(input_ids, mask, is_qc, features)
    qc_ids, qc_mask = batch(pairs, [t for t, q in zip(texts, is_qc) if q])
    qi_ids, qi_mask = batch(pairs, [t for t, q in zip(texts, is_qc) if not q])
    qc = model(task="qc", input_ids=qc_ids, attention_mask=qc_mask, features=features[is_qc, :3])
    qi = model(task="qi", input_ids=qi_ids, attention_mask=qi_mask, features=features[~is_qc])
    torch.testing.assert_close(mixed[is_qc], qc, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mixed[~is_qc], qi, atol=1e-5, rtol=1e-4)
    # Each task's features reach its own rows only.
    shifted = features.clone()
    shifted[is_qc] += 1
    moved = model.forward_mixed(input_ids, mask, is_qc, shifted)
    assert not torch.allclose(moved[is_qc], mixed[is_qc]) and torch.equal(moved[~is_qc], mixed[~is_qc])
    shifted = features.clone()
    shifted[~is_qc] += 1
    moved = model.forward_mixed(input_ids, mask, is_qc, shifted)
    assert torch.equal(moved[is_qc], mixed[is_qc])
    assert torch.allclose(moved[~is_qc], mixed[~is_qc]) == (qi_dim == 0)


@pytest.mark.parametrize("qi_dim", [0, 5])
def test_predict_probs_mixed_equals_per_task_predictions(cfg, qi_dim):
    import numpy as np
    import pandas as pd

    from mtl.data.tasks import TaskData
    from mtl.evaluate import predict_probs, predict_probs_mixed

    model, pairs = make_model(cfg, feature_dim=3, qi_feature_dim=qi_dim)
    randomise_trainables(model)

    def task_data(task, texts, seed):
        records = pd.DataFrame({"id": range(len(texts)), "label": [i % 2 for i in range(len(texts))],
                                "language": "en"})
        width = 3 if task == "qc" else qi_dim
        features = np.random.default_rng(seed).random((len(texts), width)).astype(np.float32) if width else None
        return TaskData(task, records, pairs.encode([q for q, _ in texts], [t for _, t in texts]), features)

    data = {"qc": task_data("qc", [("pan", "home & garden,kitchen,cookware"), ("shoes", "food,grocery"),
                                   ("zapatos nike running rojo", "clothing, shoes & accessories,shoes,running")], 0),
            "qi": task_data("qi", [("phone", "smartphone 12"), ("мука", "flour 1kg bag"), ("pan", "frying pan")],
                            1)}
    mixed = predict_probs_mixed(model, data, pairs.pad_id, batch_size=4, progress=False)
    for task, one in data.items():
        np.testing.assert_allclose(mixed[task], predict_probs(model, one, pairs.pad_id, 4, progress=False), atol=1e-6)


def test_predict_probs_scores_a_querys_pairs_as_prefix_tree_rows_with_padded_batches_results(cfg, monkeypatch):
    import numpy as np
    import pandas as pd

    from mtl import evaluate
    from mtl.data.tasks import TaskData
    from mtl.packing import pack

    model, pairs = make_model(cfg, feature_dim=3)
    randomise_trainables(model)
    texts = [("pan", "frying pan 28cm"), ("zapatos nike", "nike running shoe"), ("pan", "home & garden,kitchen"),
             ("мука", "flour 1kg bag"), ("zapatos nike", "red sneakers"), ("pan", "bread pan"), ("phone", "case")]
    records = pd.DataFrame({"id": range(len(texts)), "label": [i % 2 for i in range(len(texts))], "language": "en"})
    features = np.random.default_rng(0).random((len(texts), 3)).astype(np.float32)
    data = TaskData("qc", records, pairs.encode([q for q, _ in texts], [t for _, t in texts]), features,
                    queries=pd.factorize(pd.Series([q for q, _ in texts]))[0])
    packed = []
    monkeypatch.setattr(evaluate, "pack", lambda *args, **kw: packed.append(pack(*args, **kw)) or packed[-1])
    trees = evaluate.predict_probs(model, data, pairs.pad_id, 4, progress=False, row_tokens=24)
    assert packed and sum(b["computed"] for b in packed) < sum(b["tokens"] for b in packed), "queries computed once"
    monkeypatch.setattr(evaluate, "why_not_packable", lambda model: "padded batches for comparison")
    padded = evaluate.predict_probs(model, data, pairs.pad_id, 4, progress=False)
    np.testing.assert_allclose(trees, padded, atol=1e-6)


def test_num_layers_keeps_the_first_layers_of_the_checkpoint(cfg, tiny_backbone):
    cfg.model.num_layers = 1
    model, _ = make_model(cfg)
    base = model.backbone.get_base_model()
    assert len(base.layers) == 1 and base.config.num_hidden_layers == 1 and base.config.layer_types == ["sliding_attention"]
    saved = load_file(str(tiny_backbone / "model.safetensors"))
    torch.testing.assert_close(base.layers[0].self_attn.q_proj.base_layer.weight,
                               saved["model.layers.0.self_attn.q_proj.weight"])
    cfg.model.num_layers = 3
    with pytest.raises(ConfigError, match="has only 2 layers"):
        make_model(cfg)


def test_a_warm_start_maps_node_embeddings_by_node_name():
    from mtl.model import remap_nodes

    saved = torch.arange(4 * 2, dtype=torch.float32).reshape(4, 2)  # padding, a, a>b, c
    fresh = torch.full((4, 2), -1.0)  # padding, a, a>x, c: another tree's numbering
    out = remap_nodes(saved, ["a", "a>b", "c"], ["a", "a>x", "c"], fresh)
    assert out.tolist() == [[-1.0, -1.0], [2.0, 3.0], [-1.0, -1.0], [6.0, 7.0]]
    assert remap_nodes(saved, ["a", "c", "d"], ["d", "c", "a"], fresh).tolist() == [
        [-1.0, -1.0], [6.0, 7.0], [4.0, 5.0], [2.0, 3.0]]


def planted_pairs(task: str, n: int = 120, features: int = 0):
    """Random token pairs whose label is whether token 7 follows the first: a frozen random backbone's pooled
    vectors carry it, so a linear probe separates the classes."""
    import numpy as np
    import pandas as pd

    from mtl.data.tasks import TaskData

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    ids = [[2] + ([7] if y else [8]) + rng.integers(10, 500, size=int(rng.integers(3, 12))).tolist() + [1]
           for y in labels]
    records = pd.DataFrame({"id": range(n), "label": labels, "language": "en"})
    feats = rng.normal(size=(n, features)).astype(np.float32) if features else None
    return TaskData(task, records, ids, feats)


def test_probed_heads_hold_the_logistic_regression_of_their_inputs(cfg):
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from mtl.evaluate import predict_probs

    model, pairs = make_model(cfg, feature_dim=3)
    data = {"qc": planted_pairs("qc", n=240, features=3), "qi": planted_pairs("qi", n=240)}
    model.train()
    fit = model.probe_heads(data, pairs.pad_id, pairs=120, seed=0)
    assert model.training, "the model goes back to training mode"
    fitted = np.random.default_rng(0).choice(240, size=120, replace=False)  # the probe's draw
    unseen = np.setdiff1d(np.arange(240), fitted)
    for task in ("qc", "qi"):
        assert set(fit) == {"qc", "qi"} and model.head(task).weight.abs().sum() > 0
        # the head now ranks pairs the probe never saw by the planted token, read from the untrained backbone
        logits = predict_probs(model, data[task], pairs.pad_id, 32, as_logits=True, progress=False)
        assert roc_auc_score(data[task].labels[unseen], logits[unseen]) > 0.85


def test_head_inputs_keep_the_rows_order_and_the_probe_reports_held_out_auc(cfg):
    """head_inputs batches rows by length but returns them in the order asked; the probe's reported AUC is its
    cross-validation's, so on labels that carry nothing it is near chance, not the in-sample fit of 120 vectors."""
    import numpy as np

    model, pairs = make_model(cfg, feature_dim=0)
    data = planted_pairs("qi", n=160)
    rows = np.array([5, 150, 3, 77, 0, 42])
    together = model.head_inputs("qi", data, rows, pairs.pad_id, batch_size=4)
    one_by_one = np.vstack([model.head_inputs("qi", data, rows[i:i + 1], pairs.pad_id) for i in range(len(rows))])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)
    assert not np.allclose(together[0], together[1])

    data.records["label"] = np.random.default_rng(1).permutation(data.labels)
    fit = model.probe_heads({"qi": data}, pairs.pad_id, pairs=120, seed=0)
    assert fit["qi"] < 0.7


def test_a_balanced_probe_starts_near_even_odds_where_a_plain_one_starts_near_the_positive_rate(cfg):
    import numpy as np

    from mtl.evaluate import predict_probs

    model, pairs = make_model(cfg, feature_dim=0)
    data = planted_pairs("qi", n=240)
    labels = data.labels.copy()
    labels[np.flatnonzero(labels == 0)[::3][:60]] = 1  # mostly positive, still carrying the planted token
    data.records["label"] = labels
    means = {}
    for balanced in (False, True):
        model.probe_heads({"qi": data}, pairs.pad_id, pairs=240, seed=0, balanced=balanced)
        means[balanced] = predict_probs(model, data, pairs.pad_id, 32, progress=False).mean()
    assert labels.mean() > 0.6
    assert means[False] == pytest.approx(labels.mean(), abs=0.05)
    assert means[True] == pytest.approx(0.5, abs=0.08)


def test_a_probe_on_one_class_is_refused(cfg):
    model, pairs = make_model(cfg, feature_dim=0)
    data = planted_pairs("qi")
    data.records["label"] = 1
    with pytest.raises(ConfigError, match="fewer than 3 of one class"):
        model.probe_heads({"qi": data}, pairs.pad_id, pairs=50, seed=0)


def test_a_qi_head_with_overlap_features_reads_them_from_its_own_pairs_and_from_qc_pairs_zero_shot(cfg):
    """QI pairs bring their overlap features (and are refused without them: zeros are no neutral value there); QC
    pairs scored by the QI head read the overlap of query and category path; a QC head on QI pairs reads zeros."""
    import numpy as np
    import pandas as pd

    from mtl.data.tasks import TaskData, qi_features
    from mtl.evaluate import predict_probs
    from mtl.overlap import overlap_features

    model, pairs = make_model(cfg, feature_dim=3, qi_feature_dim=5)
    randomise_trainables(model)
    texts = [("frying pan", "home & garden,kitchen,cookware,pans"), ("drill", "tools,power tools,drills"),
             ("zapatos", "shoes,women's shoes")]
    records = pd.DataFrame({"id": range(3), "label": [1, 0, 1], "language": "en",
                            "origin_query": [q for q, _ in texts], "category_path": [t for _, t in texts],
                            "item_title": [t for _, t in texts]})
    ids = pairs.encode([q for q, _ in texts], [t for _, t in texts])
    expected = overlap_features(records["origin_query"], records["category_path"])
    assert expected[:, 1].any()  # "pan" begins "pans", "drill" "drills"
    np.testing.assert_array_equal(qi_features(records, "qc"), expected)
    input_ids, mask = batch(pairs, texts)
    direct = torch.sigmoid(model(task="qi", input_ids=input_ids, attention_mask=mask,
                                 features=torch.as_tensor(expected))).detach().numpy()
    qc_pairs = TaskData("qc", records, ids, np.random.default_rng(0).random((3, 3)).astype(np.float32))
    np.testing.assert_allclose(predict_probs(model, qc_pairs, pairs.pad_id, 8, head="qi", progress=False), direct,
                               atol=1e-6)
    qi_pairs = TaskData("qi", records, ids, expected)
    np.testing.assert_allclose(predict_probs(model, qi_pairs, pairs.pad_id, 8, progress=False), direct, atol=1e-6)
    with pytest.raises(ValueError, match="qi_head reads word-overlap features and these QI pairs have none"):
        predict_probs(model, TaskData("qi", records, ids), pairs.pad_id, 8, progress=False)
    zeros = torch.sigmoid(model(task="qc", input_ids=input_ids, attention_mask=mask,
                                features=torch.zeros(3, 3))).detach().numpy()
    np.testing.assert_allclose(predict_probs(model, qi_pairs, pairs.pad_id, 8, head="qc", progress=False), zeros,
                               atol=1e-6)
