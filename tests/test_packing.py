import numpy as np
import pandas as pd
import pytest
import torch

from mtl.config import load_config
from mtl.data.tasks import TaskData, collate
from mtl.errors import ConfigError
from mtl.model import build_model, build_tokenizer
from mtl.packing import pack, resolve_batching
from tests.conftest import tiny_overrides


def tiny_model(tiny_backbone, tiny_data, root, attn: str = "sdpa", qc_features: int = 3, **extra):
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, root, **{"model.attn_implementation": attn,
                                                                              **extra}))
    pairs, folder = build_tokenizer(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, qc_features, folder, pairs.arch).eval()
    with torch.no_grad():  # LoRA B starts at zero: make the adapter take part in what is compared
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)
    return model, pairs.pad_id


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def model_and_pad(request, tiny_backbone, tiny_data, tmp_path_factory):
    return tiny_model(tiny_backbone, tiny_data, tmp_path_factory.mktemp("packing"), request.param)


def shared_prefix_data(task: str, features: int = 0) -> TaskData:
    """Pairs `<bos> query 3 target`: 4 queries of 1-4 targets, a duplicated pair, and a query longer than the tiny
    model's sliding window (32), so shared positions must respect the window."""
    rng = np.random.default_rng(0)
    ids = []
    for query_length, n_targets in [(5, 3), (40, 2), (3, 1), (12, 4)]:
        query = [2] + rng.integers(4, 1000, size=query_length).tolist() + [3]
        common_start = rng.integers(4, 1000, size=2).tolist()  # targets that begin alike share more than the query
        for t in range(n_targets):
            start = common_start if t % 2 else []
            ids.append(query + start + rng.integers(4, 1000, size=int(rng.integers(1, 30))).tolist() + [1])
    ids.append(list(ids[1]))
    records = pd.DataFrame({"id": range(len(ids)), "label": [i % 2 for i in range(len(ids))], "language": "en"})
    feats = rng.normal(size=(len(ids), features)).astype(np.float32) if features else None
    return TaskData(task, records, ids, feats)


