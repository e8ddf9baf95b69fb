"""Small torch modules around Hugging Face encoders; imported only when torch is needed.

Each module maps ``(input_ids, attention_mask)`` to class logits, so that the
predictor, the trainer and the ONNX export call every flavor the same way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["LogitsOf", "MeanPoolClassifier", "mean_pool"]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors that are not padding (sentence-transformers pooling)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class LogitsOf(nn.Module):
    """A ``*ForSequenceClassification`` model that returns its logits tensor only."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class MeanPoolClassifier(nn.Module):
    """Encoder → mean pooling → L2 normalisation → linear head (the ``frozen`` flavor)."""

    def __init__(self, encoder: Any, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.copy_(bias)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return nn.functional.normalize(mean_pool(hidden, attention_mask).float(), dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids, attention_mask))
