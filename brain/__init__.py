"""The brain: two next-token predictors with one interface (see brain.base.Brain)."""

from __future__ import annotations

from typing import Any

from brain.base import Brain, BrainConfig
from brain.presets import PRESETS, preset_config

BRAIN_NAMES = ("transformer", "babyllm")


def config_class(brain: str) -> type[BrainConfig]:
    if brain == "transformer":
        from brain.transformer import TransformerConfig

        return TransformerConfig
    if brain == "babyllm":
        from brain.babyllm import BabyLLMConfig

        return BabyLLMConfig
    raise ValueError(f"unknown brain {brain!r}: choose one of {', '.join(BRAIN_NAMES)}")


def config_from_dict(data: dict[str, Any]) -> BrainConfig:
    return config_class(data["brain"]).from_dict(data)


def build_brain(cfg: BrainConfig) -> Brain:
    if cfg.brain == "transformer":
        from brain.transformer import Transformer

        return Transformer(cfg)  # type: ignore[arg-type]
    from brain.babyllm import BabyLLM

    return BabyLLM(cfg)  # type: ignore[arg-type]


__all__ = [
    "BRAIN_NAMES",
    "PRESETS",
    "Brain",
    "BrainConfig",
    "build_brain",
    "config_class",
    "config_from_dict",
    "preset_config",
]
