"""The record of what an exact resume needs besides tensors (a checkpoint's state.json), with one owner.

Version 1 is the layout the first souls wrote (which had no version field): a state.json without
one reads as version 1. Fields an older or adopted soul lacks take their defaults, and the tutor
starts those parts afresh; a field of the wrong type makes the checkpoint count as damaged.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

VERSION = 1


@dataclass
class ResumeState:
    """Everything besides weights and optimizer that training needs to go on exactly where it was."""

    step: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    """Training time of this baby, all runs together."""
    rng_batch: str | None = None
    """The batch generator's state (base64, soul.codec); None: start a fresh one."""
    rng_torch: str | None = None
    rng_python: list[Any] | None = None
    """Python's random state as JSON (soul.codec.random_state_to_json)."""
    metabolism: dict[str, Any] = field(default_factory=dict)
    pixel: list[float] | None = None
    pixel_target: list[float] | None = None
    lr_scale: float = 1.0
    """The learning-rate factor after rollbacks of non-finite steps and plateaus."""
    plateau: dict[str, Any] = field(default_factory=dict)
    """The watch over held-out scores (school.plateau.Plateau.state_dict); {}: none yet."""
    updates: dict[str, Any] | None = None
    """The last logged step's update sizes, {"step": N, "updates": {layer: ‖Δw‖/‖w‖}}, for the x-ray."""
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"batch": self.rng_batch, "torch": self.rng_torch, "python": self.rng_python}
        return {
            "version": self.version,
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self.elapsed_s,
            "rng": {k: v for k, v in rng.items() if v is not None},
            "metabolism": self.metabolism,
            **({"pixel": self.pixel, "pixel_target": self.pixel_target} if self.pixel is not None else {}),
            "lr_scale": self.lr_scale,
            **({"updates": self.updates} if self.updates is not None else {}),
            **({"plateau": self.plateau} if self.plateau else {}),
        }

    @classmethod
    def from_json(cls, data: Any, step: int = 0) -> ResumeState:
        """Read state.json's content; raises ValueError (one line) for anything damaged.

        Args:
            step: the checkpoint's own step, for a state that does not say.
        """
        if not isinstance(data, dict):
            raise ValueError(f"trainer state is {type(data).__name__}, not an object")
        version = _get(data, "version", int, 1)
        if version > VERSION:
            raise ValueError(f"trainer state version {version} is newer than this babyterm reads ({VERSION})")
        rng = data.get("rng", {})
        if not isinstance(rng, dict):
            raise ValueError("trainer state: rng is not an object")
        pixel, target = data.get("pixel"), data.get("pixel_target")
        if pixel is not None or target is not None:
            for name, rgb in (("pixel", pixel), ("pixel_target", target)):
                if not (isinstance(rgb, list) and len(rgb) == 3 and all(_real(v) for v in rgb)):
                    raise ValueError(f"trainer state: {name} is not three numbers")
        python = rng.get("python")
        if python is not None and not (isinstance(python, list) and len(python) == 3):
            raise ValueError("trainer state: rng.python is not a random state")
        metabolism = data.get("metabolism", {})
        if not isinstance(metabolism, dict):
            raise ValueError("trainer state: metabolism is not an object")
        plateau = data.get("plateau", {})
        if not isinstance(plateau, dict):
            raise ValueError("trainer state: plateau is not an object")
        return cls(
            step=_get(data, "step", int, step),
            tokens_seen=_get(data, "tokens_seen", int, 0),
            elapsed_s=float(_get(data, "elapsed_s", float, 0.0)),
            rng_batch=_get(rng, "batch", str, None),
            rng_torch=_get(rng, "torch", str, None),
            rng_python=python,
            metabolism=metabolism,
            pixel=[float(v) for v in pixel] if pixel is not None else None,
            pixel_target=[float(v) for v in target] if target is not None else None,
            lr_scale=float(_get(data, "lr_scale", float, 1.0)),
            updates=read_updates(data.get("updates")),
            plateau=plateau,
            version=VERSION,
        )


def read_updates(data: Any) -> dict[str, Any] | None:
    """The x-ray's update sizes, or None: they only inform, so a damaged record is dropped, not fatal."""
    if not isinstance(data, dict) or not isinstance(data.get("updates"), dict):
        return None
    step, updates = data.get("step"), data["updates"]
    if not isinstance(step, int) or not all(isinstance(k, str) and _real(v) for k, v in updates.items()):
        return None
    return {"step": step, "updates": {k: float(v) for k, v in updates.items()}}


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _get(data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    """data[key] if it is of `kind` (an int passes for a float), the default if absent."""
    if key not in data or data[key] is None:
        return default
    value = data[key]
    ok = _real(value) if kind is float else isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        raise ValueError(f"trainer state: {key} is {type(value).__name__}, not {kind.__name__}")
    return value
