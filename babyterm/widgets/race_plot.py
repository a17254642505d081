"""The race's curves: each racer's held-out bits per byte against its training seconds, on one plot.

Drawn with block marks like the loss plot (babyterm/widgets/loss_plot.py), the y axis spanning what
is on screen; each racer's points are joined by straight lines (a steep fall drawn as a column of
marks, so a curve never breaks). Each racer has its own mark and colour; where two meet, the one
drawn later shows.
"""

from __future__ import annotations

import math
from typing import ClassVar

from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget

from babyterm.widgets.loss_plot import AXIS_WIDTH

MARKS = "●■▲◆"
"""One mark per racer, in the order they race (more racers reuse them)."""
COLOURS = ("$primary", "$warning", "$success", "$accent")
"""The legend's colours: the same theme variables as race-plot--c0..c3 in babyterm.tcss."""


def line_columns(curve: list[tuple[float, float]], s0: float, s1: float, width: int) -> list[float | None]:
    """The curve's value at each of `width` columns spanning seconds s0..s1, joining its points by
    straight lines; None left of its first point and right of its last."""
    out: list[float | None] = [None] * width
    if not curve:
        return out
    span = max(s1 - s0, 1e-9)
    j = 0
    for col in range(width):
        x = s0 + col / max(1, width - 1) * span
        if x < curve[0][0] - span / (2 * width) or x > curve[-1][0] + span / (2 * width):
            continue
        while j + 1 < len(curve) and curve[j + 1][0] < x:
            j += 1
        (xa, ya), (xb, yb) = curve[j], curve[min(j + 1, len(curve) - 1)]
        t = 0.0 if xb <= xa else min(1.0, max(0.0, (x - xa) / (xb - xa)))
        out[col] = ya + t * (yb - ya)
    return out


class RacePlot(Widget):
    """Held-out bits per byte (y) against each brain's own training seconds (x), a curve per brain."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "race-plot--axis",
        *(f"race-plot--c{i}" for i in range(len(MARKS))),
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.curves: dict[str, list[tuple[float, float]]] = {}
        self.empty_message = "waiting for the newborns' first scores…"
        self.border_title = "held-out bits/byte against training seconds (lower is better)"
        self._version = 0
        self._cache_key: tuple[object, ...] = ()
        self._cache: list[Strip] = []

    def add(self, brain: str, seconds: float, val_bpb: float) -> None:
        """One evaluation of `brain`; a non-finite score is left out (it would flatten the plot)."""
        curve = self.curves.setdefault(brain, [])
        if math.isfinite(val_bpb) and math.isfinite(seconds):
            curve.append((seconds, val_bpb))
        self._version += 1
        self._caption()
        self.refresh()

    def mark(self, brain: str) -> tuple[str, int]:
        """The racer's mark and colour index."""
        i = list(self.curves).index(brain) % len(MARKS)
        return MARKS[i], i

    def _caption(self) -> None:
        parts = []
        for brain, curve in self.curves.items():
            mark, i = self.mark(brain)
            last = f" {curve[-1][1]:.3f}" if curve else ""
            parts.append(f"[{COLOURS[i]}]{mark}[/] {brain}{last}")
        self.border_subtitle = "  ".join(parts)

    def render_line(self, y: int) -> Strip:
        strips = self._strips()
        return strips[y] if y < len(strips) else Strip.blank(self.content_size.width, self.rich_style)

    def _strips(self) -> list[Strip]:
        key = (self._version, self.content_size, self.app.theme)
        if key != self._cache_key:
            self._cache_key, self._cache = key, self._draw(*self.content_size)
        return self._cache

    def _draw(self, width: int, height: int) -> list[Strip]:
        axis = self.get_component_rich_style("race-plot--axis")
        plot_w = width - AXIS_WIDTH
        points = [p for curve in self.curves.values() for p in curve]
        if plot_w < 4 or height < 3 or not points:
            return [
                Strip([Segment(self.empty_message[:width], axis)]).extend_cell_length(width, self.rich_style)
            ]
        s0, s1 = min(s for s, _ in points), max(s for s, _ in points)
        lo, hi = min(v for _, v in points), max(v for _, v in points)
        pad = (hi - lo) * 0.05 or max(abs(hi) * 0.05, 0.01)
        lo, hi = lo - pad, hi + pad
        rows = height - 1  # the last row is the time axis
        grid: list[list[int | None]] = [[None] * plot_w for _ in range(rows)]
        for brain, curve in self.curves.items():
            _, colour = self.mark(brain)
            before: int | None = None
            for col, v in enumerate(line_columns(curve, s0, s1, plot_w)):
                if v is None:
                    before = None
                    continue
                row = min(rows - 1, max(0, round((v - lo) / (hi - lo) * (rows - 1))))
                low, high = (row, row) if before is None else (min(row, before + 1), max(row, before - 1))
                for r in range(low, high + 1):  # down to where the last column was: no breaks
                    grid[rows - 1 - r][col] = colour
                before = row
        styles = [self.get_component_rich_style(f"race-plot--c{i}") for i in range(len(MARKS))]
        strips = []
        for r, cells in enumerate(grid):
            if r in (0, rows - 1):
                label = f"{hi if r == 0 else lo:>{AXIS_WIDTH - 2}.3g} ┤"
            else:
                label = " " * (AXIS_WIDTH - 2) + " │"
            segments = [Segment(label, axis)]
            for colour in cells:  # a run of one racer (or of blanks) becomes one segment
                text, style = (" ", self.rich_style) if colour is None else (MARKS[colour], styles[colour])
                if segments and segments[-1].style == style and len(segments) > 1:
                    segments[-1] = Segment(segments[-1].text + text, style)
                else:
                    segments.append(Segment(text, style))
            strips.append(Strip(segments, width))
        left, right = f"{s0:.0f} s", f"{s1:.0f} s"
        ticks = " " * AXIS_WIDTH + left + right.rjust(max(0, plot_w - len(left)))
        strips.append(Strip([Segment(ticks[:width], axis)]).extend_cell_length(width, self.rich_style))
        return strips
