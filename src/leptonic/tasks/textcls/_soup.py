"""A uniform "model soup": the average of the weights of models fine-tuned from one start.

Fine-tuning the same encoder several times from the same starting point (the
pretrained weights and the linear-probe head), with different seeds for the
data order and dropout, lands the models close enough together that the
average of their weights is itself a good model, usually better than each of
them, while it costs one model's time to serve (Wortsman et al., "Model soups",
ICML 2022). ``TextClassificationSpec.soup`` asks for it.

The average is kept as a running mean (:func:`fold_into`), so only two models
are in memory at a time however many go into the soup.
"""

from __future__ import annotations

from typing import Any

from leptonic.tasks.textcls._runtime import torch_module

__all__ = ["average_into", "fold_into"]


def fold_into(average: Any, model: Any, count: int) -> Any:
    """Fold ``model`` into ``average``, which holds the mean of ``count`` models so far.

    Every floating-point weight becomes ``average + (model - average) / (count + 1)``;
    integer buffers (position ids) stay as they are, and a tensor shared under
    two names (tied weights) is updated once. Both models must share one
    architecture (the same state-dict names and shapes). Returns ``average``.
    """
    if count < 1:
        raise ValueError(f"count is the number of models already averaged (1 or more), not {count}")
    torch = torch_module()
    mine, theirs = average.state_dict(), model.state_dict()
    if set(mine) != set(theirs):
        raise ValueError("the model has other weights than the soup")
    done: set[int] = set()
    with torch.no_grad():
        for name, tensor in mine.items():
            if not tensor.is_floating_point() or tensor.data_ptr() in done:
                continue
            other = theirs[name]
            if other.shape != tensor.shape:
                raise ValueError(f"weight {name!r} differs in shape between the soup's models")
            done.add(tensor.data_ptr())
            mean = tensor.to(torch.float32)
            mean += (other.to(device=tensor.device, dtype=torch.float32) - mean) / (count + 1)
            tensor.copy_(mean)
    return average


def average_into(model: Any, others: Any) -> Any:
    """Set ``model``'s weights to the mean of its own and those of ``others`` (all at hand)."""
    for count, other in enumerate(others, start=1):
        fold_into(model, other, count)
    return model