def tree_inputs(batch: dict) -> dict:
    return {k: batch[k] for k in ("input_ids", "position_ids", "subtree_end", "pool_at", "features") if k in batch}


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("task", ["qi", "qc"])
def test_prefix_tree_rows_give_the_logits_of_padded_pairs(model_and_pad, task, pooling, monkeypatch):
    model, pad_id = model_and_pad
    monkeypatch.setattr(model, "pooling", pooling)  # mean: each pair averages its own path of the tree
    data = shared_prefix_data(task, model.qc_feature_dim if task == "qc" else 0)
    rows = np.random.default_rng(1).permutation(len(data))
    batch = collate(data, rows, pad_id)
    packed = pack(data, rows, pad_id, row_tokens=64)
    assert packed["input_ids"].shape[0] > 1 and packed["computed"] < packed["tokens"]
    with torch.no_grad():
        padded = model(task=task, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       features=batch.get("features"))
        together = model(task=task, **tree_inputs(packed))
    torch.testing.assert_close(together, padded, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("task", ["qi", "qc"])
def test_packed_rows_give_the_logits_of_each_pair_scored_alone(model_and_pad, task, pooling, monkeypatch):
    model, pad_id = model_and_pad
    monkeypatch.setattr(model, "pooling", pooling)  # mean: each pair averages its own chain
    data = shared_prefix_data(task, model.qc_feature_dim if task == "qc" else 0)
    rows = np.random.default_rng(1).permutation(len(data))
    packed = pack(data, rows, pad_id, row_tokens=64, share=False)
    assert packed["input_ids"].shape[0] > 1 and packed["computed"] == packed["tokens"]
    assert max(map(len, data.input_ids)) > 32  # longer than the tiny model's sliding window
    with torch.no_grad():
        together = model(task=task, **tree_inputs(packed))
        alone = torch.cat([model(task=task, input_ids=torch.tensor([data.input_ids[r]]),
                                 attention_mask=torch.ones(1, len(data.input_ids[r]), dtype=torch.long),
                                 features=None if data.features is None else torch.tensor(data.features[r:r + 1]))
                           for r in rows])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_packed_rows_hold_each_pair_whole_with_positions_restarting_and_nothing_merged():
    data = shared_prefix_data("qi")
    rows = np.arange(len(data))
    packed = pack(data, rows, pad_id=0, row_tokens=64, share=False)
    node = torch.arange(packed["input_ids"].shape[1])
    for i, row in enumerate(rows):
        r, last = packed["pool_at"][i].tolist()
        first = last + 1 - len(data.input_ids[row])
        mine = (node <= last) & (last < packed["subtree_end"][r])  # the mask row of the pair's last token
        assert mine.nonzero().flatten().tolist() == list(range(first, last + 1))  # its own chain, nothing else
        assert packed["input_ids"][r, first:last + 1].tolist() == data.input_ids[row]
        assert packed["position_ids"][r, first:last + 1].tolist() == list(range(len(data.input_ids[row])))
        assert (packed["subtree_end"][r, first:last + 1] == last + 1).all()  # block-diagonal: the chain's end
    assert packed["computed"] == packed["tokens"] == sum(packed["used"]) == sum(map(len, data.input_ids))
    assert packed["input_ids"].shape[0] == -(-packed["tokens"] // 64)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("share", [True, False])
def test_flex_attention_block_masks_give_the_logits_of_padded_pairs(tiny_backbone, tiny_data, tmp_path, share,
                                                                    monkeypatch):
    """Checks the `BlockMask`s (`flex_masks`) on CPU, where torch runs flex attention forward only. transformers
    compiles flex attention, which takes minutes per row width on CPU: the test runs torch's uncompiled flex
    attention, the same computation."""
    from torch.nn.attention import flex_attention as torch_flex
    from transformers.integrations import flex_attention as hf_flex

    monkeypatch.setattr(hf_flex, "compile_friendly_flex_attention",
                        lambda q, k, v, training=False, **kwargs: torch_flex.flex_attention(q, k, v, **kwargs))
    flex, pad_id = tiny_model(tiny_backbone, tiny_data, tmp_path / "flex", "flex_attention")
    sdpa, _ = tiny_model(tiny_backbone, tiny_data, tmp_path / "sdpa")  # the same seed: the same weights
    batching = "shared" if share else "packed"
    assert resolve_batching(batching, flex) == batching
    data = shared_prefix_data("qi")
    rows = np.random.default_rng(1).permutation(len(data))
    batch = collate(data, rows, pad_id)
    packed = pack(data, rows, pad_id, row_tokens=64, share=share)
    with torch.no_grad():
        padded = sdpa(task="qi", input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        together = flex(task="qi", **tree_inputs(packed))
    torch.testing.assert_close(together, padded, atol=1e-5, rtol=1e-4)


def test_flex_attention_training_is_refused_without_cuda(tiny_backbone, tiny_data, tmp_path):
    from mtl import stages

    if torch.cuda.is_available():
        pytest.skip("flex attention trains on CUDA")
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path,
                                           **{"model.attn_implementation": "flex_attention"}))
    with pytest.raises(ConfigError, match="flex_attention trains on CUDA only"):
        stages.run(cfg)
    assert not (tmp_path / "runs").exists()


def test_each_pair_sees_exactly_its_own_tokens_at_its_own_positions():
    data = shared_prefix_data("qi")
    rows = np.arange(len(data))
    packed = pack(data, rows, pad_id=0, row_tokens=64)
    node = torch.arange(packed["input_ids"].shape[1])
    for i, row in enumerate(rows):
        r, last = packed["pool_at"][i].tolist()
        ancestors = (node <= last) & (last < packed["subtree_end"][r])  # the mask row of the pair's last token
        assert packed["input_ids"][r, ancestors].tolist() == data.input_ids[row]
        assert packed["position_ids"][r, ancestors].tolist() == list(range(len(data.input_ids[row])))


def test_shared_prefixes_are_computed_once():
    ids = [[2, 5, 6, 7, 8], [2, 5, 6, 9], [2, 5, 6, 9], [2, 10]]  # a duplicate, and a pair sharing only <bos>
    data = TaskData("qi", pd.DataFrame({"id": range(4), "label": [0, 1, 0, 1], "language": "en"}), ids)
    packed = pack(data, np.array([3, 0, 2, 1]), pad_id=0, row_tokens=100)
    assert packed["tokens"] == 15 and packed["computed"] == 7  # nodes 2 5 6 7 8 9 10
    assert packed["input_ids"].tolist() == [[2, 5, 6, 7, 8, 9, 10]]
    assert packed["position_ids"].tolist() == [[0, 1, 2, 3, 4, 3, 1]]
    assert packed["subtree_end"].tolist() == [[7, 6, 6, 5, 5, 6, 7]]
    assert packed["pool_at"][:, 1].tolist() == [6, 4, 5, 5]  # in the order the rows were given
    assert packed["labels"].tolist() == [1, 0, 0, 1]


def test_rows_are_balanced_and_hold_every_pair_once():
    rng = np.random.default_rng(0)
    ids = [[2] + rng.integers(4, 1000, size=int(n)).tolist() for n in rng.integers(5, 40, size=40)]
    data = TaskData("qi", pd.DataFrame({"id": range(40), "label": 0, "language": "en"}), ids)
    packed = pack(data, np.arange(40), pad_id=0, row_tokens=128)
    n_rows, width = packed["input_ids"].shape
    assert n_rows == -(-(sum(map(len, ids)) - 39) // 128)  # rows share only <bos>: one per row
    assert len(set(map(tuple, packed["pool_at"].tolist()))) == 40
    assert 1 - packed["computed"] / (n_rows * width) < 0.1  # longest first onto the least-filled row


def test_a_prompt_every_pair_opens_with_does_not_put_a_batch_in_one_row():
    """With `data.template=prompt` every pair shares `<bos>` and the prompt's first words: rows still hold about
    `row_tokens` nodes, each computing the prompt once, and pairs sharing more than it (a query) stay together."""
    rng = np.random.default_rng(0)
    prompt = [2, 11, 12, 13]
    ids = [prompt + rng.integers(20, 1000, size=int(n)).tolist() for n in rng.integers(5, 40, size=40)]
    ids += [prompt + [14, 15, 16, 17, 18, 19, 500 + k] for k in range(3)]  # one query, three titles
    data = TaskData("qi", pd.DataFrame({"id": range(43), "label": 0, "language": "en"}), ids)
    assert data.shared_prefix == len(prompt)
    packed = pack(data, np.arange(43), pad_id=0, row_tokens=128)
    n_rows = packed["input_ids"].shape[0]
    assert n_rows == -(-(sum(map(len, ids)) - 42 * len(prompt) - 2 * 6) // 128) > 1
    assert len({packed["pool_at"][i, 0].item() for i in (40, 41, 42)}) == 1
    assert packed["computed"] == sum(map(len, ids)) - (43 - n_rows) * len(prompt) - 2 * 6


def test_a_training_step_on_rows_ending_in_padding_has_finite_gradients(tiny_backbone, tiny_data, tmp_path):
    model, pad_id = tiny_model(tiny_backbone, tiny_data, tmp_path)
    model.train()
    data = shared_prefix_data("qi")
    packed = pack(data, np.arange(len(data)), pad_id, row_tokens=64)
    assert (packed["input_ids"] == pad_id).any()
    logits = model(task="qi", **tree_inputs(packed))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, packed["labels"]).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)  # a fully masked padding row would give NaN


def test_auto_batching_falls_back_to_buckets_where_shared_rows_are_refused():
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2Model

    from mtl.model import MultiTaskClassifier

    gpt2 = GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=1000, n_positions=64))  # learned positions
    lora = LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True)
    model = MultiTaskClassifier(get_peft_model(gpt2, lora), 16, "last", 0, 0.0)
    with pytest.raises(ConfigError, match="rotary position embeddings only; GPT2Model"):
        resolve_batching("shared", model)
    assert resolve_batching("auto", model) == "bucket"


