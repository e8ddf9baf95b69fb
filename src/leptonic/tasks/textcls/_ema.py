"""An exponential moving average of a model's trainable weights (``ema_decay``).

The average is updated after every optimizer step, in place and without
copies (one fused ``lerp`` over all tensors). Its decay starts small and grows
to ``decay`` (``min(decay, (1 + t) / (10 + t))`` at step ``t``), so the first
steps do not pin it to the pretrained weights. :meth:`WeightAverage.applied`
swaps the average into the model for a block (validation, a snapshot) and puts
the trained weights back afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from leptonic.tasks.textcls._runtime import torch_module

__all__ = ["WeightAverage"]


class WeightAverage:
    """The moving average of ``model``'s trainable parameters.

    Parameters
    ----------
    model
        A torch module; its parameters with ``requires_grad`` are averaged.
    decay
        The weight of the average at each step, in (0, 1).
    state
        Tensors by parameter name, from :meth:`state` (resuming a checkpoint).
    steps
        How many updates ``state`` has seen.
    """

    def __init__(
        self,
        model: Any,
        decay: float,
        *,
        state: Mapping[str, Any] | None = None,
        steps: int = 0,
    ) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must lie between 0 and 1, not {decay!r}")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.decay = decay
        self.steps = steps
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        if state is None:
            self._shadow = [p.detach().clone() for p in self._params]
        else:
            missing = sorted(set(self._names) - set(state))
            if missing:
                raise ValueError(f"the saved average lacks {', '.join(missing[:3])}")
            self._shadow = [
                state[n].to(device=p.device, dtype=p.dtype).clone()
                for n, p in zip(self._names, self._params, strict=True)
            ]

    def update(self) -> None:
        """Move the average towards the current weights (call after each step)."""
        torch = torch_module()
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        with torch.no_grad():
            torch._foreach_lerp_(self._shadow, [p.detach() for p in self._params], 1.0 - decay)

    def state(self) -> dict[str, Any]:
        """The average, by parameter name (for a checkpoint)."""
        return dict(zip(self._names, self._shadow, strict=True))

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the model holds the average; its own weights come back after."""
        torch = torch_module()
        with torch.no_grad():
            trained = [p.detach().clone() for p in self._params]
            torch._foreach_copy_(self._params, self._shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self._params, trained)
