import numpy as np
import pandas as pd
import pytest
import torch

from mtl.config import load_config
from mtl.data.tasks import TaskData, collate
from mtl.model import build_model, build_tokenizer
from mtl.packing import pack, packed_logits
from tests.conftest import tiny_overrides

# Longer than the tiny model's sliding window (32), so a packed pair must see the window on its own positions.
LENGTHS = [5, 40, 63, 12, 33, 7, 1, 20, 31, 9]


def tiny_model(tiny_backbone, tiny_data, root, attn: str = "sdpa", qc_features: int = 3):
    cfg = load_config(None, tiny_overrides(tiny_backbone, tiny_data, root, **{"model.attn_implementation": attn}))
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


def toy_data(task: str, features: int = 0) -> TaskData:
    rng = np.random.default_rng(0)
    ids = [[2] + rng.integers(4, 1000, size=n - 1).tolist() for n in LENGTHS]
    records = pd.DataFrame({"id": range(len(ids)), "label": [i % 2 for i in range(len(ids))], "language": "en"})
    feats = rng.normal(size=(len(ids), features)).astype(np.float32) if features else None
    return TaskData(task, records, ids, feats)


@pytest.mark.parametrize("task", ["qi", "qc"])
def test_packed_logits_equal_padded_logits(model_and_pad, task):
    model, pad_id = model_and_pad
    data = toy_data(task, model.qc_feature_dim if task == "qc" else 0)
    rows = np.array([3, 0, 2, 9, 1, 4, 6, 8, 5, 7])
    batch = collate(data, rows, pad_id)
    packed = pack(data, rows, pad_id, row_length=64)
    assert packed["input_ids"].shape[0] < len(rows)  # several pairs share rows
    with torch.no_grad():
        padded = model(task=task, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       features=batch.get("features"))
        together = packed_logits(model, task, packed)
    torch.testing.assert_close(together, padded, atol=1e-5, rtol=1e-4)


def test_pack_places_every_pair_once_in_balanced_rows():
    data = toy_data("qi")
    rows = np.arange(len(LENGTHS))
    packed = pack(data, rows, pad_id=0, row_length=64)
    assert packed["tokens"] == sum(LENGTHS)
    # 221 tokens make 4 rows of about 64; the 63-token pair sets the width, the rows are balanced around it
    assert packed["input_ids"].shape == (4, 63)
    used = torch.zeros_like(packed["input_ids"])
    for i, row in enumerate(rows):
        r, last = int(packed["row"][i]), int(packed["last"][i])
        n = LENGTHS[row]
        assert packed["input_ids"][r, last - n + 1:last + 1].tolist() == data.input_ids[row]
        assert packed["position_ids"][r, last - n + 1:last + 1].tolist() == list(range(n))
        used[r, last - n + 1:last + 1] += 1
    assert used.max() == 1


def test_packed_training_step_has_finite_gradients(tiny_backbone, tiny_data, tmp_path):
    model, pad_id = tiny_model(tiny_backbone, tiny_data, tmp_path)
    model.train()
    data = toy_data("qi")
    packed = pack(data, np.arange(len(LENGTHS)), pad_id, row_length=64)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(packed_logits(model, "qi", packed), packed["labels"])
    loss.backward()  # rows end in padding: a fully masked padding query would give NaN gradients
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_packing_refuses_a_backbone_without_rotary_positions():
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2Model

    from mtl.model import MultiTaskClassifier

    gpt2 = GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=1000, n_positions=64))  # learned positions
    lora = LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True)
    model = MultiTaskClassifier(get_peft_model(gpt2, lora), 16, "last", 0, 0.0)
    packed = pack(toy_data("qi"), np.arange(3), pad_id=0, row_length=64)
    with pytest.raises(ValueError, match="rotary position embeddings only; GPT2Model"):
        packed_logits(model.eval(), "qi", packed)


def test_the_tiny_gemma3_backbone_counts_as_rotary(model_and_pad):
    from mtl.packing import is_rotary

    assert is_rotary(model_and_pad[0].backbone.get_base_model())