def test_auto_batching_shares_prefixes_on_a_rotary_decoder(model_and_pad, monkeypatch):
    assert resolve_batching("auto", model_and_pad[0]) == "shared"
    monkeypatch.setattr(model_and_pad[0], "pooling", "mean")
    assert resolve_batching("auto", model_and_pad[0]) == "shared"
    monkeypatch.setattr(model_and_pad[0], "arch", "encoder")  # bidirectional: a shared node differs per pair
    assert resolve_batching("auto", model_and_pad[0]) == "bucket"


def test_auto_batching_falls_back_to_buckets_with_flash_attention(model_and_pad, monkeypatch):
    model = model_and_pad[0]
    monkeypatch.setattr(model.backbone.get_base_model().config, "_attn_implementation", "flash_attention_2")
    assert resolve_batching("auto", model) == "bucket"
    for batching in ("shared", "packed"):
        with pytest.raises(ConfigError, match=f"train.batching={batching} needs sdpa, eager or flex"):
            resolve_batching(batching, model)


@pytest.mark.parametrize("change", [("pooling", "first"), ("arch", "encoder")])
def test_packed_batching_is_refused_where_packed_rows_would_not_give_the_logits_of_pairs_alone(model_and_pad,
                                                                                               monkeypatch, change):
    """An encoder's tokens see later tokens (a block-diagonal causal mask is not its attention), and first-token
    pooling is an encoder's."""
    monkeypatch.setattr(model_and_pad[0], *change)
    with pytest.raises(ConfigError, match="train.batching=packed needs a decoder pooling its last token or its mean"):
        resolve_batching("packed", model_and_pad[0])
    assert resolve_batching("bucket", model_and_pad[0]) == "bucket"


