"""Shared fixtures: a tiny random Gemma-3 backbone saved as a local HF folder, and tiny QC/QI files.

The backbone is the real Gemma-3 text architecture (2 layers, hidden 64, one sliding and one full-attention layer)
with a byte-level BPE tokenizer trained here on the fixture text, so tests exercise the same loading, LoRA and
pooling code as the 270M and 12B models in well under a second.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

CATEGORIES = {
    "shoes": ("clothing, shoes & accessories,shoes,running", ["shoes", "sneakers", "zapatos", "обувь", "靴"]),
    "pans": ("home & garden,kitchen,cookware", ["pan", "frying pan", "sartén", "сковорода", "フライパン"]),
    "flour": ("food,grocery,flour, baking and cooking", ["flour", "harina", "мука", "farine", "小麦粉"]),
    "phones": ("electronics,phones,smartphones", ["phone", "smartphone", "teléfono", "телефон", "スマホ"]),
}
LANGUAGES = ["en", "es", "ru", "fr", "ja"]
REPO = Path(__file__).resolve().parents[1]
LAUNCHER_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def child_env(**extra: str) -> dict[str, str]:
    """Environment for `python -m mtl` in a child process: this checkout's package whatever is installed, and no
    launcher variables (a child must not try to join a process group that belongs to the test process)."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **extra}


def make_records(task: str, n: int, seed: int = 0, with_label: bool = True) -> list[dict]:
    """Learnable toy records: a query names one concept; positive when the target is that concept's."""
    rng = random.Random(seed)
    names = sorted(CATEGORIES)
    rows = []
    for i in range(n):
        concept = rng.choice(names)
        path, words = CATEGORIES[concept]
        lang = LANGUAGES[words.index(rng.choice(words)) % len(LANGUAGES)]
        query = rng.choice(words) + rng.choice(["", " cheap", " red", " nike", " 2024"])
        positive = rng.random() < 0.5
        other = concept if positive else rng.choice([c for c in names if c != concept])
        target = CATEGORIES[other][0] if task == "qc" else f"{CATEGORIES[other][1][0]} model {rng.randint(1, 99)}"
        row = {"id": i, "language": lang, "origin_query": query,
               ("category_path" if task == "qc" else "item_title"): target}
        if with_label:
            row["label"] = int(positive)
        row["translated_query"] = CATEGORIES[concept][1][0] if lang != "en" else query
        rows.append(row)
    return rows


def overlap_records(n: int = 400, seed: int = 0) -> list[dict]:
    """QI records whose label is word overlap: relevant titles contain the query's word, the others another
    product's."""
    rng = random.Random(seed)
    words = ["drill", "lamp", "hose", "faucet", "rake", "shovel", "mulch", "paint", "brush", "ladder"]
    rows = []
    for i in range(n):
        query, other = rng.sample(words, 2)
        positive = rng.random() < 0.5
        rows.append({"id": i, "language": "en", "origin_query": query,
                     "item_title": f"{query if positive else other} model {rng.randint(1, 99)}",
                     "label": int(positive)})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def build_tiny_backbone(folder: Path, sliding_window: int = 32) -> Path:
    """Save a 2-layer random Gemma-3 text model and a 1000-token byte-level BPE tokenizer to `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    corpus = [json.dumps(r, ensure_ascii=False) for task in ("qc", "qi") for r in make_records(task, 200, seed=1)]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(str(folder))

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=sliding_window,
                              pad_token_id=0, bos_token_id=2, eos_token_id=1,
                              layer_types=["sliding_attention", "full_attention"])
    Gemma3ForCausalLM(config).save_pretrained(str(folder))
    return folder


def build_tiny_encoder(folder: Path) -> Path:
    """A 2-layer random BERT (saved as a masked LM, so without pooler weights, like most encoder checkpoints) and a
    WordPiece tokenizer with the [CLS] A [SEP] B [SEP] pair template."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    corpus = [json.dumps(r, ensure_ascii=False) for task in ("qc", "qi") for r in make_records(task, 200, seed=1)]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=600, special_tokens=specials,
                                                                    show_progress=False))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=600, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=0)
    BertForMaskedLM(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-gemma3"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """train/dev files for both tasks (160 / 64 rows each)."""
    root = tmp_path_factory.mktemp("tiny-data")
    return {
        "qc_train": write_jsonl(root / "train_QC.txt", make_records("qc", 160, seed=2)),
        "qc_dev": write_jsonl(root / "dev_QC.txt", make_records("qc", 64, seed=3)),
        "qi_train": write_jsonl(root / "train_QI.txt", make_records("qi", 160, seed=4)),
        "qi_dev": write_jsonl(root / "dev_QI.txt", make_records("qi", 64, seed=5)),
    }


def tiny_overrides(backbone: Path, data: dict[str, Path], root: Path, **extra) -> list[str]:
    """Config overrides for a few-second run on the tiny backbone and data."""
    values = {
        "model.backbone": str(backbone), "data.cache_dir": str(root / "cache"), "log.root": str(root / "runs"),
        "train.max_steps": 6, "train.micro_batch_size": 8, "train.global_batch_size": 8, "train.eval_every": 3,
        "train.lr": 1e-3, "eval.batch_size": 32, "lora.r": 4, "lora.alpha": 8, "log.every": 2,
        **{f"data.{k}": str(v) for k, v in data.items()},
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture
def one_process_torchrun(monkeypatch):
    """The environment torchrun gives a one-process job, so accelerate wraps the model in DDP (gloo). A group this
    test starts is destroyed at its end; one an earlier DeepSpeed test left up is kept, because DeepSpeed caches a
    clone of it process-wide and a later DeepSpeed run would meet a destroyed group."""
    import torch.distributed

    from mtl.stages import _free_port

    existed = torch.distributed.is_initialized()
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(name, value)
    yield
    if torch.distributed.is_initialized() and not existed:
        torch.distributed.destroy_process_group()
