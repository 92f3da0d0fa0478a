"""The memory planner on the committed Gemma-3 shapes: parameter counts, sharding, checkpointing, the fit."""

import json
from pathlib import Path

import pytest

from mtl.cli import main
from mtl.config import load_config
from mtl.errors import ConfigError
from mtl.plan import GIB, Shape, count_parameters, plan

SHAPES = Path(__file__).resolve().parents[1] / "configs" / "shapes"
B12 = Shape.read(SHAPES / "gemma3-12b.json")


def test_the_shapes_give_the_released_parameter_counts():
    assert count_parameters(Shape.read(SHAPES / "gemma3-1b.json")) == 999_885_952
    assert count_parameters(B12) == 11_766_034_176


def test_zero_stages_shard_what_they_should():
    cfg = load_config(None, ["model.dtype=bfloat16"])
    ddp, zero2, zero3 = (plan(cfg, B12, 4, 80, zero=z)["bytes"] for z in (0, 2, 3))
    assert ddp["frozen weights"] == zero2["frozen weights"] == 4 * zero3["frozen weights"] == 2 * count_parameters(B12)
    assert ddp["optimizer states"] == 4 * zero2["optimizer states"] == 4 * zero3["optimizer states"]
    assert ddp["gradients"] == 4 * zero2["gradients"]
    assert ddp["activations"] == zero3["activations"]  # data parallel: each GPU its own micro-batch


def test_only_the_trainable_parameters_carry_gradients_and_adam_states():
    result = plan(load_config(None, ["lora.r=16"]), B12, 1, 80, zero=0)
    lora = 48 * 16 * ((3840 + 4096) * 2 + (3840 + 2048) * 2 + (3840 + 15360) * 3)
    assert result["parameters"]["trainable"] - lora < 50_000  # the two heads and their norms
    assert result["bytes"]["optimizer states"] == 8 * result["parameters"]["trainable"]


def test_checkpointing_and_the_largest_micro_batch():
    base = ["model.dtype=bfloat16", "data.max_length=128"]
    full = plan(load_config(None, base + ["model.gradient_checkpointing=false"]), B12, 1, 80, zero=0)
    kept = plan(load_config(None, base + ["model.gradient_checkpointing=true"]), B12, 1, 80, zero=0)
    assert kept["activation_bytes_per_sample"] < full["activation_bytes_per_sample"] / 10
    largest = full["largest_micro_batch"]
    at = plan(load_config(None, base + ["model.gradient_checkpointing=false", f"train.micro_batch_size={largest}",
                                        f"train.global_batch_size={largest}"]), B12, 1, 80, zero=0)
    over = plan(load_config(None, base + ["model.gradient_checkpointing=false", f"train.micro_batch_size={largest + 1}",
                                          f"train.global_batch_size={largest + 1}"]), B12, 1, 80, zero=0)
    assert at["fits"] and not over["fits"] and at["total_bytes"] <= 80 * GIB < over["total_bytes"]


def test_mtl_plan_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(["plan", "--config", str(SHAPES.parents[0] / "gemma3_12b.yaml"), "--shape", str(SHAPES / "gemma3-12b.json"),
                 "--gpus", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["zero"] == 2 and "ZeRO-2" in printed  # read from the config's DeepSpeed file name
    assert f"| **total** | **{saved['total_bytes'] / GIB:.2f}** |" in printed


def test_a_backbone_without_a_config_needs_a_shape(tmp_path):
    from mtl.plan import shape_of

    with pytest.raises(ConfigError, match="give --shape"):
        shape_of(load_config(None, [f"model.backbone={tmp_path / 'nowhere'}"]), None)
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ConfigError, match="field 'intermediate_size': missing"):
        Shape.read(tmp_path / "config.json")


@pytest.mark.parametrize("content, args, message", [
    ("[1, 2]", [], "expected a JSON object, got array"),
    ('{"text_config": "x"}', [], "field 'text_config': expected an object, got str"),
    (None, ["--gpu-memory", "nan"], "--gpu-memory must be a finite number of GiB above 0, got nan"),
    (None, ["--overhead", "-100"], "--overhead must be a finite number of GiB, at least 0, got -100"),
    ("bool", [], "field 'num_hidden_layers': missing or not a positive integer"),
    (None, ["--json", "{shape}"], "--json {shape} is the input file"),
    (None, ["--json", "{tmp}"], "--json {tmp} is a folder"),
], ids=["list", "text_config string", "nan memory", "negative overhead", "bool layers", "json onto shape",
        "json a folder"])
def test_a_bad_shape_or_option_is_one_line_naming_it(tmp_path, caplog, content, args, message):
    shape = tmp_path / "shape.json"
    if content == "bool":
        content = json.dumps({**json.loads((SHAPES / "gemma3-1b.json").read_text()), "num_hidden_layers": True})
    shape.write_text(content if content is not None else (SHAPES / "gemma3-1b.json").read_text())
    before = shape.read_text()
    args = [a.format(shape=shape, tmp=tmp_path) for a in args]
    with caplog.at_level("ERROR"):
        assert main(["plan", "--shape", str(shape), *args]) == 2
    assert message.format(shape=shape, tmp=tmp_path) in caplog.text
    assert shape.read_text() == before