@pytest.mark.parametrize("batching", ["packed", "shared"])
def test_a_training_step_on_tree_rows_matches_the_bucket_step_and_counts_what_it_computed(tiny_backbone, tiny_data,
                                                                                          tmp_path, batching):
    """The same pairs, weights and optimizer: the same loss and update; the trainer's counters (`COUNTS`) hold
    the pairs' tokens, the nodes computed (packed: every token, shared: fewer), the row slots, and the query-key
    pairs (packed: exactly the padded batch's, each pair alone)."""
    from mtl.optim import build_optimizer
    from mtl.train import TrainState, build_accelerator, train_step

    no_dropout = {"lora.dropout": 0.0, "model.head_dropout": 0.0}
    overrides = {"train.row_tokens": 64, **no_dropout}
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, tmp_path, **overrides))
    data = shared_prefix_data("qi")
    rows = np.random.default_rng(2).permutation(len(data))
    steps = {}
    for b in (batching, "bucket"):
        model, pad_id = tiny_model(tiny_backbone, tiny_data, tmp_path / b, **no_dropout)  # the same weights
        model.train()
        accelerator = build_accelerator(cfg)
        optimizer = build_optimizer(model, cfg.train.lr, cfg.train.head_lr, cfg.train.weight_decay)
        model, optimizer = accelerator.prepare(model, optimizer)
        loss, counts = train_step(model, data, [rows], optimizer, accelerator, cfg, TrainState(), pad_id, b, (True, 32))
        lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        steps[b] = loss, counts, lora
    (loss, counts, lora), (bucket_loss, bucket_counts, bucket_lora) = steps[batching], steps["bucket"]
    assert loss == pytest.approx(bucket_loss, rel=1e-5)
    for name, weight in lora.items():
        torch.testing.assert_close(weight, bucket_lora[name], atol=1e-6, rtol=1e-4)
    tokens = sum(len(data.input_ids[r]) for r in rows)
    assert counts["pairs"] == bucket_counts["pairs"] == len(rows)
    assert counts["tokens"] == bucket_counts["tokens"] == tokens
    layout = pack(data, rows, 0, 64, share=batching == "shared")
    assert counts["slots"] == layout["input_ids"].numel() < bucket_counts["slots"]
    if batching == "packed":
        assert counts["computed"] == tokens
        assert (counts["full_pairs"], counts["sliding_pairs"]) == (bucket_counts["full_pairs"],
                                                                   bucket_counts["sliding_pairs"])
    else:
        assert counts["computed"] == layout["computed"] < tokens and counts["full_pairs"] < bucket_counts["full_pairs"]


def test_the_tiny_gemma3_backbone_counts_as_rotary(model_and_pad):
    from mtl.packing import is_rotary

    assert is_rotary(model_and_pad[0].backbone.get_base_model())
