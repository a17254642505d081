"""JSON-safe encodings of RNG states, so a resume draws the very same random numbers (never pickled)."""

from __future__ import annotations

import base64
from typing import Any

import torch


def tensor_to_bytes(t: torch.Tensor) -> str:
    """A uint8 state tensor (torch RNG, generator) as base64 text."""
    return base64.b64encode(t.cpu().contiguous().numpy().tobytes()).decode("ascii")


def bytes_to_tensor(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def random_state_to_json(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def json_to_random_state(data: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)
