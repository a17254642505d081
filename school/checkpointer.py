"""The checkpointer: what a tutor keeps of a run (checkpoints with their resume state, and milestones).

A part the tutor has, built with everything it touches: the weights, the optimizer and the soul's
folders. The tutor hands it a ResumeState to save and gets one back on resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from school.events import ErrorEvent, Event, SaveEvent
from soul import checkpoint as ckpt
from soul.best_self import BestSelf, load_best, save_best
from soul.milestones import save_milestone
from soul.paths import BabyPaths, SoulError
from soul.resume_state import ResumeState

SAVE_RETRY_S = 30.0  # after a failed save (a full disk, say), try again this soon


@dataclass
class Resumed:
    """What a checkpoint gave back: the resume state (weights and optimizer are already loaded)."""

    state: ResumeState
    warnings: list[str] = field(default_factory=list)


class Checkpointer:
    """Saves and restores one tutor's model, optimizer and resume state."""

    def __init__(
        self,
        paths: BabyPaths,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        *,
        save_minutes: float,
        milestone_keep: int,
        clock: Callable[[], float] = time.monotonic,
        warn: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.paths, self.model, self.optimizer, self.device = paths, model, optimizer, device
        self.warn = warn  # what is found wrong along the way (a damaged milestone manifest)
        self.save_minutes, self.milestone_keep, self.clock = save_minutes, milestone_keep, clock
        self.last_save = clock()

    def due(self) -> bool:
        """Whether the time-based autosave is due."""
        return self.clock() - self.last_save > self.save_minutes * 60

    def resume(self) -> Resumed | None:
        """Load the newest usable checkpoint into the model and optimizer; None for a newborn.

        A checkpoint whose state.json is damaged counts as damaged: an older one is used, with a
        warning (raises SoulError when none is usable).
        """
        found = ckpt.load_latest(
            self.paths.checkpoints,
            self.device,
            expect=ckpt.tensor_shapes(self.model),
            validate=lambda c: ResumeState.from_json(c.state, c.step),
        )
        if found is None:
            return None
        ckpt.load_model_tensors(self.model, found.model)
        if found.optim:
            self.optimizer.load_state_dict(found.optim)
        return Resumed(ResumeState.from_json(found.state, found.step), list(found.warnings))

    def back_to_best(self) -> BestSelf | None:
        """Load the best self's weights into the model, with a fresh optimizer state (the moments
        belong to the weights it leaves); None, changing nothing, when there is no sound best self."""
        try:
            record, tensors = load_best(self.paths.milestones, str(self.device))
            ckpt.load_model_tensors(self.model, tensors)
        except (SoulError, ValueError, KeyError, RuntimeError):
            return None
        self.optimizer.state.clear()
        return record

    def save(self, state: ResumeState, reason: str) -> Event:
        """A checkpoint now: a SaveEvent, or an ErrorEvent when it failed (the last good one stays)."""
        t0 = time.perf_counter()
        try:
            path = ckpt.save_checkpoint(
                self.paths.checkpoints,
                state.step,
                ckpt.model_tensors(self.model),
                self.optimizer.state_dict(),
                state.to_json(),
            )
        except Exception as e:  # a failed save must never stop training or lose the last good one
            self.last_save = self.clock() - self.save_minutes * 60 + SAVE_RETRY_S
            return ErrorEvent(state.step, f"save failed, previous checkpoint kept, retrying soon: {e}")
        self.last_save = self.clock()
        return SaveEvent(state.step, str(path), reason, time.perf_counter() - t0)

    def save_milestone(self, step: int, updates: dict[str, Any] | None = None) -> Event:
        """A snapshot of the weights alone, for talking to an earlier self (and its update sizes)."""
        t0 = time.perf_counter()
        try:
            path = save_milestone(
                self.paths.milestones,
                step,
                ckpt.model_tensors(self.model),
                self.milestone_keep,
                log=self.warn,
                updates=updates,
            )
        except Exception as e:
            return ErrorEvent(step, f"milestone not saved: {e}")
        return SaveEvent(step, str(path), "milestone", time.perf_counter() - t0)

    def save_best(self, step: int, val_bpb: float, validation: str) -> Event:
        """Keep the weights as they are now as the best self (its best held-out score so far)."""
        t0 = time.perf_counter()
        try:
            path = save_best(self.paths.milestones, step, ckpt.model_tensors(self.model), val_bpb, validation)
        except Exception as e:
            return ErrorEvent(step, f"best self not saved: {e}")
        return SaveEvent(step, str(path), "best", time.perf_counter() - t0)
