"""The brain: a ladder of next-token predictors with one interface (see brain.base.Brain)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from brain.presets import PRESETS, preset_config

if TYPE_CHECKING:
    from brain.base import Brain, BrainConfig

# name -> (module, config class, model class); imported on first use, so a brain costs nothing
# until it is asked for. The order is the ladder's: simplest rung first.
REGISTRY: dict[str, tuple[str, str, str]] = {
    "mlp": ("brain.mlp", "MLPConfig", "MLP"),
    "attention": ("brain.attention", "AttentionConfig", "AttentionLM"),
    "transformer": ("brain.transformer", "TransformerConfig", "Transformer"),
    "babyllm": ("brain.babyllm", "BabyLLMConfig", "BabyLLM"),
}
BRAIN_NAMES = tuple(REGISTRY)


def _entry(brain: str) -> tuple[str, str, str]:
    if brain not in REGISTRY:
        raise ValueError(f"unknown brain {brain!r}: choose one of {', '.join(BRAIN_NAMES)}")
    return REGISTRY[brain]


def config_class(brain: str) -> type[BrainConfig]:
    module, config, _ = _entry(brain)
    return getattr(importlib.import_module(module), config)


def config_from_dict(data: dict[str, Any]) -> BrainConfig:
    return config_class(data["brain"]).from_dict(data)


def build_brain(cfg: BrainConfig) -> Brain:
    module, _, model = _entry(cfg.brain)
    return getattr(importlib.import_module(module), model)(cfg)


def __getattr__(name: str) -> Any:
    # Brain and BrainConfig load torch; the registry's names do not, so `from brain import
    # BRAIN_NAMES` keeps the CLI's start light.
    if name in ("Brain", "BrainConfig"):
        return getattr(importlib.import_module("brain.base"), name)
    raise AttributeError(f"module 'brain' has no attribute {name!r}")


__all__ = [
    "BRAIN_NAMES",
    "PRESETS",
    "REGISTRY",
    "Brain",
    "BrainConfig",
    "build_brain",
    "config_class",
    "config_from_dict",
    "preset_config",
]
