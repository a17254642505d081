"""Waking a saved baby to talk, without teaching it: its record, tokenizer and newest weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from tokenizers import Tokenizer

from brain import Brain, build_brain, config_from_dict
from school.events import ErrorEvent, Event
from school.tokenizer import load_tokenizer
from school.weights import LIVE, Weights
from soul import checkpoint as ckpt
from soul.best_self import BEST, load_best
from soul.chat_log import ChatLog
from soul.milestones import load_milestone
from soul.paths import BabyPaths, SoulError
from soul.record import BabyRecord
from soul.resume_state import read_updates


@dataclass
class Revived:
    record: BabyRecord
    tokenizer: Tokenizer
    model: Brain
    step: int
    warnings: list[str]
    weights: str
    """Which weights answer: the newest checkpoint or a milestone."""
    updates: dict[str, Any] | None = None
    """The update sizes the trainer last recorded before these weights were saved (for the x-ray)."""


def revive(paths: BabyPaths, device: torch.device | str = "cpu", step: Weights | None = None) -> Revived:
    """Load the newest valid checkpoint of a baby (`step` None or "live"), its best self ("best"),
    or its milestone at `step`.

    A newborn with no checkpoint talks from its initial weights.
    """
    if not paths.exists():
        raise paths.missing(hint=f"(start one: babyterm train --baby {paths.name})")
    record = BabyRecord.load(paths)
    tokenizer = load_tokenizer(paths.tokenizer)
    if tokenizer.get_vocab_size() != record.vocab_size:
        raise SoulError(f"baby {paths.name!r}: tokenizer.json does not match its brain's vocabulary")
    model = build_brain(config_from_dict(record.brain)).to(device)
    if step == BEST:
        best, tensors = load_best(paths.milestones, str(device))
        ckpt.load_model_tensors(model, tensors)
        weights = f"best self (step {best.step}, {best.val_bpb:.3f} bits/byte held out)"
        return Revived(record, tokenizer, model.eval(), best.step, [], weights)
    if step is not None and step != LIVE:
        ckpt.load_model_tensors(model, load_milestone(paths.milestones, step, str(device)))
        return Revived(record, tokenizer, model.eval(), step, [], f"milestone step {step}")
    found = ckpt.load_latest(paths.checkpoints, device, expect=ckpt.tensor_shapes(model))
    step, warnings, updates = 0, [], None
    if found is not None:
        ckpt.load_model_tensors(model, found.model)
        step, warnings, updates = found.step, found.warnings, read_updates(found.state.get("updates"))
    return Revived(record, tokenizer, model.eval(), step, warnings, f"step {step}", updates)


class SavedBaby:
    """A revived baby as a ChatHost: what `babyterm chat` talks through (the speaker the app uses).

    It does not train: a correction is refused with a warning, and nothing can interrupt a reply.
    """

    pixel = None  # a saved baby feels the brain's neutral colour

    def __init__(self, paths: BabyPaths, baby: Revived, warn: Callable[[str], None]) -> None:
        self.paths, self.baby, self._warn = paths, baby, warn
        self.model, self.tokenizer, self.step, self.weights = (
            baby.model,
            baby.tokenizer,
            baby.step,
            baby.weights,
        )
        self.chat_log = ChatLog(paths.chat)

    @property
    def record(self) -> BabyRecord:
        return self.baby.record

    def emit(self, event: Event) -> None:
        if isinstance(event, ErrorEvent):
            self._warn(event.message)

    def warn(self, message: str) -> None:
        self._warn(message)

    def interrupts(self, reply_id: str) -> bool:
        return False  # Ctrl+C ends `babyterm chat` itself

    def milestone(self, step: int | str) -> Brain:
        """A milestone's brain, or the best self's (`step` "best")."""
        model = build_brain(config_from_dict(self.baby.record.brain))
        ckpt.load_model_tensors(model, load_milestone(self.paths.milestones, step, "cpu"))
        return model

    def learn(self, text: str, source: str) -> None:
        self._warn(f"{source} not kept: only a training baby learns (run babyterm)")
