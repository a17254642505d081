"""Knowing when it memorises: held-out scores that stop improving, and how the tutor adapts to them.

Each evaluation's held-out bits/byte is compared with the best so far. A new best (by more than
`min_delta`) is kept as the best self; `patience` evaluations in a row without one is a plateau:
the baby has learned what it can from this text and is starting to learn it by heart. The tutor
then halves the learning rate and strengthens weight decay (up to a limit), and keeps training, so
anything that runs alongside it goes on; if the plateau goes on, it adapts again after another
`patience` evaluations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

LR_FACTOR = 0.5
MIN_LR_SCALE = 1 / 16
DECAY_FACTOR = 1.5
MAX_DECAY_SCALE = 4.0


class Verdict(StrEnum):
    BEST = "best"
    """A new best held-out score, or a real gain: nothing to adapt to."""
    WAITING = "waiting"
    PLATEAU = "plateau"
    """`patience` evaluations without a new best: adapt, and say so."""


@dataclass
class Plateau:
    """The watch over held-out scores; its state travels in the checkpoint (ResumeState.plateau)."""

    patience: int = 4
    min_delta: float = 0.002
    best: float = math.inf
    best_step: int = -1
    mark: float = math.inf
    """The score of the last real gain (by more than min_delta): patience counts from it."""
    waited: int = 0
    """Evaluations since the last new best (or the last adaptation)."""
    times: int = 0
    """Adaptations since the best self last started over."""
    lr_scale: float = 1.0
    """The learning rate's factor after the adaptations (the tutor's lr_scale includes it)."""
    decay_scale: float = 1.0
    """Weight decay's factor after the adaptations."""

    def observe(self, step: int, val_bpb: float) -> Verdict:
        """Take one held-out score. Any score below the best is a new best self (`best_step` says
        so, even on a plateau); only one better by `min_delta` than the last real gain restarts
        the patience."""
        if not math.isfinite(val_bpb):
            return Verdict.WAITING
        new_best = val_bpb < self.best
        if new_best:
            self.best, self.best_step = val_bpb, step
        if val_bpb < self.mark - self.min_delta or math.isinf(self.mark):
            self.mark, self.waited = val_bpb, 0
            return Verdict.BEST
        self.waited += 1
        if self.waited >= self.patience:
            self.adapt()
            return Verdict.PLATEAU
        return Verdict.BEST if new_best else Verdict.WAITING

    def adapt(self) -> None:
        """One more adaptation: a slower learning rate, stronger weight decay (both bounded)."""
        self.waited = 0
        self.times += 1
        self.lr_scale = max(MIN_LR_SCALE, self.lr_scale * LR_FACTOR)
        self.decay_scale = min(MAX_DECAY_SCALE, self.decay_scale * DECAY_FACTOR)

    def start_over(self) -> None:
        """New held-out text (a new library): its scores have no best yet."""
        self.best, self.mark, self.best_step, self.waited, self.times = math.inf, math.inf, -1, 0, 0
        self.lr_scale = self.decay_scale = 1.0

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready (an infinite score, none yet, is None)."""
        data = {k: v for k, v in asdict(self).items() if k not in ("patience", "min_delta")}
        return data | {k: (data[k] if math.isfinite(data[k]) else None) for k in ("best", "mark")}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        for key in ("best", "mark"):
            value = data.get(key)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            setattr(self, key, float(value) if ok else math.inf)
        keys = (
            ("best_step", int),
            ("waited", int),
            ("times", int),
            ("lr_scale", float),
            ("decay_scale", float),
        )
        for key, kind in keys:
            value = data.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                setattr(self, key, kind(value))
