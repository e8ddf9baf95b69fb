"""A uniform "model soup": the average of the weights of models fine-tuned from one start.

Fine-tuning the same encoder several times from the same starting point (the
pretrained weights and the linear-probe head), with different seeds for the
data order and dropout, lands the models close enough together that the
average of their weights is itself a good model, usually better than each of
them, while it costs one model's time to serve (Wortsman et al., "Model soups",
ICML 2022). ``TextClassificationSpec.soup`` asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leptonic.tasks.textcls._runtime import torch_module

__all__ = ["average_into"]


def average_into(model: Any, others: Sequence[Any]) -> Any:
    """Set ``model``'s floating-point weights to their mean over ``model`` and ``others``.

    All models must share one architecture (the same state-dict names and
    shapes); integer buffers (position ids) are kept as they are. Returns ``model``.
    """
    torch = torch_module()
    states = [model.state_dict(), *(m.state_dict() for m in others)]
    names = set(states[0])
    for i, state in enumerate(states[1:], start=1):
        if set(state) != names:
            raise ValueError(f"model {i} of the soup has other weights than model 0")
    with torch.no_grad():
        for name, tensor in states[0].items():
            if not tensor.is_floating_point():
                continue
            parts = [s[name] for s in states]
            if any(p.shape != tensor.shape for p in parts):
                raise ValueError(f"weight {name!r} differs in shape between the soup's models")
            tensor.copy_(torch.stack([p.to(torch.float32) for p in parts]).mean(dim=0))
    return model
