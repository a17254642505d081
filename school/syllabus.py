"""How each preset is taught: batch, learning-rate schedule and the cadence of evals, guesses and saves."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

EVAL_SHARE = 0.05
"""A timed run spends at most about this share of its time evaluating (Syllabus.space_evals)."""
MAX_EVAL_EVERY = 1000
"""Evaluations spaced for their cost come at least this often (the recipe's widest spacing)."""


@dataclass
class Syllabus:
    batch_size: int = 16
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_steps: int = 100
    decay_steps: int = 6000
    """Cosine decay from lr to min_lr over this many steps, then min_lr for as long as the baby lives."""
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    pixel_weight: float = 0.05
    """Weight of the pixel head's loss next to the language loss."""
    extra_fraction: float = 0.1
    """Share of batch rows drawn from the user's corrections (and steering text), when there are any."""
    scribe_max_share: float = 0.001
    """The scribe's lines get the share of rows they are of all the text, at most this much."""
    bpe_dropout: float = 0.0
    """Chance that a training token is read as the two pieces its merge joined, at each of two levels
    (school/unmerge.py): the same text in other spellings, so a small library is not learned by heart.
    Held-out text is scored as the tokenizer cuts it."""
    plateau_patience: int = 4
    """Evaluations without a new held-out best before the tutor adapts (lower lr, more decay)."""
    log_every: int = 10
    eval_every: int = 200
    eval_batches: int = 16
    guess_every: int = 100
    save_every: int = 1000
    save_minutes: float = 3.0
    milestone_every: int = 10_000
    """After the landmarks (steps 100, 1k, 10k), a milestone snapshot every this many steps."""
    logs_max_mb: int = 200
    """Run logs of all runs together stay under this; the oldest runs go first."""
    milestone_keep: int = 24
    """At most this many milestones on disk (landmarks and the newest stay)."""

    def lr_at(self, step: int) -> float:
        """Linear warmup, then cosine to min_lr, then flat."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if step >= self.decay_steps:
            return self.min_lr
        progress = (step - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps)
        return self.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (self.lr - self.min_lr)

    def fit_to_time(self, step: int, step_s: float, seconds_left: float) -> None:
        """Stretch or shrink what is left of the cosine so it ends with the run's time budget.

        `babyterm train --minutes M` means M minutes of learning, with the schedule planned from a
        speed probe at birth; the real step (compiled, bf16, a busy machine) can be twice as fast
        or half as slow. Once a run has timed a few of its own steps (`step_s`), the decay ends
        when its time does, as nanoGPT's recipe does when its iterations are fitted to a budget.
        Evaluations keep their spacing in steps here (scaling it with the run once made a 1-minute
        run spend a third of its time evaluating); `space_evals` widens it for their cost alone.
        Past the decay, nothing changes.
        """
        if step >= self.decay_steps or step_s <= 0 or seconds_left <= 0:
            return
        fitted = max(1, int(seconds_left / step_s))
        self.decay_steps = max(self.warmup_steps + 1, step + fitted)

    def space_evals(self, eval_s: float, step_s: float) -> None:
        """Evaluate less often where one evaluation (`eval_s`) costs more than EVAL_SHARE of the
        steps between two; never more often than `eval_every`.

        An evaluation reads the whole held-out tail and part of the library, the work of ~9 training
        steps at the recipe's 1 MB size: at the 50 steps between evaluations that a slow speed
        probe had planned, a 5-minute run spent 15% of its time evaluating (a step of 0.09 s, an
        evaluation 0.8 s). Spacings are whole fifties, so the cadence settles after the first.
        """
        if eval_s > 0 and step_s > 0:
            needed = eval_s / (EVAL_SHARE * step_s)
            if needed > self.eval_every:  # a hiccup's worth at most MAX_EVAL_EVERY apart
                self.eval_every = max(self.eval_every, min(MAX_EVAL_EVERY, 50 * math.ceil(needed / 50)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Syllabus:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


SYLLABI: dict[str, Syllabus] = {
    "tiny": Syllabus(batch_size=16, lr=2e-3, min_lr=2e-4, decay_steps=6000),
    "small": Syllabus(batch_size=32, lr=1e-3, min_lr=1e-4, decay_steps=20000, eval_every=500),
    "original": Syllabus(
        batch_size=32, lr=3e-4, min_lr=3e-5, warmup_steps=500, decay_steps=100000, eval_every=1000
    ),
}
