"""What every brain shares: the config base and the interface the school drives."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

GREY = 0.5  # the neutral pixel: inputs are centred on it, so a grey pixel adds nothing


@dataclass
class BrainConfig:
    """Fields every brain has. Subclasses add their own; all serialise to JSON."""

    brain: ClassVar[str] = "brain"
    vocab_size: int = 4200
    max_seq_len: int = 128
    """Longest window a forward pass sees (the training block and the generation context)."""

    def to_dict(self) -> dict[str, Any]:
        return {"brain": self.brain, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names - {"brain"}
        if unknown:
            raise ValueError(f"unknown {cls.brain} config fields: {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in names})


def pixel_input(
    pixel: torch.Tensor | None, batch: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(B, 3) pixel centred on grey; None means grey (contributes nothing)."""
    if pixel is None:
        return torch.zeros(batch, 3, device=device, dtype=dtype)
    pixel = pixel.to(device=device, dtype=dtype)
    if pixel.dim() == 1:
        pixel = pixel.unsqueeze(0)
    return pixel.expand(batch, 3) - GREY


class PixelHead(nn.Module):
    """Predicts the baby's RGB colour in [0, 1] from a deep hidden state, pooled over positions."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.proj = nn.Linear(width, 3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h: (B, T, C) -> (B, 3)
        return torch.sigmoid(self.proj(h.mean(dim=1)).float())


class Brain(nn.Module):
    """A next-token predictor over a whole window in one pass.

    Subclasses implement `forward(tokens, pixel) -> (logits (B, T, V), pixel_pred (B, 3))`,
    `new_cache(batch_size)` and `step(tokens, cache, pixel)`, which runs the new tokens on top of
    what the cache holds and advances it (the generate step).
    """

    config: BrainConfig
    pause: Callable[[], None] | None = None
    """Called between layers while training, once in the forward and once in the backward: the
    tutor answers a chat waiting there (`Tutor._pause`), so a reply waits for one layer's
    work rather than the rest of the step. torch.compile splits the step there (measured: no
    slower). The transformer calls it; the smaller brains' steps are short."""
    scores_targets: ClassVar[bool] = False
    """True where `forward(tokens, pixel, targets)` returns (loss, pixel_pred, accuracy) itself,
    without materialising the logits (brain/head_loss.py); the tutor trains through it then."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Brain:
        """A copy of the brain without its `pause`: that is the tutor's (its locks and queues
        would be copied too), and a copy is not the model the tutor trains."""
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        state = {k: v for k, v in self.__dict__.items() if k != "pause"}
        clone.__setstate__(copy.deepcopy(state, memo))
        return clone

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def new_cache(self, batch_size: int = 1) -> Any:
        raise NotImplementedError

    def step(
        self, tokens: torch.Tensor, cache: Any, pixel: torch.Tensor | None = None, **kw: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


@torch.compiler.disable  # a call out to the tutor: the compiled step breaks its graph here
def pause_point(x: torch.Tensor, pause: Callable[[], None]) -> torch.Tensor:
    """Call `pause` now, and again when the backward reaches `x` (a hook that returns None
    leaves the gradient as it is); a layer's output passes through unchanged."""
    pause()
    if x.requires_grad:
        x.register_hook(lambda _grad: pause())
    return x
