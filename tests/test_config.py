from pathlib import Path

import pytest

from mtl.config import ExperimentConfig, load_config, save_config
from mtl.errors import ConfigError

CONFIGS = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))


def test_defaults_are_the_dataclass_defaults():
    assert load_config() == ExperimentConfig()


def test_yaml_delta_then_overrides_in_that_order(tmp_path):
    file = tmp_path / "x.yaml"
    file.write_text("train:\n  lr: 1.0e-4\n  max_steps: 7\n")
    cfg = load_config(file, ["train.lr=2e-5"])
    assert cfg.train.lr == 2e-5 and cfg.train.max_steps == 7


def test_override_values_are_typed():
    cfg = load_config(None, ["augment.translation=off", "cv.fold=3", "lora.target_modules=q_proj,v_proj",
                             "tasks.temperature=3"])
    assert cfg.augment.translation is False
    assert cfg.cv.fold == "3"
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert isinstance(cfg.tasks.temperature, float)


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(ConfigError, match="did you mean 'train.max_steps'"):
        load_config(None, ["train.max_step=3"])


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("modle:\n  backbone: x\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*'modle'.*did you mean 'model'"):
        load_config(file)


@pytest.mark.parametrize("override, message", [
    ("train.max_steps=ten", "train.max_steps: expected int"),
    ("train.mode=joint", "train.mode: 'joint' is not one of"),
    ("train.class_weight=auto", "train.class_weight: 'auto' is not one of"),
    ("train.lr=fast", "train.lr: expected a number"),
    ("train.max_steps=true", "train.max_steps: expected int"),
])
def test_wrong_types_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


@pytest.mark.parametrize("overrides, message", [
    (["train.mode=single"], "needs a target task"),
    (["train.task=qc"], "only meaningful with --mode single"),
    (["train.global_batch_size=20", "train.micro_batch_size=16"], "multiple of"),
    (["cv.fold=9"], "cv.fold must be"),
])
def test_contradictory_options_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_saved_config_loads_back_equal(tmp_path):
    cfg = load_config(None, ["train.mode=tapt", "train.task=qi", "train.lr=5e-5", "cv.fold=2"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_there_are_configs_to_load():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads_and_documents_its_launch_command(path):
    load_config(path)
    first = path.read_text().splitlines()[0]
    assert first.startswith("#"), f"{path.name} must start with a comment giving its purpose"
    assert "mtl" in path.read_text().split("\n\n")[0], f"{path.name}: header should give the launch command"


@pytest.mark.parametrize("override", [
    "train.micro_batch_size=0", "train.global_batch_size=0", "train.max_steps=0", "train.tapt_steps=-1",
    "train.lr=0", "train.lr=-1e-4", "train.lr=nan", "train.lr=inf", "train.head_lr=0", "train.head_lr=nan",
    "train.warmup_ratio=-0.1", "train.warmup_ratio=1.5", "train.weight_decay=-1", "train.max_grad_norm=-1",
    "train.keep_checkpoints=0", "train.eval_every=-1", "train.save_every=-1",
    "log.every=0", "eval.batch_size=0", "cv.n_folds=1", "cv.qc_group_levels=0",
    "model.head_dropout=1", "model.head_dropout=-0.1", "model.head_dropout=nan",
    "lora.dropout=1.0", "lora.r=0", "lora.alpha=0", "taxonomy.prior_depth=0", "taxonomy.prior_strength=-1",
    "tasks.loss_weight_qc=-1", "tasks.loss_weight_qi=inf", "tasks.temperature=0",
    "data.max_length=4", "data.train_limit=-1", "data.dev_limit=-1",
])
def test_out_of_range_values_are_refused_naming_the_key(override):
    key = override.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"^{key} must be"):
        load_config(None, [override])


def test_both_task_weights_zero_is_refused():
    with pytest.raises(ConfigError, match="both 0: nothing would train"):
        load_config(None, ["tasks.loss_weight_qc=0", "tasks.loss_weight_qi=0"])


def test_an_unexpected_error_while_building_a_section_is_a_config_error(monkeypatch):
    from mtl import config

    def broken(self):
        if self.every == 3:
            raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(config.LogConfig, "__post_init__", broken)
    with pytest.raises(ConfigError, match="log: ZeroDivisionError"):
        load_config(None, ["log.every=3"])


def test_non_ascii_digit_fold_is_refused():
    with pytest.raises(ConfigError, match="cv.fold must be"):
        load_config(None, ["cv.fold=²"])


@pytest.mark.parametrize("content, message", [
    (None, r"missing.yaml: config file not found"),
    (b"train:\n  lr: 1.0e-4\n  # caf\xe9\n", r"bad.yaml:3: not valid UTF-8"),
    (b"train: [lr\n", r"bad.yaml: not valid YAML"),
])
def test_unreadable_config_files_are_config_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / ("missing.yaml" if content is None else "bad.yaml")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_config_path_that_is_a_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path)


def test_an_override_value_that_is_not_yaml_names_the_override():
    with pytest.raises(ConfigError, match=r"override 'train.lr=\[': the value is not valid YAML"):
        load_config(None, ["train.lr=["])


@pytest.mark.parametrize("value", [-1, 2**32, 99999999999])
def test_a_seed_outside_what_numpy_takes_is_refused(value):
    with pytest.raises(ConfigError, match=rf"^train.seed must be in 0..4294967295, got {value}$"):
        load_config(None, [f"train.seed={value}"])


def test_every_int_key_named_seed_is_range_checked():
    """A seed key added to any section is checked with no line of its own (here: a made-up `split_seed`)."""
    import dataclasses

    from mtl.config import from_dict

    @dataclasses.dataclass
    class Section:
        split_seed: int = 0
        seeds_used: int = 0

    assert from_dict(Section, {"split_seed": 2**32 - 1, "seeds_used": -5}).split_seed == 2**32 - 1
    with pytest.raises(ConfigError, match=r"^data.split_seed must be in 0..4294967295, got -1$"):
        from_dict(Section, {"split_seed": -1}, "data")


def test_a_string_with_a_lone_surrogate_is_refused():
    with pytest.raises(ConfigError, match=r"log.run_name: '\\ud800' holds a lone UTF-16 surrogate"):
        load_config(None, ['log.run_name="\\ud800"'])


def test_a_bad_value_in_a_config_file_names_the_file(tmp_path):
    path = tmp_path / "saved.yaml"
    path.write_text("train:\n  seed: -1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: train.seed must be in 0..4294967295, got -1$"):
        load_config(path)
