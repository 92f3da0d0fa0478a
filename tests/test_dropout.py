import pytest
import torch
from torch import nn

from mtl.config import load_config
from mtl.dropout import BitsDropout, keep_mask, use_bits_dropout
from mtl.model import build_model, build_tokenizer


def test_each_of_the_four_lanes_of_a_word_drops_at_rate_p():
    torch.manual_seed(0)
    lanes = keep_mask(torch.Size([400_000]), round(0.1 * 65536)).view(-1, 4)
    dropped = 1 - lanes.float().mean(dim=0)  # one rate per 16-bit lane of the 64-bit draws
    assert torch.allclose(dropped, torch.full((4,), 0.1), atol=0.003), dropped


def test_masks_are_independent_of_each_other():
    torch.manual_seed(0)
    first, second = (keep_mask(torch.Size([200_000]), 32768) for _ in range(2))
    assert not torch.equal(first, second)
    both = (~first & ~second).float().mean()
    assert abs(both.item() - 0.25) < 0.005


def test_output_expectation_is_the_input_and_kept_values_are_scaled():
    torch.manual_seed(0)
    dropout = BitsDropout(0.3).train()
    x = torch.full((1000, 500), 2.0)
    y = dropout(x)
    kept = y != 0
    assert torch.allclose(y[kept], torch.tensor(2.0 * 65536 / (65536 - round(0.3 * 65536))))
    assert abs(y.mean().item() - 2.0) < 0.01


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(0)
    x = torch.randn(64, 32, requires_grad=True)
    y = BitsDropout(0.5).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.where(y != 0, torch.tensor(2.0), torch.tensor(0.0)))


def test_eval_mode_and_zero_p_return_the_input_itself():
    x = torch.randn(8, 8)
    assert BitsDropout(0.5).eval()(x) is x
    assert BitsDropout(0.0).train()(x) is x


def test_same_seed_same_mask():
    x = torch.ones(100, 100)
    masks = []
    for _ in range(2):
        torch.manual_seed(7)
        masks.append(BitsDropout(0.2).train()(x))
    assert torch.equal(*masks)


def test_bad_probability_is_refused():
    with pytest.raises(ValueError, match="\\[0, 1\\)"):
        BitsDropout(1.0)


@pytest.mark.parametrize("fast", [True, False])
def test_build_model_swaps_every_lora_dropout_only_when_asked(tiny_backbone, tmp_path, fast):
    cfg = load_config(None, [f"model.backbone={tiny_backbone}", "lora.r=4", "lora.dropout=0.1",
                             f"lora.fast_dropout={str(fast).lower()}", f"data.cache_dir={tmp_path}"])
    pairs, folder = build_tokenizer(cfg)
    model = build_model(cfg, 0, folder, pairs.arch)
    dropouts = [d for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), nn.ModuleDict)
                for d in m.lora_dropout.values()]
    assert len(dropouts) == 2 * 7  # two layers, seven projections
    assert all(type(d) is (BitsDropout if fast else nn.Dropout) and d.p == 0.1 for d in dropouts)


def test_swap_skips_modules_without_dropout():
    model = nn.Sequential(nn.Linear(2, 2))
    model.lora_dropout = nn.ModuleDict({"default": nn.Identity()})
    assert use_bits_dropout(model) == 0


def test_off_cpu_it_is_torch_dropout(monkeypatch):
    import mtl.dropout

    monkeypatch.setattr(mtl.dropout, "keep_mask", lambda *a: pytest.fail("16-bit masks drawn off CPU"))
    x = torch.empty(4, 8, device="meta")
    y = BitsDropout(0.2).train()(x)
    assert y.device.type == "meta" and y.shape == x.shape
