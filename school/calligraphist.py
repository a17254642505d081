"""The calligraphist: grades each stat against its own recent history and colours the training lines.

A value's band is its percentile among the stat's last `window` values, cut into 14 equal slices from
`perfect` (better than almost everything seen lately) to `omgwtf` (worse than almost everything). Two
special bands beat the window: `new best` and `new worst` compare against the all-time extremes.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

from rich.text import Text

from school.events import EvalEvent, Event, StepEvent


@dataclass(frozen=True)
class Band:
    """A grade: its name, its rank (0 = new best … 15 = new worst) and the Rich style it is drawn in."""

    name: str
    rank: int
    style: str
    symbol: str = ""


_ORDINARY = (
    ("perfect", "bold bright_cyan"),
    ("almost perfect", "bright_cyan"),
    ("super great", "bold bright_green"),
    ("great", "bright_green"),
    ("good", "green"),
    ("fine", "pale_green1"),
    ("almost fine", "bright_white"),
    ("average", "white"),
    ("meh", "light_goldenrod1"),
    ("bad", "yellow"),
    ("worse", "orange1"),
    ("wtf", "orange_red1"),
    ("omg", "deep_pink2"),
    ("omgwtf", "bold magenta"),
)
NEW_BEST = Band("new best", 0, "bold #ffd700", "★")
BANDS: tuple[Band, ...] = tuple(Band(name, i + 1, style) for i, (name, style) in enumerate(_ORDINARY))
"""The 14 ordinary bands, best first."""
NEW_WORST = Band("new worst", len(BANDS) + 1, "bold red", "✗")
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
    """Grades stats into bands relative to their own recent history and formats events as coloured lines."""

    def __init__(self, window: int = 500, lower_is_better: dict[str, bool] | None = None) -> None:
        if window < MIN_HISTORY:
            raise ValueError(f"window must be at least {MIN_HISTORY}, got {window}")
        self.window = window
        self.lower_is_better = {**LOWER_IS_BETTER, **(lower_is_better or {})}
        self._history: dict[str, _History] = {}

    def is_lower_better(self, stat: str) -> bool:
        return self.lower_is_better.get(stat, True)

    def band(self, stat: str, value: float) -> Band:
        """Grade `value` against the stat's history without recording it."""
        if not math.isfinite(value):
            return BANDS[-1]  # a NaN or infinite loss is as bad as it gets, but must not become the record
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

    def style(self, band: Band) -> str:
        return band.style

    def format_step(self, event: StepEvent, observe: bool = True) -> Text:
        """`step   1200  loss 4.213  acc 31.2%  lr 3.0e-04  gn 0.84  12.3k tok/s`, stats coloured by band.

        With `observe` the event's stats join their histories (the usual case: each step is shown once).
        """
        return self._render(_step_parts(event), observe)

    def format_eval(self, event: EvalEvent, observe: bool = True) -> Text:
        """`eval   1200  val_loss 3.912  bpb 1.234  train 4.010`, the validation stats coloured by band."""
        return self._render(_eval_parts(event), observe)

    def format(self, event: Event, observe: bool = True) -> Text:
        """Any event as one line: steps and evals graded, the rest dim."""
        if isinstance(event, StepEvent):
            return self.format_step(event, observe)
        if isinstance(event, EvalEvent):
            return self.format_eval(event, observe)
        return Text(plain(event), style="dim")

    def plain(self, event: Event) -> str:
        """The same line without colour, for output that is not a terminal. Records nothing."""
        return plain(event)

    def _render(self, parts: list[_Part], observe: bool) -> Text:
        text = Text()
        for i, (chunk, stat, value) in enumerate(parts):
            if i:
                text.append("  ")
            if stat is None:
                text.append(chunk, style="dim" if chunk.startswith(("step", "eval")) else "")
                continue
            band = self.observe(stat, value) if observe else self.band(stat, value)
            label, _, number = chunk.partition(" ")
            text.append(label + " ", style="dim")
            text.append(number + (band.symbol and f" {band.symbol}"), style=band.style)
        return text


_Part = tuple[str, str | None, float]


def _rate(per_s: float) -> str:
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if per_s >= scale:
            return f"{per_s / scale:.1f}{suffix}"
    return f"{per_s:.0f}"


def _step_parts(e: StepEvent) -> list[_Part]:
    return [
        (f"step {e.step:>6}", None, 0.0),
        (f"loss {e.loss:.3f}", "loss", e.loss),
        (f"acc {e.accuracy * 100:.1f}%", "accuracy", e.accuracy),
        (f"lr {e.lr:.1e}", None, 0.0),
        (f"gn {e.grad_norm:.2f}", "grad_norm", e.grad_norm),
        (f"{_rate(e.tokens_per_s)} tok/s", None, 0.0),
    ]


def _eval_parts(e: EvalEvent) -> list[_Part]:
    return [
        (f"eval {e.step:>6}", None, 0.0),
        (f"val_loss {e.val_loss:.3f}", "val_loss", e.val_loss),
        (f"bpb {e.val_bpb:.3f}", "val_bpb", e.val_bpb),
        (f"train {e.train_loss:.3f}", None, 0.0),
    ]


def plain(event: Event) -> str:
    """One uncoloured line for any event."""
    if isinstance(event, StepEvent):
        parts = _step_parts(event)
    elif isinstance(event, EvalEvent):
        parts = _eval_parts(event)
    else:
        fields = {k: v for k, v in event.to_dict().items() if k not in ("kind", "step")}
        body = "  ".join(f"{k} {_short(v)}" for k, v in fields.items())
        return f"{event.kind:<5}{event.step:>7}  {body}".rstrip()
    return "  ".join(chunk for chunk, _, _ in parts)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    text = " ".join(str(value).split())  # model text may hold newlines; a log line must stay one line
    return text if len(text) <= 60 else text[:59] + "…"
