"""The baby's metabolism: the colour its pixel head learns to predict about itself.

    red   = clamp(0.5 + 2 (loss / avg_loss - 1))        worse than usual -> redder
    green = clamp(0.5 + 20 (avg_slow - avg_fast) / avg_slow)   falling loss -> greener
    blue  = clamp(accuracy / max(best recent accuracy, 0.05))   right guesses -> bluer
    pulse = 0.5 + 0.5 sin(2π (step / 2000 + seconds_since_midnight / 86400))
    rgb   = (red, green, blue) * (0.55 + 0.45 pulse)            a slow breath of brightness

avg_loss is a running average (EMA, 0.98), avg_fast/avg_slow are EMAs of 0.9 and 0.99: their
relative gap is the loss trend. Everything is in [0, 1].
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any


def _clamp(v: float) -> float:
    return 0.0 if v != v else min(1.0, max(0.0, v))  # NaN -> 0


@dataclass
class MetabolismReading:
    rgb: tuple[float, float, float]
    loss_ratio: float
    trend: float
    accuracy: float
    pulse: float


def metabolism_colour(
    loss: float,
    avg_loss: float,
    avg_fast: float,
    avg_slow: float,
    accuracy: float,
    best_accuracy: float,
    step: int,
    wall_time: float,
) -> MetabolismReading:
    """The target colour from the baby's own stats and a time pulse (see the module docstring)."""
    ratio = loss / avg_loss if avg_loss > 0 else 1.0
    trend = (avg_slow - avg_fast) / avg_slow if avg_slow > 0 else 0.0
    lt = time.localtime(wall_time)
    day = (lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec) / 86400
    pulse = 0.5 + 0.5 * math.sin(2 * math.pi * (step / 2000 + day))
    brightness = 0.55 + 0.45 * pulse
    red = _clamp(0.5 + 2 * (ratio - 1))
    green = _clamp(0.5 + 20 * trend)
    blue = _clamp(accuracy / max(best_accuracy, 0.05))
    rgb = (red * brightness, green * brightness, blue * brightness)
    return MetabolismReading(rgb, ratio, trend, accuracy, pulse)


@dataclass
class Metabolism:
    """Running averages of the loss and accuracy, updated every training step."""

    avg_loss: float = 0.0
    avg_fast: float = 0.0
    avg_slow: float = 0.0
    best_accuracy: float = 0.0
    seen: int = 0

    def update(self, loss: float, accuracy: float, step: int, wall_time: float) -> MetabolismReading:
        if not math.isfinite(loss):
            loss = self.avg_loss or 10.0
        if self.seen == 0:
            self.avg_loss = self.avg_fast = self.avg_slow = loss
        reading = metabolism_colour(
            loss, self.avg_loss, self.avg_fast, self.avg_slow, accuracy, self.best_accuracy, step, wall_time
        )
        self.avg_loss = 0.98 * self.avg_loss + 0.02 * loss
        self.avg_fast = 0.9 * self.avg_fast + 0.1 * loss
        self.avg_slow = 0.99 * self.avg_slow + 0.01 * loss
        self.best_accuracy = max(0.999 * self.best_accuracy, accuracy)  # slowly forgets a lucky batch
        self.seen += 1
        return reading

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            setattr(self, k, v)
