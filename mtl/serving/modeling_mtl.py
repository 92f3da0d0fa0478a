"""An exported mtl task model that the stock `*ForSequenceClassification` classes cannot express: mean or first-token
pooling, a LayerNorm on the pooled vector (`model.head_norm`), a head with a bias, or an encoder backbone.

`mtl export` copies this file, unchanged, next to the weights and registers it in `config.json`'s `auto_map`, so

    AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)

loads it without mtl installed; a serving stack that refuses remote code cannot serve such a folder. It needs only
torch and transformers. The logit equals mtl's: same pooling, norm and head, computed in float32 as mtl does.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """[batch, seq, dim] -> [batch, dim]: the last non-pad token (either padding side), the first token, or the mean
    over non-pad tokens, as `mtl.model.pool`."""
    if pooling == "last":
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "first":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class MtlConfig(PretrainedConfig):
    """The backbone's config (`backbone`, a dict) plus `mtl_pooling` and `mtl_head_norm`. A model type of its own:
    with the backbone's type, transformers without trust_remote_code would load the folder as the stock class with
    a random classifier; with this one it refuses and asks for trust_remote_code."""

    model_type = "mtl_pair_classifier"

    def __init__(self, backbone: dict | None = None, mtl_pooling: str = "last", mtl_head_norm: bool = False,
                 **kwargs):
        self.backbone = dict(backbone or {})
        self.mtl_pooling, self.mtl_head_norm = mtl_pooling, mtl_head_norm
        super().__init__(**kwargs)

    def backbone_config(self) -> PretrainedConfig:
        settings = dict(self.backbone)
        return AutoConfig.for_model(settings.pop("model_type"), **settings)


class MtlForSequenceClassification(PreTrainedModel):
    """Backbone (LoRA merged) + pooling + optional LayerNorm + a one-logit linear head with bias."""

    config_class = MtlConfig
    base_model_prefix = "model"
    _keep_in_fp32_modules = ["mtl_norm", "mtl_head"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    def __init__(self, config):
        super().__init__(config)
        backbone = config.backbone_config()
        self.model = AutoModel.from_config(backbone, attn_implementation=config._attn_implementation)
        self.mtl_norm = nn.LayerNorm(backbone.hidden_size) if config.mtl_head_norm else nn.Identity()
        self.mtl_head = nn.Linear(backbone.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs) -> SequenceClassifierOutput:
        """One logit per row ([batch, 1]). Other tokenizer outputs (an encoder's token_type_ids) are not passed on:
        mtl trained the backbone on input ids and attention mask alone."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = pool(hidden, attention_mask, self.config.mtl_pooling).float()
        logits = self.mtl_head(self.mtl_norm(pooled))
        loss = None
        if labels is not None:
            loss = nn.functional.binary_cross_entropy_with_logits(logits.squeeze(-1), labels.float())
        return SequenceClassifierOutput(loss=loss, logits=logits)
