"""The keeper: what the tutor keeps of a run (checkpoints, the state an exact resume needs, milestones).

A base class of the tutor, split out so each file holds one concept; it uses the tutor's model,
optimizer, generators, metabolism and pixel, and emits through the tutor.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from school.events import ErrorEvent, SaveEvent
from soul import checkpoint as ckpt
from soul import codec
from soul.milestones import save_milestone

SAVE_RETRY_S = 30.0  # after a failed save (a full disk, say), try again this soon


class Keeper:
    def _resume(self) -> None:
        found = ckpt.load_latest(
            self.paths.checkpoints, self.room.device, expect=ckpt.tensor_shapes(self.model)
        )
        if found is None:
            return
        for w in found.warnings:
            self._warn(w)
        ckpt.load_model_tensors(self.model, found.model)
        if found.optim:
            self.optimizer.load_state_dict(found.optim)
        s = found.state
        self.step = int(s.get("step", found.step))
        self.tokens_seen, self.elapsed_s = int(s.get("tokens_seen", 0)), float(s.get("elapsed_s", 0.0))
        rng = s.get("rng", {})  # an adopted baby (or an older soul) may lack some of this: start fresh there
        if self.cohort.lead and "batch" in rng:
            self.batch_gen.set_state(codec.bytes_to_tensor(rng["batch"]))
        elif not self.cohort.lead:  # the checkpoint holds the lead's data position; the others take their own
            self.batch_gen.manual_seed(hash((self.options.seed, self.cohort.rank, self.step)) % 2**62)
        if "torch" in rng:
            torch.set_rng_state(codec.bytes_to_tensor(rng["torch"]))
        if "python" in rng:
            self.rng.setstate(codec.json_to_random_state(rng["python"]))
        self.metabolism.load_state_dict(s.get("metabolism", {}))
        if "pixel" in s:
            self.pixel = torch.tensor(s["pixel"], device=self.room.device)
            self.pixel_target = torch.tensor(s["pixel_target"], device=self.room.device)
        self.lr_scale = float(s.get("lr_scale", 1.0))

    def trainer_state(self) -> dict[str, Any]:
        """Everything besides tensors that an exact resume needs (JSON)."""
        return {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self.elapsed_s,
            "rng": {
                "batch": codec.tensor_to_bytes(self.batch_gen.get_state()),
                "torch": codec.tensor_to_bytes(torch.get_rng_state()),
                "python": codec.random_state_to_json(self.rng.getstate()),
            },
            "metabolism": self.metabolism.state_dict(),
            "pixel": self.pixel.tolist(),
            "pixel_target": self.pixel_target.tolist(),
            "lr_scale": self.lr_scale,
        }

    def save(self, reason: str) -> None:
        if not self.cohort.lead:
            return
        previous = self.state
        self._set_state("saving", reason)
        t0 = time.perf_counter()
        try:
            path = ckpt.save_checkpoint(
                self.paths.checkpoints,
                self.step,
                ckpt.model_tensors(self.model),
                self.optimizer.state_dict(),
                self.trainer_state(),
            )
        except Exception as e:  # a failed save must never stop training or lose the last good one
            self.emit(ErrorEvent(self.step, f"save failed, previous checkpoint kept, retrying soon: {e}"))
            self._last_save = time.monotonic() - self.syllabus.save_minutes * 60 + SAVE_RETRY_S
        else:
            self.emit(SaveEvent(self.step, str(path), reason, time.perf_counter() - t0))
            self._last_save = time.monotonic()
        self._set_state(previous if previous != "saving" else "training")

    def save_milestone(self) -> None:
        """A snapshot of the weights alone, for talking to an earlier self."""
        if not self.cohort.lead:
            return
        t0 = time.perf_counter()
        try:
            path = save_milestone(
                self.paths.milestones, self.step, ckpt.model_tensors(self.model), self.syllabus.milestone_keep
            )
        except Exception as e:
            self.emit(ErrorEvent(self.step, f"milestone not saved: {e}"))
        else:
            self.emit(SaveEvent(self.step, str(path), "milestone", time.perf_counter() - t0))
