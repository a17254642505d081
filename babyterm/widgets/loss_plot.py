"""A small plot of train and validation loss drawn with block characters (no plotting library needed).

Train loss fills each column from the bottom with eighth blocks (a sparkline many rows tall); each
validation loss is a dot on top. The y axis spans what is on screen, so the baby's progress stays
readable after the first steep fall.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

BLOCKS = " ▁▂▃▄▅▆▇█"
AXIS_WIDTH = 7


def _bins(points: Iterable[tuple[int, float]], s0: int, s1: int, width: int) -> list[float | None]:
    """The mean value of the points falling in each of `width` columns spanning steps s0..s1."""
    sums, counts = [0.0] * width, [0] * width
    span = max(1, s1 - s0)
    for step, value in points:
        col = min(width - 1, max(0, int((step - s0) / span * (width - 1) + 0.5)))
        sums[col] += value
        counts[col] += 1
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)]


def _fill_gaps(columns: list[float | None]) -> list[float | None]:
    """Carry a value over the empty columns between two points (few points on a wide plot)."""
    out: list[float | None] = []
    last: float | None = None
    seen_after = [False] * len(columns)
    later = False
    for i in range(len(columns) - 1, -1, -1):
        seen_after[i] = later
        later = later or columns[i] is not None
    for i, v in enumerate(columns):
        if v is not None:
            last = v
        out.append(v if v is not None else (last if seen_after[i] else None))
    return out


class LossPlot(Widget):
    """Train loss as a filled area and validation loss as dots, with the y range on the left."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"loss-plot--train", "loss-plot--val", "loss-plot--axis"}
    DEFAULT_CSS = """
    LossPlot > .loss-plot--train { color: $primary 75%; }
    LossPlot > .loss-plot--val { color: $warning; }
    LossPlot > .loss-plot--axis { color: $text-muted; }
    """

    def __init__(
        self,
        title: str = "loss",
        max_points: int = 5000,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.plot_title = title
        self.border_title = title
        self.train: deque[tuple[int, float]] = deque(maxlen=max_points)
        self.val: deque[tuple[int, float]] = deque(maxlen=max_points)
        self.empty_message = "waiting for the first steps…"
        self._version = 0
        self._cache_key: tuple[object, ...] = ()
        self._cache: list[Strip] = []

    def add(self, train: Iterable[tuple[int, float]] = (), val: Iterable[tuple[int, float]] = ()) -> None:
        """Add (step, loss) points; non-finite losses are left out (they would flatten the plot)."""
        self.train.extend((s, v) for s, v in train if math.isfinite(v))
        self.val.extend((s, v) for s, v in val if math.isfinite(v))
        self._changed()

    def clear(self) -> None:
        self.train.clear()
        self.val.clear()
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._caption()
        self.refresh()

    def _caption(self) -> None:
        parts = []
        if self.train:
            parts.append(f"[$primary]▆[/] train {self.train[-1][1]:.3f}")
        if self.val:
            parts.append(f"[$warning]●[/] val {self.val[-1][1]:.3f}")
        self.border_subtitle = "  ".join(parts)
        ends = [points[i][0] for points in (self.train, self.val) if points for i in (0, -1)]
        self.border_title = self.plot_title
        if ends:
            first, last = min(ends), max(ends)
            steps = f"step {last:,}" if first == last else f"steps {first:,}–{last:,}"
            self.border_title = f"{self.plot_title} · {steps}"

    def render_line(self, y: int) -> Strip:
        strips = self._strips()
        return strips[y] if y < len(strips) else Strip.blank(self.content_size.width, self.rich_style)

    def _strips(self) -> list[Strip]:
        """The plot's rows, rebuilt only when the data, the size or the theme changed."""
        key = (self._version, self.content_size, self.app.theme)
        if key != self._cache_key:
            self._cache_key, self._cache = key, self._draw(*self.content_size)
        return self._cache

    def _draw(self, width: int, height: int) -> list[Strip]:
        axis = self.get_component_rich_style("loss-plot--axis")
        plot_w = width - AXIS_WIDTH
        if plot_w < 4 or height < 2 or not (self.train or self.val):
            return [
                Strip([Segment(self.empty_message[:width], axis)]).extend_cell_length(width, self.rich_style)
            ]
        ends = [points[i][0] for points in (self.train, self.val) if points for i in (0, -1)]
        s0, s1 = min(ends), max(ends)
        train = _fill_gaps(_bins(self.train, s0, s1, plot_w))
        val = _bins(self.val, s0, s1, plot_w)
        values = [v for v in (*train, *val) if v is not None]
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.05 or max(abs(hi) * 0.05, 0.01)
        lo, hi = lo - pad, hi + pad
        eighths = height * 8

        def level(v: float) -> int:
            return max(1, min(eighths, round((v - lo) / (hi - lo) * eighths)))

        train_levels = [None if t is None else level(t) for t in train]
        val_rows = [None if v is None else (level(v) - 1) // 8 for v in val]
        styles = {
            "t": self.get_component_rich_style("loss-plot--train"),
            "v": self.get_component_rich_style("loss-plot--val"),
        }
        strips = []
        for row in range(height - 1, -1, -1):  # top row first
            if row in (height - 1, 0):
                label = f"{hi if row else lo:>{AXIS_WIDTH - 2}.3g} ┤"
            else:
                label = " " * (AXIS_WIDTH - 2) + " │"
            segments = [Segment(label, axis)]
            # Runs of one style become one segment: a row is a handful of segments, not one per cell.
            run_kind, run = "t", []
            for col in range(plot_w):
                if val_rows[col] == row:
                    kind, ch = "v", "●"
                else:
                    t = train_levels[col]
                    kind, ch = "t", BLOCKS[0 if t is None else max(0, min(8, t - row * 8))]
                if kind != run_kind and run:
                    segments.append(Segment("".join(run), styles[run_kind]))
                    run = []
                run_kind = kind
                run.append(ch)
            if run:
                segments.append(Segment("".join(run), styles[run_kind]))
            strips.append(Strip(segments, width))
        return strips
