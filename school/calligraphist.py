"""The calligraphist: grades each stat against its own recent history into bands (the screen paints them).

A value's band is its percentile among the stat's last `window` values, cut into 14 equal slices from
`perfect` (better than almost everything seen lately) to `omgwtf` (worse than almost everything). Two
special bands beat the window: `new best` and `new worst` compare against the all-time extremes.

Only held-out figures (HELD_OUT) earn the `new best` star: a training loss falls for ever on a small
library, and a record there is as often memorising as learning. While the baby is `memorising`
(its held-out scores have stopped improving: the tutor's plateau), every other stat is graded
`average`, so the screen has nothing to celebrate until a held-out score improves again.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    """A grade: its name, its rank (0 = new best … 15 = new worst) and the symbol a record carries."""

    name: str
    rank: int
    symbol: str = ""


_ORDINARY = (
    "perfect",
    "almost perfect",
    "super great",
    "great",
    "good",
    "fine",
    "almost fine",
    "average",
    "meh",
    "bad",
    "worse",
    "wtf",
    "omg",
    "omgwtf",
)
NEW_BEST = Band("new best", 0, "★")
BANDS: tuple[Band, ...] = tuple(Band(name, i + 1) for i, name in enumerate(_ORDINARY))
"""The 14 ordinary bands, best first."""
NEW_WORST = Band("new worst", len(BANDS) + 1, "✗")
ALL_BANDS: tuple[Band, ...] = (NEW_BEST, *BANDS, NEW_WORST)
BANDS_BY_NAME: dict[str, Band] = {b.name: b for b in ALL_BANDS}
NEUTRAL = BANDS_BY_NAME["average"]

LOWER_IS_BETTER: dict[str, bool] = {
    "loss": True,
    "val_loss": True,
    "val_bpb": True,
    "train_loss": True,
    "grad_norm": True,
    "accuracy": False,
    "match": False,
}
HELD_OUT = frozenset({"val_loss", "val_bpb"})
"""Stats measured on text the baby never learns from: the only ones that may set a record."""
MIN_HISTORY = 5
"""Fewer values than this and every value is `average`: a percentile of three numbers means nothing."""


class _History:
    """The last `window` values of one stat, kept both in arrival order and sorted (for percentiles)."""

    def __init__(self, window: int) -> None:
        self.recent: deque[float] = deque()
        self.sorted: list[float] = []
        self.window = window
        self.best = math.nan
        self.worst = math.nan

    def add(self, value: float, lower_is_better: bool) -> None:
        self.recent.append(value)
        bisect.insort(self.sorted, value)
        if len(self.recent) > self.window:
            old = self.recent.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        if math.isnan(self.best):
            self.best = self.worst = value
        elif lower_is_better:
            self.best, self.worst = min(self.best, value), max(self.worst, value)
        else:
            self.best, self.worst = max(self.best, value), min(self.worst, value)


class Calligraphist:
    """Grades stats into bands relative to their own recent history; the screen chooses how bands look."""

    def __init__(self, window: int = 500, lower_is_better: dict[str, bool] | None = None) -> None:
        if window < MIN_HISTORY:
            raise ValueError(f"window must be at least {MIN_HISTORY}, got {window}")
        self.window = window
        self.lower_is_better = {**LOWER_IS_BETTER, **(lower_is_better or {})}
        self._history: dict[str, _History] = {}
        self.memorising = False
        """Set on a plateau, cleared by a new held-out best (the tutor and the screens set it)."""

    def is_lower_better(self, stat: str) -> bool:
        return self.lower_is_better.get(stat, True)

    def band(self, stat: str, value: float) -> Band:
        """Grade `value` against the stat's history without recording it."""
        if not math.isfinite(value):
            return BANDS[-1]  # a NaN or infinite loss is as bad as it gets, but must not become the record
        if stat in HELD_OUT:
            return self._band(stat, value)
        if self.memorising:
            return NEUTRAL
        band = self._band(stat, value)
        return BANDS[0] if band is NEW_BEST else band  # the best it has been, but no record

    def _band(self, stat: str, value: float) -> Band:
        """The band against the history alone (records included)."""
        hist = self._history.get(stat)
        if hist is None or len(hist.recent) < MIN_HISTORY:
            return NEUTRAL
        lower = self.is_lower_better(stat)
        if value < hist.best if lower else value > hist.best:
            return NEW_BEST
        if value > hist.worst if lower else value < hist.worst:
            return NEW_WORST
        n = len(hist.sorted)
        below = bisect.bisect_left(hist.sorted, value)
        equal = bisect.bisect_right(hist.sorted, value) - below
        above = n - below - equal
        better = below if lower else above
        # Ties count half, so a flat history puts its own value in the middle band, not at an end.
        percentile = (better + 0.5 * equal) / n
        return BANDS[min(len(BANDS) - 1, int(percentile * len(BANDS)))]

    def observe(self, stat: str, value: float) -> Band:
        """Grade `value` against the history before it, then record it."""
        band = self.band(stat, value)
        if band is NEW_BEST and stat in HELD_OUT:
            self.memorising = False  # a held-out score improved: it is learning again
        if math.isfinite(value):
            hist = self._history.get(stat)
            if hist is None:
                hist = self._history[stat] = _History(self.window)
            hist.add(float(value), self.is_lower_better(stat))
        return band

    def best(self, stat: str) -> float | None:
        """The all-time best value recorded for `stat`, or None before the first one."""
        hist = self._history.get(stat)
        return None if hist is None else hist.best
