"""Waking a saved baby to talk, without teaching it: its record, tokenizer and newest weights."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from brain import Brain, build_brain, config_from_dict
from school.tokenizer import load_tokenizer
from soul import checkpoint as ckpt
from soul.paths import BabyPaths, SoulError
from soul.record import BabyRecord


@dataclass
class Revived:
    record: BabyRecord
    tokenizer: Tokenizer
    model: Brain
    step: int
    warnings: list[str]


def revive(paths: BabyPaths, device: torch.device | str = "cpu") -> Revived:
    """Load the newest valid checkpoint of a baby (a newborn with no checkpoint talks from its init)."""
    if not paths.exists():
        raise SoulError(
            f"no baby named {paths.name!r} in {paths.home} (start one: babyterm train --baby {paths.name})"
        )
    record = BabyRecord.load(paths)
    tokenizer = load_tokenizer(paths.tokenizer)
    if tokenizer.get_vocab_size() != record.vocab_size:
        raise SoulError(f"baby {paths.name!r}: tokenizer.json does not match its brain's vocabulary")
    model = build_brain(config_from_dict(record.brain)).to(device)
    found = ckpt.load_latest(paths.checkpoints, device)
    step, warnings = 0, []
    if found is not None:
        ckpt.load_model_tensors(model, found.model)
        step, warnings = found.step, found.warnings
    model.eval()
    return Revived(record, tokenizer, model, step, warnings)


def checkpoint_step(paths: BabyPaths) -> int:
    """The newest checkpoint's step, read from its folder name (cheap: no tensors loaded)."""
    found = ckpt.list_checkpoints(paths.checkpoints)
    return found[-1][0] if found else 0
